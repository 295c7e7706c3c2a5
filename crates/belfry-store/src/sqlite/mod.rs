//! The SQLite backend: one file in WAL mode, shared by every belfry process on a host.
//!
//! Every write is a short `BEGIN IMMEDIATE` transaction behind a generous busy timeout, so many
//! processes recording at once queue up instead of failing with "database is locked".

mod checks;
mod copy;
mod hush;
mod late;
mod retention;
mod schema;
mod silences;

use std::path::{Path, PathBuf};
use std::time::Duration;

use belfry_core::{Event, Held, JobSnapshot, Kind, Notification, Silence, State, Timestamp, step};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::backend::Backend;
use crate::copy::{Copied, Record};
use crate::error::{Error, Result};
use crate::hush::{Acked, NewSilence, NotificationRow};
use crate::packed::{self, pack};
use crate::types::{
    Attempt, Claim, Claimed, JobRow, LastNotification, LastRun, Limits, OutboxCounts, OutboxRow,
    Recorded, Rules, RunEnd, RunRow, RunStart, new_id,
};

/// How long a process waits for another one's write transaction before giving up. Writes are a
/// few milliseconds each; a minute covers hundreds of processes queueing at once.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Above this size, the WAL is checkpointed and truncated when a process opens the store.
pub const WAL_TRIM_BYTES: u64 = 256 * 1024;

/// How much of the store's file [`Sqlite::each_job`] maps into memory while it walks the jobs
/// (address space, not memory: only the pages read are resident, and they are the kernel's
/// page cache, shared).
const JOB_WALK_MMAP: i64 = 1 << 30;

/// An open SQLite store.
pub(crate) struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Opens (creating if needed) the store at `path`, and brings its schema up to date.
    ///
    /// The parent directory is created with mode 0700: the history holds job output.
    pub(crate) fn open(path: &Path) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|e| Error::io(path, "creating its directory", e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::sqlite(path, "opening", e))?;
        let mut store = Sqlite {
            conn,
            path: path.to_owned(),
        };
        store.configure()?;
        store.migrate()?;
        store.trim_wal()?;
        Ok(store)
    }

    /// The WAL file beside the store's file.
    fn wal_path(&self) -> PathBuf {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        wal.into()
    }

    fn err(&self, doing: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |e| Error::sqlite(&self.path, doing, e)
    }

    fn configure(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(self.err("setting the busy timeout"))?;
        self.ensure_wal()?;
        // A short-lived process (every `belfry run`) would by default checkpoint the WAL into
        // the database and delete it when it closes, and the next one recreate it: about a
        // millisecond a run. Keep the WAL across processes instead, and bound it in `open`
        // (see `trim_wal`): a first opener's WAL recovery forgets what was checkpointed, so
        // a WAL that no one truncates grows for ever.
        self.conn
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .map_err(self.err("configuring checkpoints"))?;
        // The query planner's stability guarantee: a statement's plan does not depend on the
        // values bound to it. Without it, SQLite compiles a statement again on every run whose
        // plan might change with a bound value (a join with a parameter in its WHERE, a LIMIT
        // ?), which made the statement cache worthless for those (callgrind: a third of a
        // claim's instructions). belfry's statements have one good plan whatever the values.
        self.conn
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                true,
            )
            .map_err(self.err("configuring the query planner"))?;
        // NORMAL: in WAL mode every commit survives the crash of any process; only a power cut
        // can lose the last ones. The commits that create an alert are synced to disk before
        // they return (`sync_alert`), so an alert survives a power cut too, and the runs that
        // alert no one pay no fsync (about 13% of `belfry run -- true`, BENCHMARKS.md).
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(self.err("setting pragmas"))?;
        Ok(())
    }

    /// Puts the database in WAL mode, which lets readers (`status`, `check`) run beside
    /// writers and keeps commits cheap. The mode is stored in the file, so only the processes
    /// that create the store switch it; when many of them race to do so, SQLite answers the
    /// losers "database is locked" without waiting, so they retry until the busy timeout.
    fn ensure_wal(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            // Reading the header first makes `journal_mode` report what the file says.
            let mode = self
                .conn
                .query_row("PRAGMA user_version", [], |_| Ok(()))
                .and_then(|()| {
                    self.conn
                        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                });
            let mode = match mode {
                Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
                Ok(_) => self
                    .conn
                    .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)),
                Err(e) => Err(e),
            };
            match mode {
                Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
                Ok(m) => {
                    return Err(Error::corrupt(
                        &self.path,
                        "switching to WAL",
                        format!("the file system refused WAL mode (got {m:?})"),
                    ));
                }
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(rusqlite::ErrorCode::DatabaseBusy)
                    ) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::sqlite(&self.path, "switching to WAL", e)),
            }
        }
    }

    /// Checkpoints the WAL into the database and truncates it once it is larger than
    /// [`WAL_TRIM_BYTES`]. Runs when the store is opened, which `belfry run` does beside the
    /// job, so the cost (a few milliseconds, every few dozen runs) is off the job's path.
    fn trim_wal(&mut self) -> Result<()> {
        let size = std::fs::metadata(self.wal_path()).map_or(0, |m| m.len());
        if size <= WAL_TRIM_BYTES {
            return Ok(());
        }
        // With another process reading, the truncation waits for it or gives up (busy = 1):
        // either is fine, the next opener tries again.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(drop)
            .map_err(self.err("checkpointing the WAL"))
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err("reading the schema version"))?;
        if version == schema::LATEST {
            return Ok(());
        }
        if version > schema::LATEST {
            return Err(Error::too_new(
                &self.path.display().to_string(),
                version,
                schema::LATEST,
            ));
        }
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "migrating the schema", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        // Another process may have migrated while this one waited for the lock.
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&e)?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(&e)?;
            schema::after(i + 1, &tx).map_err(&e)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    fn insert_start(conn: &mut Connection, run: &RunStart) -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        start_in(&tx, run)?;
        tx.commit()
    }

    /// Makes the last commit durable against power loss: what `synchronous = FULL` would have
    /// done for it (an fsync of the WAL), and the WAL's directory entry too. Called after every
    /// commit that wrote outbox rows.
    fn sync_alert(&self) -> Result<()> {
        let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(&self.wal_path())
            .and_then(
                |()| match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    Some(dir) => sync(dir),
                    None => sync(Path::new(".")),
                },
            )
            .map_err(|e| Error::io(&self.path, "syncing a recorded alert to disk", e))
    }

    /// The oldest running run of each job that has one (or of `only`), by job name: from the
    /// partial index `runs_running`, which holds only the runs still going, so this grows with
    /// what is running now, not with the store.
    fn running_since(&self, only: Option<&str>) -> Result<Vec<(String, Timestamp)>> {
        let read = || -> rusqlite::Result<Vec<(String, Timestamp)>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT job, MIN(started_ms) FROM runs
                 WHERE state = 'running' AND (?1 IS NULL OR job = ?1) GROUP BY job ORDER BY job",
            )?;
            let rows = stmt.query_map([only], |r| Ok((r.get(0)?, ts(r.get(1)?))))?;
            rows.collect()
        };
        read().map_err(self.err("reading running runs"))
    }
}

impl Backend for Sqlite {
    fn export(&self, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        self.export_rows(each)
    }

    fn import(&mut self, records: &[Record], copied: &mut Copied) -> Result<()> {
        self.import_rows(records, copied)
    }

    fn finish_run(
        &mut self,
        end: &RunEnd<'_>,
        rules: &Rules<'_>,
        only_if_running: bool,
    ) -> Result<Option<Recorded>> {
        let run_id = end.event.details.run_id.as_deref();
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording a finished run", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        if only_if_running {
            let state: Option<String> = tx
                .query_row("SELECT state FROM runs WHERE id = ?1", [run_id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(&e)?;
            if state.as_deref() != Some("running") {
                return Ok(None);
            }
        }
        let previous = load_snapshot(&tx, &end.event.job).map_err(&e)?;
        let rec = finish_in(&tx, end, previous, rules).map_err(&e)?;
        tx.commit().map_err(&e)?;
        if !rec.outbox_ids.is_empty() {
            self.sync_alert()?;
        }
        Ok(Some(rec))
    }

    fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err("reading the schema version"))
    }

    fn now(&self) -> Result<Timestamp> {
        // One host's file: its processes share this clock.
        Ok(Timestamp::now())
    }

    fn wait_for_work(&mut self, timeout: Duration) -> Result<bool> {
        // A file tells no one of a commit: the caller looks again after the pause.
        std::thread::sleep(timeout);
        Ok(false)
    }

    fn start_run(&mut self, run: &RunStart) -> Result<()> {
        Self::insert_start(&mut self.conn, run)
            .map_err(|e| Error::sqlite(&self.path, "recording a run's start", e))
    }

    fn prepare_finish(&self) -> Result<()> {
        for sql in [SNAPSHOT_SQL, UPSERT_JOB_SQL, FINISH_RUN_SQL] {
            self.conn
                .prepare_cached(sql)
                .map_err(self.err("preparing statements"))?;
        }
        Ok(())
    }

    fn running_runs(&self) -> Result<Vec<RunStart>> {
        let read = || -> rusqlite::Result<Vec<RunStart>> {
            let mut stmt = self.conn.prepare(
                "SELECT id, job, started_ms, host, pid, boot_id FROM runs
                 WHERE state = 'running' ORDER BY started_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(RunStart {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    started: ts(r.get(2)?),
                    host: r.get(3)?,
                    pid: r.get(4)?,
                    boot_id: r.get(5)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(self.err("reading running runs"))
    }

    fn record_events(&mut self, event: &Event, covers: u32, rules: &Rules<'_>) -> Result<Recorded> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording an event", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let apply = Apply {
            previous: load_snapshot(&tx, &event.job).map_err(&e)?,
            covers,
            run: None,
            report: true,
        };
        let (rec, after) = apply_event(&tx, event, apply, rules).map_err(&e)?;
        if after.scheduled {
            late::refresh_late(&tx, &event.job).map_err(&e)?;
        }
        if let Some(n) = &rec.notification {
            retention::after_notification(&tx, &n.job, &n.id, &rules.limits.retention)
                .map_err(&e)?;
        }
        tx.commit().map_err(&e)?;
        if !rec.outbox_ids.is_empty() {
            self.sync_alert()?;
        }
        Ok(rec)
    }

    fn record_notification(
        &mut self,
        n: &Notification,
        channels: Vec<String>,
        restarts_repeat_window: bool,
        limits: &Limits,
    ) -> Result<Vec<i64>> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording a notification", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        // A message the rules' memory counts (a reminder made for them) is held back as
        // theirs are; a message a program sends of its own is not.
        let hushed = match restarts_repeat_window {
            true => silences::hush_in(&tx, &n.job, n.reason == "repeated", n.time).map_err(&e)?,
            false => None,
        };
        let channels = if hushed.is_some() {
            Vec::new()
        } else {
            channels
        };
        let ids = insert_notification(&tx, n, channels, limits.delivery_deadline).map_err(&e)?;
        if let Some(h) = &hushed {
            set_hushed(&tx, &n.id, h).map_err(&e)?;
        }
        retention::after_notification(&tx, &n.job, &n.id, &limits.retention).map_err(&e)?;
        if restarts_repeat_window {
            tx.execute(
                "UPDATE jobs SET last_notified_ms = MAX(COALESCE(last_notified_ms, ?2), ?2)
                 WHERE name = ?1 AND state IS NOT NULL",
                params![n.job, n.time.as_millis()],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)?;
        if !ids.is_empty() {
            self.sync_alert()?;
        }
        Ok(ids)
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

    fn leave_upkeep(&mut self) -> Result<()> {
        // The writer's own checkpoint is a backstop, not 0 (none at all): a passive checkpoint
        // by another handle copies the log while the writer appends to it, but only a
        // checkpoint with no commit beside it finishes the copy, after which the writer starts
        // the log over; without one the log would grow without bound (2.8 GB in 10 s of
        // pings, measured). When this one runs, the other handle has copied nearly all of the
        // log already, so it is short. At 10,000 pages it ran several times a second of
        // pings and the writer spent about half its time in it (perf, issue 12); 100,000
        // pages (about 400 MB of log at the busiest, truncated when a process next opens the
        // store) leave it more than a second apart.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 100_000)
            .map_err(self.err("leaving checkpoints to another handle"))
    }

    fn upkeep(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.err("checkpointing the write-ahead log"))
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
        load_snapshot(&self.conn, job).map_err(self.err("reading a job's state"))
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>> {
        let read = || -> rusqlite::Result<Option<JobRow>> {
            let sql = format!("{JOB_ROW_SQL} WHERE j.name = ?1");
            self.conn
                .prepare(&sql)?
                .query_row([name], |r| job_row(r).map(|j| j.owned()))
                .optional()
        };
        let mut job = read().map_err(self.err("reading jobs"))?;
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
        // Both parts come in name order, as the running runs do: one cursor into those each.
        let running = self.running_since(None)?;
        // The pages of the jobs table are read once or twice each: mapped, they cost no
        // system call apiece (a `pread` a page, about a fifth of the time at 100,000 jobs).
        self.conn
            .pragma_update(None, "mmap_size", JOB_WALK_MMAP)
            .map_err(self.err("mapping the store"))?;
        // The problems are few, and the partial index `jobs_problems` holds just them, by
        // name. The rest, in the name index's order, with the problems left out here rather
        // than by a condition SQLite would test on every row.
        let problems = format!("{JOB_ROW_SQL} INDEXED BY jobs_problems WHERE {PROBLEMS}");
        let rest = format!("{JOB_ROW_SQL} ORDER BY j.name");
        let parts: &[(&str, bool)] = if only_problems {
            &[(&problems, true)]
        } else {
            &[(&problems, true), (&rest, false)]
        };
        'parts: for &(sql, problem_part) in parts {
            let mut stmt = self.conn.prepare(sql).map_err(self.err("reading jobs"))?;
            let mut rows = stmt.query([]).map_err(self.err("reading jobs"))?;
            let mut next_running = 0;
            while let Some(r) = rows.next().map_err(self.err("reading jobs"))? {
                // Column 3 is `consecutive_problems`: a problem, listed in the first part.
                if !problem_part && r.get::<_, u32>(3).map_err(self.err("reading jobs"))? > 0 {
                    continue;
                }
                let mut job = job_row(r).map_err(self.err("reading jobs"))?;
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
                if !f(&job) {
                    break 'parts;
                }
            }
        }
        self.conn
            .pragma_update(None, "mmap_size", 0)
            .map_err(self.err("mapping the store"))?;
        Ok(())
    }

    fn longest_job_name(&self, only_problems: bool) -> Result<usize> {
        let cond = if only_problems { PROBLEMS } else { "1" };
        self.conn
            .query_row(
                &format!("SELECT COALESCE(MAX(LENGTH(name)), 0) FROM jobs j WHERE {cond}"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as usize)
            .map_err(self.err("reading jobs"))
    }

    fn runs(&self, job: &str, limit: u32, with_output: bool) -> Result<Vec<RunRow>> {
        let read = || -> rusqlite::Result<Vec<RunRow>> {
            let mut stmt = self.conn.prepare(
                "SELECT id, job, state, started_ms, ended_ms, duration_ms, exit_code, signal,
                        host, error, reason, reason_text, notified,
                        CASE WHEN ?3 THEN output END, output_bytes
                 FROM runs WHERE job = ?1 ORDER BY started_ms DESC, rowid DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![job, limit, with_output], run_row)?;
            rows.collect()
        };
        read().map_err(self.err("reading run history"))
    }

    fn claim_due(&mut self, now: Timestamp, claim: &Claim<'_>) -> Result<Vec<Claimed>> {
        let &Claim {
            owner,
            lease,
            ids,
            limit,
            digest_window,
            window_exempt,
            in_order,
        } = claim;
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "claiming outbox rows", err);
        let now_ms = now.as_millis();
        let window_ms = millis(digest_window);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        // Both conditions on `status` are index ranges (outbox_deadline, outbox_due): a claim
        // reads the rows it may take, not every row waiting.
        let expired: Vec<i64> = tx
            .prepare(
                "UPDATE outbox SET status = 'dead', lease_owner = NULL, lease_until_ms = NULL,
                    last_reason = COALESCE(last_reason || '; ', '') || 'delivery deadline passed'
                 WHERE folded_into IS NULL AND ((status = 'pending' AND deadline_ms <= ?1)
                    OR (status = 'sending' AND deadline_ms <= ?1 AND lease_until_ms < ?1))
                 RETURNING id",
            )
            .and_then(|mut st| st.query_map([now_ms], |r| r.get(0))?.collect())
            .map_err(&e)?;
        for id in expired {
            settle_folded(&tx, id).map_err(&e)?;
        }
        let id_filter = match ids {
            Some(ids) => format!(" AND id IN ({})", id_list(ids)),
            None => String::new(),
        };
        // The (job, channel) pairs with something due: rows abandoned by a dead holder, then
        // the longest due. Enough rows are read to find `limit` pairs in the common case; a
        // pass that finds fewer claims again. Between the two, the lanes that need no more
        // than a claim are claimed in one statement (`claim_lone_rows`); the pairs left are
        // looked at one by one.
        let lease_until = (now + lease).as_millis();
        let mut reps = Vec::new();
        let mut groups: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, sql) in [
            "SELECT job, channel FROM outbox
             WHERE status = 'sending' AND lease_until_ms < ?1 AND folded_into IS NULL",
            "SELECT job, channel FROM outbox
             WHERE status = 'pending' AND next_attempt_ms <= ?1 AND folded_into IS NULL",
        ]
        .into_iter()
        .enumerate()
        {
            if i == 1 {
                let room = (limit as usize).saturating_sub(groups.len());
                let lone = claim_lone_rows(
                    &tx,
                    ids,
                    now_ms,
                    (owner, lease_until),
                    (window_ms, window_exempt),
                    room,
                )
                .map_err(&e)?;
                reps.extend(lone);
                if reps.len() + groups.len() >= limit as usize {
                    break;
                }
            }
            let sql = format!("{sql}{id_filter} ORDER BY next_attempt_ms, id LIMIT ?2");
            let mut stmt = tx.prepare(&sql).map_err(&e)?;
            let rows = stmt
                .query_map(params![now_ms, i64::from(limit) * 2], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(&e)?;
            for row in rows {
                let pair: (String, String) = row.map_err(&e)?;
                if seen.insert(pair.clone()) {
                    groups.push(pair);
                }
            }
        }
        for (job, channel) in groups {
            if reps.len() >= limit as usize {
                break;
            }
            // (id, being sent, whether another process holds it now, whether it is a start)
            let open: Vec<(i64, bool, bool, bool)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, status = 'sending', status = 'sending' AND lease_until_ms >= ?3,
                            COALESCE((SELECT n.state = 'running' FROM notifications n
                                      WHERE n.id = outbox.notification_id), 0)
                         FROM outbox
                         WHERE job = ?1 AND channel = ?2 AND folded_into IS NULL
                           AND status IN ('pending', 'sending')
                         ORDER BY id",
                    )
                    .map_err(&e)?;
                stmt.query_map(params![job, channel, now_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(&e)?
                .collect::<rusqlite::Result<_>>()
                .map_err(&e)?
            };
            if open.iter().any(|&(_, _, held, _)| held) {
                continue;
            }
            let picks: Vec<(i64, bool)> = open.iter().map(|o| (o.0, o.3)).collect();
            let Some((rep, at)) = crate::types::lane_pick(&picks, in_order.contains(&channel))
            else {
                continue;
            };
            // A row whose holder's lease ran out may have gone out with every row folded into
            // it: each of those is a possible duplicate too, as the row itself is (below).
            for &(id, ..) in open.iter().filter(|o| o.1) {
                tx.execute(
                    "UPDATE outbox SET reclaims = reclaims + 1 WHERE folded_into = ?1",
                    params![id],
                )
                .map_err(&e)?;
            }
            for &(id, ..) in &open[..at] {
                tx.execute(
                    "UPDATE outbox SET folded_into = ?1, status = 'pending', lease_owner = NULL,
                        lease_until_ms = NULL, reclaims = reclaims + (status = 'sending')
                     WHERE id = ?2 OR folded_into = ?2",
                    params![rep, id],
                )
                .map_err(&e)?;
            }
            if window_ms > 0 && !window_exempt.contains(&channel) {
                let last: Option<i64> = tx
                    .query_row(
                        "SELECT MAX(delivered_ms) FROM outbox WHERE job = ?1 AND channel = ?2
                            AND status = 'delivered' AND folded_into IS NULL",
                        params![job, channel],
                        |r| r.get(0),
                    )
                    .map_err(&e)?;
                if let Some(hold) = last.map(|t| t + window_ms).filter(|&h| h > now_ms) {
                    tx.execute(
                        "UPDATE outbox SET status = 'pending', next_attempt_ms = MAX(next_attempt_ms, ?2),
                            lease_owner = NULL, lease_until_ms = NULL,
                            reclaims = reclaims + (status = 'sending')
                         WHERE id = ?1",
                        params![rep, hold],
                    )
                    .map_err(&e)?;
                    continue;
                }
            }
            tx.execute(
                "UPDATE outbox SET status = 'sending', lease_owner = ?2, lease_until_ms = ?3,
                    attempts = attempts + 1, reclaims = reclaims + (status = 'sending')
                 WHERE id = ?1",
                params![rep, owner, lease_until],
            )
            .map_err(&e)?;
            reps.push(rep);
        }
        let mut out = Vec::with_capacity(reps.len());
        for rep in reps {
            out.push(self_claimed(&tx, rep).map_err(&e)?.ok_or_else(|| {
                Error::corrupt(
                    &self.path,
                    "claiming outbox rows",
                    format!("the notification of outbox row {rep} cannot be read back"),
                )
            })?);
        }
        tx.commit().map_err(&e)?;
        Ok(out)
    }

    fn renew_leases(&mut self, owner: &str, ids: &[i64], until: Timestamp) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = id_list(ids);
        self.conn
            .execute(
                &format!(
                    "UPDATE outbox SET lease_until_ms = MAX(lease_until_ms, ?2)
                     WHERE lease_owner = ?1 AND status = 'sending' AND id IN ({list})"
                ),
                params![owner, until.as_millis()],
            )
            .map_err(self.err("renewing leases"))
    }

    fn release_claims(
        &mut self,
        owner: &str,
        ids: &[i64],
        due: Option<Timestamp>,
    ) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = id_list(ids);
        self.conn
            .execute(
                &format!(
                    "UPDATE outbox SET status = 'pending', lease_owner = NULL,
                        lease_until_ms = NULL, attempts = MAX(attempts - 1, 0),
                        next_attempt_ms = MAX(next_attempt_ms, COALESCE(?2, 0))
                     WHERE lease_owner = ?1 AND status = 'sending' AND id IN ({list})"
                ),
                params![owner, due.map(Timestamp::as_millis)],
            )
            .map_err(self.err("releasing outbox rows"))
    }

    fn record_attempts(
        &mut self,
        attempts: &[(i64, Attempt, Duration)],
        now: Timestamp,
    ) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording a delivery attempt", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        // Deliveries, the bulk of a busy dispatcher's outcomes, are written three statements a
        // batch rather than three a row; failures keep their own statements.
        let delivered: Vec<(i64, i64)> = attempts
            .iter()
            .filter(|(_, a, _)| *a == Attempt::Delivered)
            .map(|(id, _, elapsed)| (*id, millis(*elapsed)))
            .collect();
        record_deliveries(&tx, &delivered, now).map_err(&e)?;
        for (id, attempt, elapsed) in attempts {
            if *attempt != Attempt::Delivered {
                record_one(&tx, *id, attempt, now, *elapsed).map_err(&e)?;
                settle_folded(&tx, *id).map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
    }

    fn expedite_untried(&mut self, ids: &[i64], now: Timestamp) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = id_list(ids);
        self.conn
            .execute(
                &format!(
                    "UPDATE outbox SET next_attempt_ms = ?1
                     WHERE id IN ({list}) AND status = 'pending' AND attempts = 0
                       AND folded_into IS NULL AND next_attempt_ms > ?1"
                ),
                [now.as_millis()],
            )
            .map_err(self.err("making held outbox rows due"))
    }

    fn next_due(&self) -> Result<Option<Timestamp>> {
        self.conn
            .query_row(
                "SELECT MIN(CASE status WHEN 'pending' THEN next_attempt_ms
                                        ELSE lease_until_ms END)
                 FROM outbox WHERE status IN ('pending', 'sending') AND folded_into IS NULL",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|ms| ms.map(ts))
            .map_err(self.err("reading the outbox"))
    }

    fn outbox_counts(&self) -> Result<OutboxCounts> {
        let read = || -> rusqlite::Result<OutboxCounts> {
            let mut c = OutboxCounts::default();
            let mut stmt = self
                .conn
                .prepare("SELECT status, COUNT(*), SUM(reclaims) FROM outbox GROUP BY status")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (status, n, reclaims) = row?;
                c.possible_duplicates += reclaims as u64;
                let n = n as u64;
                match status.as_str() {
                    "pending" => c.pending = n,
                    "sending" => c.sending = n,
                    "delivered" => c.delivered = n,
                    _ => c.dead = n,
                }
            }
            Ok(c)
        };
        read().map_err(self.err("counting outbox rows"))
    }

    fn outbox_rows(&self, include_delivered: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        let read = || -> rusqlite::Result<Vec<OutboxRow>> {
            let mut stmt = self.conn.prepare(&format!(
                "{OUTBOX_ROW} WHERE ?1 OR o.status != 'delivered' ORDER BY o.id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![include_delivered, limit], outbox_row)?;
            rows.collect()
        };
        read().map_err(self.err("reading the outbox"))
    }

    fn outbox_rows_by_id(&self, ids: &[i64]) -> Result<Vec<OutboxRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let read = || -> rusqlite::Result<Vec<OutboxRow>> {
            let mut stmt = self.conn.prepare(&format!(
                "{OUTBOX_ROW} WHERE o.id IN ({}) ORDER BY o.id",
                id_list(ids)
            ))?;
            let rows = stmt.query_map([], outbox_row)?;
            rows.collect()
        };
        read().map_err(self.err("reading the outbox"))
    }

    fn dead_ids(&self) -> Result<Vec<i64>> {
        let read = || -> rusqlite::Result<Vec<i64>> {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM outbox WHERE status = 'dead' ORDER BY id")?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            ids.collect()
        };
        read().map_err(self.err("reading the outbox"))
    }

    fn retry_outbox(
        &mut self,
        ids: Option<&[i64]>,
        now: Timestamp,
        give_up_after: Duration,
    ) -> Result<Vec<i64>> {
        let filter = match ids {
            Some([]) => return Ok(Vec::new()),
            Some(ids) => format!("id IN ({}) AND status IN ('pending', 'dead')", id_list(ids)),
            None => "status = 'dead'".to_owned(),
        };
        let sql = format!(
            "UPDATE outbox SET status = 'pending', next_attempt_ms = ?1,
                deadline_ms = MAX(deadline_ms, ?2), lease_owner = NULL,
                lease_until_ms = NULL, folded_into = NULL,
                last_reason = (SELECT a.reason FROM attempts a WHERE a.outbox_id = outbox.id
                               ORDER BY a.at_ms DESC, a.id DESC LIMIT 1)
             WHERE {filter}
             RETURNING id"
        );
        let revive = || -> rusqlite::Result<Vec<i64>> {
            let mut stmt = self.conn.prepare(&sql)?;
            let ids = stmt.query_map(
                params![now.as_millis(), (now + give_up_after).as_millis()],
                |r| r.get(0),
            )?;
            let mut ids = ids.collect::<rusqlite::Result<Vec<i64>>>()?;
            ids.sort_unstable();
            Ok(ids)
        };
        revive().map_err(self.err("retrying outbox rows"))
    }

    fn purge_outbox(&mut self, dead: bool, before: Timestamp) -> Result<usize> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "purging outbox rows", err);
        let status = if dead { "dead" } else { "delivered" };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        tx.execute(
            "DELETE FROM attempts WHERE outbox_id IN (
                SELECT id FROM outbox WHERE status = ?1 AND created_ms < ?2)",
            params![status, before.as_millis()],
        )
        .map_err(&e)?;
        let n = tx
            .execute(
                "DELETE FROM outbox WHERE status = ?1 AND created_ms < ?2",
                params![status, before.as_millis()],
            )
            .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(n)
    }

    fn outbox_row_status(&self, id: i64) -> Result<Option<(String, Option<String>, u32)>> {
        self.conn
            .query_row(
                "SELECT status, last_reason, attempts FROM outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err("reading an outbox row"))
    }

    fn outbox_channel(&self, id: i64) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT channel FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err("reading an outbox row"))
    }

    fn mark_unrouted(&mut self, run_id: &str, notification_id: &str) -> Result<()> {
        let path = self.path.clone();
        let e = move |err| Error::sqlite(&path, "recording an alert that reached no channel", err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        tx.execute(
            "UPDATE runs SET notified = 0, reason = 'no_channel',
                    reason_text = COALESCE(reason_text || '; ', '') || 'no channel takes it'
             WHERE id = ?1 AND notified = 1",
            [run_id],
        )
        .map_err(&e)?;
        let job: Option<String> = tx
            .query_row(
                "DELETE FROM notifications WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE notification_id = ?1)
                 RETURNING job",
                [notification_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(&e)?;
        // The job's row names its last notification (what `status` shows): the one before.
        if let Some(job) = job {
            tx.execute(
                "UPDATE jobs SET
                    (last_notification_ms, last_notification_kind, last_notification_reason) = (
                    SELECT created_ms, kind, reason FROM notifications n WHERE n.job = jobs.name
                    ORDER BY created_ms DESC, rowid DESC LIMIT 1)
                 WHERE name = ?1",
                [job],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }
}

/// A finished run, as the job row remembers its last one.
struct LastRunFields<'a> {
    id: &'a str,
    state: &'static str,
    started_ms: i64,
    duration_ms: Option<i64>,
    exit_code: Option<i32>,
}

/// One job as `status` shows it, for `WHERE` and `ORDER BY` clauses on `j` to follow: one
/// row of one table (its running runs are read apart, see [`Store::running_since`]), so that
/// listing every job costs a walk of the jobs, however long their histories.
const JOB_ROW_SQL: &str = "SELECT j.name, j.state, j.since_ms, j.consecutive_problems,
            j.last_run_id, j.last_run_state, j.last_run_started_ms, j.last_run_ended_ms,
            j.last_duration_ms, j.last_exit_code,
            j.last_notification_ms, j.last_notification_kind, j.last_notification_reason,
            j.uuid
     FROM jobs j";

/// The jobs in a problem state: those with problems in a row, since the rules count one for
/// every problem and reset the count with every OK outcome (`belfry_core::advance`). Written
/// exactly as the partial index `jobs_problems` is, which SQLite requires to use it.
const PROBLEMS: &str = "j.consecutive_problems > 0";

/// A row of [`JOB_ROW_SQL`], its strings lent by the statement; `running_since` is filled in
/// by the caller.
fn job_row<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<JobRow<&'r str>> {
    let text = |i: usize| -> rusqlite::Result<Option<&'r str>> {
        match r.get_ref(i)? {
            ValueRef::Null => Ok(None),
            v => v
                .as_str()
                .map(Some)
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), e.into())),
        }
    };
    let required = |i: usize| -> rusqlite::Result<&'r str> {
        text(i)?.ok_or(rusqlite::Error::InvalidColumnType(
            i,
            String::new(),
            rusqlite::types::Type::Null,
        ))
    };
    let last_run = match (text(4)?, text(5)?) {
        (Some(id), Some(st)) => Some(LastRun {
            id,
            state: parse_state(st)?,
            started: ts(r.get(6)?),
            ended: ts(r.get(7)?),
            duration: r.get::<_, Option<i64>>(8)?.map(ms_duration),
            exit_code: r.get(9)?,
        }),
        _ => None,
    };
    let last_notification = match r.get::<_, Option<i64>>(10)? {
        Some(at) => Some(LastNotification {
            at: ts(at),
            kind: parse_kind(required(11)?)?,
            reason: required(12)?,
        }),
        None => None,
    };
    Ok(JobRow {
        name: required(0)?,
        state: text(1)?.map(parse_state).transpose()?,
        since: r.get::<_, Option<i64>>(2)?.map(ts),
        consecutive_problems: r.get(3)?,
        last_run,
        running_since: None,
        last_notification,
        uuid: text(13)?,
    })
}

/// The columns of a job's snapshot, in the order [`snapshot_at`] reads them.
macro_rules! snapshot_columns {
    () => {
        "state, since_ms, consecutive_problems, problem_notified, last_notified_ms, held"
    };
}
pub(crate) use snapshot_columns;

// The statements a run's finish uses (`finish_inner`, `apply_event`, `insert_notification`),
// through the connection's statement cache. `Store::prepare_finish` prepares the first three,
// which every finish runs, ahead, so that the finish on the job's critical path finds them
// compiled.
const SNAPSHOT_SQL: &str = concat!(
    "SELECT ",
    snapshot_columns!(),
    " FROM jobs WHERE name = ?1 AND state IS NOT NULL"
);
const UPSERT_JOB_SQL: &str =
    "INSERT INTO jobs (name, state, since_ms, consecutive_problems, problem_notified,
                     last_notified_ms, created_ms, updated_ms, last_run_id, last_run_state,
                     last_run_started_ms, last_run_ended_ms, last_duration_ms,
                     last_exit_code, held, last_report_ms, n_runs)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, COALESCE(?10, ?7), ?7, ?8, ?9, ?10,
            CASE WHEN ?8 IS NULL THEN NULL ELSE ?7 END, ?11, ?12, ?13, ?14, ?8 IS NOT NULL)
    ON CONFLICT (name) DO UPDATE SET
       state = excluded.state, since_ms = excluded.since_ms,
       consecutive_problems = excluded.consecutive_problems,
       problem_notified = excluded.problem_notified,
       last_notified_ms = excluded.last_notified_ms,
       updated_ms = MAX(jobs.updated_ms, excluded.updated_ms),
       last_run_id = COALESCE(excluded.last_run_id, jobs.last_run_id),
       last_run_state = COALESCE(excluded.last_run_state, jobs.last_run_state),
       last_run_started_ms = COALESCE(excluded.last_run_started_ms, jobs.last_run_started_ms),
       last_run_ended_ms = COALESCE(excluded.last_run_ended_ms, jobs.last_run_ended_ms),
       last_duration_ms = CASE WHEN excluded.last_run_id IS NULL
           THEN jobs.last_duration_ms ELSE excluded.last_duration_ms END,
       last_exit_code = CASE WHEN excluded.last_run_id IS NULL
           THEN jobs.last_exit_code ELSE excluded.last_exit_code END,
       held = excluded.held,
       last_report_ms = CASE WHEN excluded.last_report_ms IS NULL THEN jobs.last_report_ms
           ELSE MAX(COALESCE(jobs.last_report_ms, excluded.last_report_ms),
                    excluded.last_report_ms) END,
       n_runs = jobs.n_runs + excluded.n_runs
    RETURNING expect IS NOT NULL, n_runs";
const FINISH_RUN_SQL: &str =
    "INSERT INTO runs (id, job, state, started_ms, ended_ms, duration_ms, exit_code,
                      signal, host, error, output, output_bytes, reason,
                      reason_text, notified, seq)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    ON CONFLICT (id) DO UPDATE SET
       state = excluded.state, ended_ms = excluded.ended_ms,
       duration_ms = excluded.duration_ms, exit_code = excluded.exit_code,
       signal = excluded.signal, host = COALESCE(excluded.host, runs.host),
       error = excluded.error, output = excluded.output,
       output_bytes = excluded.output_bytes, reason = excluded.reason,
       reason_text = excluded.reason_text, notified = excluded.notified,
       seq = excluded.seq
    RETURNING rowid";
const INSERT_NOTIFICATION_SQL: &str =
    "INSERT INTO notifications (id, job, run_id, kind, state, reason, created_ms, payload)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const INSERT_OUTBOX_SQL: &str =
    "INSERT INTO outbox (notification_id, job, channel, idempotency_key, status,
                     created_ms, next_attempt_ms, deadline_ms)
    VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6)";

/// How an event is applied (see [`apply_event`]).
struct Apply<'a> {
    /// The job's snapshot, read in the same transaction ([`load_snapshot`]).
    previous: Option<JobSnapshot>,
    /// How many runs the event stands for.
    covers: u32,
    /// The finished run it is, if it is one.
    run: Option<LastRunFields<'a>>,
    /// Whether it counts as the job's report (its `last_report_ms` moves to the event's time).
    report: bool,
}

/// The rules, applied inside the caller's transaction: takes core's rule [`step`] from the
/// job's snapshot the caller read, writes the job row (creating it if needed, and its last
/// report) in one statement with what the step returned, and the notification with its outbox
/// rows if the rules say so. Returns what was recorded, and what the job row now says.
fn apply_event(
    tx: &rusqlite::Transaction<'_>,
    ev: &Event,
    apply: Apply<'_>,
    rules: &Rules<'_>,
) -> rusqlite::Result<(Recorded, JobAfter)> {
    let (policy, route, deadline) = (rules.policy, rules.route, rules.limits.delivery_deadline);
    let Apply {
        previous,
        covers,
        run,
        report,
    } = apply;
    let run = run.as_ref();
    let step = step(previous.as_ref(), ev, covers, run.is_some(), policy);
    // `None` only when there was no snapshot either: the columns keep their empty values.
    let next = step.next.as_ref();
    let after = tx.prepare_cached(UPSERT_JOB_SQL)?.query_row(
        params![
            ev.job,
            next.map(|s| s.state.name()),
            next.map(|s| s.since.as_millis()),
            next.map_or(0, |s| s.consecutive_problems),
            next.is_some_and(|s| s.problem_notified),
            next.and_then(|s| s.last_notified_at)
                .map(Timestamp::as_millis),
            ev.at.as_millis(),
            run.map(|r| r.id),
            run.map(|r| r.state),
            run.map(|r| r.started_ms),
            run.and_then(|r| r.duration_ms),
            run.and_then(|r| r.exit_code),
            next.map(|s| &s.held)
                .filter(|h| !h.is_empty())
                .map(|h| serde_json::to_string(h).expect("held runs serialise")),
            report.then(|| ev.at.as_millis()),
        ],
        |r| {
            Ok(JobAfter {
                scheduled: r.get(0)?,
                n_runs: r.get(1)?,
            })
        },
    )?;
    if let Some((from, to)) = crate::checks::flip_of(previous.as_ref(), step.next.as_ref()) {
        record_flip(tx, &ev.job, ev.at, from, to)?;
        if !to.is_problem() {
            silences::clear_ack(tx, &ev.job)?;
        }
    }
    let mut n = step.notification(new_id(), ev, previous.as_ref());
    let mut outbox_ids = Vec::new();
    let mut hushed = None;
    if let Some(n) = n.as_mut() {
        if n.run_id.is_none() {
            n.run_id = run.map(|r| r.id.to_owned());
        }
        hushed = silences::hush_in(tx, &ev.job, step.decision.is_reminder(), ev.at)?;
        let recovered = n.kind == Kind::Recovered;
        // A held-back notification is recorded, with why, and sent to no channel.
        let channels = match &hushed {
            None => route(&ev.state, recovered),
            Some(_) => Vec::new(),
        };
        outbox_ids = insert_notification(tx, n, channels, deadline)?;
        if let Some(h) = &hushed {
            set_hushed(tx, &n.id, h)?;
        }
    }
    let rec = Recorded {
        decision: step.decision,
        previous,
        next: step.next,
        notification: n,
        outbox_ids,
        hushed,
    };
    Ok((rec, after))
}

/// What a job's row says once [`apply_event`] wrote it.
struct JobAfter {
    /// It has a schedule: the caller recomputes its `late_at` ([`late::refresh_late`]) once
    /// its writes are done.
    scheduled: bool,
    /// Its count of finished runs, the event's run included: that run's number.
    n_runs: i64,
}

/// Writes why notification `id` was held back.
fn set_hushed(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    h: &belfry_core::Hush,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE notifications SET hushed = ?2 WHERE id = ?1")?
        .execute(params![id, crate::hush::hush_json(h)])?;
    Ok(())
}

/// Keeps a job's change of state (and no more than the newest
/// [`FLIPS_PER_JOB`](crate::FLIPS_PER_JOB) of them).
fn record_flip(
    tx: &rusqlite::Transaction<'_>,
    job: &str,
    at: Timestamp,
    from: Option<State>,
    to: State,
) -> rusqlite::Result<()> {
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO flips (job, at_ms, from_state, to_state) VALUES (?1, ?2, ?3, ?4)
             RETURNING id",
        )?
        .query_row(
            params![job, at.as_millis(), from.map(|s| s.name()), to.name()],
            |r| r.get(0),
        )?;
    tx.prepare_cached(
        "DELETE FROM flips WHERE job = ?1 AND id < ?2 AND id <= (
             SELECT id FROM flips WHERE job = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![job, id, crate::FLIPS_PER_JOB])?;
    Ok(())
}

/// A run's finish, inside the caller's transaction: the rule step from the job's snapshot
/// (`previous`, read in the same transaction), the run's row (completed, or written whole if
/// its start was never recorded), pruning, and the job's last report.
fn finish_in(
    tx: &rusqlite::Transaction<'_>,
    end: &RunEnd<'_>,
    previous: Option<JobSnapshot>,
    rules: &Rules<'_>,
) -> rusqlite::Result<Recorded> {
    let ev = end.event;
    let run_id = ev.details.run_id.clone().unwrap_or_else(new_id);
    let output = end.output.filter(|o| !o.is_empty()).map(pack);
    let d = &ev.details;
    let started = d.started_at.unwrap_or(ev.at).as_millis();
    let duration_ms = d.duration.map(millis);
    let run = LastRunFields {
        id: &run_id,
        state: ev.state.name(),
        started_ms: started,
        duration_ms,
        exit_code: d.exit_code,
    };
    let apply = Apply {
        previous,
        covers: 1,
        run: Some(run),
        report: true,
    };
    let (rec, after) = apply_event(tx, ev, apply, rules)?;
    // The start may have been recorded (then this completes the row) or not (the store was
    // unavailable, or the job was over before the store was open): record it whole.
    let rowid: i64 = tx.prepare_cached(FINISH_RUN_SQL).and_then(|mut stmt| {
        stmt.query_row(
            params![
                run_id,
                ev.job,
                ev.state.name(),
                started,
                ev.at.as_millis(),
                duration_ms,
                d.exit_code,
                d.signal,
                d.host,
                d.error,
                output,
                end.output_bytes as i64,
                rec.decision.reason.code(),
                rec.decision.reason.to_string(),
                rec.decision.notify,
                after.n_runs,
            ],
            |r| r.get(0),
        )
    })?;
    // Keep the history bounded (see `retention`).
    retention::after_run(tx, rowid, after.n_runs, &rules.limits.retention)?;
    if let Some(n) = &rec.notification {
        retention::after_notification(tx, &n.job, &n.id, &rules.limits.retention)?;
    }
    // After the run's row: a schedule's maximum run time looks at the runs still going.
    if after.scheduled {
        late::refresh_late(tx, &ev.job)?;
    }
    Ok(rec)
}

/// A run's start, inside the caller's transaction (the job's row made if needed); it counts
/// as the job's last report.
fn start_in(tx: &rusqlite::Transaction<'_>, run: &RunStart) -> rusqlite::Result<()> {
    let ms = run.started.as_millis();
    tx.prepare_cached(
        "INSERT INTO jobs (name, created_ms, updated_ms) VALUES (?1, ?2, ?2)
         ON CONFLICT (name) DO NOTHING",
    )?
    .execute(params![run.job, ms])?;
    tx.prepare_cached(
        "INSERT INTO runs (id, job, state, started_ms, host, pid, boot_id)
         VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![run.id, run.job, ms, run.host, run.pid, run.boot_id])?;
    late::report(tx, &run.job, run.started)
}

/// Row ids as an SQL list (`1,2,3`), for `IN (…)`: integers only, so nothing to escape.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Writes a notification to the log and one outbox row per channel (each channel once), due
/// at once. Returns the rows' ids.
fn insert_notification(
    tx: &rusqlite::Transaction<'_>,
    n: &Notification,
    mut channels: Vec<String>,
    deadline: Duration,
) -> rusqlite::Result<Vec<i64>> {
    let payload = pack(&serde_json::to_string(n).expect("a notification serialises"));
    let kind = serde_json::to_value(n.kind).expect("a kind serialises");
    tx.prepare_cached(INSERT_NOTIFICATION_SQL)?
        .execute(params![
            n.id,
            n.job,
            n.run_id,
            kind.as_str(),
            n.state.name(),
            n.reason,
            n.time.as_millis(),
            payload
        ])?;
    channels.sort();
    channels.dedup();
    let now = n.time.as_millis();
    let deadline_ms = (n.time + deadline).as_millis();
    let mut ids = Vec::with_capacity(channels.len());
    for ch in channels {
        tx.prepare_cached(INSERT_OUTBOX_SQL)?.execute(params![
            n.id,
            n.job,
            ch,
            format!("{}:{ch}", n.id),
            now,
            deadline_ms
        ])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

fn load_snapshot(conn: &Connection, job: &str) -> rusqlite::Result<Option<JobSnapshot>> {
    conn.prepare_cached(SNAPSHOT_SQL)?
        .query_row([job], |r| snapshot_at(r, 0, job))
        .optional()
        .map(Option::flatten)
}

/// The job's snapshot from [`snapshot_columns`] read from column `at` on; `None` if the rules
/// have not counted a run yet (no state).
fn snapshot_at(
    r: &rusqlite::Row<'_>,
    at: usize,
    job: &str,
) -> rusqlite::Result<Option<JobSnapshot>> {
    let Some(state) = r.get_ref(at)?.as_str_or_null()? else {
        return Ok(None);
    };
    Ok(Some(JobSnapshot {
        state: parse_state(state)?,
        since: ts(r.get(at + 1)?),
        consecutive_problems: r.get(at + 2)?,
        problem_notified: r.get(at + 3)?,
        last_notified_at: r.get::<_, Option<i64>>(at + 4)?.map(ts),
        held: parse_held(job, r.get_ref(at + 5)?.as_str_or_null()?, at + 5)?,
    }))
}

/// `job`'s `held` column: JSON of [`Held`], NULL for none.
fn parse_held(job: &str, json: Option<&str>, column: usize) -> rusqlite::Result<Held> {
    json.map_or(Ok(Held::default()), |text| {
        serde_json::from_str(text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                format!("job {job:?}: its held-back runs (`jobs.held`) are not readable: {e}")
                    .into(),
            )
        })
    })
}

fn parse_state(s: &str) -> rusqlite::Result<State> {
    s.parse().map_err(|e: belfry_core::UnknownState| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_kind(s: &str) -> rusqlite::Result<Kind> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A duration in the store's milliseconds, saturating (`as i64` would wrap `Duration::MAX`
/// round to -1).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn ms_duration(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

fn record_one(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    attempt: &Attempt,
    now: Timestamp,
    elapsed: Duration,
) -> rusqlite::Result<()> {
    let (outcome, reason) = match attempt {
        Attempt::Delivered => ("delivered", None),
        Attempt::Retry { reason, .. } => ("retry", Some(reason.as_str())),
        Attempt::Permanent { reason } => ("permanent", Some(reason.as_str())),
    };
    tx.prepare_cached(
        "INSERT INTO attempts (outbox_id, at_ms, outcome, reason, elapsed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        now.as_millis(),
        outcome,
        reason,
        millis(elapsed)
    ])?;
    match attempt {
        Attempt::Delivered => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'delivered', delivered_ms = ?2, lease_owner = NULL,
                    lease_until_ms = NULL WHERE id = ?1",
            )?
            .execute(params![id, now.as_millis()]),
        Attempt::Retry { at, reason } => tx
            .prepare_cached(
                "UPDATE outbox SET
                    status = CASE WHEN ?2 >= deadline_ms THEN 'dead' ELSE 'pending' END,
                    next_attempt_ms = ?2, last_reason = ?3, lease_owner = NULL,
                    lease_until_ms = NULL
                 WHERE id = ?1 AND status = 'sending'",
            )?
            .execute(params![id, at.as_millis(), reason]),
        Attempt::Permanent { reason } => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'dead', last_reason = ?2, lease_owner = NULL,
                    lease_until_ms = NULL WHERE id = ?1",
            )?
            .execute(params![id, reason]),
    }
    .map(drop)
}

/// A run as `belfry history` shows it, from the columns `id, job, state, started_ms, ended_ms,
/// duration_ms, exit_code, signal, host, error, reason, reason_text, notified, output,
/// output_bytes` in that order (the output may be NULL: not asked for, or none kept).
fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let output = Some(r.get_ref(13)?)
        .filter(|v| *v != ValueRef::Null)
        .map(unpack)
        .transpose()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Blob, Box::new(e))
        })?;
    Ok(RunRow {
        id: r.get(0)?,
        job: r.get(1)?,
        state: parse_state(&r.get::<_, String>(2)?)?,
        started: ts(r.get(3)?),
        ended: r.get::<_, Option<i64>>(4)?.map(ts),
        duration: r.get::<_, Option<i64>>(5)?.map(ms_duration),
        exit_code: r.get(6)?,
        signal: r.get(7)?,
        host: r.get(8)?,
        error: r.get(9)?,
        reason: r.get(10)?,
        reason_text: r.get(11)?,
        notified: r.get(12)?,
        output,
        output_bytes: r.get::<_, Option<i64>>(14)?.map(|n| n.max(0) as u64),
    })
}

/// The columns of an [`OutboxRow`], in the order [`outbox_row`] reads them.
const OUTBOX_ROW: &str = "SELECT o.id, o.channel, o.status, o.attempts, o.created_ms,
        o.next_attempt_ms, o.deadline_ms, o.lease_until_ms, o.last_reason, o.delivered_ms,
        n.job, n.state, n.kind, n.reason, o.folded_into, o.reclaims
    FROM outbox o JOIN notifications n ON n.id = o.notification_id";

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        status: r.get(2)?,
        attempts: r.get(3)?,
        created: ts(r.get(4)?),
        next_attempt: ts(r.get(5)?),
        deadline: ts(r.get(6)?),
        lease_until: r.get::<_, Option<i64>>(7)?.map(ts),
        last_reason: r.get(8)?,
        delivered: r.get::<_, Option<i64>>(9)?.map(ts),
        job: r.get(10)?,
        state: parse_state(&r.get::<_, String>(11)?)?,
        kind: parse_kind(&r.get::<_, String>(12)?)?,
        reason: r.get(13)?,
        folded_into: r.get(14)?,
        reclaims: r.get(15)?,
    })
}

/// Claims, in one statement, up to `room` due rows that are alone in their (job, channel) lane
/// (no other row of it pending or being sent, so there is nothing to fold and nothing to wait
/// for) and whose lane had no delivery inside the digest window: the common case, a backlog
/// of alerts for distinct jobs. Returns their ids in order. Every other lane is left
/// to `claim_due`'s look at one lane at a time, which folds and holds.
fn claim_lone_rows(
    tx: &rusqlite::Transaction<'_>,
    ids: Option<&[i64]>,
    now_ms: i64,
    (owner, lease_until): (&str, i64),
    (window_ms, window_exempt): (i64, &[String]),
    room: usize,
) -> rusqlite::Result<Vec<i64>> {
    if room == 0 {
        return Ok(Vec::new());
    }
    // The exempt channels go in as one JSON array, read by `json_each`: names need no
    // escaping that way.
    // The ids likewise, so that the statement's text is the same whatever they are, and its
    // compiled form is reused.
    let exempt = serde_json::to_string(window_exempt).expect("strings serialise");
    let ids = ids.map(|ids| serde_json::to_string(ids).expect("integers serialise"));
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET status = 'sending', lease_owner = ?2, lease_until_ms = ?3,
            attempts = attempts + 1
         WHERE id IN (
            SELECT o.id FROM outbox o
            WHERE o.status = 'pending' AND o.next_attempt_ms <= ?1 AND o.folded_into IS NULL
              AND (?7 IS NULL OR o.id IN (SELECT value FROM json_each(?7)))
              AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.job = o.job AND x.channel = o.channel
                    AND x.status IN ('pending', 'sending') AND x.folded_into IS NULL
                    AND x.id != o.id)
              AND (?4 <= 0 OR o.channel IN (SELECT value FROM json_each(?5))
                   OR NOT EXISTS (SELECT 1 FROM outbox d WHERE d.job = o.job
                        AND d.channel = o.channel AND d.status = 'delivered'
                        AND d.folded_into IS NULL AND d.delivered_ms + ?4 > ?1))
            ORDER BY o.next_attempt_ms, o.id LIMIT ?6)
         RETURNING id",
    )?;
    let rows = stmt.query_map(
        params![
            now_ms,
            owner,
            lease_until,
            window_ms,
            exempt,
            i64::try_from(room).unwrap_or(i64::MAX),
            ids
        ],
        |r| r.get(0),
    )?;
    let mut ids: Vec<i64> = rows.collect::<rusqlite::Result<_>>()?;
    // RETURNING gives the rows in the order they were updated, which SQLite does not promise
    // to be the subquery's.
    ids.sort_unstable();
    Ok(ids)
}

/// Records the delivery of each `(row, milliseconds it took)` at `now`, and the rows folded
/// into them follow: what `record_one` and `settle_folded` do for one row, for all of them at
/// once. The ids go in as one JSON array. (The `+`s: as in `settle_folded`; without them this
/// statement read every pending row for each batch, half of a busy dispatcher's CPU.)
fn record_deliveries(
    tx: &rusqlite::Transaction<'_>,
    delivered: &[(i64, i64)],
    now: Timestamp,
) -> rusqlite::Result<()> {
    if delivered.is_empty() {
        return Ok(());
    }
    let pairs = serde_json::to_string(delivered).expect("integers serialise");
    let ids = serde_json::to_string(&delivered.iter().map(|d| d.0).collect::<Vec<_>>())
        .expect("integers serialise");
    let now_ms = now.as_millis();
    tx.prepare_cached(
        "INSERT INTO attempts (outbox_id, at_ms, outcome, reason, elapsed_ms)
         SELECT value ->> 0, ?2, 'delivered', NULL, value ->> 1 FROM json_each(?1)",
    )?
    .execute(params![pairs, now_ms])?;
    tx.prepare_cached(
        "UPDATE outbox SET status = 'delivered', delivered_ms = ?2, lease_owner = NULL,
            lease_until_ms = NULL
         WHERE id IN (SELECT value FROM json_each(?1))",
    )?
    .execute(params![ids, now_ms])?;
    tx.prepare_cached(
        "UPDATE outbox SET status = 'delivered', delivered_ms = r.delivered_ms,
            last_reason = 'delivered in the digest of row ' || r.id
         FROM outbox r
         WHERE outbox.folded_into IN (SELECT value FROM json_each(?1))
           AND r.id = outbox.folded_into AND +outbox.status = 'pending'
           AND +r.status = 'delivered'",
    )?
    .execute([ids])
    .map(drop)
}

/// The rows folded into `carrier` take its status once it is delivered or dead. (The `+` before
/// a status keeps SQLite from reading rows by the status indexes, every pending row, instead
/// of by `outbox_folded`, the few folded into this one: with the planner's stability
/// guarantee it cannot see that the bound id is selective.)
fn settle_folded(tx: &rusqlite::Transaction<'_>, carrier: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET status = r.status, delivered_ms = r.delivered_ms,
            last_reason = CASE r.status
                WHEN 'delivered' THEN 'delivered in the digest of row ' || r.id
                ELSE 'folded into row ' || r.id || ', which is dead: ' || COALESCE(r.last_reason, '')
            END
         FROM outbox r
         WHERE r.id = ?1 AND outbox.folded_into = ?1 AND +outbox.status = 'pending'
           AND +r.status IN ('delivered', 'dead')",
    )?
    .execute([carrier])
    .map(drop)
}

/// The claimed row `id` with its notification, folded with the rows it carries.
fn self_claimed(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<Option<Claimed>> {
    let (channel, key, attempts, notification) = tx
        .prepare_cached(
            "SELECT o.channel, o.idempotency_key, o.attempts, n.payload
             FROM outbox o JOIN notifications n ON n.id = o.notification_id WHERE o.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                read_notification(r.get_ref(3)?),
            ))
        })?;
    let Some(mut notification) = notification else {
        return Ok(None);
    };
    // The rows folded into this one: their notifications are counted in its digest, each
    // with the events it stood for itself.
    let carried: Vec<Option<Notification>> = tx
        .prepare_cached(
            "SELECT n.payload FROM outbox o JOIN notifications n ON n.id = o.notification_id
             WHERE o.folded_into = ?1 ORDER BY n.created_ms, o.id",
        )?
        .query_map([id], |r| Ok(read_notification(r.get_ref(0)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if !carried.is_empty() {
        let carried: Vec<Notification> = carried.into_iter().flatten().collect();
        notification.fold(&carried);
    }
    Ok(Some(Claimed {
        id,
        channel,
        idempotency_key: key,
        attempts,
        notification,
    }))
}

/// A notification as stored (`None` if it cannot be read back).
fn read_notification(payload: ValueRef<'_>) -> Option<Notification> {
    let json = unpack(payload).ok()?;
    serde_json::from_str(&json).ok()
}

/// What [`packed::pack`] kept, read from a column (a BLOB).
fn unpack(value: ValueRef<'_>) -> std::io::Result<String> {
    match value {
        ValueRef::Blob(b) => packed::unpack(b),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stored text has the type {:?}", other.data_type()),
        )),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
