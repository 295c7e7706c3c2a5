//! A pipeline of watched functions: each call is recorded, and belfry alerts by the rules.
//!
//! ```sh
//! cargo run -p belfry --example watched_pipeline
//! ```
//!
//! With nothing configured, alerts go to the console (standard error); state is kept in
//! `$BELFRY_HOME` (default `~/.local/state/belfry`). Run it twice: the second time only what
//! changed is announced.
#![allow(clippy::print_stdout)]

use std::fmt;

/// A transformation that cannot handle a row.
#[derive(Debug)]
struct BadRow {
    row: u32,
    source: std::num::ParseIntError,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} cannot be transformed", self.row)
    }
}

impl std::error::Error for BadRow {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Recorded as the job `watched_pipeline::extract`.
#[belfry::watch]
fn extract(day: u32) -> Result<Vec<String>, std::io::Error> {
    Ok((0..5).map(|i| format!("{}", day * 10 + i)).collect())
}

/// Recorded as `pipeline.transform`; while it keeps failing, reminded every 10 minutes.
#[belfry::watch(name = "pipeline.transform", repeat_failures_after = "10m")]
fn transform(rows: &[String]) -> Result<Vec<u32>, BadRow> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            r.parse::<u32>().map_err(|source| BadRow {
                row: i as u32,
                source,
            })
        })
        .collect()
}

/// Only I/O errors count as failures here: a bad input is the caller's problem, not the
/// job's, and records OK.
#[belfry::watch(name = "pipeline.load", errors = [std::io::Error])]
async fn load(rows: Vec<u32>) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    if rows.is_empty() {
        return Err("nothing to load".into());
    }
    Ok(rows.len())
}

/// Two days of the pipeline; the second day fails in `transform`.
pub fn main() {
    let _guard = belfry::init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");

    for day in [1, 2] {
        let rows = extract(day).expect("extract");
        let mut rows = rows;
        if day == 2 {
            rows.push("not a number".into());
        }
        match transform(&rows) {
            Ok(values) => {
                let loaded = runtime.block_on(load(values)).expect("load");
                println!("day {day}: loaded {loaded} rows");
            }
            Err(e) => println!("day {day}: {e} (belfry records the failure)"),
        }
    }
    // An error `errors = [...]` does not count: recorded as OK.
    let _ = runtime.block_on(load(Vec::new()));
    // The guard flushes here: everything recorded and delivered, or said what is left.
}
