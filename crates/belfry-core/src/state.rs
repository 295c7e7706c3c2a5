use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;

/// The state of one run of a job, or of the job as a whole after its last run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Started and not finished.
    Running,
    /// Finished successfully.
    Ok,
    /// Finished with an error (a non-success exit code, an `Err`).
    Failed,
    /// Failed, and another attempt is scheduled.
    Retrying {
        /// The attempt that comes next (the first retry is attempt 2).
        attempt: u32,
        /// When it starts.
        next_at: Timestamp,
    },
    /// Ran past its time limit and was stopped.
    TimedOut,
    /// Stopped on purpose (an operator's Ctrl-C, a shutdown signal passed on to the job).
    Cancelled,
    /// Died without finishing: a panic, a fatal signal, a wrapper that vanished.
    Crashed,
    /// Expected, and silent past its grace time.
    Late,
    /// Did not run on purpose. Not a success, and not a problem either.
    Skipped,
}

/// How the alert rules see a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Success.
    Ok,
    /// `Failed`, `TimedOut`, `Crashed`, `Late`.
    Problem,
    /// `Cancelled`, `Skipped`: neither; they change nothing in the rules.
    Neutral,
    /// `Running`, `Retrying`: the job has not reached an outcome yet.
    InProgress,
}

impl State {
    /// The lowercase name used in configuration, JSON and the store (`"timed_out"`).
    pub const fn name(&self) -> &'static str {
        match self {
            State::Running => "running",
            State::Ok => "ok",
            State::Failed => "failed",
            State::Retrying { .. } => "retrying",
            State::TimedOut => "timed_out",
            State::Cancelled => "cancelled",
            State::Crashed => "crashed",
            State::Late => "late",
            State::Skipped => "skipped",
        }
    }

    /// The name for people (`"Timed out"`).
    pub const fn label(&self) -> &'static str {
        match self {
            State::Running => "Running",
            State::Ok => "OK",
            State::Failed => "Failed",
            State::Retrying { .. } => "Retrying",
            State::TimedOut => "Timed out",
            State::Cancelled => "Cancelled",
            State::Crashed => "Crashed",
            State::Late => "Late",
            State::Skipped => "Skipped",
        }
    }

    /// How the rules treat this state.
    pub const fn class(&self) -> Class {
        match self {
            State::Ok => Class::Ok,
            State::Failed | State::TimedOut | State::Crashed | State::Late => Class::Problem,
            State::Cancelled | State::Skipped => Class::Neutral,
            State::Running | State::Retrying { .. } => Class::InProgress,
        }
    }

    /// Whether this is one of the problem states.
    pub const fn is_problem(&self) -> bool {
        matches!(self.class(), Class::Problem)
    }

    /// Every state name, for error messages and documentation.
    pub const NAMES: [&'static str; 9] = [
        "running",
        "ok",
        "failed",
        "retrying",
        "timed_out",
        "cancelled",
        "crashed",
        "late",
        "skipped",
    ];
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A state name that belfry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}; expected one of: {names}", names = State::NAMES.join(", "))]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    /// Parses a state name. `"retrying"` parses with its details zeroed, since a name alone
    /// cannot carry them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => State::Running,
            "ok" => State::Ok,
            "failed" => State::Failed,
            "retrying" => State::Retrying {
                attempt: 0,
                next_at: Timestamp::from_millis(0),
            },
            "timed_out" => State::TimedOut,
            "cancelled" => State::Cancelled,
            "crashed" => State::Crashed,
            "late" => State::Late,
            "skipped" => State::Skipped,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in State::NAMES {
            let st: State = name.parse().unwrap();
            assert_eq!(st.name(), name);
        }
        let e = "broken".parse::<State>().unwrap_err().to_string();
        assert!(e.contains("broken") && e.contains("timed_out"), "{e}");
    }

    #[test]
    fn problems_are_exactly_the_four_of_the_design() {
        let problems: Vec<&str> = State::NAMES
            .into_iter()
            .filter(|n| n.parse::<State>().unwrap().is_problem())
            .collect();
        assert_eq!(problems, ["failed", "timed_out", "crashed", "late"]);
    }
}
