//! Stand-in for the store's ping API (issue 12), which is being written on another branch:
//! the shapes the server codes against, so that it compiles and its HTTP side can be tested.
//! Replaced by `belfry_store`'s own types when that branch is merged.

use belfry::config::Config;
use belfry_core::{Expect, Policy, State, Timestamp};
use belfry_store::{Limits, Recorded, Result, Store};
use uuid::Uuid;

/// What a ping says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingKind {
    /// `/start`.
    Start,
    /// No action: success.
    Success,
    /// `/fail`.
    Fail,
    /// `/log`.
    Log,
    /// `/<status>`.
    Exit(u8),
}

/// Which job.
#[derive(Clone, Copy, Debug)]
pub enum JobRef<'a> {
    /// By UUID.
    Uuid(Uuid),
    /// By name.
    Name(&'a str),
}

/// One ping.
#[derive(Debug)]
pub struct Ping<'a> {
    /// Which job.
    pub job: JobRef<'a>,
    /// What it says.
    pub kind: PingKind,
    /// Run id.
    pub rid: Option<Uuid>,
    /// When.
    pub at: Timestamp,
    /// Body, cut.
    pub body: &'a [u8],
    /// `?create=1`.
    pub create: bool,
    /// Client address.
    pub remote: Option<&'a str>,
    /// Method.
    pub method: &'a str,
    /// User agent.
    pub user_agent: Option<&'a str>,
}

/// What became of a ping.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum PingOutcome {
    /// Recorded.
    Recorded {
        /// The job.
        job: String,
        /// Created by it.
        created: bool,
        /// What the rules did.
        recorded: Option<Recorded>,
    },
    /// No such job.
    NotFound,
}

/// The rules per job.
pub trait RuleBook {
    /// Policy.
    fn policy(&self, job: &str) -> Policy;
    /// Routes.
    fn route(&self, job: &str, state: &State, recovered: bool) -> Vec<String>;
    /// Limits.
    fn limits(&self) -> Limits;
}

impl RuleBook for Config {
    fn policy(&self, job: &str) -> Policy {
        self.policy_for(job)
    }
    fn route(&self, job: &str, state: &State, recovered: bool) -> Vec<String> {
        Config::route(self, job, state, recovered)
    }
    fn limits(&self) -> Limits {
        Config::limits(self)
    }
}

/// The store calls to come.
pub trait StoreExt {
    /// Records pings.
    fn record_pings(
        &mut self,
        pings: &[Ping<'_>],
        rules: &dyn RuleBook,
    ) -> Result<Vec<PingOutcome>>;
    /// Marks late jobs.
    fn mark_late(
        &mut self,
        now: Timestamp,
        limit: u32,
        rules: &dyn RuleBook,
    ) -> Result<Vec<Recorded>>;
    /// Next deadline.
    fn next_late(&self) -> Result<Option<Timestamp>>;
    /// Sets a schedule.
    fn set_expect(&mut self, job: &str, expect: Option<&Expect>, now: Timestamp) -> Result<()>;
}

impl StoreExt for Store {
    fn record_pings(&mut self, pings: &[Ping<'_>], _: &dyn RuleBook) -> Result<Vec<PingOutcome>> {
        Ok(pings.iter().map(|_| PingOutcome::NotFound).collect())
    }
    fn mark_late(&mut self, _: Timestamp, _: u32, _: &dyn RuleBook) -> Result<Vec<Recorded>> {
        Ok(Vec::new())
    }
    fn next_late(&self) -> Result<Option<Timestamp>> {
        Ok(None)
    }
    fn set_expect(&mut self, _: &str, _: Option<&Expect>, _: Timestamp) -> Result<()> {
        Ok(())
    }
}
