//! Which channels a job's alerts reach, and why the others do not: what `belfry config check
//! --job` shows, and what an alert that reaches no channel says instead of going nowhere
//! silently.

use belfry_core::{Kind, Notification, State};
use belfry_store::Recorded;

use crate::config::Config;

impl Config {
    /// For each channel that does not receive a notification about `job` in `state`, why
    /// not, in words, in channel order: `(channel name, why)`. `only` replaces the job's own
    /// `channels` list, as [`belfry_core::Route::select`] takes it.
    pub fn refusals(
        &self,
        job: &str,
        state: &State,
        recovered: bool,
        only: Option<&[String]>,
    ) -> Vec<(&str, String)> {
        let only = only.or_else(|| self.jobs.get(job).and_then(|j| j.channels.as_deref()));
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
        self.no_channel_message(&n.job, &n.state, n.kind == Kind::Recovered, None)
    }

    /// [`Config::unrouted_message`] for an alert about `job` in `state`, routed with `only`
    /// in place of the job's `channels` list (a watched function's own `channels`).
    pub fn no_channel_message(
        &self,
        job: &str,
        state: &State,
        recovered: bool,
        only: Option<&[String]>,
    ) -> String {
        let what = if recovered {
            "recovery alert".to_owned()
        } else if state.is_problem() {
            format!("{} alert", state.name())
        } else {
            format!("{} message", state.name())
        };
        let why: Vec<String> = self
            .refusals(job, state, recovered, only)
            .into_iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        let own_list = only.is_some() || self.jobs.get(job).is_some_and(|j| j.channels.is_some());
        let fix = if own_list {
            format!("name a channel that takes it in {job}'s channels")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_no_channel_takes_is_explained_channel_by_channel() {
        let config = Config::parse(
            "[channels.ops]\nurl = \"json://127.0.0.1:9/o\"\njobs = [\"backup-*\"]\n\
             [channels.chat]\nurl = \"json://127.0.0.1:9/c\"\nstates = [\"ok\"]\n\
             [jobs.listed]\nchannels = [\"ops\"]\n",
            "test",
        )
        .unwrap();
        let msg = config.no_channel_message("other", &State::Failed, false, None);
        for part in [
            "the failed alert for other reaches no channel",
            "chat: its states (ok) do not take it",
            "ops: its jobs (backup-*) do not match other",
            "add a pattern that matches other",
            "belfry config check --job other",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
        // A job with its own list is told to fix the list.
        let msg = config.no_channel_message("listed", &State::Ok, true, None);
        assert!(msg.starts_with("the recovery alert for listed"), "{msg}");
        assert!(
            msg.contains("chat: listed's own channels do not include chat"),
            "{msg}"
        );
        assert!(msg.contains("in listed's channels"), "{msg}");
        // And a channel that takes it is not named.
        assert!(
            config
                .refusals("backup-db", &State::Failed, false, None)
                .iter()
                .all(|(c, _)| *c != "ops")
        );
    }
}
