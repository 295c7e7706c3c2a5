//! Reading every row out of a PostgreSQL store, and writing rows copied from another store
//! (`Store::copy_into`, e.g. from a host's SQLite file into the fleet's database).

use belfry_core::{JobSnapshot, Notification, Timestamp};
use postgres::Transaction;

use super::Postgres;
use super::conn::{Conn, notify};
use super::rules::parse_held;
use super::sql::{
    Fail, JOB_ROW_SQL, Tx, count32, job_row, kind_name, millis, ms_duration, run_row, ts,
};
use crate::copy::{
    AttemptRecord, Copied, FlipRecord, JobChecks, JobRecord, NotificationRecord, OutboxRecord,
    PingRecord, Record, RunRecord, SilenceRecord,
};
use crate::error::Result;

impl Postgres {
    /// Hands every row to `each`, table by table in the order a copy writes them, each table in
    /// the order its rows were written, all as of one moment. Rows stream from the server.
    pub(super) fn export_rows(&self, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        self.read_snapshot("reading the store to copy it", |c| {
            let mut hand = |record: Record| each(record).map_err(Fail::Store);
            let jobs = JOB_ROW_SQL.replace(
                " FROM jobs j",
                ", j.problem_notified, j.last_notified_ms, j.held, j.created_ms, j.updated_ms,
                        j.expect, j.expect_set_ms, j.late_at_ms, j.last_report_ms,
                        j.paused, j.meta, j.n_pings, j.acked_ms, j.acked_by
                 FROM jobs j ORDER BY j.name COLLATE \"C\"",
            );
            c.each_row(&jobs, |r| {
                let row = job_row(r)?.owned();
                let snapshot = match (row.state, row.since) {
                    (Some(state), Some(since)) => Some(JobSnapshot {
                        state,
                        since,
                        consecutive_problems: row.consecutive_problems,
                        problem_notified: r.try_get(14)?,
                        last_notified_at: r.try_get::<_, Option<i64>>(15)?.map(ts),
                        held: parse_held(&row.name, r.try_get(16)?)?,
                    }),
                    _ => None,
                };
                hand(Record::Job(Box::new(JobRecord {
                    name: row.name,
                    snapshot,
                    last_run: row.last_run,
                    last_notification: row.last_notification,
                    created: ts(r.try_get(17)?),
                    updated: ts(r.try_get(18)?),
                    checks: JobChecks {
                        uuid: row.uuid.clone(),
                        expect: r.try_get(19)?,
                        expect_set: r.try_get::<_, Option<i64>>(20)?.map(ts),
                        late_at: r.try_get::<_, Option<i64>>(21)?.map(ts),
                        last_report: r.try_get::<_, Option<i64>>(22)?.map(ts),
                        paused: r.try_get(23)?,
                        meta: r.try_get(24)?,
                        n_pings: r.try_get(25)?,
                        acked: r.try_get::<_, Option<i64>>(26)?.map(ts),
                        acked_by: r.try_get(27)?,
                    },
                })))?;
                Ok(true)
            })?;
            c.each_row(
                "SELECT id, job, state, started_ms, ended_ms, duration_ms, exit_code, signal,
                        host, error, reason, reason_text, notified, output, output_bytes,
                        pid, boot_id
                 FROM runs ORDER BY n",
                |r| {
                    hand(Record::Run(RunRecord {
                        run: run_row(r)?,
                        pid: r
                            .try_get::<_, Option<i64>>(15)?
                            .and_then(|p| u32::try_from(p).ok()),
                        boot_id: r.try_get(16)?,
                    }))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, payload, hushed FROM notifications ORDER BY n",
                |r| {
                    let id: &str = r.try_get(0)?;
                    let notification = crate::packed::unpack(r.try_get(1)?)
                        .ok()
                        .and_then(|json| serde_json::from_str::<Notification>(&json).ok())
                        .ok_or_else(|| {
                            Fail::Data(format!("notification {id} cannot be read back"))
                        })?;
                    hand(Record::Notification(Box::new(NotificationRecord {
                        notification,
                        hushed: r.try_get(2)?,
                    })))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, notification_id, job, channel, idempotency_key, status, attempts,
                        created_ms, next_attempt_ms, deadline_ms, lease_until_ms, lease_owner,
                        last_reason, delivered_ms, folded_into, reclaims
                 FROM outbox ORDER BY id",
                |r| {
                    hand(Record::Outbox(OutboxRecord {
                        id: r.try_get(0)?,
                        notification_id: r.try_get(1)?,
                        job: r.try_get(2)?,
                        channel: r.try_get(3)?,
                        idempotency_key: r.try_get(4)?,
                        status: r.try_get(5)?,
                        attempts: count32(r.try_get::<_, i32>(6)?),
                        created: ts(r.try_get(7)?),
                        next_attempt: ts(r.try_get(8)?),
                        deadline: ts(r.try_get(9)?),
                        lease_until: r.try_get::<_, Option<i64>>(10)?.map(ts),
                        lease_owner: r.try_get(11)?,
                        last_reason: r.try_get(12)?,
                        delivered: r.try_get::<_, Option<i64>>(13)?.map(ts),
                        folded_into: r.try_get(14)?,
                        reclaims: count32(r.try_get::<_, i32>(15)?),
                    }))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, outbox_id, at_ms, outcome, reason, elapsed_ms FROM attempts ORDER BY id",
                |r| {
                    hand(Record::Attempt(AttemptRecord {
                        id: r.try_get(0)?,
                        outbox_id: r.try_get(1)?,
                        at: ts(r.try_get(2)?),
                        outcome: r.try_get(3)?,
                        reason: r.try_get(4)?,
                        elapsed: r.try_get::<_, Option<i64>>(5)?.map(ms_duration),
                    }))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, job, at_ms, kind, exit_status, rid, body, remote, method, user_agent,
                        n
                 FROM pings ORDER BY id",
                |r| {
                    hand(Record::Ping(PingRecord {
                        id: r.try_get(0)?,
                        job: r.try_get(1)?,
                        at: ts(r.try_get(2)?),
                        kind: r.try_get(3)?,
                        exit_status: r.try_get::<_, Option<i32>>(4)?.map(i64::from),
                        rid: r.try_get(5)?,
                        body: r.try_get(6)?,
                        remote: r.try_get(7)?,
                        method: r.try_get(8)?,
                        user_agent: r.try_get(9)?,
                        n: r.try_get(10)?,
                    }))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, job, at_ms, from_state, to_state FROM flips ORDER BY id",
                |r| {
                    hand(Record::Flip(FlipRecord {
                        id: r.try_get(0)?,
                        job: r.try_get(1)?,
                        at: ts(r.try_get(2)?),
                        from: r.try_get(3)?,
                        to: r.try_get(4)?,
                    }))?;
                    Ok(true)
                },
            )?;
            c.each_row(
                "SELECT id, job, tag, until_ms, reason, created_by, created_ms, ended_ms
                 FROM silences ORDER BY id",
                |r| {
                    hand(Record::Silence(SilenceRecord {
                        id: r.try_get(0)?,
                        job: r.try_get(1)?,
                        tag: r.try_get(2)?,
                        until: ts(r.try_get(3)?),
                        reason: r.try_get(4)?,
                        created_by: r.try_get(5)?,
                        created: ts(r.try_get(6)?),
                        ended: r.try_get::<_, Option<i64>>(7)?.map(ts),
                    }))?;
                    Ok(true)
                },
            )?;
            Ok(())
        })
    }

    /// Writes `records` in one transaction, each unless its key is there already. Outbox rows
    /// and attempts keep their ids, so the id sequences are moved past them for the rows this
    /// store makes next; new rows waiting for delivery wake the dispatchers.
    pub(super) fn import_rows(&mut self, records: &[Record], copied: &mut Copied) -> Result<()> {
        let batch = self.write("writing copied rows", |tx| {
            // Counted afresh on each try: a transaction run again must not count twice.
            let mut batch = Copied::default();
            for record in records {
                let inserted = import_one(tx, record)?;
                batch.count(record, inserted);
            }
            for (table, column) in [
                ("outbox", "id"),
                ("attempts", "id"),
                ("pings", "id"),
                ("flips", "id"),
                ("silences", "id"),
            ] {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                            (SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)"
                    ),
                    &[],
                )?;
            }
            if batch.pending > 0 {
                notify(tx)?;
            }
            Ok(batch)
        })?;
        copied.add(&batch);
        Ok(())
    }
}

/// Writes one record unless its key is there; `true` if written. An outbox row or attempt
/// whose id belongs to a different row here is an error: the target holds another store's rows.
fn import_one(tx: &mut Conn<'_, Transaction<'_>>, record: &Record) -> Tx<bool> {
    let clash = |what: String| {
        Fail::Data(format!(
            "{what}: this store holds another store's rows; copy into an empty store"
        ))
    };
    let n = match record {
        Record::Job(j) => {
            let snap = j.snapshot.as_ref();
            let held = snap
                .map(|s| &s.held)
                .filter(|h| !h.is_empty())
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Fail::Data(format!("held runs do not serialise: {e}")))?;
            let last = j.last_run.as_ref();
            let note = j.last_notification.as_ref();
            let kind = note.map(|n| kind_name(n.kind));
            let n = tx.execute(
                "INSERT INTO jobs (name, state, since_ms, consecutive_problems, problem_notified,
                    last_notified_ms, held, last_run_id, last_run_state, last_run_started_ms,
                    last_run_ended_ms, last_duration_ms, last_exit_code, last_notification_ms,
                    last_notification_kind, last_notification_reason, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, $18)
                 ON CONFLICT DO NOTHING",
                &[
                    &j.name,
                    &snap.map(|s| s.state.name()),
                    &snap.map(|s| s.since.as_millis()),
                    &snap.map_or(0, |s| i64::from(s.consecutive_problems)),
                    &snap.is_some_and(|s| s.problem_notified),
                    &snap
                        .and_then(|s| s.last_notified_at)
                        .map(Timestamp::as_millis),
                    &held,
                    &last.map(|l| l.id.as_str()),
                    &last.map(|l| l.state.name()),
                    &last.map(|l| l.started.as_millis()),
                    &last.map(|l| l.ended.as_millis()),
                    &last.and_then(|l| l.duration).map(millis),
                    &last.and_then(|l| l.exit_code),
                    &note.map(|n| n.at.as_millis()),
                    &kind,
                    &note.map(|n| n.reason.as_str()),
                    &j.created.as_millis(),
                    &j.updated.as_millis(),
                ],
            )?;
            if n > 0 {
                let c = &j.checks;
                tx.execute(
                    "UPDATE jobs SET uuid = COALESCE($2, uuid), expect = $3, expect_set_ms = $4,
                        late_at_ms = $5, last_report_ms = $6, paused = $7, meta = $8,
                        n_pings = $9, acked_ms = $10, acked_by = $11
                     WHERE name = $1",
                    &[
                        &j.name,
                        &c.uuid,
                        &c.expect,
                        &c.expect_set.map(Timestamp::as_millis),
                        &c.late_at.map(Timestamp::as_millis),
                        &c.last_report.map(Timestamp::as_millis),
                        &c.paused,
                        &c.meta,
                        &c.n_pings,
                        &c.acked.map(Timestamp::as_millis),
                        &c.acked_by,
                    ],
                )?;
            }
            n
        }
        Record::Run(RunRecord {
            run: r,
            pid,
            boot_id,
        }) => tx.execute(
            "INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms, exit_code,
                signal, host, pid, boot_id, error, reason, reason_text, notified, output,
                output_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT DO NOTHING",
            &[
                &r.id,
                &r.job,
                &r.state.name(),
                &r.started.as_millis(),
                &r.ended.map(Timestamp::as_millis),
                &r.duration.map(millis),
                &r.exit_code,
                &r.signal,
                &r.host,
                &pid.map(i64::from),
                boot_id,
                &r.error,
                &r.reason,
                &r.reason_text,
                &r.notified,
                &r.output.as_deref().map(crate::packed::pack),
                &r.output_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            ],
        )?,
        Record::Notification(record) => {
            let n = &record.notification;
            let json = serde_json::to_string(n)
                .map_err(|e| Fail::Data(format!("a notification does not serialise: {e}")))?;
            tx.execute(
                "INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms,
                    payload, hushed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING",
                &[
                    &n.id,
                    &n.job,
                    &n.run_id,
                    &kind_name(n.kind),
                    &n.state.name(),
                    &n.reason,
                    &n.time.as_millis(),
                    &crate::packed::pack(&json),
                    &record.hushed,
                ],
            )?
        }
        Record::Outbox(o) => {
            tx.execute(
                "INSERT INTO outbox_lanes (job, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&o.job, &o.channel],
            )?;
            let n = tx.execute(
                "INSERT INTO outbox (id, notification_id, job, channel, idempotency_key,
                    status, attempts, created_ms, next_attempt_ms, deadline_ms,
                    lease_until_ms, lease_owner, last_reason, delivered_ms, folded_into,
                    reclaims)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT DO NOTHING",
                &[
                    &o.id,
                    &o.notification_id,
                    &o.job,
                    &o.channel,
                    &o.idempotency_key,
                    &o.status,
                    &i32::try_from(o.attempts).unwrap_or(i32::MAX),
                    &o.created.as_millis(),
                    &o.next_attempt.as_millis(),
                    &o.deadline.as_millis(),
                    &o.lease_until.map(Timestamp::as_millis),
                    &o.lease_owner,
                    &o.last_reason,
                    &o.delivered.map(Timestamp::as_millis),
                    &o.folded_into,
                    &i32::try_from(o.reclaims).unwrap_or(i32::MAX),
                ],
            )?;
            if n == 0 {
                let there: Option<String> = tx
                    .query_opt("SELECT idempotency_key FROM outbox WHERE id = $1", &[&o.id])?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                if there.as_deref() != Some(o.idempotency_key.as_str()) {
                    return Err(clash(format!("outbox row {} is another row here", o.id)));
                }
            }
            n
        }
        Record::Attempt(a) => {
            let n = tx.execute(
                "INSERT INTO attempts (id, outbox_id, at_ms, outcome, reason, elapsed_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING",
                &[
                    &a.id,
                    &a.outbox_id,
                    &a.at.as_millis(),
                    &a.outcome,
                    &a.reason,
                    &a.elapsed.map(millis),
                ],
            )?;
            if n == 0 {
                let there: Option<i64> = tx
                    .query_opt("SELECT outbox_id FROM attempts WHERE id = $1", &[&a.id])?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                if there != Some(a.outbox_id) {
                    return Err(clash(format!(
                        "delivery attempt {} is another attempt here",
                        a.id
                    )));
                }
            }
            n
        }
        Record::Ping(p) => {
            let n = tx.execute(
                "INSERT INTO pings (id, job, at_ms, kind, exit_status, rid, body, remote, method,
                    user_agent, n)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT DO NOTHING",
                &[
                    &p.id,
                    &p.job,
                    &p.at.as_millis(),
                    &p.kind,
                    &p.exit_status.and_then(|s| i32::try_from(s).ok()),
                    &p.rid,
                    &p.body,
                    &p.remote,
                    &p.method,
                    &p.user_agent,
                    &p.n,
                ],
            )?;
            if n == 0 {
                let there = tx
                    .query_opt("SELECT job, at_ms FROM pings WHERE id = $1", &[&p.id])?
                    .map(|r| Ok::<_, Fail>((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
                    .transpose()?;
                if there != Some((p.job.clone(), p.at.as_millis())) {
                    return Err(clash(format!("ping {} is another ping here", p.id)));
                }
            }
            n
        }
        Record::Flip(f) => {
            let n = tx.execute(
                "INSERT INTO flips (id, job, at_ms, from_state, to_state)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&f.id, &f.job, &f.at.as_millis(), &f.from, &f.to],
            )?;
            if n == 0 {
                let there = tx
                    .query_opt("SELECT job, at_ms FROM flips WHERE id = $1", &[&f.id])?
                    .map(|r| Ok::<_, Fail>((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
                    .transpose()?;
                if there != Some((f.job.clone(), f.at.as_millis())) {
                    return Err(clash(format!("state change {} is another one here", f.id)));
                }
            }
            n
        }
        Record::Silence(q) => {
            let n = tx.execute(
                "INSERT INTO silences (id, job, tag, until_ms, reason, created_by, created_ms,
                    ended_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &q.id,
                    &q.job,
                    &q.tag,
                    &q.until.as_millis(),
                    &q.reason,
                    &q.created_by,
                    &q.created.as_millis(),
                    &q.ended.map(Timestamp::as_millis),
                ],
            )?;
            if n == 0 {
                let there = tx
                    .query_opt("SELECT created_ms FROM silences WHERE id = $1", &[&q.id])?
                    .map(|r| r.try_get::<_, i64>(0))
                    .transpose()?;
                if there != Some(q.created.as_millis()) {
                    return Err(clash(format!("silence {} is another silence here", q.id)));
                }
            }
            n
        }
    };
    Ok(n > 0)
}
