//! Checks on SQLite: pings, schedules, and the sweep that marks silent jobs late.

use belfry_core::Timestamp;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::late::{bad, oldest_running, refresh_late, report};
use super::{
    Apply, Sqlite, apply_event, finish_in, load_snapshot, snapshot_at, snapshot_columns, start_in,
    ts,
};
use crate::checks::{
    self, CheckChange, CheckMeta, CheckRow, FlipRow, JobRef, Ping, PingKind, PingOutcome, PingRow,
    RIDLESS_PREFIX, RuleBook,
};
use crate::error::{Error, Result};
use crate::packed::{pack, unpack};
use crate::types::{Recorded, RunEnd};

/// Creates `job`'s row if it has none; `true` if it did.
fn ensure_job(tx: &Transaction<'_>, job: &str, now: Timestamp) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO jobs (name, created_ms, updated_ms) VALUES (?1, ?2, ?2)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![job, now.as_millis()])?
        == 1)
}

/// One job's change of its check fields, inside the caller's transaction; whether the job was
/// created.
fn save_check(
    tx: &Transaction<'_>,
    job: &str,
    change: &CheckChange<'_>,
    now: Timestamp,
) -> rusqlite::Result<bool> {
    let created = ensure_job(tx, job, now)?;
    if let Some(expect) = change.expect {
        tx.prepare_cached("UPDATE jobs SET expect = ?2, expect_set_ms = ?3 WHERE name = ?1")?
            .execute(params![
                job,
                expect.map(checks::expect_json),
                expect.map(|_| now.as_millis())
            ])?;
        refresh_late(tx, job)?;
    }
    if let Some(meta) = change.meta {
        tx.prepare_cached("UPDATE jobs SET meta = ?2 WHERE name = ?1")?
            .execute(params![job, meta.json()])?;
    }
    Ok(created)
}

/// A job found by a ping: its name, its count of pings with this one, its snapshot.
type Counted = (String, i64, Option<belfry_core::JobSnapshot>);

/// Finds a job by name or by uuid (`?1`), counts a ping and resumes it, and returns what
/// [`Counted`] holds.
macro_rules! count_ping_sql {
    ($by:literal) => {
        concat!(
            "UPDATE jobs SET n_pings = n_pings + 1, paused = 0 WHERE ",
            $by,
            " = ?1 RETURNING name, n_pings, ",
            snapshot_columns!()
        )
    };
}
const COUNT_BY_NAME: &str = count_ping_sql!("name");
const COUNT_BY_UUID: &str = count_ping_sql!("uuid");

/// One ping, inside the group's transaction.
fn ping_in(
    tx: &Transaction<'_>,
    p: &Ping<'_>,
    book: &dyn RuleBook,
) -> rusqlite::Result<PingOutcome> {
    // A ping resumes a paused job and takes the job's next number: found, counted and its
    // snapshot read for the rules in one statement.
    let count = |sql: &str, key: &str| -> rusqlite::Result<Option<Counted>> {
        tx.prepare_cached(sql)?
            .query_row([key], |r| {
                let job: String = r.get(0)?;
                let snapshot = snapshot_at(r, 2, &job)?;
                Ok((job, r.get(1)?, snapshot))
            })
            .optional()
    };
    let found = match p.job {
        JobRef::Uuid(u) => count(COUNT_BY_UUID, &u.to_string())?,
        JobRef::Name(n) => count(COUNT_BY_NAME, n)?,
    };
    let (job, n, previous, created) = match (found, p.job) {
        (Some((name, n, previous)), _) => (name, n, previous, false),
        (None, JobRef::Name(name)) if p.create => {
            ensure_job(tx, name, p.at)?;
            let (job, n, previous) =
                count(COUNT_BY_NAME, name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            (job, n, previous, true)
        }
        (None, _) => return Ok(PingOutcome::NotFound),
    };
    let body = String::from_utf8_lossy(p.body);
    let rid = p.rid.map(|r| r.to_string());
    // The run the ping's rid names, kept apart from other jobs' runs of the same rid.
    let run_id = p.rid.map(|r| checks::ping_run_id(&job, r));
    tx.prepare_cached(
        "INSERT INTO pings (job, at_ms, kind, exit_status, rid, body, remote, method,
                            user_agent, n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        job,
        p.at.as_millis(),
        p.kind.name(),
        p.kind.exit_status(),
        rid,
        (!body.is_empty()).then(|| pack(&body)),
        p.remote,
        p.method,
        p.user_agent,
        n
    ])?;
    super::retention::after_ping(tx, tx.last_insert_rowid(), n)?;
    let mut recorded = None;
    match (p.kind, checks::finish_of(p.kind)) {
        (PingKind::Start, _) => {
            let id = match &run_id {
                Some(r) => r.clone(),
                None => {
                    tx.prepare_cached(
                        "DELETE FROM runs WHERE job = ?1 AND state = 'running'
                         AND id LIKE ?2 || '%'",
                    )?
                    .execute(params![job, RIDLESS_PREFIX])?;
                    checks::ridless_run_id()
                }
            };
            start_in(tx, &checks::ping_start(&job, p, id))?;
        }
        (_, Some((state, exit_code))) => {
            let running: Option<(String, i64)> = match &run_id {
                Some(r) => tx
                    .prepare_cached(
                        "SELECT id, started_ms FROM runs
                         WHERE id = ?1 AND job = ?2 AND state = 'running'",
                    )?
                    .query_row(params![r, job], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
                None => tx
                    .prepare_cached(
                        "SELECT id, started_ms FROM runs WHERE job = ?1 AND state = 'running'
                         AND id LIKE ?2 || '%' ORDER BY started_ms DESC LIMIT 1",
                    )?
                    .query_row(params![job, RIDLESS_PREFIX], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            };
            let running = running.map(|r| (r.0, ts(r.1)));
            let event = checks::ping_finish(&job, p, (state, exit_code), running);
            let end = RunEnd {
                event: &event,
                output: Some(&body),
                output_bytes: p.body.len() as u64,
            };
            let rec = checks::with_rules(book, &job, |rules| finish_in(tx, &end, previous, rules))?;
            recorded = Some(Box::new(rec));
        }
        // A start or a finish counted as the job's report where it was recorded; a log ping
        // is a report of its own.
        _ => report(tx, &job, p.at)?,
    }
    Ok(PingOutcome::Recorded {
        job,
        created,
        recorded,
    })
}

impl Sqlite {
    pub(super) fn record_pings_in(
        &mut self,
        pings: &[Ping<'_>],
        book: &dyn RuleBook,
    ) -> Result<Vec<PingOutcome>> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording pings", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let mut out = Vec::with_capacity(pings.len());
        for p in pings {
            out.push(ping_in(&tx, p, book).map_err(&e)?);
        }
        tx.commit().map_err(&e)?;
        let alerted = out.iter().any(|o| {
            matches!(o, PingOutcome::Recorded { recorded: Some(r), .. } if !r.outbox_ids.is_empty())
        });
        if alerted {
            self.sync_alert()?;
        }
        Ok(out)
    }

    pub(super) fn mark_late_in(
        &mut self,
        now: Timestamp,
        limit: u32,
        book: &dyn RuleBook,
    ) -> Result<Vec<Recorded>> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "marking late jobs", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let due: Vec<(String, Option<String>, Option<i64>)> = tx
            .prepare_cached(
                "SELECT name, expect, last_report_ms FROM jobs
                 WHERE late_at_ms <= ?1 AND late_at_ms IS NOT NULL AND paused = 0
                 ORDER BY late_at_ms LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![now.as_millis(), limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(&e)?;
        let mut out = Vec::with_capacity(due.len());
        for (job, json, last) in due {
            let rec = late_one(&tx, &job, json.as_deref(), last.map(ts), now, book).map_err(&e)?;
            out.extend(rec);
        }
        tx.commit().map_err(&e)?;
        if out.iter().any(|r| !r.outbox_ids.is_empty()) {
            self.sync_alert()?;
        }
        Ok(out)
    }

    pub(super) fn next_late_in(&self) -> Result<Option<Timestamp>> {
        self.conn
            .prepare_cached(
                "SELECT MIN(late_at_ms) FROM jobs WHERE late_at_ms IS NOT NULL AND paused = 0",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
            .map(|t| t.map(ts))
            .map_err(self.err("reading the next late time"))
    }

    pub(super) fn save_checks_in(
        &mut self,
        changes: &[(&str, CheckChange<'_>)],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "saving jobs' checks", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let created = changes
            .iter()
            .map(|(job, change)| save_check(&tx, job, change, now))
            .collect::<rusqlite::Result<Vec<bool>>>()
            .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(created)
    }

    pub(super) fn delete_job_in(&mut self, job: &str) -> Result<bool> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "deleting a job", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let n = tx
            .execute("DELETE FROM jobs WHERE name = ?1", [job])
            .map_err(&e)?;
        for sql in [
            "DELETE FROM runs WHERE job = ?1",
            "DELETE FROM pings WHERE job = ?1",
            "DELETE FROM flips WHERE job = ?1",
        ] {
            tx.execute(sql, [job]).map_err(&e)?;
        }
        tx.commit().map_err(&e)?;
        Ok(n == 1)
    }

    pub(super) fn flips_of(&self, job: &str, limit: u32) -> Result<Vec<FlipRow>> {
        let read = || -> rusqlite::Result<Vec<FlipRow>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT at_ms, from_state, to_state FROM flips WHERE job = ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![job, limit], |r| {
                Ok(FlipRow {
                    job: job.to_owned(),
                    at: ts(r.get(0)?),
                    from: r
                        .get::<_, Option<String>>(1)?
                        .map(|s| super::parse_state(&s))
                        .transpose()?,
                    to: super::parse_state(&r.get::<_, String>(2)?)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(self.err("reading a job's state changes"))
    }

    pub(super) fn set_paused_in(
        &mut self,
        job: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<bool> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "pausing or resuming a job", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        // Resuming restarts the watch: silence counts from now (or a later report).
        let n = tx
            .execute(
                "UPDATE jobs SET paused = ?2,
                    expect_set_ms = CASE WHEN ?2 = 0 AND paused = 1 AND expect IS NOT NULL
                                         THEN ?3 ELSE expect_set_ms END
                 WHERE name = ?1",
                params![job, paused, now.as_millis()],
            )
            .map_err(&e)?;
        if n == 0 {
            return Ok(false);
        }
        refresh_late(&tx, job).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(true)
    }

    pub(super) fn check_of(&self, job: JobRef<'_>) -> Result<Option<CheckRow>> {
        let read = || match job {
            JobRef::Uuid(u) => self
                .conn
                .prepare_cached(&format!("{CHECK_SQL} WHERE uuid = ?1"))?
                .query_row([u.to_string()], check_row)
                .optional(),
            JobRef::Name(n) => self
                .conn
                .prepare_cached(&format!("{CHECK_SQL} WHERE name = ?1"))?
                .query_row([n], check_row)
                .optional(),
        };
        read().map_err(self.err("reading a check"))
    }

    pub(super) fn checks_of(&self) -> Result<Vec<CheckRow>> {
        let read = || -> rusqlite::Result<Vec<CheckRow>> {
            self.conn
                .prepare(&format!("{CHECK_SQL} ORDER BY name"))?
                .query_map([], check_row)?
                .collect()
        };
        read().map_err(self.err("reading the checks"))
    }

    pub(super) fn pings_of(&self, job: &str, limit: u32) -> Result<Vec<PingRow>> {
        let read = || -> rusqlite::Result<Vec<PingRow>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, job, at_ms, kind, exit_status, rid, body, remote, method, user_agent,
                        n
                 FROM pings WHERE job = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![job, limit], |r| {
                let kind: String = r.get(3)?;
                let kind = PingKind::from_parts(&kind, r.get(4)?)
                    .ok_or_else(|| bad(job, format!("a ping of unknown kind {kind:?}")))?;
                let rid = r
                    .get::<_, Option<String>>(5)?
                    .map(|s| {
                        s.parse()
                            .map_err(|e| bad(job, format!("a ping's rid: {e}")))
                    })
                    .transpose()?;
                let body = match r.get::<_, Option<Vec<u8>>>(6)? {
                    Some(b) => unpack(&b).map_err(|e| bad(job, format!("a ping's body: {e}")))?,
                    None => String::new(),
                };
                Ok(PingRow {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    at: ts(r.get(2)?),
                    kind,
                    rid,
                    body,
                    remote: r.get(7)?,
                    method: r.get(8)?,
                    user_agent: r.get(9)?,
                    n: r.get::<_, Option<i64>>(10)?.unwrap_or(0).max(0) as u64,
                })
            })?;
            rows.collect()
        };
        read().map_err(self.err("reading pings"))
    }
}

/// A job's check fields, as [`check_row`] reads them.
const CHECK_SQL: &str = "SELECT name, uuid, expect, expect_set_ms, paused, late_at_ms,
        last_report_ms, created_ms, state, meta, n_pings, last_duration_ms,
        (SELECT MIN(started_ms) FROM runs WHERE job = jobs.name AND state = 'running'),
        acked_ms, acked_by
    FROM jobs";

fn check_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckRow> {
    let name: String = r.get(0)?;
    let uuid: String = r.get(1)?;
    let uuid = uuid
        .parse()
        .map_err(|e| bad(&name, format!("its uuid {uuid:?} is not readable: {e}")))?;
    let expect = r
        .get::<_, Option<String>>(2)?
        .map(|j| checks::parse_expect(&name, &j).map_err(|e| bad(&name, e)))
        .transpose()?;
    let state = r
        .get::<_, Option<String>>(8)?
        .map(|s| super::parse_state(&s))
        .transpose()?;
    let meta = CheckMeta::parse(&name, r.get::<_, Option<String>>(9)?.as_deref())
        .map_err(|e| bad(&name, e))?;
    Ok(CheckRow {
        uuid,
        expect,
        expect_set: r.get::<_, Option<i64>>(3)?.map(ts),
        paused: r.get(4)?,
        late_at: r.get::<_, Option<i64>>(5)?.map(ts),
        last_report: r.get::<_, Option<i64>>(6)?.map(ts),
        created: ts(r.get(7)?),
        state,
        meta,
        n_pings: r.get::<_, i64>(10)?.max(0) as u64,
        last_duration: r
            .get::<_, Option<i64>>(11)?
            .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64)),
        running_since: r.get::<_, Option<i64>>(12)?.map(ts),
        acked: match r.get::<_, Option<i64>>(13)? {
            Some(ms) => Some((ts(ms), r.get::<_, Option<String>>(14)?.unwrap_or_default())),
            None => None,
        },
        name,
    })
}

/// Marks one due job late: the Late event through its rules, and its next `late_at`.
fn late_one(
    tx: &Transaction<'_>,
    job: &str,
    json: Option<&str>,
    last: Option<Timestamp>,
    now: Timestamp,
    book: &dyn RuleBook,
) -> rusqlite::Result<Option<Recorded>> {
    let Some(json) = json else {
        // No schedule: nothing to be late for (a stale deadline).
        tx.prepare_cached("UPDATE jobs SET late_at_ms = NULL WHERE name = ?1")?
            .execute([job])?;
        return Ok(None);
    };
    let expect = checks::parse_expect(job, json).map_err(|e| bad(job, e))?;
    let overdue = match expect.max_runtime {
        Some(max) => oldest_running(tx, job, checks::overdue_since(last, max))?
            .filter(|(_, started)| *started + max <= now),
        None => None,
    };
    let event = checks::late_event(job, &expect, last, overdue, now);
    let rec = checks::with_rules(book, job, |rules| {
        let apply = Apply {
            previous: load_snapshot(tx, job)?,
            covers: 1,
            run: None,
            report: false,
        };
        let (rec, _) = apply_event(tx, &event, apply, rules)?;
        if let Some(n) = &rec.notification {
            super::retention::after_notification(tx, &n.job, &n.id, &rules.limits.retention)?;
        }
        Ok::<_, rusqlite::Error>(rec)
    })?;
    tx.prepare_cached("UPDATE jobs SET late_at_ms = ?2 WHERE name = ?1")?
        .execute(params![
            job,
            checks::late_again(&expect, now).map(Timestamp::as_millis)
        ])?;
    Ok(Some(rec))
}
