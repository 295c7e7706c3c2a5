"""The dashboard in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
Playwright against a real `belfry serve` child process, with a loopback HTTP receiver as the
alert channel. What the Rust tests (tests/server/dashboard.rs) check over raw HTTP is checked
here as a person sees it: the login form, a failure appearing without a reload, silencing and
retrying from the pages, what a read-only login sees, the keyboard and the labels.

Each page is saved as a screenshot into $BELFRY_SCREENSHOTS (default: a temporary directory);
scripts/screenshots.sh refreshes docs/screenshots/ this way.

Run by scripts/test-browser.sh, which installs what this needs and builds the binary
($BELFRY_BIN, default $CARGO_TARGET_DIR/debug/belfry). The tests share one server and run in
the order written; each makes the state it needs itself, so any one of them runs alone too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[4]
CHROMIUM = os.environ.get("BELFRY_CHROMIUM", "/usr/bin/chromium")
PING_KEY = "pk-browser"
API_KEY = "rw-key-browser-0123456789"
API_KEY_RO = "ro-key-browser-0123456789"
USERS = {"ann": "correct horse", "bob": "battery staple"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long a live update may take: the page fetches its live part every 5 s.
LIVE_MS = 15_000


def belfry_bin() -> Path:
    if os.environ.get("BELFRY_BIN"):
        return Path(os.environ["BELFRY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "belfry"


def wait_until(what: str, check, timeout: float = 15.0):
    """Polls `check` until it returns something true; that value. Fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Receiver:
    """The channel's far end: a loopback HTTP server that answers every POST with `status`
    (410 Gone, a permanent failure, until a test says otherwise) and keeps what it got."""

    def __init__(self):
        self.status = 410
        self.got: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    status = outer.status
                    try:
                        outer.got.append((status, json.loads(body)))
                    except ValueError:
                        outer.got.append((status, {"raw": body.decode("utf-8", "replace")}))
                answer = b"ok" if status < 300 else b"gone"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answered(self, status: int, mentioning: str) -> int:
        """How many requests mentioning `mentioning` were answered with `status`."""
        with self.lock:
            return sum(1 for s, b in self.got if s == status and mentioning in json.dumps(b))


CONFIG = """\
[server]
ping_key = "{ping_key}"
api_key = "{api_key}"
api_key_readonly = "{api_key_ro}"

[server.users.ann]
password_hash = "{ann}"

[server.users.bob]
password_hash = "{bob}"
role = "read-only"

[channels.hook]
url = "json://127.0.0.1:{port}/belfry"

[jobs.backup]
period = "1h"
grace = "5m"

[jobs.reports]
cron = "0 6 * * *"
grace = "1h"

[jobs.cleanup]
period = "15m"
grace = "5m"

[jobs.db-dump]
period = "1d"
grace = "1h"
"""


class Server:
    def __init__(self, base: str, home: Path, proc: subprocess.Popen, receiver: Receiver):
        self.base = base
        self.home = home
        self.proc = proc
        self.receiver = receiver
        self.failed: set[str] = set()

    def http(self, method: str, path: str, body: bytes = b"", headers=None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=body or None, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def ping(self, job: str, kind: str = "", body: str = "", rid: str = "") -> None:
        path = f"/ping/{PING_KEY}/{job}" + (f"/{kind}" if kind else "")
        if rid:
            path += f"?rid={rid}"
        status, answer = self.http("POST", path, body.encode())
        assert status == 200, f"{path}: {status} {answer!r}"

    def run(self, job: str, code: int, output: str, n: int) -> None:
        """A run of `job` reported as `belfry run` reports it: a start, then its exit code."""
        rid = f"00000000-0000-4000-8000-{n:012d}"
        self.ping(job, "start", rid=rid)
        self.ping(job, str(code), output, rid=rid)

    def fail_once(self, job: str) -> None:
        """Makes `job` fail (once per server)."""
        if job not in self.failed:
            self.ping(job, "fail", f"{job}: disk full on /var\n")
            self.failed.add(job)

    def api(self, method: str, path: str, obj=None, key: str = API_KEY):
        body = json.dumps(obj).encode() if obj is not None else b""
        status, answer = self.http(
            method, "/api/v3/" + path, body, {"X-Api-Key": key, "Content-Type": "application/json"}
        )
        assert status < 300, f"{path}: {status} {answer!r}"
        return json.loads(answer or b"null")

    def log(self) -> str:
        return (self.home / "serve.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, receiver):
    binary = belfry_bin()
    assert binary.exists(), f"{binary}: build it first (cargo build -p belfry-cli)"
    home = tmp_path_factory.mktemp("belfry-home")
    hasher = PasswordHasher()
    config = home / "belfry.toml"
    config.write_text(
        CONFIG.format(
            ping_key=PING_KEY,
            api_key=API_KEY,
            api_key_ro=API_KEY_RO,
            ann=hasher.hash(USERS["ann"]),
            bob=hasher.hash(USERS["bob"]),
            port=receiver.port,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELFRY_")}
    env["BELFRY_HOME"] = str(home)
    log = open(home / "serve.log", "w")
    proc = subprocess.Popen(
        [str(binary), "--config", str(config), "serve", "--listen", "127.0.0.1:0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening():
        if proc.poll() is not None:
            log = (home / "serve.log").read_text()
            pytest.fail(f"belfry serve exited {proc.returncode}:\n{log}")
        m = re.search(r"serving on (http://127\.0\.0\.1:\d+)", (home / "serve.log").read_text())
        return m and m.group(1)

    s = Server(wait_until("belfry serve to listen", listening, 30), home, proc, receiver)
    seed(s)
    yield s
    proc.terminate()
    try:
        assert proc.wait(10) == 0, s.log()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def seed(s: Server) -> None:
    """Jobs with titles, tags and a history of runs, as a dashboard has after a while."""
    meta = {
        "backup": ("Nightly backup", "prod db", "pg_dump of the main database to the NAS"),
        "reports": ("Morning reports", "reports", "The sales reports mailed at six"),
        "cleanup": ("Temp cleanup", "prod", ""),
        "db-dump": ("DB dump to S3", "prod db", ""),
    }
    for slug, (name, tags, desc) in meta.items():
        check = {"slug": slug, "name": name, "tags": tags, "desc": desc, "unique": ["slug"]}
        s.api("POST", "checks/", check)
    n = 0
    for job, codes in {
        "backup": [0, 0],
        "reports": [0, 0, 0, 0, 0, 0],
        "cleanup": [0, 0, 0, 1, 0, 0, 0, 0],
        "db-dump": [0, 0, 0],
    }.items():
        for code in codes:
            n += 1
            output = f"{job}: run {n} " + ("ok" if code == 0 else "failed: no space left")
            s.run(job, code, output + "\n", n)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("BELFRY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    if not d.is_absolute():
        d = ROOT / d
    d.mkdir(parents=True, exist_ok=True)
    return d


def login(page: Page, user: str) -> None:
    """Logs in through the form, as a person does."""
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(USERS[user])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Jobs")).to_be_visible()


@pytest.fixture(scope="module")
def ann_state(browser, server):
    """A logged-in session of ann (read-write), for the tests that do not test the login."""
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP)
    login(ctx.new_page(), "ann")
    state = ctx.storage_state()
    ctx.close()
    return state


@pytest.fixture
def page(browser, server, ann_state):
    """A page of ann's, with every console error and failed request kept, and none allowed."""
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP, storage_state=ann_state)
    p = ctx.new_page()
    errors: list[str] = []
    p.on("console", lambda m: m.type == "error" and errors.append(m.text))
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    ctx.close()
    assert not errors, f"the page reported errors: {errors}"


def job_row(page: Page, job: str):
    return page.locator(f'#live tr[data-job="{job}"]')


# ---------------------------------------------------------------------------------------
# The tests.


def test_logging_in_through_the_form(browser, server, shots):
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP)
    page = ctx.new_page()
    # A page asked for before logging in comes back after the login.
    page.goto("/outbox")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Foutbox$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.screenshot(path=shots / "login.png")
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill("wrong horse")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill(USERS["ann"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(server.base + "/outbox")
    expect(page.get_by_role("heading", level=1)).to_have_text("Outbox")
    # The session cookie is one scripts cannot read.
    cookies = {c["name"]: c for c in ctx.cookies()}
    assert cookies["belfry_session"]["httpOnly"], cookies
    assert "belfry_session" not in page.evaluate("document.cookie")
    # Logging out ends it.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    ctx.close()


def test_a_failure_shows_on_the_open_jobs_page_without_a_reload(page, server):
    page.goto("/")
    row = job_row(page, "backup")
    expect(row.locator(".badge")).to_have_text("✓ ok")
    # A mark on this document: a reload or a navigation would lose it.
    page.evaluate("window.belfryTestMark = 'still here'")
    server.fail_once("backup")
    expect(row.locator(".badge")).to_have_text("✗ failed", timeout=LIVE_MS)
    assert page.evaluate("window.belfryTestMark") == "still here", "the page was reloaded"
    assert page.locator("#live").get_attribute("data-updated"), "the live part was not fetched"
    # Problems come first, and the summary counts it.
    order = page.locator("#live tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.job, r.querySelector('.badge').className])"
    )
    at = [job for job, _ in order].index("backup")
    assert all("bad" in badge for _, badge in order[: at + 1]), order
    assert any("good" in badge for _, badge in order[at + 1 :]), order
    expect(page.locator("#live .summary")).to_contain_text(re.compile(r"[1-9]\d* with a problem"))
    expect(row.locator(".strip li").last).to_have_class(re.compile(r"\bbad\b"))


def test_a_failed_jobs_page_shows_its_run_and_its_notification(page, server):
    server.fail_once("backup")
    page.goto("/")
    job_row(page, "backup").get_by_role("link", name="Nightly backup").click()
    expect(page).to_have_url(re.compile(r"/job\?name=backup$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nightly backup")
    expect(page.locator(".status .badge")).to_contain_text("failed")
    runs = page.locator("section[aria-labelledby=runs] tbody tr")
    expect(runs).to_have_count(3)
    newest = runs.first
    expect(newest).to_contain_text("failed")
    newest.get_by_text("output").click()
    expect(newest.locator("pre")).to_have_text("backup: disk full on /var\n")
    # The failure's notification, sent to the hook, which answered 410: given up at once.
    note = page.locator("section[aria-labelledby=notifications] ol.events > li").first
    expect(note).to_contain_text("failed")
    expect(note.locator(".deliveries")).to_contain_text("hook: dead", timeout=LIVE_MS)
    expect(note.locator(".attempts")).to_contain_text("HTTP 410: gone")
    expect(page.locator("section[aria-labelledby=flips]")).to_contain_text("ok → ✗ failed")


def test_silencing_a_job_from_its_page(page, server):
    server.fail_once("backup")
    page.goto("/job?name=backup")
    form = page.locator("form[action='/actions/silence']")
    form.get_by_label("For").fill("2h")
    form.get_by_label("Reason").fill("NAS firmware update")
    form.get_by_role("button", name="Silence").click()
    expect(page).to_have_url(re.compile(r"/job\?name=backup&notice="))
    expect(page.get_by_role("status").first).to_contain_text("job backup silenced until")
    flag = page.locator(".flagline").filter(has_text="Silenced until")
    expect(flag).to_contain_text("by ann: NAS firmware update")
    expect(flag).to_contain_text(re.compile(r"\(in 1 h 5\d min\)"))
    # The jobs list marks it, and counts it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    flag = job_row(page, "backup").locator(".flag")
    expect(flag).to_have_text("silenced")
    expect(flag).to_have_attribute("title", re.compile("NAS firmware update"))
    expect(page.locator("#live .summary")).to_contain_text(re.compile(r"\b1 silenced"))
    # And the silences page lists it, with a way to end it.
    page.get_by_role("link", name="Silences").click()
    listed = page.locator("tbody tr").filter(has_text="NAS firmware update")
    expect(listed).to_contain_text("job backup")
    expect(listed.get_by_role("button", name=re.compile(r"End silence \d+"))).to_be_visible()


def test_a_dead_outbox_row_is_retried_from_the_outbox(page, server):
    receiver = server.receiver
    refused = receiver.answered(410, "db-dump")
    server.fail_once("db-dump")
    # The receiver answers 410 Gone: the row is given up at its first attempt.
    wait_until("db-dump's alert to be refused", lambda: receiver.answered(410, "db-dump") > refused)
    page.goto("/outbox")
    # Its newest row: the failure's (its first run's alert was given up too).
    rows = page.locator("tbody tr").filter(has=page.get_by_role("link", name="db-dump", exact=True))
    expect(rows.first).to_be_visible()
    row_id = str(max(int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.row)")))
    row = page.locator(f'tr[data-row="{row_id}"]')
    expect(row.locator(".badge")).to_have_text("dead")
    expect(row).to_contain_text("HTTP 410: gone")
    receiver.status = 200
    try:
        row.get_by_role("button", name=f"Retry row {row_id}").click()
        expect(page.get_by_role("status").first).to_have_text(
            f"outbox row {row_id} will be sent again now"
        )
        wait_until("db-dump's alert to be delivered", lambda: receiver.answered(200, "db-dump"))
    finally:
        receiver.status = 410
    # Delivered rows leave the outbox page; the job's page says how it went.
    def gone():
        page.reload()
        return page.locator(f'tr[data-row="{row_id}"]').count() == 0

    wait_until("the delivered row to leave the outbox page", gone)
    page.goto("/job?name=db-dump")
    delivery = page.locator(".deliveries li").first
    expect(delivery).to_contain_text("hook: delivered")
    expect(delivery.locator(".attempts li")).to_have_count(2)


def test_a_read_only_login_sees_no_forms_to_act(browser, server):
    server.fail_once("backup")
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP)
    page = ctx.new_page()
    login(page, "bob")
    expect(page.locator("header .who")).to_contain_text("bob (read-only)")
    for path in ["/", "/job?name=backup", "/silences", "/outbox", "/channels"]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        assert page.locator("form[action^='/actions/']").count() == 0, path
        # No button but the jobs filter's.
        buttons = page.locator("main button")
        assert buttons.count() == buttons.filter(has_text="Filter").count(), path
    # The job's page still shows everything there is to see.
    page.goto("/job?name=backup")
    expect(page.locator("section[aria-labelledby=runs] tbody tr").first).to_contain_text("failed")
    ctx.close()


def accessible_controls(page: Page) -> list[dict]:
    """Every form control in Chromium's accessibility tree of the page: its role, its name,
    and where the name came from (a label, the contents, an aria attribute, a placeholder…)."""
    cdp = page.context.new_cdp_session(page)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    cdp.detach()
    roles = {"textbox", "searchbox", "combobox", "listbox", "button", "checkbox", "radio",
             "spinbutton", "slider", "switch"}
    out = []
    for n in nodes:
        role = n.get("role", {}).get("value")
        if n.get("ignored") or role not in roles:
            continue
        name = n.get("name") or {}
        used = [s for s in name.get("sources", []) if "value" in s and not s.get("superseded")]
        source = None
        if used:
            source = used[0].get("nativeSource") or used[0].get("attribute") or used[0]["type"]
        out.append({"role": role, "name": name.get("value", "").strip(), "from": source})
    return out


def test_the_keyboard_and_the_labels(page, server):
    server.fail_once("backup")
    page.goto("/")
    # The first Tab reaches the skip link, which shows itself and leads to the content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0, f"the focused skip link is off screen: {box}"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # From the content, Tab goes through the filter form in order, and Enter filters.
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("(e => e.name || e.textContent)(document.activeElement)"))
        if order[-1] == "Filter":
            break
    assert order == ["q", "state", "tag", "Filter"], order
    page.get_by_label("Search").focus()
    page.keyboard.type("reports")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/\?q=reports"))
    expect(page.locator("#live tbody tr")).to_have_count(1)
    expect(job_row(page, "reports")).to_be_visible()
    # Every control on every page has a name people and screen readers can tell it by.
    for path in ["/", "/job?name=backup", "/silences", "/outbox", "/channels"]:
        page.goto(path)
        controls = accessible_controls(page)
        assert controls, path
        # A placeholder is not a label: it is gone once something is typed.
        unnamed = [c for c in controls if not c["name"] or c["from"] == "placeholder"]
        assert not unnamed, f"{path}: controls without a label: {unnamed}"
    page.goto("/")
    expect(page.get_by_label("Search", exact=True)).to_be_editable()
    # A <select> inside its <label>: Playwright's get_by_label reads the options into the
    # label's text; its accessible name (what a screen reader says) is the label's own words.
    for label in ["State", "Tag"]:
        expect(page.get_by_role("combobox", name=label, exact=True)).to_be_enabled()
    page.goto("/job?name=backup")
    for label in ["For", "Until (UTC)", "Reason"]:
        expect(page.get_by_label(label, exact=True)).to_be_editable()
    page.goto("/silences")
    for label in ["Tag", "For", "Reason"]:
        expect(page.get_by_label(label, exact=True)).to_be_editable()


def test_a_live_page_says_so_when_the_session_ends(browser, server, ann_state):
    # A context of its own: the live part's 401 is logged as a console error here.
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP, storage_state=ann_state)
    page = ctx.new_page()
    page.goto("/")
    expect(page.locator("#live tbody tr").first).to_be_visible()
    page.context.clear_cookies()
    expect(page.get_by_role("alert")).to_have_text(
        "Your session has ended: reload the page to log in again.", timeout=LIVE_MS
    )
    # The table stays as it was, and a reload asks for the login.
    expect(page.locator("#live tbody tr").first).to_be_visible()
    page.reload()
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    ctx.close()


def test_no_page_breaks_wcag_aa_as_axe_core_checks_it(browser, server, ann_state):
    """axe-core (the copy axe-playwright-python ships) on every page: contrast, labels,
    names, landmarks, headings. Its script is run by Playwright, not by the page, so the
    pages' Content-Security-Policy does not stop it."""
    server.fail_once("backup")
    axe = Axe()
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
    options = {"resultTypes": ["violations"], "runOnly": {"type": "tag", "values": tags}}
    found = []
    for viewport, state, paths in [
        (DESKTOP, None, ["/login"]),
        (DESKTOP, ann_state, ["/", "/job?name=backup", "/silences", "/outbox", "/channels"]),
        (PHONE, ann_state, ["/", "/job?name=backup"]),
    ]:
        ctx = browser.new_context(base_url=server.base, viewport=viewport, storage_state=state)
        page = ctx.new_page()
        for path in paths:
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()
            for v in axe.run(page, options=options).response["violations"]:
                found.append(f"{path} ({viewport['width']}px): {v['id']}: {v['help']}: "
                             f"{[n['target'] for n in v['nodes']][:3]}")
        ctx.close()
    assert not found, "\n".join(found)


def test_screenshots_of_every_page(browser, server, ann_state, shots):
    server.fail_once("backup")
    ctx = browser.new_context(base_url=server.base, viewport=DESKTOP, storage_state=ann_state)
    page = ctx.new_page()
    for name, path, heading in [
        ("jobs", "/", "Jobs"),
        ("job", "/job?name=backup", "Nightly backup"),
        ("silences", "/silences", "Silences"),
        ("outbox", "/outbox", "Outbox"),
        ("channels", "/channels", "Channels"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        page.screenshot(path=shots / f"{name}.png")
    ctx.close()
    phone = browser.new_context(
        base_url=server.base,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        storage_state=ann_state,
    )
    page = phone.new_page()
    page.goto("/")
    expect(job_row(page, "backup")).to_be_visible()
    # Nothing is wider than the phone's screen but the tables, which scroll on their own.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=shots / "jobs-phone.png")
    phone.close()
    for name in ["login", "jobs", "job", "silences", "outbox", "channels", "jobs-phone"]:
        f = shots / f"{name}.png"
        if name == "login" and not f.exists():
            continue  # made by test_logging_in_through_the_form, when it runs
        assert f.stat().st_size > 5_000, f"{f}: too small to show the page"
