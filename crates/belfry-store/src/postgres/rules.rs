//! The alert rules applied inside a PostgreSQL transaction, as the SQLite backend applies them:
//! the job's row is locked, its snapshot read, `belfry_core::step` decides, and the job row
//! (with the runs held back, as JSON), the notification and its outbox rows are written before
//! the transaction commits.
//!
//! The lock is what makes a fleet count right: two hosts recording the same job's runs at
//! once take turns on its row, so the second reads the state the first wrote (problems in a
//! row, the last notification) instead of the state both started from.

use std::time::Duration;

use belfry_core::{Event, Held, JobSnapshot, Kind, Notification, Timestamp, step};
use postgres::{Row, Transaction};

use super::conn::{Conn, notify};
use super::sql::{Fail, Tx, count32, kind_name, parse_state, ts};
use crate::types::{Recorded, Rules};

/// A finished run, as the job row remembers its last one.
pub(super) struct LastRunFields<'a> {
    pub id: &'a str,
    pub state: &'static str,
    pub started_ms: i64,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
}

/// The rules' memory of a job; `FOR UPDATE` is added where the caller is about to change it.
pub(super) const SNAPSHOT_SQL: &str =
    "SELECT state, since_ms, consecutive_problems, problem_notified, last_notified_ms, held
    FROM jobs WHERE name = $1";

/// A row of [`SNAPSHOT_SQL`] for `job`: `None` for no row, or a job without a state yet.
pub(super) fn snapshot(job: &str, row: Option<&Row>) -> Tx<Option<JobSnapshot>> {
    let Some(r) = row else {
        return Ok(None);
    };
    let Some(state) = r.try_get::<_, Option<&str>>(0)? else {
        return Ok(None);
    };
    let held = parse_held(job, r.try_get(5)?)?;
    Ok(Some(JobSnapshot {
        state: parse_state(state)?,
        since: ts(r.try_get::<_, Option<i64>>(1)?.unwrap_or(0)),
        consecutive_problems: count32(r.try_get::<_, i64>(2)?),
        problem_notified: r.try_get(3)?,
        last_notified_at: r.try_get::<_, Option<i64>>(4)?.map(ts),
        held,
    }))
}

/// `job`'s `held` column: JSON of [`Held`], NULL for none.
pub(super) fn parse_held(job: &str, json: Option<&str>) -> Tx<Held> {
    json.map_or(Ok(Held::default()), |json| {
        serde_json::from_str(json).map_err(|e| {
            Fail::Data(format!(
                "job {job:?}: its held-back runs (`jobs.held`) are not readable: {e}"
            ))
        })
    })
}

/// Applies the rules to `ev` (standing for `covers` events) inside `tx`: locks the job's row,
/// reads its snapshot, calls `belfry_core::step`, and writes what it returns (the job row,
/// the notification and its outbox rows).
pub(super) fn apply_event(
    tx: &mut Conn<'_, Transaction<'_>>,
    ev: &Event,
    covers: u32,
    run: Option<LastRunFields<'_>>,
    rules: &Rules<'_>,
) -> Tx<Recorded> {
    let (policy, route, deadline) = (rules.policy, rules.route, rules.limits.delivery_deadline);
    let at = ev.at.as_millis();
    // The row exists before it is locked: a job's first two events, from two processes, must
    // not both decide as if there were nothing before them.
    let created = run.as_ref().map_or(at, |r| r.started_ms);
    tx.execute(
        "INSERT INTO jobs (name, created_ms, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &[&ev.job, &created, &at],
    )?;
    let row = tx.query_opt(&format!("{SNAPSHOT_SQL} FOR UPDATE"), &[&ev.job])?;
    let previous = snapshot(&ev.job, row.as_ref())?;
    let run = run.as_ref();
    let step = step(previous.as_ref(), ev, covers, run.is_some(), policy);
    // `None` only when there was no snapshot either: the columns keep their empty values.
    let next = step.next.as_ref();
    let held = next
        .map(|s| &s.held)
        .filter(|h| !h.is_empty())
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Fail::Data(format!("the held-back runs do not serialise: {e}")))?;
    tx.execute(
        UPDATE_JOB_SQL,
        &[
            &ev.job,
            &next.map(|s| s.state.name()),
            &next.map(|s| s.since.as_millis()),
            &next.map_or(0, |s| i64::from(s.consecutive_problems)),
            &next.is_some_and(|s| s.problem_notified),
            &next
                .and_then(|s| s.last_notified_at)
                .map(Timestamp::as_millis),
            &at,
            &run.map(|r| r.id),
            &run.map(|r| r.state),
            &run.map(|r| r.started_ms),
            &run.and_then(|r| r.duration_ms),
            &run.and_then(|r| r.exit_code),
            &held,
        ],
    )?;
    if let Some((from, to)) = crate::checks::flip_of(previous.as_ref(), step.next.as_ref()) {
        record_flip(tx, &ev.job, ev.at, from, to)?;
        if !to.is_problem() {
            super::silences::clear_ack(tx, &ev.job)?;
        }
    }
    let mut n = step.notification(crate::types::new_id(), ev, previous.as_ref());
    let mut outbox_ids = Vec::new();
    let mut hushed = None;
    if let Some(n) = n.as_mut() {
        if n.run_id.is_none() {
            n.run_id = run.map(|r| r.id.to_owned());
        }
        hushed = super::silences::hush_in(tx, &ev.job, step.decision.is_reminder(), ev.at)?;
        let recovered = n.kind == Kind::Recovered;
        // A held-back notification is recorded, with why, and sent to no channel.
        let channels = match &hushed {
            None => route(&ev.state, recovered),
            Some(_) => Vec::new(),
        };
        outbox_ids = insert_notification(tx, n, channels, deadline)?;
        if let Some(h) = &hushed {
            set_hushed(tx, &n.id, h)?;
        }
    }
    Ok(Recorded {
        decision: step.decision,
        previous,
        next: step.next,
        notification: n,
        outbox_ids,
        hushed,
    })
}

/// Writes why notification `id` was held back.
pub(super) fn set_hushed(
    tx: &mut Conn<'_, Transaction<'_>>,
    id: &str,
    h: &belfry_core::Hush,
) -> Tx<()> {
    tx.execute(
        "UPDATE notifications SET hushed = $2 WHERE id = $1",
        &[&id, &crate::hush::hush_json(h)],
    )?;
    Ok(())
}

/// Keeps a job's change of state (and no more than the newest
/// [`FLIPS_PER_JOB`](crate::FLIPS_PER_JOB) of them).
fn record_flip(
    tx: &mut Conn<'_, Transaction<'_>>,
    job: &str,
    at: Timestamp,
    from: Option<belfry_core::State>,
    to: belfry_core::State,
) -> Tx<()> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO flips (job, at_ms, from_state, to_state) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&job, &at.as_millis(), &from.map(|s| s.name()), &to.name()],
        )?
        .try_get(0)?;
    tx.execute(
        "DELETE FROM flips WHERE job = $1 AND id < $2 AND id <= (
             SELECT id FROM flips WHERE job = $1 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        &[&job, &id, &i64::from(crate::FLIPS_PER_JOB)],
    )?;
    Ok(())
}

/// Writes the rules' new memory into the job's (locked) row. `$8` (the run's id) is NULL for
/// an event that is not a run: the last run stays.
const UPDATE_JOB_SQL: &str = "UPDATE jobs SET
       state = $2, since_ms = $3, consecutive_problems = $4, problem_notified = $5,
       last_notified_ms = $6, updated_ms = GREATEST(updated_ms, $7),
       last_run_id = COALESCE($8, last_run_id),
       last_run_state = COALESCE($9, last_run_state),
       last_run_started_ms = COALESCE($10, last_run_started_ms),
       last_run_ended_ms = CASE WHEN $8::text IS NULL THEN last_run_ended_ms ELSE $7 END,
       last_duration_ms = CASE WHEN $8::text IS NULL THEN last_duration_ms ELSE $11 END,
       last_exit_code = CASE WHEN $8::text IS NULL THEN last_exit_code ELSE $12 END,
       held = $13
    WHERE name = $1";

/// Writes a notification to the log and one outbox row per channel (each channel once), due
/// at once, makes sure each row's lane exists, and has listeners woken at the commit.
/// Returns the rows' ids.
pub(super) fn insert_notification(
    tx: &mut Conn<'_, Transaction<'_>>,
    n: &Notification,
    mut channels: Vec<String>,
    deadline: Duration,
) -> Tx<Vec<i64>> {
    let json = serde_json::to_string(n)
        .map_err(|e| Fail::Data(format!("a notification does not serialise: {e}")))?;
    let payload = crate::packed::pack(&json);
    let kind = kind_name(n.kind);
    tx.execute(
        "INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &n.id,
            &n.job,
            &n.run_id,
            &kind,
            &n.state.name(),
            &n.reason,
            &n.time.as_millis(),
            &payload,
        ],
    )?;
    channels.sort();
    channels.dedup();
    let now = n.time.as_millis();
    let deadline_ms = (n.time + deadline).as_millis();
    let mut ids = Vec::with_capacity(channels.len());
    for ch in channels {
        tx.execute(
            "INSERT INTO outbox_lanes (job, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&n.job, &ch],
        )?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO outbox (notification_id, job, channel, idempotency_key, status,
                                     created_ms, next_attempt_ms, deadline_ms)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6) RETURNING id",
                &[
                    &n.id,
                    &n.job,
                    &ch,
                    &format!("{}:{ch}", n.id),
                    &now,
                    &deadline_ms,
                ],
            )?
            .try_get(0)?;
        ids.push(id);
    }
    if !ids.is_empty() {
        notify(tx)?;
    }
    Ok(ids)
}
