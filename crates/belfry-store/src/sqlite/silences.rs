//! What the rules' transaction reads and writes of silences and acknowledgements on SQLite
//! (below `mod.rs`, which records alerts with it; the store's calls are in `hush.rs`).

use belfry_core::{Hush, Silence, Timestamp, hush};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::checks::CheckMeta;
use crate::hush::silence_of;

pub(super) const SILENCE_COLUMNS: &str = "id, job, tag, until_ms, reason, created_by, created_ms";

pub(super) fn silence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Silence> {
    Ok(silence_of(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// Why an alert about `job` made at `at` (a reminder or not) is held back, if it is, read
/// inside the transaction recording it. Runs only when the rules decided to notify.
pub(super) fn hush_in(
    tx: &Transaction<'_>,
    job: &str,
    reminder: bool,
    at: Timestamp,
) -> rusqlite::Result<Option<Hush>> {
    let silences = tx
        .prepare_cached(&format!(
            "SELECT {SILENCE_COLUMNS} FROM silences
             WHERE ended_ms IS NULL AND until_ms > ?2 AND (job = ?1 OR tag IS NOT NULL)"
        ))?
        .query_map(params![job, at.as_millis()], silence_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (meta, acked_ms, acked_by): (Option<String>, Option<i64>, Option<String>) = tx
        .prepare_cached("SELECT meta, acked_ms, acked_by FROM jobs WHERE name = ?1")?
        .query_row([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .unwrap_or_default();
    // Unreadable tags cover nothing: the alert goes out rather than being lost.
    let tags = CheckMeta::parse(job, meta.as_deref())
        .map(|m| m.tags)
        .unwrap_or_default();
    let acked = acked_ms.map(|ms| {
        (
            Timestamp::from_millis(ms),
            acked_by.as_deref().unwrap_or(""),
        )
    });
    Ok(hush(reminder, job, &tags, at, &silences, acked))
}

/// Forgets a job's acknowledgement: it recovered.
pub(super) fn clear_ack(tx: &Transaction<'_>, job: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE jobs SET acked_ms = NULL, acked_by = NULL
         WHERE name = ?1 AND acked_ms IS NOT NULL",
    )?
    .execute([job])?;
    Ok(())
}
