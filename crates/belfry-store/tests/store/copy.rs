//! Copying a store into one of the other kind (`Store::copy_into`): a host's SQLite file into
//! the fleet's PostgreSQL schema, and back. Every row arrives once, and the copy goes on where
//! the original was.

use std::time::Duration;

use belfry_core::{Details, Event, Notification, Policy, State, Timestamp};
use belfry_store::{Attempt, RunStart};

use crate::support::*;

/// Some of everything: jobs OK and failing, a run still going, outbox rows pending, delivered,
/// dead and folded, their attempts, a notification made outside the rules.
fn filled(s: &mut Store, t0: Timestamp) {
    let long = "a line of output that repeats\n".repeat(400);
    let failed = event("backup", "r1", State::Failed, t0, 1);
    finish(s, &failed, &["a", "b"]);
    let ok = event("report", "r2", State::Ok, t0.add_millis(10), 0);
    s.finish_run(
        &belfry_store::RunEnd {
            event: &ok,
            output: Some(&long),
            output_bytes: long.len() as u64,
        },
        &Policy::default(),
        to(&["a", "b"]),
    )
    .unwrap();
    let sent = s
        .claim_due(t0.add_millis(20), Duration::from_secs(30), "p", None, 100)
        .unwrap();
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
    finish(
        s,
        &event("backup", "r3", State::Failed, t0.add_millis(5_000), 1),
        &["a", "b"],
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
    let ev = Event {
        job: "report".into(),
        state: State::Ok,
        at: t0.add_millis(60),
        details: Details::default(),
    };
    let decision = belfry_core::decide(None, &State::Ok, ev.at, &Policy::default());
    let n = Notification::new("summary-1".into(), &ev, None, &decision);
    s.record_notification(&n, vec!["a".into()], false).unwrap();
    // Checks: a schedule, a pause, kept pings.
    let expect = belfry_core::Expect::new(
        belfry_core::Schedule::period(Duration::from_secs(60)).unwrap(),
        Duration::from_secs(5),
        Some(Duration::from_secs(600)),
    )
    .unwrap();
    s.set_expect("nightly", Some(&expect), t0.add_millis(70))
        .unwrap();
    s.set_expect("backup", Some(&expect), t0.add_millis(70))
        .unwrap();
    s.set_paused("backup", true, t0.add_millis(80)).unwrap();
    let log = |at: i64, body: &'static [u8]| belfry_store::Ping {
        job: belfry_store::JobRef::Name("report"),
        kind: belfry_store::PingKind::Log,
        rid: None,
        at: t0.add_millis(at),
        body,
        create: false,
        remote: Some("10.0.0.1"),
        method: "POST",
        user_agent: None,
    };
    s.record_pings(&[log(90, b"one"), log(91, b"")], &NoRules)
        .unwrap();
    let meta = belfry_store::CheckMeta {
        title: "Daily report".into(),
        tags: vec!["team-a".into()],
        desc: String::new(),
    };
    let change = belfry_store::CheckChange {
        expect: None,
        meta: Some(&meta),
    };
    s.save_check("report", &change, t0.add_millis(95)).unwrap();
    // Silences and an acknowledgement: one silence in force on "report", one ended early,
    // a failure of "report" held back by the first, "backup"'s problem acknowledged.
    let report = belfry_core::Scope::Job("report".into());
    let team = belfry_core::Scope::Tag("team-b".into());
    let until = Timestamp::now().add_millis(3_600_000);
    let silence = |scope, reason| belfry_store::NewSilence {
        scope,
        until,
        reason,
        by: "ops",
    };
    s.add_silence(&silence(&report, "moving the disk"), t0.add_millis(100))
        .unwrap();
    let ended = s
        .add_silence(&silence(&team, "done early"), t0.add_millis(101))
        .unwrap();
    assert!(s.end_silence(ended.id, t0.add_millis(102)).unwrap());
    finish(
        s,
        &event("report", "r5", State::Failed, t0.add_millis(110), 1),
        &["a"],
    );
    assert_eq!(
        s.acknowledge("backup", "alice", t0.add_millis(120))
            .unwrap(),
        belfry_store::Acked::Done
    );
}

/// Rules for pings that never reach them (log pings).
struct NoRules;

impl belfry_store::RuleBook for NoRules {
    fn policy(&self, _job: &str) -> Policy {
        Policy::default()
    }
    fn route(&self, _job: &str, _state: &State, _recovered: bool) -> Vec<String> {
        Vec::new()
    }
    fn limits(&self) -> belfry_store::Limits {
        belfry_store::Limits::default()
    }
}

/// Fills `from`, copies it into `to`, and checks that both read the same, that a second copy
/// adds nothing, and that the copy goes on: new rows get new ids, due rows are claimed alike.
fn copy_and_compare(from_db: &Db, to_db: &Db) {
    let t0 = Timestamp::now().add_millis(-120_000);
    let mut from = from_db.open();
    filled(&mut from, t0);
    let mut to = to_db.open();
    let copied = from.copy_into(&mut to).unwrap();
    assert_eq!(
        (
            copied.jobs,
            copied.runs,
            copied.notifications,
            copied.attempts
        ),
        (3, 5, 5, 4),
        "{copied:?}"
    );
    assert_eq!((copied.pings, copied.silences), (2, 2), "{copied:?}");
    let now = Timestamp::now();
    assert_eq!(to.silences(now).unwrap(), from.silences(now).unwrap());
    assert_eq!(
        to.silences(now).unwrap().len(),
        1,
        "the ended one is not in force"
    );
    let counts = from.outbox_counts().unwrap();
    assert_eq!(to.outbox_counts().unwrap(), counts);
    assert_eq!(to.jobs().unwrap(), from.jobs().unwrap());
    for job in ["backup", "report", "nightly"] {
        assert_eq!(
            to.runs(job, 10, true).unwrap(),
            from.runs(job, 10, true).unwrap()
        );
        assert_eq!(to.snapshot(job).unwrap(), from.snapshot(job).unwrap());
        let check = |s: &Store| s.check(belfry_store::JobRef::Name(job)).unwrap();
        assert_eq!(check(&to), check(&from));
        assert_eq!(to.pings(job, 10).unwrap(), from.pings(job, 10).unwrap());
        assert_eq!(to.flips(job, 10).unwrap(), from.flips(job, 10).unwrap());
        assert_eq!(
            to.notifications(job, 10).unwrap(),
            from.notifications(job, 10).unwrap()
        );
    }
    let check = |job| to.check(belfry_store::JobRef::Name(job)).unwrap().unwrap();
    assert_eq!(
        check("backup").acked,
        Some((t0.add_millis(120), "alice".into()))
    );
    assert!(
        to.notifications("report", 10)
            .unwrap()
            .iter()
            .any(|n| n.hushed.is_some()),
        "the silenced failure is still held back, with why"
    );
    assert!(copied.flips > 0, "{copied:?}");
    assert_eq!(
        to.check(belfry_store::JobRef::Name("report"))
            .unwrap()
            .unwrap()
            .meta
            .title,
        "Daily report"
    );
    assert_eq!(
        to.outbox_rows(true, 100).unwrap(),
        from.outbox_rows(true, 100).unwrap()
    );
    assert_eq!(to.running_runs().unwrap(), from.running_runs().unwrap());

    let again = from.copy_into(&mut to).unwrap();
    assert!(again.is_empty(), "{again:?}");

    let later = Timestamp::now().add_millis(120_000);
    let due = |s: &mut Store| {
        let mut v: Vec<(i64, String, u32)> = s
            .claim_due(later, Duration::from_secs(30), "q", None, 100)
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.channel, c.notification.consecutive_problems))
            .collect();
        v.sort();
        v
    };
    assert_eq!(due(&mut to), due(&mut from));
    // New rows of the copy take ids after the copied ones.
    let copied_ids: Vec<i64> = to
        .outbox_rows(true, 100)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let rec = finish(
        &mut to,
        &event("fresh", "f1", State::Failed, later, 1),
        &["a"],
    );
    assert!(rec.outbox_ids[0] > *copied_ids.iter().max().unwrap());
    let fresh = to
        .add_silence(
            &belfry_store::NewSilence {
                scope: &belfry_core::Scope::Job("fresh".into()),
                until: later,
                reason: "",
                by: "ops",
            },
            later,
        )
        .unwrap();
    assert!(
        fresh.id > 2,
        "a new silence takes an id after the copied ones"
    );
}

#[test]
fn a_sqlite_store_copied_into_postgresql_reads_the_same_and_goes_on() {
    copy_and_compare(&Db::sqlite(), &Db::postgres());
}

#[test]
fn a_postgresql_store_copied_into_sqlite_reads_the_same_and_goes_on() {
    copy_and_compare(&Db::postgres(), &Db::sqlite());
}

#[test]
fn a_sqlite_store_copied_into_another_reads_the_same_and_goes_on() {
    copy_and_compare(&Db::sqlite(), &Db::sqlite());
}

#[test]
fn a_copy_into_a_postgresql_schema_with_other_rows_is_refused_and_changes_nothing() {
    refused_into(&Db::postgres());
}

#[test]
fn a_copy_into_a_sqlite_file_with_other_rows_is_refused_and_changes_nothing() {
    refused_into(&Db::sqlite());
}

fn refused_into(to_db: &Db) {
    let from_db = Db::sqlite();
    let t0 = Timestamp::now().add_millis(-120_000);
    let mut from = from_db.open();
    filled(&mut from, t0);
    let mut to = to_db.open();
    finish(&mut to, &event("other", "o1", State::Failed, t0, 1), &["a"]);
    let before = to.outbox_rows(true, 100).unwrap();
    let err = from.copy_into(&mut to).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("another store's rows"), "{text}");
    assert!(text.contains(&to_db.location().to_string()), "{text}");
    assert_eq!(to.outbox_rows(true, 100).unwrap(), before);
    assert_eq!(to.jobs().unwrap().len(), 1, "the failed batch left nothing");
}
