//! The store's work for one alerting run, as the store grows: a job that fails every run, each
//! failure alerting one channel, each alert delivered (claimed, then recorded as delivered),
//! in a store that already holds 0, 100,000 or 1,000,000 rows of other jobs (runs,
//! notifications, outbox rows and attempts, as `scripts/bench-status-store.py` lays them out).
//! The job itself runs long enough for pruning to be part of the measure: its own rows grow to
//! the retention's bound and stay there.
//!
//!     cargo bench -p belfry-store --bench per_run
//!
//! `BELFRY_BENCH_RUNS` (default 3000) alerting runs are timed after 300 untimed ones;
//! `BELFRY_BENCH_SIZES` (default `0,100000,1000000`) picks the store sizes. Prints the median
//! and 90th percentile of the wall time per run (each alert's commit is synced to disk, so
//! these include an fsync and its noise) and the CPU time per run (the thread's own, from
//! `/proc/thread-self/schedstat`, averaged over the timed runs): the SQL's share, which is
//! what would grow with the store.

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Attempt, Claim, Limits, RunEnd, Store};

fn main() {
    let runs: usize = std::env::var("BELFRY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let sizes: Vec<u64> = std::env::var("BELFRY_BENCH_SIZES")
        .unwrap_or_else(|_| "0,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are numbers of rows"))
        .collect();
    println!("alerting runs timed: {runs} (after 300 untimed), one channel, each delivered");
    println!(
        "| rows of other jobs | rows after | median per run | p90 | CPU per run | \
         the job's notifications kept |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for &size in &sizes {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("belfry.db");
        drop(Store::open(&path).expect("a new store"));
        fill(&path, size);
        let mut store = Store::open(&path).expect("the filled store");
        let policy = Policy {
            repeat_failures_after: Duration::ZERO,
            ..Policy::default()
        };
        let t0 = Timestamp::now();
        let mut times = Vec::with_capacity(runs);
        let mut cpu_start = 0;
        for i in 0..300 + runs {
            let at = t0.add_millis(i as i64 * 1000);
            if i == 300 {
                cpu_start = thread_cpu_ns();
            }
            let started = Instant::now();
            alerting_run(&mut store, &policy, i, at);
            if i >= 300 {
                times.push(started.elapsed());
            }
        }
        let cpu = (thread_cpu_ns() - cpu_start) as f64 / runs as f64;
        times.sort();
        let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        let conn = rusqlite::Connection::open(&path).expect("the store");
        let total: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM runs) + (SELECT COUNT(*) FROM notifications)
                      + (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM attempts)
                      + (SELECT COUNT(*) FROM jobs)",
                [],
                |r| r.get(0),
            )
            .expect("counts");
        let own: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM notifications WHERE job = 'loud'",
                [],
                |r| r.get(0),
            )
            .expect("counts");
        println!(
            "| {size} | {total} | {:.0} µs | {:.0} µs | {:.0} µs | {own} |",
            q(0.5).as_secs_f64() * 1e6,
            q(0.9).as_secs_f64() * 1e6,
            cpu / 1e3,
        );
    }
}

/// The CPU time this thread has used, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux)")
}

/// One failed run of `loud` that alerts channel `hook`, then its delivery.
fn alerting_run(store: &mut Store, policy: &Policy, i: usize, at: Timestamp) {
    let ev = Event {
        job: "loud".into(),
        state: State::Failed,
        at,
        details: Details {
            run_id: Some(format!("loud-{i}")),
            started_at: Some(at.add_millis(-100)),
            exit_code: Some(1),
            duration: Some(Duration::from_millis(100)),
            ..Details::default()
        },
    };
    let rec = store
        .finish_run(
            &RunEnd {
                event: &ev,
                output: Some("copying\ndisk full\n"),
                output_bytes: 18,
            },
            policy,
            |_, _| vec!["hook".to_owned()],
            &Limits::default(),
        )
        .expect("a recorded run");
    assert_eq!(rec.outbox_ids.len(), 1, "every run alerts");
    let claimed = store
        .claim_due(
            at,
            &Claim {
                owner: "bench",
                lease: Duration::from_secs(30),
                ids: Some(&rec.outbox_ids),
                limit: 1,
                digest_window: Duration::ZERO,
                window_exempt: &[],
                in_order: &[],
            },
        )
        .expect("a claim");
    for c in claimed {
        store
            .record_attempt(c.id, &Attempt::Delivered, at, Duration::from_millis(1))
            .expect("a recorded delivery");
    }
}

/// Adds about `rows` rows of other jobs: per job, 7 finished runs, a notification, its
/// delivered outbox row and that row's attempt (10 rows with the job's own).
fn fill(path: &std::path::Path, rows: u64) {
    let jobs = rows / 10;
    if jobs == 0 {
        return;
    }
    let now = Timestamp::now().as_millis() - 86_400_000;
    let conn = rusqlite::Connection::open(path).expect("the store");
    conn.execute_batch(&format!(
        "PRAGMA synchronous = OFF;
         BEGIN;
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs})
         INSERT INTO jobs (name, state, since_ms, created_ms, updated_ms, last_run_id,
                           last_run_state, last_run_started_ms, last_run_ended_ms)
         SELECT printf('job-%07d', i), 'ok', {now}, {now}, {now}, printf('r-%07d-7', i), 'ok',
                {now}, {now} FROM seq;
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs}),
              k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < 7)
         INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms, exit_code,
                           reason, notified)
         SELECT printf('r-%07d-%d', i, k), printf('job-%07d', i), 'ok', {now} + k * 1000,
                {now} + k * 1000 + 5, 5, 0, 'healthy', 0 FROM seq, k;
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {jobs})
         INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms, payload)
         SELECT printf('n-%07d', i), printf('job-%07d', i), printf('r-%07d-1', i), 'ok', 'ok',
                'first_run', {now} + 1000, x'00' FROM seq;
         INSERT INTO outbox (notification_id, job, channel, idempotency_key, status, attempts,
                             created_ms, next_attempt_ms, deadline_ms, delivered_ms)
         SELECT id, job, 'hook', id || ':hook', 'delivered', 1, created_ms, created_ms,
                created_ms + 86400000, created_ms + 5 FROM notifications;
         INSERT INTO attempts (outbox_id, at_ms, outcome, elapsed_ms)
         SELECT id, delivered_ms, 'delivered', 5 FROM outbox;
         COMMIT;
         PRAGMA wal_checkpoint(TRUNCATE);"
    ))
    .expect("filling the store");
}
