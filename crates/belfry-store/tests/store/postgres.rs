//! What only the PostgreSQL backend promises: its URL never shows a password, its schema is
//! created and versioned in place, its clock is the server's, a broken connection is made
//! again, and `wait_for_work` hears the commits that make rows due.

use std::time::Duration;

use belfry_core::{State, Timestamp};
use belfry_store::Location;

use crate::support::*;

#[test]
fn a_password_in_the_url_never_shows_in_the_location_or_an_error() {
    // Nothing listens on port 1: the connection fails, and its error names the place.
    let location = Location::parse("postgres://belfry:s3cret@127.0.0.1:1/test?schema=x").unwrap();
    assert_eq!(
        location.to_string(),
        "postgres://belfry:***@127.0.0.1:1/test?schema=x"
    );
    assert!(!format!("{location:?}").contains("s3cret"));
    let err = Store::at(&location).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("postgres://belfry:***@127.0.0.1:1/test"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret") && !format!("{err:?}").contains("s3cret"),
        "{text}"
    );
    assert!(err.is_unavailable() && err.is_retryable(), "{text}");
}

#[test]
fn a_new_schema_is_created_at_the_latest_version_and_a_newer_one_is_refused() {
    let db = Db::postgres();
    let s = db.open();
    assert_eq!(s.schema_version().unwrap(), 4);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'outbox'"),
        1
    );
    drop(s);
    db.sql()
        .batch_execute("UPDATE belfry_schema_version SET version = 99")
        .unwrap();
    let err = Store::at(&db.location()).unwrap_err().to_string();
    assert!(err.contains("version 99") && err.contains("newer"), "{err}");
}

#[test]
fn processes_opening_a_new_schema_at_once_all_find_it_migrated() {
    let db = Db::postgres();
    let location = db.location();
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                barrier.wait();
                let s = Store::at(&location).expect("open");
                assert_eq!(s.schema_version().unwrap(), 4);
            });
        }
    });
    assert_eq!(db.count("SELECT COUNT(*) FROM belfry_schema_version"), 1);
}

#[test]
fn the_stores_clock_is_the_database_servers() {
    let db = Db::postgres();
    let s = db.open();
    let server_ms =
        |db: &Db| db.count("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint");
    let before = server_ms(&db);
    let now = s.now().unwrap().as_millis();
    let after = server_ms(&db);
    assert!(
        before <= now && now <= after,
        "{before} <= {now} <= {after}"
    );
}

#[test]
fn a_handle_whose_connection_was_cut_connects_again_on_its_next_call() {
    let db = Db::postgres();
    let name = format!("cut_{}", std::process::id());
    let mut s = Store::at(&db.location_with(&format!("application_name={name}"))).unwrap();
    finish(
        &mut s,
        &event("j", "r1", State::Failed, Timestamp::now(), 1),
        &["a"],
    );
    assert_eq!(db.cut_connections(&name), 1);
    // The call that meets the broken connection fails, and says so; the next one connects.
    let mut errors = 0;
    for _ in 0..2 {
        match s.outbox_counts() {
            Ok(c) => assert_eq!(c.pending, 1),
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                errors += 1;
            }
        }
    }
    assert!(errors <= 1);
    assert_eq!(s.outbox_counts().unwrap().pending, 1);
}

#[test]
fn wait_for_work_hears_commits_that_make_rows_due_and_only_its_schemas() {
    let db = Db::postgres();
    let name = format!("listener_{}", std::process::id());
    let mut waiter = Store::at(&db.location_with(&format!("application_name={name}"))).unwrap();
    // The first call starts listening: what came before was not heard, so it says to look.
    assert!(waiter.wait_for_work(Duration::ZERO).unwrap());
    // Nothing committed: the wait runs out.
    assert!(!waiter.wait_for_work(Duration::from_millis(50)).unwrap());
    // A new alert, committed by another process before the wait: heard.
    let mut writer = db.open();
    let t0 = Timestamp::now();
    let rec = finish(&mut writer, &event("j", "r1", State::Failed, t0, 1), &["a"]);
    assert!(waiter.wait_for_work(Duration::from_secs(60)).unwrap());
    // Heard once: the notifications that came together make one wake-up.
    assert!(!waiter.wait_for_work(Duration::from_millis(50)).unwrap());
    // Rows given back are due again: heard.
    let claimed = writer
        .claim_due(t0, Duration::from_secs(30), "p", None, 10)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        writer.release_claims("p", &rec.outbox_ids, None).unwrap(),
        1
    );
    assert!(waiter.wait_for_work(Duration::from_secs(60)).unwrap());
    // Another schema's alerts, on the same database, are not this store's work.
    let other = Db::postgres();
    finish(
        &mut other.open(),
        &event("j", "r1", State::Failed, t0, 1),
        &["a"],
    );
    assert!(!waiter.wait_for_work(Duration::from_millis(50)).unwrap());
    // The listening connection is cut: the next wait makes it again and says to look.
    assert!(db.cut_connections(&name) >= 1);
    let mut woken = false;
    for _ in 0..2 {
        woken |= waiter.wait_for_work(Duration::from_millis(50)).unwrap();
    }
    assert!(woken, "a reconnect is a wake-up");
}

#[test]
fn a_url_that_requires_tls_is_refused_not_sent_in_clear() {
    let db = Db::postgres();
    let location = db.location_with("sslmode=require");
    let err = Store::at(&location).unwrap_err().to_string();
    assert!(err.contains("connecting"), "{err}");
}
