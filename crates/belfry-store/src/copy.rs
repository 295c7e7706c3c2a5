//! Copying a whole store into another (`belfry store migrate`): every row of every table, as
//! records that no backend's column types leak into, in an order a copy can write them in
//! (jobs, then runs, notifications, outbox rows, attempts, pings, state changes, silences).
//! Writing a record whose key the target already has changes nothing, so a copy can be run
//! again, after an interruption or to pick up what was added since, and copies only what is
//! missing.

use std::fmt;
use std::time::Duration;

use belfry_core::{JobSnapshot, Notification, Timestamp};

use crate::types::{LastNotification, LastRun, RunRow};

/// One row of a store.
#[derive(Clone, Debug)]
pub(crate) enum Record {
    Job(Box<JobRecord>),
    Run(RunRecord),
    Notification(Box<NotificationRecord>),
    Outbox(OutboxRecord),
    Attempt(AttemptRecord),
    Ping(PingRecord),
    Flip(FlipRecord),
    Silence(SilenceRecord),
}

/// A notification, and why it was not sent if it was held back (the `Hush`'s JSON, as
/// stored).
#[derive(Clone, Debug)]
pub(crate) struct NotificationRecord {
    pub notification: Notification,
    pub hushed: Option<String>,
}

/// A silence, in force, over or ended early.
#[derive(Clone, Debug)]
pub(crate) struct SilenceRecord {
    pub id: i64,
    pub job: Option<String>,
    pub tag: Option<String>,
    pub until: Timestamp,
    pub reason: String,
    pub created_by: String,
    pub created: Timestamp,
    pub ended: Option<Timestamp>,
}

/// A job's row: the rules' memory of it and what `status` shows.
#[derive(Clone, Debug)]
pub(crate) struct JobRecord {
    pub name: String,
    pub snapshot: Option<JobSnapshot>,
    pub last_run: Option<LastRun>,
    pub last_notification: Option<LastNotification>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub checks: JobChecks,
}

/// A job's check columns, as the store keeps them (the schedule as its JSON).
#[derive(Clone, Debug, Default)]
pub(crate) struct JobChecks {
    pub uuid: Option<String>,
    pub expect: Option<String>,
    pub expect_set: Option<Timestamp>,
    pub late_at: Option<Timestamp>,
    pub last_report: Option<Timestamp>,
    pub paused: bool,
    pub meta: Option<String>,
    pub n_pings: i64,
    /// When its problem was acknowledged, and by whom.
    pub acked: Option<Timestamp>,
    pub acked_by: Option<String>,
}

/// A kept change of a job's state.
#[derive(Clone, Debug)]
pub(crate) struct FlipRecord {
    pub id: i64,
    pub job: String,
    pub at: Timestamp,
    pub from: Option<String>,
    pub to: String,
}

/// A kept ping, its body as stored (packed).
#[derive(Clone, Debug)]
pub(crate) struct PingRecord {
    pub id: i64,
    pub job: String,
    pub at: Timestamp,
    pub kind: String,
    pub exit_status: Option<i64>,
    pub rid: Option<String>,
    pub body: Option<Vec<u8>>,
    pub remote: Option<String>,
    pub method: String,
    pub user_agent: Option<String>,
    pub n: Option<i64>,
}

/// A run, finished or not, with its kept output, and the watcher's process (what `belfry
/// history` does not show but crashed-run detection reads).
#[derive(Clone, Debug)]
pub(crate) struct RunRecord {
    pub run: RunRow,
    pub pid: Option<u32>,
    pub boot_id: Option<String>,
}

/// An outbox row, whatever its status.
#[derive(Clone, Debug)]
pub(crate) struct OutboxRecord {
    pub id: i64,
    pub notification_id: String,
    pub job: String,
    pub channel: String,
    pub idempotency_key: String,
    pub status: String,
    pub attempts: u32,
    pub created: Timestamp,
    pub next_attempt: Timestamp,
    pub deadline: Timestamp,
    pub lease_until: Option<Timestamp>,
    pub lease_owner: Option<String>,
    pub last_reason: Option<String>,
    pub delivered: Option<Timestamp>,
    pub folded_into: Option<i64>,
    pub reclaims: u32,
}

/// One delivery attempt of an outbox row.
#[derive(Clone, Debug)]
pub(crate) struct AttemptRecord {
    pub id: i64,
    pub outbox_id: i64,
    pub at: Timestamp,
    pub outcome: String,
    pub reason: Option<String>,
    pub elapsed: Option<Duration>,
}

/// What a copy wrote: the records the target did not have yet, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Jobs.
    pub jobs: u64,
    /// Runs, finished or running.
    pub runs: u64,
    /// Notifications.
    pub notifications: u64,
    /// Outbox rows waiting for delivery (pending, or claimed by a sender).
    pub pending: u64,
    /// Outbox rows delivered.
    pub delivered: u64,
    /// Outbox rows given up on.
    pub dead: u64,
    /// Delivery attempts.
    pub attempts: u64,
    /// Pings kept.
    pub pings: u64,
    /// Changes of a job's state kept.
    pub flips: u64,
    /// Silences, in force or not.
    pub silences: u64,
    /// Records the target had already, left as they were there.
    pub already_there: u64,
}

impl Copied {
    /// Counts one record: written (`true`) or found already there.
    pub(crate) fn count(&mut self, record: &Record, written: bool) {
        if !written {
            self.already_there += 1;
            return;
        }
        match record {
            Record::Job(_) => self.jobs += 1,
            Record::Run(_) => self.runs += 1,
            Record::Notification(_) => self.notifications += 1,
            Record::Outbox(o) => match o.status.as_str() {
                "delivered" => self.delivered += 1,
                "dead" => self.dead += 1,
                _ => self.pending += 1,
            },
            Record::Attempt(_) => self.attempts += 1,
            Record::Ping(_) => self.pings += 1,
            Record::Flip(_) => self.flips += 1,
            Record::Silence(_) => self.silences += 1,
        }
    }

    /// Adds what another batch wrote.
    pub(crate) fn add(&mut self, other: &Copied) {
        self.jobs += other.jobs;
        self.runs += other.runs;
        self.notifications += other.notifications;
        self.pending += other.pending;
        self.delivered += other.delivered;
        self.dead += other.dead;
        self.attempts += other.attempts;
        self.pings += other.pings;
        self.flips += other.flips;
        self.silences += other.silences;
        self.already_there += other.already_there;
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        *self
            == Copied {
                already_there: self.already_there,
                ..Copied::default()
            }
    }
}

impl fmt::Display for Copied {
    /// "3 jobs, 41 runs, 5 notifications, outbox rows: 1 pending, 3 delivered, 1 dead, 4
    /// delivery attempts (12 records were there already)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{}, {}, {}, outbox rows: {} pending, {} delivered, {} dead, {}",
            plural(self.jobs, "job", "jobs"),
            plural(self.runs, "run", "runs"),
            plural(self.notifications, "notification", "notifications"),
            self.pending,
            self.delivered,
            self.dead,
            plural(self.attempts, "delivery attempt", "delivery attempts"),
        )?;
        if self.pings > 0 {
            write!(f, ", {}", plural(self.pings, "ping", "pings"))?;
        }
        if self.flips > 0 {
            write!(
                f,
                ", {}",
                plural(self.flips, "state change", "state changes")
            )?;
        }
        if self.silences > 0 {
            write!(f, ", {}", plural(self.silences, "silence", "silences"))?;
        }
        if self.already_there > 0 {
            write!(
                f,
                " ({} already there)",
                plural(self.already_there, "record was", "records were")
            )?;
        }
        Ok(())
    }
}

/// How many records a copy writes in one transaction of the target.
pub(crate) const BATCH: usize = 1000;
