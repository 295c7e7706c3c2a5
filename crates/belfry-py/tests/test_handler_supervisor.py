"""`belfry.Handler`, `belfry.Supervisor` (uncaught exceptions, summaries by e-mail), fork."""

from __future__ import annotations

import email
import gzip
import threading
import time
from email.message import Message
from typing import List

import pytest


def test_logging_error_alerts_with_the_logger_as_job_and_the_traceback(receiver, run_script):
    run_script(
        f"""
        import logging, belfry
        belfry.init(urls=[{receiver.url!r}])
        log = logging.getLogger("billing")
        log.addHandler(belfry.Handler())
        log.warning("below ERROR: not an alert")
        try:
            {{}}["card"]
        except KeyError:
            log.exception("payment provider unreachable")
        logging.getLogger("other").addHandler(belfry.Handler(job="nightly"))
        logging.getLogger("other").critical("disk %s full", "/var")
        """
    )
    bodies = receiver.wait_for(lambda b: len(b) >= 2)
    by_job = {b["job"]: b for b in bodies}
    assert set(by_job) == {"billing", "nightly"}, bodies
    assert by_job["billing"]["state"] == "failed"
    assert "payment provider unreachable" in by_job["billing"]["error"]
    assert "KeyError: 'card'" in by_job["billing"]["error"]
    assert by_job["nightly"]["error"] == "disk /var full"
    assert not any("below ERROR" in (b.get("error") or "") for b in bodies)


def test_an_uncaught_exception_in_a_thread_and_in_the_main_thread_alert(receiver, run_script):
    p = run_script(
        f"""
        import threading, belfry
        belfry.init(urls=[{receiver.url!r}])
        sup = belfry.Supervisor("nightly-report")

        def worker():
            raise LookupError("no such customer")

        t = threading.Thread(target=worker, name="loader")
        t.start(); t.join()
        ok, report = belfry.flush(10)
        assert ok, report
        raise SystemError("the main thread gives up")
        """,
        check=False,
    )
    assert p.returncode == 1
    # The previous hooks still ran: Python printed both tracebacks.
    assert "LookupError: no such customer" in p.stderr and "SystemError" in p.stderr
    bodies = receiver.wait_for(lambda b: len(b) >= 2)
    assert all(b["job"] == "nightly-report" for b in bodies), bodies
    assert bodies[0]["state"] == "crashed"
    assert "thread 'loader'" in bodies[0]["error"] and "LookupError: no such customer" in bodies[0]["error"]
    # The main thread's crash is recorded too (whether it alerts again is the rules' call:
    # a problem that goes on within the repeat window is held back).
    assert "SystemError: the main thread gives up" in run_script_status(run_script)


def run_script_status(run_script) -> str:
    """The last error the store holds for nightly-report, read through the `belfry` package's
    own state directory by a new process (belfry status is the command's; this reads the
    SQLite file directly)."""
    p = run_script(
        """
        import os, sqlite3, glob
        home = os.environ["BELFRY_HOME"]
        out = []
        for f in glob.glob(os.path.join(home, "*.sqlite*")) + glob.glob(os.path.join(home, "*.db")):
            try:
                c = sqlite3.connect(f)
                for (t,) in c.execute("select name from sqlite_master where type='table'"):
                    for row in c.execute(f"select * from {t}"):
                        out.append(repr(row))
            except sqlite3.Error:
                pass
        print("\\n".join(out))
        """
    )
    return p.stdout


class Inbox:
    def __init__(self) -> None:
        self.messages: List[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    import socket

    inbox = Inbox()
    # aiosmtpd's controller checks its server by connecting to the port it was given, so it
    # gets a free one rather than 0.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Controller(inbox, hostname="127.0.0.1", port=port)
    c.start()
    inbox.port = port  # type: ignore[attr-defined]
    yield inbox
    c.stop()


def test_a_summary_goes_by_e_mail_with_the_log_gzipped(smtp, run_script, tmp_path):
    log = tmp_path / "run.log"
    log.write_text("processed 3 files\n" * 500)
    url = f"mailto://127.0.0.1:{smtp.port}/ops@example.org?mode=insecure&from=belfry@example.com"
    run_script(
        f"""
        import belfry
        belfry.init(urls=[{url!r}])
        sup = belfry.Supervisor("nightly-report")
        assert sup.notify("Nightly report: 3 files", "3 written, 0 skipped", attachments=[{str(log)!r}])
        """
    )
    deadline = time.monotonic() + 15
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    [m] = smtp.messages
    assert "Nightly report: 3 files" in m["Subject"]
    parts = {p.get_filename(): p for p in m.walk() if p.get_filename()}
    assert set(parts) == {"run.log.gz"}, list(parts)
    assert gzip.decompress(parts["run.log.gz"].get_payload(decode=True)) == log.read_bytes()
    body = next(p for p in m.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert "3 written, 0 skipped" in body.get_payload(decode=True).decode()


def test_the_worker_is_recreated_in_a_forked_child(receiver, run_script):
    p = run_script(
        f"""
        import os, sys, belfry
        belfry.init(urls=[{receiver.url!r}])

        @belfry.watch(name="in-child")
        def child_work():
            raise ValueError("child failed")

        @belfry.watch(name="in-parent")
        def parent_work():
            raise ValueError("parent failed")

        pid = os.fork()
        if pid == 0:
            try:
                child_work()
            except ValueError:
                pass
            sys.exit(0)   # the child's atexit flush delivers it
        _, status = os.waitpid(pid, 0)
        print("child status", status)
        try:
            parent_work()
        except ValueError:
            pass
        """
    )
    assert "child status 0" in p.stdout, p.stderr
    try:
        bodies = receiver.wait_for(lambda b: len(b) >= 2)
    except AssertionError as e:
        raise AssertionError(f"{e}\nstderr:\n{p.stderr}") from None
    assert {b["job"] for b in bodies} == {"in-child", "in-parent"}
    assert {b["error"].splitlines()[-1] for b in bodies} == {"ValueError: child failed", "ValueError: parent failed"}


def test_children_forked_while_the_parent_writes_still_record(receiver, run_script):
    # The parent keeps its worker writing (calls as fast as it can make them, recorded in the
    # store in groups) while it forks sixty children, each of which records a failure of its
    # own and exits: a child forked in the middle of one of the parent's transactions must
    # still write. (Without the store's fork gate this failed: some children's alerts never
    # came.)
    p = run_script(
        f"""
        import os, sys, threading, time, belfry
        belfry.init(urls=[{receiver.url!r}])

        @belfry.watch(name="busy")
        def busy():
            pass

        stop = False
        def churn():
            while not stop:
                busy()
        t = threading.Thread(target=churn)
        t.start()
        for i in range(60):
            pid = os.fork()
            if pid == 0:
                try:
                    belfry.watch(name=f"child-{{i}}")(lambda: 1 / 0)()
                except ZeroDivisionError:
                    pass
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
            time.sleep(0.003)
        stop = True
        t.join()
        """,
        timeout=120,
    )
    try:
        bodies = receiver.wait_for(lambda b: len({x["job"] for x in b if x["job"].startswith("child-")}) >= 60)
    except AssertionError as e:
        raise AssertionError(f"{e}\nstderr:\n{p.stderr}") from None
    assert "not recorded" not in p.stderr, p.stderr


def test_send_to_urls_waits_for_the_answers_and_attaches_bytes(receiver):
    import belfry

    [(label, dest, delivered, reason)] = belfry.send(
        "Disk almost full", "92% on /var", urls=[receiver.url], attach=[("df.txt", b"/var 92%")]
    )
    assert delivered and reason == "", reason
    assert "127.0.0.1" in dest
    [body] = receiver.wait_for(lambda b: len(b) >= 1, timeout=1)
    assert body["title"] == "Disk almost full" and body["message"] == "92% on /var"
    assert [a["filename"] for a in body["attachments"]] == ["df.txt"]


def test_send_says_what_is_wrong_with_a_url_without_its_secret():
    import belfry

    with pytest.raises(ValueError) as e:
        belfry.send("t", "b", urls=["nosuchscheme://user:hunter2@host/x"])
    assert "hunter2" not in str(e.value)
    assert "nosuchscheme" in str(e.value)


def test_a_refused_delivery_is_reported_not_raised():
    import socket

    import belfry

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    [(_, _, delivered, reason)] = belfry.send("t", "b", urls=[f"json://127.0.0.1:{port}/x"], timeout=2)
    assert not delivered and reason
