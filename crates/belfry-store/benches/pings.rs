//! The ping writer's work, without HTTP (issue 12, item 8): what `belfry serve`'s writer
//! thread does for each group of pings, here on one thread with nothing else in the way.
//!
//! A fresh SQLite store with `BELFRY_BENCH_JOBS` (1,000) jobs, each made by a first ping;
//! then groups of `BELFRY_BENCH_GROUP` (64) success pings, each to a job picked at random by
//! name, each group in one transaction as the server's writer commits them, with the server's
//! upkeep (the writer leaves checkpoints to another handle, which copies the log passively
//! every 64 groups here, between groups). First `BELFRY_BENCH_WARMUP` (16,000) groups untimed,
//! about 1,000 runs per job, which is what each job keeps by default: the store then has the
//! size it keeps, and every ping's run pushes an old one out. Then `BELFRY_BENCH_GROUPS`
//! (2,000) timed.
//!
//!     cargo bench -p belfry-store --bench pings
//!
//! Prints the thread's CPU per ping (from `/proc/thread-self/schedstat`: the measure least
//! moved by a busy machine; the checkpoints are not in it), the wall time per ping, and the
//! pages written to the log per ping.

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use belfry_core::{Policy, State, Timestamp};
use belfry_store::{JobRef, Limits, Ping, PingKind, RuleBook, Store};

/// Every job alerts nowhere, with the default policy, as `bench-pings.sh`'s server does.
struct Book;

impl RuleBook for Book {
    fn policy(&self, _job: &str) -> Policy {
        Policy::default()
    }
    fn route(&self, _job: &str, _state: &State, _recovered: bool) -> Vec<String> {
        vec!["none".to_owned()]
    }
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let jobs = env("BELFRY_BENCH_JOBS", 1000);
    let group = env("BELFRY_BENCH_GROUP", 64);
    let groups = env("BELFRY_BENCH_GROUPS", 2000);
    let warm_up = env("BELFRY_BENCH_WARMUP", 16_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("belfry.db");
    let mut store = Store::open(&path).expect("a new store");
    store.leave_upkeep().expect("upkeep left to another handle");
    // The server's sweeper: a second handle that copies the log passively; what it reports
    // (the log's frames when it ran, the log restarting after each full copy) counts the pages
    // the writer wrote.
    let sweeper = rusqlite::Connection::open(&path).expect("a second handle");
    let checkpoint = || -> i64 {
        sweeper
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("a passive checkpoint")
    };
    let names: Vec<String> = (1..=jobs).map(|i| format!("job-{i}")).collect();
    let mut at = Timestamp::now();
    let mut ping = |store: &mut Store, picks: &mut dyn Iterator<Item = usize>, create: bool| {
        at = at.add_millis(1);
        let batch: Vec<Ping<'_>> = picks
            .map(|i| Ping {
                job: JobRef::Name(&names[i]),
                kind: PingKind::Success,
                rid: None,
                at,
                body: b"",
                create,
                remote: Some("127.0.0.1"),
                method: "GET",
                user_agent: Some("wrk"),
            })
            .collect();
        store.record_pings(&batch, &Book).expect("pings recorded");
    };
    for start in (0..jobs).step_by(group) {
        ping(&mut store, &mut (start..(start + group).min(jobs)), true);
    }
    // A small generator (xorshift), so the picks need no crate and are the same every run.
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut pick = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % jobs as u64) as usize
    };
    let mut frames = 0;
    let mut cpu = 0;
    let mut wall = std::time::Duration::ZERO;
    for g in 0..warm_up + groups {
        let timed = g >= warm_up;
        if g % 64 == 0 {
            let log = checkpoint();
            if g > warm_up {
                frames += log;
            }
        }
        let (c0, t0) = (thread_cpu_ns(), Instant::now());
        ping(&mut store, &mut (0..group).map(|_| pick()), false);
        if timed {
            cpu += thread_cpu_ns() - c0;
            wall += t0.elapsed();
        }
    }
    let n = (groups * group) as f64;
    println!(
        "{jobs} jobs, {warm_up} groups then {groups} timed, of {group} success pings: CPU {:.1} µs a ping, wall \
         {:.1} µs a ping, {:.2} pages written to the log a ping",
        cpu as f64 / n / 1e3,
        wall.as_secs_f64() * 1e6 / n,
        frames as f64 / ((groups / 64 * 64) * group) as f64,
    );
    // What the store holds at the end, against what it keeps: 1,000 runs and 100 pings a job.
    let count = |table: &str| -> i64 {
        sweeper
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("a count")
    };
    println!(
        "rows at the end: {} runs, {} pings ({} and {} a job)",
        count("runs"),
        count("pings"),
        count("runs") / jobs as i64,
        count("pings") / jobs as i64
    );
}

/// The CPU time this thread has used, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux)")
}
