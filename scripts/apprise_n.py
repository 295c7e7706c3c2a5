#!/usr/bin/env python3
"""Sends N notifications through Apprise's Python API, in one process, to one URL.

Usage: apprise_n.py URL N. Prints the seconds the N sends took (after import and setup).
The yardstick of benches/outbox_10k.rs; needs `pip install apprise`.
"""
import sys
import time

import apprise

url, n = sys.argv[1], int(sys.argv[2])
a = apprise.Apprise()
if not a.add(url):
    sys.exit(f"apprise refused the URL {url}")
t = time.perf_counter()
for i in range(n):
    a.notify(title=f"job-{i}: Failed", body="exit code 1; first run of this job")
print(f"{time.perf_counter() - t:.3f}")
