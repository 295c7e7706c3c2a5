//! The facade's pipeline: delivery from the outbox against a real HTTP receiver on
//! loopback, and crashed runs.

use std::time::{Duration, Instant};

use belfry::Config;
use belfry::core::{Details, Event, State, Timestamp};
use belfry_store::{RunEnd, Store};
use belfry_testkit::{Receiver, Reply};

fn config(url: &str) -> Config {
    Config::parse(&format!("[channels.hook]\nurl = \"{url}\"\n"), "test").unwrap()
}

fn record_failure(store: &mut Store, config: &Config, job: &str) -> Vec<i64> {
    let ev = Event {
        job: job.into(),
        state: State::Failed,
        at: Timestamp::now(),
        details: Details {
            exit_code: Some(1),
            ..Details::default()
        },
    };
    let end = RunEnd {
        event: &ev,
        output: None,
        output_bytes: 0,
    };
    belfry::internal::record_run(store, config, &end, false)
        .unwrap()
        .outbox_ids
}

#[test]
fn retry_after_zero_does_not_turn_deliver_into_a_hammer() {
    let rx = Receiver::start_with_fallback(vec![], Reply::status(503).header("Retry-After", "0"));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    record_failure(&mut store, &cfg, "j");
    let t = Instant::now();
    let report = belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(rx.requests().len(), 1, "one attempt per pass");
    let retry_at = report.failed[0].retry_at.expect("a 503 is retried");
    assert!(retry_at.since(Timestamp::now()) > Duration::from_millis(500));
}

#[test]
fn a_row_for_a_channel_this_process_does_not_know_is_kept_for_a_later_attempt() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let old = config(&format!("json://{}/x", rx.addr()));
    let ids = record_failure(&mut store, &old, "j");
    // Another process, without that channel (say, $BELFRY_URLS unset): it must not give up.
    let other = Config::parse("[channels.other]\nurl = \"console://\"\n", "test").unwrap();
    let report =
        belfry::internal::deliver(&other, &mut store, None, Duration::from_secs(5)).unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].retry_at.is_some());
    let (status, reason, _) = store.outbox_row_status(ids[0]).unwrap().unwrap();
    assert_eq!(status, "pending");
    assert!(reason.unwrap().contains("not configured here"));
    assert!(rx.requests().is_empty());
    // The process that knows the channel delivers it once the retry is due.
    std::thread::sleep(Duration::from_millis(1100));
    let report = belfry::internal::deliver(&old, &mut store, None, Duration::from_secs(5)).unwrap();
    assert_eq!(report.delivered, ["hook"]);
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn a_429_is_answered_by_waiting_as_long_as_it_says() {
    let rx = Receiver::start(vec![Reply::status(429).header("Retry-After", "3")]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let ids = record_failure(&mut store, &cfg, "j");
    let report =
        belfry::internal::deliver(&cfg, &mut store, Some(&ids), Duration::from_secs(5)).unwrap();
    let retry_at = report.failed[0].retry_at.unwrap();
    let wait = retry_at.since(Timestamp::now());
    assert!(
        wait > Duration::from_millis(2500) && wait <= Duration::from_secs(3),
        "{wait:?}"
    );
    // Nothing is due before then.
    let again = belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
    assert!(again.delivered.is_empty() && again.failed.is_empty());
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn settling_waits_for_a_retry_that_falls_due_before_the_deadline() {
    let rx = Receiver::start(vec![Reply::status(503).header("Retry-After", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let ids = record_failure(&mut store, &cfg, "j");
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = belfry::internal::Dispatcher::new(&cfg)
        .settle(&mut store, None, deadline)
        .unwrap();
    // The first attempt failed, the retry a second later went through, within one call.
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.delivered, ["hook"]);
    assert_eq!(rx.requests().len(), 2);
    let (status, _, _) = store.outbox_row_status(ids[0]).unwrap().unwrap();
    assert_eq!(status, "delivered");
}

#[test]
fn an_endless_dispatcher_sends_rows_added_later_and_stops_when_told() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let mut store = Store::open(&path).unwrap();
    let (tx, waker) = std::sync::mpsc::channel();
    let runner = {
        let (cfg, path) = (cfg.clone(), path.clone());
        std::thread::spawn(move || {
            let mut store = Store::open(&path).unwrap();
            let mut d = belfry::internal::Dispatcher::new(&cfg);
            tx.send(d.waker()).unwrap();
            d.run(&mut store)
        })
    };
    let waker = waker.recv().unwrap();
    // Rows made by another connection while the dispatcher idles: a wake-up says so.
    let mut ids = record_failure(&mut store, &cfg, "a");
    ids.extend(record_failure(&mut store, &cfg, "b"));
    waker.wake();
    let until = Instant::now() + Duration::from_secs(30);
    while rx.requests().len() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rx.requests().len(), 2);
    waker.stop();
    runner.join().unwrap().unwrap();
    assert!(waker.is_stopped());
    for id in ids {
        let (status, _, _) = store.outbox_row_status(id).unwrap().unwrap();
        assert_eq!(status, "delivered");
    }
}

/// Drops a test's PostgreSQL schema when the test ends, passed or failed (through `psql`,
/// which the machines that run these tests have; without it the schema stays, named for the
/// process).
struct Schema {
    server: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                self.server.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}

#[test]
fn a_dispatcher_on_postgresql_calls_the_store_only_outside_its_runtime() {
    // The PostgreSQL client blocks on a runtime of its own and panics when called from inside
    // another: a dispatcher that touched the store inside its runtime could not deliver here.
    let server = std::env::var("BELFRY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = Schema {
        name: format!("belfry_dispatch_test_{}", std::process::id()),
        server: server.clone(),
    };
    let sep = if server.contains('?') { '&' } else { '?' };
    let location =
        belfry::store::Location::parse(&format!("{server}{sep}schema={}", schema.name)).unwrap();
    let mut store = Store::open(location)
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} is needed for this test: {e}"));
    let rx = Receiver::start(vec![Reply::status(503).header("Retry-After", "1")]);
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let mut ids = record_failure(&mut store, &cfg, "a");
    ids.extend(record_failure(&mut store, &cfg, "b"));
    let report = belfry::internal::Dispatcher::new(&cfg)
        .settle(&mut store, None, Instant::now() + Duration::from_secs(10))
        .unwrap();
    // One of the two met the 503 and went through on its retry.
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.delivered.len(), 2, "{report:?}");
    assert_eq!(rx.requests().len(), 3);
    for id in ids {
        let (status, _, _) = store.outbox_row_status(id).unwrap().unwrap();
        assert_eq!(status, "delivered");
    }
}

fn start(store: &mut Store, id: &str, host: &str, pid: u32, boot: Option<&str>) {
    store
        .start_run(&belfry_store::RunStart {
            id: id.into(),
            job: format!("job-{id}"),
            started: Timestamp::now(),
            host: Some(host.into()),
            pid: Some(pid),
            boot_id: boot.map(str::to_owned),
        })
        .unwrap();
}

#[test]
fn runs_from_an_earlier_boot_are_crashed_and_other_hosts_runs_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = Config::parse("[channels.c]\nurl = \"console://\"\n", "test").unwrap();
    let here = belfry::internal::host::host_name();
    let boot = belfry::internal::host::boot_id();
    let me = std::process::id();
    // A live pid, but recorded in another boot: the machine restarted since.
    start(&mut store, "rebooted", &here, me, Some("another-boot"));
    // A live pid in this boot: still running.
    start(&mut store, "alive", &here, me, boot.as_deref());
    // Another host's run, whatever its pid: not this host's to judge.
    start(
        &mut store,
        "elsewhere",
        "some-other-host",
        999_999,
        Some("x"),
    );

    let recs = belfry::internal::reap_crashed(&mut store, &cfg).unwrap();
    assert_eq!(recs.len(), 1);
    let n = recs[0].notification.as_ref().unwrap();
    assert_eq!((n.job.as_str(), n.state), ("job-rebooted", State::Crashed));
    assert!(n.error.as_deref().unwrap().contains("machine restarted"));
    assert_eq!(recs[0].outbox_ids.len(), 1);
    let still: Vec<String> = store
        .running_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(still, ["alive", "elsewhere"]);
    // Noticing again records nothing more.
    assert!(
        belfry::internal::reap_crashed(&mut store, &cfg)
            .unwrap()
            .is_empty()
    );
}

/// A pid that no process has any more: a child that has exited and been waited for.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn intent_of(id: &str, host: &str, pid: u32, boot: Option<&str>) -> belfry_store::RunStart {
    belfry_store::RunStart {
        id: id.into(),
        job: format!("job-{id}"),
        started: Timestamp::now(),
        host: Some(host.into()),
        pid: Some(pid),
        boot_id: boot.map(str::to_owned),
    }
}

fn intents_left(home: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("belfry.db"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_run_whose_wrapper_died_before_the_store_knew_it_is_recorded_once_by_many_lookers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("belfry.db");
    Store::open(&db).unwrap();
    let cfg = Config::parse("[channels.c]\nurl = \"console://\"\n", "test").unwrap();
    let here = belfry::internal::host::host_name();
    let boot = belfry::internal::host::boot_id();
    let intent = belfry::internal::intent::Intent::write(
        dir.path(),
        &intent_of("lost", &here, dead_pid(), boot.as_deref()),
    )
    .unwrap();
    assert!(intent.path().exists());

    // Eight processes open the store at once and look.
    let found: Vec<usize> = std::thread::scope(|s| {
        let lookers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut store = Store::open(&db).unwrap();
                    belfry::internal::reap_crashed(&mut store, &cfg)
                        .unwrap()
                        .len()
                })
            })
            .collect();
        lookers.into_iter().map(|l| l.join().unwrap()).collect()
    });
    assert_eq!(found.iter().sum::<usize>(), 1, "{found:?}");
    let store = Store::open(&db).unwrap();
    let runs = store.runs("job-lost", 10, false).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, State::Crashed);
    assert!(runs[0].notified);
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
    assert!(intents_left(dir.path()).is_empty());
}

#[test]
fn intents_of_live_wrappers_other_hosts_and_recorded_runs_are_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut store = Store::open(belfry::store_path(home)).unwrap();
    let cfg = Config::parse("[channels.c]\nurl = \"console://\"\n", "test").unwrap();
    let here = belfry::internal::host::host_name();
    let boot = belfry::internal::host::boot_id();
    let me = std::process::id();
    let write = |run| belfry::internal::intent::Intent::write(home, &run).unwrap();
    // A wrapper that is alive (this process): its run is starting.
    write(intent_of("alive", &here, me, boot.as_deref()));
    // Another host's wrapper, whatever its pid: not this host's to judge.
    write(intent_of(
        "elsewhere",
        "some-other-host",
        dead_pid(),
        Some("x"),
    ));
    // A wrapper that recorded its run and died before removing its intent.
    let done = dead_pid();
    write(intent_of("done", &here, done, boot.as_deref()));
    let ev = Event {
        job: "job-done".into(),
        state: State::Ok,
        at: Timestamp::now(),
        details: Details {
            run_id: Some("done".into()),
            exit_code: Some(0),
            ..Details::default()
        },
    };
    let end = RunEnd {
        event: &ev,
        output: None,
        output_bytes: 0,
    };
    belfry::internal::record_run(&mut store, &cfg, &end, false).unwrap();
    // A live pid, but written in an earlier boot: the machine restarted since.
    write(intent_of("rebooted", &here, me, Some("another-boot")));
    // Torn records (belfry killed while writing; the job was never spawned): one whose writer
    // is gone, one whose writer may still be writing.
    let torn_dead = format!("intent-{}-torn-dead", dead_pid());
    std::fs::write(home.join(&torn_dead), b"{\"id\":\"torn-dead\",\"jo").unwrap();
    std::fs::write(home.join(format!("intent-{me}-torn-live")), b"").unwrap();
    // Files that are not intents at all.
    std::fs::write(home.join("notes.txt"), b"hello").unwrap();
    std::fs::write(home.join("intent-of-mine"), b"hello").unwrap();

    let recs = belfry::internal::reap_crashed(&mut store, &cfg).unwrap();
    let crashed: Vec<&str> = recs
        .iter()
        .map(|r| r.notification.as_ref().unwrap().job.as_str())
        .collect();
    assert_eq!(crashed, ["job-rebooted"]);
    assert_eq!(
        store.runs("job-done", 10, false).unwrap()[0].state,
        State::Ok
    );
    assert!(store.runs("job-torn-dead", 10, false).unwrap().is_empty());
    assert!(store.runs("job-alive", 10, false).unwrap().is_empty());
    let left = intents_left(home);
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left.contains(&format!("intent-{me}-alive")), "{left:?}");
    assert!(left.contains(&format!("intent-{me}-torn-live")), "{left:?}");
    assert!(left.contains(&"notes.txt".to_owned()), "{left:?}");
    assert!(left.contains(&"intent-of-mine".to_owned()), "{left:?}");
    assert!(left.iter().any(|n| n.ends_with("-elsewhere")), "{left:?}");
    // Looking again finds nothing more.
    assert!(
        belfry::internal::reap_crashed(&mut store, &cfg)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_429_with_an_http_date_is_answered_by_waiting_until_that_date() {
    let until = std::time::SystemTime::now() + Duration::from_secs(4);
    let rx = Receiver::start(vec![
        Reply::status(429).header("Retry-After", &httpdate::fmt_http_date(until)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    record_failure(&mut store, &cfg, "j");
    let report = belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
    // An HTTP date counts whole seconds: the wait ends within the second before `until`.
    let wait = report.failed[0].retry_at.unwrap().since(Timestamp::now());
    assert!(
        wait > Duration::from_millis(2900) && wait <= Duration::from_secs(4),
        "{wait:?}"
    );
    // Deliver as often as anyone likes: no attempt before the date.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2500) {
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(1)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rx.requests().len(), 1);
    std::thread::sleep(wait.saturating_sub(t.elapsed()) + Duration::from_millis(50));
    let report = belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
    assert_eq!(report.delivered, ["hook"]);
    assert_eq!(rx.requests().len(), 2);
}

#[test]
fn permanent_failures_are_not_retried_and_are_dead_with_their_reason() {
    for (status, body) in [(400, "invalid_payload"), (401, "bad credentials")] {
        let rx = Receiver::start(vec![Reply::status(status).body(body)]);
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("b.db")).unwrap();
        let cfg = config(&format!("json://{}/x", rx.addr()));
        let ids = record_failure(&mut store, &cfg, "j");
        let report =
            belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
        assert_eq!(report.failed[0].retry_at, None, "{status} is permanent");
        let (state, reason, attempts) = store.outbox_row_status(ids[0]).unwrap().unwrap();
        assert_eq!((state.as_str(), attempts), ("dead", 1));
        let reason = reason.unwrap();
        assert!(
            reason.contains(&status.to_string()) && reason.contains(body),
            "{reason}"
        );
        std::thread::sleep(Duration::from_millis(1100));
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(2)).unwrap();
        assert_eq!(rx.requests().len(), 1, "{status} was not retried");
    }
}

#[test]
fn a_paced_destination_gets_its_rate_and_does_not_hold_up_another() {
    let paced = Receiver::start(vec![]);
    let free = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = Config::parse(
        &format!(
            "[channels.paced]\nurl = \"json://{}/x\"\nrate = 4.0\nburst = 1\n\
             [channels.free]\nurl = \"json://{}/x\"\n",
            paced.addr(),
            free.addr()
        ),
        "test",
    )
    .unwrap();
    for j in 0..5 {
        record_failure(&mut store, &cfg, &format!("job-{j}"));
    }
    let report =
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(10)).unwrap();
    assert_eq!(report.delivered.len(), 10);
    let p = paced.requests();
    let f = free.requests();
    // Four a second, one at a time: the five are spread over at least a second.
    let span = p[4].at - p[0].at;
    assert!(span >= Duration::from_millis(950), "{span:?}");
    // The other destination did not wait for the paced one.
    assert!(f[4].at < p[4].at, "{:?} vs {:?}", f[4].at, p[4].at);
}

#[test]
fn configured_command_and_file_channels_deliver_from_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("stdin.json");
    let args = dir.path().join("args.txt");
    let lines = dir.path().join("alerts.jsonl");
    let text = format!(
        "[channels.script]\n\
         command = [\"sh\", \"-c\", \"cat > {}; printf '%s|' \\\"$@\\\" > {}\", \"sh\", \"{{job}}\", \"{{state}}\", \"{{title}}\"]\n\
         timeout = \"10s\"\n\n\
         [channels.log]\n\
         url = \"file://{}\"\n",
        got.display(),
        args.display(),
        lines.display()
    );
    let cfg = Config::parse(&text, "test").unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    record_failure(&mut store, &cfg, "nightly; rm -rf ~");
    let report =
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(10)).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.delivered.len(), 2);

    // The notification JSON on the program's standard input, and the same line in the file.
    let stdin = std::fs::read_to_string(&got).unwrap();
    assert!(stdin.contains(r#""job":"nightly; rm -rf ~""#), "{stdin}");
    assert!(stdin.contains(r#""state":"failed""#), "{stdin}");
    assert_eq!(std::fs::read_to_string(&lines).unwrap(), stdin);
    assert_eq!(
        std::fs::read_to_string(&args).unwrap(),
        "nightly; rm -rf ~|failed|nightly; rm -rf ~: Failed|"
    );
}

#[test]
fn a_429_with_only_a_rate_limit_header_waits_as_long_as_that_says() {
    let rx = Receiver::start(vec![
        Reply::status(429).header("X-RateLimit-Reset-After", "2.5"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    record_failure(&mut store, &cfg, "j");
    let report = belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(5)).unwrap();
    let wait = report.failed[0].retry_at.unwrap().since(Timestamp::now());
    assert!(
        wait > Duration::from_millis(2000) && wait <= Duration::from_millis(2500),
        "{wait:?}"
    );
}

/// A backlog big enough that the pass moves its store calls to a thread of their own: every
/// row is sent once and recorded, the failures with theirs, nothing left claimed.
#[test]
fn a_backlog_is_sent_once_each_with_every_outcome_recorded() {
    // Every seventh request is refused for good (a retry could come back within the pass); the
    // rest are delivered.
    let mut replies = Vec::new();
    for i in 0..700 {
        replies.push(if i % 7 == 3 {
            Reply::status(400)
        } else {
            Reply::status(200)
        });
    }
    let rx = Receiver::start_with_fallback(replies, Reply::status(200));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    let mut ids = Vec::new();
    for i in 0..700 {
        ids.extend(record_failure(&mut store, &cfg, &format!("job-{i}")));
    }
    assert_eq!(ids.len(), 700);
    let report =
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_secs(120)).unwrap();
    let requests = rx.requests();
    assert_eq!(requests.len(), 700, "one request a row");
    let keys: std::collections::HashSet<&str> = requests
        .iter()
        .map(|r| r.header("Idempotency-Key").unwrap())
        .collect();
    assert_eq!(keys.len(), 700, "no row sent twice");
    assert_eq!(report.delivered.len() + report.failed.len(), 700);
    assert_eq!(report.failed.len(), 100);
    let counts = store.outbox_counts().unwrap();
    assert_eq!(counts.delivered, 600);
    assert_eq!(counts.dead, 100, "the refused ones are dead");
    assert_eq!(counts.pending + counts.sending, 0, "{counts:?}");
}

/// A pass whose time runs out in the middle of a backlog gives back what it did not try.
#[test]
fn a_backlog_cut_short_by_the_deadline_leaves_no_row_claimed() {
    let rx =
        Receiver::start_with_fallback(vec![], Reply::status(200).delay(Duration::from_millis(5)));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("b.db")).unwrap();
    let cfg = config(&format!("json://{}/x", rx.addr()));
    for i in 0..600 {
        record_failure(&mut store, &cfg, &format!("job-{i}"));
    }
    let report =
        belfry::internal::deliver(&cfg, &mut store, None, Duration::from_millis(300)).unwrap();
    let counts = store.outbox_counts().unwrap();
    assert!(report.delivered.len() < 600, "{}", report.delivered.len());
    assert_eq!(counts.sending, 0, "no lease left held: {counts:?}");
    assert_eq!(counts.delivered, report.delivered.len() as u64);
    assert_eq!(counts.delivered + counts.pending, 600, "{counts:?}");
}
