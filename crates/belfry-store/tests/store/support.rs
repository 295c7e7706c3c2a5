//! What the tests share: a store handle with per-test settings, the stores to run them
//! against (`Db`), and events and routes to record.

use std::time::Duration;

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Claim, Claimed, Limits, Location, Recorded, Retention, RunEnd};

/// A store with the settings a test gives it once, as a process's configuration would: the
/// calls below pass them to each method of the store that takes them.
#[derive(Debug)]
pub(crate) struct Store {
    store: belfry_store::Store,
    limits: Limits,
    digest_window: Duration,
}

impl std::ops::Deref for Store {
    type Target = belfry_store::Store;
    fn deref(&self) -> &belfry_store::Store {
        &self.store
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut belfry_store::Store {
        &mut self.store
    }
}

impl Store {
    pub(crate) fn open(path: &std::path::Path) -> belfry_store::Result<Store> {
        Store::at(&Location::from(path))
    }

    pub(crate) fn at(location: &Location) -> belfry_store::Result<Store> {
        Ok(Store {
            store: belfry_store::Store::open(location.clone())?,
            limits: Limits::default(),
            digest_window: Duration::ZERO,
        })
    }

    pub(crate) fn set_delivery_deadline(&mut self, d: Duration) {
        self.limits.delivery_deadline = d;
    }

    pub(crate) fn set_retention(&mut self, keep: Retention) {
        self.limits.retention = keep;
    }

    pub(crate) fn set_digest_window(&mut self, d: Duration) {
        self.digest_window = d;
    }

    pub(crate) fn finish_run(
        &mut self,
        end: &RunEnd<'_>,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
    ) -> belfry_store::Result<Recorded> {
        let limits = self.limits;
        self.store.finish_run(end, policy, route, &limits)
    }

    pub(crate) fn finish_stale_run(
        &mut self,
        end: &RunEnd<'_>,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
    ) -> belfry_store::Result<Option<Recorded>> {
        let limits = self.limits;
        self.store.finish_stale_run(end, policy, route, &limits)
    }

    pub(crate) fn record_event(
        &mut self,
        event: &Event,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
    ) -> belfry_store::Result<Recorded> {
        let limits = self.limits;
        self.store.record_event(event, policy, route, &limits)
    }

    pub(crate) fn record_events(
        &mut self,
        event: &Event,
        covers: u32,
        policy: &Policy,
        route: impl Fn(&State, bool) -> Vec<String>,
    ) -> belfry_store::Result<Recorded> {
        let limits = self.limits;
        self.store
            .record_events(event, covers, policy, route, &limits)
    }

    pub(crate) fn record_notification(
        &mut self,
        n: &belfry_core::Notification,
        channels: Vec<String>,
        restarts_repeat_window: bool,
    ) -> belfry_store::Result<Vec<i64>> {
        let limits = self.limits;
        self.store
            .record_notification(n, channels, restarts_repeat_window, &limits)
    }

    pub(crate) fn claim_due(
        &mut self,
        now: Timestamp,
        lease: Duration,
        owner: &str,
        ids: Option<&[i64]>,
        limit: u32,
    ) -> belfry_store::Result<Vec<Claimed>> {
        let claim = Claim {
            owner,
            lease,
            ids,
            limit,
            digest_window: self.digest_window,
            window_exempt: &[],
            in_order: &[],
        };
        self.store.claim_due(now, &claim)
    }
}

pub(crate) fn event(job: &str, run: &str, state: State, at: Timestamp, code: i32) -> Event {
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
pub(crate) fn finish(s: &mut Store, ev: &Event, channels: &[&str]) -> belfry_store::Recorded {
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

pub(crate) fn to(channels: &[&str]) -> impl Fn(&State, bool) -> Vec<String> + use<> {
    let v: Vec<String> = channels.iter().map(|s| s.to_string()).collect();
    move |_, _| v.clone()
}

/// Failed, recovered, failed again: three notifications of `j` waiting for channel `a`.
pub(crate) fn three_alerts(s: &mut Store, t0: Timestamp) -> Vec<i64> {
    let mut ids = Vec::new();
    for (i, (state, code)) in [(State::Failed, 1), (State::Ok, 0), (State::Failed, 2)]
        .into_iter()
        .enumerate()
    {
        let ev = event(
            "j",
            &format!("r{i}"),
            state,
            t0.add_millis(10 * i as i64),
            code,
        );
        let rec = finish(s, &ev, &["a"]);
        assert!(rec.decision.notify, "run {i} notifies");
        ids.extend(rec.outbox_ids);
    }
    ids
}

/// The problem runs a message tells of: those its digest counts, or itself without one.
pub(crate) fn problems_told(n: &belfry_core::Notification) -> u64 {
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

/// Records the end of `run` (started earlier) through `s`: the message made, if any, as
/// (reason, problems told).
pub(crate) fn end_run(
    s: &mut Store,
    run: &str,
    state: State,
    at: Timestamp,
    policy: &Policy,
) -> Option<(String, u64)> {
    let ev = event("j", run, state, at, i32::from(state.is_problem()));
    let end = RunEnd {
        event: &ev,
        output: None,
        output_bytes: 0,
    };
    let rec = s.finish_run(&end, policy, to(&["hook"])).unwrap();
    rec.notification
        .map(|n| (n.reason.clone(), problems_told(&n)))
}

/// The server the PostgreSQL tests use unless `BELFRY_TEST_POSTGRES` names another.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh, empty store for one test: a SQLite file in a temporary directory, or a schema of
/// its own in the test database (dropped when the test ends, passed or failed).
pub(crate) struct Db {
    location: Location,
    kind: Kind,
}

enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres { server: String, schema: String },
}

impl Db {
    pub(crate) fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            location: Location::from(dir.path().join("b.db")),
            kind: Kind::Sqlite(dir),
        }
    }

    /// A schema named for this process and a counter, so that tests running at once (and
    /// leftovers of a killed run) never meet. Fails, saying what to start, when the server
    /// cannot be reached: a suite that skips its PostgreSQL half proves nothing.
    pub(crate) fn postgres() -> Db {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server =
            std::env::var("BELFRY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("belfry_test_{}_{n}", std::process::id());
        let mut admin = admin(&server);
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .unwrap();
        let sep = if server.contains('?') { '&' } else { '?' };
        let location = Location::parse(&format!("{server}{sep}schema={schema}")).unwrap();
        Db {
            location,
            kind: Kind::Postgres { server, schema },
        }
    }

    /// Another fresh store of the same kind, for a test that needs several in turn.
    pub(crate) fn another(&self) -> Db {
        match self.kind {
            Kind::Sqlite(_) => Db::sqlite(),
            Kind::Postgres { .. } => Db::postgres(),
        }
    }

    pub(crate) fn location(&self) -> Location {
        self.location.clone()
    }

    /// The store's location with `param` (`key=value`) added to its URL: PostgreSQL only, for
    /// a handle the test can find among the server's connections (`application_name=`).
    pub(crate) fn location_with(&self, param: &str) -> Location {
        let Kind::Postgres { server, schema } = &self.kind else {
            panic!("not a PostgreSQL store");
        };
        let sep = if server.contains('?') { '&' } else { '?' };
        Location::parse(&format!("{server}{sep}schema={schema}&{param}")).unwrap()
    }

    /// Ends the server connections whose `application_name` is `name`, as a network failure or
    /// a restarted server would, and waits until they are gone; returns how many.
    pub(crate) fn cut_connections(&self, name: &str) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity
             WHERE application_name = '{name}') t"
        ))
    }

    /// A new handle on the store, as another process would open it.
    pub(crate) fn open(&self) -> Store {
        Store::at(&self.location).unwrap_or_else(|e| panic!("opening {}: {e}", self.location))
    }

    /// A number the database answers to `sql` (the same SQL on both backends).
    pub(crate) fn count(&self, sql: &str) -> i64 {
        match &self.kind {
            Kind::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("b.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Kind::Postgres { .. } => self.sql().query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// A text the database answers to `sql`.
    pub(crate) fn text(&self, sql: &str) -> String {
        match &self.kind {
            Kind::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("b.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Kind::Postgres { .. } => self.sql().query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// Changes the store behind belfry's back, as a damaged disk or a foreign program would.
    pub(crate) fn execute(&self, sql: &str) {
        match &self.kind {
            Kind::Sqlite(dir) => {
                rusqlite::Connection::open(dir.path().join("b.db"))
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Kind::Postgres { .. } => self.sql().batch_execute(sql).unwrap(),
        }
    }

    /// Rows that refer to a row that is gone: an outbox row without its notification, an
    /// attempt without its outbox row.
    pub(crate) fn dangling_references(&self) -> i64 {
        match self.kind {
            Kind::Sqlite(_) => self.count("SELECT COUNT(*) FROM pragma_foreign_key_check"),
            Kind::Postgres { .. } => self.count(
                "SELECT (SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (
                            SELECT 1 FROM notifications n WHERE n.id = o.notification_id))
                      + (SELECT COUNT(*) FROM attempts a WHERE NOT EXISTS (
                            SELECT 1 FROM outbox o WHERE o.id = a.outbox_id))",
            ),
        }
    }

    /// A plain connection to a PostgreSQL store's schema, for what the tests check or break
    /// behind belfry's back.
    pub(crate) fn sql(&self) -> postgres::Client {
        let Kind::Postgres { server, schema } = &self.kind else {
            panic!("not a PostgreSQL store");
        };
        let mut c = admin(server);
        c.batch_execute(&format!("SET search_path TO {schema}"))
            .unwrap();
        c
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Kind::Postgres { server, schema } = &self.kind
            && let Ok(mut c) = postgres::Client::connect(server, postgres::NoTls)
        {
            // A lock a stray handle still holds must not hang the suite.
            c.batch_execute("SET lock_timeout = '10s'").ok();
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .ok();
        }
    }
}

/// A connection to the test server, or a failure that says what to start (and shows the URL
/// without its password).
fn admin(server: &str) -> postgres::Client {
    postgres::Client::connect(server, postgres::NoTls).unwrap_or_else(|e| {
        let shown = Location::parse(server).map_or_else(|e| e.to_string(), |l| l.to_string());
        let cause = std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
        panic!(
            "the PostgreSQL tests need a server at {shown} (BELFRY_TEST_POSTGRES, default \
             {DEFAULT_POSTGRES}): {e}{cause}. Start one (e.g. `pg_ctlcluster 15 main start`, \
             user postgres with trust authentication on 127.0.0.1, database `test`), or point \
             BELFRY_TEST_POSTGRES at one."
        )
    })
}
