//! belfry's durable state, shared by every belfry process that uses one store: each job's state
//! (what the alert rules remember), its run history, the notification log and the outbox.
//!
//! [`Store`] is the one handle the command line, the library and the server use. Behind it is
//! a backend: SQLite (one file in WAL mode, the default; no server to run) or PostgreSQL (for a
//! fleet of hosts on one database). Both keep the same promises: the decision to notify and the
//! outbox rows it produces are written in the same transaction as the run that caused them,
//! so once [`Store::finish_run`] returns, the alert exists and survives any crash.
//!
//! A [`Location`] says which: a path is a SQLite file; a `postgres://` or `postgresql://`
//! URL (libpq's form: `postgres://user:password@host:port/database?option=value`) is a
//! PostgreSQL database. Its optional `schema=NAME` parameter, which belfry takes out of the URL
//! before connecting, puts the store's tables in that schema (created if missing; a plain name,
//! letters, digits and `_`), so that several stores (teams, tests) can share one database;
//! without it they go in the first schema of the server's search path (usually `public`).
//! A location shows its URL without the password, and no error message carries it. The
//! connection is plain TCP or a Unix socket (no TLS yet).
//!
//! With a fleet of processes on one PostgreSQL store, [`Store::now`] gives the database's
//! clock, to which every lease and deadline should be measured, and
//! [`Store::wait_for_work`] sleeps until another process commits an alert (`LISTEN`/`NOTIFY`).
//!
//! A third backend is a module beside `sqlite/` and `postgres/` implementing the crate's
//! internal `Backend` trait (`backend.rs`) whole, a [`Location`] variant and its arm in
//! [`Store::open`], and a `Db` kind in the conformance suite (`tests/store/support.rs`), which
//! then runs every test of `tests/store/conformance.rs` against it.
//!
//! A store applies no rules of its own: `belfry_core::step` decides, and the store persists
//! what it returns. Every setting (the job's policy, where its alerts go, how long a row may
//! wait, what history to keep, the digest window) is an argument of the call that needs it.
//! The store knows channels only as names; it never sees a channel's URL or secret.
//!
//! ```
//! use belfry_core::{Details, Event, Policy, State, Timestamp};
//! use belfry_store::{Limits, RunEnd, RunStart, Store};
//!
//! let dir = std::env::temp_dir().join(format!("belfry-doc-{}", std::process::id()));
//! let mut store = Store::open(&dir.join("belfry.db"))?;
//! let t0 = Timestamp::now();
//! store.start_run(&RunStart {
//!     id: "run-1".into(), job: "backup".into(), started: t0,
//!     host: Some("db1".into()), pid: Some(42), boot_id: None,
//! })?;
//! let event = Event {
//!     job: "backup".into(), state: State::Failed, at: t0.add_millis(1500),
//!     details: Details { run_id: Some("run-1".into()), exit_code: Some(1), ..Details::default() },
//! };
//! let rec = store.finish_run(
//!     &RunEnd { event: &event, output: None, output_bytes: 0 },
//!     &Policy::default(),
//!     |_state, _recovered| vec!["console".to_string()],
//!     &Limits::default(),
//! )?;
//! assert!(rec.decision.notify);
//! assert_eq!(rec.outbox_ids.len(), 1);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), belfry_store::Error>(())
//! ```

mod backend;
mod checks;
mod copy;
mod error;
mod hush;
mod location;
mod packed;
mod postgres;
mod sqlite;
mod types;

use std::fmt;

use std::time::Duration;

use belfry_core::{Event, JobSnapshot, Notification, Policy, Silence, State, Timestamp};

pub use self::postgres::PostgresUrl;
use backend::Backend;
pub use checks::{
    CheckChange, CheckMeta, CheckRow, FLIPS_PER_JOB, FlipRow, JobRef, PINGS_PER_JOB, Ping,
    PingKind, PingOutcome, PingRow, RuleBook, ping_run_id,
};
pub use copy::Copied;
pub use error::{Error, Result};
pub use hush::{Acked, AttemptRow, Delivery, NOTIFICATIONS_PER_PAGE, NewSilence, NotificationRow};
pub use location::Location;
pub use sqlite::WAL_TRIM_BYTES;
pub use types::*;
pub use uuid::Uuid;

/// An open store: a handle on one backend.
pub struct Store {
    backend: Box<dyn Backend>,
    location: Location,
}

/// Every store call but a wait passes this gate; [`close_for_fork`] closes it, so that no
/// thread of the process is inside the store (a transaction, SQLite's lock bookkeeping) at the
/// moment it forks. A read lock: calls on different handles do not wait for each other.
static FORK_GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    /// The gate's closure, from [`close_for_fork`] until [`open_after_fork`], kept by the
    /// thread that closed it (the one that forks: the only thread of the child).
    static CLOSED: std::cell::RefCell<Option<std::sync::RwLockWriteGuard<'static, ()>>> =
        const { std::cell::RefCell::new(None) };
}

fn gate() -> std::sync::RwLockReadGuard<'static, ()> {
    // The gate guards no data: a thread that panicked while passing it left nothing to mend.
    FORK_GATE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until no thread of this process is inside a store call (a write transaction ends
/// within milliseconds; a call waiting for another process's lock may take longer), then keeps
/// every new call waiting, until [`open_after_fork`]. For a program that forks with store
/// handles open on other threads (belfry's Python package calls it from `os.register_at_fork`):
/// a child forked in the middle of a transaction inherits SQLite's bookkeeping of locks its
/// process no longer holds, and could not write to the store. Must not be called from a thread
/// inside a store call (it would wait for itself); calling it twice without opening waits for
/// ever.
pub fn close_for_fork() {
    let closed = FORK_GATE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    CLOSED.with(|c| *c.borrow_mut() = Some(closed));
}

/// Opens what [`close_for_fork`] closed: after the fork, in the parent and in the child, on
/// the thread that closed it (elsewhere it does nothing).
pub fn open_after_fork() {
    CLOSED.with(|c| c.borrow_mut().take());
}

/// A backend, borrowed through the fork gate.
struct Gated<R> {
    _open: std::sync::RwLockReadGuard<'static, ()>,
    backend: R,
}

impl<R: std::ops::Deref> std::ops::Deref for Gated<R> {
    type Target = R::Target;
    fn deref(&self) -> &R::Target {
        &self.backend
    }
}

impl<R: std::ops::DerefMut> std::ops::DerefMut for Gated<R> {
    fn deref_mut(&mut self) -> &mut R::Target {
        &mut self.backend
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location.to_string())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `location`, and brings its schema up to date.
    ///
    /// A SQLite file's parent directory is created with mode 0700: the history holds job
    /// output.
    pub fn open(location: impl Into<Location>) -> Result<Store> {
        let location = location.into();
        let _open = gate();
        let backend: Box<dyn Backend> = match &location {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
            Location::Postgres(url) => Box::new(self::postgres::Postgres::open(url)?),
        };
        Ok(Store { backend, location })
    }

    fn gated(&self) -> Gated<&dyn Backend> {
        Gated {
            _open: gate(),
            backend: &*self.backend,
        }
    }

    fn gated_mut(&mut self) -> Gated<&mut dyn Backend> {
        Gated {
            _open: gate(),
            backend: &mut *self.backend,
        }
    }

    /// Where the store is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        self.gated().schema_version()
    }

    /// The store's clock: the time leases and deadlines are measured by. SQLite's is this
    /// host's; PostgreSQL's is the database server's, so that dispatchers on hosts whose
    /// clocks disagree still agree on when a lease runs out. Methods that take `now` use what
    /// they are given (tests pass their own); a dispatcher passes this.
    pub fn now(&self) -> Result<Timestamp> {
        self.gated().now()
    }

    /// Waits up to `timeout` for outbox rows to become due, and says whether it was woken.
    /// PostgreSQL: listens (on a connection of its own) for the `NOTIFY belfry_outbox` that a
    /// commit of new, released or revived rows sends; `true` also right after the listening
    /// connection was (re)made, since what came before it was not heard, so the caller looks
    /// again. SQLite: nothing tells, so it sleeps `timeout` and returns `false`. Either way
    /// the caller claims what is due afterwards; a `true` is a hint, not a promise.
    pub fn wait_for_work(&mut self, timeout: Duration) -> Result<bool> {
        self.backend.wait_for_work(timeout)
    }

    /// Records that a run has started. The job appears in `status` from now on.
    pub fn start_run(&mut self, run: &RunStart) -> Result<()> {
        self.gated_mut().start_run(run)
    }

    /// Does ahead of time the work that [`Store::finish_run`] always needs (compiling its
    /// statements). `belfry run` calls it beside the job, so that recording the end (after the
    /// job, on its exit path) does less. Optional: the finish does what is missing itself.
    pub fn prepare_finish(&self) -> Result<()> {
        self.gated().prepare_finish()
    }

    /// Records a finished run, applies the alert rules with `policy`, and writes the
    /// notification and one outbox row per channel, all in one transaction.
    ///
    /// `route(state, recovered)` names the channels for a notification about `state` (called
    /// only when the rules decide to notify). If the run's start was never recorded (the store
    /// was unavailable then), the run is recorded whole now.
    pub fn finish_run(
        &mut self,
        end: &RunEnd<'_>,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
        limits: &Limits,
    ) -> Result<Recorded> {
        let rules = Rules {
            policy,
            route: &route,
            limits: *limits,
        };
        self.gated_mut()
            .finish_run(end, &rules, false)?
            .ok_or_else(|| Error::internal(&self.location.to_string(), "recording a finished run"))
    }

    /// Like [`Store::finish_run`], but only if the run is still `running` (checked inside the
    /// same transaction): for a process that finds another one's run abandoned, so that two
    /// of them noticing at once record it once. `None` if the run had already ended.
    pub fn finish_stale_run(
        &mut self,
        end: &RunEnd<'_>,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
        limits: &Limits,
    ) -> Result<Option<Recorded>> {
        let rules = Rules {
            policy,
            route: &route,
            limits: *limits,
        };
        self.gated_mut().finish_run(end, &rules, true)
    }

    /// Records pings in one transaction (the server's group commit), in order; one outcome
    /// per ping.
    ///
    /// Every ping is kept (the newest [`PINGS_PER_JOB`] per job), counts as the job's last
    /// report (its `late_at` moves on) and resumes a paused job. `start` begins a run (its id
    /// the ping's `rid`, or a new one; a start without `rid` replaces the job's earlier
    /// rid-less running run). `success`/`exit 0` and `fail`/`exit n` finish one: the run of
    /// the same `rid`, else the job's latest rid-less running run, else a run of no duration;
    /// it goes through the alert rules as any run does, and the ping's body is its output.
    /// `log` changes no state. A job named by uuid that does not exist, or by name without
    /// `create`, is [`PingOutcome::NotFound`].
    pub fn record_pings(
        &mut self,
        pings: &[Ping<'_>],
        rules: &dyn RuleBook,
    ) -> Result<Vec<PingOutcome>> {
        if pings.is_empty() {
            return Ok(Vec::new());
        }
        self.gated_mut().record_pings(pings, rules)
    }

    /// Marks late every job whose `late_at` is at or before `now` (at most `limit`, the
    /// earliest first) and that is not paused: each gets a [`State::Late`] event through the
    /// rules, and its next `late_at` (the following due time plus grace), in one
    /// transaction. On PostgreSQL the jobs are locked with `SKIP LOCKED`, so that several
    /// processes sweeping at once mark each job once. Returns what was recorded.
    pub fn mark_late(
        &mut self,
        now: Timestamp,
        limit: u32,
        rules: &dyn RuleBook,
    ) -> Result<Vec<Recorded>> {
        self.gated_mut().mark_late(now, limit, rules)
    }

    /// The earliest `late_at` of any job that is not paused, for a sweeper's sleep.
    pub fn next_late(&self) -> Result<Option<Timestamp>> {
        self.gated().next_late()
    }

    /// Sets (`Some`) or clears (`None`) a job's schedule, creating the job if needed, and
    /// recomputes its `late_at` (from its last report, or from `now` if it never reported).
    /// The same as [`Store::save_check`] with only the schedule.
    pub fn set_expect(
        &mut self,
        job: &str,
        expect: Option<&belfry_core::Expect>,
        now: Timestamp,
    ) -> Result<()> {
        let change = CheckChange {
            expect: Some(expect),
            meta: None,
        };
        self.save_check(job, &change, now).map(|_| ())
    }

    /// Changes what `change` gives of a job's check fields, creating the job if needed, in
    /// one transaction. A schedule set or cleared restarts the job's watch (silence counts
    /// from `now` or a later report); its `late_at` is recomputed. Returns whether the job was
    /// created.
    pub fn save_check(
        &mut self,
        job: &str,
        change: &CheckChange<'_>,
        now: Timestamp,
    ) -> Result<bool> {
        let created = self.gated_mut().save_checks(&[(job, *change)], now)?;
        Ok(created.first().copied().unwrap_or(false))
    }

    /// [`Store::save_check`] for many jobs, in one transaction (a server starting with
    /// 100,000 scheduled jobs). Returns whether each job was created, in order.
    pub fn save_checks(
        &mut self,
        changes: &[(&str, CheckChange<'_>)],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.gated_mut().save_checks(changes, now)
    }

    /// Deletes a job: its row, runs, pings and state changes. Its notifications and their
    /// outbox rows stay: an alert already made is still delivered. Returns whether the job
    /// existed.
    pub fn delete_job(&mut self, job: &str) -> Result<bool> {
        self.gated_mut().delete_job(job)
    }

    /// Every job's identity and check fields, by name.
    pub fn checks(&self) -> Result<Vec<CheckRow>> {
        self.gated().checks()
    }

    /// A job's changes of state between OK and problem, newest first, at most `limit`.
    pub fn flips(&self, job: &str, limit: u32) -> Result<Vec<FlipRow>> {
        self.gated().flips(job, limit)
    }

    /// Pauses or resumes a job. A paused job is never marked late; resuming it counts its
    /// silence from `now`. Returns whether the job exists (nothing is created).
    pub fn set_paused(&mut self, job: &str, paused: bool, now: Timestamp) -> Result<bool> {
        self.gated_mut().set_paused(job, paused, now)
    }

    /// Makes a silence: from now until `s.until`, the alerts of the jobs it covers are
    /// recorded with why, and sent to no channel.
    pub fn add_silence(&mut self, s: &NewSilence<'_>, now: Timestamp) -> Result<Silence> {
        self.gated_mut().add_silence(s, now)
    }

    /// The silences in force at `now` (not ended, not over), the soonest to end first.
    pub fn silences(&self, now: Timestamp) -> Result<Vec<Silence>> {
        self.gated().silences(now)
    }

    /// Ends a silence early; `false` when no silence of that number is in force.
    pub fn end_silence(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        self.gated_mut().end_silence(id, now)
    }

    /// Acknowledges a job's problem for `by`: its reminders are recorded, not sent, until it
    /// recovers (then the acknowledgement is forgotten). A change to another problem is sent.
    pub fn acknowledge(&mut self, job: &str, by: &str, now: Timestamp) -> Result<Acked> {
        self.gated_mut().acknowledge(job, by, now)
    }

    /// A setting the server's replicas share: the stored value of `key`, or `otherwise` when
    /// there is none (then stored; the first replica to store one wins).
    pub fn setting(&mut self, key: &str, otherwise: &str) -> Result<String> {
        self.gated_mut().setting(key, otherwise)
    }

    /// A job's notifications, newest first, at most `limit` (at most
    /// [`NOTIFICATIONS_PER_PAGE`]), each with its deliveries and their attempts.
    pub fn notifications(&self, job: &str, limit: u32) -> Result<Vec<NotificationRow>> {
        self.gated()
            .notifications(job, limit.min(NOTIFICATIONS_PER_PAGE))
    }

    /// Leaves most of the store's upkeep to another handle's [`Store::upkeep`]: for a handle
    /// whose commits must be quick (the server's writer of pings). On SQLite, its commits copy
    /// the write-ahead log into the database (a checkpoint, with its sync) only once the log
    /// holds 100,000 pages (about 400 MB), not SQLite's 1,000, as a backstop: another handle's
    /// upkeep, called every quarter of a second or so, copies the log as it grows. Nothing on
    /// PostgreSQL.
    pub fn leave_upkeep(&mut self) -> Result<()> {
        self.gated_mut().leave_upkeep()
    }

    /// Does the upkeep that handles which [left it](Store::leave_upkeep) do not: on SQLite, a
    /// passive checkpoint (it copies what it can without waiting for, or holding up, any
    /// writer). The server's checkpointer thread calls it every quarter of a second. Nothing
    /// on PostgreSQL.
    pub fn upkeep(&mut self) -> Result<()> {
        self.gated_mut().upkeep()
    }

    /// A job's identity and check fields, if the job exists.
    pub fn check(&self, job: JobRef<'_>) -> Result<Option<CheckRow>> {
        self.gated().check(job)
    }

    /// A job's kept pings, newest first, at most `limit` and at most [`PINGS_PER_JOB`].
    pub fn pings(&self, job: &str, limit: u32) -> Result<Vec<PingRow>> {
        self.gated().pings(job, limit.min(PINGS_PER_JOB))
    }

    /// The runs recorded as started and not finished, oldest first.
    pub fn running_runs(&self) -> Result<Vec<RunStart>> {
        self.gated().running_runs()
    }

    /// Applies the alert rules to an event that is not a run (from the library, a ping) and
    /// writes the notification and its outbox rows, in one transaction.
    pub fn record_event(
        &mut self,
        event: &Event,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
        limits: &Limits,
    ) -> Result<Recorded> {
        self.record_events(event, 1, policy, route, limits)
    }

    /// Like [`Store::record_event`], for `event` standing for `covers` consecutive events of
    /// its job in its state (collapsed in a storm; `event` is the newest). The rules decide
    /// once, as for the first of them, and the problems in a row count them all, in the
    /// snapshot and in the notification.
    pub fn record_events(
        &mut self,
        event: &Event,
        covers: u32,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
        limits: &Limits,
    ) -> Result<Recorded> {
        let rules = Rules {
            policy,
            route: &route,
            limits: *limits,
        };
        self.gated_mut().record_events(event, covers, &rules)
    }

    /// Writes a notification made outside the alert rules, and its outbox rows, in one
    /// transaction: a digest of events the rules held back (the library's final count when a
    /// program exits), or a program's end-of-run summary. Returns the rows' ids.
    ///
    /// With `restarts_repeat_window`, the job's last notification time becomes the
    /// notification's `time` (if later), as for the rules' own notifications, so that the
    /// next problem waits for `repeat_failures_after` again. The job's state is not changed.
    pub fn record_notification(
        &mut self,
        n: &Notification,
        channels: Vec<String>,
        restarts_repeat_window: bool,
        limits: &Limits,
    ) -> Result<Vec<i64>> {
        self.gated_mut()
            .record_notification(n, channels, restarts_repeat_window, limits)
    }

    /// The rules' memory of one job.
    pub fn snapshot(&self, job: &str) -> Result<Option<JobSnapshot>> {
        self.gated().snapshot(job)
    }

    /// Every job, as [`Store::each_job`] orders them.
    pub fn jobs(&self) -> Result<Vec<JobRow>> {
        let mut all = Vec::new();
        self.each_job(false, |j| {
            all.push(j.owned());
            Ok::<_, Error>(())
        })?;
        Ok(all)
    }

    /// One job, if belfry has seen it.
    pub fn job(&self, name: &str) -> Result<Option<JobRow>> {
        self.gated().job(name)
    }

    /// Hands every job to `f` as it is read, without holding them all: the jobs in a problem
    /// state first, then the others, each part by name. With `only_problems`, only the first
    /// part. Each row lends its strings from the backend's cursor: nothing is copied that `f`
    /// does not keep. The first error `f` returns stops the walk and is returned.
    pub fn each_job<E: From<Error>>(
        &self,
        only_problems: bool,
        mut f: impl FnMut(&JobRow<&str>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut stopped = None;
        self.gated()
            .each_job(only_problems, &mut |row| match f(row) {
                Ok(()) => true,
                Err(e) => {
                    stopped = Some(e);
                    false
                }
            })?;
        stopped.map_or(Ok(()), Err)
    }

    /// The length in characters of the longest job name [`Store::each_job`] would read (0 when
    /// there is none), for a table that is printed as it is read.
    pub fn longest_job_name(&self, only_problems: bool) -> Result<usize> {
        self.gated().longest_job_name(only_problems)
    }

    /// The most recent runs of `job`, newest first; with their output if `with_output`.
    pub fn runs(&self, job: &str, limit: u32, with_output: bool) -> Result<Vec<RunRow>> {
        self.gated().runs(job, limit, with_output)
    }

    /// Claims outbox rows that are due at `now` (or whose previous holder's lease ran out),
    /// leasing them to `claim.owner` for `claim.lease`: at most `claim.limit` of them, one per
    /// (job, channel). With `claim.ids`, only the (job, channel) pairs of those rows.
    ///
    /// Unsent rows of one job for one channel are folded into the newest of them, which is
    /// the one claimed: the channel learns the current truth, and the message counts what
    /// else happened ([`Notification::fold`]); the folded rows follow its fate. While one row
    /// of a (job, channel) is being sent, none of the others is claimed, so a channel never
    /// gets an older state after a newer one. Within `claim.digest_window` after a delivery to
    /// a channel, a job's next rows for it wait for the window's end and go out as one (except
    /// on the channels of `claim.window_exempt`).
    ///
    /// Rows past their deadline are declared dead instead of being claimed. A row whose
    /// lease ran out counts a reclaim: its holder may have sent it before it died.
    pub fn claim_due(&mut self, now: Timestamp, claim: &Claim<'_>) -> Result<Vec<Claimed>> {
        if claim.ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        self.gated_mut().claim_due(now, claim)
    }

    /// Extends the leases `owner` holds on `ids` to `until`, so that a long send is not taken
    /// over by another process. Returns how many leases were extended: fewer than asked means
    /// that some lease ran out and another process may have taken the row.
    pub fn renew_leases(&mut self, owner: &str, ids: &[i64], until: Timestamp) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.gated_mut().renew_leases(owner, ids, until)
    }

    /// Gives back rows that `owner` claimed but did not try (its time ran out, or their
    /// destination asked for a pause): they are pending again, due at `due` (or when they were
    /// due), and the claim does not count as an attempt.
    pub fn release_claims(
        &mut self,
        owner: &str,
        ids: &[i64],
        due: Option<Timestamp>,
    ) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.gated_mut().release_claims(owner, ids, due)
    }

    /// Records one delivery attempt of a claimed row and releases the lease.
    pub fn record_attempt(
        &mut self,
        id: i64,
        attempt: &Attempt,
        now: Timestamp,
        elapsed: Duration,
    ) -> Result<()> {
        self.record_attempts(&[(id, attempt.clone(), elapsed)], now)
    }

    /// Records delivery attempts of claimed rows, `(row, outcome, time it took)`, in one
    /// transaction, and releases their leases. Rows folded into a delivered or dead row follow
    /// it.
    pub fn record_attempts(
        &mut self,
        attempts: &[(i64, Attempt, Duration)],
        now: Timestamp,
    ) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.gated_mut().record_attempts(attempts, now)
    }

    /// Makes the pending rows among `ids` that have never been tried due at `now`: those
    /// that only wait for a digest window to pass (a row waiting for a retry has been tried,
    /// and keeps its time). For a flush at a program's end, when nothing more will come to be
    /// folded in. Returns how many rows changed.
    pub fn expedite_untried(&mut self, ids: &[i64], now: Timestamp) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.gated_mut().expedite_untried(ids, now)
    }

    /// When the next outbox row may need work: the earliest next attempt of a pending row, or
    /// the earliest lease expiry of a row being sent. `None` when only delivered or dead rows
    /// remain.
    pub fn next_due(&self) -> Result<Option<Timestamp>> {
        self.gated().next_due()
    }

    /// How many outbox rows are in each status.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.gated().outbox_counts()
    }

    /// Outbox rows, newest first: all of them, or only those not yet delivered.
    pub fn outbox_rows(&self, include_delivered: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        self.gated().outbox_rows(include_delivered, limit)
    }

    /// The outbox rows with these ids (those that exist), in the order of their ids.
    pub fn outbox_rows_by_id(&self, ids: &[i64]) -> Result<Vec<OutboxRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.gated().outbox_rows_by_id(ids)
    }

    /// The ids of the dead outbox rows, in order: what a delivery pass compares before and
    /// after to tell which rows it gave up on.
    pub fn dead_ids(&self) -> Result<Vec<i64>> {
        self.gated().dead_ids()
    }

    /// Makes rows due again now: those named (if pending or dead), or every dead row. Their
    /// deadline is pushed to `now + give_up_after` so that a revived row has time, and their
    /// last reason goes back to their last attempt's (the note of how they died no longer
    /// holds: a row that dies again says so once). Returns the ids of the rows that changed,
    /// in order. Rows being sent or already delivered are left alone.
    pub fn retry_outbox(
        &mut self,
        ids: Option<&[i64]>,
        now: Timestamp,
        give_up_after: Duration,
    ) -> Result<Vec<i64>> {
        if ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        self.gated_mut().retry_outbox(ids, now, give_up_after)
    }

    /// Deletes delivered rows (`dead = false`) or dead rows (`dead = true`) created before
    /// `before`, with their attempts. The notification log keeps the notifications. Returns
    /// how many rows went.
    pub fn purge_outbox(&mut self, dead: bool, before: Timestamp) -> Result<usize> {
        self.gated_mut().purge_outbox(dead, before)
    }

    /// The status, last reason and attempts of one outbox row.
    pub fn outbox_row_status(&self, id: i64) -> Result<Option<(String, Option<String>, u32)>> {
        self.gated().outbox_row_status(id)
    }

    /// The channel of one outbox row.
    pub fn outbox_channel(&self, id: i64) -> Result<Option<String>> {
        self.gated().outbox_channel(id)
    }

    /// Records that the notification `notification_id` about run `run_id` reached no channel
    /// (no channel's routes take it): the run is not notified, with the reason `no_channel`
    /// (its text keeps the rules' reason), and the notification leaves the log, having no
    /// outbox row. The rules' memory of the job is left as it is: the alert was made, and
    /// said on standard error instead.
    pub fn mark_unrouted(&mut self, run_id: &str, notification_id: &str) -> Result<()> {
        self.gated_mut().mark_unrouted(run_id, notification_id)
    }

    /// Copies every row of this store into `to` (`belfry store migrate`): jobs with the rules'
    /// memory of them and their acknowledgements, runs with their output, notifications
    /// (with why each held back was), outbox rows whatever their status (a pending row stays
    /// pending, with its attempts, lease and deadline), delivery attempts, kept pings, state
    /// changes and silences, in batches of a thousand, one transaction each. Rows `to` has
    /// already are left as they are there, so a copy can be repeated and copies only what is
    /// missing. Ids are kept: `to` must not hold another store's outbox rows.
    pub fn copy_into(&self, to: &mut Store) -> Result<Copied> {
        // One pass through the gate for both stores: taking it twice could wait behind a
        // fork that waits for the first.
        let _open = gate();
        let mut copied = Copied::default();
        let mut batch = Vec::with_capacity(copy::BATCH);
        self.backend.export(&mut |record| {
            batch.push(record);
            if batch.len() >= copy::BATCH {
                to.backend.import(&batch, &mut copied)?;
                batch.clear();
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            to.backend.import(&batch, &mut copied)?;
        }
        Ok(copied)
    }
}
