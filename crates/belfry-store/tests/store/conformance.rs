//! The store's guarantees, one body each, run against both backends (see the macro at the
//! end): every promise `Store` makes holds for a SQLite file and a PostgreSQL schema alike.
//! A third backend adds a `Db` kind in `support.rs` and an arm to the macro.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Attempt, Retention, RunEnd, RunStart};
use belfry_testkit::Lcg;

use crate::support::*;

fn a_run_and_its_alert_are_recorded_together(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    s.start_run(&RunStart {
        id: "r1".into(),
        job: "backup".into(),
        started: t0,
        host: Some("h".into()),
        pid: Some(1),
        boot_id: None,
    })
    .unwrap();
    let running = s.job("backup").unwrap().unwrap();
    assert_eq!(running.running_since, Some(t0));
    assert_eq!(running.state, None);

    let ev = event("backup", "r1", State::Failed, t0.add_millis(500), 3);
    let rec = s
        .finish_run(
            &RunEnd {
                event: &ev,
                output: Some("line one\nboom\n"),
                output_bytes: 14,
            },
            &Policy::default(),
            to(&["ops", "console", "ops"]),
        )
        .unwrap();
    assert!(rec.decision.notify);
    assert_eq!(rec.outbox_ids.len(), 2, "channels are deduplicated");

    let job = s.job("backup").unwrap().unwrap();
    assert_eq!(job.state, Some(State::Failed));
    assert_eq!(job.running_since, None);
    assert_eq!(job.last_run.as_ref().unwrap().exit_code, Some(3));
    assert_eq!(job.last_notification.as_ref().unwrap().reason, "first_run");

    let runs = s.runs("backup", 10, true).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].output.as_deref(), Some("line one\nboom\n"));
    assert_eq!(runs[0].reason.as_deref(), Some("first_run"));
    assert!(runs[0].notified);
    let without = s.runs("backup", 10, false).unwrap();
    assert_eq!(without[0].output, None);
}

fn a_duration_longer_than_milliseconds_can_count_is_kept_as_the_longest_not_wrapped(db: &Db) {
    let mut s = db.open();
    let mut ev = event(
        "long",
        "r1",
        State::Ok,
        Timestamp::from_millis(1_800_000_000_000),
        0,
    );
    ev.details.duration = Some(Duration::MAX);
    finish(&mut s, &ev, &[]);
    let runs = s.runs("long", 1, false).unwrap();
    assert_eq!(
        runs[0].duration,
        Some(Duration::from_millis(i64::MAX as u64)),
        "{:?}",
        runs[0].duration
    );
}

fn the_rules_see_what_the_store_remembers_across_reopening(db: &Db) {
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let steps = [
        (State::Failed, 0, true),
        (State::Failed, 300, false), // inside repeat_failures_after
        (State::Failed, 1_400, true),
        (State::Ok, 1_500, true), // recovered
        (State::Ok, 1_600, false),
    ];
    for (i, (st, at, notify)) in steps.into_iter().enumerate() {
        // A new process each time: open the store afresh.
        let mut s = db.open();
        let ev = event("j", &format!("r{i}"), st, t0.add_millis(at), 0);
        let rec = finish(&mut s, &ev, &["c"]);
        assert_eq!(rec.decision.notify, notify, "step {i}: {:?}", rec.decision);
    }
    let s = db.open();
    let kinds: Vec<_> = s
        .runs("j", 10, false)
        .unwrap()
        .into_iter()
        .map(|r| r.reason.unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "within_heartbeat_window",
            "recovered",
            "repeated",
            "within_repeat_window",
            "first_run"
        ]
    );
}

fn forty_concurrent_writers_lose_no_run_and_never_see_a_locked_database(db: &Db) {
    let location = Arc::new(db.location());
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (location, barrier) = (location.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Open inside the thread: forty connections racing to create and migrate.
                let mut s = Store::at(&location).expect("open");
                let t = Timestamp::now();
                let id = format!("run-{i}");
                s.start_run(&RunStart {
                    id: id.clone(),
                    job: "same-job".into(),
                    started: t,
                    host: None,
                    pid: None,
                    boot_id: None,
                })
                .expect("start");
                let st = if i % 3 == 0 { State::Failed } else { State::Ok };
                let ev = event("same-job", &id, st, Timestamp::now(), i as i32);
                s.finish_run(
                    &RunEnd {
                        event: &ev,
                        output: Some("x"),
                        output_bytes: 1,
                    },
                    &Policy::default(),
                    to(&["c"]),
                )
                .expect("finish");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a writer failed");
    }
    let s = db.open();
    let runs = s.runs("same-job", 100, false).unwrap();
    assert_eq!(runs.len(), n);
    assert!(runs.iter().all(|r| r.state != State::Running));
}

fn outbox_rows_are_claimed_once_and_follow_their_outcomes(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let ev = event("j", "r1", State::Failed, t0, 1);
    let rec = finish(&mut s, &ev, &["a", "b", "c"]);
    let ids = rec.outbox_ids.clone();
    let lease = Duration::from_secs(30);

    let claimed = s.claim_due(t0, lease, "p1", None, 10).unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(claimed[0].notification.job, "j");
    assert_eq!(claimed[0].attempts, 1);
    assert!(claimed[0].idempotency_key.ends_with(":a"));
    // Leased: a second drainer gets nothing.
    assert!(s.claim_due(t0, lease, "p2", None, 10).unwrap().is_empty());

    let later = t0.add_millis(10);
    s.record_attempt(ids[0], &Attempt::Delivered, later, Duration::ZERO)
        .unwrap();
    s.record_attempt(
        ids[1],
        &Attempt::Retry {
            at: t0.add_millis(5_000),
            reason: "HTTP 503".into(),
        },
        later,
        Duration::ZERO,
    )
    .unwrap();
    s.record_attempt(
        ids[2],
        &Attempt::Permanent {
            reason: "HTTP 400: invalid_payload".into(),
        },
        later,
        Duration::ZERO,
    )
    .unwrap();
    let c = s.outbox_counts().unwrap();
    assert_eq!((c.delivered, c.pending, c.dead, c.sending), (1, 1, 1, 0));
    let (status, reason, _) = s.outbox_row_status(ids[2]).unwrap().unwrap();
    assert_eq!(status, "dead");
    assert!(reason.unwrap().contains("invalid_payload"));

    // Not due before its time, due after.
    assert!(
        s.claim_due(later, lease, "p1", None, 10)
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_due(t0.add_millis(5_000), lease, "p1", None, 10)
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ids[1]);
    assert_eq!(again[0].attempts, 2);
}

fn a_crashed_holders_lease_expires_and_the_row_is_claimed_again(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let ev = event("j", "r1", State::Failed, t0, 1);
    finish(&mut s, &ev, &["a"]);
    let lease = Duration::from_secs(30);
    assert_eq!(s.claim_due(t0, lease, "dead", None, 10).unwrap().len(), 1);
    assert!(
        s.claim_due(t0.add_millis(29_000), lease, "p2", None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.claim_due(t0.add_millis(31_000), lease, "p2", None, 10)
            .unwrap()
            .len(),
        1
    );
}

fn rows_past_their_deadline_are_dead_not_sent(db: &Db) {
    let mut s = db.open();
    s.set_delivery_deadline(Duration::from_secs(60));
    let t0 = Timestamp::now();
    let ev = event("j", "r1", State::Failed, t0, 1);
    let rec = finish(&mut s, &ev, &["a"]);
    let claimed = s
        .claim_due(t0.add_millis(61_000), Duration::from_secs(5), "p", None, 10)
        .unwrap();
    assert!(claimed.is_empty());
    let (status, reason, _) = s.outbox_row_status(rec.outbox_ids[0]).unwrap().unwrap();
    assert_eq!(status, "dead");
    assert!(reason.unwrap().contains("deadline"));
}

fn an_event_without_a_run_applies_the_rules_and_leaves_the_last_run_alone(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let ev = event("lib-job", "r1", State::Ok, t0, 0);
    finish(&mut s, &ev, &["c"]);
    let failed = Event {
        job: "lib-job".into(),
        state: State::Failed,
        at: t0.add_millis(10),
        details: Details {
            error: Some("connection reset".into()),
            ..Details::default()
        },
    };
    let rec = s
        .record_event(&failed, &Policy::default(), to(&["c"]))
        .unwrap();
    assert!(rec.decision.notify);
    assert_eq!(rec.decision.reason.code(), "problem");
    assert_eq!(
        rec.notification.unwrap().error.as_deref(),
        Some("connection reset")
    );
    let job = s.job("lib-job").unwrap().unwrap();
    assert_eq!(job.state, Some(State::Failed));
    let last = job.last_run.unwrap();
    assert_eq!((last.id.as_str(), last.state), ("r1", State::Ok));
    assert_eq!(last.exit_code, Some(0));
    // A job first seen through an event has no last run at all.
    let rec = s
        .record_event(
            &Event {
                job: "only-events".into(),
                ..failed.clone()
            },
            &Policy::default(),
            to(&["c"]),
        )
        .unwrap();
    assert_eq!(rec.decision.reason.code(), "first_run");
    assert_eq!(s.job("only-events").unwrap().unwrap().last_run, None);
}

fn collapsed_events_count_as_that_many_problems_in_a_row(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let ok = Event {
        job: "lib".into(),
        state: State::Ok,
        at: t0,
        details: Details::default(),
    };
    s.record_event(&ok, &Policy::default(), to(&["c"])).unwrap();
    // Three failures that reached the store as one record (the newest of them).
    let failed = Event {
        state: State::Failed,
        at: t0.add_millis(10),
        ..ok.clone()
    };
    let rec = s
        .record_events(&failed, 3, &Policy::default(), to(&["c"]))
        .unwrap();
    assert_eq!(rec.decision.reason.code(), "problem");
    assert_eq!(rec.next.as_ref().unwrap().consecutive_problems, 3);
    assert_eq!(rec.notification.unwrap().consecutive_problems, 3);
    // A fourth, alone, is the fourth in a row; the recovery after them says four.
    let policy = Policy {
        repeat_failures_after: std::time::Duration::ZERO,
        ..Policy::default()
    };
    let again = Event {
        at: t0.add_millis(20),
        ..failed.clone()
    };
    let rec = s.record_event(&again, &policy, to(&["c"])).unwrap();
    assert_eq!(rec.notification.unwrap().consecutive_problems, 4);
    let rec = s
        .record_event(
            &Event {
                at: t0.add_millis(30),
                ..ok.clone()
            },
            &policy,
            to(&["c"]),
        )
        .unwrap();
    let n = rec.notification.unwrap();
    assert_eq!(rec.decision.reason.code(), "recovered");
    assert!(n.reason_text.contains('4'), "{}", n.reason_text);
}

fn an_abandoned_run_is_recorded_once_however_many_notice_it(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    s.start_run(&RunStart {
        id: "r1".into(),
        job: "j".into(),
        started: t0,
        host: Some("h".into()),
        pid: Some(999_999),
        boot_id: Some("boot-a".into()),
    })
    .unwrap();
    let running = s.running_runs().unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].pid, Some(999_999));
    assert_eq!(running[0].boot_id.as_deref(), Some("boot-a"));

    let crashed = event("j", "r1", State::Crashed, t0.add_millis(5_000), 0);
    let end = RunEnd {
        event: &crashed,
        output: None,
        output_bytes: 0,
    };
    let mut other = db.open();
    let first = s
        .finish_stale_run(&end, &Policy::default(), to(&["c"]))
        .unwrap();
    let second = other
        .finish_stale_run(&end, &Policy::default(), to(&["c"]))
        .unwrap();
    assert!(first.is_some_and(|r| r.outbox_ids.len() == 1));
    assert!(second.is_none(), "recorded twice");
    assert!(s.running_runs().unwrap().is_empty());
    assert_eq!(s.runs("j", 10, false).unwrap()[0].state, State::Crashed);
    assert_eq!(s.outbox_counts().unwrap().pending, 1);
}

fn a_backlog_for_one_job_and_channel_goes_out_as_its_latest_state_with_exact_counts(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let ids = three_alerts(&mut s, t0);
    let now = Timestamp::now();
    let claimed = s
        .claim_due(now, Duration::from_secs(30), "p", None, 10)
        .unwrap();
    assert_eq!(claimed.len(), 1, "one message for the backlog");
    let n = &claimed[0].notification;
    assert_eq!(claimed[0].id, ids[2], "the newest row carries the others");
    assert_eq!((n.state, n.exit_code), (State::Failed, Some(2)));
    let d = n.digest.as_ref().expect("a digest");
    assert_eq!(d.count, 3);
    let counts: Vec<(State, u64)> = d.states.iter().map(|c| (c.state, c.count)).collect();
    assert_eq!(counts, [(State::Failed, 2), (State::Ok, 1)]);
    assert!(n.message.contains("3 alerts in"), "{}", n.message);

    s.record_attempt(ids[2], &Attempt::Delivered, now, Duration::ZERO)
        .unwrap();
    let c = s.outbox_counts().unwrap();
    assert_eq!((c.delivered, c.pending, c.sending), (3, 0, 0));
    let rows = s.outbox_rows(true, 10).unwrap();
    let folded: Vec<Option<i64>> = rows.iter().map(|r| r.folded_into).collect();
    assert_eq!(folded, [None, Some(ids[2]), Some(ids[2])]);
    assert!(
        rows[1]
            .last_reason
            .as_deref()
            .unwrap()
            .contains("digest of row")
    );
}

fn a_newer_alert_waits_while_an_older_one_for_the_same_channel_is_being_sent(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let first = finish(&mut s, &event("j", "r1", State::Failed, t0, 1), &["a"]);
    let lease = Duration::from_secs(30);
    let now = t0.add_millis(1_000);
    assert_eq!(s.claim_due(now, lease, "p1", None, 10).unwrap().len(), 1);
    let second = finish(
        &mut s,
        &event("j", "r2", State::Ok, t0.add_millis(10), 0),
        &["a"],
    );
    assert!(second.decision.notify);
    assert!(
        s.claim_due(now, lease, "p2", None, 10).unwrap().is_empty(),
        "no recovery overtakes the failure in flight"
    );
    s.record_attempt(
        first.outbox_ids[0],
        &Attempt::Delivered,
        now,
        Duration::ZERO,
    )
    .unwrap();
    let next = s.claim_due(now, lease, "p2", None, 10).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, second.outbox_ids[0]);
    assert!(next[0].notification.digest.is_none());
}

fn inside_the_digest_window_a_burst_waits_for_its_end_and_goes_out_once(db: &Db) {
    let mut s = db.open();
    s.set_digest_window(Duration::from_secs(5));
    let t0 = Timestamp::now();
    let first = finish(&mut s, &event("j", "r1", State::Failed, t0, 1), &["a"]);
    let lease = Duration::from_secs(30);
    assert_eq!(s.claim_due(t0, lease, "p", None, 10).unwrap().len(), 1);
    s.record_attempt(first.outbox_ids[0], &Attempt::Delivered, t0, Duration::ZERO)
        .unwrap();
    finish(
        &mut s,
        &event("j", "r2", State::Ok, t0.add_millis(10), 0),
        &["a"],
    );
    finish(
        &mut s,
        &event("j", "r3", State::Failed, t0.add_millis(20), 1),
        &["a"],
    );
    let in_window = t0.add_millis(1_000);
    assert!(
        s.claim_due(in_window, lease, "p", None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_due().unwrap(), Some(t0.add_millis(5_000)));
    assert!(
        s.claim_due(t0.add_millis(4_999), lease, "p", None, 10)
            .unwrap()
            .is_empty()
    );
    let out = s
        .claim_due(t0.add_millis(5_000), lease, "p", None, 10)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].notification.digest.as_ref().unwrap().count, 2);
    // Another job, or another channel, is not held by this one's window.
    finish(
        &mut s,
        &event("k", "r4", State::Failed, t0.add_millis(30), 1),
        &["a"],
    );
    assert_eq!(
        s.claim_due(t0.add_millis(5_001), lease, "p", None, 10)
            .unwrap()
            .len(),
        1
    );
}

fn a_lease_that_runs_out_counts_a_possible_duplicate_and_a_renewed_one_holds(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    finish(&mut s, &event("j", "r1", State::Failed, t0, 1), &["a", "b"]);
    let lease = Duration::from_secs(1);
    let held = s.claim_due(t0, lease, "p1", None, 10).unwrap();
    assert_eq!(held.len(), 2);
    // p1 renews "a" but not "b", then dies.
    assert_eq!(
        s.renew_leases("p1", &[held[0].id], t0.add_millis(10_000))
            .unwrap(),
        1
    );
    assert_eq!(
        s.renew_leases("p2", &[held[1].id], t0.add_millis(10_000))
            .unwrap(),
        0
    );
    let taken = s
        .claim_due(t0.add_millis(2_000), lease, "p2", None, 10)
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, held[1].id);
    assert_eq!(taken[0].attempts, 2);
    let c = s.outbox_counts().unwrap();
    assert_eq!((c.sending, c.possible_duplicates), (2, 1));
}

fn a_reclaimed_digest_counts_each_alert_it_carries_as_a_possible_duplicate(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    three_alerts(&mut s, t0);
    let lease = Duration::from_secs(1);
    let held = s.claim_due(t0, lease, "p1", None, 10).unwrap();
    assert_eq!(held.len(), 1, "the lane's three alerts go as one digest");
    assert_eq!(held[0].notification.digest.as_ref().unwrap().count, 3);
    // p1 dies after sending it; p2 takes the digest over once the lease has run out.
    let taken = s
        .claim_due(t0.add_millis(2_000), lease, "p2", None, 10)
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, held[0].id);
    let c = s.outbox_counts().unwrap();
    assert_eq!(
        c.possible_duplicates, 3,
        "the message may have gone out twice, and it told of three alerts: {c:?}"
    );
}

fn a_dead_digest_takes_its_folded_rows_with_it_and_a_retry_revives_them_all(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let ids = three_alerts(&mut s, t0);
    let now = Timestamp::now();
    let claimed = s
        .claim_due(now, Duration::from_secs(30), "p", None, 10)
        .unwrap();
    s.record_attempt(
        claimed[0].id,
        &Attempt::Permanent {
            reason: "HTTP 401: bad token".into(),
        },
        now,
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(s.outbox_counts().unwrap().dead, 3);
    let (_, reason, _) = s.outbox_row_status(ids[0]).unwrap().unwrap();
    assert!(reason.unwrap().contains("bad token"));
    assert_eq!(
        s.retry_outbox(None, now, Duration::from_secs(60)).unwrap(),
        ids
    );
    let again = s
        .claim_due(now, Duration::from_secs(30), "p", None, 10)
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].notification.digest.as_ref().unwrap().count, 3);
}

fn a_row_that_dies_again_after_a_retry_says_why_once(db: &Db) {
    let mut s = db.open();
    s.set_delivery_deadline(Duration::from_secs(3600));
    let t0 = Timestamp::now();
    let id = finish(&mut s, &event("j", "r1", State::Failed, t0, 1), &["a"]).outbox_ids[0];
    let hour = |n: i64| t0.add_millis(n * 3_600_000);
    let lease = Duration::from_secs(30);
    let claimed = s.claim_due(t0, lease, "p", None, 10).unwrap();
    let retry = Attempt::Retry {
        at: t0.add_millis(1000),
        reason: "HTTP 500".into(),
    };
    s.record_attempt(claimed[0].id, &retry, t0, Duration::ZERO)
        .unwrap();
    let reason = |s: &Store| s.outbox_row_status(id).unwrap().unwrap();
    // Nobody delivered before the deadline: dead, with the last failure and the deadline.
    assert!(
        s.claim_due(hour(2), lease, "p", None, 10)
            .unwrap()
            .is_empty()
    );
    let dead = (
        "dead".to_owned(),
        Some("HTTP 500; delivery deadline passed".to_owned()),
        1,
    );
    assert_eq!(reason(&s), dead);
    // Revived, it is pending with its last attempt's reason, not the note of its death...
    assert_eq!(s.retry_outbox(None, hour(2), Duration::ZERO).unwrap(), [id]);
    assert_eq!(
        reason(&s),
        ("pending".to_owned(), Some("HTTP 500".to_owned()), 1)
    );
    // ...so when it dies again, it says so once.
    assert!(
        s.claim_due(hour(3), lease, "p", None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(reason(&s), dead);
    // Rows that are not there, or delivered, are not revived.
    assert!(
        s.retry_outbox(Some(&[999]), hour(3), Duration::ZERO)
            .unwrap()
            .is_empty()
    );
}

fn a_notification_made_outside_the_rules_is_queued_and_can_restart_the_repeat_window(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let policy = Policy::default();
    let first = Event {
        job: "lib::load".into(),
        state: State::Failed,
        at: t0,
        details: Details::default(),
    };
    assert!(
        s.record_event(&first, &policy, to(&["hook"]))
            .unwrap()
            .decision
            .notify
    );

    // A digest 1.5 s later (the library's count of what the rules held back).
    let digest_event = Event {
        at: t0.add_millis(1500),
        ..first.clone()
    };
    let snap = s.snapshot("lib::load").unwrap();
    let decision = belfry_core::Decision {
        notify: true,
        reason: belfry_core::Reason::Repeated {
            count: 1,
            since_last: Duration::from_millis(1500),
        },
    };
    let n = belfry_core::Notification::new(
        belfry_store::new_id(),
        &digest_event,
        snap.as_ref(),
        &decision,
    );
    let ids = s
        .record_notification(&n, vec!["hook".into(), "hook".into()], true)
        .unwrap();
    assert_eq!(ids.len(), 1);
    let claimed = s
        .claim_due(
            t0.add_millis(1500),
            Duration::from_secs(30),
            "me",
            Some(&ids),
            10,
        )
        .unwrap();
    // The first failure's row was still waiting for the same channel: it travels inside
    // this one, counted.
    assert_eq!(claimed[0].id, ids[0]);
    let sent = &claimed[0].notification;
    assert_eq!((&sent.id, &sent.title), (&n.id, &n.title));
    assert_eq!(sent.digest.as_ref().map(|g| g.count), Some(2));

    // The window restarted at the digest: a failure 0.8 s after it stays quiet, though it
    // is 2.3 s after the rules' own last message.
    let again = Event {
        at: t0.add_millis(2300),
        ..first.clone()
    };
    let rec = s.record_event(&again, &policy, to(&["hook"])).unwrap();
    assert!(!rec.decision.notify, "{:?}", rec.decision);
    assert_eq!(
        s.snapshot("lib::load").unwrap().unwrap().last_notified_at,
        Some(t0.add_millis(1500))
    );

    // A summary does not touch the window, nor create a job.
    let summary = belfry_core::Notification::summary_message(
        belfry_store::new_id(),
        "nightly",
        "done".into(),
        "ok".into(),
        t0.add_millis(2400),
        Vec::new(),
    );
    assert_eq!(
        s.record_notification(&summary, vec!["hook".into()], true)
            .unwrap()
            .len(),
        1
    );
    assert!(s.job("nightly").unwrap().is_none());
}

fn a_ping_for_a_pinger_is_queued_but_is_not_the_jobs_last_notification(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    let ev = event("pinged", "r1", State::Failed, t0, 1);
    let rec = finish(&mut s, &ev, &["hook"]);
    let alert = rec.notification.unwrap();
    // `belfry run`'s finish ping, written after the run's alert and dated after it.
    let later = Event {
        at: t0.add_millis(5),
        ..ev.clone()
    };
    let decision = belfry_core::decide(None, &later.state, later.at, &Policy::default());
    let mut ping = belfry_core::Notification::new(belfry_store::new_id(), &later, None, &decision);
    ping.reason = "ping".into();
    let ids = s
        .record_notification(&ping, vec!["ping:1".into()], false)
        .unwrap();
    assert_eq!(ids.len(), 1);
    let last = s.job("pinged").unwrap().unwrap().last_notification.unwrap();
    assert_eq!(
        (last.at, last.reason.as_str()),
        (alert.time, alert.reason.as_str())
    );
}

fn an_in_order_lane_sends_every_end_and_folds_only_starts(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now();
    // A pinger's rows, as `belfry run` makes them after an outage: two runs, each a start
    // and an end, none sent yet.
    let ping = |s: &mut Store, state: State, at: i64| -> i64 {
        let ev = event("pj", &format!("r{at}"), state, t0.add_millis(at), 0);
        let d = belfry_core::decide(None, &state, ev.at, &Policy::default());
        let mut n = belfry_core::Notification::new(belfry_store::new_id(), &ev, None, &d);
        n.reason = "ping".into();
        s.record_notification(&n, vec!["ping:1".into()], false)
            .unwrap()[0]
    };
    let start1 = ping(&mut s, State::Running, 0);
    let end1 = ping(&mut s, State::Failed, 10);
    let start2 = ping(&mut s, State::Running, 20);
    let end2 = ping(&mut s, State::Ok, 30);
    let order = ["ping:1".to_owned()];
    let now = t0.add_millis(100);
    let claim = |s: &mut Store| -> Vec<i64> {
        let c = belfry_store::Claim {
            owner: "o",
            lease: Duration::from_secs(30),
            ids: None,
            limit: 10,
            digest_window: Duration::ZERO,
            window_exempt: &[],
            in_order: &order,
        };
        let ids: Vec<i64> = (**s)
            .claim_due(now, &c)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        let done: Vec<_> = ids
            .iter()
            .map(|&id| (id, Attempt::Delivered, Duration::from_millis(1)))
            .collect();
        s.record_attempts(&done, now).unwrap();
        ids
    };
    assert_eq!(
        claim(&mut s),
        [end1],
        "the first run's end, its start folded into it"
    );
    assert_eq!(
        claim(&mut s),
        [end2],
        "then the second's: the failure was not skipped"
    );
    assert!(claim(&mut s).is_empty());
    let folded = |id: i64| s.outbox_rows_by_id(&[id]).unwrap()[0].folded_into;
    assert_eq!((folded(start1), folded(start2)), (Some(end1), Some(end2)));
}

fn an_alert_that_reached_no_channel_is_recorded_as_sent_nowhere(db: &Db) {
    let mut s = db.open();
    let ev = event("other", "r1", State::Failed, Timestamp::now(), 1);
    let rec = finish(&mut s, &ev, &[]);
    assert!(rec.decision.notify && rec.outbox_ids.is_empty());
    let n = rec.notification.unwrap();
    // Twice: a second mark changes nothing.
    for _ in 0..2 {
        s.mark_unrouted("r1", &n.id).unwrap();
        let run = &s.runs("other", 10, false).unwrap()[0];
        assert!(!run.notified);
        assert_eq!(run.reason.as_deref(), Some("no_channel"));
        assert_eq!(
            run.reason_text.as_deref(),
            Some("first run of this job; no channel takes it")
        );
    }
    // The notification log holds only what went somewhere.
    assert_eq!(s.job("other").unwrap().unwrap().last_notification, None);
    // The rules remember the alert as made: the next failure is inside the repeat window.
    let next = event(
        "other",
        "r2",
        State::Failed,
        Timestamp::now().add_millis(1),
        1,
    );
    assert!(!finish(&mut s, &next, &[]).decision.notify);
}

fn a_run_committed_after_a_message_that_ended_before_it_is_told_once_by_the_next(db: &Db) {
    // Runs that end in one order and commit in another, as under `xargs -P 16`: two processes
    // (two connections to one file) race for the write lock after their jobs end. The times
    // are milliseconds after t0, the rules the defaults (reminders after 1 s).
    let mut procs = [db.open(), db.open()];
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let p = Policy::default();
    let runs: [(i64, State); 8] = [
        (0, State::Failed),    // the first run: told
        (1500, State::Failed), // 1.5 s after that message: a reminder
        (1400, State::Failed), // ended before the reminder, committed after it: held back
        (1800, State::Failed), // 0.3 s after the reminder: held back
        (1700, State::Ok),     // the recovery ends both held-back failures
        (1750, State::Failed), // was OK, now a problem
        (3000, State::Failed), // a reminder: nothing was held back since the problem
        (3100, State::Ok),     // the recovery: nothing was held back
    ];
    for (i, _) in runs.iter().enumerate() {
        procs[i % 2]
            .start_run(&RunStart {
                id: format!("r{i}"),
                job: "j".into(),
                started: t0.add_millis(-1000),
                host: Some("h".into()),
                pid: Some(1),
                boot_id: None,
            })
            .unwrap();
    }
    let told: Vec<(String, u64)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, &(at, state))| {
            end_run(
                &mut procs[i % 2],
                &format!("r{i}"),
                state,
                t0.add_millis(at),
                &p,
            )
        })
        .collect();
    let told: Vec<(&str, u64)> = told.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(
        told,
        [
            ("first_run", 1),
            ("repeated", 1),
            ("recovered", 2),
            ("problem", 1),
            ("repeated", 1),
            ("recovered", 0),
        ]
    );
}

fn over_all_messages_the_problems_told_add_up_to_the_problem_runs_in_any_commit_order(db: &Db) {
    // Runs end about every 100 ms but commit up to 0.8 s out of the order of their ends; a
    // closing OK run ends the last streak. The problems the messages tell must be exactly the
    // problem runs of the streaks the rules announced (with fail_threshold, a streak that
    // ends below it is never told), streaks taken in commit order, as the rules see them.
    let policies = [
        Policy::default(),
        Policy {
            repeat_failures_after: Duration::from_millis(300),
            ok_heartbeat_after: Some(Duration::from_millis(500)),
            fail_threshold: 1,
        },
        Policy {
            fail_threshold: 3,
            ..Policy::default()
        },
    ];
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    for (k, policy) in policies.iter().enumerate() {
        for seed in 0..12u64 {
            let db = db.another();
            let mut procs = [db.open(), db.open()];
            let mut rng = Lcg(seed * 7919 + k as u64);
            let (mut told, mut expected) = (0u64, 0u64);
            let (mut streak, mut announced) = (0u64, false);
            let mut last = 0;
            for i in 0..41i64 {
                let (state, at) = if i == 40 {
                    (State::Ok, last + 5000)
                } else {
                    let state = match rng.below(10) {
                        0..=3 => State::Failed,
                        4 => State::Cancelled,
                        _ => State::Ok,
                    };
                    (state, i * 100 + rng.below(800) as i64)
                };
                last = last.max(at);
                let run = format!("r{i}");
                let p = &mut procs[rng.below(2) as usize];
                if let Some((_, n)) = end_run(p, &run, state, t0.add_millis(at), policy) {
                    told += n;
                }
                // The rules' streaks, in commit order.
                if state.is_problem() {
                    streak += 1;
                    announced |= streak >= u64::from(policy.fail_threshold);
                } else if state == State::Ok {
                    if announced {
                        expected += streak;
                    }
                    (streak, announced) = (0, false);
                }
            }
            assert_eq!(told, expected, "policy {k}, seed {seed}");
        }
    }
}

fn a_job_that_alerts_every_run_keeps_a_bounded_store_and_every_undelivered_row(db: &Db) {
    let mut s = db.open();
    s.set_retention(Retention {
        runs_per_job: 10,
        notifications_per_job: 5,
    });
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let lease = Duration::from_secs(30);
    let mut undelivered = Vec::new();
    for i in 0..400 {
        // Two seconds apart: past `repeat_failures_after`, so every run alerts.
        let at = t0.add_millis(i * 2_000);
        let ev = event("loud", &format!("r{i}"), State::Failed, at, 1);
        // Runs 5 to 8 also go to a channel nobody sends to: those rows stay pending.
        let slow = (5..=8).contains(&i);
        let rec = finish(&mut s, &ev, if slow { &["c", "slow"] } else { &["c"] });
        assert_eq!(rec.outbox_ids.len(), if slow { 2 } else { 1 }, "run {i}");
        if slow {
            undelivered.push(rec.outbox_ids[1]);
        }
        let claimed = s
            .claim_due(at, lease, "p", Some(&rec.outbox_ids[..1]), 10)
            .unwrap();
        assert_eq!(claimed.len(), 1, "run {i}");
        s.record_attempt(claimed[0].id, &Attempt::Delivered, at, Duration::ZERO)
            .unwrap();
    }
    drop(s);
    let runs = db.count("SELECT COUNT(*) FROM runs");
    assert!((10..10 + 64).contains(&runs), "{runs} runs kept");
    let notes = db.count("SELECT COUNT(*) FROM notifications");
    assert!(
        (5..5 + 64 + 4).contains(&notes),
        "{notes} notifications kept"
    );
    let rows = db.count("SELECT COUNT(*) FROM outbox");
    assert!(rows < 5 + 64 + 8, "{rows} outbox rows kept");
    let attempts = db.count("SELECT COUNT(*) FROM attempts");
    assert!(attempts < 5 + 64 + 8, "{attempts} attempts kept");
    // Nothing undelivered went, nor what it needs: its notification (the foreign key holds
    // the rest: no row or attempt outlives what it belongs to).
    for id in undelivered {
        let pending = db.count(&format!(
            "SELECT COUNT(*) FROM outbox o JOIN notifications n ON n.id = o.notification_id
                 WHERE o.id = {id} AND o.status = 'pending'"
        ));
        assert_eq!(pending, 1, "row {id}");
    }
    assert_eq!(db.dangling_references(), 0);
    // The newest is what `status` shows.
    let s = db.open();
    let job = s.job("loud").unwrap().unwrap();
    let last = job.last_notification.unwrap();
    assert_eq!(last.at, t0.add_millis(399 * 2_000));
}

fn jobs_are_listed_problems_first_then_the_others_each_by_name(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    for (job, state) in [
        ("a-ok", State::Ok),
        ("b-failed", State::Failed),
        ("d-crashed", State::Crashed),
        ("e-cancelled", State::Cancelled),
    ] {
        finish(&mut s, &event(job, job, state, t0, 0), &["c"]);
    }
    s.start_run(&RunStart {
        id: "c".into(),
        job: "c-running".into(),
        started: t0,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    let names = |v: Vec<belfry_store::JobRow>| v.into_iter().map(|j| j.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.jobs().unwrap()),
        ["b-failed", "d-crashed", "a-ok", "c-running", "e-cancelled"]
    );
    let mut problems = Vec::new();
    s.each_job(true, |j| {
        problems.push(j.owned());
        Ok::<_, belfry_store::Error>(())
    })
    .unwrap();
    assert_eq!(names(problems), ["b-failed", "d-crashed"]);
    assert_eq!(s.longest_job_name(true).unwrap(), "d-crashed".len());
    assert_eq!(s.longest_job_name(false).unwrap(), "e-cancelled".len());
}

fn runs_held_back_are_counted_even_when_the_history_no_longer_keeps_them(db: &Db) {
    let mut s = db.open();
    s.set_retention(Retention {
        runs_per_job: 10,
        notifications_per_job: 5,
    });
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    // A failure told, then 300 more inside the repeat window (1 s): held back, while the
    // history keeps only about the last ten runs.
    for i in 0..=300 {
        let ev = event("busy", &format!("r{i}"), State::Failed, t0.add_millis(i), 1);
        let rec = finish(&mut s, &ev, &["a"]);
        assert_eq!(rec.decision.notify, i == 0, "run {i}");
    }
    assert!(db.count("SELECT COUNT(*) FROM runs") < 10 + 64);
    let ok = event("busy", "end", State::Ok, t0.add_millis(400), 0);
    let n = finish(&mut s, &ok, &["a"])
        .notification
        .expect("a recovery");
    assert_eq!(n.reason, "recovered");
    assert_eq!(problems_told(&n), 300);
    assert_eq!(
        n.digest.map(|d| (d.count, d.first)),
        Some((301, t0.add_millis(1)))
    );
}

fn a_jobs_unreadable_held_runs_are_an_error_that_says_so(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    finish(&mut s, &event("j", "r1", State::Failed, t0, 1), &["a"]);
    finish(
        &mut s,
        &event("j", "r2", State::Failed, t0.add_millis(1), 1),
        &["a"],
    );
    let held = db.text("SELECT held FROM jobs WHERE name = 'j'");
    assert!(held.contains(r#""count":1"#), "{held}");
    db.execute("UPDATE jobs SET held = '{\"ok\": 3}' WHERE name = 'j'");
    let err = s.snapshot("j").unwrap_err().to_string();
    assert!(
        err.contains("jobs.held")
            && err.contains("\"j\"")
            && err.contains(&db.location().to_string()),
        "{err}"
    );
    let ev = event("j", "r3", State::Failed, t0.add_millis(2), 1);
    let end = RunEnd {
        event: &ev,
        output: None,
        output_bytes: 0,
    };
    assert!(s.finish_run(&end, &Policy::default(), to(&["a"])).is_err());
}

on_both_backends!(
    a_run_and_its_alert_are_recorded_together,
    a_duration_longer_than_milliseconds_can_count_is_kept_as_the_longest_not_wrapped,
    the_rules_see_what_the_store_remembers_across_reopening,
    forty_concurrent_writers_lose_no_run_and_never_see_a_locked_database,
    outbox_rows_are_claimed_once_and_follow_their_outcomes,
    a_reclaimed_digest_counts_each_alert_it_carries_as_a_possible_duplicate,
    a_crashed_holders_lease_expires_and_the_row_is_claimed_again,
    rows_past_their_deadline_are_dead_not_sent,
    an_event_without_a_run_applies_the_rules_and_leaves_the_last_run_alone,
    collapsed_events_count_as_that_many_problems_in_a_row,
    an_abandoned_run_is_recorded_once_however_many_notice_it,
    a_backlog_for_one_job_and_channel_goes_out_as_its_latest_state_with_exact_counts,
    a_newer_alert_waits_while_an_older_one_for_the_same_channel_is_being_sent,
    inside_the_digest_window_a_burst_waits_for_its_end_and_goes_out_once,
    a_lease_that_runs_out_counts_a_possible_duplicate_and_a_renewed_one_holds,
    a_dead_digest_takes_its_folded_rows_with_it_and_a_retry_revives_them_all,
    a_row_that_dies_again_after_a_retry_says_why_once,
    a_notification_made_outside_the_rules_is_queued_and_can_restart_the_repeat_window,
    an_alert_that_reached_no_channel_is_recorded_as_sent_nowhere,
    a_ping_for_a_pinger_is_queued_but_is_not_the_jobs_last_notification,
    an_in_order_lane_sends_every_end_and_folds_only_starts,
    a_run_committed_after_a_message_that_ended_before_it_is_told_once_by_the_next,
    over_all_messages_the_problems_told_add_up_to_the_problem_runs_in_any_commit_order,
    a_job_that_alerts_every_run_keeps_a_bounded_store_and_every_undelivered_row,
    jobs_are_listed_problems_first_then_the_others_each_by_name,
    runs_held_back_are_counted_even_when_the_history_no_longer_keeps_them,
    a_jobs_unreadable_held_runs_are_an_error_that_says_so,
);
