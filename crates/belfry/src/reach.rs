//! Which channels a job's alerts reach, and why the others do not: what `belfry config check
//! --job` shows, and what an alert that reaches no channel says instead of going nowhere
//! silently.

use belfry_core::{Kind, Notification, State};
use belfry_store::Recorded;

use crate::Config;

impl Config {
    /// For each channel that does not receive a notification about `job` in `state`, why
    /// not, in words, in channel order: `(channel name, why)`.
    pub fn refusals(&self, job: &str, state: &State, recovered: bool) -> Vec<(&str, String)> {
        let only = self.jobs.get(job).and_then(|j| j.channels.as_deref());
        self.channels
            .iter()
            .filter_map(|c| {
                let why = c.route.refusal(job, state, recovered, only)?;
                Some((c.name.as_str(), why.describe(&c.route, job)))
            })
            .collect()
    }

    /// The notification `rec` made, if no channel's routes take it (then it was recorded as
    /// sent to no channel: [`belfry_store::Store::mark_unrouted`]).
    pub fn unrouted<'r>(&self, rec: &'r Recorded) -> Option<&'r Notification> {
        let n = rec.notification.as_ref()?;
        let recovered = n.kind == Kind::Recovered;
        self.route(&n.job, &n.state, recovered)
            .is_empty()
            .then_some(n)
    }

    /// What to tell the user about `n`, a notification no channel takes: which job and
    /// alert, why each channel refuses it, and how to fix it.
    pub fn unrouted_message(&self, n: &Notification) -> String {
        let job = n.job.as_str();
        let recovered = n.kind == Kind::Recovered;
        let what = match n.kind {
            Kind::Problem => format!("{} alert", n.state.name()),
            Kind::Recovered => "recovery alert".to_owned(),
            Kind::Ok => "OK alert".to_owned(),
        };
        let why: Vec<String> = self
            .refusals(job, &n.state, recovered)
            .into_iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        let fix = if self.jobs.get(job).is_some_and(|j| j.channels.is_some()) {
            format!("name a channel that takes it in [jobs.{job}] channels")
        } else {
            format!(
                "add a pattern that matches {job} to a channel's jobs (or a channel with no jobs)"
            )
        };
        format!(
            "the {what} for {job} reaches no channel, so it was sent nowhere: no configured \
             channel's routes take it ({}); to fix it, {fix}; `belfry config check --job {job}` \
             shows where its alerts go",
            why.join("; ")
        )
    }
}
