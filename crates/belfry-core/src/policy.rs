use std::fmt;
use std::time::Duration;

use crate::counts::Held;
use crate::duration::format_duration;
use crate::{Class, State, Timestamp};

/// The alert rules' settings for one job (DESIGN §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// While a job keeps having problems, repeat the alert once the last notification is at
    /// least this old. Default 1 s (the decorator's `silent_seconds`).
    pub repeat_failures_after: Duration,
    /// While a job keeps succeeding, send a "still OK" message once the last notification is at
    /// least this old; `None` turns heartbeats off. Default 59 min 24 s (the decorator's 0.99 h).
    pub ok_heartbeat_after: Option<Duration>,
    /// How many problems in a row before the first alert. Default 1; 0 is treated as 1.
    pub fail_threshold: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            repeat_failures_after: Duration::from_secs(1),
            ok_heartbeat_after: Some(Duration::from_secs(59 * 60 + 24)),
            fail_threshold: 1,
        }
    }
}

/// What belfry remembers about a job between runs: just enough for the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSnapshot {
    /// The last outcome that counts for the rules (`Ok` or a problem state). Neutral and
    /// in-progress states never replace it.
    pub state: State,
    /// When the job entered its current class (OK, or problem).
    pub since: Timestamp,
    /// Problems in a row, 0 while OK.
    pub consecutive_problems: u32,
    /// Whether the current run of problems has been announced (so a recovery must be).
    pub problem_notified: bool,
    /// When the last notification for this job was made (committed to the outbox).
    pub last_notified_at: Option<Timestamp>,
    /// The runs the rules held back since the last message, which the next message about a
    /// run counts (see [`step`](crate::step)).
    pub held: Held,
}

/// The rules' verdict on one event, with the reason either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether to notify.
    pub notify: bool,
    /// Why (or why not). Stored with the notification and shown by `belfry history`.
    pub reason: Reason,
}

impl Decision {
    /// Whether it sends a reminder: the problem went on past the repeat window.
    pub fn is_reminder(&self) -> bool {
        self.notify && matches!(self.reason, Reason::Repeated { .. })
    }
}

/// Why the rules decided as they did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Nothing was known about this job before.
    FirstRun,
    /// The job was OK and now has a problem.
    Problem,
    /// The job has had `count` problems in a row, reaching `fail_threshold`.
    ThresholdReached {
        /// Problems in a row.
        count: u32,
    },
    /// The job still has problems and the last message is older than `repeat_failures_after`.
    Repeated {
        /// Problems in a row.
        count: u32,
        /// Age of the last notification.
        since_last: Duration,
    },
    /// The job is OK again after an announced problem.
    Recovered {
        /// How many problem runs the recovery ends.
        after: u32,
    },
    /// Still OK, and the last message is older than `ok_heartbeat_after`.
    Heartbeat {
        /// Age of the last notification, if there was one.
        since_last: Option<Duration>,
    },
    /// A problem, but fewer in a row than `fail_threshold`.
    BelowThreshold {
        /// Problems in a row.
        count: u32,
        /// The threshold.
        threshold: u32,
    },
    /// Still failing, and the last message is younger than `repeat_failures_after`.
    WithinRepeatWindow {
        /// Age of the last notification.
        since_last: Duration,
    },
    /// Still OK, and the last message is younger than `ok_heartbeat_after`.
    WithinHeartbeatWindow {
        /// Age of the last notification.
        since_last: Duration,
    },
    /// Still OK, and heartbeats are turned off.
    HeartbeatOff,
    /// `Cancelled` or `Skipped`: neither success nor problem.
    Neutral,
    /// `Running` or `Retrying`: no outcome yet.
    InProgress,
}

impl Reason {
    /// A stable machine-readable code (`"first_run"`, `"recovered"`, …), used in JSON.
    pub const fn code(&self) -> &'static str {
        match self {
            Reason::FirstRun => "first_run",
            Reason::Problem => "problem",
            Reason::ThresholdReached { .. } => "threshold_reached",
            Reason::Repeated { .. } => "repeated",
            Reason::Recovered { .. } => "recovered",
            Reason::Heartbeat { .. } => "heartbeat",
            Reason::BelowThreshold { .. } => "below_threshold",
            Reason::WithinRepeatWindow { .. } => "within_repeat_window",
            Reason::WithinHeartbeatWindow { .. } => "within_heartbeat_window",
            Reason::HeartbeatOff => "heartbeat_off",
            Reason::Neutral => "neutral",
            Reason::InProgress => "in_progress",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ago = |d: &Duration| format_duration(*d);
        match self {
            Reason::FirstRun => f.write_str("first run of this job"),
            Reason::Problem => f.write_str("was OK, now a problem"),
            Reason::ThresholdReached { count } => write!(f, "{count} problems in a row"),
            Reason::Repeated { count, since_last } => write!(
                f,
                "still a problem ({count} in a row); last message {} ago",
                ago(since_last)
            ),
            // The title says "Recovered" and "OK": the reasons do not say it again.
            Reason::Recovered { after } if *after == 1 => f.write_str("was a problem for 1 run"),
            Reason::Recovered { after } => write!(f, "was a problem for {after} runs"),
            Reason::Heartbeat {
                since_last: Some(d),
            } => write!(f, "unchanged since the last message {} ago", ago(d)),
            // No message was ever sent: problems held back under `fail_threshold`, then OK.
            Reason::Heartbeat { since_last: None } => {
                f.write_str("the first message about this job")
            }
            Reason::BelowThreshold { count, threshold } => {
                write!(f, "{count} of {threshold} problems before alerting")
            }
            Reason::WithinRepeatWindow { since_last } => write!(
                f,
                "still a problem; last message only {} ago",
                ago(since_last)
            ),
            Reason::WithinHeartbeatWindow { since_last } => {
                write!(f, "still OK; last message only {} ago", ago(since_last))
            }
            Reason::HeartbeatOff => f.write_str("still OK; heartbeats are off"),
            Reason::Neutral => f.write_str("neither success nor problem"),
            Reason::InProgress => f.write_str("no outcome yet"),
        }
    }
}

fn yes(reason: Reason) -> Decision {
    Decision {
        notify: true,
        reason,
    }
}

fn no(reason: Reason) -> Decision {
    Decision {
        notify: false,
        reason,
    }
}

/// The alert rules: given what is known about a job and the state of its latest run, whether to
/// notify, and why.
///
/// 1. First run: notify.
/// 2. OK ↔ problem: notify (`Problem` / `Recovered`).
/// 3. Problem again: notify when the last notification is at least `repeat_failures_after` old.
/// 4. OK again: notify when it is at least `ok_heartbeat_after` old.
///
/// Ages are measured from the last notification, not the last run, so that a job failing every
/// half second still gets an alert every `repeat_failures_after`. `fail_threshold` holds back
/// the first alert of a problem run until that many problems in a row; a recovery is announced
/// only if its problem was.
pub fn decide(
    previous: Option<&JobSnapshot>,
    state: &State,
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    match state.class() {
        Class::InProgress => no(Reason::InProgress),
        Class::Neutral => no(Reason::Neutral),
        Class::Problem => {
            let threshold = policy.fail_threshold.max(1);
            let count = previous
                .map_or(0, |p| p.consecutive_problems)
                .saturating_add(1);
            if count < threshold {
                return no(Reason::BelowThreshold { count, threshold });
            }
            let Some(prev) = previous else {
                return yes(Reason::FirstRun);
            };
            if !prev.problem_notified {
                return if count == 1 {
                    yes(Reason::Problem)
                } else {
                    yes(Reason::ThresholdReached { count })
                };
            }
            let since_last = prev.last_notified_at.map(|t| now.since(t));
            match since_last {
                Some(d) if d < policy.repeat_failures_after => {
                    no(Reason::WithinRepeatWindow { since_last: d })
                }
                Some(d) => yes(Reason::Repeated {
                    count,
                    since_last: d,
                }),
                // Announced but never notified cannot happen through `advance`; if a store
                // says so anyway, erring towards a message is the safe side.
                None => yes(Reason::Repeated {
                    count,
                    since_last: Duration::ZERO,
                }),
            }
        }
        Class::Ok => {
            let Some(prev) = previous else {
                return yes(Reason::FirstRun);
            };
            if prev.problem_notified {
                return yes(Reason::Recovered {
                    after: prev.consecutive_problems,
                });
            }
            let Some(every) = policy.ok_heartbeat_after else {
                return no(Reason::HeartbeatOff);
            };
            match prev.last_notified_at.map(|t| now.since(t)) {
                Some(d) if d < every => no(Reason::WithinHeartbeatWindow { since_last: d }),
                since_last => yes(Reason::Heartbeat { since_last }),
            }
        }
    }
}

/// What belfry remembers after an event: the snapshot that the next [`decide`] will see.
///
/// `decision` must be the one [`decide`] returned for the same arguments. Neutral and
/// in-progress states leave the snapshot as it was (so `None` stays `None`).
///
/// `held` keeps what this event leaves of the runs held back before it: nothing after a
/// notification (it told them), and no problems once their spell has ended (a later message
/// about problems counts only its own streak's). The event itself is not added: only
/// [`step`](crate::step) knows whether it is a run.
pub fn advance(
    previous: Option<&JobSnapshot>,
    state: &State,
    now: Timestamp,
    decision: &Decision,
) -> Option<JobSnapshot> {
    let last_notified_at = if decision.notify {
        Some(now)
    } else {
        previous.and_then(|p| p.last_notified_at)
    };
    let spell = continued_spell(previous, state);
    let held = |problems_continue: bool| match previous {
        Some(p) if !decision.notify => Held {
            problems: if problems_continue {
                p.held.problems.clone()
            } else {
                Default::default()
            },
            ok: p.held.ok.clone(),
        },
        _ => Held::default(),
    };
    match state.class() {
        Class::InProgress | Class::Neutral => previous.cloned(),
        Class::Problem => Some(JobSnapshot {
            state: *state,
            since: spell.map_or(now, |p| p.since),
            consecutive_problems: previous
                .map_or(0, |p| p.consecutive_problems)
                .saturating_add(1),
            problem_notified: spell.is_some_and(|p| p.problem_notified) || decision.notify,
            last_notified_at,
            held: held(spell.is_some()),
        }),
        Class::Ok => Some(JobSnapshot {
            state: State::Ok,
            since: spell.map_or(now, |p| p.since),
            consecutive_problems: 0,
            problem_notified: false,
            last_notified_at,
            held: held(false),
        }),
    }
}

/// The snapshot whose spell (of OK, or of problems) an event in `state` continues: `previous`
/// if it is in the same class, `None` if the event begins a new spell or is neither OK nor a
/// problem.
fn continued_spell<'a>(
    previous: Option<&'a JobSnapshot>,
    state: &State,
) -> Option<&'a JobSnapshot> {
    let class = state.class();
    previous.filter(|p| matches!(class, Class::Ok | Class::Problem) && p.state.class() == class)
}

/// Whether an event in `state` begins a new spell of OK or of problems: the snapshot
/// [`advance`] makes for it then has `since` at the event's time.
pub fn begins_spell(previous: Option<&JobSnapshot>, state: &State) -> bool {
    matches!(state.class(), Class::Ok | Class::Problem)
        && continued_spell(previous, state).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    /// Feeds `(offset_ms, state)` events through decide/advance; returns the decisions.
    fn run(policy: &Policy, events: &[(i64, State)]) -> Vec<Decision> {
        let mut snap: Option<JobSnapshot> = None;
        let mut out = Vec::new();
        for (at, st) in events {
            let now = T0.add_millis(*at);
            let d = decide(snap.as_ref(), st, now, policy);
            snap = advance(snap.as_ref(), st, now, &d);
            out.push(d);
        }
        out
    }

    fn codes(ds: &[Decision]) -> Vec<&'static str> {
        ds.iter()
            .map(|d| if d.notify { d.reason.code() } else { "-" })
            .collect()
    }

    #[test]
    fn first_run_notifies_whatever_its_outcome() {
        let p = Policy::default();
        assert_eq!(codes(&run(&p, &[(0, State::Ok)])), ["first_run"]);
        assert_eq!(codes(&run(&p, &[(0, State::Failed)])), ["first_run"]);
    }

    #[test]
    fn change_between_ok_and_problem_notifies_both_ways() {
        let p = Policy::default();
        let ds = run(
            &p,
            &[(0, State::Ok), (100, State::Failed), (200, State::Ok)],
        );
        assert_eq!(codes(&ds), ["first_run", "problem", "recovered"]);
    }

    #[test]
    fn repeat_is_measured_from_the_last_notification_not_the_last_run() {
        // A job failing every 0.5 s with repeat_failures_after = 1 s: alerts at 0, 1.0, 2.0 s.
        let p = Policy::default();
        let events: Vec<_> = (0..5).map(|i| (i * 500, State::Failed)).collect();
        assert_eq!(
            codes(&run(&p, &events)),
            ["first_run", "-", "repeated", "-", "repeated"]
        );
    }

    #[test]
    fn minutely_ok_job_gets_an_hourly_heartbeat() {
        let p = Policy::default();
        let events: Vec<_> = (0..=120).map(|m| (m * 60_000, State::Ok)).collect();
        let ds = run(&p, &events);
        let beats: Vec<_> = ds
            .iter()
            .enumerate()
            .filter(|(_, d)| d.notify)
            .map(|(i, _)| i)
            .collect();
        // first run at minute 0, then the first run at least 59m24s after each message
        assert_eq!(beats, [0, 60, 120]);
    }

    #[test]
    fn heartbeat_off_silences_ok_but_not_recovery() {
        let p = Policy {
            ok_heartbeat_after: None,
            ..Policy::default()
        };
        let day = 86_400_000;
        let ds = run(
            &p,
            &[
                (0, State::Ok),
                (day, State::Ok),
                (day + 1, State::Crashed),
                (day + 2, State::Ok),
            ],
        );
        assert_eq!(codes(&ds), ["first_run", "-", "problem", "recovered"]);
        assert_eq!(ds[1].reason, Reason::HeartbeatOff);
    }

    #[test]
    fn fail_threshold_holds_back_the_first_alert_and_its_recovery() {
        let p = Policy {
            fail_threshold: 3,
            ..Policy::default()
        };
        let ds = run(
            &p,
            &[
                (0, State::Ok),
                (10, State::Failed),
                (20, State::Failed),
                (30, State::Ok), // recovered before the threshold: nothing was announced
                (40, State::Failed),
                (50, State::TimedOut),
                (60, State::Failed),
                (70, State::Ok),
            ],
        );
        assert_eq!(
            codes(&ds),
            [
                "first_run",
                "-",
                "-",
                "-",
                "-",
                "-",
                "threshold_reached",
                "recovered"
            ]
        );
        assert_eq!(
            ds[2].reason,
            Reason::BelowThreshold {
                count: 2,
                threshold: 3
            }
        );
        assert_eq!(ds[7].reason, Reason::Recovered { after: 3 });
    }

    #[test]
    fn neutral_states_change_nothing() {
        let p = Policy::default();
        let ds = run(
            &p,
            &[
                (0, State::Failed),
                (10, State::Cancelled),
                (20, State::Skipped),
                (30, State::Ok),
            ],
        );
        assert_eq!(codes(&ds), ["first_run", "-", "-", "recovered"]);
        assert_eq!(ds[1].reason, Reason::Neutral);
        // A job whose only run was cancelled is still unknown: its first real outcome is a
        // first run.
        assert_eq!(
            codes(&run(&p, &[(0, State::Cancelled), (5, State::Ok)])),
            ["-", "first_run"]
        );
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            Reason::Repeated {
                count: 4,
                since_last: Duration::from_secs(90)
            }
            .to_string(),
            "still a problem (4 in a row); last message 1m 30s ago"
        );
        assert_eq!(
            Reason::Recovered { after: 1 }.to_string(),
            "was a problem for 1 run"
        );
    }

    fn outcome() -> impl Strategy<Value = State> {
        prop_oneof![
            4 => Just(State::Ok),
            3 => Just(State::Failed),
            1 => Just(State::TimedOut),
            1 => Just(State::Crashed),
            1 => Just(State::Cancelled),
            1 => Just(State::Skipped),
        ]
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (1u64..5_000, prop::option::of(1u64..100_000), 1u32..5).prop_map(|(r, h, t)| Policy {
            repeat_failures_after: Duration::from_millis(r),
            ok_heartbeat_after: h.map(Duration::from_millis),
            fail_threshold: t,
        })
    }

    /// A history: (gap before this event in ms, outcome).
    fn history() -> impl Strategy<Value = Vec<(i64, State)>> {
        prop::collection::vec((0i64..10_000, outcome()), 0..60).prop_map(|v| {
            let mut t = 0;
            v.into_iter()
                .map(|(gap, s)| {
                    t += gap;
                    (t, s)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn two_identical_outcomes_inside_the_window_never_notify_twice(
            p in policy(),
            prefix in history(),
            st in outcome(),
            gap_fraction in 0.0f64..1.0,
        ) {
            let window = if st.is_problem() {
                p.repeat_failures_after
            } else {
                p.ok_heartbeat_after.unwrap_or(Duration::from_secs(3600))
            };
            let start = prefix.last().map_or(0, |e| e.0) + 1;
            let gap = (window.as_millis() as f64 * gap_fraction) as i64;
            prop_assume!(gap < window.as_millis() as i64);
            let mut events = prefix.clone();
            events.push((start, st));
            events.push((start + gap, st));
            let ds = run(&p, &events);
            let (a, b) = (&ds[ds.len() - 2], &ds[ds.len() - 1]);
            prop_assert!(!(a.notify && b.notify), "{:?} then {:?}", a, b);
        }

        #[test]
        fn every_announced_problem_that_ends_makes_exactly_one_recovery(
            p in policy(),
            events in history(),
        ) {
            let ds = run(&p, &events);
            let mut announced = false; // the current problem run was announced
            let mut expected = 0;
            for ((_, st), d) in events.iter().zip(&ds) {
                let recovered = d.notify && d.reason.code() == "recovered";
                match st.class() {
                    Class::Problem => {
                        prop_assert!(!recovered);
                        announced |= d.notify;
                    }
                    Class::Ok => {
                        if announced {
                            expected += 1;
                            prop_assert!(recovered, "announced problem ended without a recovery: {:?}", d);
                        } else {
                            prop_assert!(!recovered, "recovery without an announced problem");
                        }
                        announced = false;
                    }
                    _ => prop_assert!(!d.notify),
                }
            }
            let got = ds.iter().filter(|d| d.notify && d.reason.code() == "recovered").count();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn a_problem_run_reaching_the_threshold_is_always_announced(
            p in policy(),
            events in history(),
        ) {
            let ds = run(&p, &events);
            let mut streak = 0;
            let mut announced = false;
            for ((_, st), d) in events.iter().zip(&ds) {
                match st.class() {
                    Class::Problem => {
                        streak += 1;
                        announced |= d.notify;
                        if streak >= p.fail_threshold {
                            prop_assert!(announced, "{} problems in a row, threshold {}, never announced", streak, p.fail_threshold);
                        }
                    }
                    Class::Ok => { streak = 0; announced = false; }
                    _ => {}
                }
            }
        }
    }
}
