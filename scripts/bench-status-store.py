#!/usr/bin/env python3
"""Fills a belfry store for scripts/bench-status.sh: JOBS jobs, RUNS_PER_JOB finished runs each,
one notification each (with a delivered outbox row and its attempt), 1 % of the jobs failing
(two notifications) and 1 % with a run still going. The store must exist (a belfry command
creates it); the rows are written with SQL, as belfry writes them, in one transaction.

    scripts/bench-status-store.py PATH/belfry.db [JOBS] [RUNS_PER_JOB]

Running runs belong to another host, so that no `belfry status` records them as crashed."""
import sqlite3
import sys
import time

path = sys.argv[1]
jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
per_job = int(sys.argv[3]) if len(sys.argv) > 3 else 10
now = int(time.time() * 1000)
hour = 3_600_000

db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA synchronous = OFF")
db.execute("BEGIN")
# i: the job's number; k: its run's number (k = per_job is the newest).
db.execute(
    f"""
    WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs})
    INSERT INTO jobs (name, state, since_ms, consecutive_problems, problem_notified,
                      last_notified_ms, last_run_id, last_run_state, last_run_started_ms,
                      last_run_ended_ms, last_duration_ms, last_exit_code, created_ms, updated_ms)
    SELECT printf('job-%06d', i),
           CASE WHEN i % 100 = 7 THEN 'failed' ELSE 'ok' END,
           {now} - {hour} * ({per_job} + 1), CASE WHEN i % 100 = 7 THEN 2 ELSE 0 END,
           i % 100 = 7, {now} - {hour}, printf('r-%06d-%d', i, {per_job}),
           CASE WHEN i % 100 = 7 THEN 'failed' ELSE 'ok' END,
           {now} - {hour}, {now} - {hour} + 1500, 1500,
           CASE WHEN i % 100 = 7 THEN 1 ELSE 0 END, {now} - 400 * {hour}, {now} - {hour}
    FROM seq
    """
)
db.execute(
    f"""
    WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs}),
         k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < {per_job})
    INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms, exit_code, host,
                      reason, reason_text, notified, output_bytes)
    SELECT printf('r-%06d-%d', i, k), printf('job-%06d', i),
           CASE WHEN i % 100 = 7 AND k >= {per_job} - 1 THEN 'failed' ELSE 'ok' END,
           {now} - {hour} * ({per_job} + 1 - k), {now} - {hour} * ({per_job} + 1 - k) + 1500,
           1500, CASE WHEN i % 100 = 7 AND k >= {per_job} - 1 THEN 1 ELSE 0 END,
           'bench-elsewhere', 'healthy', 'healthy', 0, 120
    FROM seq, k
    """
)
db.execute(
    f"""
    WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs})
    INSERT INTO runs (id, job, state, started_ms, host, pid)
    SELECT printf('r-%06d-running', i), printf('job-%06d', i), 'running', {now} - 60000,
           'bench-elsewhere', 1
    FROM seq WHERE i % 100 = 3
    """
)
for n, cond in ((1, "1"), (2, "i % 100 = 7")):
    db.execute(
        f"""
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs})
        INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms, payload)
        SELECT printf('n-%06d-{n}', i), printf('job-%06d', i), printf('r-%06d-%d', i, {per_job}),
               CASE WHEN i % 100 = 7 THEN 'problem' ELSE 'ok' END,
               CASE WHEN i % 100 = 7 THEN 'failed' ELSE 'ok' END,
               CASE WHEN {n} = 1 THEN 'first_run' ELSE 'repeated' END,
               {now} - {hour} * (3 - {n}), x'00'
        FROM seq WHERE {cond}
        """
    )
db.execute(
    f"""
    INSERT INTO outbox (notification_id, job, channel, idempotency_key, status, attempts,
                        created_ms, next_attempt_ms, deadline_ms, delivered_ms)
    SELECT id, job, 'hook', id || ':hook', 'delivered', 1, created_ms, created_ms,
           created_ms + 24 * {hour}, created_ms + 5
    FROM notifications
    """
)
db.execute(
    """
    INSERT INTO attempts (outbox_id, at_ms, outcome, elapsed_ms)
    SELECT id, delivered_ms, 'delivered', 5 FROM outbox
    """
)
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
          for t in ("jobs", "runs", "notifications", "outbox", "attempts")}
print("store:", ", ".join(f"{n:,} {t}" for t, n in counts.items()))
