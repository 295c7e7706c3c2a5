//! The seam between the [`Store`](crate::Store) handle and a database: one trait that each
//! backend implements whole. A third backend is a module beside `sqlite` and `postgres` that
//! implements [`Backend`], one arm in [`Store::open`](crate::Store::open), and a run of the
//! conformance suite (`tests/store/conformance.rs`, one `Db` kind in `tests/store/support.rs`)
//! against it.
//!
//! Every method takes the settings it needs as arguments: a backend holds a connection and
//! nothing that steers it. The rules are applied by `belfry_core::step`; a backend reads the
//! job's snapshot, calls it, and persists what it returns in the same transaction as the run or
//! event that caused it.

use std::time::Duration;

use belfry_core::{Event, JobSnapshot, Notification, Silence, Timestamp};

use crate::checks::{CheckChange, CheckRow, FlipRow, JobRef, Ping, PingOutcome, PingRow, RuleBook};
use crate::copy::{Copied, Record};
use crate::error::Result;
use crate::hush::{Acked, NewSilence, NotificationRow};
use crate::types::{
    Attempt, Claim, Claimed, JobRow, Limits, OutboxCounts, OutboxRow, Recorded, Rules, RunEnd,
    RunRow, RunStart,
};

/// What a store must do; see the methods of the same names on [`Store`](crate::Store), which
/// document each one (the handle only adapts closures and owns the backend).
pub(crate) trait Backend: Send {
    fn schema_version(&self) -> Result<i64>;
    /// The clock leases and deadlines are measured by.
    fn now(&self) -> Result<Timestamp>;
    /// Waits up to `timeout` for outbox rows to become due; `true` if woken (or if what
    /// happened meanwhile may have been missed).
    fn wait_for_work(&mut self, timeout: Duration) -> Result<bool>;
    fn start_run(&mut self, run: &RunStart) -> Result<()>;
    /// Leaves the store's upkeep to other handles' [`Backend::upkeep`]; optional.
    fn leave_upkeep(&mut self) -> Result<()> {
        Ok(())
    }
    /// Does the upkeep handles that left it did not; optional.
    fn upkeep(&mut self) -> Result<()> {
        Ok(())
    }
    /// Work a backend may do ahead of a run's finish (compiling statements); optional.
    fn prepare_finish(&self) -> Result<()> {
        Ok(())
    }
    /// With `only_if_running`, records nothing (`None`) unless the run is still `running`,
    /// checked inside the transaction.
    fn finish_run(
        &mut self,
        end: &RunEnd<'_>,
        rules: &Rules<'_>,
        only_if_running: bool,
    ) -> Result<Option<Recorded>>;
    fn running_runs(&self) -> Result<Vec<RunStart>>;
    fn record_events(&mut self, event: &Event, covers: u32, rules: &Rules<'_>) -> Result<Recorded>;
    fn record_notification(
        &mut self,
        n: &Notification,
        channels: Vec<String>,
        restarts_repeat_window: bool,
        limits: &Limits,
    ) -> Result<Vec<i64>>;
    fn record_pings(
        &mut self,
        pings: &[Ping<'_>],
        rules: &dyn RuleBook,
    ) -> Result<Vec<PingOutcome>>;
    fn mark_late(
        &mut self,
        now: Timestamp,
        limit: u32,
        rules: &dyn RuleBook,
    ) -> Result<Vec<Recorded>>;
    fn next_late(&self) -> Result<Option<Timestamp>>;
    /// Saves each job's change, all in one transaction; whether each job was created.
    fn save_checks(
        &mut self,
        changes: &[(&str, CheckChange<'_>)],
        now: Timestamp,
    ) -> Result<Vec<bool>>;
    fn delete_job(&mut self, job: &str) -> Result<bool>;
    fn checks(&self) -> Result<Vec<CheckRow>>;
    fn flips(&self, job: &str, limit: u32) -> Result<Vec<FlipRow>>;
    fn set_paused(&mut self, job: &str, paused: bool, now: Timestamp) -> Result<bool>;
    fn add_silence(&mut self, s: &NewSilence<'_>, now: Timestamp) -> Result<Silence>;
    fn silences(&self, now: Timestamp) -> Result<Vec<Silence>>;
    fn end_silence(&mut self, id: i64, now: Timestamp) -> Result<bool>;
    fn acknowledge(&mut self, job: &str, by: &str, now: Timestamp) -> Result<Acked>;
    fn setting(&mut self, key: &str, otherwise: &str) -> Result<String>;
    fn notifications(&self, job: &str, limit: u32) -> Result<Vec<NotificationRow>>;
    fn check(&self, job: JobRef<'_>) -> Result<Option<CheckRow>>;
    fn pings(&self, job: &str, limit: u32) -> Result<Vec<PingRow>>;
    fn snapshot(&self, job: &str) -> Result<Option<JobSnapshot>>;
    fn job(&self, name: &str) -> Result<Option<JobRow>>;
    /// Hands each job to `f` in [`Store::each_job`](crate::Store::each_job)'s order until `f`
    /// returns `false`.
    fn each_job(&self, only_problems: bool, f: &mut dyn FnMut(&JobRow<&str>) -> bool)
    -> Result<()>;
    fn longest_job_name(&self, only_problems: bool) -> Result<usize>;
    fn runs(&self, job: &str, limit: u32, with_output: bool) -> Result<Vec<RunRow>>;
    fn claim_due(&mut self, now: Timestamp, claim: &Claim<'_>) -> Result<Vec<Claimed>>;
    fn renew_leases(&mut self, owner: &str, ids: &[i64], until: Timestamp) -> Result<usize>;
    fn release_claims(&mut self, owner: &str, ids: &[i64], due: Option<Timestamp>)
    -> Result<usize>;
    fn record_attempts(
        &mut self,
        attempts: &[(i64, Attempt, Duration)],
        now: Timestamp,
    ) -> Result<()>;
    fn expedite_untried(&mut self, ids: &[i64], now: Timestamp) -> Result<usize>;
    fn next_due(&self) -> Result<Option<Timestamp>>;
    fn outbox_counts(&self) -> Result<OutboxCounts>;
    fn outbox_rows(&self, include_delivered: bool, limit: u32) -> Result<Vec<OutboxRow>>;
    fn outbox_rows_by_id(&self, ids: &[i64]) -> Result<Vec<OutboxRow>>;
    fn dead_ids(&self) -> Result<Vec<i64>>;
    fn retry_outbox(
        &mut self,
        ids: Option<&[i64]>,
        now: Timestamp,
        give_up_after: Duration,
    ) -> Result<Vec<i64>>;
    fn purge_outbox(&mut self, dead: bool, before: Timestamp) -> Result<usize>;
    fn outbox_row_status(&self, id: i64) -> Result<Option<(String, Option<String>, u32)>>;
    fn outbox_channel(&self, id: i64) -> Result<Option<String>>;
    fn mark_unrouted(&mut self, run_id: &str, notification_id: &str) -> Result<()>;
    /// Hands every row of the store to `each`: jobs, runs, notifications, outbox rows and
    /// attempts, in that order (each table in the order its rows were written).
    fn export(&self, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()>;
    /// Writes rows copied from another store in one transaction: each unless a row with its
    /// key is there already (counted in `copied.already_there`). An outbox row or attempt
    /// whose id is another row's here is an error: ids are kept, so the target must not hold
    /// another store's rows.
    fn import(&mut self, records: &[Record], copied: &mut Copied) -> Result<()>;
}
