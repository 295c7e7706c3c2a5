//! Values as the tables keep them, and what goes wrong reading them: the helpers every part
//! of the backend shares, below all of them.

use std::time::Duration;

use belfry_core::{Kind, State, Timestamp};
use postgres::Row;

use crate::error::Error;
use crate::types::{JobRow, LastNotification, LastRun, RunRow};

/// What went wrong inside a transaction: the database's error, or data that belfry cannot read
/// back (a notification that does not decode).
#[derive(Debug)]
pub(super) enum Fail {
    Pg(postgres::Error),
    Data(String),
    /// A caller's callback failed (a copy's target): passed on as it is.
    Store(Error),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

pub(super) type Tx<T> = std::result::Result<T, Fail>;

/// One job as `status` shows it, for `WHERE` and `ORDER BY` clauses on `j` to follow.
pub(super) const JOB_ROW_SQL: &str = "SELECT j.name, j.state, j.since_ms, j.consecutive_problems,
            j.last_run_id, j.last_run_state, j.last_run_started_ms, j.last_run_ended_ms,
            j.last_duration_ms, j.last_exit_code,
            j.last_notification_ms, j.last_notification_kind, j.last_notification_reason,
            j.uuid
     FROM jobs j";

/// A job with a problem, as SQLite's backend says it: exactly those with problems in a row
/// (the partial index `jobs_problems`).
pub(super) const PROBLEMS: &str = "j.consecutive_problems > 0";

/// A row of [`JOB_ROW_SQL`], its strings lent by the row; `running_since` is filled in by the
/// caller.
pub(super) fn job_row(r: &Row) -> Tx<JobRow<&str>> {
    let last_run = match (
        r.try_get::<_, Option<&str>>(4)?,
        r.try_get::<_, Option<&str>>(5)?,
    ) {
        (Some(id), Some(st)) => Some(LastRun {
            id,
            state: parse_state(st)?,
            started: ts(r.try_get(6)?),
            ended: ts(r.try_get(7)?),
            duration: r.try_get::<_, Option<i64>>(8)?.map(ms_duration),
            exit_code: r.try_get(9)?,
        }),
        _ => None,
    };
    let last_notification = match r.try_get::<_, Option<i64>>(10)? {
        Some(at) => Some(LastNotification {
            at: ts(at),
            kind: parse_kind(r.try_get(11)?)?,
            reason: r.try_get(12)?,
        }),
        None => None,
    };
    Ok(JobRow {
        name: r.try_get(0)?,
        state: r
            .try_get::<_, Option<&str>>(1)?
            .map(parse_state)
            .transpose()?,
        since: r.try_get::<_, Option<i64>>(2)?.map(ts),
        consecutive_problems: count32(r.try_get::<_, i64>(3)?),
        last_run,
        running_since: None,
        last_notification,
        uuid: r.try_get(13)?,
    })
}

pub(super) fn parse_state(s: &str) -> Tx<State> {
    s.parse()
        .map_err(|e: belfry_core::UnknownState| Fail::Data(format!("{e}")))
}

/// A notification kind as the tables keep it (`problem`, `recovered`, `ok`).
pub(super) fn kind_name(kind: Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn parse_kind(s: &str) -> Tx<Kind> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| Fail::Data(format!("unknown notification kind {s:?}: {e}")))
}

pub(super) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A count kept as a database integer, as the `u32` the types hold (saturating).
pub(super) fn count32(n: impl Into<i64>) -> u32 {
    u32::try_from(n.into().max(0)).unwrap_or(u32::MAX)
}

/// A duration in the store's milliseconds, saturating.
pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn ms_duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A run as `belfry history` shows it, from the columns `id, job, state, started_ms, ended_ms,
/// duration_ms, exit_code, signal, host, error, reason, reason_text, notified, output,
/// output_bytes` in that order (the output may be NULL: not asked for, or none kept).
pub(super) fn run_row(r: &Row) -> Tx<RunRow> {
    let output = r
        .try_get::<_, Option<&[u8]>>(13)?
        .map(crate::packed::unpack)
        .transpose()
        .map_err(|e| Fail::Data(format!("a run's output cannot be read back: {e}")))?;
    Ok(RunRow {
        id: r.try_get(0)?,
        job: r.try_get(1)?,
        state: parse_state(r.try_get(2)?)?,
        started: ts(r.try_get(3)?),
        ended: r.try_get::<_, Option<i64>>(4)?.map(ts),
        duration: r.try_get::<_, Option<i64>>(5)?.map(ms_duration),
        exit_code: r.try_get(6)?,
        signal: r.try_get(7)?,
        host: r.try_get(8)?,
        error: r.try_get(9)?,
        reason: r.try_get(10)?,
        reason_text: r.try_get(11)?,
        notified: r.try_get(12)?,
        output,
        output_bytes: r
            .try_get::<_, Option<i64>>(14)?
            .map(|n| u64::try_from(n).unwrap_or(0)),
    })
}
