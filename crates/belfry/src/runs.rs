//! Recording by the configuration: a finished run goes into the store with its job's policy
//! and routes ([`record_run`]), runs whose watcher died are found and recorded as crashed
//! ([`reap_crashed`]), a lone event is recorded the same way ([`record_event`]), and a problem
//! the store cannot take is still told ([`send_unrecorded`]).
//!
//! These are the steps `belfry run`, the library's worker and its panic hook share, so they sit
//! here, under all of them: the configuration says which policy and which channels, the store
//! applies the rules and keeps the outbox. Nothing here knows about the library's client.

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Limits, Recorded, RuleBook, RunEnd, Store};

use crate::config::Config;
use crate::host;
use crate::intent;
use crate::send;

/// The configuration is the rule book the store applies to pings and late jobs: each job's
/// policy, its routes, and what the store keeps.
impl RuleBook for Config {
    fn policy(&self, job: &str) -> Policy {
        self.policy_for(job)
    }

    fn route(&self, job: &str, state: &State, recovered: bool) -> Vec<String> {
        Config::route(self, job, state, recovered)
    }

    fn limits(&self) -> Limits {
        Config::limits(self)
    }
}

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

/// Records one event that is not a run (a crash the panic hook saw) with its job's configured
/// policy and routes, in one store transaction: how the hook writes when no worker can.
pub(crate) fn record_event(
    store: &mut Store,
    config: &Config,
    event: &Event,
) -> Result<(), belfry_store::Error> {
    let job = event.job.as_str();
    let route = |state: &State, recovered| config.route(job, state, recovered);
    store
        .record_event(event, &config.policy_for(job), route, &config.limits())
        .map(drop)
}

/// A run's notification that no channel's routes take is recorded as sent to no channel
/// (`--quiet`'s silenced console is not that: the routes took it).
pub fn mark_unrouted(
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
/// intent record (`intent.rs`), and recorded the same way.
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
