//! What the rules' transaction reads and writes of silences and acknowledgements on
//! PostgreSQL (below `rules.rs` and `mod.rs`, which record alerts with it; the store's calls
//! are in `hush.rs`).

use belfry_core::{Hush, Silence, Timestamp, hush};
use postgres::{Row, Transaction};

use super::conn::Conn;
use super::sql::{Tx, ts};
use crate::checks::CheckMeta;
use crate::hush::silence_of;

type Wtx<'a, 'b> = Conn<'a, Transaction<'b>>;

pub(super) const SILENCE_COLUMNS: &str = "id, job, tag, until_ms, reason, created_by, created_ms";

pub(super) fn silence_row(r: &Row) -> Tx<Silence> {
    Ok(silence_of(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
    ))
}

/// Why an alert about `job` made at `at` (a reminder or not) is held back, if it is, read
/// inside the transaction recording it (which holds the job's row lock).
pub(super) fn hush_in(
    tx: &mut Wtx<'_, '_>,
    job: &str,
    reminder: bool,
    at: Timestamp,
) -> Tx<Option<Hush>> {
    let silences = tx
        .query(
            &format!(
                "SELECT {SILENCE_COLUMNS} FROM silences
                 WHERE ended_ms IS NULL AND until_ms > $2 AND (job = $1 OR tag IS NOT NULL)"
            ),
            &[&job, &at.as_millis()],
        )?
        .iter()
        .map(silence_row)
        .collect::<Tx<Vec<_>>>()?;
    let row = tx.query_opt(
        "SELECT meta, acked_ms, acked_by FROM jobs WHERE name = $1",
        &[&job],
    )?;
    let (meta, acked_ms, acked_by): (Option<String>, Option<i64>, Option<String>) = match row {
        Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?),
        None => (None, None, None),
    };
    // Unreadable tags cover nothing: the alert goes out rather than being lost.
    let tags = CheckMeta::parse(job, meta.as_deref())
        .map(|m| m.tags)
        .unwrap_or_default();
    let acked = acked_ms.map(|ms| (ts(ms), acked_by.as_deref().unwrap_or("")));
    Ok(hush(reminder, job, &tags, at, &silences, acked))
}

/// Forgets a job's acknowledgement: it recovered.
pub(super) fn clear_ack(tx: &mut Wtx<'_, '_>, job: &str) -> Tx<()> {
    tx.execute(
        "UPDATE jobs SET acked_ms = NULL, acked_by = NULL
         WHERE name = $1 AND acked_ms IS NOT NULL",
        &[&job],
    )?;
    Ok(())
}
