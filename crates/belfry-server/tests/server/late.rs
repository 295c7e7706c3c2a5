//! The promise of issue 12: a job that stops pinging is alerted `late` soon after its grace,
//! through the rules and the outbox to a real webhook receiver, and recovers on its next ping.

use std::io::Write;
use std::time::{Duration, Instant};

use belfry_testkit::Receiver;

use crate::support::TestServer;

/// Waits (at most `timeout`) for a webhook request whose JSON `field` is `value`; returns it
/// with when it arrived.
fn wait_for_json(
    rx: &Receiver,
    field: &str,
    value: &str,
    timeout: Duration,
) -> Option<(serde_json::Value, Instant)> {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while Instant::now() < deadline {
        let reqs = rx.requests();
        for r in &reqs[seen..] {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if v[field] == value {
                return Some((v, Instant::now()));
            }
        }
        seen = reqs.len();
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_silent_job_alerts_late_after_its_grace_and_recovers_on_the_next_ping() {
    let hook = Receiver::start(vec![]);
    let toml = format!(
        "[delivery]\ndigest_window = \"0s\"\n\
         [server]\nping_key = \"k\"\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n\
         [jobs.nightly]\nperiod = \"2s\"\ngrace = \"1s\"\n",
        hook.addr()
    );
    let server = TestServer::start(&toml);
    // Taken before the ping is sent: the server's clock read the ping's time after this, so
    // the deadline is no earlier than this plus period and grace.
    let pinged = Instant::now();
    let ping = server.request("GET", "/ping/k/nightly", b"");
    assert_eq!(ping.status, 200, "{}", ping.text());
    // The first report is a first run (belfry's rule: it notifies).
    let (first, _) = wait_for_json(&hook, "reason", "first_run", Duration::from_secs(30))
        .expect("the first run's message within 30 s");
    assert_eq!(first["state"], "ok", "{first}");

    let (late, at) = wait_for_json(&hook, "state", "late", Duration::from_secs(30))
        .expect("a late alert within 30 s of its deadline");
    assert_eq!(late["job"], "nightly", "{late}");
    let due = pinged + Duration::from_secs(3);
    assert!(at >= due, "alerted before period + grace had passed");
    let _ = writeln!(
        std::io::stderr().lock(),
        "late alert arrived {:?} after period + grace (measured from the ping's sending)",
        at - due
    );

    let ping = server.request("POST", "/ping/k/nightly", b"back");
    assert_eq!(ping.status, 200, "{}", ping.text());
    let (rec, _) = wait_for_json(&hook, "reason", "recovered", Duration::from_secs(30))
        .expect("a recovery within 30 s of the ping");
    assert_eq!(rec["job"], "nightly", "{rec}");
    assert_eq!(rec["state"], "ok", "{rec}");
    let text = server.running.as_ref().unwrap().metrics();
    assert!(
        text.contains("belfry_late_checks_total 1") || text.contains("belfry_late_checks_total 2"),
        "{text}"
    );
}

#[test]
fn a_restart_does_not_put_off_a_deadline() {
    let toml = "[server]\nping_key = \"k\"\n[jobs.nightly]\nperiod = \"1h\"\ngrace = \"1h\"\n";
    let mut server = TestServer::start(toml);
    assert_eq!(server.request("GET", "/ping/k/nightly", b"").status, 200);
    let late_at = |s: &TestServer| {
        s.store()
            .check(belfry_store::JobRef::Name("nightly"))
            .unwrap()
            .expect("the job")
            .late_at
            .expect("a deadline")
    };
    let before = late_at(&server);
    server.stop();
    // Some time passes (any will do: the deadline must not move with the restart).
    std::thread::sleep(Duration::from_millis(50));
    let home = std::mem::replace(&mut server.home, tempfile::tempdir().unwrap());
    let again = TestServer::start_in(toml, home);
    assert_eq!(late_at(&again), before);
    // A changed schedule is a new watch: its deadline is set anew.
    let home = {
        let mut again = again;
        again.stop();
        std::mem::replace(&mut again.home, tempfile::tempdir().unwrap())
    };
    let changed = TestServer::start_in(&toml.replace("grace = \"1h\"", "grace = \"2h\""), home);
    assert!(late_at(&changed) > before);
}

#[test]
fn a_start_with_no_finish_within_max_runtime_alerts_late() {
    let hook = Receiver::start(vec![]);
    let toml = format!(
        "[delivery]\ndigest_window = \"0s\"\n[server]\nping_key = \"k\"\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n\
         [jobs.slow]\nperiod = \"1h\"\ngrace = \"1h\"\nmax_runtime = \"1s\"\n",
        hook.addr()
    );
    let server = TestServer::start(&toml);
    // Before the start is sent, for the same reason as above.
    let started = Instant::now();
    assert_eq!(server.request("GET", "/ping/k/slow/start", b"").status, 200);
    let (late, at) = wait_for_json(&hook, "state", "late", Duration::from_secs(30))
        .expect("a late alert within 30 s of the run's longest time");
    assert_eq!(late["job"], "slow", "{late}");
    assert!(
        at >= started + Duration::from_secs(1),
        "alerted before max_runtime had passed"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "max_runtime alert arrived {:?} after the start + max_runtime",
        at - started - Duration::from_secs(1)
    );
}
