//! Reading every row out of a SQLite store, and writing rows copied from another store.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{
    JOB_ROW_SQL, Sqlite, job_row, millis, ms_duration, pack, parse_held, read_notification,
    run_row, ts,
};
use crate::copy::{
    AttemptRecord, Copied, FlipRecord, JobChecks, JobRecord, NotificationRecord, OutboxRecord,
    PingRecord, Record, RunRecord, SilenceRecord,
};
use crate::error::{Error, Result};
use belfry_core::{JobSnapshot, Timestamp};

/// The columns of [`JOB_ROW_SQL`] and after them the rest of the rules' memory and the row's
/// times, read back by [`job_record`].
fn job_records_sql() -> String {
    JOB_ROW_SQL.replace(
        " FROM jobs j",
        ", j.problem_notified, j.last_notified_ms, j.held, j.created_ms, j.updated_ms,
                j.expect, j.expect_set_ms, j.late_at_ms, j.last_report_ms, j.paused,
                j.meta, j.n_pings, j.acked_ms, j.acked_by
         FROM jobs j ORDER BY j.name",
    )
}

fn job_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let row = job_row(r)?.owned();
    let snapshot = match (row.state, row.since) {
        (Some(state), Some(since)) => Some(JobSnapshot {
            state,
            since,
            consecutive_problems: row.consecutive_problems,
            problem_notified: r.get(14)?,
            last_notified_at: r.get::<_, Option<i64>>(15)?.map(ts),
            held: parse_held(&row.name, r.get_ref(16)?.as_str_or_null()?, 16)?,
        }),
        _ => None,
    };
    Ok(JobRecord {
        name: row.name,
        snapshot,
        last_run: row.last_run,
        last_notification: row.last_notification,
        created: ts(r.get(17)?),
        updated: ts(r.get(18)?),
        checks: JobChecks {
            uuid: row.uuid.clone(),
            expect: r.get(19)?,
            expect_set: r.get::<_, Option<i64>>(20)?.map(ts),
            late_at: r.get::<_, Option<i64>>(21)?.map(ts),
            last_report: r.get::<_, Option<i64>>(22)?.map(ts),
            paused: r.get(23)?,
            meta: r.get(24)?,
            n_pings: r.get(25)?,
            acked: r.get::<_, Option<i64>>(26)?.map(ts),
            acked_by: r.get(27)?,
        },
    })
}

impl Sqlite {
    /// Hands every row to `each`, table by table in the order a copy writes them.
    pub(super) fn export_rows(&self, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let read = |sql: &str,
                    each: &mut dyn FnMut(Record) -> Result<()>,
                    f: &dyn Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Record>|
         -> Result<()> {
            let mut stmt = self
                .conn
                .prepare(sql)
                .map_err(self.err("reading the store to copy it"))?;
            let mut rows = stmt
                .query([])
                .map_err(self.err("reading the store to copy it"))?;
            while let Some(r) = rows
                .next()
                .map_err(self.err("reading the store to copy it"))?
            {
                each(f(r).map_err(self.err("reading the store to copy it"))?)?;
            }
            Ok(())
        };
        read(&job_records_sql(), each, &|r| {
            job_record(r).map(|j| Record::Job(Box::new(j)))
        })?;
        read(
            "SELECT id, job, state, started_ms, ended_ms, duration_ms, exit_code, signal, host,
                    error, reason, reason_text, notified, output, output_bytes, pid, boot_id
             FROM runs ORDER BY rowid",
            each,
            &|r| {
                Ok(Record::Run(RunRecord {
                    run: run_row(r)?,
                    pid: r.get(15)?,
                    boot_id: r.get(16)?,
                }))
            },
        )?;
        read(
            "SELECT id, payload, hushed FROM notifications ORDER BY rowid",
            each,
            &|r| {
                let id: String = r.get(0)?;
                let hushed: Option<String> = r.get(2)?;
                read_notification(r.get_ref(1)?)
                    .map(|notification| {
                        Record::Notification(Box::new(NotificationRecord {
                            notification,
                            hushed,
                        }))
                    })
                    .ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Blob,
                            format!("notification {id} cannot be read back").into(),
                        )
                    })
            },
        )?;
        read(
            "SELECT id, notification_id, job, channel, idempotency_key, status, attempts,
                    created_ms, next_attempt_ms, deadline_ms, lease_until_ms, lease_owner,
                    last_reason, delivered_ms, folded_into, reclaims
             FROM outbox ORDER BY id",
            each,
            &|r| {
                Ok(Record::Outbox(OutboxRecord {
                    id: r.get(0)?,
                    notification_id: r.get(1)?,
                    job: r.get(2)?,
                    channel: r.get(3)?,
                    idempotency_key: r.get(4)?,
                    status: r.get(5)?,
                    attempts: r.get(6)?,
                    created: ts(r.get(7)?),
                    next_attempt: ts(r.get(8)?),
                    deadline: ts(r.get(9)?),
                    lease_until: r.get::<_, Option<i64>>(10)?.map(ts),
                    lease_owner: r.get(11)?,
                    last_reason: r.get(12)?,
                    delivered: r.get::<_, Option<i64>>(13)?.map(ts),
                    folded_into: r.get(14)?,
                    reclaims: r.get(15)?,
                }))
            },
        )?;
        read(
            "SELECT id, outbox_id, at_ms, outcome, reason, elapsed_ms FROM attempts ORDER BY id",
            each,
            &|r| {
                Ok(Record::Attempt(AttemptRecord {
                    id: r.get(0)?,
                    outbox_id: r.get(1)?,
                    at: ts(r.get(2)?),
                    outcome: r.get(3)?,
                    reason: r.get(4)?,
                    elapsed: r.get::<_, Option<i64>>(5)?.map(ms_duration),
                }))
            },
        )?;
        read(
            "SELECT id, job, at_ms, kind, exit_status, rid, body, remote, method, user_agent, n
             FROM pings ORDER BY id",
            each,
            &|r| {
                Ok(Record::Ping(PingRecord {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    at: ts(r.get(2)?),
                    kind: r.get(3)?,
                    exit_status: r.get(4)?,
                    rid: r.get(5)?,
                    body: r.get(6)?,
                    remote: r.get(7)?,
                    method: r.get(8)?,
                    user_agent: r.get(9)?,
                    n: r.get(10)?,
                }))
            },
        )?;
        read(
            "SELECT id, job, at_ms, from_state, to_state FROM flips ORDER BY id",
            each,
            &|r| {
                Ok(Record::Flip(FlipRecord {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    at: ts(r.get(2)?),
                    from: r.get(3)?,
                    to: r.get(4)?,
                }))
            },
        )?;
        read(
            "SELECT id, job, tag, until_ms, reason, created_by, created_ms, ended_ms
             FROM silences ORDER BY id",
            each,
            &|r| {
                Ok(Record::Silence(SilenceRecord {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    tag: r.get(2)?,
                    until: ts(r.get(3)?),
                    reason: r.get(4)?,
                    created_by: r.get(5)?,
                    created: ts(r.get(6)?),
                    ended: r.get::<_, Option<i64>>(7)?.map(ts),
                }))
            },
        )?;
        Ok(())
    }

    /// Writes `records` in one transaction, each unless its key is there already.
    pub(super) fn import_rows(&mut self, records: &[Record], copied: &mut Copied) -> Result<()> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "writing copied rows", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        for record in records {
            let written = import_one(&tx, record).map_err(&e)?;
            if let Some(clash) = written.clash {
                return Err(Error::corrupt(
                    &self.path,
                    "writing copied rows",
                    format!(
                        "{clash}: this store holds another store's rows; copy into an empty store"
                    ),
                ));
            }
            copied.count(record, written.inserted);
        }
        tx.commit().map_err(&e)?;
        Ok(())
    }
}

/// What became of one copied record.
struct Written {
    inserted: bool,
    /// The record's id is taken by a different row.
    clash: Option<String>,
}

fn import_one(tx: &rusqlite::Transaction<'_>, record: &Record) -> rusqlite::Result<Written> {
    let done = |n: usize| Written {
        inserted: n > 0,
        clash: None,
    };
    match record {
        Record::Job(j) => {
            let snap = j.snapshot.as_ref();
            let held = snap
                .filter(|s| !s.held.is_empty())
                .map(|s| serde_json::to_string(&s.held).expect("held counts serialise"));
            let last = j.last_run.as_ref();
            let note = j.last_notification.as_ref();
            let kind = note.map(|n| serde_json::to_value(n.kind).expect("a kind serialises"));
            tx.prepare_cached(
                "INSERT INTO jobs (name, state, since_ms, consecutive_problems, problem_notified,
                    last_notified_ms, held, last_run_id, last_run_state, last_run_started_ms,
                    last_run_ended_ms, last_duration_ms, last_exit_code, last_notification_ms,
                    last_notification_kind, last_notification_reason, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                j.name,
                snap.map(|s| s.state.name()),
                snap.map(|s| s.since.as_millis()),
                snap.map_or(0, |s| s.consecutive_problems),
                snap.is_some_and(|s| s.problem_notified),
                snap.and_then(|s| s.last_notified_at)
                    .map(Timestamp::as_millis),
                held,
                last.map(|l| l.id.as_str()),
                last.map(|l| l.state.name()),
                last.map(|l| l.started.as_millis()),
                last.map(|l| l.ended.as_millis()),
                last.and_then(|l| l.duration).map(millis),
                last.and_then(|l| l.exit_code),
                note.map(|n| n.at.as_millis()),
                kind.as_ref().and_then(|k| k.as_str()),
                note.map(|n| n.reason.as_str()),
                j.created.as_millis(),
                j.updated.as_millis(),
            ])
            .and_then(|n| {
                if n > 0 {
                    let c = &j.checks;
                    tx.prepare_cached(
                        "UPDATE jobs SET uuid = COALESCE(?2, uuid), expect = ?3,
                            expect_set_ms = ?4, late_at_ms = ?5, last_report_ms = ?6, paused = ?7,
                            meta = ?8, n_pings = ?9, acked_ms = ?10, acked_by = ?11
                         WHERE name = ?1",
                    )?
                    .execute(params![
                        j.name,
                        c.uuid,
                        c.expect,
                        c.expect_set.map(Timestamp::as_millis),
                        c.late_at.map(Timestamp::as_millis),
                        c.last_report.map(Timestamp::as_millis),
                        c.paused,
                        c.meta,
                        c.n_pings,
                        c.acked.map(Timestamp::as_millis),
                        c.acked_by,
                    ])?;
                }
                Ok(n)
            })
            .map(done)
        }
        Record::Run(RunRecord {
            run: r,
            pid,
            boot_id,
        }) => {
            // A finished run takes its job's next number (see `retention`), in the order
            // the runs come: the order they were written in.
            let n = tx
                .prepare_cached(
                    "INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms,
                        exit_code, signal, host, pid, boot_id, error, reason, reason_text,
                        notified, output, output_bytes, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                        ?16, ?17, CASE WHEN ?3 = 'running' THEN NULL
                            ELSE (SELECT n_runs + 1 FROM jobs WHERE name = ?2) END)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    r.id,
                    r.job,
                    r.state.name(),
                    r.started.as_millis(),
                    r.ended.map(Timestamp::as_millis),
                    r.duration.map(millis),
                    r.exit_code,
                    r.signal,
                    r.host,
                    pid,
                    boot_id,
                    r.error,
                    r.reason,
                    r.reason_text,
                    r.notified,
                    r.output.as_deref().map(pack),
                    r.output_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                ])?;
            if n == 1 && r.state != belfry_core::State::Running {
                tx.prepare_cached("UPDATE jobs SET n_runs = n_runs + 1 WHERE name = ?1")?
                    .execute([&r.job])?;
            }
            Ok(done(n))
        }
        Record::Notification(record) => {
            let n = &record.notification;
            let payload = pack(&serde_json::to_string(n).expect("a notification serialises"));
            let kind = serde_json::to_value(n.kind).expect("a kind serialises");
            tx.prepare_cached(
                "INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms,
                    payload, hushed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                n.id,
                n.job,
                n.run_id,
                kind.as_str(),
                n.state.name(),
                n.reason,
                n.time.as_millis(),
                payload,
                record.hushed,
            ])
            .map(done)
        }
        Record::Outbox(o) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO outbox (id, notification_id, job, channel, idempotency_key,
                        status, attempts, created_ms, next_attempt_ms, deadline_ms,
                        lease_until_ms, lease_owner, last_reason, delivered_ms, folded_into,
                        reclaims)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                        ?16)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    o.id,
                    o.notification_id,
                    o.job,
                    o.channel,
                    o.idempotency_key,
                    o.status,
                    o.attempts,
                    o.created.as_millis(),
                    o.next_attempt.as_millis(),
                    o.deadline.as_millis(),
                    o.lease_until.map(Timestamp::as_millis),
                    o.lease_owner,
                    o.last_reason,
                    o.delivered.map(Timestamp::as_millis),
                    o.folded_into,
                    o.reclaims,
                ])?;
            if n > 0 {
                return Ok(done(n));
            }
            let there: Option<String> = tx
                .query_row(
                    "SELECT idempotency_key FROM outbox WHERE id = ?1",
                    [o.id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(Written {
                inserted: false,
                clash: (there.as_deref() != Some(o.idempotency_key.as_str()))
                    .then(|| format!("outbox row {} is another row here", o.id)),
            })
        }
        Record::Attempt(a) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO attempts (id, outbox_id, at_ms, outcome, reason, elapsed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    a.id,
                    a.outbox_id,
                    a.at.as_millis(),
                    a.outcome,
                    a.reason,
                    a.elapsed.map(millis),
                ])?;
            if n > 0 {
                return Ok(done(n));
            }
            let there: Option<i64> = tx
                .query_row(
                    "SELECT outbox_id FROM attempts WHERE id = ?1",
                    [a.id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(Written {
                inserted: false,
                clash: (there != Some(a.outbox_id))
                    .then(|| format!("delivery attempt {} is another attempt here", a.id)),
            })
        }
        Record::Ping(p) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO pings (id, job, at_ms, kind, exit_status, rid, body, remote,
                        method, user_agent, n)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    p.id,
                    p.job,
                    p.at.as_millis(),
                    p.kind,
                    p.exit_status,
                    p.rid,
                    p.body,
                    p.remote,
                    p.method,
                    p.user_agent,
                    p.n,
                ])?;
            if n > 0 {
                return Ok(done(n));
            }
            let there: Option<(String, i64)> = tx
                .query_row("SELECT job, at_ms FROM pings WHERE id = ?1", [p.id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(Written {
                inserted: false,
                clash: (there != Some((p.job.clone(), p.at.as_millis())))
                    .then(|| format!("ping {} is another ping here", p.id)),
            })
        }
        Record::Flip(f) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO flips (id, job, at_ms, from_state, to_state)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )?
                .execute(params![f.id, f.job, f.at.as_millis(), f.from, f.to])?;
            if n > 0 {
                return Ok(done(n));
            }
            let there: Option<(String, i64)> = tx
                .query_row("SELECT job, at_ms FROM flips WHERE id = ?1", [f.id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(Written {
                inserted: false,
                clash: (there != Some((f.job.clone(), f.at.as_millis())))
                    .then(|| format!("state change {} is another one here", f.id)),
            })
        }
        Record::Silence(q) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO silences (id, job, tag, until_ms, reason, created_by,
                        created_ms, ended_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    q.id,
                    q.job,
                    q.tag,
                    q.until.as_millis(),
                    q.reason,
                    q.created_by,
                    q.created.as_millis(),
                    q.ended.map(Timestamp::as_millis),
                ])?;
            if n > 0 {
                return Ok(done(n));
            }
            let there: Option<i64> = tx
                .query_row(
                    "SELECT created_ms FROM silences WHERE id = ?1",
                    [q.id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(Written {
                inserted: false,
                clash: (there != Some(q.created.as_millis()))
                    .then(|| format!("silence {} is another silence here", q.id)),
            })
        }
    }
}
