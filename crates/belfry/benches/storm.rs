//! An error storm: 1,000,000 ERROR events from a tight loop, with and without belfry's layer,
//! each in a child process of its own (so that peak memory is the variant's own), in rounds
//! that interleave the variants (the machine is shared and noisy: compare within a round).
//!
//! ```sh
//! cargo bench -p belfry --bench storm            # 5 rounds
//! STORM_ROUNDS=9 cargo bench -p belfry --bench storm
//! ```
//!
//! Variants: `registry` (a subscriber with no output: tracing skips each event at its call
//! site), `registry+count` (a layer that only counts events: the least any layer that sees
//! every event costs), `fmt` (the usual fmt layer formatting every event, written to a sink
//! so that no disk is measured), and `registry` and `fmt` with `belfry::layer()` added, delivering to a JSON webhook on a loopback receiver run by
//! this parent process. For the belfry variants it checks what the issue asks: the
//! receiver gets a handful of digest messages whose counts add up to exactly 1,000,000, and
//! nothing is lost. It prints the loop time, the flush time (the guard's, at exit), the peak
//! RSS (`VmHWM`), and per-round ratios.

#![allow(clippy::print_stdout)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use belfry::Belfry;
use belfry_testkit::Receiver;
use tracing_subscriber::prelude::*;

const EVENTS: u64 = 1_000_000;
const VARIANTS: [&str; 5] = [
    "registry",
    "registry+count",
    "registry+belfry",
    "fmt",
    "fmt+belfry",
];

fn main() {
    if let Ok(variant) = std::env::var("STORM_VARIANT") {
        child(&variant);
        return;
    }
    let rounds: usize = std::env::var("STORM_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); VARIANTS.len()];
    let mut failures = Vec::new();
    for round in 0..rounds {
        for (i, variant) in VARIANTS.iter().enumerate() {
            let rx = Receiver::start(vec![]);
            let out = Command::new(&exe)
                .env("STORM_VARIANT", variant)
                .env("STORM_URL", format!("json://{}/storm", rx.addr()))
                .output()
                .expect("run a variant");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(mut run) = Run::parse(&stdout) else {
                panic!(
                    "{variant}: no result\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            if variant.ends_with("+belfry") {
                let posts: Vec<serde_json::Value> =
                    rx.requests().iter().map(|r| r.json()).collect();
                run.messages = posts.len();
                run.counted = posts
                    .iter()
                    .map(|p| p["digest"]["count"].as_u64().unwrap_or(1))
                    .sum();
                if run.counted != EVENTS || run.lost != 0 || !run.complete {
                    failures.push(format!(
                        "round {round} {variant}: counts add up to {} (lost {}, complete {})",
                        run.counted, run.lost, run.complete
                    ));
                }
            }
            println!("round {round} {variant:16} {run}");
            results[i].push(run);
        }
    }
    println!();
    println!(
        "{:16} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "variant", "loop ms", "ns/event", "flush ms", "peak MiB", "messages"
    );
    for (i, variant) in VARIANTS.iter().enumerate() {
        let r = &results[i];
        let loop_ms = median(r.iter().map(|x| x.loop_time.as_secs_f64() * 1e3).collect());
        let flush_ms = median(r.iter().map(|x| x.flush.as_secs_f64() * 1e3).collect());
        let peak = r.iter().map(|x| x.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let msgs = r.iter().map(|x| x.messages).max().unwrap_or(0);
        println!(
            "{variant:16} {loop_ms:>9.1} {:>9.0} {flush_ms:>9.1} {peak:>9.1} {msgs:>9}",
            loop_ms * 1e6 / EVENTS as f64
        );
    }
    for (base, with) in [(0, 1), (0, 2), (1, 2), (3, 4)] {
        let ratios: Vec<f64> = results[base]
            .iter()
            .zip(&results[with])
            .map(|(b, w)| w.loop_time.as_secs_f64() / b.loop_time.as_secs_f64())
            .collect();
        println!(
            "loop ratio {} / {}: median {:.2} (rounds: {})",
            VARIANTS[with],
            VARIANTS[base],
            median(ratios.clone()),
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !failures.is_empty() {
        panic!("the counts do not add up:\n{}", failures.join("\n"));
    }
}

#[derive(Clone, Debug, Default)]
struct Run {
    loop_time: Duration,
    flush: Duration,
    peak_kib: u64,
    lost: u64,
    complete: bool,
    messages: usize,
    counted: u64,
}

impl Run {
    fn parse(line: &str) -> Option<Run> {
        let line = line.lines().find(|l| l.starts_with("result "))?;
        let mut r = Run::default();
        for kv in line.split_whitespace().skip(1) {
            let (k, v) = kv.split_once('=')?;
            match k {
                "loop_ns" => r.loop_time = Duration::from_nanos(v.parse().ok()?),
                "flush_ns" => r.flush = Duration::from_nanos(v.parse().ok()?),
                "peak_kib" => r.peak_kib = v.parse().ok()?,
                "lost" => r.lost = v.parse().ok()?,
                "complete" => r.complete = v == "true",
                _ => {}
            }
        }
        Some(r)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loop {:8.1} ms  flush {:7.1} ms  peak {:6.1} MiB  messages {:3}  counted {}",
            self.loop_time.as_secs_f64() * 1e3,
            self.flush.as_secs_f64() * 1e3,
            self.peak_kib as f64 / 1024.0,
            self.messages,
            self.counted
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A layer that counts the events it sees and does nothing else.
struct Count(AtomicU64);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn child(variant: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let guard = variant.ends_with("+belfry").then(|| {
        Belfry::builder()
            .channel("hook", std::env::var("STORM_URL").expect("STORM_URL"))
            .home(dir.path())
            .quiet(true)
            .build()
            .expect("a client")
    });
    let fmt = variant.starts_with("fmt");
    let belfry_layer = guard.as_ref().map(|g| g.client().layer());
    let fmt_layer = fmt.then(|| tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    let count_layer = (variant == "registry+count").then(|| Count(AtomicU64::new(0)));
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(count_layer)
        .with(belfry_layer)
        .init();

    let t = Instant::now();
    for i in 0..EVENTS {
        tracing::error!(attempt = i, "cache unreachable");
    }
    let loop_time = t.elapsed();
    let t = Instant::now();
    let (stats, report) = match guard {
        Some(g) => {
            let c = g.client().clone();
            let report = g.finish();
            (Some(c.stats()), Some(report))
        }
        None => (None, None),
    };
    let flush = t.elapsed();
    println!(
        "result loop_ns={} flush_ns={} peak_kib={} lost={} complete={}",
        loop_time.as_nanos(),
        flush.as_nanos(),
        peak_rss_kib(),
        stats.map_or(0, |s| s.lost),
        report.as_ref().is_none_or(belfry::FlushReport::is_complete),
    );
}
