//! belfry watches jobs (cron jobs, scheduled pipelines, functions inside programs) and tells
//! people when they fail, recover, go silent, or are still fine, over the channels they
//! already use.
//!
//! This crate is the facade: it reads the configuration ([`Config`]; its secret references
//! in [`secret`], its per-channel templates in [`template`]), finds the state directory
//! ([`home_dir`]), records what happens through the store with the alert rules
//! ([`record_run`]), delivers what the outbox holds ([`deliver`]), and sends messages written
//! by hand straight to channels ([`send`]). The `belfry` command is built on it.
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

pub mod config;
mod deliver;
mod drain;
mod home;
pub mod host;
pub mod secret;
pub mod send;
pub mod template;

pub use belfry_channels as channels;
pub use belfry_core as core;
pub use belfry_store as store;

pub use config::{Config, ConfigError, Sources};
pub use deliver::{DeliveryReport, Failure, MIN_RETRY, backoff, deliver, jittered_backoff};
pub use drain::{DRAIN_TICK, DrainError, DrainLock, drain};
pub use home::{NoHome, home_dir, store_path};

use belfry_core::{Details, Event, State, Timestamp};
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
    store.set_delivery_deadline(config.delivery.give_up_after);
    store.finish_run(end, &policy, |state, recovered| {
        config
            .route(job, state, recovered)
            .into_iter()
            .filter(|name| !(skip_console && config.channel(name).is_some_and(|c| c.is_console())))
            .collect()
    })
}

/// Finds the runs on this host whose watching process is gone (killed with -9, or the machine
/// restarted: the boot id changed) and records them as `crashed`, which alerts like any
/// problem. Returns what was recorded; a run that another process records first is skipped.
///
/// Every belfry process that opens the store calls this, so an abandoned run does not stay
/// `running` for long. Runs of other hosts are left to their own host.
pub fn reap_crashed(
    store: &mut Store,
    config: &Config,
) -> Result<Vec<Recorded>, belfry_store::Error> {
    let host = host::host_name();
    let boot = host::boot_id();
    store.set_delivery_deadline(config.delivery.give_up_after);
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
                error: Some(format!("{why}; the job's outcome is unknown")),
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
        if let Some(rec) = store.finish_stale_run(&end, &policy, |state, recovered| {
            config.route(job, state, recovered)
        })? {
            out.push(rec);
        }
    }
    Ok(out)
}
