//! How long reading a channel URL takes in a fresh process (patterns compiled on first use)
//! and again. Used by `scripts/bench-channels.sh`, one process per URL.
//!
//! `cargo run --release --example parse_cost -- URL`
#![allow(clippy::print_stdout)]

use std::time::Instant;

fn main() {
    for url in std::env::args().skip(1) {
        let t = Instant::now();
        let ok = belfry_channels::parse(&url).is_ok();
        let cold = t.elapsed();
        let t = Instant::now();
        let _ = belfry_channels::parse(&url);
        let warm = t.elapsed();
        let shown = belfry_channels::redact_url(&url);
        println!(
            "{shown}: first {:.0} µs, again {:.0} µs{}",
            cold.as_secs_f64() * 1e6,
            warm.as_secs_f64() * 1e6,
            if ok { "" } else { " (invalid)" }
        );
    }
}
