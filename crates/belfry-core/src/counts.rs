//! Counting events by state: a digest's share per state ([`DigestCount`]), and the runs the
//! rules held back since a job's last message ([`Held`]), which the job's snapshot keeps.
//! Below both the rules and the message model, which use them.

use serde::{Deserialize, Serialize};

use crate::state::{Class, State};
use crate::time::Timestamp;

/// One state's share of a [`Digest`](crate::Digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCount {
    /// The state (`recovered` notifications count under the state they recovered to, `ok`).
    pub state: State,
    /// How many events had it.
    pub count: u64,
}

impl DigestCount {
    /// Adds `n` events in `state` to `tally`, which keeps the states in the order they first
    /// appeared.
    pub fn add(tally: &mut Vec<DigestCount>, state: State, n: u64) {
        match tally.iter_mut().find(|c| c.state == state) {
            // Saturating: a count read back from a store is not trusted to leave room.
            Some(c) => c.count = c.count.saturating_add(n),
            None => tally.push(DigestCount { state, count: n }),
        }
    }

    /// `tally` as a [`Digest`](crate::Digest) carries it: empty when every event had the same state.
    pub fn finish(mut tally: Vec<DigestCount>) -> Vec<DigestCount> {
        if tally.len() == 1 {
            tally.clear();
        }
        tally
    }
}

/// The runs of a job that the rules held back (decided not to tell) since its last message,
/// kept in its [`JobSnapshot`](crate::JobSnapshot) so that the next message about a run can count them without a
/// look at the run history.
///
/// A store keeps it as JSON (`{"problems": {…}, "ok": {…}}`); every field may be missing, and
/// an empty `Held` writes as `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Held {
    /// The problem runs of the current streak of problems: what a reminder, a threshold
    /// reached or a recovery counts. Emptied when the streak ends, since a later message about
    /// problems counts only its own streak's.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub problems: Tally,
    /// The OK runs since the last message: what a heartbeat counts. A problem's message does
    /// not count them ("still OK" is not news when the news is a failure) but ends them.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub ok: Tally,
}

impl Held {
    /// Whether no run is held back.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty() && self.ok.is_empty()
    }

    /// Holds back `n` runs in `state` that ended at `at`, the first of them with `error`:
    /// problems and OK runs each in their tally. Cancelled, skipped and unfinished runs are no
    /// message's business, so they are not kept.
    pub fn hold(&mut self, state: State, at: Timestamp, error: Option<&str>, n: u64) {
        match state.class() {
            Class::Problem => self.problems.add(state, at, error, n),
            Class::Ok => self.ok.add(state, at, error, n),
            Class::Neutral | Class::InProgress => {}
        }
    }
}

/// Runs of one kind held back: how many per state, and the earliest end with its error (what a
/// [`Digest`](crate::Digest) says of its first event).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    /// How many runs per state, in the order the states were first held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<DigestCount>,
    /// When the earliest of them ended; among runs that ended in the same millisecond, the
    /// one held first. Milliseconds in JSON (`first_ms`), so that every time reads back as it
    /// was written (RFC 3339 cannot write them all).
    #[serde(
        rename = "first_ms",
        with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub first: Option<Timestamp>,
    /// That run's error text, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Tally {
    /// How many runs are held, over every state.
    pub fn count(&self) -> u64 {
        self.states
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.count))
    }

    /// Whether no run is held.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Adds `n` runs in `state` that ended at `at`, the first of them with `error`.
    pub fn add(&mut self, state: State, at: Timestamp, error: Option<&str>, n: u64) {
        if n == 0 {
            return;
        }
        DigestCount::add(&mut self.states, state, n);
        // Strictly earlier: among equal ends, the one held first (committed first) stays.
        if self.first.is_none_or(|t| at < t) {
            self.first = Some(at);
            self.first_error = error.map(str::to_owned);
        }
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.as_millis()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(Timestamp::from_millis))
    }
}
