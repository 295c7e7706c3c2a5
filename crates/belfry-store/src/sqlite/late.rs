//! Keeping a job's `late_at` current: what every write that counts as a report calls, inside
//! its transaction. Below both the backend's writes (`mod.rs`) and its checks (`checks.rs`).

use belfry_core::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::checks;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A read or write whose failure is a database error or a row belfry cannot read.
pub(super) fn bad(job: &str, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("job {job:?}: {what}").into(),
    )
}

/// A job's `expect`, `expect_set_ms`, `last_report_ms` and `paused`.
type WatchRow = (Option<String>, Option<i64>, Option<i64>, bool);

/// Recomputes `job`'s `late_at` from what its row holds (none when it has no schedule or is
/// paused), inside the caller's transaction.
pub(super) fn refresh_late(tx: &Transaction<'_>, job: &str) -> rusqlite::Result<()> {
    let row: Option<WatchRow> = tx
        .prepare_cached(
            "SELECT expect, expect_set_ms, last_report_ms, paused FROM jobs WHERE name = ?1",
        )?
        .query_row([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((Some(json), watched, last, false)) = row else {
        tx.prepare_cached(
            "UPDATE jobs SET late_at_ms = NULL WHERE name = ?1 AND late_at_ms IS NOT NULL",
        )?
        .execute([job])?;
        return Ok(());
    };
    let expect = checks::parse_expect(job, &json).map_err(|e| bad(job, e))?;
    let running = match expect.max_runtime {
        Some(max) => {
            oldest_running(tx, job, checks::overdue_since(last.map(ts), max))?.map(|(_, t)| t)
        }
        None => None,
    };
    let late = checks::late_at(&expect, watched.map(ts), last.map(ts), running);
    tx.prepare_cached("UPDATE jobs SET late_at_ms = ?2 WHERE name = ?1")?
        .execute(params![job, late.map(Timestamp::as_millis)])?;
    Ok(())
}

/// Counts `at` as `job`'s last report (if later than the one it has) and moves its `late_at`
/// on. One statement for a job without a schedule.
pub(super) fn report(tx: &Transaction<'_>, job: &str, at: Timestamp) -> rusqlite::Result<()> {
    let scheduled: Option<bool> = tx
        .prepare_cached(
            "UPDATE jobs SET last_report_ms = MAX(COALESCE(last_report_ms, ?2), ?2)
             WHERE name = ?1 RETURNING expect IS NOT NULL",
        )?
        .query_row(params![job, at.as_millis()], |r| r.get(0))
        .optional()?;
    if scheduled == Some(true) {
        refresh_late(tx, job)?;
    }
    Ok(())
}

/// The oldest run of `job` still going that started at or after `since`: its id and start.
pub(super) fn oldest_running(
    tx: &Transaction<'_>,
    job: &str,
    since: Option<Timestamp>,
) -> rusqlite::Result<Option<(String, Timestamp)>> {
    tx.prepare_cached(
        "SELECT id, started_ms FROM runs WHERE job = ?1 AND state = 'running'
         AND started_ms >= ?2 ORDER BY started_ms LIMIT 1",
    )?
    .query_row(
        params![job, since.map_or(i64::MIN, Timestamp::as_millis)],
        |r| Ok((r.get(0)?, ts(r.get(1)?))),
    )
    .optional()
}
