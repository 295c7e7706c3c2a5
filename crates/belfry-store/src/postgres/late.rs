//! Keeping a job's `late_at` current: what every write that counts as a report calls, inside
//! its transaction. Below both the backend's writes (`mod.rs`) and its checks (`checks.rs`).

use belfry_core::Timestamp;
use postgres::Transaction;

use super::conn::Conn;
use super::sql::{Fail, Tx, ts};
use crate::checks;

type Wtx<'a, 'b> = Conn<'a, Transaction<'b>>;

/// Recomputes `job`'s `late_at` from what its row holds (none when it has no schedule or is
/// paused), inside the caller's transaction.
pub(super) fn refresh_late(tx: &mut Wtx<'_, '_>, job: &str) -> Tx<()> {
    let row = tx.query_opt(
        "SELECT expect, expect_set_ms, last_report_ms, paused FROM jobs WHERE name = $1",
        &[&job],
    )?;
    let (json, watched, last, paused): (Option<String>, Option<i64>, Option<i64>, bool) = match &row
    {
        Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
        None => return Ok(()),
    };
    let late = match json {
        Some(json) if !paused => {
            let expect = checks::parse_expect(job, &json).map_err(Fail::Data)?;
            let running = match expect.max_runtime {
                Some(max) => oldest_running(tx, job, checks::overdue_since(last.map(ts), max))?
                    .map(|(_, t)| t),
                None => None,
            };
            checks::late_at(&expect, watched.map(ts), last.map(ts), running)
        }
        _ => None,
    };
    tx.execute(
        "UPDATE jobs SET late_at_ms = $2 WHERE name = $1 AND late_at_ms IS DISTINCT FROM $2",
        &[&job, &late.map(Timestamp::as_millis)],
    )?;
    Ok(())
}

/// Counts `at` as `job`'s last report (if later than the one it has) and moves its `late_at`
/// on. One statement for a job without a schedule.
pub(super) fn report(tx: &mut Wtx<'_, '_>, job: &str, at: Timestamp) -> Tx<()> {
    let scheduled = tx.query_opt(
        "UPDATE jobs SET last_report_ms = GREATEST(COALESCE(last_report_ms, $2), $2)
         WHERE name = $1 RETURNING expect IS NOT NULL",
        &[&job, &at.as_millis()],
    )?;
    if let Some(r) = scheduled
        && r.try_get::<_, bool>(0)?
    {
        refresh_late(tx, job)?;
    }
    Ok(())
}

/// The oldest run of `job` still going that started at or after `since`: its id and start.
pub(super) fn oldest_running(
    tx: &mut Wtx<'_, '_>,
    job: &str,
    since: Option<Timestamp>,
) -> Tx<Option<(String, Timestamp)>> {
    tx.query_opt(
        "SELECT id, started_ms FROM runs WHERE job = $1 AND state = 'running'
         AND started_ms >= $2 ORDER BY started_ms, n LIMIT 1",
        &[&job, &since.map_or(i64::MIN, Timestamp::as_millis)],
    )?
    .map(|r| Ok((r.try_get(0)?, ts(r.try_get(1)?))))
    .transpose()
}
