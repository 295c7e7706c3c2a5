//! What belfry costs the calling thread: a watched function returning `Ok` against the same
//! function bare, and an ERROR event through the tracing layer against the same event
//! without it.
//!
//! ```sh
//! cargo bench -p belfry --bench hot_path
//! ```
//!
//! Both run against a real client (a store in a temporary directory, the console channel);
//! the loops are tight, so the queue fills and the overflow's collapsing is measured too.

use std::hint::black_box;
use std::time::Duration;

use belfry::Belfry;
use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;

#[inline(never)]
fn bare(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

#[inline(never)]
#[belfry::watch(name = "bench.watched", ok_heartbeat_after = "off")]
fn watched(x: u64) -> Result<u64, std::io::Error> {
    Ok(x.wrapping_mul(3))
}

fn client() -> (tempfile::TempDir, belfry::Guard) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let guard = Belfry::builder()
        .home(dir.path())
        .quiet(true)
        .build()
        .expect("a client");
    (dir, guard)
}

fn watch(c: &mut Criterion) {
    let (_dir, guard) = client();
    let mut g = c.benchmark_group("watch");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("bare", |b| b.iter(|| bare(black_box(7))));
    guard.client().in_scope(|| {
        g.bench_function("watched", |b| b.iter(|| watched(black_box(7))));
    });
    g.finish();
    let stats = guard.client().stats();
    drop(guard);
    assert_eq!(stats.lost, 0, "{stats:?}");
}

fn layer(c: &mut Criterion) {
    let (_dir, guard) = client();
    let mut g = c.benchmark_group("error_event");
    g.measurement_time(Duration::from_secs(5));
    let emit = |i: u64| tracing::error!(job = "bench.layer", attempt = i, "cache unreachable");
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        g.bench_function("registry_only", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                emit(black_box(i));
            })
        });
    });
    let with_belfry = tracing_subscriber::registry().with(guard.client().layer());
    tracing::subscriber::with_default(with_belfry, || {
        g.bench_function("with_belfry", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                emit(black_box(i));
            })
        });
    });
    // Every event formatted, as a single error (not a storm) is.
    let each =
        tracing_subscriber::registry().with(guard.client().layer().with_storm_sampling(false));
    tracing::subscriber::with_default(each, || {
        g.bench_function("with_belfry_every_event_formatted", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                emit(black_box(i));
            })
        });
    });
    let fmt = || tracing_subscriber::fmt::layer().with_writer(std::io::sink);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(fmt()), || {
        g.bench_function("fmt_to_sink", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                emit(black_box(i));
            })
        });
    });
    let both = tracing_subscriber::registry()
        .with(fmt())
        .with(guard.client().layer());
    tracing::subscriber::with_default(both, || {
        g.bench_function("fmt_to_sink_with_belfry", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                emit(black_box(i));
            })
        });
    });
    g.finish();
    let stats = guard.client().stats();
    drop(guard);
    assert_eq!(stats.lost, 0, "{stats:?}");
}

criterion_group!(benches, watch, layer);
criterion_main!(benches);
