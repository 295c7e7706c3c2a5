use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::{Class, Details, Held, Tally, Timestamp};

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn run(state: State, at_ms: i64, error: Option<&str>) -> Event {
    Event {
        job: "j".into(),
        state,
        at: T0.add_millis(at_ms),
        details: Details {
            error: error.map(str::to_owned),
            ..Details::default()
        },
    }
}

/// Steps through `events` (all finished runs, one each) from nothing; returns every step.
fn feed(policy: &Policy, events: &[Event]) -> Vec<Step> {
    let mut snap: Option<JobSnapshot> = None;
    let mut out = Vec::new();
    for ev in events {
        let s = step(snap.as_ref(), ev, 1, true, policy);
        snap = s.next.clone();
        out.push(s);
    }
    out
}

fn states(d: &Digest) -> Vec<(State, u64)> {
    d.states.iter().map(|c| (c.state, c.count)).collect()
}

#[test]
fn a_first_run_and_a_change_to_a_problem_tell_of_nothing_held() {
    let p = Policy::default();
    let steps = feed(
        &p,
        &[
            run(State::Ok, 0, None),
            run(State::Ok, 100, None), // held: inside the heartbeat window
            run(State::Ok, 200, None),
            run(State::Failed, 300, Some("boom")),
        ],
    );
    assert_eq!(steps[0].decision.reason, Reason::FirstRun);
    assert_eq!(steps[0].digest, None);
    assert_eq!(steps[3].decision.reason, Reason::Problem);
    // Two OK runs were held, but "still OK" is not news when the news is a failure.
    assert_eq!(steps[3].digest, None);
    assert!(steps[3].next.as_ref().unwrap().held.is_empty());
}

#[test]
fn a_threshold_reached_counts_the_streak_from_its_first_problem() {
    let p = Policy {
        fail_threshold: 3,
        ..Policy::default()
    };
    let steps = feed(
        &p,
        &[
            run(State::Ok, 0, None),
            run(State::Failed, 10, Some("e1")), // a streak that ends below the threshold
            run(State::Ok, 20, None),
            run(State::Failed, 30, Some("e2")),
            run(State::TimedOut, 40, Some("slow")),
            run(State::Failed, 50, Some("e3")),
        ],
    );
    let last = &steps[5];
    assert_eq!(last.decision.reason, Reason::ThresholdReached { count: 3 });
    let d = last.digest.as_ref().expect("the streak's held problems");
    assert_eq!(d.count, 3);
    assert_eq!(
        states(d),
        [(State::Failed, 2), (State::TimedOut, 1)],
        "in the order first held"
    );
    assert_eq!(d.first, T0.add_millis(30));
    assert_eq!(d.first_error.as_deref(), Some("e2"));
    let n = last.notification(
        "n".into(),
        &run(State::Failed, 50, Some("e3")),
        steps[4].next.as_ref(),
    );
    let n = n.expect("a notification");
    assert_eq!(n.digest.as_ref(), Some(d));
    assert!(n.message.starts_with("3 alerts in 20ms"), "{}", n.message);
}

#[test]
fn a_reminder_counts_the_problems_held_since_the_last_message() {
    let p = Policy::default(); // reminders after 1 s
    let steps = feed(
        &p,
        &[
            run(State::Failed, 0, Some("same")),
            run(State::Failed, 300, Some("same")),
            run(State::Crashed, 600, Some("same")),
            run(State::Failed, 1200, Some("same")),
            run(State::Failed, 1300, Some("same")),
            run(State::Failed, 2300, Some("same")),
        ],
    );
    assert_eq!(steps[3].decision.reason.code(), "repeated");
    let d = steps[3].digest.as_ref().unwrap();
    assert_eq!(d.count, 3);
    assert_eq!(states(d), [(State::Failed, 2), (State::Crashed, 1)]);
    assert_eq!(d.first, T0.add_millis(300));
    // The first one's error is the last one's: not said twice.
    assert_eq!(d.first_error, None);
    // The next reminder counts only what came after the previous one.
    assert_eq!(steps[5].decision.reason.code(), "repeated");
    let d = steps[5].digest.as_ref().unwrap();
    assert_eq!((d.count, d.first), (2, T0.add_millis(1300)));
    assert!(d.states.is_empty(), "all failed: {d:?}");
}

#[test]
fn a_recovery_counts_the_problems_it_ends_under_their_states_and_itself_as_ok() {
    let p = Policy::default();
    let steps = feed(
        &p,
        &[
            run(State::Failed, 0, Some("e0")),
            run(State::Failed, 100, Some("e1")),
            run(State::Late, 200, None),
            run(State::Ok, 300, None),
        ],
    );
    assert_eq!(steps[3].decision.reason, Reason::Recovered { after: 3 });
    let d = steps[3].digest.as_ref().unwrap();
    assert_eq!(d.count, 3);
    assert_eq!(
        states(d),
        [(State::Failed, 1), (State::Late, 1), (State::Ok, 1)]
    );
    assert_eq!(d.first_error.as_deref(), Some("e1"));
}

#[test]
fn a_heartbeat_counts_the_ok_runs_since_the_last_message_and_no_unannounced_problems() {
    let p = Policy {
        fail_threshold: 2,
        ..Policy::default()
    };
    let minute = 60_000;
    let mut events: Vec<Event> = (0..30).map(|m| run(State::Ok, m * minute, None)).collect();
    events.push(run(State::Failed, 30 * minute, Some("once"))); // below the threshold
    events.extend((31..=60).map(|m| run(State::Ok, m * minute, None)));
    let steps = feed(&p, &events);
    let beat = &steps[60];
    assert_eq!(beat.decision.reason.code(), "heartbeat");
    let d = beat.digest.as_ref().unwrap();
    // Minutes 1–29 and 31–59 were held, and this one tells of itself.
    assert_eq!(d.count, 59);
    assert!(d.states.is_empty());
    assert_eq!(d.first, T0.add_millis(minute));
}

#[test]
fn quiet_decisions_carry_no_digest() {
    let p = Policy {
        fail_threshold: 2,
        ..Policy::default()
    };
    let steps = feed(
        &p,
        &[
            run(State::Ok, 0, None),
            run(State::Ok, 10, None),
            run(State::Failed, 20, None),
            run(State::Cancelled, 30, None),
            run(State::Running, 40, None),
        ],
    );
    let codes: Vec<&str> = steps.iter().map(|s| s.decision.reason.code()).collect();
    assert_eq!(
        codes,
        [
            "first_run",
            "within_heartbeat_window",
            "below_threshold",
            "neutral",
            "in_progress"
        ]
    );
    assert!(steps.iter().all(|s| s.digest.is_none()));
    let held = &steps[4].next.as_ref().unwrap().held;
    assert_eq!((held.ok.count(), held.problems.count()), (1, 1));
}

#[test]
fn a_run_kept_quiet_by_a_window_or_by_heartbeats_off_is_held_for_the_next_message() {
    let p = Policy {
        ok_heartbeat_after: None,
        ..Policy::default()
    };
    let steps = feed(
        &p,
        &[
            run(State::Failed, 0, None),
            run(State::Failed, 10, None),
            run(State::Ok, 20, None),
            run(State::Ok, 30, None),
        ],
    );
    assert!(matches!(
        steps[1].decision.reason,
        Reason::WithinRepeatWindow { .. }
    ));
    assert_eq!(steps[1].digest, None);
    assert_eq!(steps[3].decision.reason, Reason::HeartbeatOff);
    assert_eq!(steps[3].digest, None);
    // The recovery told the held failure; the quiet OK run after it waits.
    assert_eq!(steps[2].digest.as_ref().map(|d| d.count), Some(2));
    let held = &steps[3].next.as_ref().unwrap().held;
    assert_eq!((held.problems.count(), held.ok.count()), (0, 1));
    assert_eq!(held.ok.first, Some(T0.add_millis(30)));
}

#[test]
fn a_run_that_ended_before_the_runs_it_counts_is_the_first() {
    // Committed out of the order of their ends: the held one ended after the recovery.
    let p = Policy::default();
    let steps = feed(
        &p,
        &[
            run(State::Failed, 0, Some("a")),
            run(State::Failed, 500, Some("b")),
            run(State::Ok, 400, None),
        ],
    );
    let d = steps[2].digest.as_ref().unwrap();
    assert_eq!(
        (d.count, d.first, d.first_error.clone()),
        (2, T0.add_millis(400), None)
    );
}

#[test]
fn events_that_are_not_runs_are_not_counted_and_their_messages_end_what_was_held() {
    let p = Policy::default();
    let a = step(None, &run(State::Failed, 0, None), 1, true, &p);
    let b = step(
        a.next.as_ref(),
        &run(State::Failed, 100, None),
        1,
        false,
        &p,
    );
    assert!(b.next.as_ref().unwrap().held.is_empty(), "not a run");
    let c = step(b.next.as_ref(), &run(State::Failed, 200, None), 1, true, &p);
    assert_eq!(c.next.as_ref().unwrap().held.problems.count(), 1);
    // A reminder that is not about a run tells no count of runs, and ends them.
    let d = step(
        c.next.as_ref(),
        &run(State::Failed, 1500, None),
        1,
        false,
        &p,
    );
    assert_eq!(d.decision.reason.code(), "repeated");
    assert_eq!(d.digest, None);
    assert!(d.next.as_ref().unwrap().held.is_empty());
}

#[test]
fn an_event_that_brings_its_own_digest_keeps_it() {
    let p = Policy::default();
    let a = step(None, &run(State::Failed, 0, None), 1, true, &p);
    let b = step(a.next.as_ref(), &run(State::Failed, 100, None), 1, true, &p);
    let mut ev = run(State::Failed, 1500, None);
    let own = Digest {
        count: 7,
        states: Vec::new(),
        first: T0.add_millis(1000),
        first_error: None,
    };
    ev.details.digest = Some(own.clone());
    let c = step(b.next.as_ref(), &ev, 1, true, &p);
    assert_eq!(c.digest, None);
    let n = c.notification("n".into(), &ev, b.next.as_ref()).unwrap();
    assert_eq!(n.digest, Some(own));
}

#[test]
fn collapsed_problems_count_in_a_row_in_the_reason_and_the_notification() {
    let p = Policy::default();
    let a = step(None, &run(State::Failed, 0, None), 1, false, &p);
    let ev = run(State::Failed, 2000, None);
    let b = step(a.next.as_ref(), &ev, 5, false, &p);
    assert_eq!(b.next.as_ref().unwrap().consecutive_problems, 6);
    assert!(matches!(
        b.decision.reason,
        Reason::Repeated { count: 6, .. }
    ));
    let n = b.notification("n".into(), &ev, a.next.as_ref()).unwrap();
    assert_eq!(n.consecutive_problems, 6);
    assert_eq!(n.previous_state, Some(State::Failed));
}

#[test]
fn held_runs_are_json_that_reads_back_and_tolerates_missing_fields() {
    let mut held = Held::default();
    assert_eq!(serde_json::to_string(&held).unwrap(), "{}");
    held.hold(
        State::Failed,
        Timestamp::from_millis(i64::MIN),
        Some("x"),
        2,
    );
    held.hold(State::Ok, Timestamp::from_millis(i64::MAX), None, 1);
    let json = serde_json::to_string(&held).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"problems":{{"states":[{{"state":"failed","count":2}}],"first_ms":{},"first_error":"x"}},"ok":{{"states":[{{"state":"ok","count":1}}],"first_ms":{}}}}}"#,
            i64::MIN,
            i64::MAX
        )
    );
    assert_eq!(serde_json::from_str::<Held>(&json).unwrap(), held);
    assert_eq!(
        serde_json::from_str::<Held>(r#"{"ok":{},"later":1}"#).unwrap(),
        Held::default()
    );
    assert!(
        serde_json::from_str::<Held>(r#"{"ok":{"states":[{"state":"bad","count":1}]}}"#).is_err()
    );
}

// ---- property tests ----

/// What the SQLite store did before the step: every event takes the job's next number, the job
/// keeps the numbers of its last message and of the event that began its spell, and a message
/// about a run counts the runs numbered after them that did not notify. Kept here as the
/// reference the step's held counts must agree with.
#[derive(Default)]
struct Numbered {
    snap: Option<JobSnapshot>,
    seq: i64,
    notified: Option<i64>,
    since: Option<i64>,
    runs: Vec<(i64, State, Timestamp, Option<String>, bool)>,
}

impl Numbered {
    fn apply(&mut self, ev: &Event, covers: u32, is_run: bool, p: &Policy) -> Option<Digest> {
        let prev = self.snap.clone();
        let mut decision = decide(prev.as_ref(), &ev.state, ev.at, p);
        let mut next = advance(prev.as_ref(), &ev.state, ev.at, &decision);
        let more = covers.saturating_sub(1);
        if more > 0 && ev.state.is_problem() {
            if let Some(n) = next.as_mut() {
                n.consecutive_problems += more;
            }
            if let Reason::Repeated { count, .. } | Reason::ThresholdReached { count } =
                &mut decision.reason
            {
                *count += more;
            }
        }
        let digest = if decision.notify && is_run && ev.details.digest.is_none() {
            prev.as_ref()
                .and_then(|prev| self.counted(prev, ev, &decision))
        } else {
            None
        };
        self.seq += 1;
        if decision.notify {
            self.notified = Some(self.seq);
        }
        if begins_spell(prev.as_ref(), &ev.state) {
            self.since = Some(self.seq);
        }
        if is_run {
            let error = ev.details.error.clone();
            self.runs
                .push((self.seq, ev.state, ev.at, error, decision.notify));
        }
        self.snap = next;
        digest
    }

    fn counted(&self, prev: &JobSnapshot, ev: &Event, decision: &Decision) -> Option<Digest> {
        let problems = match decision.reason {
            Reason::Repeated { .. }
            | Reason::ThresholdReached { .. }
            | Reason::Recovered { .. } => true,
            Reason::Heartbeat { .. } => false,
            _ => return None,
        };
        let mut after = self.notified.unwrap_or(0);
        if problems && prev.state.is_problem() {
            after = after.max(self.since.unwrap_or(0) - 1);
        }
        let mut count = 0;
        let mut tally = Vec::new();
        let mut first: Option<(Timestamp, Option<String>)> = None;
        for (seq, state, at, error, notified) in &self.runs {
            let wanted = if problems {
                state.is_problem()
            } else {
                *state == State::Ok
            };
            if *seq <= after || *notified || !wanted {
                continue;
            }
            count += 1;
            DigestCount::add(&mut tally, *state, 1);
            if first.as_ref().is_none_or(|(t, _)| at < t) {
                first = Some((*at, error.clone()));
            }
        }
        let (first, first_error) = first?;
        let this = if ev.state.is_problem() {
            ev.state
        } else {
            State::Ok
        };
        DigestCount::add(&mut tally, this, 1);
        let (first, first_error) = if ev.at < first {
            (ev.at, None)
        } else {
            (first, first_error)
        };
        Some(Digest {
            count: count + 1,
            states: DigestCount::finish(tally),
            first,
            first_error: first_error.filter(|e| Some(e) != ev.details.error.as_ref()),
        })
    }
}

fn any_state() -> impl Strategy<Value = State> {
    prop_oneof![
        5 => Just(State::Ok),
        3 => Just(State::Failed),
        1 => Just(State::TimedOut),
        1 => Just(State::Crashed),
        1 => Just(State::Late),
        1 => Just(State::Cancelled),
        1 => Just(State::Skipped),
        1 => Just(State::Running),
        1 => (1u32..4, any::<i64>()).prop_map(|(attempt, at)| State::Retrying {
            attempt,
            next_at: Timestamp::from_millis(at),
        }),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (1u64..3_000, prop::option::of(1u64..5_000), 1u32..5).prop_map(|(r, h, t)| Policy {
        repeat_failures_after: Duration::from_millis(r),
        ok_heartbeat_after: h.map(Duration::from_millis),
        fail_threshold: t,
    })
}

/// One event of a history: its state, when it happened (each about 100 ms after the last,
/// but up to 0.8 s out of order, as concurrent runs commit), an error, whether it is a run,
/// how many events it stands for (runs are one), and whether it brings its own digest.
#[derive(Clone, Debug)]
struct Ev {
    event: Event,
    covers: u32,
    is_run: bool,
}

fn history(runs_only: bool) -> impl Strategy<Value = Vec<Ev>> {
    let one = (
        any_state(),
        0i64..800,
        prop::option::of(prop_oneof![Just("e1"), Just("e2")]),
        prop::bool::weighted(if runs_only { 1.0 } else { 0.8 }),
        1u32..4,
        prop::bool::weighted(if runs_only { 0.0 } else { 0.05 }),
    );
    prop::collection::vec(one, 0..80).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (state, jitter, error, is_run, covers, own))| {
                let mut event = run(state, i as i64 * 100 + jitter, error);
                if own {
                    event.details.digest = Some(Digest {
                        count: 3,
                        states: Vec::new(),
                        first: event.at.add_millis(-50),
                        first_error: None,
                    });
                }
                Ev {
                    event,
                    covers: if is_run { 1 } else { covers },
                    is_run,
                }
            })
            .collect()
    })
}

/// The problem runs a message tells of: those its digest counts, or itself without one.
fn problems_told(n: &Notification) -> u64 {
    match &n.digest {
        Some(d) if !d.states.is_empty() => d
            .states
            .iter()
            .filter(|c| c.state.is_problem())
            .map(|c| c.count)
            .sum(),
        Some(d) if n.state.is_problem() => d.count,
        None if n.state.is_problem() => 1,
        _ => 0,
    }
}

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        any::<i64>(),
        1_700_000_000_000i64..1_900_000_000_000
    ]
    .prop_map(Timestamp::from_millis)
}

fn any_tally() -> impl Strategy<Value = Tally> {
    (
        prop::collection::vec(
            (
                any_state(),
                prop_oneof![Just(u64::MAX), any::<u64>(), 0u64..5],
            ),
            0..4,
        ),
        prop::option::of(any_timestamp()),
        prop::option::of(".{0,8}"),
    )
        .prop_map(|(states, first, first_error)| Tally {
            states: states
                .into_iter()
                .map(|(state, count)| DigestCount { state, count })
                .collect(),
            first,
            first_error,
        })
}

fn any_snapshot() -> impl Strategy<Value = JobSnapshot> {
    (
        any_state(),
        any_timestamp(),
        prop_oneof![Just(u32::MAX), any::<u32>(), 0u32..5],
        any::<bool>(),
        prop::option::of(any_timestamp()),
        any_tally(),
        any_tally(),
    )
        .prop_map(
            |(state, since, consecutive_problems, problem_notified, last, problems, ok)| {
                JobSnapshot {
                    state,
                    since,
                    consecutive_problems,
                    problem_notified,
                    last_notified_at: last,
                    held: Held { problems, ok },
                }
            },
        )
}

proptest! {
    #[test]
    fn the_step_counts_what_numbering_the_events_counted(
        p in policy(),
        events in history(false),
    ) {
        let mut model = Numbered::default();
        let mut snap: Option<JobSnapshot> = None;
        for (i, e) in events.iter().enumerate() {
            let s = step(snap.as_ref(), &e.event, e.covers, e.is_run, &p);
            let expected = model.apply(&e.event, e.covers, e.is_run, &p);
            prop_assert_eq!(&s.digest, &expected, "event {}: {:?}", i, e);
            snap = s.next;
        }
    }

    #[test]
    fn every_problem_run_of_an_announced_streak_is_told_exactly_once(
        p in policy(),
        mut events in history(true),
    ) {
        // A closing OK run, long after the rest, ends the last streak.
        events.push(Ev { event: run(State::Ok, 100_000, None), covers: 1, is_run: true });
        let mut snap: Option<JobSnapshot> = None;
        let (mut told, mut expected) = (0u64, 0u64);
        let (mut streak, mut announced) = (0u64, false);
        for e in &events {
            let s = step(snap.as_ref(), &e.event, 1, true, &p);
            if let Some(n) = s.notification("n".into(), &e.event, snap.as_ref()) {
                told += problems_told(&n);
            }
            match e.event.state.class() {
                Class::Problem => {
                    streak += 1;
                    announced |= s.decision.notify;
                }
                Class::Ok => {
                    if announced {
                        expected += streak;
                    }
                    (streak, announced) = (0, false);
                }
                Class::Neutral | Class::InProgress => {}
            }
            snap = s.next;
        }
        prop_assert_eq!(told, expected);
    }

    #[test]
    fn a_message_ends_what_was_held_and_a_quiet_run_is_held(
        p in policy(),
        events in history(false),
    ) {
        let mut snap: Option<JobSnapshot> = None;
        for e in &events {
            let before = snap.as_ref().map_or(0, |s| s.held.problems.count() + s.held.ok.count());
            let s = step(snap.as_ref(), &e.event, e.covers, e.is_run, &p);
            let held = s.next.as_ref().map(|n| &n.held);
            if s.decision.notify {
                prop_assert!(held.is_some_and(Held::is_empty), "{:?}", held);
            }
            if let Some(d) = &s.digest {
                prop_assert!(d.count >= 2, "a digest of one: {:?}", d);
                if !d.states.is_empty() {
                    prop_assert_eq!(d.count, d.states.iter().map(|c| c.count).sum::<u64>());
                }
            }
            let counted = matches!(e.event.state.class(), Class::Ok | Class::Problem);
            if e.is_run && counted && !s.decision.notify {
                let after = held.map_or(0, |h| h.problems.count() + h.ok.count());
                // One more, unless a spell of problems ended and took its streak with it.
                prop_assert!(after >= 1 && after <= before + 1, "{} then {}", before, after);
            }
            snap = s.next;
        }
    }

    #[test]
    fn neutral_and_unfinished_events_change_nothing(
        previous in prop::option::of(any_snapshot()),
        state in prop_oneof![
            Just(State::Cancelled),
            Just(State::Skipped),
            Just(State::Running),
            Just(State::Retrying { attempt: 2, next_at: T0 }),
        ],
        at in any_timestamp(),
        covers in any::<u32>(),
        is_run in any::<bool>(),
        p in policy(),
    ) {
        let ev = Event { at, ..run(state, 0, Some("x")) };
        let s = step(previous.as_ref(), &ev, covers, is_run, &p);
        prop_assert_eq!(s.next, previous);
        prop_assert!(!s.decision.notify);
        prop_assert_eq!(s.digest, None);
        prop_assert!(!s.begins_spell);
    }

    #[test]
    fn an_event_covering_n_counts_as_n_problems_in_a_row(
        p in policy(),
        events in history(true),
        n in 1u32..20,
    ) {
        let snap = events.iter().fold(None, |snap: Option<JobSnapshot>, e| {
            step(snap.as_ref(), &e.event, 1, true, &p).next
        });
        let ev = run(State::Failed, 50_000, None);
        let once = step(snap.as_ref(), &ev, n, false, &p);
        let mut singles = snap.clone();
        for _ in 0..n {
            singles = step(singles.as_ref(), &ev, 1, false, &p).next;
        }
        let (a, b) = (once.next.unwrap(), singles.unwrap());
        prop_assert_eq!(a.consecutive_problems, b.consecutive_problems);
        if let Reason::Repeated { count, .. } | Reason::ThresholdReached { count } = once.decision.reason {
            prop_assert_eq!(count, a.consecutive_problems);
        }
    }

    #[test]
    fn no_input_panics(
        previous in prop::option::of(any_snapshot()),
        state in any_state(),
        at in any_timestamp(),
        covers in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        is_run in any::<bool>(),
        repeat in prop_oneof![Just(Duration::MAX), Just(Duration::ZERO), any::<u64>().prop_map(Duration::from_millis)],
        heartbeat in prop::option::of(prop_oneof![Just(Duration::MAX), Just(Duration::ZERO)]),
        fail_threshold in any::<u32>(),
        error in prop::option::of(".{0,8}"),
    ) {
        let p = Policy { repeat_failures_after: repeat, ok_heartbeat_after: heartbeat, fail_threshold };
        let ev = Event { at, ..run(state, 0, error.as_deref()) };
        let s = step(previous.as_ref(), &ev, covers, is_run, &p);
        let n = s.notification("n".into(), &ev, previous.as_ref());
        prop_assert_eq!(n.is_some(), s.decision.notify);
        if let Some(next) = &s.next {
            // What a store writes reads back as what it wrote (an inconsistent tally, one
            // without runs, may lose its leftovers on the way).
            let json = serde_json::to_string(&next.held).unwrap();
            let back = serde_json::from_str::<Held>(&json).unwrap();
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }
}
