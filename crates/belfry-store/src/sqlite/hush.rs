//! Silences, acknowledgements, settings and a job's notification history on SQLite: the
//! store's calls (what the rules' transaction reads is in `silences.rs`).

use std::time::Duration;

use belfry_core::{Silence, Timestamp};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::silences::{SILENCE_COLUMNS, silence_row};
use super::{Sqlite, parse_kind, parse_state, ts};
use crate::error::{Error, Result};
use crate::hush::{
    Acked, AttemptRow, Delivery, NewSilence, NotificationRow, hush_of, scope_columns,
};

impl Sqlite {
    fn write_tx<T>(
        &mut self,
        doing: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, doing, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let out = f(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(out)
    }

    pub(super) fn add_silence_in(&mut self, s: &NewSilence<'_>, now: Timestamp) -> Result<Silence> {
        let (job, tag) = scope_columns(s.scope);
        self.write_tx("making a silence", |tx| {
            tx.prepare_cached(&format!(
                "INSERT INTO silences (job, tag, until_ms, reason, created_by, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {SILENCE_COLUMNS}"
            ))?
            .query_row(
                params![
                    job,
                    tag,
                    s.until.as_millis(),
                    s.reason,
                    s.by,
                    now.as_millis()
                ],
                silence_row,
            )
        })
    }

    pub(super) fn silences_at(&self, now: Timestamp) -> Result<Vec<Silence>> {
        let read = || {
            self.conn
                .prepare_cached(&format!(
                    "SELECT {SILENCE_COLUMNS} FROM silences
                     WHERE ended_ms IS NULL AND until_ms > ?1 ORDER BY until_ms, id"
                ))?
                .query_map([now.as_millis()], silence_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        };
        read().map_err(self.err("reading the silences"))
    }

    pub(super) fn end_silence_in(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        self.write_tx("ending a silence", |tx| {
            Ok(tx.execute(
                "UPDATE silences SET ended_ms = ?2
                 WHERE id = ?1 AND ended_ms IS NULL AND until_ms > ?2",
                params![id, now.as_millis()],
            )? == 1)
        })
    }

    pub(super) fn acknowledge_in(&mut self, job: &str, by: &str, now: Timestamp) -> Result<Acked> {
        self.write_tx("acknowledging a problem", |tx| {
            let problems: Option<i64> = tx
                .query_row(
                    "SELECT consecutive_problems FROM jobs WHERE name = ?1",
                    [job],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(match problems {
                None => Acked::NotFound,
                Some(0) => Acked::NoProblem,
                Some(_) => {
                    tx.execute(
                        "UPDATE jobs SET acked_ms = ?2, acked_by = ?3 WHERE name = ?1",
                        params![job, now.as_millis(), by],
                    )?;
                    Acked::Done
                }
            })
        })
    }

    pub(super) fn setting_in(&mut self, key: &str, otherwise: &str) -> Result<String> {
        self.write_tx("reading a setting", |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, otherwise],
            )?;
            tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
        })
    }

    pub(super) fn notifications_of(&self, job: &str, limit: u32) -> Result<Vec<NotificationRow>> {
        let read = || -> rusqlite::Result<Vec<NotificationRow>> {
            let mut rows = self
                .conn
                .prepare_cached(
                    "SELECT id, created_ms, kind, state, reason, run_id, hushed
                     FROM notifications WHERE job = ?1
                     ORDER BY created_ms DESC, rowid DESC LIMIT ?2",
                )?
                .query_map(params![job, limit], |r| {
                    Ok(NotificationRow {
                        id: r.get(0)?,
                        at: ts(r.get(1)?),
                        kind: parse_kind(&r.get::<_, String>(2)?)?,
                        state: parse_state(&r.get::<_, String>(3)?)?,
                        reason: r.get(4)?,
                        run_id: r.get(5)?,
                        hushed: hush_of(r.get::<_, Option<String>>(6)?.as_deref()),
                        deliveries: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut outbox = self.conn.prepare_cached(
                "SELECT id, channel, status, folded_into FROM outbox
                 WHERE notification_id = ?1 ORDER BY channel, id",
            )?;
            let mut attempts = self.conn.prepare_cached(
                "SELECT at_ms, outcome, reason, elapsed_ms FROM attempts
                 WHERE outbox_id = ?1 ORDER BY id",
            )?;
            for n in &mut rows {
                n.deliveries = outbox
                    .query_map([&n.id], |r| {
                        Ok(Delivery {
                            id: r.get(0)?,
                            channel: r.get(1)?,
                            status: r.get(2)?,
                            folded_into: r.get(3)?,
                            attempts: Vec::new(),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for d in &mut n.deliveries {
                    d.attempts = attempts
                        .query_map([d.id], |r| {
                            Ok(AttemptRow {
                                at: ts(r.get(0)?),
                                outcome: r.get(1)?,
                                reason: r.get(2)?,
                                elapsed: r
                                    .get::<_, Option<i64>>(3)?
                                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
                            })
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                }
            }
            Ok(rows)
        };
        read().map_err(self.err("reading a job's notifications"))
    }
}
