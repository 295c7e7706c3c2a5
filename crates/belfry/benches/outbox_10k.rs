//! Issue 3's yardstick: 10,000 notifications through the outbox to a loopback HTTP receiver,
//! every one recorded durably, against Apprise sending the same 10,000 to the same receiver.
//!
//! `cargo bench -p belfry --bench outbox_10k` (Apprise: `pip install apprise`; skipped when
//! missing). Two belfry figures:
//! - backlog: 10,000 rows already waiting (an outage's end), drained by one `deliver`:
//!   deliveries per second;
//! - live: a producer records notifications as fast as the store takes them while a deliverer
//!   drains: enqueue→delivery latency, p50 and p99.

#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use belfry::Config;
use belfry::core::{Details, Event, Policy, State, Timestamp};
use belfry_store::Store;
use belfry_testkit::Receiver;

/// How many notifications: 10,000, or `$BELFRY_BENCH_N` (for profiling runs).
fn n() -> usize {
    std::env::var("BELFRY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Whether to run `part` (`backlog`, `live`, `apprise`): all, or those in `$BELFRY_BENCH_PARTS`.
fn wanted(part: &str) -> bool {
    std::env::var("BELFRY_BENCH_PARTS").map_or(true, |v| v.split(',').any(|p| p == part))
}

fn config(url: &str) -> Config {
    Config::parse(
        &format!("[delivery]\ndigest_window = \"0s\"\n[channels.hook]\nurl = \"{url}\"\n"),
        "bench",
    )
    .unwrap()
}

/// Records the first run of `job`: one notification for every channel.
fn enqueue(store: &mut Store, job: &str) {
    let ev = Event {
        job: job.to_owned(),
        state: State::Failed,
        at: Timestamp::now(),
        details: Details {
            exit_code: Some(1),
            ..Details::default()
        },
    };
    let rec = store
        .record_event(
            &ev,
            &Policy::default(),
            |_, _| vec!["hook".to_owned()],
            &belfry_store::Limits::default(),
        )
        .unwrap();
    assert_eq!(rec.outbox_ids.len(), 1);
}

fn delivered(store: &Store) -> u64 {
    store.outbox_counts().unwrap().delivered
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn backlog(dir: &Path, rx: &Receiver, cfg: &Config) -> f64 {
    let n = n();
    let mut store = Store::open(dir.join("backlog.db")).unwrap();
    let t = Instant::now();
    for i in 0..n {
        enqueue(&mut store, &format!("backlog-{i}"));
    }
    let enqueue_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "backlog: {n} enqueued, delivering (pid {})",
        std::process::id()
    );
    let before = rx.requests().len();
    let t = Instant::now();
    while delivered(&store) < n as u64 {
        belfry::internal::deliver(cfg, &mut store, None, Duration::from_secs(60)).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rx.requests().len() - before, n);
    let rate = n as f64 / secs;
    println!(
        "belfry backlog: enqueued {n} in {enqueue_secs:.2}s ({:.0}/s, each fsynced); \
         delivered in {secs:.2}s = {rate:.0} deliveries/s",
        n as f64 / enqueue_secs
    );
    rate
}

fn live(dir: &Path, cfg: &Config) {
    let n = n();
    let path = dir.join("live.db");
    let mut store = Store::open(&path).unwrap();
    let producer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut s = Store::open(&path).unwrap();
            let t = Instant::now();
            for i in 0..n {
                enqueue(&mut s, &format!("live-{i}"));
            }
            t.elapsed()
        })
    };
    let t = Instant::now();
    while delivered(&store) < n as u64 {
        belfry::internal::deliver(cfg, &mut store, None, Duration::from_secs(60)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let produced = producer.join().unwrap();
    let total = t.elapsed();
    let mut lat: Vec<i64> = store
        .outbox_rows(true, n as u32)
        .unwrap()
        .iter()
        .map(|r| r.delivered.unwrap().as_millis() - r.created.as_millis())
        .collect();
    lat.sort_unstable();
    println!(
        "belfry live: {n} recorded in {:.2}s while delivering, all delivered after {:.2}s; \
         enqueue→delivery p50 {} ms, p99 {} ms, max {} ms",
        produced.as_secs_f64(),
        total.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
}

fn apprise(rx: &Receiver) -> Option<f64> {
    let n = n();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/apprise_n.py");
    let before = rx.requests().len();
    let out = Command::new("python3")
        .args([
            script,
            &rx.url("/x").replace("http://", "json://"),
            &n.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        println!(
            "apprise: skipped ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let got = rx.requests().len() - before;
    let rate = got as f64 / secs;
    println!("apprise: {got} of {n} sent in {secs:.2}s = {rate:.0} deliveries/s");
    Some(rate)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: run either way.
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let ours = wanted("backlog").then(|| backlog(dir.path(), &rx, &cfg));
    if wanted("live") {
        live(dir.path(), &cfg);
    }
    let theirs = if wanted("apprise") {
        apprise(&rx)
    } else {
        None
    };
    if let (Some(ours), Some(theirs)) = (ours, theirs) {
        println!(
            "ratio: belfry delivers {:.1}× Apprise's rate",
            ours / theirs
        );
    }
}
