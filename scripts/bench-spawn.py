#!/usr/bin/env python3
"""How long `belfry run -- true` takes from its exec to the spawn of the job, for two builds,
interleaved: the part of the start-up that the job waits for.

    scripts/bench-spawn.py path/to/belfry-A path/to/belfry-B [RUNS]     # RUNS=300 by default

Each run goes under `strace -f --seccomp-bpf -ttt`, tracing only execve and the clone calls
(the other system calls run untraced, at full speed); the time is the job's clone (a vfork)
minus belfry's execve. Both builds pay the same tracing. Prints the median and quartiles.
"""
import os
import re
import statistics as st
import subprocess
import sys
import tempfile

builds = {"A": sys.argv[1], "B": sys.argv[2]}
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 300
work = tempfile.mkdtemp()
trace = os.path.join(work, "trace.txt")
res = {k: [] for k in builds}
for i in range(runs):
    order = list(builds.items()) if i % 2 else list(reversed(builds.items()))
    for k, exe in order:
        env = dict(os.environ, BELFRY_HOME=os.path.join(work, k), BELFRY_BACKGROUND="0")
        env.pop("BELFRY_CONFIG", None)
        env.pop("BELFRY_URLS", None)
        subprocess.run(
            ["strace", "-f", "--seccomp-bpf", "-ttt", "-e", "trace=execve,clone,clone3,vfork",
             "-o", trace, exe, "run", "-q", "--name", "b", "--", "true"],
            env=env, capture_output=True, check=True)
        lines = open(trace).read().splitlines()
        t_exec = float(lines[0].split()[1])
        spawn = next(float(l.split()[1]) for l in lines
                     if re.search(r"clone3\(.*CLONE_VM\|CLONE_VFORK|vfork\(", l))
        if i > 0:  # the first run of each creates its store
            res[k].append((spawn - t_exec) * 1e3)
for k, v in res.items():
    q = st.quantiles(v, n=4)
    print(f"{k} ({builds[k]}): exec to the job's spawn, median {st.median(v):.3f} ms "
          f"(p25 {q[0]:.3f}, p75 {q[2]:.3f}), n={len(v)}")
subprocess.run(["rm", "-rf", work])
