//! The checkpointer (SQLite only): one std thread with its own handle that copies the
//! write-ahead log into the database while the writer records pings.
//!
//! The writer [leaves this upkeep](belfry_store::Store::leave_upkeep) to it: a checkpoint in
//! the writer's own commit holds every ping behind it while it copies and syncs, and at
//! 10,000 pages a checkpoint the writer spent about half its time there (issue 12,
//! docs/decisions.md). Here the copy runs beside the writer's commits (a passive checkpoint
//! waits for no one), every [`BUSY`] while the log keeps growing, and at a slower pace, up to
//! [`IDLE`], once a pass finds nothing left to copy.

use std::sync::Arc;
use std::time::Duration;

use belfry::config::Config;
use belfry_store::Store;

use crate::sweeper::Stop;

/// The pause between passes while a writer is busy: short enough that each pass copies a
/// few hundred pages, long enough to leave the CPU to the writer between them.
pub const BUSY: Duration = Duration::from_millis(5);

/// The longest pause between passes once the log is copied.
pub const IDLE: Duration = Duration::from_millis(250);

/// Runs the checkpointer until `stop`.
pub(crate) fn run(mut store: Store, config: Arc<Config>, stop: Arc<Stop>) {
    let mut pause = BUSY;
    let mut failing = false;
    loop {
        match store.upkeep() {
            Ok(more) => {
                failing = false;
                pause = if more { BUSY } else { (pause * 2).min(IDLE) };
            }
            Err(e) => {
                // Said once per spell of failures; the writer's backstop bounds the log.
                if !failing {
                    crate::log::warn(&format!("store upkeep: {}", config.scrub(&e.to_string())));
                }
                failing = true;
                pause = IDLE;
            }
        }
        if stop.sleep(pause) {
            return;
        }
    }
}
