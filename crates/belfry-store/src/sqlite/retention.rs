//! What the store keeps, and the pruning that bounds it.
//!
//! Every table is bounded per job: a job's newest runs, its newest notifications with their
//! outbox rows and attempts, and its one `jobs` row. Pruning happens inside the transaction that
//! wrote a job's new row, for that job only, on one new row in 64 of each table (by row id), so
//! its cost is spread thin and does not grow with the store: it walks a job's newest entries of
//! one index, never a whole table. An undelivered outbox row (pending, or leased for sending) is
//! never pruned, nor its notification, nor a row whose message carries it (`folded_into`).
//!
//! The same hook keeps the job's row up to date with its last notification, so that `status`
//! reads one row per job.

use rusqlite::{Transaction, params};

use crate::types::Retention;

/// One new row in this many triggers a prune of its job. The tables then hold at most about
/// this many rows per job more than they keep.
const PRUNE_EVERY: i64 = 64;

/// After a run row was written with row id `rowid`: on one in [`PRUNE_EVERY`], deletes the
/// job's finished runs older than its `runs_per_job` newest.
pub(crate) fn after_run(
    tx: &Transaction<'_>,
    job: &str,
    rowid: i64,
    keep: &Retention,
) -> rusqlite::Result<()> {
    if rowid % PRUNE_EVERY != 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "DELETE FROM runs WHERE job = ?1 AND state <> 'running' AND started_ms < (
            SELECT started_ms FROM runs WHERE job = ?1
            ORDER BY started_ms DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![job, keep.runs_per_job.max(1) - 1])?;
    Ok(())
}

/// After the notification `id` of `job` was written: makes it the job's last notification in
/// its row (what `status` shows), and on one in [`PRUNE_EVERY`] (by its row id) deletes the
/// job's notifications older than its `notifications_per_job` newest, with their outbox rows
/// and attempts, except those still undelivered.
pub(crate) fn after_notification(
    tx: &Transaction<'_>,
    job: &str,
    id: &str,
    keep: &Retention,
) -> rusqlite::Result<()> {
    let rowid: i64 = tx
        .prepare_cached("SELECT rowid FROM notifications WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    // A notification dated earlier than the job's last one (a late digest) does not replace it,
    // nor does a healthchecks ping (`belfry run` with a ping URL): it is not an alert.
    tx.prepare_cached(
        "UPDATE jobs SET (last_notification_ms, last_notification_kind, last_notification_reason)
            = (SELECT created_ms, kind, reason FROM notifications WHERE rowid = ?2)
         WHERE name = ?1 AND COALESCE(last_notification_ms, 0) <= (
            SELECT created_ms FROM notifications WHERE rowid = ?2 AND reason <> 'ping')",
    )?
    .execute(params![job, rowid])?;
    if rowid % PRUNE_EVERY != 0 {
        return Ok(());
    }
    let old: Vec<String> = tx
        .prepare_cached(
            "SELECT n.id FROM notifications n
             WHERE n.job = ?1 AND n.created_ms < (
                SELECT created_ms FROM notifications WHERE job = ?1
                ORDER BY created_ms DESC LIMIT 1 OFFSET ?2)
             AND NOT EXISTS (
                SELECT 1 FROM outbox o WHERE o.notification_id = n.id
                AND (o.status IN ('pending', 'sending') OR EXISTS (
                    SELECT 1 FROM outbox f
                    WHERE f.folded_into = o.id AND f.status IN ('pending', 'sending'))))",
        )?
        .query_map(params![job, keep.notifications_per_job.max(1) - 1], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    for id in &old {
        tx.prepare_cached(
            "DELETE FROM attempts WHERE outbox_id IN (
                SELECT id FROM outbox WHERE notification_id = ?1)",
        )?
        .execute([id])?;
        tx.prepare_cached("DELETE FROM outbox WHERE notification_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM notifications WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(())
}
