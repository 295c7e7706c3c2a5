//! The PostgreSQL backend: one database (one schema of it) shared by a fleet of hosts.
//!
//! It keeps the SQLite backend's promises with PostgreSQL's means: every write is one
//! transaction at READ COMMITTED, and where two processes could decide from the same old state
//! a row lock makes them take turns. A job's row is locked (`SELECT … FOR UPDATE`) before the
//! rules read it, so problems in a row are counted across processes; a (job, channel) lane's
//! row in `outbox_lanes` is locked with `FOR UPDATE SKIP LOCKED` before its outbox rows are
//! claimed, so one claimer at a time decides what the lane sends and the others move on to
//! other lanes. A transaction that PostgreSQL aborts as a deadlock or a serialization failure
//! is run again, a few times, before the error reaches the caller.
//!
//! The client is the synchronous `postgres` crate (it runs a small runtime of its own, so it
//! must not be called from a thread of another tokio runtime). After a commit that made outbox
//! rows due, the transaction sends `NOTIFY belfry_outbox` (the payload names the schema), which
//! [`Backend::wait_for_work`] listens for on a connection of its own.

mod checks;
mod conn;
mod copy;
mod hush;
mod late;
mod outbox;
mod retention;
mod rules;
mod schema;
mod silences;
mod sql;
mod url;

use std::cell::{Cell, RefCell, RefMut};
use std::time::{Duration, Instant};

use belfry_core::{Event, JobSnapshot, Notification, Silence, Timestamp};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Transaction};

use conn::{Cache, Conn, NOTIFY_CHANNEL, notify};
use sql::{Fail, JOB_ROW_SQL, PROBLEMS, Tx, count32, job_row, millis, run_row, ts};

use crate::backend::Backend;
use crate::copy::{Copied, Record};
use crate::error::{Error, Result};
use crate::hush::{Acked, NewSilence, NotificationRow};
use crate::types::{
    Attempt, Claim, Claimed, JobRow, Limits, OutboxCounts, OutboxRow, Recorded, Rules, RunEnd,
    RunRow, RunStart,
};

pub use url::PostgresUrl;

/// How often a transaction aborted as a deadlock or a serialization failure is run again
/// before its error is returned.
const TX_TRIES: u32 = 8;

/// An open PostgreSQL store.
pub(crate) struct Postgres {
    url: PostgresUrl,
    /// The connection for every call; `RefCell` because reads take `&self` and the client
    /// needs `&mut` for any statement. Replaced when it breaks.
    client: RefCell<Client>,
    /// The statements prepared on `client`.
    cache: Cache,
    /// Whether `client` failed as a connection does when it is gone.
    broken: Cell<bool>,
    /// The schema the tables are in (`NOTIFY`'s payload).
    schema: String,
    /// The connection that `LISTEN`s, opened by the first [`Backend::wait_for_work`].
    listener: Option<Client>,
}

impl Postgres {
    /// Connects, creates the schema if needed, and brings it up to date.
    pub(crate) fn open(url: &PostgresUrl) -> Result<Postgres> {
        let mut client = connect(url)?;
        migrate(&mut client, url)?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| Error::postgres(url.shown(), "reading the current schema", e))?;
        let schema = schema.ok_or_else(|| {
            Error::invalid(
                url.shown(),
                "opening the store",
                "no schema: the search path names none that exists".into(),
            )
        })?;
        Ok(Postgres {
            url: url.clone(),
            client: RefCell::new(client),
            cache: Cache::default(),
            broken: Cell::new(false),
            schema,
            listener: None,
        })
    }

    /// How a failure of `doing` is reported. One that says the connection is gone also marks
    /// it to be replaced: the client may not have noticed yet (`is_closed` lags the server's
    /// goodbye), and the next call must not meet the same dead connection.
    fn err(&self, doing: &'static str) -> impl Fn(Fail) -> Error + '_ {
        move |f| {
            let e = match f {
                Fail::Pg(e) => Error::postgres(self.url.shown(), doing, e),
                Fail::Data(what) => Error::bad_data(self.url.shown(), doing, what),
                Fail::Store(e) => return e,
            };
            if e.is_unavailable() {
                self.broken.set(true);
            }
            e
        }
    }

    /// The connection, connecting again first if the last one broke.
    fn client(&self) -> Result<RefMut<'_, Client>> {
        let mut client = self.client.borrow_mut();
        if self.broken.get() || client.is_closed() {
            *client = connect(&self.url)?;
            self.cache.borrow_mut().clear();
            self.broken.set(false);
        }
        Ok(client)
    }

    /// Runs `f` in a transaction and commits it; a deadlock or serialization failure runs it
    /// again (it has written nothing then), after a short pause that grows.
    fn write<T>(
        &self,
        doing: &'static str,
        mut f: impl FnMut(&mut Conn<'_, Transaction<'_>>) -> Tx<T>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            let mut client = self.client()?;
            let outcome = (|| {
                let mut tx = client.transaction()?;
                let value = f(&mut Conn {
                    client: &mut tx,
                    cache: &self.cache,
                })?;
                tx.commit()?;
                Ok(value)
            })();
            drop(client);
            match outcome {
                Err(Fail::Pg(e)) if is_conflict(&e) && tries + 1 < TX_TRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2 << tries.min(6)));
                }
                other => return other.map_err(self.err(doing)),
            }
        }
    }

    /// Runs the reads of `f` on the connection (each statement sees what is committed when it
    /// starts, as in SQLite's autocommit).
    fn read<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut Conn<'_, Client>) -> Tx<T>,
    ) -> Result<T> {
        let mut client = self.client()?;
        f(&mut Conn {
            client: &mut client,
            cache: &self.cache,
        })
        .map_err(self.err(doing))
    }

    /// Runs the reads of `f` in one read-only transaction at REPEATABLE READ: every statement
    /// sees the store as it was when the first began (a copy of a store in use must not find an
    /// outbox row whose notification it did not see).
    fn read_snapshot<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut Conn<'_, Transaction<'_>>) -> Tx<T>,
    ) -> Result<T> {
        let mut client = self.client()?;
        let outcome = (|| {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let value = f(&mut Conn {
                client: &mut tx,
                cache: &self.cache,
            })?;
            tx.commit()?;
            Ok(value)
        })();
        outcome.map_err(self.err(doing))
    }

    /// The oldest running run of each job that has one (or of `only`), by job name.
    fn running_since(&self, only: Option<&str>) -> Result<Vec<(String, Timestamp)>> {
        self.read("reading running runs", |c| {
            c.query(
                "SELECT job, MIN(started_ms) FROM runs
                 WHERE state = 'running' AND ($1::text IS NULL OR job = $1)
                 GROUP BY job ORDER BY job COLLATE \"C\"",
                &[&only],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, ts(r.try_get(1)?))))
            .collect()
        })
    }
}

/// Connects with the URL's settings and puts the store's schema first on the search path.
fn connect(url: &PostgresUrl) -> Result<Client> {
    let mut client = url
        .config()?
        .connect(NoTls)
        .map_err(|e| Error::postgres(url.shown(), "connecting", e))?;
    if let Some(schema) = url.schema() {
        // The name is plain (checked when the URL was read); quoted, it keeps its case.
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .map_err(|e| Error::postgres(url.shown(), "selecting the schema", e))?;
    }
    Ok(client)
}

/// Creates the schema and its tables, or brings them up to date, in one transaction, while
/// holding the migration lock: processes that open a new store at once wait for the first.
fn migrate(client: &mut Client, url: &PostgresUrl) -> Result<()> {
    let e = |err| Error::postgres(url.shown(), "migrating the schema", err);
    let mut tx = client.transaction().map_err(e)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&schema::MIGRATION_LOCK],
    )
    .map_err(e)?;
    if let Some(name) = url.schema() {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{name}\""))
            .map_err(e)?;
    }
    tx.batch_execute("CREATE TABLE IF NOT EXISTS belfry_schema_version (version BIGINT NOT NULL)")
        .map_err(e)?;
    let found: Option<i64> = tx
        .query_opt("SELECT version FROM belfry_schema_version", &[])
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .map_err(e)?;
    let version = match found {
        Some(v) => v,
        None => {
            tx.execute(
                "INSERT INTO belfry_schema_version (version) VALUES (0)",
                &[],
            )
            .map_err(e)?;
            0
        }
    };
    if version > schema::LATEST {
        return Err(Error::too_new(url.shown(), version, schema::LATEST));
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).map_err(e)?;
        tx.execute(
            "UPDATE belfry_schema_version SET version = $1",
            &[&(i as i64 + 1)],
        )
        .map_err(e)?;
    }
    tx.commit().map_err(e)
}

/// A run's start, inside the caller's transaction (the job's row made if needed); it counts
/// as the job's last report.
fn start_in(tx: &mut Conn<'_, Transaction<'_>>, run: &RunStart) -> Tx<()> {
    let ms = run.started.as_millis();
    let pid = run.pid.map(i64::from);
    tx.execute(
        "INSERT INTO jobs (name, created_ms, updated_ms) VALUES ($1, $2, $2)
         ON CONFLICT (name) DO NOTHING",
        &[&run.job, &ms],
    )?;
    tx.execute(
        "INSERT INTO runs (id, job, state, started_ms, host, pid, boot_id)
         VALUES ($1, $2, 'running', $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
        &[&run.id, &run.job, &ms, &run.host, &pid, &run.boot_id],
    )?;
    late::report(tx, &run.job, run.started)
}

/// A run's finish, inside the caller's transaction: the rule step, the run's row (completed,
/// or written whole if its start was never recorded), pruning, and the job's last report.
/// With `only_if_running`, nothing (`None`) unless the run is still going.
fn finish_in(
    tx: &mut Conn<'_, Transaction<'_>>,
    end: &RunEnd<'_>,
    rules: &Rules<'_>,
    only_if_running: bool,
) -> Tx<Option<Recorded>> {
    let ev = end.event;
    let run_id = ev
        .details
        .run_id
        .clone()
        .unwrap_or_else(crate::types::new_id);
    let output = end
        .output
        .filter(|o| !o.is_empty())
        .map(crate::packed::pack);
    if only_if_running {
        // The lock makes a second process that noticed the same abandoned run wait,
        // then read the state the first one wrote.
        let state: Option<String> = tx
            .query_opt(
                "SELECT state FROM runs WHERE id = $1 FOR UPDATE",
                &[&run_id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if state.as_deref() != Some("running") {
            return Ok(None);
        }
    }
    let d = &ev.details;
    let started = d.started_at.unwrap_or(ev.at).as_millis();
    let duration_ms = d.duration.map(millis);
    let run = rules::LastRunFields {
        id: &run_id,
        state: ev.state.name(),
        started_ms: started,
        duration_ms,
        exit_code: d.exit_code,
    };
    let rec = rules::apply_event(tx, ev, 1, Some(run), rules)?;
    let n: i64 = tx
        .query_one(
            FINISH_RUN_SQL,
            &[
                &run_id,
                &ev.job,
                &ev.state.name(),
                &started,
                &ev.at.as_millis(),
                &duration_ms,
                &d.exit_code,
                &d.signal,
                &d.host,
                &d.error,
                &output,
                &i64::try_from(end.output_bytes).unwrap_or(i64::MAX),
                &rec.decision.reason.code(),
                &rec.decision.reason.to_string(),
                &rec.decision.notify,
            ],
        )?
        .try_get(0)?;
    retention::after_run(tx, &ev.job, n, &rules.limits.retention)?;
    if let Some(note) = &rec.notification {
        retention::after_notification(tx, &note.job, &note.id, &rules.limits.retention)?;
    }
    late::report(tx, &ev.job, ev.at)?;
    Ok(Some(rec))
}

/// A deadlock or a serialization failure: PostgreSQL aborted the transaction so that another
/// could go on, and running it again is what it asks.
fn is_conflict(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

impl Backend for Postgres {
    fn export(&self, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        self.export_rows(each)
    }

    fn import(&mut self, records: &[Record], copied: &mut Copied) -> Result<()> {
        self.import_rows(records, copied)
    }

    fn schema_version(&self) -> Result<i64> {
        self.read("reading the schema version", |c| {
            Ok(
                c.query_one("SELECT version FROM belfry_schema_version", &[])?
                    .try_get(0)?,
            )
        })
    }

    fn now(&self) -> Result<Timestamp> {
        self.read("reading the database's clock", |c| {
            let ms: i64 = c
                .query_one(
                    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                    &[],
                )?
                .try_get(0)?;
            Ok(ts(ms))
        })
    }

    fn start_run(&mut self, run: &RunStart) -> Result<()> {
        self.write("recording a run's start", |tx| start_in(tx, run))
    }

    fn finish_run(
        &mut self,
        end: &RunEnd<'_>,
        rules: &Rules<'_>,
        only_if_running: bool,
    ) -> Result<Option<Recorded>> {
        self.write("recording a finished run", |tx| {
            finish_in(tx, end, rules, only_if_running)
        })
    }

    fn running_runs(&self) -> Result<Vec<RunStart>> {
        self.read("reading running runs", |c| {
            c.query(
                "SELECT id, job, started_ms, host, pid, boot_id FROM runs
                 WHERE state = 'running' ORDER BY started_ms, n",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(RunStart {
                    id: r.try_get(0)?,
                    job: r.try_get(1)?,
                    started: ts(r.try_get(2)?),
                    host: r.try_get(3)?,
                    pid: r
                        .try_get::<_, Option<i64>>(4)?
                        .and_then(|p| u32::try_from(p).ok()),
                    boot_id: r.try_get(5)?,
                })
            })
            .collect()
        })
    }

    fn record_events(&mut self, event: &Event, covers: u32, rules: &Rules<'_>) -> Result<Recorded> {
        self.write("recording an event", |tx| {
            let rec = rules::apply_event(tx, event, covers, None, rules)?;
            late::report(tx, &event.job, event.at)?;
            if let Some(n) = &rec.notification {
                retention::after_notification(tx, &n.job, &n.id, &rules.limits.retention)?;
            }
            Ok(rec)
        })
    }

    fn record_notification(
        &mut self,
        n: &Notification,
        channels: Vec<String>,
        restarts_repeat_window: bool,
        limits: &Limits,
    ) -> Result<Vec<i64>> {
        self.write("recording a notification", |tx| {
            // A message the rules' memory counts (a reminder made for them) is held back as
            // theirs are; a message a program sends of its own is not.
            let hushed = match restarts_repeat_window {
                true => silences::hush_in(tx, &n.job, n.reason == "repeated", n.time)?,
                false => None,
            };
            let to = if hushed.is_some() {
                Vec::new()
            } else {
                channels.clone()
            };
            let ids = rules::insert_notification(tx, n, to, limits.delivery_deadline)?;
            if let Some(h) = &hushed {
                rules::set_hushed(tx, &n.id, h)?;
            }
            retention::after_notification(tx, &n.job, &n.id, &limits.retention)?;
            if restarts_repeat_window {
                tx.execute(
                    "UPDATE jobs SET last_notified_ms = GREATEST(COALESCE(last_notified_ms, $2), $2)
                     WHERE name = $1 AND state IS NOT NULL",
                    &[&n.job, &n.time.as_millis()],
                )?;
            }
            Ok(ids)
        })
    }

    fn record_pings(
        &mut self,
        pings: &[crate::checks::Ping<'_>],
        rules: &dyn crate::checks::RuleBook,
    ) -> Result<Vec<crate::checks::PingOutcome>> {
        self.record_pings_in(pings, rules)
    }

    fn mark_late(
        &mut self,
        now: Timestamp,
        limit: u32,
        rules: &dyn crate::checks::RuleBook,
    ) -> Result<Vec<Recorded>> {
        self.mark_late_in(now, limit, rules)
    }

    fn next_late(&self) -> Result<Option<Timestamp>> {
        self.next_late_in()
    }

    fn save_checks(
        &mut self,
        changes: &[(&str, crate::checks::CheckChange<'_>)],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        self.save_checks_in(changes, now)
    }

    fn delete_job(&mut self, job: &str) -> Result<bool> {
        self.delete_job_in(job)
    }

    fn checks(&self) -> Result<Vec<crate::checks::CheckRow>> {
        self.checks_of()
    }

    fn flips(&self, job: &str, limit: u32) -> Result<Vec<crate::checks::FlipRow>> {
        self.flips_of(job, limit)
    }

    fn set_paused(&mut self, job: &str, paused: bool, now: Timestamp) -> Result<bool> {
        self.set_paused_in(job, paused, now)
    }

    fn add_silence(&mut self, s: &NewSilence<'_>, now: Timestamp) -> Result<Silence> {
        self.add_silence_in(s, now)
    }

    fn silences(&self, now: Timestamp) -> Result<Vec<Silence>> {
        self.silences_at(now)
    }

    fn end_silence(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        self.end_silence_in(id, now)
    }

    fn acknowledge(&mut self, job: &str, by: &str, now: Timestamp) -> Result<Acked> {
        self.acknowledge_in(job, by, now)
    }

    fn setting(&mut self, key: &str, otherwise: &str) -> Result<String> {
        self.setting_in(key, otherwise)
    }

    fn notifications(&self, job: &str, limit: u32) -> Result<Vec<NotificationRow>> {
        self.notifications_of(job, limit)
    }

    fn check(&self, job: crate::checks::JobRef<'_>) -> Result<Option<crate::checks::CheckRow>> {
        self.check_of(job)
    }

    fn pings(&self, job: &str, limit: u32) -> Result<Vec<crate::checks::PingRow>> {
        self.pings_of(job, limit)
    }

    fn snapshot(&self, job: &str) -> Result<Option<JobSnapshot>> {
        self.read("reading a job's state", |c| {
            let row = c.query_opt(rules::SNAPSHOT_SQL, &[&job])?;
            rules::snapshot(job, row.as_ref())
        })
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>> {
        let mut job = self.read("reading jobs", |c| {
            let row = c.query_opt(&format!("{JOB_ROW_SQL} WHERE j.name = $1"), &[&name])?;
            row.map(|r| job_row(&r).map(|j| j.owned())).transpose()
        })?;
        if let Some(j) = &mut job {
            j.running_since = self.running_since(Some(name))?.first().map(|&(_, t)| t);
        }
        Ok(job)
    }

    fn each_job(
        &self,
        only_problems: bool,
        f: &mut dyn FnMut(&JobRow<&str>) -> bool,
    ) -> Result<()> {
        // Both parts come in byte order of the names (as SQLite's), as the running runs do:
        // one cursor into those each. Rows stream from the server; none is held after `f`.
        let running = self.running_since(None)?;
        let problems = format!("{JOB_ROW_SQL} WHERE {PROBLEMS} ORDER BY j.name COLLATE \"C\"");
        let rest = format!("{JOB_ROW_SQL} ORDER BY j.name COLLATE \"C\"");
        let parts: &[(&str, bool)] = if only_problems {
            &[(&problems, true)]
        } else {
            &[(&problems, true), (&rest, false)]
        };
        self.read("reading jobs", |c| {
            for &(sql, problem_part) in parts {
                let mut next_running = 0;
                let mut go_on = true;
                c.each_row(sql, |r| {
                    let mut job = job_row(r)?;
                    if !problem_part && job.consecutive_problems > 0 {
                        return Ok::<_, Fail>(true);
                    }
                    while running
                        .get(next_running)
                        .is_some_and(|(n, _)| n.as_str() < job.name)
                    {
                        next_running += 1;
                    }
                    job.running_since = running
                        .get(next_running)
                        .filter(|(n, _)| n == job.name)
                        .map(|&(_, t)| t);
                    go_on = f(&job);
                    Ok(go_on)
                })?;
                if !go_on {
                    break;
                }
            }
            Ok(())
        })
    }

    fn longest_job_name(&self, only_problems: bool) -> Result<usize> {
        self.read("reading jobs", |c| {
            let n: i64 = c
                .query_one(
                    &format!(
                        "SELECT COALESCE(MAX(char_length(name)), 0)::bigint FROM jobs j
                         WHERE NOT $1 OR {PROBLEMS}"
                    ),
                    &[&only_problems],
                )?
                .try_get(0)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    fn runs(&self, job: &str, limit: u32, with_output: bool) -> Result<Vec<RunRow>> {
        self.read("reading run history", |c| {
            c.query(
                "SELECT id, job, state, started_ms, ended_ms, duration_ms, exit_code, signal,
                        host, error, reason, reason_text, notified,
                        CASE WHEN $3 THEN output END, output_bytes
                 FROM runs WHERE job = $1 ORDER BY started_ms DESC, n DESC LIMIT $2",
                &[&job, &i64::from(limit), &with_output],
            )?
            .iter()
            .map(run_row)
            .collect()
        })
    }

    fn claim_due(&mut self, now: Timestamp, claim: &Claim<'_>) -> Result<Vec<Claimed>> {
        self.write("claiming outbox rows", |tx| {
            outbox::claim_due(tx, now, claim)
        })
    }

    fn renew_leases(&mut self, owner: &str, ids: &[i64], until: Timestamp) -> Result<usize> {
        self.write("renewing leases", |tx| {
            let n = tx.execute(
                "UPDATE outbox SET lease_until_ms = GREATEST(lease_until_ms, $2)
                 WHERE lease_owner = $1 AND status = 'sending' AND id = ANY($3)",
                &[&owner, &until.as_millis(), &ids],
            )?;
            Ok(n as usize)
        })
    }

    fn release_claims(
        &mut self,
        owner: &str,
        ids: &[i64],
        due: Option<Timestamp>,
    ) -> Result<usize> {
        let due = due.map(Timestamp::as_millis);
        self.write("releasing outbox rows", |tx| {
            let n = tx.execute(
                "UPDATE outbox SET status = 'pending', lease_owner = NULL,
                    lease_until_ms = NULL, attempts = GREATEST(attempts - 1, 0),
                    next_attempt_ms = GREATEST(next_attempt_ms, COALESCE($2::bigint, 0))
                 WHERE lease_owner = $1 AND status = 'sending' AND id = ANY($3)",
                &[&owner, &due, &ids],
            )?;
            if n > 0 {
                notify(tx)?;
            }
            Ok(n as usize)
        })
    }

    fn record_attempts(
        &mut self,
        attempts: &[(i64, Attempt, Duration)],
        now: Timestamp,
    ) -> Result<()> {
        // Deliveries, the bulk of a busy dispatcher's outcomes, in three statements a batch;
        // failures one at a time.
        let delivered: Vec<(i64, i64)> = attempts
            .iter()
            .filter(|(_, a, _)| *a == Attempt::Delivered)
            .map(|(id, _, elapsed)| (*id, millis(*elapsed)))
            .collect();
        self.write("recording a delivery attempt", |tx| {
            outbox::record_deliveries(tx, &delivered, now)?;
            for (id, attempt, elapsed) in attempts {
                if *attempt != Attempt::Delivered {
                    outbox::record_one(tx, *id, attempt, now, *elapsed)?;
                    outbox::settle_folded(tx, *id)?;
                }
            }
            Ok(())
        })
    }

    fn expedite_untried(&mut self, ids: &[i64], now: Timestamp) -> Result<usize> {
        self.write("making held outbox rows due", |tx| {
            let n = tx.execute(
                "UPDATE outbox SET next_attempt_ms = $1
                 WHERE id = ANY($2) AND status = 'pending' AND attempts = 0
                   AND folded_into IS NULL AND next_attempt_ms > $1",
                &[&now.as_millis(), &ids],
            )?;
            if n > 0 {
                notify(tx)?;
            }
            Ok(n as usize)
        })
    }

    fn next_due(&self) -> Result<Option<Timestamp>> {
        self.read("reading the outbox", |c| {
            let ms: Option<i64> = c
                .query_one(
                    "SELECT MIN(CASE status WHEN 'pending' THEN next_attempt_ms
                                            ELSE lease_until_ms END)
                     FROM outbox WHERE status IN ('pending', 'sending') AND folded_into IS NULL",
                    &[],
                )?
                .try_get(0)?;
            Ok(ms.map(ts))
        })
    }

    fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.read("counting outbox rows", |c| {
            let mut counts = OutboxCounts::default();
            for r in c.query(
                "SELECT status, COUNT(*), COALESCE(SUM(reclaims), 0)::bigint
                 FROM outbox GROUP BY status",
                &[],
            )? {
                let status: &str = r.try_get(0)?;
                let n = u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0);
                counts.possible_duplicates += u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0);
                match status {
                    "pending" => counts.pending = n,
                    "sending" => counts.sending = n,
                    "delivered" => counts.delivered = n,
                    _ => counts.dead = n,
                }
            }
            Ok(counts)
        })
    }

    fn outbox_rows(&self, include_delivered: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        self.read("reading the outbox", |c| {
            c.query(
                &format!(
                    "{} WHERE $1 OR o.status <> 'delivered' ORDER BY o.id DESC LIMIT $2",
                    outbox::OUTBOX_ROW
                ),
                &[&include_delivered, &i64::from(limit)],
            )?
            .iter()
            .map(outbox::outbox_row)
            .collect()
        })
    }

    fn outbox_rows_by_id(&self, ids: &[i64]) -> Result<Vec<OutboxRow>> {
        self.read("reading the outbox", |c| {
            c.query(
                &format!("{} WHERE o.id = ANY($1) ORDER BY o.id", outbox::OUTBOX_ROW),
                &[&ids],
            )?
            .iter()
            .map(outbox::outbox_row)
            .collect()
        })
    }

    fn dead_ids(&self) -> Result<Vec<i64>> {
        self.read("reading the outbox", |c| {
            c.query(
                "SELECT id FROM outbox WHERE status = 'dead' ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
        })
    }

    fn retry_outbox(
        &mut self,
        ids: Option<&[i64]>,
        now: Timestamp,
        give_up_after: Duration,
    ) -> Result<Vec<i64>> {
        let until = (now + give_up_after).as_millis();
        self.write("retrying outbox rows", |tx| {
            let mut revived: Vec<i64> = tx
                .query(
                    "UPDATE outbox SET status = 'pending', next_attempt_ms = $1,
                        deadline_ms = GREATEST(deadline_ms, $2), lease_owner = NULL,
                        lease_until_ms = NULL, folded_into = NULL,
                        last_reason = (SELECT a.reason FROM attempts a
                                       WHERE a.outbox_id = outbox.id
                                       ORDER BY a.at_ms DESC, a.id DESC LIMIT 1)
                     WHERE CASE WHEN $3::bigint[] IS NULL THEN status = 'dead'
                           ELSE id = ANY($3) AND status IN ('pending', 'dead') END
                     RETURNING id",
                    &[&now.as_millis(), &until, &ids],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            revived.sort_unstable();
            if !revived.is_empty() {
                notify(tx)?;
            }
            Ok(revived)
        })
    }

    fn purge_outbox(&mut self, dead: bool, before: Timestamp) -> Result<usize> {
        let status = if dead { "dead" } else { "delivered" };
        self.write("purging outbox rows", |tx| {
            let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&status, &before.as_millis()];
            tx.execute(
                "DELETE FROM attempts WHERE outbox_id IN (
                    SELECT id FROM outbox WHERE status = $1 AND created_ms < $2)",
                &params,
            )?;
            let n = tx.execute(
                "DELETE FROM outbox WHERE status = $1 AND created_ms < $2",
                &params,
            )?;
            Ok(n as usize)
        })
    }

    fn outbox_row_status(&self, id: i64) -> Result<Option<(String, Option<String>, u32)>> {
        self.read("reading an outbox row", |c| {
            c.query_opt(
                "SELECT status, last_reason, attempts FROM outbox WHERE id = $1",
                &[&id],
            )?
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    count32(r.try_get::<_, i32>(2)?),
                ))
            })
            .transpose()
        })
    }

    fn outbox_channel(&self, id: i64) -> Result<Option<String>> {
        self.read("reading an outbox row", |c| {
            Ok(
                c.query_opt("SELECT channel FROM outbox WHERE id = $1", &[&id])?
                    .map(|r| r.try_get(0))
                    .transpose()?,
            )
        })
    }

    fn mark_unrouted(&mut self, run_id: &str, notification_id: &str) -> Result<()> {
        self.write("recording an alert that reached no channel", |tx| {
            tx.execute(
                "UPDATE runs SET notified = FALSE, reason = 'no_channel',
                        reason_text = COALESCE(reason_text || '; ', '') || 'no channel takes it'
                 WHERE id = $1 AND notified",
                &[&run_id],
            )?;
            let job: Option<String> = tx
                .query_opt(
                    "DELETE FROM notifications WHERE id = $1
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE notification_id = $1)
                     RETURNING job",
                    &[&notification_id],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            // The job's row names its last notification (what `status` shows): the one before.
            if let Some(job) = job {
                tx.execute(
                    "UPDATE jobs SET
                        (last_notification_ms, last_notification_kind, last_notification_reason) = (
                        SELECT created_ms, kind, reason FROM notifications n WHERE n.job = jobs.name
                        ORDER BY created_ms DESC, n DESC LIMIT 1)
                     WHERE name = $1",
                    &[&job],
                )?;
            }
            Ok(())
        })
    }

    fn wait_for_work(&mut self, timeout: Duration) -> Result<bool> {
        let doing = "waiting for outbox rows";
        let listening = self.listener.as_ref().is_some_and(|c| !c.is_closed());
        if !listening {
            // A new listener missed whatever was notified before it listened: the caller
            // looks again, as after any reconnect.
            let mut c = connect(&self.url)?;
            c.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
                .map_err(|e| Error::postgres(self.url.shown(), doing, e))?;
            self.listener = Some(c);
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return Ok(true);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let next = listener.notifications().timeout_iter(left).next();
            match next {
                Ok(Some(n)) if n.payload() == self.schema => {
                    // One wake-up is enough for every notification already here.
                    let mut more = listener.notifications();
                    while let Ok(Some(_)) = more.iter().next() {}
                    return Ok(true);
                }
                // Another schema's work, on the same database.
                Ok(Some(_)) if !left.is_zero() => continue,
                Ok(_) => return Ok(false),
                Err(_) => {
                    // The connection broke: listen again on the next call, and have the
                    // caller look now, for what it may have missed meanwhile.
                    self.listener = None;
                    return Ok(true);
                }
            }
        }
    }
}

/// Records a run's end: completes the row its start wrote, or writes it whole. Returns the
/// row's `n` (its place in insertion order, for the pruning cadence).
const FINISH_RUN_SQL: &str =
    "INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms, exit_code,
                      signal, host, error, output, output_bytes, reason,
                      reason_text, notified)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (id) DO UPDATE SET
       state = excluded.state, ended_ms = excluded.ended_ms,
       duration_ms = excluded.duration_ms, exit_code = excluded.exit_code,
       signal = excluded.signal, host = COALESCE(excluded.host, runs.host),
       error = excluded.error, output = excluded.output,
       output_bytes = excluded.output_bytes, reason = excluded.reason,
       reason_text = excluded.reason_text, notified = excluded.notified
    RETURNING n";

#[cfg(test)]
mod tests;
