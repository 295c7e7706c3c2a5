//! Silences, acknowledgements, settings and a job's notification history on PostgreSQL, as
//! the SQLite backend keeps them: the store's calls (what the rules' transaction reads is in
//! `silences.rs`).

use std::time::Duration;

use belfry_core::{Silence, Timestamp};
use postgres::Client;

use super::Postgres;
use super::conn::Conn;
use super::silences::{SILENCE_COLUMNS, silence_row};
use super::sql::{Tx, parse_kind, parse_state, ts};
use crate::error::Result;
use crate::hush::{
    Acked, AttemptRow, Delivery, NewSilence, NotificationRow, hush_of, scope_columns,
};

fn notifications(c: &mut Conn<'_, Client>, job: &str, limit: u32) -> Tx<Vec<NotificationRow>> {
    let mut out = c
        .query(
            "SELECT id, created_ms, kind, state, reason, run_id, hushed
             FROM notifications WHERE job = $1 ORDER BY created_ms DESC, id DESC LIMIT $2",
            &[&job, &i64::from(limit)],
        )?
        .iter()
        .map(|r| {
            Ok(NotificationRow {
                id: r.try_get(0)?,
                at: ts(r.try_get(1)?),
                kind: parse_kind(r.try_get(2)?)?,
                state: parse_state(r.try_get(3)?)?,
                reason: r.try_get(4)?,
                run_id: r.try_get(5)?,
                hushed: hush_of(r.try_get::<_, Option<&str>>(6)?),
                deliveries: Vec::new(),
            })
        })
        .collect::<Tx<Vec<_>>>()?;
    let ids: Vec<&str> = out.iter().map(|n| n.id.as_str()).collect();
    let rows = c.query(
        "SELECT o.notification_id, o.id, o.channel, o.status, o.folded_into,
                a.at_ms, a.outcome, a.reason, a.elapsed_ms
         FROM outbox o LEFT JOIN attempts a ON a.outbox_id = o.id
         WHERE o.notification_id = ANY($1) ORDER BY o.channel, o.id, a.id",
        &[&ids],
    )?;
    for r in &rows {
        let nid: &str = r.try_get(0)?;
        let Some(n) = out.iter_mut().find(|n| n.id == nid) else {
            continue;
        };
        let id: i64 = r.try_get(1)?;
        if n.deliveries.last().is_none_or(|d| d.id != id) {
            n.deliveries.push(Delivery {
                id,
                channel: r.try_get(2)?,
                status: r.try_get(3)?,
                folded_into: r.try_get(4)?,
                attempts: Vec::new(),
            });
        }
        if let (Some(at), Some(d)) = (r.try_get::<_, Option<i64>>(5)?, n.deliveries.last_mut()) {
            d.attempts.push(AttemptRow {
                at: ts(at),
                outcome: r.try_get(6)?,
                reason: r.try_get(7)?,
                elapsed: r
                    .try_get::<_, Option<i64>>(8)?
                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            });
        }
    }
    Ok(out)
}

impl Postgres {
    pub(super) fn add_silence_in(&mut self, s: &NewSilence<'_>, now: Timestamp) -> Result<Silence> {
        let (job, tag) = scope_columns(s.scope);
        self.write("making a silence", |tx| {
            let r = tx.query_one(
                &format!(
                    "INSERT INTO silences (job, tag, until_ms, reason, created_by, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SILENCE_COLUMNS}"
                ),
                &[
                    &job,
                    &tag,
                    &s.until.as_millis(),
                    &s.reason,
                    &s.by,
                    &now.as_millis(),
                ],
            )?;
            silence_row(&r)
        })
    }

    pub(super) fn silences_at(&self, now: Timestamp) -> Result<Vec<Silence>> {
        self.read("reading the silences", |c| {
            c.query(
                &format!(
                    "SELECT {SILENCE_COLUMNS} FROM silences
                     WHERE ended_ms IS NULL AND until_ms > $1 ORDER BY until_ms, id"
                ),
                &[&now.as_millis()],
            )?
            .iter()
            .map(silence_row)
            .collect()
        })
    }

    pub(super) fn end_silence_in(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        self.write("ending a silence", |tx| {
            Ok(tx.execute(
                "UPDATE silences SET ended_ms = $2
                 WHERE id = $1 AND ended_ms IS NULL AND until_ms > $2",
                &[&id, &now.as_millis()],
            )? == 1)
        })
    }

    pub(super) fn acknowledge_in(&mut self, job: &str, by: &str, now: Timestamp) -> Result<Acked> {
        self.write("acknowledging a problem", |tx| {
            let problems = tx.query_opt(
                "SELECT consecutive_problems FROM jobs WHERE name = $1 FOR UPDATE",
                &[&job],
            )?;
            Ok(match problems {
                None => Acked::NotFound,
                Some(r) if r.try_get::<_, i64>(0)? == 0 => Acked::NoProblem,
                Some(_) => {
                    tx.execute(
                        "UPDATE jobs SET acked_ms = $2, acked_by = $3 WHERE name = $1",
                        &[&job, &now.as_millis(), &by],
                    )?;
                    Acked::Done
                }
            })
        })
    }

    pub(super) fn setting_in(&mut self, key: &str, otherwise: &str) -> Result<String> {
        self.write("reading a setting", |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &otherwise],
            )?;
            Ok(tx
                .query_one("SELECT value FROM settings WHERE key = $1", &[&key])?
                .try_get(0)?)
        })
    }

    pub(super) fn notifications_of(&self, job: &str, limit: u32) -> Result<Vec<NotificationRow>> {
        self.read("reading a job's notifications", |c| {
            notifications(c, job, limit)
        })
    }
}
