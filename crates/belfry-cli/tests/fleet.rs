//! A fleet of real dispatcher processes on one PostgreSQL store loses nothing: three
//! `belfry deliver` processes, each a host of its own (a state directory, so a lock, of its
//! own), share 5,000 alerts over 500 jobs; and when one is killed mid-send and another's
//! connection is cut, the others (and a last `belfry deliver`) still send every alert.

mod common;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use belfry_core::{Details, Event, Policy, State};
use belfry_store::{Limits, Location, OutboxCounts, Store};
use belfry_testkit::{PgSchema, Receiver, Reply, eventually};
use common::{World, stderr};

/// Jobs × alerts each: 5,000 alerts over 500 jobs, as issue 11 asks.
const JOBS: usize = 500;
const ALERTS_PER_JOB: usize = 10;

/// A `belfry` child killed when the test lets go of it, passed or failed.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A host on `schema`'s store whose connections carry `application_name` = `app`, so that
/// the test can find them among the server's sessions; its one channel is `rx`.
fn host(rx: &Receiver, schema: &PgSchema, app: &str, lease: &str) -> World {
    World::with_config(&format!(
        "[delivery]\ndigest_window = \"0s\"\nlease = \"{lease}\"\n\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n\n[store]\nurl = \"{}&application_name={app}\"\n",
        rx.addr(),
        schema.url()
    ))
}

/// Records the 5,000 alerts straight into the store, in the order a fleet of jobs would:
/// every job fails, recovers, fails again..., so that each run notifies.
fn record_alerts(schema: &PgSchema) -> Store {
    let mut s = Store::open(Location::parse(&schema.url()).unwrap()).unwrap();
    let t0 = s.now().unwrap().add_millis(-3_600_000);
    let route = |_: &State, _: bool| vec!["hook".to_owned()];
    for i in 0..ALERTS_PER_JOB {
        for job in 0..JOBS {
            let state = if i % 2 == 0 { State::Failed } else { State::Ok };
            let ev = Event {
                job: format!("job-{job}"),
                state,
                at: t0.add_millis((i * JOBS + job) as i64),
                details: Details::default(),
            };
            let rec = s
                .record_event(&ev, &Policy::default(), route, &Limits::default())
                .unwrap();
            assert_eq!(rec.outbox_ids.len(), 1, "alert {i} of job-{job}: {rec:?}");
        }
    }
    let c = s.outbox_counts().unwrap();
    assert_eq!(c.pending as usize, JOBS * ALERTS_PER_JOB, "{c:?}");
    s
}

/// Starts `belfry deliver --wait 5s` in `w`, its output thrown away (the store tells what it
/// did). A short wait: a process also waits for the rows another one holds, until their lease
/// would run out, and the others finish those anyway.
fn deliver(w: &World) -> Proc {
    Proc(
        w.cmd(&["deliver", "--wait", "5s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Each idempotency key (one per message and channel) received: how many times it arrived,
/// and how many alerts its message stands for (the claim folds a lane's unsent rows into its
/// newest one, a digest counting them).
fn arrivals(rx: &Receiver) -> HashMap<String, (usize, u64)> {
    let mut seen = HashMap::new();
    for r in rx.requests() {
        let key = r
            .header("Idempotency-Key")
            .expect("json:// sends an Idempotency-Key")
            .to_owned();
        let stands_for = r.json()["digest"]["count"].as_u64().unwrap_or(1);
        seen.entry(key).or_insert((0, stands_for)).0 += 1;
    }
    seen
}

/// Every alert delivered, in the store and at the receiver, and an alert sent again only as
/// often as the store counts possible duplicates; returns the counts.
fn check_all_delivered(store: &Store, rx: &Receiver) -> OutboxCounts {
    let c = store.outbox_counts().unwrap();
    assert_eq!(c.delivered as usize, JOBS * ALERTS_PER_JOB, "{c:?}");
    assert_eq!((c.pending, c.sending, c.dead), (0, 0, 0), "{c:?}");
    let seen = arrivals(rx);
    let alerts: u64 = seen.values().map(|(_, n)| n).sum();
    assert_eq!(
        alerts as usize,
        JOBS * ALERTS_PER_JOB,
        "alerts the messages stand for"
    );
    // The store counts possible duplicates by row, so a repeated message counts once for
    // each alert it stands for.
    let extra: u64 = seen
        .values()
        .map(|(times, n)| (*times as u64 - 1) * n)
        .sum();
    assert!(
        extra <= c.possible_duplicates,
        "{extra} alerts sent again, the store counts {} possible duplicates",
        c.possible_duplicates
    );
    c
}

/// No lane (a job, one channel here) ever sent an older alert after a newer one: each job's
/// messages arrive in the order of their `time`.
fn check_lane_order(rx: &Receiver) {
    let mut last: HashMap<String, String> = HashMap::new();
    for r in rx.requests() {
        let body = r.json();
        let job = body["job"].as_str().expect("a job").to_owned();
        let time = body["time"].as_str().expect("a time").to_owned();
        if let Some(prev) = last.get(&job) {
            assert!(*prev <= time, "{job}: {time} sent after {prev}");
        }
        last.insert(job, time);
    }
}

#[test]
fn three_dispatcher_processes_deliver_each_of_5000_alerts_over_500_jobs_exactly_once() {
    let rx = Receiver::start(vec![]);
    let schema = PgSchema::new("fleet");
    let store = record_alerts(&schema);
    let hosts: Vec<World> = (0..3)
        .map(|k| host(&rx, &schema, &format!("{}_{k}", schema.name()), "60s"))
        .collect();
    let mut procs: Vec<Proc> = hosts.iter().map(deliver).collect();
    for p in &mut procs {
        let status = p.0.wait().unwrap();
        assert!(status.success(), "a dispatcher failed: {status}");
    }
    let c = check_all_delivered(&store, &rx);
    // No process died: nothing may have been sent twice.
    assert_eq!(c.possible_duplicates, 0, "{c:?}");
    assert_eq!(
        rx.requests().len(),
        arrivals(&rx).len(),
        "each message once"
    );
    check_lane_order(&rx);
}

#[test]
fn killing_one_dispatcher_mid_send_and_cutting_anothers_connection_loses_nothing() {
    // Each answer takes a while, so that a kill lands while requests are in flight.
    let rx = Receiver::start_with_fallback(vec![], Reply::ok().delay(Duration::from_millis(20)));
    let schema = PgSchema::new("fleet");
    let store = record_alerts(&schema);
    let apps: Vec<String> = (0..3).map(|k| format!("{}_{k}", schema.name())).collect();
    let hosts: Vec<World> = apps.iter().map(|a| host(&rx, &schema, a, "2s")).collect();
    let mut procs: Vec<Proc> = hosts.iter().map(deliver).collect();

    // Some alerts out: kill -9 the first dispatcher, wherever it is in its sends.
    assert!(
        eventually(Duration::from_secs(60), || rx.requests().len() >= 100),
        "no dispatcher got going: {} requests",
        rx.requests().len()
    );
    procs[0].0.kill().unwrap();
    procs[0].0.wait().unwrap();
    // More out: end the second one's server sessions, as a network failure would.
    let before = rx.requests().len();
    assert!(eventually(Duration::from_secs(60), || rx.requests().len()
        >= before + 100));
    let mut admin =
        postgres::Client::connect(&belfry_testkit::postgres_server(), postgres::NoTls).unwrap();
    let cut: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1) t",
            &[&apps[1]],
        )
        .unwrap()
        .get(0);
    assert!(cut >= 1, "the second dispatcher had no session to cut");

    // The survivors finish (the cut one may give up: a failed exit is allowed here).
    for p in procs.iter_mut().skip(1) {
        p.0.wait().unwrap();
    }
    // A last pass once any lease the killed process held has run out sends what is left.
    let last = World::with_config(
        &std::fs::read_to_string(hosts[2].dir.path().join("belfry.toml")).unwrap(),
    );
    assert!(
        eventually(Duration::from_secs(60), || {
            let out = last.run(&["deliver", "--wait", "10s"]);
            let c = store.outbox_counts().unwrap();
            if !out.status.success() {
                eprintln!("last deliver: {}", stderr(&out));
            }
            c.pending == 0 && c.sending == 0
        }),
        "{:?}",
        store.outbox_counts().unwrap()
    );
    let c = check_all_delivered(&store, &rx);
    eprintln!(
        "after the kill and the cut: {c:?}, {} requests",
        rx.requests().len()
    );
}
