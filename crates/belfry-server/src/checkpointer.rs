//! The checkpointer (SQLite only): one std thread with its own handle that copies the
//! write-ahead log into the database every [`EVERY`] while the writer records pings.
//!
//! The writer [leaves this upkeep](belfry_store::Store::leave_upkeep) to it: a checkpoint in
//! the writer's own commit holds every ping behind it while it copies and syncs. Here the
//! copy runs beside the writer's commits (a passive checkpoint waits for no one and holds
//! no writer up). Why a quarter of a second, measured (docs/decisions.md, "SQLite's
//! checkpoints leave the ping writer"): every 5 ms, each pass rewrote the same busy pages
//! (the jobs' rows, the indexes' last leaves) over and over and took CPU from the writer
//! (17,000 pings/s against 20,000); passes 50 ms to 1 s apart were alike.

use std::sync::Arc;
use std::time::Duration;

use belfry::config::Config;
use belfry_store::Store;

use crate::sweeper::Stop;

/// The time between two passes.
pub const EVERY: Duration = Duration::from_millis(250);

/// Runs the checkpointer until `stop`.
pub(crate) fn run(mut store: Store, config: Arc<Config>, stop: Arc<Stop>) {
    let mut failing = false;
    loop {
        match store.upkeep() {
            Ok(()) => failing = false,
            Err(e) => {
                // Said once per spell of failures; the writer's backstop bounds the log.
                if !failing {
                    crate::log::warn(&format!("store upkeep: {}", config.scrub(&e.to_string())));
                }
                failing = true;
            }
        }
        if stop.sleep(EVERY) {
            return;
        }
    }
}
