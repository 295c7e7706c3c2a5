//! Claiming and settling outbox rows in PostgreSQL.
//!
//! A claim locks each (job, channel) lane it works on: the lane's row in `outbox_lanes`, with
//! `SELECT … FOR UPDATE SKIP LOCKED`. Every change that can put a row of a lane into `sending`
//! (or fold it, or declare it dead) is made by the lane's holder, so that holder reads the
//! lane's rows as they are and no other claimer can change them under it; claimers that find
//! a lane locked skip it, and it is claimed by the next pass. Recording and releasing rows
//! only take rows out of `sending`, so they need no lane lock; the claim's own updates check
//! that a row is still open, since its former holder may record it meanwhile.

use std::collections::HashSet;
use std::time::Duration;

use belfry_core::{Notification, Timestamp};
use postgres::{Row, Transaction};

use super::conn::Conn;
use super::sql::{Fail, Tx, count32, decompress, millis, parse_kind, parse_state, ts};
use crate::types::{Attempt, Claim, Claimed, OutboxRow};

/// See [`Store::claim_due`](crate::Store::claim_due).
pub(super) fn claim_due(
    tx: &mut Conn<'_, Transaction<'_>>,
    now: Timestamp,
    claim: &Claim<'_>,
) -> Tx<Vec<Claimed>> {
    let &Claim {
        owner,
        lease,
        ids,
        limit,
        digest_window,
        window_exempt,
    } = claim;
    let now_ms = now.as_millis();
    let window_ms = millis(digest_window);
    // The lanes holding rows past their deadline, whatever `ids` says (as in SQLite): each is
    // settled by whoever holds its lock.
    let expired: Vec<(String, String)> = lanes(tx.query(
        "SELECT DISTINCT job, channel FROM outbox
             WHERE folded_into IS NULL AND ((status = 'pending' AND deadline_ms <= $1)
                OR (status = 'sending' AND deadline_ms <= $1 AND lease_until_ms < $1))",
        &[&now_ms],
    )?)?;
    // The lanes with something due: rows abandoned by a dead holder, then the longest due.
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for sql in [
        "SELECT job, channel FROM outbox
         WHERE status = 'sending' AND lease_until_ms < $1 AND folded_into IS NULL",
        "SELECT job, channel FROM outbox
         WHERE status = 'pending' AND next_attempt_ms <= $1 AND folded_into IS NULL",
    ] {
        let sql = format!(
            "{sql} AND ($3::bigint[] IS NULL OR id = ANY($3))
             ORDER BY next_attempt_ms, id LIMIT $2"
        );
        let rows = tx.query(&sql, &[&now_ms, &(i64::from(limit) * 2), &ids])?;
        for pair in lanes(rows)? {
            if seen.insert(pair.clone()) {
                groups.push(pair);
            }
        }
    }
    let mut locked = HashSet::new();
    for lane in &expired {
        if lock_lane(tx, lane, &mut locked)? {
            expire(tx, lane, now_ms)?;
        }
    }
    let lease_until = (now + lease).as_millis();
    let mut reps = Vec::new();
    for lane in &groups {
        if reps.len() >= limit as usize {
            break;
        }
        if !lock_lane(tx, lane, &mut locked)? {
            continue;
        }
        let (job, channel) = lane;
        // (id, whether another process holds it now)
        let open: Vec<(i64, bool)> = tx
            .query(
                "SELECT id, status = 'sending' AND lease_until_ms >= $3 FROM outbox
                 WHERE job = $1 AND channel = $2 AND folded_into IS NULL
                   AND status IN ('pending', 'sending')
                 ORDER BY id",
                &[job, channel, &now_ms],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Tx<_>>()?;
        if open.iter().any(|&(_, held)| held) {
            continue;
        }
        let Some(&(rep, _)) = open.last() else {
            continue;
        };
        for &(id, _) in &open[..open.len() - 1] {
            tx.execute(
                "UPDATE outbox SET folded_into = $1, status = 'pending', lease_owner = NULL,
                    lease_until_ms = NULL,
                    reclaims = reclaims + CASE WHEN status = 'sending' THEN 1 ELSE 0 END
                 WHERE (id = $2 OR folded_into = $2) AND status IN ('pending', 'sending')",
                &[&rep, &id],
            )?;
        }
        if window_ms > 0 && !window_exempt.contains(channel) {
            let last: Option<i64> = tx
                .query_one(
                    "SELECT MAX(delivered_ms) FROM outbox WHERE job = $1 AND channel = $2
                        AND status = 'delivered' AND folded_into IS NULL",
                    &[job, channel],
                )?
                .try_get(0)?;
            if let Some(hold) = last.map(|t| t + window_ms).filter(|&h| h > now_ms) {
                tx.execute(
                    "UPDATE outbox SET status = 'pending',
                        next_attempt_ms = GREATEST(next_attempt_ms, $2),
                        lease_owner = NULL, lease_until_ms = NULL,
                        reclaims = reclaims + CASE WHEN status = 'sending' THEN 1 ELSE 0 END
                     WHERE id = $1 AND status IN ('pending', 'sending')",
                    &[&rep, &hold],
                )?;
                continue;
            }
        }
        // Still open: its former holder may have recorded it since the lane was read.
        let taken = tx.execute(
            "UPDATE outbox SET status = 'sending', lease_owner = $2, lease_until_ms = $3,
                attempts = attempts + 1,
                reclaims = reclaims + CASE WHEN status = 'sending' THEN 1 ELSE 0 END
             WHERE id = $1 AND status IN ('pending', 'sending') AND folded_into IS NULL",
            &[&rep, &owner, &lease_until],
        )?;
        if taken == 1 {
            reps.push(rep);
        }
    }
    let mut out = Vec::with_capacity(reps.len());
    for rep in reps {
        out.push(self_claimed(tx, rep)?.ok_or_else(|| {
            Fail::Data(format!(
                "the notification of outbox row {rep} cannot be read back"
            ))
        })?);
    }
    Ok(out)
}

fn lanes(rows: Vec<Row>) -> Tx<Vec<(String, String)>> {
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Takes the lane's lock for the rest of the transaction, unless another claimer holds it.
fn lock_lane(
    tx: &mut Conn<'_, Transaction<'_>>,
    lane: &(String, String),
    locked: &mut HashSet<(String, String)>,
) -> Tx<bool> {
    if locked.contains(lane) {
        return Ok(true);
    }
    let row = tx.query_opt(
        "SELECT 1 FROM outbox_lanes WHERE job = $1 AND channel = $2 FOR UPDATE SKIP LOCKED",
        &[&lane.0, &lane.1],
    )?;
    if row.is_some() {
        locked.insert(lane.clone());
    }
    Ok(row.is_some())
}

/// Declares dead the lane's rows past their deadline (and the rows they carry).
fn expire(
    tx: &mut Conn<'_, Transaction<'_>>,
    (job, channel): &(String, String),
    now_ms: i64,
) -> Tx<()> {
    let dead: Vec<i64> = tx
        .query(
            "UPDATE outbox SET status = 'dead', lease_owner = NULL, lease_until_ms = NULL,
                last_reason = COALESCE(last_reason || '; ', '') || 'delivery deadline passed'
             WHERE job = $1 AND channel = $2 AND folded_into IS NULL
                AND ((status = 'pending' AND deadline_ms <= $3)
                  OR (status = 'sending' AND deadline_ms <= $3 AND lease_until_ms < $3))
             RETURNING id",
            &[job, channel, &now_ms],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for id in dead {
        settle_folded(tx, id)?;
    }
    Ok(())
}

/// Records one delivery attempt of row `id` and releases its lease.
pub(super) fn record_one(
    tx: &mut Conn<'_, Transaction<'_>>,
    id: i64,
    attempt: &Attempt,
    now: Timestamp,
    elapsed: Duration,
) -> Tx<()> {
    let (outcome, reason) = match attempt {
        Attempt::Delivered => ("delivered", None),
        Attempt::Retry { reason, .. } => ("retry", Some(reason.as_str())),
        Attempt::Permanent { reason } => ("permanent", Some(reason.as_str())),
    };
    tx.execute(
        "INSERT INTO attempts (outbox_id, at_ms, outcome, reason, elapsed_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[&id, &now.as_millis(), &outcome, &reason, &millis(elapsed)],
    )?;
    match attempt {
        Attempt::Delivered => tx.execute(
            "UPDATE outbox SET status = 'delivered', delivered_ms = $2, lease_owner = NULL,
                lease_until_ms = NULL WHERE id = $1",
            &[&id, &now.as_millis()],
        ),
        Attempt::Retry { at, reason } => tx.execute(
            "UPDATE outbox SET
                status = CASE WHEN $2 >= deadline_ms THEN 'dead' ELSE 'pending' END,
                next_attempt_ms = $2, last_reason = $3, lease_owner = NULL,
                lease_until_ms = NULL
             WHERE id = $1 AND status = 'sending'",
            &[&id, &at.as_millis(), reason],
        ),
        Attempt::Permanent { reason } => tx.execute(
            "UPDATE outbox SET status = 'dead', last_reason = $2, lease_owner = NULL,
                lease_until_ms = NULL WHERE id = $1",
            &[&id, reason],
        ),
    }?;
    if matches!(attempt, Attempt::Retry { .. }) {
        // A row that waits for a later attempt is work a dispatcher must come back to.
        super::conn::notify(tx)?;
    }
    Ok(())
}

/// The rows folded into `carrier` take its status once it is delivered or dead.
pub(super) fn settle_folded(tx: &mut Conn<'_, Transaction<'_>>, carrier: i64) -> Tx<()> {
    tx.execute(
        "UPDATE outbox o SET status = r.status, delivered_ms = r.delivered_ms,
            last_reason = CASE r.status
                WHEN 'delivered' THEN 'delivered in the digest of row ' || r.id
                ELSE 'folded into row ' || r.id || ', which is dead: '
                     || COALESCE(r.last_reason, '')
            END
         FROM outbox r
         WHERE r.id = $1 AND o.folded_into = $1 AND o.status = 'pending'
           AND r.status IN ('delivered', 'dead')",
        &[&carrier],
    )?;
    Ok(())
}

/// The claimed row `id` with its notification, folded with the rows it carries.
fn self_claimed(tx: &mut Conn<'_, Transaction<'_>>, id: i64) -> Tx<Option<Claimed>> {
    let row = tx.query_one(
        "SELECT o.channel, o.idempotency_key, o.attempts, n.payload
         FROM outbox o JOIN notifications n ON n.id = o.notification_id WHERE o.id = $1",
        &[&id],
    )?;
    let (channel, key, attempts): (String, String, i32) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let Some(mut notification) = decode(row.try_get(3)?) else {
        return Ok(None);
    };
    // The rows folded into this one: their notifications are counted in its digest.
    let carried: Vec<Notification> = tx
        .query(
            "SELECT n.payload FROM outbox o JOIN notifications n ON n.id = o.notification_id
             WHERE o.folded_into = $1 ORDER BY n.created_ms, o.id",
            &[&id],
        )?
        .iter()
        .map(|r| Ok(decode(r.try_get(0)?)))
        .collect::<Tx<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if !carried.is_empty() {
        notification.fold(&carried);
    }
    Ok(Some(Claimed {
        id,
        channel,
        idempotency_key: key,
        attempts: count32(attempts),
        notification,
    }))
}

fn decode(blob: &[u8]) -> Option<Notification> {
    let json = decompress(blob).ok()?;
    serde_json::from_str(&json).ok()
}

/// The columns of an [`OutboxRow`], in the order [`outbox_row`] reads them.
pub(super) const OUTBOX_ROW: &str = "SELECT o.id, o.channel, o.status, o.attempts, o.created_ms,
        o.next_attempt_ms, o.deadline_ms, o.lease_until_ms, o.last_reason, o.delivered_ms,
        n.job, n.state, n.kind, n.reason, o.folded_into, o.reclaims
    FROM outbox o JOIN notifications n ON n.id = o.notification_id";

pub(super) fn outbox_row(r: &Row) -> Tx<OutboxRow> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        channel: r.try_get(1)?,
        status: r.try_get(2)?,
        attempts: count32(r.try_get::<_, i32>(3)?),
        created: ts(r.try_get(4)?),
        next_attempt: ts(r.try_get(5)?),
        deadline: ts(r.try_get(6)?),
        lease_until: r.try_get::<_, Option<i64>>(7)?.map(ts),
        last_reason: r.try_get(8)?,
        delivered: r.try_get::<_, Option<i64>>(9)?.map(ts),
        job: r.try_get(10)?,
        state: parse_state(r.try_get(11)?)?,
        kind: parse_kind(r.try_get(12)?)?,
        reason: r.try_get(13)?,
        folded_into: r.try_get(14)?,
        reclaims: count32(r.try_get::<_, i32>(15)?),
    })
}
