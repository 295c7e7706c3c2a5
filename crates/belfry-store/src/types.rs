//! The values a store takes and returns.

use std::time::Duration;

use belfry_core::{Decision, Event, JobSnapshot, Kind, Notification, Policy, State, Timestamp};

/// How long an outbox row may stay undelivered before it is declared dead, by default.
pub const DEFAULT_DELIVERY_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// The limits on what a write keeps: how long the outbox rows it makes may wait for delivery,
/// and how much of the job's past stays (`[delivery] give_up_after` and `[store]` in
/// belfry.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// New outbox rows are dead when not delivered within this.
    pub delivery_deadline: Duration,
    /// What each job keeps; pruning happens as new rows are written, a job at a time.
    pub retention: Retention,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            delivery_deadline: DEFAULT_DELIVERY_DEADLINE,
            retention: Retention::default(),
        }
    }
}

/// A request to claim due outbox rows (see [`Store::claim_due`](crate::Store::claim_due)).
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// Who claims: leases are held in this name.
    pub owner: &'a str,
    /// How long the claimed rows stay this owner's without a renewal.
    pub lease: Duration,
    /// Only the (job, channel) pairs of these rows, if given.
    pub ids: Option<&'a [i64]>,
    /// At most this many rows.
    pub limit: u32,
    /// After a delivery to a channel, a job's next rows for it wait this long and go out as
    /// one (zero: no window).
    pub digest_window: Duration,
    /// Channels the digest window never holds: the console, which only the process that made
    /// a row can show (a process that sends it later prints it to no one).
    pub window_exempt: &'a [String],
    /// Channels whose rows go one at a time in the order they were made (the pinger): a
    /// start (a row about a `running` state) with a later row of its lane waiting is folded
    /// into the first of those, so that a server never hears a run start after it ended;
    /// no other row is folded, so that every run's end is heard.
    pub in_order: &'a [String],
}

/// How much of each job's past the store keeps (`[store]` in belfry.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Finished runs kept per job, the newest (`keep_runs`). A run still going is never
    /// pruned.
    pub runs_per_job: u32,
    /// Notifications kept per job, the newest, each with its outbox rows and their attempts
    /// (`keep_notifications`). Older ones go unless one of their rows is still undelivered.
    pub notifications_per_job: u32,
}

/// How many runs of each job the history keeps by default.
pub const HISTORY_PER_JOB: u32 = 1000;

/// How many notifications of each job the store keeps by default.
pub const NOTIFICATIONS_PER_JOB: u32 = 100;

impl Default for Retention {
    fn default() -> Self {
        Retention {
            runs_per_job: HISTORY_PER_JOB,
            notifications_per_job: NOTIFICATIONS_PER_JOB,
        }
    }
}

/// A run that has started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStart {
    /// Unique run id.
    pub id: String,
    /// The job's name.
    pub job: String,
    /// When it started.
    pub started: Timestamp,
    /// The host it runs on.
    pub host: Option<String>,
    /// The process that watches it (belfry's own pid for `belfry run`).
    pub pid: Option<u32>,
    /// The kernel's boot id, so that a pid from an earlier boot is not mistaken for a live one.
    pub boot_id: Option<String>,
}

/// A run that has finished: its final event and its output.
#[derive(Clone, Debug)]
pub struct RunEnd<'a> {
    /// The final event; `event.details.run_id` names the run.
    pub event: &'a Event,
    /// The output kept (first lines and tail); stored deflated when long.
    pub output: Option<&'a str>,
    /// How many bytes of output the run wrote in all.
    pub output_bytes: u64,
}

/// What [`Store::finish_run`](crate::Store::finish_run) and [`Store::record_event`](crate::Store::record_event) recorded.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The rules' verdict.
    pub decision: Decision,
    /// The job's snapshot before this event.
    pub previous: Option<JobSnapshot>,
    /// The job's snapshot after it, as stored.
    pub next: Option<JobSnapshot>,
    /// The notification, if the rules made one.
    pub notification: Option<Notification>,
    /// The outbox rows written for it, one per channel.
    pub outbox_ids: Vec<i64>,
    /// Why the notification was recorded and not sent (then it has no outbox rows).
    pub hushed: Option<belfry_core::Hush>,
}

/// An outbox row claimed for delivery.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Row id.
    pub id: i64,
    /// The channel's name.
    pub channel: String,
    /// A key unique to this (notification, channel), for services that deduplicate.
    pub idempotency_key: String,
    /// Attempts so far, counting this one.
    pub attempts: u32,
    /// What to send.
    pub notification: Notification,
}

/// The outcome of one delivery attempt, as the store records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The channel has it.
    Delivered,
    /// Try again at `at`.
    Retry {
        /// Not before this time.
        at: Timestamp,
        /// Why the attempt failed.
        reason: String,
    },
    /// Do not try again.
    Permanent {
        /// Why.
        reason: String,
    },
}

/// One job, as `belfry status` shows it. `S` holds its strings: owned (`String`, the default),
/// or borrowed from the statement that reads it (`&str`, see [`Store::each_job`](crate::Store::each_job)).
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow<S = String> {
    /// The job's name.
    pub name: S,
    /// The rules' state (the last OK or problem outcome); `None` before one.
    pub state: Option<State>,
    /// Since when the job has been in that state's class.
    pub since: Option<Timestamp>,
    /// Problems in a row.
    pub consecutive_problems: u32,
    /// The last finished run.
    pub last_run: Option<LastRun<S>>,
    /// The oldest run that is still going, if any.
    pub running_since: Option<Timestamp>,
    /// The last notification made for this job.
    pub last_notification: Option<LastNotification<S>>,
    /// The uuid a ping may name it by (`/ping/<uuid>`), given when belfry first saw it.
    pub uuid: Option<S>,
}

impl JobRow<&str> {
    /// The same row, holding its own strings.
    pub fn owned(&self) -> JobRow {
        JobRow {
            name: self.name.to_owned(),
            state: self.state,
            since: self.since,
            consecutive_problems: self.consecutive_problems,
            last_run: self.last_run.as_ref().map(|r| LastRun {
                id: r.id.to_owned(),
                state: r.state,
                started: r.started,
                ended: r.ended,
                duration: r.duration,
                exit_code: r.exit_code,
            }),
            running_since: self.running_since,
            last_notification: self.last_notification.as_ref().map(|n| LastNotification {
                at: n.at,
                kind: n.kind,
                reason: n.reason.to_owned(),
            }),
            uuid: self.uuid.map(str::to_owned),
        }
    }
}

/// The last finished run of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun<S = String> {
    /// Run id.
    pub id: S,
    /// Its state, including neutral ones (`cancelled`).
    pub state: State,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// How long it took.
    pub duration: Option<Duration>,
    /// Its exit code.
    pub exit_code: Option<i32>,
}

/// The last notification made for a job.
#[derive(Clone, Debug, PartialEq)]
pub struct LastNotification<S = String> {
    /// When it was made.
    pub at: Timestamp,
    /// Problem, recovered, OK.
    pub kind: Kind,
    /// The reason code.
    pub reason: S,
}

/// One run, as `belfry history` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// The job.
    pub job: String,
    /// Its state.
    pub state: State,
    /// Start time.
    pub started: Timestamp,
    /// End time, if it ended.
    pub ended: Option<Timestamp>,
    /// Run time.
    pub duration: Option<Duration>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Fatal signal.
    pub signal: Option<i32>,
    /// Host.
    pub host: Option<String>,
    /// Error text.
    pub error: Option<String>,
    /// The rules' reason code for this run's decision.
    pub reason: Option<String>,
    /// The reason in words.
    pub reason_text: Option<String>,
    /// Whether it produced a notification.
    pub notified: bool,
    /// The kept output, if asked for.
    pub output: Option<String>,
    /// Bytes of output written in all.
    pub output_bytes: Option<u64>,
}

/// One outbox row, as `belfry outbox` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// The channel's name.
    pub channel: String,
    /// `pending`, `sending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the notification was made.
    pub created: Timestamp,
    /// When the next attempt is due (pending rows).
    pub next_attempt: Timestamp,
    /// When the row is given up.
    pub deadline: Timestamp,
    /// Until when a process holds it (sending rows).
    pub lease_until: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_reason: Option<String>,
    /// When it was delivered.
    pub delivered: Option<Timestamp>,
    /// The notification's job.
    pub job: String,
    /// The notification's state.
    pub state: State,
    /// Problem, recovered, OK.
    pub kind: Kind,
    /// The rules' reason code.
    pub reason: String,
    /// The row whose message carried this one, if it was folded into a digest.
    pub folded_into: Option<i64>,
    /// How often a sender's lease ran out before it recorded the outcome: each one may have
    /// been a duplicate delivery.
    pub reclaims: u32,
}

/// Counts of outbox rows by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for their next attempt.
    pub pending: u64,
    /// Claimed by a process that is sending them.
    pub sending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up on.
    pub dead: u64,
    /// Sends that may have reached their channel twice: a sender died between sending a row
    /// and recording it, and the row was sent again.
    pub possible_duplicates: u64,
}

/// What a backend needs to apply the rules to one job's event and write what they decide.
pub(crate) struct Rules<'a> {
    pub policy: &'a Policy,
    pub route: &'a dyn Fn(&State, bool) -> Vec<String>,
    pub limits: Limits,
}

/// Which open row of a (job, channel) lane is sent now, and which rows before it are folded
/// into it. `open`: the lane's rows in the order made, each with whether it is a start (a row
/// about a `running` state). Most lanes send the newest and fold the rest into it (a digest);
/// an `in_order` lane ([`Claim::in_order`]) sends its oldest row that is not a start, folding
/// only the starts before it, and leaves the later rows for their turn.
pub(crate) fn lane_pick(open: &[(i64, bool)], in_order: bool) -> Option<(i64, usize)> {
    let last = open.len().checked_sub(1)?;
    let at = if in_order {
        open.iter().position(|&(_, start)| !start).unwrap_or(last)
    } else {
        last
    };
    Some((open[at].0, at))
}

/// A new unique, time-ordered id (UUID v7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
