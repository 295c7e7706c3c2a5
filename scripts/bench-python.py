"""The Python package's costs on the calling thread (issue 15, item 4), side by side in one
run with its peers, as ratios to belfry's:

- a call of a function under `@belfry.watch`, less the bare call, against a status-file
  decorator (our own code in the style belfry's rules come from, as in
  bench-library-python.py: it reads and writes a JSON status file per call and posts from a
  new thread when it notifies), for a call that returns and one that raises;
- one `logger.error(...)` through `belfry.Handler`, against the standard library's
  QueueHandler (its QueueListener draining to a NullHandler) and http-logging's
  AsyncHttpHandler (when it installs and imports), each less the same logger with a
  NullHandler.

Usage: python bench-python.py  (belfry installed; a receiver on loopback is started here)
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import belfry

CALLS = int(os.environ.get("PY_CALLS", "20000"))
BATCHES = 7


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def per_call_ns(fn, calls: int = CALLS) -> float:
    """The median over BATCHES batches of `calls` calls, in ns per call."""
    results = []
    for _ in range(BATCHES):
        t = time.perf_counter_ns()
        for i in range(calls):
            fn(i)
        results.append((time.perf_counter_ns() - t) / calls)
    return statistics.median(results)


def status_file_decorator(status_dir, url, silent_seconds=1.0, ok_every=0.99 * 3600):
    def post(payload):
        req = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except OSError:
            pass

    def wrap(func):
        path = os.path.join(status_dir, f"{func.__module__}.{func.__name__}.json")

        def inner(*args, **kwargs):
            error = None
            try:
                return func(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the decorator records every error
                error = e
                raise
            finally:
                now = time.time()
                status = "ERROR" if error else "OK"
                try:
                    with open(path) as f:
                        prev = json.load(f)
                except (OSError, ValueError):
                    prev = None
                if prev is None or prev["status"] != status:
                    notify = True
                else:
                    limit = silent_seconds if status == "ERROR" else ok_every
                    notify = now - prev["notified"] >= limit
                notified = now if notify else prev["notified"]
                with open(path, "w") as f:
                    json.dump({"status": status, "time": now, "notified": notified,
                               "error": repr(error) if error else None}, f)
                if notify:
                    threading.Thread(target=post, args=({"job": func.__name__, "status": status},)).start()

        return inner

    return wrap


def logger(name, handler):
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.propagate = False
    return log


def raising(f):
    def call(i):
        try:
            f(i)
        except ValueError:
            pass

    return call


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    work = tempfile.mkdtemp(prefix="belfry-bench-py-")
    belfry.init(urls=["json" + url[len("http"):]], home=os.path.join(work, "home"), quiet=True)

    def bare(x):
        return x * 3

    def failing(x):
        raise ValueError(x)

    watched = belfry.watch(name="bench")(bare)
    watched(0)
    status_ok = status_file_decorator(work, url)(bare)
    status_ok(0)  # the first run notifies; the measured calls do not
    bare_ns = per_call_ns(bare)
    watch_ns = per_call_ns(watched)
    status_ns = per_call_ns(status_ok, 2000)
    bare_fail_ns = per_call_ns(raising(failing), 5000)
    watch_fail_ns = per_call_ns(raising(belfry.watch(name="bench-fail")(failing)), 5000)
    status_fail = status_file_decorator(work, url, silent_seconds=3600)(failing)
    status_fail_ns = per_call_ns(raising(status_fail), 1000)

    null_log = logger("b.null", logging.NullHandler())
    null_ns = per_call_ns(lambda i: null_log.error("cache unreachable %d", i))
    bel_log = logger("b.belfry", belfry.Handler())
    bel_ns = per_call_ns(lambda i: bel_log.error("cache unreachable %d", i))
    q = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, logging.NullHandler())
    listener.start()
    q_log = logger("b.queue", logging.handlers.QueueHandler(q))
    q_ns = per_call_ns(lambda i: q_log.error("cache unreachable %d", i))
    listener.stop()

    rows = [
        ("decorated call that returns", "belfry.watch", watch_ns - bare_ns),
        ("decorated call that returns", "status-file decorator", status_ns - bare_ns),
        ("decorated call that raises", "belfry.watch", watch_fail_ns - bare_fail_ns),
        ("decorated call that raises", "status-file decorator", status_fail_ns - bare_fail_ns),
        ("logger.error", "belfry.Handler", bel_ns - null_ns),
        ("logger.error", "QueueHandler + QueueListener", q_ns - null_ns),
    ]
    note = ""
    try:
        from http_logging import ConfigLog, HttpHost
        from http_logging.handler import AsyncHttpHandler
        from http_logging.secondary_classes import HttpSecurity

        host, _, rest = url[len("http://"):].partition("/")
        name, _, port = host.partition(":")
        h = AsyncHttpHandler(
            http_host=HttpHost(name=name, port=int(port), path="/" + rest),
            config=ConfigLog(database_path=os.path.join(work, "cache.db"), security=HttpSecurity(ssl_enable=False)),
        )
        http_log = logger("b.http", h)
        http_ns = per_call_ns(lambda i: http_log.error("cache unreachable %d", i), 2000)
        rows.append(("logger.error", "http-logging AsyncHttpHandler", http_ns - null_ns))
        h.close()
    except Exception as e:  # noqa: BLE001 - whatever keeps it from running is said
        note = f"http-logging: not measured ({type(e).__name__}: {e})"

    print(f"Python {sys.version.split()[0]}; median of {BATCHES} batches per figure")
    print(f"baselines: bare call {bare_ns:.0f} ns, bare call that raises {bare_fail_ns:.0f} ns, "
          f"logger.error with a NullHandler {null_ns:.0f} ns")
    print(f"{'added on the calling thread':<30} {'by':<32} {'ns/call':>9} {'× belfry':>9}")
    base = {}
    for what, who, ns in rows:
        base.setdefault(what, ns)
        print(f"{what:<30} {who:<32} {ns:>9.0f} {ns / max(base[what], 1.0):>9.1f}")
    if note:
        print(note)
    complete, report = belfry.flush(10)
    print(f"belfry's exit flush: {report}")
    server.shutdown()


main()
