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
//! The facade is also what the `belfry` command is built on: it reads the configuration
//! ([`Config`]; its secret references in [`secret`], its per-channel templates in
//! [`template`]), finds the state directory ([`home_dir`]), records runs with the alert rules
//! ([`record_run`]), delivers what the outbox holds ([`deliver`]), and sends messages written
//! by hand straight to channels ([`send`]).
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

mod client;
pub mod config;
mod deliver;
mod drain;
mod home;
pub mod host;
pub mod intent;
mod layer;
mod panic;
mod queue;
mod reach;
mod sampler;
pub mod secret;
pub mod send;
mod supervisor;
mod task;
pub mod template;
mod watch;
mod worker;

pub use belfry_channels as channels;
pub use belfry_core as core;
pub use belfry_store as store;

pub use belfry_core::State;
pub use client::{
    Belfry, Builder, DEFAULT_QUEUE_CAPACITY, FlushReport, Guard, InitError, Stats, init, try_init,
    unrecorded_events,
};
pub use config::{Config, ConfigError, Sources};
pub use deliver::{DeliveryReport, Failure, MIN_RETRY, backoff, deliver, jittered_backoff};
pub use drain::{DRAIN_TICK, DrainError, DrainLock, drain};
pub use home::{NoHome, home_dir, store_path};
pub use layer::{Layer, layer};
pub use panic::{PANIC_RECORD_TIMEOUT, install_panic_hook};
pub use supervisor::{Attachment, Message, Supervisor};
pub use task::{
    Check, Handler, HandlerResult, IntoHandlerResult, StateHandler, StateSet, Task, TaskError,
    handler, ignore_states, only_states,
};
pub use worker::TICK;

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
    pub use crate::watch::{
        Call, CatchUnwind, IsAny, IsBoxed, IsError, IsSendSyncBoxed, JobOptions, Outcome, Probe,
        ViaAny, ViaBox, ViaDebug, ViaDisplay, ViaError, ViaSendSyncBox, check_describable, outcome,
        resume, run_sync,
    };
}

use belfry_core::{Details, Event, Timestamp};
use belfry_store::{Recorded, RunEnd, Store};

/// Records a finished run with the configured policy and routing for its job, in one store
/// transaction. With `skip_console`, console channels get no row (`belfry run --quiet`).
pub fn record_run(
    store: &mut Store,
    config: &Config,
    end: &RunEnd<'_>,
    skip_console: bool,
) -> Result<Recorded, belfry_store::Error> {
    let job = end.event.job.as_str();
    let policy = config.policy_for(job);
    let route = |state: &State, recovered| {
        config
            .route(job, state, recovered)
            .into_iter()
            .filter(|name| !(skip_console && config.channel(name).is_some_and(|c| c.is_console())))
            .collect()
    };
    let rec = store.finish_run(end, &policy, route, &config.limits())?;
    mark_unrouted(store, config, &rec)?;
    Ok(rec)
}

/// A run's notification that no channel's routes take is recorded as sent to no channel
/// (`--quiet`'s silenced console is not that: the routes took it).
fn mark_unrouted(
    store: &mut Store,
    config: &Config,
    rec: &Recorded,
) -> Result<(), belfry_store::Error> {
    match config.unrouted(rec) {
        Some(n) => store.mark_unrouted(n.run_id.as_deref().unwrap_or_default(), &n.id),
        None => Ok(()),
    }
}

/// Finds the runs on this host whose watching process is gone (killed with -9, or the machine
/// restarted: the boot id changed) and records them as `crashed`, which alerts like any
/// problem. Returns what was recorded; a run that another process records first is skipped.
///
/// Every belfry process that opens the store calls this, so an abandoned run does not stay
/// `running` for long. Runs of other hosts are left to their own host. A run whose start
/// never reached the store (its `belfry run` was killed first) is found through its
/// [`intent`] record, and recorded the same way.
pub fn reap_crashed(
    store: &mut Store,
    config: &Config,
) -> Result<Vec<Recorded>, belfry_store::Error> {
    let host = host::host_name();
    let boot = host::boot_id();
    intent::adopt(store, &host, boot.as_deref())?;
    let mut out = Vec::new();
    for run in store.running_runs()? {
        if run.host.as_deref() != Some(host.as_str()) {
            continue;
        }
        let rebooted = matches!((&run.boot_id, &boot), (Some(then), Some(now)) if then != now);
        let gone = rebooted || run.pid.is_some_and(|pid| !host::process_alive(pid));
        if !gone {
            continue;
        }
        let now = Timestamp::now();
        let why = if rebooted {
            "the machine restarted while it ran".to_owned()
        } else {
            format!(
                "the belfry process watching it (pid {}) is gone",
                run.pid.unwrap_or_default()
            )
        };
        let event = Event {
            job: run.job.clone(),
            state: State::Crashed,
            at: now,
            details: Details {
                run_id: Some(run.id.clone()),
                started_at: Some(run.started),
                duration: Some(now.since(run.started)),
                host: run.host.clone(),
                // Messages append "after <duration>": the cause comes last so that it reads on.
                error: Some(format!("outcome unknown: {why}")),
                ..Details::default()
            },
        };
        let end = RunEnd {
            event: &event,
            output: None,
            output_bytes: 0,
        };
        let policy = config.policy_for(&run.job);
        let job = run.job.as_str();
        let route = |state: &State, recovered| config.route(job, state, recovered);
        if let Some(rec) = store.finish_stale_run(&end, &policy, route, &config.limits())? {
            mark_unrouted(store, config, &rec)?;
            out.push(rec);
        }
    }
    Ok(out)
}

/// When the store cannot take a run (a full disk, a read-only or missing state directory),
/// the rules cannot be applied and the outbox cannot keep an alert. If the run was a problem,
/// this sends its alert straight to the job's channels, once, within `[delivery] wait`, so that
/// the failure that matters most on a broken host is still told. Its `reason` is `unrecorded`
/// and its text says why (`not recorded, so sent at once: …`). OK runs send nothing. Returns what became of each channel; console
/// channels are skipped with `skip_console` (`belfry run --quiet`).
pub fn send_unrecorded(
    config: &Config,
    event: &Event,
    why: &str,
    skip_console: bool,
) -> Vec<send::Sent> {
    if !event.state.is_problem() {
        return Vec::new();
    }
    let policy = config.policy_for(&event.job);
    let decision = belfry_core::decide(None, &event.state, event.at, &policy);
    let mut n = belfry_core::Notification::new(belfry_store::new_id(), event, None, &decision);
    n.reason = "unrecorded".to_owned();
    n.reason_text = format!("not recorded, so sent at once: {why}");
    n.message = n.summary();
    let targets: Vec<send::Target> = config
        .route(&event.job, &event.state, false)
        .iter()
        .filter_map(|name| config.channel(name))
        .filter(|c| !(skip_console && c.is_console()))
        .filter_map(|c| send::Target::configured(c).ok())
        .map(|t| t.also_hiding(&config.secrets))
        .collect();
    send::send(&targets, &n, &send::SendSettings::from(config))
}
