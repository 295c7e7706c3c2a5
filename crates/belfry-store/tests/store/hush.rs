//! Silences and acknowledgements: alerts recorded with why, and sent to no channel; and a job's
//! notification history with each delivery's attempts.

use std::time::Duration;

use belfry_core::{Hush, Scope, State, Timestamp};
use belfry_store::{Acked, Attempt, CheckChange, CheckMeta, NewSilence};

use crate::support::*;

fn t0() -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000)
}

fn tag(s: &mut belfry_store::Store, job: &str, tags: &[&str]) {
    let meta = CheckMeta {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..CheckMeta::default()
    };
    let change = CheckChange {
        expect: None,
        meta: Some(&meta),
    };
    s.save_check(job, &change, t0()).unwrap();
}

fn a_silenced_jobs_alert_is_recorded_with_why_and_sent_nowhere(db: &Db) {
    let mut s = db.open();
    tag(&mut s, "db-backup", &["db"]);
    tag(&mut s, "web", &["www"]);
    let scope = Scope::Tag("db".into());
    let silence = s
        .add_silence(
            &NewSilence {
                scope: &scope,
                until: t0().add_millis(60_000),
                reason: "disk swap",
                by: "ann",
            },
            t0(),
        )
        .unwrap();
    assert_eq!(s.silences(t0()).unwrap(), vec![silence.clone()]);

    let rec = finish(
        &mut s,
        &event("db-backup", "r1", State::Failed, t0().add_millis(10), 1),
        &["ops"],
    );
    assert!(rec.decision.notify, "the rules still decide");
    assert!(rec.outbox_ids.is_empty(), "nothing is sent");
    let hushed = Hush::Silenced {
        id: silence.id,
        until: silence.until,
        reason: "disk swap".into(),
    };
    assert_eq!(rec.hushed.as_ref(), Some(&hushed));
    let history = s.notifications("db-backup", 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].hushed.as_ref(), Some(&hushed));
    assert!(history[0].deliveries.is_empty());

    // A job without the tag alerts as ever.
    let rec = finish(
        &mut s,
        &event("web", "r2", State::Failed, t0().add_millis(20), 1),
        &["ops"],
    );
    assert_eq!((rec.outbox_ids.len(), rec.hushed), (1, None));

    // Once the silence is ended, the next alert goes out.
    assert!(s.end_silence(silence.id, t0().add_millis(30)).unwrap());
    assert!(!s.end_silence(silence.id, t0().add_millis(31)).unwrap());
    assert!(s.silences(t0().add_millis(31)).unwrap().is_empty());
    let rec = finish(
        &mut s,
        &event("db-backup", "r3", State::Ok, t0().add_millis(40), 0),
        &["ops"],
    );
    assert_eq!(rec.decision.reason.code(), "recovered");
    assert_eq!((rec.outbox_ids.len(), rec.hushed), (1, None));
}

fn a_silence_ends_by_itself_at_its_time(db: &Db) {
    let mut s = db.open();
    let scope = Scope::Job("j".into());
    let until = t0().add_millis(1000);
    s.add_silence(
        &NewSilence {
            scope: &scope,
            until,
            reason: "",
            by: "cli",
        },
        t0(),
    )
    .unwrap();
    assert_eq!(s.silences(until.add_millis(-1)).unwrap().len(), 1);
    assert!(s.silences(until).unwrap().is_empty());
    let rec = finish(&mut s, &event("j", "r1", State::Failed, until, 1), &["a"]);
    assert_eq!((rec.outbox_ids.len(), rec.hushed), (1, None));
    assert!(!s.end_silence(1, until).unwrap(), "over already");
}

fn an_acknowledged_problem_sends_no_reminder_until_it_recovers(db: &Db) {
    let mut s = db.open();
    let at = |ms| t0().add_millis(ms);
    assert_eq!(s.acknowledge("j", "bob", at(0)).unwrap(), Acked::NotFound);
    finish(&mut s, &event("j", "r0", State::Ok, at(0), 0), &["a"]);
    assert_eq!(s.acknowledge("j", "bob", at(1)).unwrap(), Acked::NoProblem);
    let first = finish(&mut s, &event("j", "r1", State::Failed, at(10), 1), &["a"]);
    assert_eq!(first.outbox_ids.len(), 1);
    assert_eq!(s.acknowledge("j", "bob", at(20)).unwrap(), Acked::Done);
    let check = s.check(belfry_store::JobRef::Name("j")).unwrap().unwrap();
    assert_eq!(check.acked, Some((at(20), "bob".to_owned())));

    // Past the repeat window (1 s by default) a reminder is due: recorded, not sent.
    let reminder = finish(
        &mut s,
        &event("j", "r2", State::Failed, at(2000), 1),
        &["a"],
    );
    assert_eq!(reminder.decision.reason.code(), "repeated");
    assert!(reminder.outbox_ids.is_empty());
    assert_eq!(
        reminder.hushed,
        Some(Hush::Acknowledged {
            at: at(20),
            by: "bob".into()
        })
    );
    // The recovery is sent, and forgets the acknowledgement.
    let ok = finish(&mut s, &event("j", "r4", State::Ok, at(2200), 0), &["a"]);
    assert_eq!(ok.outbox_ids.len(), 1);
    let check = s.check(belfry_store::JobRef::Name("j")).unwrap().unwrap();
    assert_eq!(check.acked, None);
    // So the next spell's reminders go out.
    finish(
        &mut s,
        &event("j", "r5", State::Failed, at(2300), 1),
        &["a"],
    );
    let again = finish(
        &mut s,
        &event("j", "r6", State::Failed, at(5000), 1),
        &["a"],
    );
    assert_eq!(again.decision.reason.code(), "repeated");
    assert_eq!((again.outbox_ids.len(), again.hushed), (1, None));
}

fn a_reminder_the_library_makes_is_held_back_and_a_programs_own_message_is_not(db: &Db) {
    let mut s = db.open();
    let first = event("lib::load", "r1", State::Failed, t0(), 1);
    assert_eq!(finish(&mut s, &first, &["a"]).outbox_ids.len(), 1);
    assert_eq!(
        s.acknowledge("lib::load", "ann", t0()).unwrap(),
        Acked::Done
    );
    let later = belfry_core::Event {
        at: t0().add_millis(1500),
        ..first.clone()
    };
    let decision = belfry_core::Decision {
        notify: true,
        reason: belfry_core::Reason::Repeated {
            count: 2,
            since_last: Duration::from_millis(1500),
        },
    };
    let snap = s.snapshot("lib::load").unwrap();
    let reminder =
        belfry_core::Notification::new(belfry_store::new_id(), &later, snap.as_ref(), &decision);
    assert!(
        s.record_notification(&reminder, vec!["a".into()], true)
            .unwrap()
            .is_empty()
    );
    let own =
        belfry_core::Notification::new(belfry_store::new_id(), &later, snap.as_ref(), &decision);
    assert_eq!(
        s.record_notification(&own, vec!["a".into()], false)
            .unwrap()
            .len(),
        1
    );
    let history = s.notifications("lib::load", 10).unwrap();
    assert!(matches!(history[1].hushed, Some(Hush::Acknowledged { .. })));
    assert_eq!(history[0].hushed, None);
}

fn a_jobs_history_shows_each_delivery_and_its_attempts(db: &Db) {
    let mut s = db.open();
    let rec = finish(
        &mut s,
        &event("j", "r1", State::Failed, t0(), 1),
        &["slack", "mail"],
    );
    let (mail, slack) = (rec.outbox_ids[0], rec.outbox_ids[1]);
    s.record_attempt(
        mail,
        &Attempt::Retry {
            at: t0().add_millis(5100),
            reason: "connection refused".into(),
        },
        t0().add_millis(100),
        Duration::from_millis(12),
    )
    .unwrap();
    s.record_attempt(
        mail,
        &Attempt::Delivered,
        t0().add_millis(5200),
        Duration::from_millis(30),
    )
    .unwrap();
    let n = s.notifications("j", 10).unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, "first_run");
    assert_eq!(n[0].run_id.as_deref(), Some("r1"));
    let d = &n[0].deliveries;
    assert_eq!(
        d.iter()
            .map(|d| (d.id, d.channel.as_str(), d.status.as_str()))
            .collect::<Vec<_>>(),
        vec![(mail, "mail", "delivered"), (slack, "slack", "pending")]
    );
    let outcomes: Vec<_> = d[0]
        .attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.reason.as_deref(), a.elapsed))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (
                "retry",
                Some("connection refused"),
                Some(Duration::from_millis(12))
            ),
            ("delivered", None, Some(Duration::from_millis(30))),
        ]
    );
    assert!(d[1].attempts.is_empty());
    assert!(s.notifications("other", 10).unwrap().is_empty());
}

fn a_setting_is_stored_once_and_read_back_by_every_handle(db: &Db) {
    let mut a = db.open();
    let mut b = db.open();
    assert_eq!(a.setting("k", "first").unwrap(), "first");
    assert_eq!(b.setting("k", "second").unwrap(), "first");
}

on_both_backends!(
    a_silenced_jobs_alert_is_recorded_with_why_and_sent_nowhere,
    a_silence_ends_by_itself_at_its_time,
    an_acknowledged_problem_sends_no_reminder_until_it_recovers,
    a_jobs_history_shows_each_delivery_and_its_attempts,
    a_setting_is_stored_once_and_read_back_by_every_handle,
    a_reminder_the_library_makes_is_held_back_and_a_programs_own_message_is_not,
);
