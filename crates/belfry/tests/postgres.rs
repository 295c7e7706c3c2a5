//! The library on a PostgreSQL store (`[store] url`): what a program records lands in the
//! shared database, and its delivery thread sends it from there.

use std::time::Duration;

use belfry::store::{Location, Store};
use belfry::{Belfry, State};
use belfry_testkit::{PgSchema, Receiver};

#[belfry::watch(name = "nightly-import")]
fn import(fail: bool) -> Result<u32, std::io::Error> {
    if fail {
        return Err(std::io::Error::other("upstream gone"));
    }
    Ok(3)
}

#[test]
fn a_program_records_into_the_configured_postgres_store_and_delivers_from_it() {
    let rx = Receiver::start(vec![]);
    let schema = PgSchema::new("lib");
    let dir = tempfile::tempdir().unwrap();
    let config = belfry::Config::parse(
        &format!(
            "[channels.hook]\nurl = \"json://{}/belfry\"\n\n[store]\nurl = \"{}\"\n",
            rx.addr(),
            schema.url()
        ),
        "the test",
    )
    .unwrap();
    let guard = Belfry::builder()
        .config(config)
        .home(dir.path())
        .quiet(true)
        .build()
        .expect("a client");
    guard.client().in_scope(|| assert!(import(true).is_err()));
    let report = guard.client().flush(Duration::from_secs(20));
    assert!(report.is_complete(), "{report}");
    assert!(report.store.starts_with("postgres://"), "{}", report.store);
    drop(guard);

    let posts: Vec<serde_json::Value> = rx.requests().iter().map(|r| r.json()).collect();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0]["job"], "nightly-import");
    assert_eq!(posts[0]["state"], "failed");
    // Nothing went to a file in the state directory; the database has the job and the
    // delivered row.
    assert!(!belfry::store_path(dir.path()).exists());
    let store = Store::open(Location::parse(&schema.url()).unwrap()).unwrap();
    let job = store.job("nightly-import").unwrap().expect("the job");
    assert_eq!(job.state, Some(State::Failed));
    assert_eq!(store.outbox_counts().unwrap().delivered, 1);
}
