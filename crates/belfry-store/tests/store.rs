//! The store's guarantees, against real SQLite files.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Attempt, RunEnd, RunStart, Store};

fn event(job: &str, run: &str, state: State, at: Timestamp, code: i32) -> Event {
    Event {
        job: job.into(),
        state,
        at,
        details: Details {
            run_id: Some(run.into()),
            started_at: Some(at.add_millis(-100)),
            exit_code: Some(code),
            duration: Some(Duration::from_millis(100)),
            host: Some("h".into()),
            ..Details::default()
        },
    }
}

/// Records `ev` as a finished run without output, with the default policy, to `channels`.
fn finish(s: &mut Store, ev: &Event, channels: &[&str]) -> belfry_store::Recorded {
    s.finish_run(
        &RunEnd {
            event: ev,
            output: None,
            output_bytes: 0,
        },
        &Policy::default(),
        to(channels),
    )
    .unwrap()
}

fn to(channels: &[&str]) -> impl FnOnce(&State, bool) -> Vec<String> {
    let v: Vec<String> = channels.iter().map(|s| s.to_string()).collect();
    move |_, _| v
}

#[test]
fn a_run_and_its_alert_are_recorded_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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

#[test]
fn the_rules_see_what_the_store_remembers_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
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
        let mut s = Store::open(&path).unwrap();
        let ev = event("j", &format!("r{i}"), st, t0.add_millis(at), 0);
        let rec = finish(&mut s, &ev, &["c"]);
        assert_eq!(rec.decision.notify, notify, "step {i}: {:?}", rec.decision);
    }
    let s = Store::open(&path).unwrap();
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

#[test]
fn forty_concurrent_writers_lose_no_run_and_never_see_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("b.db"));
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Open inside the thread: forty connections racing to create and migrate.
                let mut s = Store::open(&path).expect("open");
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
    let s = Store::open(&path).unwrap();
    let runs = s.runs("same-job", 100, false).unwrap();
    assert_eq!(runs.len(), n);
    assert!(runs.iter().all(|r| r.state != State::Running));
}

#[test]
fn outbox_rows_are_claimed_once_and_follow_their_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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

#[test]
fn a_crashed_holders_lease_expires_and_the_row_is_claimed_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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

#[test]
fn rows_past_their_deadline_are_dead_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let junk = b"this is not a database, it is somebody's notes\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    assert!(err.to_string().contains("b.db"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn a_store_from_a_newer_belfry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    drop(Store::open(&path).unwrap());
    {
        let conn = rusqlite_raw(&path);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("version 99") && err.contains("newer"), "{err}");
}

#[test]
fn the_schema_is_versioned_from_the_first_release() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("b.db")).unwrap();
    assert_eq!(s.schema_version().unwrap(), 1);
}

fn rusqlite_raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn an_event_without_a_run_applies_the_rules_and_leaves_the_last_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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

#[test]
fn many_short_lived_processes_do_not_grow_the_wal() {
    // Each `belfry run` of a short job opens the store, writes once (the job was over before
    // the store was open, so there is no start to record), and closes it. A WAL that is never
    // reset grows with every run and makes every later open slower: it must stay small.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    for i in 0..300 {
        let mut s = Store::open(&path).unwrap();
        let id = format!("r{i}");
        let ev = event("j", &id, State::Ok, t0.add_millis(i * 1000 + 10), 0);
        s.finish_run(
            &RunEnd {
                event: &ev,
                output: Some("some output\n"),
                output_bytes: 12,
            },
            &Policy::default(),
            to(&["c"]),
        )
        .unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("b.db-wal")).map_or(0, |m| m.len());
    assert!(
        wal < belfry_store::WAL_TRIM_BYTES + 128 * 1024,
        "the WAL grew to {wal} bytes"
    );
}

#[test]
fn an_abandoned_run_is_recorded_once_however_many_notice_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let mut s = Store::open(&path).unwrap();
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
    let mut other = Store::open(&path).unwrap();
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

#[test]
fn a_notification_made_outside_the_rules_is_queued_and_can_restart_the_repeat_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
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
    assert_eq!(claimed[0].notification, n);

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
