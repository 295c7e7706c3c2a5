//! The rule step: everything the rules do with one event, as one pure function, so that every
//! store backend applies them alike and only persists what [`step`] returns.

use crate::counts::DigestCount;
use crate::message::{Digest, Event, Notification};
use crate::policy::{Decision, JobSnapshot, Policy, Reason, advance, begins_spell, decide};
use crate::state::State;

/// What the rules make of one event: the snapshot to remember, the decision, and what the
/// message (if the decision is to send one) counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The job's snapshot after the event: `None` only while nothing that counts for the rules
    /// has happened to the job (no previous snapshot, and a neutral or in-progress event).
    pub next: Option<JobSnapshot>,
    /// Whether to notify, and why. For an event that stands for several (`covers` > 1), the
    /// reason's count of problems in a row includes them all.
    pub decision: Decision,
    /// For a message about a run that does not bring its own digest: the runs the rules held
    /// back since the job's last message that it tells of, itself included. `None` when it
    /// tells of none but itself, and whenever the decision is not to notify.
    pub digest: Option<Digest>,
    /// Whether the event began a new spell of OK or of problems (see [`begins_spell`]).
    pub begins_spell: bool,
}

/// The rule step: given the job's `previous` snapshot, an `event` standing for `covers`
/// consecutive events of the job (a storm the library collapsed; 0 counts as 1), whether it
/// is a finished run (`is_run`: only runs are counted in digests), and the job's `policy`,
/// what to remember, whether to notify, and what the message counts. `event.at` is the
/// rules' "now".
///
/// A message counts the runs the rules held back since the job's last message
/// ([`JobSnapshot::held`]): a reminder (`repeated`) or a threshold reached counts the
/// streak's problem runs held back, a recovery the problem runs it ends, a heartbeat the OK
/// runs; a first run or a change to a problem counts nothing but itself. Runs are held in the
/// order the steps are applied, which a store makes its commit order: a run that ended before
/// a message but was committed after it is told once, by the next one.
///
/// ```
/// use belfry_core::{Details, Event, Policy, State, Timestamp, step};
///
/// let policy = Policy::default(); // reminders at most once a second
/// let t0 = Timestamp::from_millis(1_700_000_000_000);
/// let run = |state, ms| Event {
///     job: "backup".into(),
///     state,
///     at: t0.add_millis(ms),
///     details: Details::default(),
/// };
/// let first = step(None, &run(State::Failed, 0), 1, true, &policy);
/// let held = step(first.next.as_ref(), &run(State::Failed, 400), 1, true, &policy);
/// assert!(!held.decision.notify);
/// let ok = step(held.next.as_ref(), &run(State::Ok, 800), 1, true, &policy);
/// assert_eq!(ok.decision.reason.code(), "recovered");
/// // The recovery tells of the failure held back, and of itself.
/// assert_eq!(ok.digest.map(|d| d.count), Some(2));
/// ```
pub fn step(
    previous: Option<&JobSnapshot>,
    event: &Event,
    covers: u32,
    is_run: bool,
    policy: &Policy,
) -> Step {
    let state = &event.state;
    let mut decision = decide(previous, state, event.at, policy);
    let mut next = advance(previous, state, event.at, &decision);
    // The rules saw the first of `covers` problems; the ones after it are in a row too.
    let more = covers.saturating_sub(1);
    if more > 0 && state.is_problem() {
        if let Some(n) = next.as_mut() {
            n.consecutive_problems = n.consecutive_problems.saturating_add(more);
        }
        if let Reason::Repeated { count, .. } | Reason::ThresholdReached { count } =
            &mut decision.reason
        {
            *count = count.saturating_add(more);
        }
    }
    let runs = u64::from(covers.max(1));
    let digest = if decision.notify && is_run && event.details.digest.is_none() {
        held_digest(previous, event, runs, &decision.reason)
    } else {
        None
    };
    // A run the rules told of is not held; one they kept quiet waits for the next message.
    if let Some(n) = next.as_mut().filter(|_| is_run && !decision.notify) {
        n.held
            .hold(*state, event.at, event.details.error.as_deref(), runs);
    }
    Step {
        next,
        decision,
        digest,
        begins_spell: begins_spell(previous, state),
    }
}

/// The digest of a message about `event` (standing for `runs` runs) that the rules decided on
/// for `reason`: the runs held back that it tells of, and itself.
fn held_digest(
    previous: Option<&JobSnapshot>,
    event: &Event,
    runs: u64,
    reason: &Reason,
) -> Option<Digest> {
    let held = &previous?.held;
    let tally = match reason {
        Reason::Repeated { .. } | Reason::ThresholdReached { .. } | Reason::Recovered { .. } => {
            &held.problems
        }
        Reason::Heartbeat { .. } => &held.ok,
        _ => return None,
    };
    if tally.is_empty() {
        return None;
    }
    let mut states = tally.states.clone();
    // A recovery counts under the state it recovered to.
    let this = if event.state.is_problem() {
        event.state
    } else {
        State::Ok
    };
    DigestCount::add(&mut states, this, runs);
    // This run may have ended before the runs it counts: they were committed first.
    let (first, first_error) = match tally.first {
        Some(t) if t <= event.at => (t, tally.first_error.clone()),
        _ => (event.at, None),
    };
    Some(Digest {
        count: tally.count().saturating_add(runs),
        states: DigestCount::finish(states),
        first,
        first_error: first_error.filter(|e| Some(e) != event.details.error.as_ref()),
    })
}

impl Step {
    /// The notification this step decided on, with id `id` (which must be unique), or `None`
    /// when the rules stay quiet. It describes `event`, with `previous` (the snapshot the step
    /// started from) as the state before; its digest is the event's own if it brings one,
    /// else [`Step::digest`]; its count of problems in a row includes every event `covers`
    /// stood for.
    pub fn notification(
        &self,
        id: String,
        event: &Event,
        previous: Option<&JobSnapshot>,
    ) -> Option<Notification> {
        if !self.decision.notify {
            return None;
        }
        let digest = event.details.digest.as_ref().or(self.digest.as_ref());
        let mut n = Notification::with_digest(id, event, digest, previous, &self.decision);
        if let Some(next) = self.next.as_ref().filter(|_| event.state.is_problem()) {
            n.consecutive_problems = next.consecutive_problems;
        }
        Some(n)
    }
}

/// An optional [`Timestamp`] as a number of milliseconds.
#[cfg(test)]
mod tests;
