//! The backend's error handling against a real server: SQLSTATEs become the questions
//! [`Error`] answers, and a transaction PostgreSQL aborts as a conflict is run again.

use super::*;

/// The test server (see `tests/store/main.rs`).
fn server() -> String {
    std::env::var("BELFRY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The error a statement raising `sqlstate` makes, as the backend reports it.
fn raised(client: &mut Client, sqlstate: &str) -> Error {
    let e = client
        .batch_execute(&format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised for a test' USING ERRCODE = '{sqlstate}'; END $$"
        ))
        .unwrap_err();
    Error::postgres("postgres://u:***@h/db", "testing", e)
}

#[test]
fn sqlstates_answer_what_the_caller_asks() {
    let mut client = Client::connect(&server(), NoTls)
        .unwrap_or_else(|e| panic!("these tests need PostgreSQL at {}: {e}", server()));
    let disk = raised(&mut client, "53100");
    assert!(disk.is_disk_full() && !disk.is_retryable(), "{disk}");
    for conflict in ["40001", "40P01"] {
        let e = raised(&mut client, conflict);
        assert!(e.is_busy() && e.is_retryable(), "{e}");
    }
    let corrupt = raised(&mut client, "XX001");
    assert!(corrupt.is_corrupt(), "{corrupt}");
    let shutdown = raised(&mut client, "57P01");
    assert!(
        shutdown.is_unavailable() && shutdown.is_retryable(),
        "{shutdown}"
    );
    let other = raised(&mut client, "42P01");
    assert!(!other.is_retryable() && !other.is_corrupt(), "{other}");
    let text = other.to_string();
    assert!(
        text.starts_with("store postgres://u:***@h/db: testing failed: raised for a test")
            && text.contains("42P01"),
        "{text}"
    );
}

#[test]
fn a_transaction_aborted_as_a_conflict_is_run_again() {
    let schema = format!("belfry_unit_{}", std::process::id());
    let mut admin = Client::connect(&server(), NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    let url = PostgresUrl::parse(&format!("{}?schema={schema}", server())).unwrap();
    let pg = Postgres::open(&url).unwrap();
    let mut tries = 0;
    let written = pg.write("testing", |tx| {
        tries += 1;
        tx.execute(
            "INSERT INTO outbox_lanes (job, channel) VALUES ('j', 'c') ON CONFLICT DO NOTHING",
            &[],
        )?;
        if tries < 3 {
            // What PostgreSQL says to the loser of a deadlock: its writes are undone.
            tx.client.batch_execute(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$",
            )?;
        }
        Ok(tries)
    });
    let lanes = pg.read("testing", |c| {
        Ok(c.query_one("SELECT COUNT(*) FROM outbox_lanes", &[])?
            .try_get::<_, i64>(0)?)
    });
    // Not one that is not a conflict: that one is the caller's.
    let mut calls = 0;
    let failed = pg.write("testing", |tx| {
        calls += 1;
        tx.client.batch_execute(
            "DO $$ BEGIN RAISE EXCEPTION 'unique' USING ERRCODE = '23505'; END $$",
        )?;
        Ok(())
    });
    drop(pg);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    assert_eq!(written.unwrap(), 3);
    assert_eq!(lanes.unwrap(), 1);
    assert_eq!(calls, 1);
    assert!(failed.is_err());
}
