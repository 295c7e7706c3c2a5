//! Copying a whole store into another (`belfry store migrate`): every row, once.

use std::time::Duration;

use belfry_core::{Details, Event, Notification, Policy, State, Timestamp};
use belfry_store::{Attempt, Claim, Limits, RunEnd, RunStart, Store};

fn claim(s: &mut Store, now: Timestamp, owner: &str) -> Vec<belfry_store::Claimed> {
    s.claim_due(
        now,
        &Claim {
            owner,
            lease: Duration::from_secs(30),
            ids: None,
            limit: 100,
            digest_window: Duration::ZERO,
            window_exempt: &[],
        },
    )
    .unwrap()
}

fn finish(s: &mut Store, job: &str, run: &str, state: State, at: Timestamp, output: &str) {
    let ev = Event {
        job: job.into(),
        state,
        at,
        details: Details {
            run_id: Some(run.into()),
            started_at: Some(at.add_millis(-250)),
            exit_code: Some(i32::from(state != State::Ok)),
            duration: Some(Duration::from_millis(250)),
            host: Some("h".into()),
            error: (state != State::Ok).then(|| format!("{job} broke")),
            ..Details::default()
        },
    };
    s.finish_run(
        &RunEnd {
            event: &ev,
            output: Some(output),
            output_bytes: output.len() as u64,
        },
        &Policy::default(),
        |_, _| vec!["a".to_owned(), "b".to_owned()],
        &Limits::default(),
    )
    .unwrap();
}

/// A store with some of everything: jobs OK and failing, a run still going, output short and
/// long, outbox rows pending, delivered, dead and folded into another, and their attempts.
fn filled(s: &mut Store, t0: Timestamp) {
    let long = "a line of output that repeats\n".repeat(400);
    finish(s, "backup", "r1", State::Failed, t0, "disk full\n");
    finish(s, "report", "r2", State::Ok, t0.add_millis(10), &long);
    let sent = claim(s, t0.add_millis(20), "p");
    assert_eq!(sent.len(), 4);
    let outcomes: Vec<_> = sent
        .iter()
        .map(|c| {
            let a = match (c.notification.job.as_str(), c.channel.as_str()) {
                ("backup", "a") => Attempt::Permanent {
                    reason: "HTTP 400".into(),
                },
                ("backup", "b") => Attempt::Retry {
                    at: t0.add_millis(60_000),
                    reason: "HTTP 503".into(),
                },
                _ => Attempt::Delivered,
            };
            (c.id, a, Duration::from_millis(3))
        })
        .collect();
    s.record_attempts(&outcomes, t0.add_millis(30)).unwrap();
    // A reminder of `backup`'s failure while its row for `b` waits: the two fold when claimed.
    finish(
        s,
        "backup",
        "r3",
        State::Failed,
        t0.add_millis(5_000),
        "disk full again\n",
    );
    s.start_run(&RunStart {
        id: "r4".into(),
        job: "nightly".into(),
        started: t0.add_millis(50),
        host: Some("h".into()),
        pid: Some(4242),
        boot_id: Some("boot".into()),
    })
    .unwrap();
    let n = Notification::new(
        "summary-1".into(),
        &Event {
            job: "report".into(),
            state: State::Ok,
            at: t0.add_millis(60),
            details: Details::default(),
        },
        None,
        &belfry_core::decide(None, &State::Ok, t0.add_millis(60), &Policy::default()),
    );
    s.record_notification(&n, vec!["a".into()], false, &Limits::default())
        .unwrap();
}

#[test]
fn a_copy_holds_every_row_and_a_second_copy_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Timestamp::now().add_millis(-120_000);
    let mut from = Store::open(dir.path().join("from.db")).unwrap();
    filled(&mut from, t0);
    let mut to = Store::open(dir.path().join("to.db")).unwrap();

    let copied = from.copy_into(&mut to).unwrap();
    assert_eq!(
        (
            copied.jobs,
            copied.runs,
            copied.notifications,
            copied.attempts
        ),
        (3, 4, 4, 4),
        "{copied:?}"
    );
    let counts = from.outbox_counts().unwrap();
    assert_eq!(copied.pending, counts.pending + counts.sending);
    assert_eq!(copied.delivered, counts.delivered);
    assert_eq!(copied.dead, counts.dead);
    assert_eq!(copied.already_there, 0);

    // What every command reads is the same on both sides.
    assert_eq!(to.jobs().unwrap(), from.jobs().unwrap());
    for job in ["backup", "report", "nightly"] {
        assert_eq!(
            to.runs(job, 10, true).unwrap(),
            from.runs(job, 10, true).unwrap()
        );
        assert_eq!(to.snapshot(job).unwrap(), from.snapshot(job).unwrap());
    }
    assert_eq!(
        to.outbox_rows(true, 100).unwrap(),
        from.outbox_rows(true, 100).unwrap()
    );
    assert_eq!(to.outbox_counts().unwrap(), counts);
    assert_eq!(to.running_runs().unwrap(), from.running_runs().unwrap());
    let long = to
        .runs("report", 1, true)
        .unwrap()
        .remove(0)
        .output
        .unwrap();
    assert_eq!(long.len(), 12_000, "a long output is copied whole");

    // Again: nothing is written twice.
    let again = from.copy_into(&mut to).unwrap();
    assert!(again.is_empty(), "{again:?}");
    let rows = to.outbox_rows(true, 100).unwrap().len() as u64;
    assert_eq!(again.already_there, 3 + 4 + 4 + rows + 4);
    assert!(again.to_string().contains("already there"), "{again}");

    // The copy goes on where the original was: the folded rows of `backup` for `b` go out as
    // one message counting both failures, the rules remember the streak.
    let later = Timestamp::now().add_millis(120_000);
    let due = claim(&mut to, later, "q");
    let b = due
        .iter()
        .find(|c| c.notification.job == "backup" && c.channel == "b")
        .expect("backup's row for b is due in the copy");
    assert_eq!(
        b.notification.consecutive_problems, 2,
        "{:?}",
        b.notification
    );
    assert_eq!(due.len(), claim(&mut from, later, "q").len());
}

#[test]
fn a_copy_into_a_store_with_other_rows_is_refused_and_changes_nothing_there() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Timestamp::now().add_millis(-120_000);
    let mut from = Store::open(dir.path().join("from.db")).unwrap();
    filled(&mut from, t0);
    let mut to = Store::open(dir.path().join("to.db")).unwrap();
    finish(&mut to, "other", "o1", State::Failed, t0, "");
    let before = to.outbox_rows(true, 100).unwrap();

    let err = from.copy_into(&mut to).unwrap_err().to_string();
    assert!(err.contains("another store's rows"), "{err}");
    assert!(err.contains("to.db"), "{err}");
    assert_eq!(to.outbox_rows(true, 100).unwrap(), before);
    assert_eq!(
        to.jobs().unwrap().len(),
        1,
        "the failed batch left nothing behind"
    );
}
