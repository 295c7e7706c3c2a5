//! The delivery engine as users meet it: real `belfry` processes, killed or racing, against
//! a real HTTP receiver on loopback that refuses, fails, then recovers.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use belfry_testkit::{Lcg, Receiver, Reply, eventually};
use common::{World, code, stderr};
use serde_json::Value;

/// A world with two configurations for one webhook: `record.toml`, with which `belfry run`
/// only records (no time to deliver, no background drainer), and `belfry.toml`, with which
/// `belfry deliver` sends. Leases are short so that a killed sender's rows come back soon.
fn recording_world(url: &str) -> World {
    let channel = format!("[channels.hook]\nurl = \"{url}\"\n");
    let w = World::with_config(&format!(
        "[delivery]\nlease = \"1s\"\ndigest_window = \"0s\"\n{channel}"
    ));
    std::fs::write(
        w.dir.path().join("record.toml"),
        format!("[delivery]\nwait = \"0s\"\nbackground = false\n{channel}"),
    )
    .unwrap();
    w
}

/// Records a failed run of `job`: one notification waiting in the outbox.
fn record_failure(w: &World, job: &str) {
    let o = w
        .cmd(&["run", "--quiet", "--name", job, "--", "false"])
        .env("BELFRY_CONFIG", w.dir.path().join("record.toml"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
}

/// Every outbox row, delivered ones too.
fn outbox(w: &World) -> Vec<Value> {
    w.json(&["outbox", "--all", "--json", "-n", "100000"])
        .as_array()
        .unwrap()
        .clone()
}

/// How many times each job's notification reached the receiver.
fn arrivals(rx: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in rx.requests() {
        *seen
            .entry(r.json()["job"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    seen
}

#[test]
fn killing_a_delivering_process_at_random_moments_loses_nothing() {
    // Each request takes a while to answer, so that kills land before, during and after sends.
    let rx = Receiver::start_with_fallback(vec![], Reply::ok().delay(Duration::from_millis(15)));
    let w = recording_world(&format!("json://{}/k", rx.addr()));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    let mut jobs = Vec::new();
    for trial in 0..20 {
        for i in 0..4 {
            let job = format!("k{trial}-{i}");
            record_failure(&w, &job);
            jobs.push(job);
        }
        let mut d = w
            .cmd(&["deliver"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        d.kill().unwrap(); // SIGKILL
        d.wait().unwrap();
    }
    // Whatever the killed processes held comes back when their leases run out.
    let done = eventually(Duration::from_secs(30), || {
        assert_eq!(code(&w.run(&["deliver"])), 0);
        outbox(&w).iter().all(|r| r["status"] == "delivered")
    });
    assert!(done, "seed {seed}: rows left: {:#?}", outbox(&w));
    let seen = arrivals(&rx);
    for job in &jobs {
        assert!(seen.contains_key(job), "seed {seed}: {job} was lost");
    }
    // A duplicate only comes from a sender that died between sending and recording, and
    // each such case is counted.
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let counted: u64 = outbox(&w)
        .iter()
        .map(|r| r["possible_duplicates"].as_u64().unwrap())
        .sum();
    assert!(
        duplicates as u64 <= counted,
        "seed {seed}: {duplicates} duplicates, {counted} counted"
    );
}

#[test]
fn two_deliver_processes_draining_one_outbox_send_each_row_once() {
    let rx = Receiver::start_with_fallback(vec![], Reply::ok().delay(Duration::from_millis(5)));
    let w = recording_world(&format!("json://{}/two", rx.addr()));
    for i in 0..30 {
        record_failure(&w, &format!("job-{i}"));
    }
    let a = w.cmd(&["deliver"]).stdout(Stdio::null()).spawn().unwrap();
    let b = w.cmd(&["deliver"]).stdout(Stdio::null()).spawn().unwrap();
    for mut p in [a, b] {
        assert!(p.wait().unwrap().success());
    }
    let seen = arrivals(&rx);
    assert_eq!(seen.len(), 30);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert!(outbox(&w).iter().all(|r| r["status"] == "delivered"));
}

#[test]
fn an_alert_held_by_the_digest_window_is_sent_when_the_window_ends() {
    let rx = Receiver::start(vec![]);
    // Every failure alerts (no repeat window), and a channel waits 2 s after a delivery.
    let w = World::with_config(&format!(
        "[policy]\nrepeat_failures_after = \"0s\"\n[delivery]\ndigest_window = \"2s\"\n\
         [channels.hook]\nurl = \"json://{}/held\"\n",
        rx.addr()
    ));
    let run = || {
        // The background drainer on, as users have it.
        let out = w
            .cmd(&["run", "--quiet", "--name", "held", "--", "false"])
            .env_remove("BELFRY_BACKGROUND")
            .output()
            .unwrap();
        assert_eq!(code(&out), 1, "{}", stderr(&out));
    };
    run();
    assert_eq!(rx.wait_for(1, Duration::from_secs(10)).len(), 1);
    // Inside the window: this run leaves its alert to the background drainer, which must send
    // it once the window has passed, with no `belfry deliver` and no further run.
    run();
    let reqs = rx.wait_for(2, Duration::from_secs(20));
    assert_eq!(reqs.len(), 2, "{:#?}", outbox(&w));
    assert_eq!(reqs[1].json()["reason"], "repeated");
    assert!(eventually(Duration::from_secs(10), || outbox(&w)
        .iter()
        .all(|r| r["status"] == "delivered")));
}

#[test]
fn the_console_prints_every_alert_at_once_whatever_the_digest_window() {
    let w = World::with_config(
        "[policy]\nrepeat_failures_after = \"0s\"\n[delivery]\ndigest_window = \"1h\"\n\
         [channels.term]\nurl = \"console://\"\n",
    );
    for (cmd, said) in [
        ("false", "first run of this job"),
        ("false", "Failed"),
        ("true", "Recovered"),
    ] {
        let out = w.run(&["run", "--name", "term", "--", cmd]);
        assert!(stderr(&out).contains(said), "{cmd}: {}", stderr(&out));
    }
    assert!(outbox(&w).iter().all(|r| r["status"] == "delivered"));
}

#[test]
fn through_an_outage_the_channel_gets_the_current_state_last_with_everything_counted() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{port}/outage\"\n"
    ));
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--quiet", "--name", "nightly", "--"];
        a.extend(args);
        // The background drainer on, as users have it.
        w.cmd(&a).env_remove("BELFRY_BACKGROUND").output().unwrap()
    };
    let outage = Instant::now();
    // While the receiver refuses connections: the job fails, recovers, fails again.
    assert_eq!(code(&run(&["false"])), 1);
    assert_eq!(code(&run(&["true"])), 0);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(code(&run(&["false"])), 1);
    std::thread::sleep(Duration::from_secs(2));
    // The receiver comes back, failing twice with 503 before it is healthy.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = Receiver::on(
        listener,
        vec![Reply::status(503), Reply::status(503)],
        Reply::ok(),
    );
    let delivered = eventually(Duration::from_secs(60), || {
        rx.requests().iter().any(|r| r.status_sent == 200)
    });
    assert!(delivered, "nothing delivered: {:#?}", outbox(&w));
    let outage_secs = outage.elapsed().as_secs_f64();
    // Only delivered rows remain, and nothing more is sent.
    assert!(eventually(Duration::from_secs(10), || outbox(&w)
        .iter()
        .all(|r| r["status"] == "delivered")));
    std::thread::sleep(Duration::from_millis(300));
    let reqs = rx.requests();
    assert_eq!(reqs.last().unwrap().status_sent, 200);
    assert_eq!(reqs.len(), 3, "two 503s, then one delivery");
    // What arrived last is the current truth, with everything in between counted.
    let last = reqs.last().unwrap().json();
    assert_eq!(last["state"], "failed");
    assert_eq!(last["digest"]["count"], 3, "{last:#}");
    let states: Vec<(String, u64)> = last["digest"]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("failed".into(), 2), ("ok".into(), 1)]);
    // Retries were paced by the backoff: never more than one a second, plus the one try each
    // `belfry run` makes at once.
    let attempts: u64 = outbox(&w)
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap())
        .sum();
    assert!(
        attempts as f64 <= 3.0 + outage_secs,
        "{attempts} attempts in {outage_secs:.1}s"
    );
}

#[test]
fn deliver_waits_for_a_retry_that_comes_due_within_its_wait() {
    // The first attempt (the run's own) gets a 503: the row is due again a second later.
    let rx = Receiver::start(vec![Reply::status(503)]);
    let w = World::with_config(&format!(
        "[delivery]\ndigest_window = \"0s\"\n[channels.hook]\nurl = \"json://{}/wait\"\n",
        rx.addr()
    ));
    let o = w.run(&["run", "--quiet", "--name", "j", "--", "false"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(outbox(&w)[0]["status"], "pending");
    // Well within the wait, the retry comes due: deliver waits for it and sends it.
    let o = w.run(&["deliver", "--wait", "60s", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["delivered"], 1, "{report:#}");
    assert_eq!(report["failed"], Value::Array(vec![]));
    assert_eq!(report["outbox"]["pending"], 0);
    assert_eq!(report["outbox"]["next_due"], Value::Null);
    assert_eq!(rx.requests().len(), 2);
    assert_eq!(outbox(&w)[0]["status"], "delivered");
}

#[test]
fn a_delivery_pass_that_gives_a_row_up_fails_and_says_which_and_why() {
    let port = belfry_testkit::closed_port();
    let w = recording_world(&format!("json://127.0.0.1:{port}/dead"));
    // Recorded with no time to deliver and a deadline already past when deliver looks.
    let record = w.dir.path().join("record.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(
        &record,
        text.replace("[delivery]\n", "[delivery]\ngive_up_after = \"1ms\"\n"),
    )
    .unwrap();
    record_failure(&w, "doomed");
    let id = outbox(&w)[0]["id"].as_i64().unwrap();
    let o = w.run(&["deliver", "--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "belfry: outbox row {id} (doomed to hook) is dead: delivery deadline passed; \
             `belfry outbox retry {id}` revives it\n"
        )
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["delivered"], 0);
    let failed = &report["failed"][0];
    assert_eq!(
        (
            failed["id"].as_i64(),
            failed["job"].as_str(),
            failed["status"].as_str()
        ),
        (Some(id), Some("doomed"), Some("dead"))
    );
    assert_eq!(failed["last_reason"], "delivery deadline passed");
    assert_eq!(report["outbox"]["dead"], 1);
    // The next pass gives nothing up: nothing to say, success.
    let o = w.run(&["deliver"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "delivered 0, failed 0; outbox: 0 pending, 1 dead\n"
    );
}

#[test]
fn a_service_asking_to_wait_longer_than_a_clock_holds_gets_a_century_not_a_panic() {
    for retry_after in [
        "100000000000000000000",
        "1e300",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let rx = Receiver::start_with_fallback(
            vec![],
            Reply::status(429).header("Retry-After", retry_after),
        );
        let w = recording_world(&format!("json://{}/far", rx.addr()));
        record_failure(&w, "far");
        let o = w.run(&["deliver", "--wait", "3s"]);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{retry_after}: {err}");
        assert!([0, 1].contains(&code(&o)), "{retry_after}: {err}");
        assert_eq!(rx.requests().len(), 1, "{retry_after}");
        let rows = outbox(&w);
        assert_eq!(rows.len(), 1, "{rows:?}");
        // The pause the service asked for, capped at 100 years, ends after the delivery
        // deadline: the row is given up on, as for any wait past it.
        assert_eq!(rows[0]["status"], "dead", "{retry_after}: {rows:?}");
        let text = w.run(&["outbox"]);
        assert_eq!(code(&text), 0, "{}", stderr(&text));
    }
}
