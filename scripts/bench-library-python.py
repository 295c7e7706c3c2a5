"""The Python yardsticks for the Rust library's benchmarks (issue 5), measured in the same run.

1. A status-file decorator in the style belfry's rules come from: each call runs the function,
   reads the job's previous status file, decides (first run, change, repeat after a silence,
   an hourly "still OK"), writes the status file, and posts to a webhook in a new thread when
   it notifies. Its per-call cost for a function that returns normally (no post: the job is OK
   and inside its heartbeat window), against the same function bare.
2. The `http-logging` package's AsyncHttpHandler (pip install http-logging): the cost of one
   `logger.error(...)` on the calling thread, against the same logger with a NullHandler.

Usage: python3 bench-library-python.py http://127.0.0.1:PORT/path
(written for this repository; the decorator is our own code in that style, not a copy)
"""

import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

URL = sys.argv[1]
CALLS = int(os.environ.get("PY_CALLS", "2000"))
BATCHES = 5


def post(payload):
    req = urllib.request.Request(URL, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5).read()
    except OSError:
        pass


def watched(status_dir, silent_seconds=1.0, ok_every=0.99 * 3600):
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
                    age = now - prev["notified"]
                    notify = age >= (silent_seconds if status == "ERROR" else ok_every)
                notified = now if notify else prev["notified"]
                with open(path, "w") as f:
                    json.dump({"status": status, "time": now, "notified": notified,
                               "error": repr(error) if error else None}, f)
                if notify:
                    threading.Thread(target=post, args=({"job": func.__name__,
                                                         "status": status},)).start()
        return inner
    return wrap


def per_call_ns(fn):
    """Median over BATCHES batches of CALLS calls, in ns per call."""
    results = []
    for _ in range(BATCHES):
        t = time.perf_counter_ns()
        for i in range(CALLS):
            fn(i)
        results.append((time.perf_counter_ns() - t) / CALLS)
    return statistics.median(results)


def main():
    status_dir = tempfile.mkdtemp(prefix="belfry-yardstick-")

    def bare(x):
        return x * 3

    decorated = watched(status_dir)(bare)
    decorated(0)  # the first run notifies (one post); the measured calls do not
    bare_ns = per_call_ns(bare)
    deco_ns = per_call_ns(decorated)
    print(f"decorator: bare {bare_ns:.0f} ns/call, decorated {deco_ns:.0f} ns/call, "
          f"added {deco_ns - bare_ns:.0f} ns/call")

    try:
        from http_logging import ConfigLog, HttpHost
        from http_logging.handler import AsyncHttpHandler
        from http_logging.secondary_classes import HttpSecurity
    except Exception as e:  # noqa: BLE001 - 2.0 fails to import on Python 3.11+ (a dataclass)
        print(f"http-logging: cannot be imported here ({e!r}); skipped (it needs Python 3.10)")
        return
    host, _, rest = URL.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    handler = AsyncHttpHandler(
        http_host=HttpHost(name=name, port=int(port), path="/" + rest),
        config=ConfigLog(database_path=os.path.join(status_dir, "cache.db"),
                         security=HttpSecurity(ssl_enable=False)),
    )
    null_logger = logging.getLogger("yardstick.null")
    null_logger.addHandler(logging.NullHandler())
    null_logger.propagate = False
    http_logger = logging.getLogger("yardstick.http")
    http_logger.addHandler(handler)
    http_logger.propagate = False
    null_ns = per_call_ns(lambda i: null_logger.error("cache unreachable %d", i))
    http_ns = per_call_ns(lambda i: http_logger.error("cache unreachable %d", i))
    print(f"http-logging AsyncHttpHandler: NullHandler {null_ns:.0f} ns/call, "
          f"AsyncHttpHandler {http_ns:.0f} ns/call, added {http_ns - null_ns:.0f} ns/call")
    handler.flush()
    handler.close()


main()
