//! What a PostgreSQL store keeps: the same bounds as SQLite's (see `sqlite::retention`),
//! pruned a job at a time, on one new row in 64 (by its `n`; for pings, one in 32).

use postgres::Transaction;

use super::conn::Conn;
use super::sql::Tx;
use crate::types::Retention;

/// One new row in this many triggers a prune of its job.
const PRUNE_EVERY: i64 = 64;

/// A job's older pings are deleted on one of its pings in this many: its store then holds at
/// most this many more than it keeps, and a ping rarely pays for a delete (each one's pages
/// are written again at commit). SQLite sweeps them in row order instead
/// (`sqlite::retention`).
const PRUNE_PINGS_EVERY: i64 = 32;

/// After the ping `n` of `job` was written: on one in [`PRUNE_PINGS_EVERY`], deletes the
/// job's pings older than its [`PINGS_PER_JOB`](crate::PINGS_PER_JOB) newest.
pub(super) fn after_ping(tx: &mut Conn<'_, Transaction<'_>>, job: &str, n: i64) -> Tx<()> {
    let keep = i64::from(crate::PINGS_PER_JOB);
    if n % PRUNE_PINGS_EVERY != 0 || n <= keep {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM pings WHERE job = $1 AND n <= $2",
        &[&job, &(n - keep)],
    )?;
    Ok(())
}

/// After the run row `n` of `job` was written: on one in [`PRUNE_EVERY`], deletes the job's
/// finished runs older than its `runs_per_job` newest.
pub(super) fn after_run(
    tx: &mut Conn<'_, Transaction<'_>>,
    job: &str,
    n: i64,
    keep: &Retention,
) -> Tx<()> {
    if n % PRUNE_EVERY != 0 {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM runs WHERE job = $1 AND state <> 'running' AND started_ms < (
            SELECT started_ms FROM runs WHERE job = $1
            ORDER BY started_ms DESC LIMIT 1 OFFSET $2)",
        &[&job, &i64::from(keep.runs_per_job.max(1) - 1)],
    )?;
    Ok(())
}

/// After the notification `id` of `job` was written: makes it the job's last notification in
/// its row, and on one in [`PRUNE_EVERY`] deletes the job's notifications older than its
/// `notifications_per_job` newest, with their outbox rows and attempts, except those still
/// undelivered (or carrying undelivered rows).
pub(super) fn after_notification(
    tx: &mut Conn<'_, Transaction<'_>>,
    job: &str,
    id: &str,
    keep: &Retention,
) -> Tx<()> {
    let n: i64 = tx
        .query_one("SELECT n FROM notifications WHERE id = $1", &[&id])?
        .try_get(0)?;
    // A notification dated earlier than the job's last one (a late digest) does not replace it,
    // nor does a healthchecks ping (`belfry run` with a ping URL): it is not an alert.
    tx.execute(
        "UPDATE jobs SET (last_notification_ms, last_notification_kind, last_notification_reason)
            = (SELECT created_ms, kind, reason FROM notifications WHERE n = $2)
         WHERE name = $1 AND COALESCE(last_notification_ms, 0) <= (
            SELECT created_ms FROM notifications WHERE n = $2 AND reason <> 'ping')",
        &[&job, &n],
    )?;
    if n % PRUNE_EVERY != 0 {
        return Ok(());
    }
    let old: Vec<String> = tx
        .query(
            "SELECT n.id FROM notifications n
             WHERE n.job = $1 AND n.created_ms < (
                SELECT created_ms FROM notifications WHERE job = $1
                ORDER BY created_ms DESC LIMIT 1 OFFSET $2)
             AND NOT EXISTS (
                SELECT 1 FROM outbox o WHERE o.notification_id = n.id
                AND (o.status IN ('pending', 'sending') OR EXISTS (
                    SELECT 1 FROM outbox f
                    WHERE f.folded_into = o.id AND f.status IN ('pending', 'sending'))))",
            &[&job, &i64::from(keep.notifications_per_job.max(1) - 1)],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if old.is_empty() {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM attempts WHERE outbox_id IN (
            SELECT id FROM outbox WHERE notification_id = ANY($1))",
        &[&old],
    )?;
    tx.execute(
        "DELETE FROM outbox WHERE notification_id = ANY($1)",
        &[&old],
    )?;
    tx.execute("DELETE FROM notifications WHERE id = ANY($1)", &[&old])?;
    Ok(())
}
