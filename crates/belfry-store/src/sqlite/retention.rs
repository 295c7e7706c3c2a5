//! What the store keeps, and the pruning that bounds it.
//!
//! Every table is bounded per job: a job's newest runs and pings, its newest notifications with
//! their outbox rows and attempts, and its one `jobs` row. Pruning happens inside the
//! transactions that write new rows, on one new row in 64 of each table (by row id), so its
//! cost is spread thin and does not grow with the store.
//!
//! Runs and pings are pruned by a [`sweep`] in row order, across jobs: each row carries its
//! number among its job's (`runs.seq`, `pings.n`) and the job its count (`jobs.n_runs`,
//! `jobs.n_pings`), so a row is past its job's history when its number is that far below the
//! count. Rows age together in row order, so the rows one step deletes sit side by side: a
//! job-by-job prune deleted rows scattered over as many pages as rows, each page read and
//! written again (a third of the ping writer's time on a store at its bounds, `benches/
//! pings.rs`). Notifications are pruned job by job: they are few, and carry outbox rows.
//!
//! An undelivered outbox row (pending, or leased for sending) is never pruned, nor its
//! notification, nor a row whose message carries it (`folded_into`). A run still going has no
//! number, and is never pruned.
//!
//! The same hook keeps the job's row up to date with its last notification, so that `status`
//! reads one row per job.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::types::Retention;

/// One new row in this many triggers a prune of its job. The tables then hold at most about
/// this many rows per job more than they keep.
const PRUNE_EVERY: i64 = 64;

/// After a finished run was written with row id `rowid`, its job's number `n`: on one in
/// [`PRUNE_EVERY`], if it pushed one of its job's runs out of the `runs_per_job` newest, a step
/// of the runs' [`sweep`]. Steps thus come about as often as rows to delete do; a store whose
/// jobs are all within their history pays nothing.
pub(crate) fn after_run(
    tx: &Transaction<'_>,
    rowid: i64,
    n: i64,
    keep: &Retention,
) -> rusqlite::Result<()> {
    let keep = keep.runs_per_job.max(1);
    if rowid % PRUNE_EVERY != 0 || n <= i64::from(keep) {
        return Ok(());
    }
    sweep(tx, &RUNS, keep)
}

/// After a ping was written with row id `rowid`, its job's number `n`: as [`after_run`],
/// keeping each job's [`PINGS_PER_JOB`](crate::PINGS_PER_JOB) newest pings.
pub(crate) fn after_ping(tx: &Transaction<'_>, rowid: i64, n: i64) -> rusqlite::Result<()> {
    if rowid % PRUNE_EVERY != 0 || n <= i64::from(crate::PINGS_PER_JOB) {
        return Ok(());
    }
    sweep(tx, &PINGS, crate::PINGS_PER_JOB)
}

/// A table pruned by [`sweep`]: its column of each row's number among its job's, the jobs'
/// column that counts them, and the setting that holds where the sweep is.
struct Swept {
    table: &'static str,
    number: &'static str,
    count: &'static str,
    cursor: &'static str,
}

const RUNS: Swept = Swept {
    table: "runs",
    number: "seq",
    count: "n_runs",
    cursor: "prune.runs.after",
};

const PINGS: Swept = Swept {
    table: "pings",
    number: "n",
    count: "n_pings",
    cursor: "prune.pings.after",
};

/// How many rows one step of a sweep looks at: four for each new row, so a pass over a table
/// takes a quarter as many new rows as it holds, and the rows past their job's history stay
/// about a quarter of it (a third measured: 131 pings a job, 100 kept). Looking costs about a
/// microsecond a row (the row's job is read); at eight a row, looking took a fifth of the ping
/// writer's time.
const STEP: i64 = 4 * PRUNE_EVERY;

/// One step of the sweep over `t`: the next [`STEP`] rows after the last step's (kept in the
/// store's settings, so every process continues one sweep), deleting those whose number is
/// `keep` or more below their job's count. After a step that reached the last row, the next
/// starts again from the first.
fn sweep(tx: &Transaction<'_>, t: &Swept, keep: u32) -> rusqlite::Result<()> {
    let after: i64 = tx
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?1")?
        .query_row([t.cursor], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let Swept {
        table,
        number,
        count,
        ..
    } = t;
    let (last, seen): (Option<i64>, i64) = tx
        .prepare_cached(&format!(
            "SELECT MAX(r), COUNT(*) FROM (SELECT rowid AS r FROM {table} WHERE rowid > ?1
             ORDER BY rowid LIMIT ?2)"
        ))?
        .query_row(params![after, STEP], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if let Some(last) = last {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE rowid IN (
                SELECT t.rowid FROM {table} t JOIN jobs j ON j.name = t.job
                WHERE t.rowid > ?1 AND t.rowid <= ?2 AND t.{number} <= j.{count} - ?3)"
        ))?
        .execute(params![after, last, keep])?;
    }
    // A step that reached the last row ends the pass: new rows keep coming after it.
    let next = if seen < STEP { 0 } else { last.unwrap_or(0) };
    tx.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![t.cursor, next.to_string()])?;
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
