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
use super::sql::{Fail, Tx, count32, millis, parse_kind, parse_state, ts};
use crate::types::{Attempt, Claim, Claimed, OutboxRow, lane_pick};

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
        in_order,
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
    let mut locked = HashSet::new();
    for lane in &expired {
        if lock_lane(tx, lane, &mut locked)? {
            expire(tx, lane, now_ms)?;
        }
    }
    let lease_until = (now + lease).as_millis();
    let mut reps = Vec::new();
    // The lanes with something due: rows abandoned by a dead holder, then the longest due.
    // Between the two, the lanes that need no more than a claim are claimed in one statement
    // (`claim_lone_rows`); the lanes left are looked at one by one.
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, sql) in [
        "SELECT job, channel FROM outbox
         WHERE status = 'sending' AND lease_until_ms < $1 AND folded_into IS NULL",
        "SELECT job, channel FROM outbox
         WHERE status = 'pending' AND next_attempt_ms <= $1 AND folded_into IS NULL",
    ]
    .into_iter()
    .enumerate()
    {
        if i == 1 {
            let room = (limit as usize).saturating_sub(groups.len());
            let lone = claim_lone_rows(
                tx,
                (now_ms, ids),
                (owner, lease_until),
                (window_ms, window_exempt),
                room,
            )?;
            reps.extend(lone);
            if reps.len() + groups.len() >= limit as usize {
                break;
            }
        }
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
    for lane in &groups {
        if reps.len() >= limit as usize {
            break;
        }
        if !lock_lane(tx, lane, &mut locked)? {
            continue;
        }
        let (job, channel) = lane;
        // (id, being sent, whether another process holds it now, whether it is a start)
        let open: Vec<(i64, bool, bool, bool)> = tx
            .query(
                "SELECT id, status = 'sending', status = 'sending' AND lease_until_ms >= $3,
                    COALESCE((SELECT n.state = 'running' FROM notifications n
                              WHERE n.id = outbox.notification_id), FALSE)
                 FROM outbox
                 WHERE job = $1 AND channel = $2 AND folded_into IS NULL
                   AND status IN ('pending', 'sending')
                 ORDER BY id",
                &[job, channel, &now_ms],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Tx<_>>()?;
        if open.iter().any(|&(_, _, held, _)| held) {
            continue;
        }
        let picks: Vec<(i64, bool)> = open.iter().map(|o| (o.0, o.3)).collect();
        let Some((rep, at)) = lane_pick(&picks, in_order.contains(channel)) else {
            continue;
        };
        // A row whose holder's lease ran out may have gone out with every row folded into
        // it: each of those is a possible duplicate too, as the row itself is (below).
        let reclaimed: Vec<i64> = open.iter().filter(|o| o.1).map(|o| o.0).collect();
        if !reclaimed.is_empty() {
            tx.execute(
                "UPDATE outbox SET reclaims = reclaims + 1 WHERE folded_into = ANY($1)",
                &[&reclaimed],
            )?;
        }
        for &(id, ..) in &open[..at] {
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
    claimed(tx, &reps)
}

/// Claims, in one statement, up to `room` due rows that are alone in their (job, channel) lane
/// (no other row of it pending or being sent: nothing to fold, nothing to wait for), whose
/// lane had no delivery inside the digest window, and whose lane no other claimer holds
/// (`FOR UPDATE OF` the lane's row, `SKIP LOCKED`): the common case, a backlog of alerts for
/// distinct jobs. Returns their ids. Every other lane is left to `claim_due`'s look at one
/// lane at a time, which folds and holds.
fn claim_lone_rows(
    tx: &mut Conn<'_, Transaction<'_>>,
    (now_ms, ids): (i64, Option<&[i64]>),
    (owner, lease_until): (&str, i64),
    (window_ms, window_exempt): (i64, &[String]),
    room: usize,
) -> Tx<Vec<i64>> {
    if room == 0 {
        return Ok(Vec::new());
    }
    let room = i64::try_from(room).unwrap_or(i64::MAX);
    let rows = tx.query(
        "WITH lone AS (
            SELECT o.id FROM outbox o
            JOIN outbox_lanes l ON l.job = o.job AND l.channel = o.channel
            WHERE o.status = 'pending' AND o.next_attempt_ms <= $1 AND o.folded_into IS NULL
              AND ($2::bigint[] IS NULL OR o.id = ANY($2))
              AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.job = o.job
                    AND x.channel = o.channel AND x.folded_into IS NULL
                    AND x.status IN ('pending', 'sending') AND x.id <> o.id)
              AND ($3::bigint <= 0 OR o.channel = ANY($4)
                   OR NOT EXISTS (SELECT 1 FROM outbox d WHERE d.job = o.job
                        AND d.channel = o.channel AND d.status = 'delivered'
                        AND d.folded_into IS NULL AND d.delivered_ms + $3 > $1))
            ORDER BY o.next_attempt_ms, o.id
            LIMIT $5
            FOR UPDATE OF l SKIP LOCKED)
         UPDATE outbox SET status = 'sending', lease_owner = $6, lease_until_ms = $7,
             attempts = attempts + 1
         FROM lone WHERE outbox.id = lone.id AND outbox.status = 'pending'
         RETURNING outbox.id",
        &[
            &now_ms,
            &ids,
            &window_ms,
            &window_exempt,
            &room,
            &owner,
            &lease_until,
        ],
    )?;
    let mut ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    Ok(ids)
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

/// The claimed rows `ids`, each with its notification folded with the rows it carries, read
/// in two statements for all of them.
fn claimed(tx: &mut Conn<'_, Transaction<'_>>, ids: &[i64]) -> Tx<Vec<Claimed>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The rows folded into these: their notifications are counted in their carrier's digest.
    let mut carried: std::collections::HashMap<i64, Vec<Notification>> =
        std::collections::HashMap::new();
    for r in tx.query(
        "SELECT o.folded_into, n.payload FROM outbox o
         JOIN notifications n ON n.id = o.notification_id
         WHERE o.folded_into = ANY($1) ORDER BY o.folded_into, n.created_ms, o.id",
        &[&ids],
    )? {
        if let Some(n) = decode(r.try_get(1)?) {
            carried.entry(r.try_get(0)?).or_default().push(n);
        }
    }
    let rows = tx.query(
        "SELECT o.id, o.channel, o.idempotency_key, o.attempts, n.payload
         FROM outbox o JOIN notifications n ON n.id = o.notification_id
         WHERE o.id = ANY($1) ORDER BY o.id",
        &[&ids],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let Some(mut notification) = decode(row.try_get(4)?) else {
            return Err(Fail::Data(format!(
                "the notification of outbox row {id} cannot be read back"
            )));
        };
        if let Some(folded) = carried.get(&id) {
            notification.fold(folded);
        }
        out.push(Claimed {
            id,
            channel: row.try_get(1)?,
            idempotency_key: row.try_get(2)?,
            attempts: count32(row.try_get::<_, i32>(3)?),
            notification,
        });
    }
    Ok(out)
}

/// Records the delivery of each `(row, milliseconds it took)` at `now`, and the rows folded
/// into them follow: what [`record_one`] and [`settle_folded`] do for one row, for a batch in
/// three statements.
pub(super) fn record_deliveries(
    tx: &mut Conn<'_, Transaction<'_>>,
    delivered: &[(i64, i64)],
    now: Timestamp,
) -> Tx<()> {
    if delivered.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = delivered.iter().map(|d| d.0).collect();
    let elapsed: Vec<i64> = delivered.iter().map(|d| d.1).collect();
    let now_ms = now.as_millis();
    tx.execute(
        "INSERT INTO attempts (outbox_id, at_ms, outcome, reason, elapsed_ms)
         SELECT u.id, $2, 'delivered', NULL, u.elapsed
         FROM unnest($1::bigint[], $3::bigint[]) AS u(id, elapsed)",
        &[&ids, &now_ms, &elapsed],
    )?;
    tx.execute(
        "UPDATE outbox SET status = 'delivered', delivered_ms = $2, lease_owner = NULL,
            lease_until_ms = NULL WHERE id = ANY($1)",
        &[&ids, &now_ms],
    )?;
    tx.execute(
        "UPDATE outbox o SET status = 'delivered', delivered_ms = r.delivered_ms,
            last_reason = 'delivered in the digest of row ' || r.id
         FROM outbox r
         WHERE o.folded_into = ANY($1) AND r.id = o.folded_into AND o.status = 'pending'
           AND r.status = 'delivered'",
        &[&ids],
    )?;
    Ok(())
}

fn decode(blob: &[u8]) -> Option<Notification> {
    let json = crate::packed::unpack(blob).ok()?;
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
