#!/usr/bin/env python3
"""Records how it was run, for the command channel's tests.

  record_argv.py OUT.json ARG...

Writes {"argv": [ARG...], "stdin": "...", "env": {BELFRY_*...}} to OUT.json (atomically), then
exits 0.
"""

import json
import os
import sys

out = sys.argv[1]
record = {
    "argv": sys.argv[2:],
    "stdin": sys.stdin.read(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("BELFRY_")},
}
with open(out + ".tmp", "w") as f:
    json.dump(record, f)
os.rename(out + ".tmp", out)
