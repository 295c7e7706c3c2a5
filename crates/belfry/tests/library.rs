//! The Rust library against a real store in a temporary directory and a real HTTP receiver
//! on loopback: watched functions, the tracing layer, storms, tasks, supervisors, and (in
//! child processes, since they are process-wide) `init`, the guard's flush and the panic
//! hook.

use std::process::Command;
use std::time::Duration;

use belfry::store::Store;
use belfry::{Belfry, Guard, State, Task, handler, only_states};
use belfry_testkit::{Receiver, Reply};
use serde_json::Value;
use tracing_subscriber::prelude::*;

const FLUSH: Duration = Duration::from_secs(10);

/// A client with a JSON webhook to `rx` (as channel `hook`) and its own state directory.
fn client(dir: &tempfile::TempDir, rx: &Receiver) -> Guard {
    Belfry::builder()
        .channel("hook", format!("json://{}/belfry", rx.addr()))
        .home(dir.path())
        .quiet(true)
        .build()
        .expect("a client")
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(belfry::store_path(dir.path())).expect("the store")
}

/// Every notification the receiver got, as JSON.
fn posts(rx: &Receiver) -> Vec<Value> {
    rx.requests().iter().map(|r| r.json()).collect()
}

fn digest_count(n: &Value) -> u64 {
    n["digest"]["count"].as_u64().unwrap_or(1)
}

// ---- #[watch] ----

#[derive(Debug)]
struct LoadError {
    table: &'static str,
    source: std::io::Error,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot load table {}", self.table)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[belfry::watch]
fn load_table(fail: bool) -> Result<u32, LoadError> {
    if fail {
        return Err(LoadError {
            table: "users",
            source: std::io::Error::other("disk quota exceeded"),
        });
    }
    Ok(7)
}

#[test]
fn a_watched_call_records_ok_then_failed_with_the_error_and_its_causes() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let c = guard.client().clone();
    c.in_scope(|| {
        assert_eq!(load_table(false).unwrap(), 7);
        assert!(load_table(true).is_err());
    });
    let report = guard.finish();
    assert!(report.is_complete(), "{report}");
    // OK (first run) then Failed (a problem): two posts, or one if both waited for the
    // delivery thread together, folded into the current state with both counted.
    let posts = posts(&rx);
    assert!(!posts.is_empty() && posts.len() <= 2, "{posts:#?}");
    assert!(posts.iter().all(|p| p["job"] == "library::load_table"));
    if posts.len() == 2 {
        assert_eq!(
            (&posts[0]["state"], &posts[0]["reason"]),
            (&"ok".into(), &"first_run".into())
        );
    }
    let last = posts.last().unwrap();
    assert_eq!(last["state"], "failed");
    assert_eq!(last["reason"], "problem");
    assert_eq!(
        last["error"],
        "cannot load table users\ncaused by: disk quota exceeded"
    );
    assert!(last["duration_seconds"].as_f64().is_some());
    assert_eq!(posts.iter().map(digest_count).sum::<u64>(), 2);
    let job = store(&dir).job("library::load_table").unwrap().unwrap();
    assert_eq!(job.state, Some(State::Failed));
    let stats = c.stats();
    assert_eq!((stats.received, stats.recorded, stats.lost), (2, 2, 0));
}

#[belfry::watch(name = "import.async", repeat_failures_after = "1h")]
async fn import(n: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    tokio::task::yield_now().await;
    if n == 0 {
        return Err("nothing to import".into());
    }
    let parsed: u32 = "12".parse()?;
    Ok(parsed + n)
}

#[test]
fn a_flush_given_all_the_time_there_is_delivers_and_returns_instead_of_panicking() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    guard
        .client()
        .in_scope(|| assert!(load_table(true).is_err()));
    let report = guard.client().flush(Duration::MAX);
    assert!(report.is_complete(), "{report}");
    assert_eq!(posts(&rx).len(), 1);
}

#[test]
fn an_async_watched_call_is_recorded_under_its_name_with_its_options() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    guard.client().in_scope(|| {
        assert_eq!(rt.block_on(import(1)).unwrap(), 13);
        for _ in 0..5 {
            assert!(rt.block_on(import(0)).is_err());
        }
    });
    let report = guard.finish();
    assert!(report.is_complete(), "{report}");
    let posts = posts(&rx);
    assert!(posts.iter().all(|p| p["job"] == "import.async"));
    // OK (first run), then Failed (a problem) once: the other failures, inside the repeat
    // window of an hour, are counted, and told in a digest at the flush (or in the problem's
    // own message, if the worker took them in the same batch). Messages waiting for the
    // channel together are folded into the latest. Either way the counts add up, and the
    // channel hears the current state last.
    assert!(!posts.is_empty() && posts.len() <= 3, "{posts:#?}");
    assert_eq!(posts.last().unwrap()["state"], "failed", "{posts:#?}");
    assert_eq!(posts.iter().map(digest_count).sum::<u64>(), 6, "{posts:#?}");
    if posts.len() > 1 {
        assert_eq!(
            (posts[0]["state"].as_str(), digest_count(&posts[0])),
            (Some("ok"), 1)
        );
    }
}

// Both failures below compile only if the async body is checked against the declared return
// type: `Box::new(e)` becomes a `Box<dyn Error + Send + Sync>` because the function says so.
#[belfry::watch(name = "fetch.async")]
async fn fetch(path: &str) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    tokio::task::yield_now().await;
    if path.is_empty() {
        return Err(Box::new(std::io::Error::other("no path given")));
    }
    if path.len() > 8 {
        Err(Box::new(std::io::Error::other(format!("{path}: too long"))))
    } else {
        Ok(path.len())
    }
}

#[test]
fn an_async_body_gets_the_declared_return_type_for_its_returns_and_its_tail() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    guard.client().in_scope(|| {
        let e = rt.block_on(fetch("")).unwrap_err();
        assert!(e.is::<std::io::Error>(), "{e:?}");
    });
    guard.client().flush(FLUSH);
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(
        (posts[0]["state"].as_str(), posts[0]["error"].as_str()),
        (Some("failed"), Some("no path given"))
    );
    guard.client().in_scope(|| {
        assert!(rt.block_on(fetch("a-long-path.csv")).is_err());
    });
    guard.client().flush(FLUSH);
    let job = store(&dir).job("fetch.async").unwrap().unwrap();
    assert_eq!(
        (job.state, job.consecutive_problems),
        (Some(State::Failed), 2)
    );
    guard.finish();
}

/// A `Result` under another name: the macro cannot tell it from any other type, the compiler
/// can.
type Fallible<T> = Result<T, LoadError>;

fn missing_table() -> LoadError {
    LoadError {
        table: "orders",
        source: std::io::Error::other("no such file"),
    }
}

#[belfry::watch(name = "alias.sync")]
fn load_through_alias(fail: bool) -> Fallible<u32> {
    if fail { Err(missing_table()) } else { Ok(3) }
}

#[belfry::watch(name = "alias.async")]
async fn load_through_alias_async() -> Fallible<u32> {
    tokio::task::yield_now().await;
    Err(missing_table())
}

#[test]
fn a_result_under_an_alias_is_watched_like_any_result() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    guard.client().in_scope(|| {
        assert_eq!(load_through_alias(false).unwrap(), 3);
        assert!(load_through_alias(true).is_err());
        assert!(rt.block_on(load_through_alias_async()).is_err());
    });
    guard.finish();
    let s = store(&dir);
    for job in ["alias.sync", "alias.async"] {
        assert_eq!(
            s.job(job).unwrap().unwrap().state,
            Some(State::Failed),
            "{job}"
        );
    }
    let posts = posts(&rx);
    let failed: Vec<&Value> = posts.iter().filter(|p| p["state"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{posts:#?}");
    // Described through `std::error::Error`, with the cause, as without the alias.
    assert!(
        failed
            .iter()
            .all(|p| p["error"] == "cannot load table orders\ncaused by: no such file"),
        "{posts:#?}"
    );
}

#[belfry::watch(name = "parse.only-io", errors = [std::io::Error])]
fn parse_or_read(input: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if input == "io" {
        return Err(Box::new(std::io::Error::other("read failed")));
    }
    Ok(input.parse::<u32>()?)
}

#[test]
fn with_errors_listed_only_those_types_are_failures_and_the_others_record_ok() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    guard.client().in_scope(|| {
        // A ParseIntError: not listed, so the job is OK.
        assert!(parse_or_read("not a number").is_err());
    });
    guard.client().flush(FLUSH);
    let s = store(&dir);
    assert_eq!(
        s.job("parse.only-io").unwrap().unwrap().state,
        Some(State::Ok)
    );
    guard
        .client()
        .in_scope(|| assert!(parse_or_read("io").is_err()));
    guard.client().flush(FLUSH);
    assert_eq!(
        s.job("parse.only-io").unwrap().unwrap().state,
        Some(State::Failed)
    );
    let posts = posts(&rx);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1]["error"], "read failed");
}

#[belfry::watch(name = "routed", channels = ["ops"])]
fn routed(fail: bool) -> Result<(), String> {
    if fail { Err("boom".into()) } else { Ok(()) }
}

#[test]
fn channels_listed_on_the_function_are_the_only_ones_it_notifies() {
    let ops = Receiver::start(vec![]);
    let other = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = Belfry::builder()
        .channel("ops", format!("json://{}/ops", ops.addr()))
        .channel("other", format!("json://{}/other", other.addr()))
        .home(dir.path())
        .quiet(true)
        .build()
        .unwrap();
    guard.client().in_scope(|| routed(true).unwrap_err());
    guard.finish();
    assert_eq!(posts(&ops).len(), 1);
    assert_eq!(posts(&ops)[0]["error"], "boom");
    assert!(other.requests().is_empty());
}

#[belfry::watch(name = "panicky")]
fn panicky(boom: bool) -> Result<u8, std::io::Error> {
    if boom {
        panic!("index out of bounds: the len is 3");
    }
    Ok(1)
}

#[test]
fn a_panic_in_a_watched_function_is_recorded_as_crashed_and_keeps_unwinding() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let caught = guard
        .client()
        .in_scope(|| std::panic::catch_unwind(|| panicky(true)));
    let payload = caught.expect_err("the panic goes on after belfry recorded it");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"index out of bounds: the len is 3")
    );
    guard.finish();
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["state"], "crashed");
    assert!(
        posts[0]["error"]
            .as_str()
            .unwrap()
            .contains("index out of bounds: the len is 3"),
        "{}",
        posts[0]["error"]
    );
}

#[belfry::watch(name = "digested")]
fn fails_then_panics(boom: bool) -> Result<u8, std::io::Error> {
    if boom {
        panic!("worse");
    }
    Err(std::io::Error::other("bad"))
}

#[test]
fn a_digest_of_held_back_problems_describes_its_last_event() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let c = guard.client().clone();
    c.in_scope(|| fails_then_panics(false)).unwrap_err();
    assert_eq!(rx.wait_for(1, FLUSH).len(), 1);
    // A crash inside the repeat window is held back, then told at the flush.
    c.in_scope(|| std::panic::catch_unwind(|| fails_then_panics(true)))
        .unwrap_err();
    assert!(guard.finish().is_complete());
    let posts = posts(&rx);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let digest = &posts[1];
    assert_eq!(digest["state"], "crashed");
    assert_eq!(digest["previous_state"], "failed", "{digest:#}");
    assert_eq!(digest["consecutive_problems"], 2, "{digest:#}");
    assert_eq!(digest_count(digest), 1);
}

struct Importer {
    rows: Vec<u32>,
}

impl Importer {
    #[belfry::watch(name = "importer.take")]
    fn take(&mut self, n: usize) -> std::io::Result<Vec<u32>> {
        if n > self.rows.len() {
            return Err(std::io::Error::other(format!(
                "only {} rows",
                self.rows.len()
            )));
        }
        Ok(self.rows.drain(..n).collect())
    }

    #[belfry::watch]
    async fn first(&self) -> Result<&u32, String> {
        self.rows.first().ok_or_else(|| "empty".to_owned())
    }
}

#[belfry::watch(name = "generic.parse")]
fn parse_as<T: std::str::FromStr>(s: &str) -> Result<T, T::Err>
where
    T::Err: std::fmt::Debug,
{
    s.parse()
}

#[test]
fn methods_borrowed_results_and_generic_functions_can_be_watched() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    guard.client().in_scope(|| {
        let mut imp = Importer {
            rows: vec![1, 2, 3],
        };
        assert_eq!(imp.take(2).unwrap(), [1, 2]);
        assert!(imp.take(5).is_err());
        assert_eq!(rt.block_on(imp.first()), Ok(&3));
        assert_eq!(parse_as::<u8>("7"), Ok(7));
        assert!(parse_as::<u8>("300").is_err());
    });
    guard.finish();
    let s = store(&dir);
    let state = |job: &str| s.job(job).unwrap().and_then(|j| j.state);
    assert_eq!(state("importer.take"), Some(State::Failed));
    assert_eq!(state("library::first"), Some(State::Ok));
    assert_eq!(state("generic.parse"), Some(State::Failed));
    let failed: Vec<Value> = posts(&rx)
        .into_iter()
        .filter(|p| p["job"] == "generic.parse" && p["state"] == "failed")
        .collect();
    // In a generic function only the bounds are known (here `Debug`): the error is described
    // through them.
    assert_eq!(failed[0]["error"], "ParseIntError { kind: PosOverflow }");
}

// ---- the tracing layer ----

#[test]
fn the_layer_notifies_errors_for_the_job_field_or_the_target_with_fields_and_spans() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let subscriber = tracing_subscriber::registry().with(guard.client().layer());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("billing_run", batch = 7);
        let _e = span.enter();
        let err = std::io::Error::other("connection refused");
        tracing::error!(
            job = "billing",
            invoice = 42,
            error = &err as &dyn std::error::Error,
            "charge failed"
        );
        tracing::warn!("only a warning");
        tracing::info!("fine");
        tracing::error!(target: "reports", "no template");
    });
    guard.finish();
    let mut posts = posts(&rx);
    posts.sort_by_key(|p| p["job"].as_str().unwrap().to_owned());
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let billing = &posts[0];
    assert_eq!(billing["job"], "billing");
    assert_eq!(billing["state"], "failed");
    assert_eq!(
        billing["error"], "charge failed: connection refused",
        "{billing:#}"
    );
    assert_eq!(billing["fields"]["invoice"], "42");
    assert_eq!(billing["fields"]["target"], "library");
    assert_eq!(billing["fields"]["spans"], "billing_run{batch=7}");
    assert!(
        billing["fields"]["location"]
            .as_str()
            .unwrap()
            .starts_with("crates/belfry/tests/library.rs:")
    );
    assert_eq!(posts[1]["job"], "reports");
    assert_eq!(posts[1]["error"], "no template");
}

#[test]
fn the_layer_can_take_warnings_too() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let layer = guard.client().layer().with_level(tracing::Level::WARN);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::warn!(job = "disk", "85% full");
        tracing::info!(job = "disk", "fine");
    });
    guard.finish();
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1);
    assert_eq!(
        (
            posts[0]["job"].as_str(),
            posts[0]["fields"]["level"].as_str()
        ),
        (Some("disk"), Some("WARN"))
    );
}

#[test]
fn belfrys_own_events_never_become_alerts() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let subscriber = tracing_subscriber::registry().with(guard.client().layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(target: "belfry", "belfry itself");
        tracing::error!(target: "belfry::worker", "belfry's worker");
        tracing::error!(target: "belfry_channels", "a channel");
    });
    let report = guard.finish();
    assert!(rx.requests().is_empty());
    assert!(report.is_complete());
}

#[test]
fn an_error_storm_becomes_a_handful_of_digests_whose_counts_add_up() {
    // Sampled, as by default (the layer formats a few events a clock tick and counts the
    // rest), and every event formatted, which with a small queue sends most of the storm
    // through the overflow's collapsing.
    for sampled in [true, false] {
        storm(sampled);
    }
}

fn storm(sampled: bool) {
    const EVENTS: u64 = 200_000;
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = Belfry::builder()
        .channel("hook", format!("json://{}/belfry", rx.addr()))
        .home(dir.path())
        .queue_capacity(64)
        .quiet(true)
        .build()
        .unwrap();
    let layer = guard.client().layer().with_storm_sampling(sampled);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..EVENTS {
            tracing::error!(job = "storm", attempt = i, "cache unreachable");
        }
    });
    let c = guard.client().clone();
    let report = guard.finish();
    assert!(report.is_complete(), "{report}");
    let stats = c.stats();
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.received, EVENTS);
    if !sampled {
        assert!(stats.collapsed > 0, "{stats:?}");
    }
    let posts = posts(&rx);
    assert!(
        (1..=12).contains(&posts.len()),
        "sampled {sampled}: {} messages for one storm",
        posts.len()
    );
    let total: u64 = posts.iter().map(digest_count).sum();
    assert_eq!(total, EVENTS, "sampled {sampled}: {posts:#?}");
    let last = posts.last().unwrap();
    assert_eq!(last["error"], "cache unreachable");
    // The last message describes the storm's last event when every event is formatted; when
    // sampled, one formatted at most a clock tick before it.
    let attempt: u64 = last["fields"]["attempt"].as_str().unwrap().parse().unwrap();
    if sampled {
        assert!(attempt >= EVENTS / 2, "{attempt}");
    } else {
        assert_eq!(attempt, EVENTS - 1);
    }
}

#[test]
fn the_guards_flush_does_not_wait_out_the_digest_window() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[delivery]\ndigest_window = \"1h\"\n[channels.hook]\nurl = \"json://{}/belfry\"\n",
        rx.addr()
    );
    let guard = Belfry::builder()
        .config(belfry::Config::parse(&toml, "the test").unwrap())
        .home(dir.path())
        .quiet(true)
        .flush_timeout(FLUSH)
        .build()
        .unwrap();
    let c = guard.client().clone();
    c.in_scope(|| load_table(true)).unwrap_err();
    // Once the failure has reached the channel, the recovery is held by the window (an hour).
    assert_eq!(rx.wait_for(1, FLUSH).len(), 1);
    c.in_scope(|| load_table(false)).unwrap();
    // The program ends: nothing more is coming to fold in, so the flush sends it now.
    let report = guard.finish();
    assert!(report.is_complete(), "{report}");
    let posts = posts(&rx);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[1]["kind"], "recovered");
}

// ---- tasks ----

#[test]
fn a_task_retries_and_its_handlers_see_every_change_in_order() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let retries = seen.clone();
    let mut calls = 0;
    let result = guard.client().in_scope(|| {
        Task::new("load")
            .retries(3)
            .retry_delay(Duration::from_millis(20))
            .on_state_change(move |job: &str, old: &State, new: &State| {
                log.lock()
                    .unwrap()
                    .push(format!("{job}: {} -> {}", old.name(), new.name()));
            })
            .on_state_change(handler(
                only_states(["retrying"]),
                move |_: &str, _: &State, new: &State| {
                    if let State::Retrying { attempt, .. } = new {
                        retries.lock().unwrap().push(format!("attempt {attempt}"));
                    }
                },
            ))
            .run(|| {
                calls += 1;
                if calls < 3 { Err("busy") } else { Ok(calls) }
            })
    });
    assert_eq!(result.unwrap(), 3);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "load: running -> retrying",
            "attempt 2",
            "load: retrying -> running",
            "load: running -> retrying",
            "attempt 3",
            "load: retrying -> running",
            "load: running -> ok",
        ]
    );
    guard.finish();
    let runs = store(&dir).runs("load", 10, false).unwrap();
    assert_eq!(runs.len(), 1, "one run, however many attempts");
    assert_eq!(runs[0].state, State::Ok);
    assert_eq!(posts(&rx)[0]["job"], "load");
}

#[test]
fn a_task_that_keeps_failing_ends_failed_with_its_last_error() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = failures.clone();
    let err = guard.client().in_scope(|| {
        Task::new("flaky")
            .retries(2)
            .on_failure(move |job: &str, st: &State| f.lock().unwrap().push((job.to_owned(), *st)))
            .run(|| Err::<(), _>("attempt failed".to_string()))
            .unwrap_err()
    });
    assert_eq!(err.state(), &State::Failed);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.error().map(String::as_str), Some("attempt failed"));
    assert_eq!(
        *failures.lock().unwrap(),
        [("flaky".to_owned(), State::Failed)]
    );
    guard.finish();
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["state"], "failed");
    assert_eq!(posts[0]["error"], "attempt failed");
    assert_eq!(posts[0]["fields"]["attempts"], "3");
}

#[test]
fn a_handler_may_replace_the_state_and_a_broken_handler_is_recorded_without_changing_the_outcome() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let (skipped, kept) = guard.client().in_scope(|| {
        let skipped = Task::new("optional")
            .on_state_change(|_: &str, _: &State, new: &State| {
                (*new == State::Failed).then_some(State::Skipped)
            })
            .run(|| Err::<(), _>("nothing to do"))
            .unwrap_err();
        let kept = Task::new("sturdy")
            .on_state_change(|_: &str, _: &State, _: &State| -> Result<(), String> {
                Err("the pager is down".into())
            })
            .on_state_change(|_: &str, _: &State, _: &State| -> Option<State> {
                panic!("handler bug")
            })
            .run(|| Ok::<_, String>(5));
        (skipped, kept)
    });
    assert_eq!(skipped.state(), &State::Skipped);
    assert_eq!(
        kept.unwrap(),
        5,
        "a broken handler does not change the outcome"
    );
    guard.client().in_scope(|| {
        let strict = Task::new("strict")
            .handler_errors_fail(true)
            .on_state_change(|_: &str, _: &State, _: &State| -> Result<(), &str> {
                Err("audit log unavailable")
            })
            .run(|| Ok::<_, String>(1))
            .unwrap_err();
        assert_eq!(strict.state(), &State::Failed);
        assert_eq!(strict.handler_errors().len(), 1);
    });
    guard.finish();
    let s = store(&dir);
    let handlers = s.job("sturdy.handlers").unwrap().unwrap();
    assert_eq!(handlers.state, Some(State::Failed));
    // Both failures of the handlers are told (collapsed or not, as the worker found them).
    let texts: String = posts(&rx)
        .iter()
        .filter(|p| p["job"] == "sturdy.handlers")
        .map(|p| format!("{} {}", p["error"], p["digest"]["first_error"]))
        .collect();
    assert!(
        texts.contains("state handler 1 failed on running → ok: the pager is down")
            && texts.contains("state handler 2 panicked on running → ok: handler bug"),
        "{texts}"
    );
    assert_eq!(
        s.runs("optional", 1, false).unwrap()[0].state,
        State::Skipped
    );
}

#[test]
fn a_sync_attempt_past_its_time_limit_is_timed_out_and_retried() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let mut calls = 0;
    let result = guard.client().in_scope(|| {
        Task::new("slow")
            .retries(1)
            .timeout(Duration::from_millis(50))
            .run(|| {
                calls += 1;
                if calls == 1 {
                    std::thread::sleep(Duration::from_millis(120));
                }
                Ok::<_, String>(calls)
            })
    });
    assert_eq!(result.unwrap(), 2, "the late first attempt is discarded");
    let err = guard.client().in_scope(|| {
        Task::new("slow-always")
            .timeout(Duration::from_millis(20))
            .run(|| {
                std::thread::sleep(Duration::from_millis(60));
                Ok::<_, String>(())
            })
            .unwrap_err()
    });
    assert_eq!(err.state(), &State::TimedOut);
    guard.finish();
    let p = posts(&rx);
    let timed_out = p.iter().find(|p| p["job"] == "slow-always").unwrap();
    assert_eq!(timed_out["state"], "timed_out");
    assert!(
        timed_out["error"]
            .as_str()
            .unwrap()
            .contains("time limit of 20ms")
    );
}

#[test]
fn an_async_task_is_stopped_at_its_time_limit() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut attempts = 0;
    let err = guard.client().in_scope(|| {
        rt.block_on(
            Task::new("hangs")
                .retries(2)
                .retry_delay(Duration::from_secs(30))
                .timeout(Duration::from_secs(60))
                .run_async(|| {
                    attempts += 1;
                    async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok::<(), String>(())
                    }
                }),
        )
        .unwrap_err()
    });
    assert_eq!(
        (err.state(), err.attempts(), attempts),
        (&State::TimedOut, 3, 3)
    );
    guard.finish();
    assert_eq!(posts(&rx)[0]["state"], "timed_out");
}

// ---- the supervisor ----

#[test]
fn a_supervisor_summary_goes_out_with_its_log_gzipped() {
    use std::io::Read;
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let text = "exported row\n".repeat(5000);
    std::fs::write(&log, &text).unwrap();
    let guard = client(&dir, &rx);
    guard.client().in_scope(|| {
        let sup = belfry::Supervisor::new("nightly-report");
        sup.notify(belfry::Message {
            subject: "Nightly report: done".into(),
            body: "3 tables".into(),
            attachments: vec![belfry::Attachment::gzipped_file(&log).unwrap()],
        });
    });
    guard.finish();
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1);
    let n = &posts[0];
    assert_eq!(
        (n["title"].as_str(), n["message"].as_str()),
        (Some("Nightly report: done"), Some("3 tables"))
    );
    assert_eq!(n["reason"], "summary");
    let a = &n["attachments"][0];
    assert_eq!(a["filename"], "run.log.gz");
    assert_eq!(a["mimetype"], "application/gzip");
    use base64::Engine as _;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(a["base64"].as_str().unwrap())
        .unwrap();
    assert!(gz.len() < text.len() / 10);
    let mut back = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, text);
}

// ---- delivery that fails ----

#[test]
fn the_flush_says_what_it_could_not_deliver_and_leaves_it_in_the_outbox() {
    let rx = Receiver::start_with_fallback(vec![], Reply::status(503));
    let dir = tempfile::tempdir().unwrap();
    let guard = Belfry::builder()
        .channel("hook", format!("json://{}/belfry", rx.addr()))
        .home(dir.path())
        .flush_timeout(Duration::from_millis(1500))
        .quiet(true)
        .build()
        .unwrap();
    guard.client().in_scope(|| routed(true).unwrap_err());
    let report = guard.finish();
    assert_eq!(report.pending, 1, "{report}");
    assert!(!report.is_complete());
    let text = report.to_string();
    assert!(
        text.contains("1 notification not delivered by the flush (it may take 1.5s; its next try comes later); kept in the outbox"),
        "{text}"
    );
    assert!(!rx.requests().is_empty(), "it was tried");
    let counts = store(&dir).outbox_counts().unwrap();
    assert_eq!(counts.pending + counts.sending, 1, "{counts:?}");
}

#[test]
fn two_threads_flushing_at_once_both_get_an_answer() {
    let rx = Receiver::start(vec![Reply::ok().delay(Duration::from_millis(300))]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    guard.client().in_scope(|| routed(true).unwrap_err());
    let reports: Vec<belfry::FlushReport> = std::thread::scope(|s| {
        let a = s.spawn(|| guard.client().flush(FLUSH));
        let b = s.spawn(|| guard.client().flush(FLUSH));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for r in &reports {
        assert!(r.is_complete(), "{r}");
    }
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn an_unknown_channel_on_a_function_falls_back_to_the_configured_ones() {
    #[belfry::watch(name = "typo", channels = ["opps"])]
    fn typo() -> Result<(), String> {
        Err("x".into())
    }
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let guard = client(&dir, &rx);
    guard.client().in_scope(|| typo().unwrap_err());
    guard.finish();
    assert_eq!(posts(&rx).len(), 1, "the alert is not silenced by a typo");
}

#[test]
fn builder_errors_name_the_channel_and_hide_secrets() {
    let e = Belfry::builder()
        .channel("bad name!", "console://")
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad name!"), "{e}");
    let e = Belfry::builder()
        .channel("hook", "json://user:hunter2@")
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"hook\"") && !e.contains("hunter2"), "{e}");
}

// ---- the examples, as programs (each calls `belfry::init`, so each runs in a child) ----

#[path = "../examples/supervised_script.rs"]
mod supervised_script;
#[path = "../examples/task_retries.rs"]
mod task_retries;
#[path = "../examples/tracing_app.rs"]
mod tracing_app;
#[path = "../examples/watched_pipeline.rs"]
mod watched_pipeline;

#[test]
fn child_example() {
    match std::env::var("BELFRY_CHILD_EXAMPLE").as_deref() {
        Ok("supervised_script") => supervised_script::main().unwrap(),
        Ok("task_retries") => task_retries::main(),
        Ok("tracing_app") => tracing_app::main(),
        Ok("watched_pipeline") => watched_pipeline::main(),
        _ => {}
    }
}

#[test]
fn the_examples_run_with_no_setup_and_alert_on_the_console() {
    for (example, expected) in [
        (
            "supervised_script",
            &[
                "belfry: Nightly report: 3 tables exported — ",
                "[attached: nightly-report.log.gz (",
            ][..],
        ),
        ("task_retries", &["belfry: nightly-load: OK — "][..]),
        (
            "tracing_app",
            &[
                "belfry: billing: Failed — ",
                "charge failed: payment provider refused the connection",
                // Included here as a module: the target is this test's module path.
                "belfry: library::tracing_app: Failed — ",
            ][..],
        ),
        (
            "watched_pipeline",
            &[
                "belfry: pipeline.transform: Failed — ",
                "row 5 cannot be transformed",
                "belfry: library::watched_pipeline::extract: OK — ",
            ][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = child(
            "child_example",
            dir.path(),
            &[("BELFRY_CHILD_EXAMPLE", example)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{example}: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{example}: {e:?} not in {stderr}");
        }
    }
}

// ---- process-wide behaviour, in child processes ----

/// Runs this test binary again with `scenario` as the only test, in `home`, with `env`.
fn child(scenario: &str, home: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([scenario, "--exact", "--nocapture", "--test-threads=1"])
        .env("BELFRY_CHILD", scenario)
        .env("BELFRY_HOME", home)
        .env_remove("BELFRY_CONFIG")
        .env_remove("BELFRY_URLS")
        .env("BELFRY_BACKGROUND", "0")
        .current_dir(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn in_child(scenario: &str) -> bool {
    std::env::var("BELFRY_CHILD").as_deref() == Ok(scenario)
}

#[test]
fn child_init_watch_and_flush() {
    if !in_child("child_init_watch_and_flush") {
        return;
    }
    let _guard = belfry::init();
    let _ = load_table(true);
    // `_guard` drops here: the flush delivers before the process ends.
}

#[test]
fn init_reads_belfry_urls_and_the_guard_delivers_before_the_program_ends() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("json://{}/hook", rx.addr());
    let out = child(
        "child_init_watch_and_flush",
        dir.path(),
        &[("BELFRY_URLS", &url)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The child has exited: what it sent is all there is.
    let posts = posts(&rx);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["job"], "library::load_table");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("belfry:"),
        "a complete flush is silent: {stderr}"
    );
}

#[test]
fn the_guard_says_what_is_left_when_the_channel_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = belfry_testkit::closed_port();
    std::fs::write(
        dir.path().join("belfry.toml"),
        format!(
            "[channels.hook]\nurl = \"json://127.0.0.1:{port}/x\"\n[delivery]\nwait = \"1s\"\n"
        ),
    )
    .unwrap();
    let out = child("child_init_watch_and_flush", dir.path(), &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("belfry: 1 notification not delivered by the flush (it may take 1s; its next try comes later); kept in the outbox"),
        "{stderr}"
    );
    let counts = Store::open(belfry::store_path(dir.path()))
        .unwrap()
        .outbox_counts()
        .unwrap();
    assert_eq!(counts.pending + counts.sending, 1);
}

#[test]
fn child_panic_hook() {
    if !in_child("child_panic_hook") {
        return;
    }
    let _guard = belfry::init();
    belfry::install_panic_hook();
    let t = std::thread::Builder::new()
        .name("exporter".into())
        .spawn(|| panic!("export failed: 3 of 7 tables"))
        .unwrap();
    let _ = t.join();
    // Gone at once: no destructor, no flush. The crash must already be in the outbox.
    std::process::exit(3);
}

#[test]
fn the_panic_hook_writes_the_crash_to_the_outbox_before_the_previous_hook_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = belfry_testkit::closed_port();
    let url = format!("json://127.0.0.1:{port}/x");
    let out = child("child_panic_hook", dir.path(), &[("BELFRY_URLS", &url)]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("export failed: 3 of 7 tables"),
        "the previous hook still prints: {stderr}"
    );
    let mut s = Store::open(belfry::store_path(dir.path())).unwrap();
    let jobs = s.jobs().unwrap();
    let crashed: Vec<_> = jobs
        .iter()
        .filter(|j| j.state == Some(State::Crashed))
        .collect();
    assert_eq!(crashed.len(), 1, "{jobs:#?}");
    assert!(
        crashed[0].name.starts_with("library-"),
        "{}",
        crashed[0].name
    );
    let rows = s.outbox_rows(true, 10).unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].state, State::Crashed);
    let n = s
        .claim_due(
            belfry::core::Timestamp::now().add_millis(3_600_000),
            &belfry_store::Claim {
                owner: "test",
                lease: Duration::from_secs(1),
                ids: None,
                limit: 1,
                digest_window: Duration::ZERO,
                window_exempt: &[],
                in_order: &[],
            },
        )
        .unwrap();
    let n = &n[0].notification;
    let error = n.error.as_deref().unwrap();
    assert!(
        error.contains("tests/library.rs:") && error.contains("export failed: 3 of 7 tables"),
        "{error}"
    );
    assert_eq!(n.fields.get("thread").map(String::as_str), Some("exporter"));
    assert!(n.backtrace.as_deref().is_some_and(|b| !b.is_empty()));
}

#[test]
fn child_panic_in_a_watched_function() {
    if !in_child("child_panic_in_a_watched_function") {
        return;
    }
    let _guard = belfry::init();
    belfry::install_panic_hook();
    let t = std::thread::spawn(|| panicky(true));
    let _ = t.join();
    std::process::exit(3);
}

#[test]
fn a_panic_in_a_watched_function_is_one_crash_of_its_job_with_the_hooks_details() {
    let dir = tempfile::tempdir().unwrap();
    let port = belfry_testkit::closed_port();
    let url = format!("json://127.0.0.1:{port}/x");
    let out = child(
        "child_panic_in_a_watched_function",
        dir.path(),
        &[("BELFRY_URLS", &url)],
    );
    assert_eq!(out.status.code(), Some(3));
    let mut s = Store::open(belfry::store_path(dir.path())).unwrap();
    // Not the program's job too: one panic, one alert.
    let jobs = s.jobs().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["panicky"]);
    assert_eq!(jobs[0].state, Some(State::Crashed));
    // In the outbox before the process ended without a flush, with where it happened.
    let n = s
        .claim_due(
            belfry::core::Timestamp::now().add_millis(3_600_000),
            &belfry_store::Claim {
                owner: "test",
                lease: Duration::from_secs(1),
                ids: None,
                limit: 10,
                digest_window: Duration::ZERO,
                window_exempt: &[],
                in_order: &[],
            },
        )
        .unwrap();
    assert_eq!(n.len(), 1);
    let error = n[0].notification.error.as_deref().unwrap();
    assert!(
        error.contains("tests/library.rs:") && error.contains("the len is 3"),
        "{error}"
    );
    assert!(n[0].notification.backtrace.is_some());
}

#[test]
fn child_without_init() {
    if !in_child("child_without_init") {
        return;
    }
    let _ = load_table(false);
    let _ = load_table(false);
    assert_eq!(belfry::unrecorded_events(), 2);
}

#[test]
fn without_init_events_are_counted_and_the_first_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("child_without_init", dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("belfry::init() has not been called").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_watched_jobs_alert_that_no_channel_takes_is_said_on_stderr() {
    let rx = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("belfry.toml"),
        format!(
            "[channels.ops]\nurl = \"json://{}/ops\"\njobs = [\"backup-*\"]\n",
            rx.addr()
        ),
    )
    .unwrap();
    let out = child("child_init_watch_and_flush", dir.path(), &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("alert for library::load_table reaches no channel")
            && stderr.contains("ops: its jobs (backup-*) do not match library::load_table"),
        "{stderr}"
    );
    assert!(posts(&rx).is_empty());
}
