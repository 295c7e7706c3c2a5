//! The values of checks: jobs that report by ping (`belfry serve`) and are expected on a
//! schedule, so that silence becomes a problem (`late`).

use belfry_core::{Expect, Policy, State, Timestamp};

use crate::types::{Limits, Recorded, RunStart};

/// How many pings each job keeps, the newest.
pub const PINGS_PER_JOB: u32 = 100;

/// How many state changes ([`FlipRow`]) each job keeps, the newest.
pub const FLIPS_PER_JOB: u32 = 1000;

/// The rules a store applies to a job's event, per job: what the configuration says.
pub trait RuleBook {
    /// The alert policy of `job`.
    fn policy(&self, job: &str) -> Policy;
    /// Channels for a notification about `state` of `job` (`recovered`: it ends a problem).
    fn route(&self, job: &str, state: &State, recovered: bool) -> Vec<String>;
    /// What the writes keep.
    fn limits(&self) -> Limits;
}

/// What a ping says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingKind {
    /// A run has started.
    Start,
    /// A run has finished well (or the job just says it is alive).
    Success,
    /// A run has failed.
    Fail,
    /// A message only: kept, and counts as a report, but changes no state.
    Log,
    /// A run ended with this exit status: 0 is [`PingKind::Success`], any other a failure
    /// with that exit code.
    Exit(u8),
}

impl PingKind {
    /// The name the pings table keeps (`start`, `success`, `fail`, `log`, `exit`).
    pub fn name(&self) -> &'static str {
        match self {
            PingKind::Start => "start",
            PingKind::Success => "success",
            PingKind::Fail => "fail",
            PingKind::Log => "log",
            PingKind::Exit(_) => "exit",
        }
    }

    /// The kind from its [`PingKind::name`] and exit status, as the pings table keeps it.
    pub fn from_parts(name: &str, exit_status: Option<i64>) -> Option<PingKind> {
        Some(match name {
            "start" => PingKind::Start,
            "success" => PingKind::Success,
            "fail" => PingKind::Fail,
            "log" => PingKind::Log,
            "exit" => PingKind::Exit(u8::try_from(exit_status?).ok()?),
            _ => return None,
        })
    }

    /// The exit status kept with an [`PingKind::Exit`].
    pub fn exit_status(&self) -> Option<u8> {
        match self {
            PingKind::Exit(n) => Some(*n),
            _ => None,
        }
    }
}

/// How a ping names its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRef<'a> {
    /// By the uuid the store gave the job.
    Uuid(uuid::Uuid),
    /// By name (a belfry job's name is its slug).
    Name(&'a str),
}

/// One ping, as the server received it.
#[derive(Clone, Copy, Debug)]
pub struct Ping<'a> {
    /// The job it is for.
    pub job: JobRef<'a>,
    /// What it says.
    pub kind: PingKind,
    /// Pairs a start with its finish (the run's id).
    pub rid: Option<uuid::Uuid>,
    /// When it came.
    pub at: Timestamp,
    /// Its body, already cut to the server's limit: kept (packed), and a finish's body becomes
    /// the run's output (as lossy UTF-8).
    pub body: &'a [u8],
    /// Create the job by name if it does not exist (`?create=1`).
    pub create: bool,
    /// The client's address.
    pub remote: Option<&'a str>,
    /// The HTTP method (`GET`, `POST`, `HEAD`).
    pub method: &'a str,
    /// The client's `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// What recording one ping did.
#[derive(Clone, Debug)]
pub enum PingOutcome {
    /// The ping was kept.
    Recorded {
        /// The job's name.
        job: String,
        /// Whether this ping created the job.
        created: bool,
        /// What the rules recorded, when the ping finished a run (`success`, `fail`, `exit`);
        /// boxed, since it is large.
        recorded: Option<Box<Recorded>>,
    },
    /// No such job (and not created).
    NotFound,
}

/// A job's identity and its check fields.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// The job's name.
    pub name: String,
    /// Its uuid (random, assigned when the job was first written).
    pub uuid: uuid::Uuid,
    /// When it is expected to report, if it is.
    pub expect: Option<Expect>,
    /// When the job began to be watched: its schedule was set, or it was resumed. Silence
    /// counts from this or its last report, whichever is later.
    pub expect_set: Option<Timestamp>,
    /// Paused: never late until it reports again.
    pub paused: bool,
    /// When it becomes late (next), if it is expected and not paused.
    pub late_at: Option<Timestamp>,
    /// Its last report: a ping, a run's start or end, an event.
    pub last_report: Option<Timestamp>,
    /// When belfry first saw it.
    pub created: Timestamp,
    /// The rules' state, if one was reached.
    pub state: Option<State>,
    /// The oldest run still going, if any.
    pub running_since: Option<Timestamp>,
    /// What people call it besides its name: a title, tags, a description.
    pub meta: CheckMeta,
    /// Pings received in all (kept or not).
    pub n_pings: u64,
    /// The last finished run's duration, if it had one.
    pub last_duration: Option<std::time::Duration>,
    /// When its current problem was acknowledged, and by whom (cleared when it recovers).
    pub acked: Option<(Timestamp, String)>,
}

/// A job's title, tags and description: what healthchecks.io calls a check's name, tags and
/// desc (belfry's job name is the check's slug). Kept as JSON in the job's row.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckMeta {
    /// A name for people; empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Tags, each without spaces, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A description; empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
}

impl CheckMeta {
    /// Whether it says nothing (a job's row then keeps no JSON).
    pub fn is_empty(&self) -> bool {
        self.title.is_empty() && self.tags.is_empty() && self.desc.is_empty()
    }

    /// The JSON a job's row keeps, `None` when it says nothing.
    pub(crate) fn json(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).expect("check meta serialises"))
    }

    /// Read back from a job's row; the error names the job.
    pub(crate) fn parse(job: &str, json: Option<&str>) -> std::result::Result<Self, String> {
        match json {
            None => Ok(CheckMeta::default()),
            Some(j) => serde_json::from_str(j).map_err(|e| {
                format!("job {job:?}: its title, tags and description (`jobs.meta`) are not readable: {e}")
            }),
        }
    }
}

/// What [`Store::save_check`](crate::Store::save_check) changes: each field that is `Some`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckChange<'a> {
    /// The schedule: set (`Some(Some)`) or cleared (`Some(None)`).
    pub expect: Option<Option<&'a Expect>>,
    /// The title, tags and description, replaced whole.
    pub meta: Option<&'a CheckMeta>,
}

/// A change of a job's state between OK and problem (healthchecks.io's "flip" between up and
/// down), or its first state.
#[derive(Clone, Debug, PartialEq)]
pub struct FlipRow {
    /// The job.
    pub job: String,
    /// When.
    pub at: Timestamp,
    /// The state before, if there was one.
    pub from: Option<State>,
    /// The state after.
    pub to: State,
}

impl FlipRow {
    /// Whether the job is fine after it (healthchecks' `up`).
    pub fn up(&self) -> bool {
        self.to.class() == belfry_core::Class::Ok
    }
}

/// The flip a rule step makes, if the job's state went from one class (OK, problem) to the
/// other, or got its first state: the states before and after.
pub(crate) fn flip_of(
    previous: Option<&belfry_core::JobSnapshot>,
    next: Option<&belfry_core::JobSnapshot>,
) -> Option<(Option<State>, State)> {
    let to = next?.state;
    let from = previous.map(|p| p.state);
    (from.map(|f| f.class()) != Some(to.class())).then_some((from, to))
}

/// One kept ping.
#[derive(Clone, Debug, PartialEq)]
pub struct PingRow {
    /// Its number (increasing in the order pings were kept).
    pub id: i64,
    /// Its number among the job's pings: 1 for its first.
    pub n: u64,
    /// The job's name.
    pub job: String,
    /// When it came.
    pub at: Timestamp,
    /// What it said.
    pub kind: PingKind,
    /// Its run id, if it had one.
    pub rid: Option<uuid::Uuid>,
    /// Its body (lossy UTF-8).
    pub body: String,
    /// The client's address.
    pub remote: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

/// When a job expected by `expect` becomes late: its next due time plus grace, counted from
/// its last report or from when it began to be watched (`watched_from`: the schedule was set,
/// or the job resumed), whichever is later; and, with a longest run time, no later than that
/// time after the start of its oldest run still going.
pub(crate) fn late_at(
    expect: &Expect,
    watched_from: Option<Timestamp>,
    last_report: Option<Timestamp>,
    oldest_running: Option<Timestamp>,
) -> Option<Timestamp> {
    let from = watched_from.max(last_report)?;
    let silent = expect.late_after(from);
    let overdue = oldest_running.and_then(|s| expect.overdue_after(s));
    match (silent, overdue) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The earliest start of a running run that can still make its job overdue: a run that had
/// been going past its longest run time before the job's last report was alerted for then (or
/// is superseded by the report), so only runs started after `last_report - max_runtime`
/// count. Without a report, every run counts.
pub(crate) fn overdue_since(
    last_report: Option<Timestamp>,
    max_runtime: std::time::Duration,
) -> Option<Timestamp> {
    last_report.map(|l| l - max_runtime)
}

/// A job's next `late_at` once it has been marked late at `now`: the due time that follows,
/// plus grace (each missed due time is another problem). Counted from `now`, so that a
/// sweeper that was away does not go through every slot it missed.
pub(crate) fn late_again(expect: &Expect, now: Timestamp) -> Option<Timestamp> {
    expect.late_after(now - expect.grace)
}

/// The event of a job found late at `now`. `overdue`: its oldest running run (id, start) has
/// been going past the longest run time, which is the reason given; else its silence.
pub(crate) fn late_event(
    job: &str,
    expect: &Expect,
    last_report: Option<Timestamp>,
    overdue: Option<(String, Timestamp)>,
    now: Timestamp,
) -> belfry_core::Event {
    let mut details = belfry_core::Details::default();
    let error = match (&overdue, expect.max_runtime) {
        (Some((id, started)), Some(max)) => {
            details.run_id = Some(id.clone());
            details.started_at = Some(*started);
            format!(
                "run {id} started at {started} and has not finished within its longest run \
                 time ({}); expected {expect}",
                belfry_core::format_duration(max)
            )
        }
        _ => match last_report {
            Some(last) => format!("no report since {last}; expected {expect}"),
            None => format!("never reported; expected {expect}"),
        },
    };
    details.error = Some(error);
    belfry_core::Event {
        job: job.to_owned(),
        state: State::Late,
        at: now,
        details,
    }
}

/// The run id of a start that carried no `rid`: recognisable, so that the job's next such
/// start replaces it and a finish without `rid` finds it.
pub(crate) fn ridless_run_id() -> String {
    format!("{RIDLESS_PREFIX}{}", crate::types::new_id())
}

/// The id of the run that pings of `job` with run id `rid` start and finish: a UUID made from
/// both (version 5, the rid its namespace), since run ids are unique across the store and two
/// jobs' clients may use one rid. The same pair always gives the same id; the pings keep the
/// rid itself.
pub fn ping_run_id(job: &str, rid: uuid::Uuid) -> String {
    uuid::Uuid::new_v5(&rid, job.as_bytes()).to_string()
}

/// The run a `start` ping of `job` begins, with id `id`.
pub(crate) fn ping_start(job: &str, p: &Ping<'_>, id: String) -> RunStart {
    RunStart {
        id,
        job: job.to_owned(),
        started: p.at,
        host: p.remote.map(str::to_owned),
        pid: None,
        boot_id: None,
    }
}

/// The final event of the run a finishing ping of `job` ends in `state` (with `exit_code`):
/// the run `running` (its id and start) it pairs with, or else a new one of no duration.
pub(crate) fn ping_finish(
    job: &str,
    p: &Ping<'_>,
    (state, exit_code): (State, Option<i32>),
    running: Option<(String, Timestamp)>,
) -> belfry_core::Event {
    let (run_id, started) = running.unwrap_or_else(|| (ridless_run_id(), p.at));
    belfry_core::Event {
        job: job.to_owned(),
        state,
        at: p.at,
        details: belfry_core::Details {
            run_id: Some(run_id),
            started_at: Some(started),
            duration: Some(p.at.since(started)),
            exit_code,
            host: p.remote.map(str::to_owned),
            ..belfry_core::Details::default()
        },
    }
}

/// What every rid-less ping run's id begins with.
pub(crate) const RIDLESS_PREFIX: &str = "ping-";

/// `expect` as the store keeps it.
pub(crate) fn expect_json(expect: &Expect) -> String {
    serde_json::to_string(expect).expect("a schedule serialises")
}

/// A kept schedule, read back; the error names the job.
pub(crate) fn parse_expect(job: &str, json: &str) -> std::result::Result<Expect, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("job {job:?}: its schedule (`jobs.expect`) is not readable: {e}"))
}

/// The state and exit code a finishing ping gives its run (`None` for start and log).
pub(crate) fn finish_of(kind: PingKind) -> Option<(State, Option<i32>)> {
    match kind {
        PingKind::Success => Some((State::Ok, None)),
        PingKind::Fail => Some((State::Failed, None)),
        PingKind::Exit(0) => Some((State::Ok, Some(0))),
        PingKind::Exit(n) => Some((State::Failed, Some(i32::from(n)))),
        PingKind::Start | PingKind::Log => None,
    }
}

/// The rules of one job, from a rule book: what a backend's rule step takes.
pub(crate) fn with_rules<T>(
    book: &dyn RuleBook,
    job: &str,
    f: impl FnOnce(&crate::types::Rules<'_>) -> T,
) -> T {
    let policy = book.policy(job);
    let route = |s: &State, recovered: bool| book.route(job, s, recovered);
    f(&crate::types::Rules {
        policy: &policy,
        route: &route,
        limits: book.limits(),
    })
}
