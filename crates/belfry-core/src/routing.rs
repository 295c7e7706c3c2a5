use std::fmt;
use std::str::FromStr;

use crate::State;

/// Which notifications one channel receives: by job name (glob patterns) and by state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The channel's name.
    pub channel: String,
    /// Glob patterns (`*`, `?`) over job names; empty means every job.
    pub jobs: Vec<String>,
    /// Apprise-style tags. A tagged channel takes only the jobs whose own `channels` list
    /// names one of its tags (or `all`), unless one of its tags is `always`; an untagged one
    /// takes every job its `jobs` patterns admit (Apprise's rule: a notification with no tag
    /// goes to the services with none).
    pub tags: Vec<String>,
    /// State filters; empty means every state.
    pub states: Vec<StateFilter>,
}

/// The tag Apprise matches every service with, when a notification names it.
pub const TAG_ALL: &str = "all";

/// The tag that makes a service take every notification, tagged or not (Apprise's).
pub const TAG_ALWAYS: &str = "always";

/// One entry of a route's `states` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateFilter {
    /// A state by name (`"failed"`, `"ok"`, …). `"ok"` includes recoveries.
    Named(&'static str),
    /// Any problem state (`failed`, `timed_out`, `crashed`, `late`).
    Problem,
    /// Only recoveries (an OK that ends an announced problem).
    Recovered,
}

impl StateFilter {
    /// Whether a notification about `state` (a recovery if `recovered`) passes this filter.
    pub fn matches(&self, state: &State, recovered: bool) -> bool {
        match self {
            StateFilter::Named(n) => state.name() == *n,
            StateFilter::Problem => state.is_problem(),
            StateFilter::Recovered => recovered,
        }
    }
}

impl FromStr for StateFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "problem" => Ok(StateFilter::Problem),
            "recovered" => Ok(StateFilter::Recovered),
            _ => match s.parse::<State>() {
                Ok(st) => Ok(StateFilter::Named(st.name())),
                Err(_) => Err(format!(
                    "unknown state {s:?}; expected \"problem\", \"recovered\" or one of: {}",
                    State::NAMES.join(", ")
                )),
            },
        }
    }
}

impl fmt::Display for StateFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFilter::Named(n) => f.write_str(n),
            StateFilter::Problem => f.write_str("problem"),
            StateFilter::Recovered => f.write_str("recovered"),
        }
    }
}

impl Route {
    /// A route that sends everything to `channel`.
    pub fn all(channel: impl Into<String>) -> Self {
        Route {
            channel: channel.into(),
            jobs: Vec::new(),
            tags: Vec::new(),
            states: Vec::new(),
        }
    }

    /// Whether `name`, in a job's `channels` list or `belfry send --channel`, names this
    /// route's channel: its name, one of its tags, or `all`.
    pub fn is_named_by(&self, name: &str) -> bool {
        name == self.channel || name == TAG_ALL || self.tags.iter().any(|t| t == name)
    }

    /// Whether the channel takes what names no channel or tag: it has no tags, or the tag
    /// `always` (Apprise's rule for a notification sent without a tag).
    pub fn takes_untagged(&self) -> bool {
        self.tags.is_empty() || self.tags.iter().any(|t| t == TAG_ALWAYS)
    }

    /// Whether this route's job patterns admit `job`.
    pub fn admits_job(&self, job: &str) -> bool {
        self.jobs.is_empty() || self.jobs.iter().any(|p| glob_match(p, job))
    }

    /// Whether this route's state filters admit a notification about `state`.
    pub fn admits_state(&self, state: &State, recovered: bool) -> bool {
        self.states.is_empty() || self.states.iter().any(|f| f.matches(state, recovered))
    }

    /// The channels that receive a notification about `job` in `state`.
    ///
    /// `only`, a job's own `channels` list, replaces the job patterns of the routes (the job
    /// named its channels) but not their state filters.
    pub fn select<'a>(
        routes: impl IntoIterator<Item = &'a Route>,
        job: &str,
        state: &State,
        recovered: bool,
        only: Option<&[String]>,
    ) -> Vec<&'a str> {
        routes
            .into_iter()
            .filter(|r| r.refusal(job, state, recovered, only).is_none())
            .map(|r| r.channel.as_str())
            .collect()
    }

    /// Why this route does not take a notification about `job` in `state` (`None`: it does),
    /// by the rules of [`Route::select`].
    pub fn refusal(
        &self,
        job: &str,
        state: &State,
        recovered: bool,
        only: Option<&[String]>,
    ) -> Option<Refusal> {
        let always = self.tags.iter().any(|t| t == TAG_ALWAYS);
        match only {
            Some(names) if !always && !names.iter().any(|n| self.is_named_by(n)) => {
                return Some(Refusal::NotListed);
            }
            Some(_) => {}
            None if !self.takes_untagged() => return Some(Refusal::Tagged),
            None if !self.admits_job(job) => return Some(Refusal::Jobs),
            None => {}
        }
        (!self.admits_state(state, recovered)).then_some(Refusal::States)
    }
}

/// Why a route does not take a notification ([`Route::refusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The job has its own `channels` list, and it does not name this channel.
    NotListed,
    /// The route's `jobs` patterns do not match the job.
    Jobs,
    /// The channel has tags, and the job names none of them (it has no `channels` list).
    Tagged,
    /// The route's `states` filters do not take this state.
    States,
}

impl Refusal {
    /// In words, for `route` and `job` (what a user would change to make it take it).
    pub fn describe(self, route: &Route, job: &str) -> String {
        let list = |items: Vec<String>| items.join(", ");
        match self {
            Refusal::NotListed => format!(
                "{job}'s own channels do not include {}{}",
                route.channel,
                if route.tags.is_empty() {
                    String::new()
                } else {
                    format!(" or its tags ({})", list(route.tags.clone()))
                }
            ),
            Refusal::Tagged => format!(
                "it is tagged ({}) and {job} names none of its tags in its channels",
                list(route.tags.clone())
            ),
            Refusal::Jobs => format!("its jobs ({}) do not match {job}", list(route.jobs.clone())),
            Refusal::States => format!(
                "its states ({}) do not take it",
                list(route.states.iter().map(ToString::to_string).collect())
            ),
        }
    }
}

/// Matches `text` against a glob `pattern` where `*` is any run of characters and `?` any one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear for the patterns people write.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("backup-*", "backup-db"));
        assert!(!glob_match("backup-*", "restore-db"));
        assert!(glob_match("b?ck*db", "backup-db"));
        assert!(glob_match("*.sh", "usr.local.bin.x.sh"));
        assert!(!glob_match("a*b", "acbc"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn selection_obeys_job_patterns_state_filters_and_job_lists() {
        let routes = vec![
            Route::all("console"),
            Route {
                channel: "pager".into(),
                jobs: vec!["prod-*".into()],
                tags: vec![],
                states: vec![StateFilter::Problem, StateFilter::Recovered],
            },
            Route {
                channel: "chat".into(),
                jobs: vec![],
                tags: vec![],
                states: vec![StateFilter::Named("ok")],
            },
        ];
        let sel =
            |job, st, rec, only: Option<&[String]>| Route::select(&routes, job, &st, rec, only);
        assert_eq!(
            sel("prod-db", State::Failed, false, None),
            ["console", "pager"]
        );
        assert_eq!(sel("dev-db", State::Failed, false, None), ["console"]);
        assert_eq!(
            sel("prod-db", State::Ok, true, None),
            ["console", "pager", "chat"]
        );
        assert_eq!(sel("prod-db", State::Ok, false, None), ["console", "chat"]);
        let only = vec!["pager".to_string()];
        assert_eq!(sel("dev-db", State::Crashed, false, Some(&only)), ["pager"]);
        assert!(sel("dev-db", State::Ok, false, Some(&only)).is_empty());
    }

    #[test]
    fn a_refusal_names_the_part_of_the_route_that_refuses() {
        let pager = Route {
            channel: "pager".into(),
            jobs: vec!["prod-*".into()],
            tags: vec![],
            states: vec![StateFilter::Problem],
        };
        let refusal = |job, st, rec, only: Option<&[String]>| pager.refusal(job, &st, rec, only);
        assert_eq!(refusal("prod-db", State::Failed, false, None), None);
        assert_eq!(
            refusal("dev-db", State::Failed, false, None),
            Some(Refusal::Jobs)
        );
        assert_eq!(
            refusal("prod-db", State::Ok, true, None),
            Some(Refusal::States)
        );
        let others = vec!["chat".to_string()];
        assert_eq!(
            refusal("prod-db", State::Failed, false, Some(&others)),
            Some(Refusal::NotListed)
        );
        assert_eq!(
            Refusal::Jobs.describe(&pager, "dev-db"),
            "its jobs (prod-*) do not match dev-db"
        );
        assert_eq!(
            Refusal::States.describe(&pager, "prod-db"),
            "its states (problem) do not take it"
        );
    }

    #[test]
    fn filters_parse_and_reject_unknown_names() {
        assert_eq!("problem".parse(), Ok(StateFilter::Problem));
        assert_eq!("timed_out".parse(), Ok(StateFilter::Named("timed_out")));
        let e = "broken".parse::<StateFilter>().unwrap_err();
        assert!(e.contains("\"broken\"") && e.contains("recovered"), "{e}");
    }

    #[test]
    fn tagged_channels_take_only_the_jobs_that_name_a_tag_as_apprise_does() {
        let tagged = |name: &str, tags: &[&str]| Route {
            channel: name.into(),
            jobs: vec![],
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            states: vec![],
        };
        let routes = vec![
            Route::all("console"),
            tagged("apprise-1", &["devops", "admin"]),
            tagged("apprise-2", &["finance"]),
            tagged("apprise-3", &["always"]),
        ];
        let sel =
            |only: Option<&[String]>| Route::select(&routes, "j", &State::Failed, false, only);
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // No channels list: the untagged and the `always` ones (Apprise without --tag).
        assert_eq!(sel(None), ["console", "apprise-3"]);
        // A tag selects every channel carrying it; a channel's name still works; `all` is all.
        assert_eq!(sel(Some(&names(&["devops"]))), ["apprise-1", "apprise-3"]);
        assert_eq!(
            sel(Some(&names(&["console", "finance"]))),
            ["console", "apprise-2", "apprise-3"]
        );
        assert_eq!(
            sel(Some(&names(&["all"]))),
            ["console", "apprise-1", "apprise-2", "apprise-3"]
        );
        let why = routes[2].refusal("j", &State::Failed, false, None).unwrap();
        assert_eq!(why, Refusal::Tagged);
        assert_eq!(
            why.describe(&routes[2], "j"),
            "it is tagged (finance) and j names none of its tags in its channels"
        );
    }
}
