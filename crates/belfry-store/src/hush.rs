//! Silences and acknowledgements as stored, and a job's notifications with what became of
//! each (`belfry serve`'s dashboard shows them). The choice of what is held back is
//! [`belfry_core::hush`]; each backend reads its inputs inside the transaction that records the
//! notification, so a silence made before the commit is honoured.

use std::time::Duration;

use belfry_core::{Hush, Kind, Scope, Silence, State, Timestamp};

/// A silence to make.
#[derive(Clone, Copy, Debug)]
pub struct NewSilence<'a> {
    /// What it covers.
    pub scope: &'a Scope,
    /// When it ends.
    pub until: Timestamp,
    /// Why.
    pub reason: &'a str,
    /// Who makes it.
    pub by: &'a str,
}

/// What acknowledging a job's problem did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acked {
    /// Acknowledged now (or again: the time and name are the newest).
    Done,
    /// The job has no problem to acknowledge.
    NoProblem,
    /// No such job.
    NotFound,
}

/// One notification of a job, with what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationRow {
    /// Its id.
    pub id: String,
    /// When it was made.
    pub at: Timestamp,
    /// What kind of message.
    pub kind: Kind,
    /// The job's state it tells of.
    pub state: State,
    /// The rules' reason code (`problem`, `repeated`, `recovered`, …).
    pub reason: String,
    /// The run it is about, if any.
    pub run_id: Option<String>,
    /// Why it was not sent, when it was held back.
    pub hushed: Option<Hush>,
    /// Its deliveries: one per channel, oldest channel name first.
    pub deliveries: Vec<Delivery>,
}

/// One outbox row: a notification's delivery to one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The outbox row's id.
    pub id: i64,
    /// The channel's name.
    pub channel: String,
    /// `pending`, `sending`, `delivered` or `dead`.
    pub status: String,
    /// The row whose message carried this one, when it was folded into a digest.
    pub folded_into: Option<i64>,
    /// Each attempt, oldest first.
    pub attempts: Vec<AttemptRow>,
}

/// One attempt to deliver an outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRow {
    /// When it ended.
    pub at: Timestamp,
    /// `delivered`, `retry` or `permanent`.
    pub outcome: String,
    /// Why, for a failure.
    pub reason: Option<String>,
    /// How long it took.
    pub elapsed: Option<Duration>,
}

/// The notifications one answer lists at most.
pub const NOTIFICATIONS_PER_PAGE: u32 = 200;

/// A silence row's fields, read by both backends: `job` or `tag` (exactly one is set).
pub(crate) fn silence_of(
    id: i64,
    job: Option<String>,
    tag: Option<String>,
    until_ms: i64,
    reason: String,
    by: String,
    created_ms: i64,
) -> Silence {
    let scope = match (job, tag) {
        (Some(j), _) => Scope::Job(j),
        (None, Some(t)) => Scope::Tag(t),
        // The table's CHECK makes this impossible; an empty tag covers no job.
        (None, None) => Scope::Tag(String::new()),
    };
    Silence {
        id,
        scope,
        until: Timestamp::from_millis(until_ms),
        reason,
        by,
        created: Timestamp::from_millis(created_ms),
    }
}

/// A notification's `hushed` column, read back; an unreadable one is shown as a silence with
/// the text as its reason rather than failing the whole history.
pub(crate) fn hush_of(json: Option<&str>) -> Option<Hush> {
    let text = json?;
    Some(
        serde_json::from_str(text).unwrap_or_else(|_| Hush::Silenced {
            id: 0,
            until: Timestamp::from_millis(0),
            reason: text.to_owned(),
        }),
    )
}

/// The JSON a notification's `hushed` column keeps.
pub(crate) fn hush_json(h: &Hush) -> String {
    serde_json::to_string(h).expect("a hush serialises")
}

/// A scope's `(job, tag)` columns.
pub(crate) fn scope_columns(s: &Scope) -> (Option<&str>, Option<&str>) {
    match s {
        Scope::Job(j) => (Some(j.as_str()), None),
        Scope::Tag(t) => (None, Some(t.as_str())),
    }
}
