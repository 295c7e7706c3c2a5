//! The alert rules applied inside a PostgreSQL transaction, as the SQLite backend applies them:
//! the job's row is locked, its snapshot read, `belfry_core` decides, and the job row, the
//! notification and its outbox rows are written before the transaction commits.
//!
//! The lock is what makes a fleet count right: two hosts recording the same job's runs at
//! once take turns on its row, so the second reads the state the first wrote (problems in a
//! row, the last notification) instead of the state both started from.

use std::time::Duration;

use belfry_core::{
    Decision, Digest, DigestCount, Event, JobSnapshot, Kind, Notification, Reason, State,
    Timestamp, advance, begins_spell, decide,
};
use postgres::{Row, Transaction};

use super::{Tx, compress, count32, notify, parse_state, ts};
use crate::{Recorded, Rules};

/// A finished run, as the job row remembers its last one.
pub(super) struct LastRunFields<'a> {
    pub id: &'a str,
    pub state: &'static str,
    pub started_ms: i64,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
}

/// Where a job's last message and its current spell are in its sequence of events (see the
/// SQLite backend's migration 3).
#[derive(Clone, Copy, Debug)]
pub(super) struct Marks {
    notified: Option<i64>,
    since: Option<i64>,
}

/// The rules' memory of a job, with its marks; `FOR UPDATE` is added where the caller is about
/// to change it.
pub(super) const SNAPSHOT_SQL: &str =
    "SELECT state, since_ms, consecutive_problems, problem_notified, last_notified_ms,
           notified_seq, since_seq
    FROM jobs WHERE name = $1";

/// A row of [`SNAPSHOT_SQL`]: `None` for no row, or a job without a state yet.
pub(super) fn snapshot(row: Option<&Row>) -> Tx<Option<(JobSnapshot, Marks)>> {
    let Some(r) = row else {
        return Ok(None);
    };
    let Some(state) = r.try_get::<_, Option<&str>>(0)? else {
        return Ok(None);
    };
    let snapshot = JobSnapshot {
        state: parse_state(state)?,
        since: ts(r.try_get::<_, Option<i64>>(1)?.unwrap_or(0)),
        consecutive_problems: count32(r.try_get::<_, i64>(2)?),
        problem_notified: r.try_get(3)?,
        last_notified_at: r.try_get::<_, Option<i64>>(4)?.map(ts),
    };
    let marks = Marks {
        notified: r.try_get(5)?,
        since: r.try_get(6)?,
    };
    Ok(Some((snapshot, marks)))
}

/// Applies the rules to `ev` (standing for `covers` events) inside `tx`. Returns what was
/// recorded and the event's number in its job's sequence (for the run's row).
pub(super) fn apply_event(
    tx: &mut Transaction<'_>,
    ev: &Event,
    covers: u32,
    run: Option<LastRunFields<'_>>,
    rules: &Rules<'_>,
) -> Tx<(Recorded, i64)> {
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
    let (previous, marks) = snapshot(row.as_ref())?.unzip();
    let mut decision = decide(previous.as_ref(), &ev.state, ev.at, policy);
    let mut next = advance(previous.as_ref(), &ev.state, ev.at, &decision);
    // The rules saw the first of `covers` problems; the ones after it are in the row too.
    let more = covers.saturating_sub(1);
    if more > 0 && ev.state.is_problem() {
        if let Some(n) = next.as_mut() {
            n.consecutive_problems += more;
        }
        if let Reason::Repeated { count, .. } | Reason::ThresholdReached { count } =
            &mut decision.reason
        {
            *count += more;
        }
    }
    let run = run.as_ref();
    let seq: i64 = tx
        .query_one(
            UPDATE_JOB_SQL,
            &[
                &ev.job,
                &next.as_ref().map(|s| s.state.name()),
                &next.as_ref().map(|s| s.since.as_millis()),
                &next
                    .as_ref()
                    .map_or(0, |s| i64::from(s.consecutive_problems)),
                &next.as_ref().is_some_and(|s| s.problem_notified),
                &next
                    .as_ref()
                    .and_then(|s| s.last_notified_at)
                    .map(Timestamp::as_millis),
                &at,
                &run.map(|r| r.id),
                &run.map(|r| r.state),
                &run.map(|r| r.started_ms),
                &run.and_then(|r| r.duration_ms),
                &run.and_then(|r| r.exit_code),
                &decision.notify,
                &begins_spell(previous.as_ref(), &ev.state),
            ],
        )?
        .try_get(0)?;
    let mut rec = Recorded {
        decision,
        previous,
        next: next.clone(),
        notification: None,
        outbox_ids: Vec::new(),
    };
    if !rec.decision.notify {
        return Ok((rec, seq));
    }
    let mut event = ev.clone();
    if event.details.run_id.is_none() {
        event.details.run_id = run.map(|r| r.id.to_owned());
    }
    if run.is_some() && event.details.digest.is_none() {
        event.details.digest = held_back_runs(tx, ev, rec.previous.as_ref(), marks, &rec.decision)?;
    }
    let mut n = Notification::new(
        crate::new_id(),
        &event,
        rec.previous.as_ref(),
        &rec.decision,
    );
    if let Some(after) = rec.next.as_ref().filter(|_| ev.state.is_problem()) {
        n.consecutive_problems = after.consecutive_problems;
    }
    let recovered = n.kind == Kind::Recovered;
    rec.outbox_ids = insert_notification(tx, &n, route(&ev.state, recovered), deadline)?;
    rec.notification = Some(n);
    Ok((rec, seq))
}

/// Writes the rules' new memory into the job's (locked) row and takes the job's next event
/// number. `$8` (the run's id) is NULL for an event that is not a run: the last run stays.
const UPDATE_JOB_SQL: &str = "UPDATE jobs SET
       state = $2, since_ms = $3, consecutive_problems = $4, problem_notified = $5,
       last_notified_ms = $6, updated_ms = GREATEST(updated_ms, $7),
       last_run_id = COALESCE($8, last_run_id),
       last_run_state = COALESCE($9, last_run_state),
       last_run_started_ms = COALESCE($10, last_run_started_ms),
       last_run_ended_ms = CASE WHEN $8::text IS NULL THEN last_run_ended_ms ELSE $7 END,
       last_duration_ms = CASE WHEN $8::text IS NULL THEN last_duration_ms ELSE $11 END,
       last_exit_code = CASE WHEN $8::text IS NULL THEN last_exit_code ELSE $12 END,
       seq = seq + 1,
       notified_seq = CASE WHEN $13 THEN seq + 1 ELSE notified_seq END,
       since_seq = CASE WHEN $14 THEN seq + 1 ELSE since_seq END
    WHERE name = $1
    RETURNING seq";

/// The runs of `ev`'s job that the rules held back since its last message and that this
/// message should count, as its digest (see the SQLite backend's function of the same name:
/// "since" is in the job's sequence of events, numbered in commit order).
fn held_back_runs(
    tx: &mut Transaction<'_>,
    ev: &Event,
    previous: Option<&JobSnapshot>,
    marks: Option<Marks>,
    decision: &Decision,
) -> Tx<Option<Digest>> {
    let (Some(prev), Some(marks)) = (previous, marks) else {
        return Ok(None);
    };
    let problems = match decision.reason {
        Reason::Repeated { .. } | Reason::ThresholdReached { .. } | Reason::Recovered { .. } => {
            true
        }
        Reason::Heartbeat { .. } => false,
        _ => return Ok(None),
    };
    let mut after = marks.notified.unwrap_or(0);
    if problems && prev.state.is_problem() {
        after = after.max(marks.since.unwrap_or(0).saturating_sub(1));
    }
    let rows = tx.query(
        "SELECT state, ended_ms, error FROM runs
         WHERE job = $1 AND seq > $2 AND NOT notified ORDER BY seq",
        &[&ev.job, &after],
    )?;
    let mut count = 0u64;
    let mut states: Vec<DigestCount> = Vec::new();
    let mut first: Option<(i64, Option<String>)> = None;
    for row in &rows {
        let state = parse_state(row.try_get(0)?)?;
        let wanted = if problems {
            state.is_problem()
        } else {
            state == State::Ok
        };
        if !wanted {
            continue;
        }
        count += 1;
        DigestCount::add(&mut states, state, 1);
        let ended_ms = row.try_get::<_, Option<i64>>(1)?.unwrap_or(i64::MAX);
        if first.as_ref().is_none_or(|(t, _)| ended_ms < *t) {
            first = Some((ended_ms, row.try_get(2)?));
        }
    }
    let Some((first_ms, first_error)) = first else {
        return Ok(None);
    };
    let this = if ev.state.is_problem() {
        ev.state
    } else {
        State::Ok
    };
    DigestCount::add(&mut states, this, 1);
    let (first_ms, first_error) = if ev.at.as_millis() < first_ms {
        (ev.at.as_millis(), None)
    } else {
        (first_ms, first_error)
    };
    Ok(Some(Digest {
        count: count + 1,
        states: DigestCount::finish(states),
        first: ts(first_ms),
        first_error: first_error.filter(|e| Some(e) != ev.details.error.as_ref()),
    }))
}

/// Writes a notification to the log and one outbox row per channel (each channel once), due
/// at once, makes sure each row's lane exists, and has listeners woken at the commit.
/// Returns the rows' ids.
pub(super) fn insert_notification(
    tx: &mut Transaction<'_>,
    n: &Notification,
    mut channels: Vec<String>,
    deadline: Duration,
) -> Tx<Vec<i64>> {
    let json = serde_json::to_string(n)
        .map_err(|e| super::Fail::Data(format!("a notification does not serialise: {e}")))?;
    let payload = compress(&json);
    let kind = serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
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
