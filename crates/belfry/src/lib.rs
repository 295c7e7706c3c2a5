//! belfry watches jobs (cron jobs, scheduled pipelines, functions inside programs) and tells
//! people when they fail, recover, go silent, or are still fine, over the channels they
//! already use.
//!
//! For a Rust program, this crate is the Python decorator, the logging handler, the script
//! supervisor and Prefect's state handlers in one:
//!
//! - [`init`] starts belfry from the same configuration as the `belfry` command and returns a
//!   [`Guard`] that, when dropped, records what is queued and delivers it within a deadline
//!   (what is left stays in the outbox, and the guard says so). [`Belfry::builder`]
//!   configures in code instead.
//! - [`macro@watch`] records each call of a function returning `Result` as `Ok` or `Failed`
//!   (with the error and its causes), and a panic as `Crashed`.
//! - [`layer()`] turns `tracing` events at ERROR into notifications.
//! - [`install_panic_hook`] records every panic as `Crashed`; a [`Supervisor`] also sends an
//!   end-of-run summary with files attached.
//! - [`Task`] runs work with retries, a time limit and state handlers.
//!
//! Every way in goes through the same pipeline as `belfry run`: the alert rules (first run,
//! change, a reminder while a problem lasts, an hourly "still OK"), then an outbox in the
//! SQLite store, then the channels.
//!
//! **The program never waits for belfry.** Recording is a push into a bounded lock-free queue
//! read by one worker thread that owns the store; nothing on the caller's thread touches the
//! disk or the network. When the queue is full, events collapse per job with exact counts
//! instead of being dropped; an error storm becomes a handful of digest messages ("532 times
//! in 10.2s, the last: …") whose counts add up. A loss that still happens (the overflow full,
//! the store failing) is counted and reported, never silent.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! #[belfry::watch]
//! fn load(rows: u32) -> Result<u32, std::io::Error> {
//!     Ok(rows * 2)
//! }
//!
//! fn main() {
//!     // belfry.toml, $BELFRY_URLS, or the console; state in $BELFRY_HOME.
//!     let _guard = belfry::init();
//!     belfry::install_panic_hook();
//!     tracing_subscriber::registry().with(belfry::layer()).init();
//!
//!     load(21).unwrap(); // recorded as OK for the job `my_app::load`
//!     tracing::error!(job = "billing", "payment provider unreachable"); // Failed
//! } // the guard flushes: recorded, delivered, or said what is left
//! ```
//!
//! A program uses the same configuration as the `belfry` command ([`Config`]; its secret
//! references in [`secret`], its per-channel templates in [`template`]) and the same state
//! directory ([`home_dir`]), so `belfry status` and `belfry history` show what the program
//! recorded. [`store`] opens that store to read it from Rust; which database is behind it is
//! not part of the API.
//!
//! ```
//! use belfry::{Config, Sources};
//!
//! // The same search as the command line: --config, $BELFRY_CONFIG, ./belfry.toml, the XDG
//! // config directory, plus $BELFRY_URLS. With nothing found, alerts go to the console.
//! let config = Config::load(&Sources::default()).unwrap();
//! assert_eq!(config.channels[0].name, "console");
//!
//! let config = Config::parse(r#"
//!     [policy]
//!     repeat_failures_after = "10m"
//!     [channels.hook]
//!     url = "json://127.0.0.1:8080/belfry"
//! "#, "inline").unwrap();
//! assert_eq!(config.policy_for("any").repeat_failures_after.as_secs(), 600);
//! ```

// This file only declares, re-exports and documents: every piece of logic lives in a module
// named for what it does (docs/architecture.md, "The facade", says which). The modules use
// each other without circles: `item` (what the threads hand on) is below `queue`, `sampler` and
// `worker`; `worker` (the threads and what they share) is below `client`; `client` is below
// the ways in (`watch`, `layer`, `panic`, `task`, `supervisor`).

mod apprise_config;
mod client;
pub mod config;
mod dispatch;
mod drain;
mod home;
mod host;
mod intent;
mod item;
mod layer;
mod panic;
mod queue;
mod reach;
mod runs;
mod sampler;
pub mod secret;
pub mod send;
mod summary;
mod supervisor;
mod task;
pub mod template;
mod threads;
mod views;
mod watch;
mod worker;

pub use belfry_channels as channels;
pub use belfry_core as core;

pub use belfry_core::State;
pub use client::{
    Belfry, Builder, DEFAULT_QUEUE_CAPACITY, FlushReport, Guard, InitError, Stats, init, try_init,
    unrecorded_events,
};
pub use config::{Config, ConfigError, Sources};
pub use home::{NoHome, home_dir, store_path};
pub use layer::{Layer, layer};
pub use panic::{PANIC_RECORD_TIMEOUT, install_panic_hook};
pub use summary::{Attachment, Message};
pub use supervisor::Supervisor;
pub use task::{
    Check, Handler, HandlerResult, IntoHandlerResult, StateHandler, StateSet, Task, TaskError,
    handler, ignore_states, only_states,
};

/// What belfry has recorded, for reading it: the [`Store`](store::Store) handle on the state
/// directory's store ([`store_path`]), the rows it returns, and ids as it makes them (a
/// message sent by hand through [`send`] needs one). Which database is behind the handle is
/// not part of the API; its calls that write are belfry's own, and the types they take are not
/// re-exported here.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("belfry-store-doc-{}", std::process::id()));
/// use belfry::store::Store;
///
/// let store = Store::open(belfry::store_path(&dir))?;
/// assert!(store.jobs()?.is_empty());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), belfry::store::Error>(())
/// ```
pub mod store {
    pub use belfry_store::{
        Error, JobRow, LastNotification, LastRun, Limits, Location, OutboxCounts, OutboxRow,
        Retention, RunRow, Store, new_id,
    };
}

/// For the `belfry` command and belfry's own tests; not a stable API. What the command needs
/// beyond the library (recording a run it supervised, finding crashed runs, delivering the
/// outbox, the background drain) lives here rather than at the crate root, so that the
/// library's documentation shows only the library.
#[doc(hidden)]
pub mod internal {
    pub use crate::dispatch::{
        DeliveryReport, Dispatcher, Failure, MIN_POLL, MIN_RETRY, Waker, backoff, deliver,
        jittered_backoff,
    };
    pub use crate::drain::{DRAIN_TICK, DrainError, DrainLock, drain};
    pub use crate::runs::{mark_unrouted, reap_crashed, record_run, send_unrecorded};
    pub use crate::worker::TICK;

    /// This host: its name, its boot, its processes.
    pub mod host {
        pub use crate::host::*;
    }

    /// Intent records: a run's start written to a file before the store has it.
    pub mod intent {
        pub use crate::intent::*;
    }

    /// The JSON forms of runs and outbox rows.
    pub mod views {
        pub use crate::views::*;
    }
}

/// Records each call of a function that returns `Result<T, E>`, sync or `async`: `Ok` as
/// OK, `Err` as `Failed` (with the error's text and its causes), a panic as `Crashed` (the
/// panic goes on). The job is `module::path::function`, or `name = "…"`. The return type may
/// name its `Result` any way: `Result<T, E>`, `std::io::Result<T>`, `anyhow::Result<T>`, or a
/// type alias (`type Fallible<T> = Result<T, MyError>`); any other type is a compile error.
///
/// ```
/// #[belfry::watch(
///     name = "nightly-import",            // the job's name (default: module::function)
///     repeat_failures_after = "10m",      // while it keeps failing, remind every 10 min
///     ok_heartbeat_after = "off",         // no "still OK" messages
///     channels = ["ops"],                 // only these configured channels
///     errors = [std::io::Error],          // only these error types count as failures
/// )]
/// fn import(path: &str) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
///     Ok(std::fs::read_to_string(path)?.lines().count())
/// }
/// ```
///
/// With `errors = [A, B]`, an error counts as `Failed` only if it is an `A` or a `B` (the
/// error type itself, or what a `Box<dyn Error>` or `anyhow::Error` holds); any other error
/// records `Ok`, as the decorator's `exception_classes` did: use it for errors that are part
/// of normal operation (a user's bad input) rather than a problem with the job. Each listed
/// type must implement `std::error::Error + 'static`: one that does not could never match, so
/// it is a compile error that points at it.
///
/// The call costs well under a microsecond on the calling thread (a push into belfry's
/// queue). The error type must implement `Debug` (every `std::error::Error` does); it is
/// described through `std::error::Error` (with its causes) when it is one, through the box
/// for `Box<dyn Error>` and `anyhow::Error`, else through `Display` or `Debug`.
pub use belfry_macros::watch;

#[doc(hidden)]
pub mod __private {
    pub use crate::item::JobOptions;
    pub use crate::watch::{
        Call, CatchUnwind, IsAny, IsBoxed, IsError, IsSendSyncBoxed, Outcome, Probe, ViaAny,
        ViaBox, ViaDebug, ViaDisplay, ViaError, ViaSendSyncBox, check_describable, outcome, resume,
        run_sync,
    };
}
