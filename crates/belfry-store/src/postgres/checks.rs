//! Checks on PostgreSQL: pings, schedules, and the sweep that marks silent jobs late, the
//! same as SQLite's (`sqlite/checks.rs`), with the sweep's jobs locked `SKIP LOCKED` so that
//! processes sweeping at once mark each job once.

use belfry_core::Timestamp;
use postgres::{Client, Transaction};

use super::conn::Conn;
use super::late::{oldest_running, refresh_late, report};
use super::sql::{Fail, Tx, parse_state, ts};
use super::{Postgres, finish_in, rules, start_in};
use crate::checks::{
    self, CheckChange, CheckMeta, CheckRow, FlipRow, JobRef, Ping, PingKind, PingOutcome, PingRow,
    RIDLESS_PREFIX, RuleBook,
};
use crate::error::Result;
use crate::packed::{pack, unpack};
use crate::types::{Recorded, RunEnd};

type Wtx<'a, 'b> = Conn<'a, Transaction<'b>>;

fn ensure_job(tx: &mut Wtx<'_, '_>, job: &str, now: Timestamp) -> Tx<bool> {
    Ok(tx.execute(
        "INSERT INTO jobs (name, created_ms, updated_ms) VALUES ($1, $2, $2)
         ON CONFLICT (name) DO NOTHING",
        &[&job, &now.as_millis()],
    )? == 1)
}

/// One ping, inside the group's transaction.
fn ping_in(tx: &mut Wtx<'_, '_>, p: &Ping<'_>, book: &dyn RuleBook) -> Tx<PingOutcome> {
    // A ping resumes a paused job and takes the job's next number: found and counted in one
    // statement.
    let count = |tx: &mut Wtx<'_, '_>, by: &str, key: &str| -> Tx<Option<(String, i64)>> {
        tx.query_opt(
            &format!(
                "UPDATE jobs SET n_pings = n_pings + 1, paused = FALSE WHERE {by} = $1
                 RETURNING name, n_pings"
            ),
            &[&key],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    };
    let found = match p.job {
        JobRef::Uuid(u) => count(tx, "uuid", &u.to_string())?,
        JobRef::Name(n) => count(tx, "name", n)?,
    };
    let (job, n, created) = match (found, p.job) {
        (Some((name, n)), _) => (name, n, false),
        (None, JobRef::Name(name)) if p.create => {
            let made = ensure_job(tx, name, p.at)?;
            let (job, n) = count(tx, "name", name)?
                .ok_or_else(|| Fail::Data(format!("job {name:?} vanished as it was made")))?;
            (job, n, made)
        }
        (None, _) => return Ok(PingOutcome::NotFound),
    };
    let body = String::from_utf8_lossy(p.body);
    let rid = p.rid.map(|r| r.to_string());
    // The run the ping's rid names, kept apart from other jobs' runs of the same rid.
    let run_id = p.rid.map(|r| checks::ping_run_id(&job, r));
    let packed = (!body.is_empty()).then(|| pack(&body));
    tx.execute(
        "INSERT INTO pings (job, at_ms, kind, exit_status, rid, body, remote, method,
                            user_agent, n)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &job,
            &p.at.as_millis(),
            &p.kind.name(),
            &p.kind.exit_status().map(i32::from),
            &rid,
            &packed,
            &p.remote,
            &p.method,
            &p.user_agent,
            &n,
        ],
    )?;
    super::retention::after_ping(tx, &job, n)?;
    let mut recorded = None;
    match (p.kind, checks::finish_of(p.kind)) {
        (PingKind::Start, _) => {
            let id = match &run_id {
                Some(r) => r.clone(),
                None => {
                    tx.execute(
                        "DELETE FROM runs WHERE job = $1 AND state = 'running'
                         AND id LIKE $2 || '%'",
                        &[&job, &RIDLESS_PREFIX],
                    )?;
                    checks::ridless_run_id()
                }
            };
            start_in(tx, &checks::ping_start(&job, p, id))?;
        }
        (_, Some((state, exit_code))) => {
            let running = match &run_id {
                Some(r) => tx.query_opt(
                    "SELECT id, started_ms FROM runs
                     WHERE id = $1 AND job = $2 AND state = 'running'",
                    &[r, &job],
                )?,
                None => tx.query_opt(
                    "SELECT id, started_ms FROM runs WHERE job = $1 AND state = 'running'
                     AND id LIKE $2 || '%' ORDER BY started_ms DESC, n DESC LIMIT 1",
                    &[&job, &RIDLESS_PREFIX],
                )?,
            };
            let running = match running {
                Some(r) => Some((r.try_get::<_, String>(0)?, ts(r.try_get(1)?))),
                None => None,
            };
            let event = checks::ping_finish(&job, p, (state, exit_code), running);
            let end = RunEnd {
                event: &event,
                output: Some(&body),
                output_bytes: p.body.len() as u64,
            };
            let rec = checks::with_rules(book, &job, |rules| finish_in(tx, &end, rules, false))?;
            recorded = rec.map(Box::new);
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

/// Marks the due jobs late; the ones another process is marking are skipped (it has them).
fn mark_late(
    tx: &mut Wtx<'_, '_>,
    now: Timestamp,
    limit: u32,
    book: &dyn RuleBook,
) -> Tx<Vec<Recorded>> {
    let due = tx.query(
        "SELECT name, expect, last_report_ms FROM jobs
         WHERE late_at_ms <= $1 AND late_at_ms IS NOT NULL AND NOT paused
         ORDER BY late_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&now.as_millis(), &i64::from(limit)],
    )?;
    let mut out = Vec::with_capacity(due.len());
    for r in due {
        let job: String = r.try_get(0)?;
        let json: Option<String> = r.try_get(1)?;
        let last: Option<i64> = r.try_get(2)?;
        let Some(json) = json else {
            tx.execute("UPDATE jobs SET late_at_ms = NULL WHERE name = $1", &[&job])?;
            continue;
        };
        let expect = checks::parse_expect(&job, &json).map_err(Fail::Data)?;
        let overdue = match expect.max_runtime {
            Some(max) => oldest_running(tx, &job, checks::overdue_since(last.map(ts), max))?
                .filter(|(_, started)| *started + max <= now),
            None => None,
        };
        let event = checks::late_event(&job, &expect, last.map(ts), overdue, now);
        let rec = checks::with_rules(book, &job, |rules| {
            let rec = rules::apply_event(tx, &event, 1, None, rules)?;
            if let Some(n) = &rec.notification {
                super::retention::after_notification(tx, &n.job, &n.id, &rules.limits.retention)?;
            }
            Ok::<_, Fail>(rec)
        })?;
        tx.execute(
            "UPDATE jobs SET late_at_ms = $2 WHERE name = $1",
            &[
                &job,
                &checks::late_again(&expect, now).map(Timestamp::as_millis),
            ],
        )?;
        out.push(rec);
    }
    Ok(out)
}

fn next_late(c: &mut Conn<'_, Client>) -> Tx<Option<Timestamp>> {
    Ok(c.query_one(
        "SELECT MIN(late_at_ms) FROM jobs WHERE late_at_ms IS NOT NULL AND NOT paused",
        &[],
    )?
    .try_get::<_, Option<i64>>(0)?
    .map(ts))
}

fn save_check(
    tx: &mut Wtx<'_, '_>,
    job: &str,
    change: &CheckChange<'_>,
    now: Timestamp,
) -> Tx<bool> {
    let created = ensure_job(tx, job, now)?;
    if let Some(expect) = change.expect {
        tx.execute(
            "UPDATE jobs SET expect = $2, expect_set_ms = $3 WHERE name = $1",
            &[
                &job,
                &expect.map(checks::expect_json),
                &expect.map(|_| now.as_millis()),
            ],
        )?;
        refresh_late(tx, job)?;
    }
    if let Some(meta) = change.meta {
        tx.execute(
            "UPDATE jobs SET meta = $2 WHERE name = $1",
            &[&job, &meta.json()],
        )?;
    }
    Ok(created)
}

fn delete_job(tx: &mut Wtx<'_, '_>, job: &str) -> Tx<bool> {
    let n = tx.execute("DELETE FROM jobs WHERE name = $1", &[&job])?;
    for sql in [
        "DELETE FROM runs WHERE job = $1",
        "DELETE FROM pings WHERE job = $1",
        "DELETE FROM flips WHERE job = $1",
    ] {
        tx.execute(sql, &[&job])?;
    }
    Ok(n == 1)
}

fn flips(c: &mut Conn<'_, Client>, job: &str, limit: u32) -> Tx<Vec<FlipRow>> {
    c.query(
        "SELECT at_ms, from_state, to_state FROM flips WHERE job = $1
         ORDER BY id DESC LIMIT $2",
        &[&job, &i64::from(limit)],
    )?
    .iter()
    .map(|r| {
        Ok(FlipRow {
            job: job.to_owned(),
            at: ts(r.try_get(0)?),
            from: r
                .try_get::<_, Option<&str>>(1)?
                .map(parse_state)
                .transpose()?,
            to: parse_state(r.try_get(2)?)?,
        })
    })
    .collect()
}

fn set_paused(tx: &mut Wtx<'_, '_>, job: &str, paused: bool, now: Timestamp) -> Tx<bool> {
    // Resuming restarts the watch: silence counts from now (or a later report).
    let n = tx.execute(
        "UPDATE jobs SET paused = $2,
            expect_set_ms = CASE WHEN NOT $2 AND paused AND expect IS NOT NULL
                                 THEN $3 ELSE expect_set_ms END
         WHERE name = $1",
        &[&job, &paused, &now.as_millis()],
    )?;
    if n == 0 {
        return Ok(false);
    }
    refresh_late(tx, job)?;
    Ok(true)
}

/// A job's check fields, as [`check_row`] reads them.
const CHECK_SQL: &str = "SELECT name, uuid, expect, expect_set_ms, paused, late_at_ms,
        last_report_ms, created_ms, state, meta, n_pings, last_duration_ms,
        (SELECT MIN(started_ms) FROM runs WHERE job = jobs.name AND state = 'running'),
        acked_ms, acked_by
    FROM jobs";

fn check_row(r: &postgres::Row) -> Tx<CheckRow> {
    let name: String = r.try_get(0)?;
    let uuid: String = r.try_get(1)?;
    let uuid = uuid.parse().map_err(|e| {
        Fail::Data(format!(
            "job {name:?}: its uuid {uuid:?} is not readable: {e}"
        ))
    })?;
    let expect = r
        .try_get::<_, Option<String>>(2)?
        .map(|j| checks::parse_expect(&name, &j).map_err(Fail::Data))
        .transpose()?;
    let state = r
        .try_get::<_, Option<&str>>(8)?
        .map(parse_state)
        .transpose()?;
    let meta = CheckMeta::parse(&name, r.try_get::<_, Option<&str>>(9)?).map_err(Fail::Data)?;
    Ok(CheckRow {
        uuid,
        expect,
        expect_set: r.try_get::<_, Option<i64>>(3)?.map(ts),
        paused: r.try_get(4)?,
        late_at: r.try_get::<_, Option<i64>>(5)?.map(ts),
        last_report: r.try_get::<_, Option<i64>>(6)?.map(ts),
        created: ts(r.try_get(7)?),
        state,
        meta,
        n_pings: r.try_get::<_, i64>(10)?.max(0) as u64,
        last_duration: r
            .try_get::<_, Option<i64>>(11)?
            .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64)),
        running_since: r.try_get::<_, Option<i64>>(12)?.map(ts),
        acked: match r.try_get::<_, Option<i64>>(13)? {
            Some(ms) => Some((
                ts(ms),
                r.try_get::<_, Option<String>>(14)?.unwrap_or_default(),
            )),
            None => None,
        },
        name,
    })
}

fn check(c: &mut Conn<'_, Client>, job: JobRef<'_>) -> Tx<Option<CheckRow>> {
    let row = match job {
        JobRef::Uuid(u) => {
            c.query_opt(&format!("{CHECK_SQL} WHERE uuid = $1"), &[&u.to_string()])?
        }
        JobRef::Name(n) => c.query_opt(&format!("{CHECK_SQL} WHERE name = $1"), &[&n])?,
    };
    row.as_ref().map(check_row).transpose()
}

fn all_checks(c: &mut Conn<'_, Client>) -> Tx<Vec<CheckRow>> {
    c.query(&format!("{CHECK_SQL} ORDER BY name"), &[])?
        .iter()
        .map(check_row)
        .collect()
}

fn pings(c: &mut Conn<'_, Client>, job: &str, limit: u32) -> Tx<Vec<PingRow>> {
    c.query(
        "SELECT id, job, at_ms, kind, exit_status, rid, body, remote, method, user_agent, n
         FROM pings WHERE job = $1 ORDER BY id DESC LIMIT $2",
        &[&job, &i64::from(limit)],
    )?
    .iter()
    .map(|r| {
        let bad = |what: String| Fail::Data(format!("job {job:?}: {what}"));
        let kind: &str = r.try_get(3)?;
        let status: Option<i32> = r.try_get(4)?;
        let kind = PingKind::from_parts(kind, status.map(i64::from))
            .ok_or_else(|| bad(format!("a ping of unknown kind {kind:?}")))?;
        let rid = r
            .try_get::<_, Option<&str>>(5)?
            .map(|s| s.parse().map_err(|e| bad(format!("a ping's rid: {e}"))))
            .transpose()?;
        let body = match r.try_get::<_, Option<&[u8]>>(6)? {
            Some(b) => unpack(b).map_err(|e| bad(format!("a ping's body: {e}")))?,
            None => String::new(),
        };
        Ok(PingRow {
            id: r.try_get(0)?,
            job: r.try_get(1)?,
            at: ts(r.try_get(2)?),
            kind,
            rid,
            body,
            remote: r.try_get(7)?,
            method: r.try_get(8)?,
            user_agent: r.try_get(9)?,
            n: r.try_get::<_, Option<i64>>(10)?.unwrap_or(0).max(0) as u64,
        })
    })
    .collect()
}

impl Postgres {
    pub(super) fn record_pings_in(
        &mut self,
        pings: &[Ping<'_>],
        rules: &dyn RuleBook,
    ) -> Result<Vec<PingOutcome>> {
        self.write("recording pings", |tx| {
            pings.iter().map(|p| ping_in(tx, p, rules)).collect()
        })
    }

    pub(super) fn mark_late_in(
        &mut self,
        now: Timestamp,
        limit: u32,
        rules: &dyn RuleBook,
    ) -> Result<Vec<Recorded>> {
        self.write("marking late jobs", |tx| mark_late(tx, now, limit, rules))
    }

    pub(super) fn next_late_in(&self) -> Result<Option<Timestamp>> {
        self.read("reading the next late time", next_late)
    }

    pub(super) fn save_checks_in(
        &mut self,
        changes: &[(&str, CheckChange<'_>)],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        self.write("saving jobs' checks", |tx| {
            changes
                .iter()
                .map(|(job, change)| save_check(tx, job, change, now))
                .collect()
        })
    }

    pub(super) fn delete_job_in(&mut self, job: &str) -> Result<bool> {
        self.write("deleting a job", |tx| delete_job(tx, job))
    }

    pub(super) fn checks_of(&self) -> Result<Vec<CheckRow>> {
        self.read("reading the checks", all_checks)
    }

    pub(super) fn flips_of(&self, job: &str, limit: u32) -> Result<Vec<FlipRow>> {
        self.read("reading a job's state changes", |c| flips(c, job, limit))
    }

    pub(super) fn set_paused_in(
        &mut self,
        job: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<bool> {
        self.write("pausing or resuming a job", |tx| {
            set_paused(tx, job, paused, now)
        })
    }

    pub(super) fn check_of(&self, job: JobRef<'_>) -> Result<Option<CheckRow>> {
        self.read("reading a check", |c| check(c, job))
    }

    pub(super) fn pings_of(&self, job: &str, limit: u32) -> Result<Vec<PingRow>> {
        self.read("reading pings", |c| pings(c, job, limit))
    }
}
