//! `belfry serve` as a user runs it: a real child process, pinged with curl, stopped by TERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use belfry_testkit::eventually;
use common::World;

/// Starts `belfry serve --listen 127.0.0.1:0` in `w` and reads the address it says it serves
/// on from its standard error.
fn serve(w: &World) -> (Child, String) {
    let mut child = w
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("belfry serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Other lines (a warning from a thread that started first) may come before it.
    let first = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("serving on http://"))
        .expect("belfry serve says where it serves");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    // Keep reading standard error, so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), code.to_owned())
}

/// Sends `child` the signal named `sig` (`"TERM"`, `"INT"`) with kill(1).
fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn term(child: &mut Child) -> i32 {
    signal(child, "TERM");
    term_wait(child)
}

#[test]
fn curl_pings_a_real_server_and_term_stops_it_with_exit_0() {
    let w = World::with_config(
        "[server]\nping_key = \"curl-key\"\n[jobs.nightly]\nperiod = \"1d\"\n\
         [channels.out]\nurl = \"file:///dev/null\"\n",
    );
    let (mut child, addr) = serve(&w);
    let base = format!("http://{addr}/ping/curl-key");
    let rows: &[(&[&str], &str, &str)] = &[
        (&[], "/nightly", "200 OK"),
        (&["--data-binary", "disk full"], "/nightly/fail", "200 OK"),
        (&["-I"], "/nightly/start", "200"),
        (&[], "/nightly/256", "400 invalid url format"),
        (&[], "/nightly?rid=x", "400 invalid uuid format"),
        (&[], "/nobody", "404 not found"),
        (&[], "/made-by-curl?create=1", "201 Created"),
        (&["-X", "OPTIONS"], "/nightly", "204"),
    ];
    for (opts, path, want) in rows {
        let mut args: Vec<&str> = opts.to_vec();
        let url = format!("{base}{path}");
        args.push(&url);
        let (body, code) = curl(&args);
        let got = if opts.contains(&"-I") || code == "204" {
            code.clone()
        } else {
            format!("{code} {body}")
        };
        assert_eq!(got, *want, "curl {args:?}");
    }
    let (body, code) = curl(&[&format!("http://{addr}/metrics")]);
    assert_eq!(code, "200");
    assert!(
        body.contains("belfry_pings_total{kind=\"fail\"} 1"),
        "{body}"
    );
    // `belfry status --json` shows each job's uuid, and a ping by it reaches the job.
    let out = w.run(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let uuid = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "made-by-curl")
        .and_then(|j| j["uuid"].as_str())
        .unwrap_or_else(|| panic!("no uuid for made-by-curl in {jobs}"))
        .to_owned();
    assert_eq!(uuid.len(), 36, "{uuid}");
    let (body, code) = curl(&[
        "--data-binary",
        "exit 3",
        &format!("http://{addr}/ping/{uuid}/3"),
    ]);
    assert_eq!(format!("{code} {body}"), "200 OK");
    let out = w.run(&["history", "made-by-curl", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["exit_code"], 3, "{runs}");
    assert_eq!(term(&mut child), 0);
}

#[test]
fn term_while_idle_exits_0_and_int_too() {
    let w = World::with_config("");
    let (mut child, addr) = serve(&w);
    let (body, code) = curl(&[&format!("http://{addr}/healthz")]);
    assert_eq!((code.as_str(), body.as_str()), ("200", "OK"));
    assert_eq!(term(&mut child), 0);

    let (mut child, _) = serve(&w);
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_busy_address_is_exit_1_and_a_bad_one_exit_2() {
    let w = World::with_config("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = w.run(&["serve", "--listen", &addr]);
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        common::stderr(&out)
    );
    let out = w.run(&["serve", "--listen", "nowhere"]);
    assert_eq!(common::code(&out), 2, "{}", common::stderr(&out));
    let w = World::with_config("[server]\nlisten = \"nowhere\"\n");
    let out = w.run(&["serve"]);
    assert_eq!(common::code(&out), 2, "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("server.listen"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_request_in_flight_when_term_comes_is_finished_and_recorded() {
    use std::io::{Read, Write};
    let w = World::with_config("[server]\nping_key = \"pk\"\n[jobs.nightly]\nperiod = \"1d\"\n");
    let (mut child, addr) = serve(&w);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Half the body now: the request is in the server's hands, waiting for the rest.
    s.write_all(
        b"POST /ping/pk/nightly/fail HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\ndisk ",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"full").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("OK"), "{answer:?}");
    assert_eq!(term_wait(&mut child), 0);
    let runs = w.history("nightly");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["state"], "failed", "{runs:?}");
}

fn term_wait(child: &mut Child) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status
                .code()
                .expect("belfry serve exits, it is not killed by TERM");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "belfry serve did not stop within 60 s of TERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_ping_key_is_never_shown() {
    let w = World::with_config("[server]\nping_key = \"${env:PK}\"\n");
    let mut c = w.cmd(&["config", "check"]);
    c.env("PK", "s3cret-ping-key");
    let out = c.output().unwrap();
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        common::stderr(&out)
    );
    assert!(text.contains("ping key set (not shown)"), "{text}");
    assert!(!belfry_testkit::reveals(&text, "s3cret-ping-key"), "{text}");
    // A key that cannot be one is refused without showing it.
    let mut c = w.cmd(&["config", "check"]);
    c.env("PK", "s3cret/ping/key");
    let out = c.output().unwrap();
    assert_eq!(common::code(&out), 2);
    assert!(
        !belfry_testkit::reveals(&common::stderr(&out), "s3cret/ping/key"),
        "{}",
        common::stderr(&out)
    );
}

/// A client world whose `belfry run` pings `base` (no channel of its own but a file, so that
/// nothing prints).
fn pinger(
    base: &str,
) -> (
    World,
    impl Fn(&World, &[&str]) -> std::process::Output + use<>,
) {
    let c = World::with_config("[channels.out]\nurl = \"file:///dev/null\"\n");
    let base = base.to_owned();
    let run =
        move |w: &World, args: &[&str]| w.cmd(args).env("BELFRY_PING_URL", &base).output().unwrap();
    (c, run)
}

/// The outbox rows of `w`'s pinger (every status with `all`, else the undelivered).
fn ping_rows(w: &World, all: bool) -> Vec<serde_json::Value> {
    let args: &[&str] = if all {
        &["outbox", "--json", "--all"]
    } else {
        &["outbox", "--json"]
    };
    let rows = w.json(args);
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["channel"]
                .as_str()
                .unwrap_or_default()
                .starts_with("ping:")
        })
        .cloned()
        .collect()
}

/// `belfry run --name x` in `w`, pinging `base`, of a script that waits for the file `go` in
/// `w`'s directory and then runs `then`.
fn gated_job(w: &World, base: &str, then: &str) -> Child {
    w.cmd(&["run", "--name", "x", "--", "sh", "-c"])
        .arg(format!("while [ ! -e go ]; do sleep 0.05; done; {then}"))
        .env("BELFRY_PING_URL", base)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn belfry_run_pings_the_start_and_the_finish_with_its_exit_code_and_output() {
    let s = World::with_config(
        "[server]\nping_key = \"ping-key-77\"\nping_body_limit = 50\n[jobs.x]\nperiod = \"1d\"\n\
         [channels.out]\nurl = \"file:///dev/null\"\n",
    );
    let (mut server, addr) = serve(&s);
    let base = format!("http://{addr}/ping/ping-key-77");
    let (c, _) = pinger(&base);
    // The job waits for the file `go`, made once the server shows the job running: the start
    // ping reached it while the job ran.
    let job = gated_job(
        &c,
        &base,
        "echo HEAD; printf '%0200d\\n' 0; echo hi; exit 3",
    );
    let started = eventually(Duration::from_secs(30), || {
        s.json(&["status", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "x" && !j["running_since"].is_null())
    });
    std::fs::write(c.dir.path().join("go"), "").unwrap();
    let out = job.wait_with_output().unwrap();
    assert!(
        started,
        "the start ping reached the server while the job ran"
    );
    assert_eq!(common::code(&out), 3, "{}", common::stderr(&out));
    assert!(!common::stderr(&out).contains("ping-key-77"));
    // The server paired the start with the finish: one run, with a duration, the exit code
    // and the output as its body.
    let runs = s.history("x");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["exit_code"], 3, "{runs:?}");
    assert_eq!(runs[0]["state"], "failed", "{runs:?}");
    assert!(
        runs[0]["duration_seconds"].as_f64().unwrap_or_default() > 0.0,
        "{runs:?}"
    );
    // The body was the output's end within the limit the start's answer named (50 bytes):
    // the server, which keeps a body's start, kept it whole.
    let output = runs[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.ends_with("hi\n") && !output.contains("HEAD"),
        "{runs:?}"
    );
    // On the client, both pings went out (the start while the job ran).
    let rows = ping_rows(&c, true);
    let delivered = rows.iter().filter(|r| r["status"] == "delivered").count();
    assert_eq!(delivered, 2, "{rows:?}");
    // A ping is not an alert: the job's last notification is its alert's.
    let status = c.json(&["status", "--json"]).to_string();
    assert!(status.contains("first_run"), "{status}");
    assert!(!status.contains("\"ping\""), "{status}");
    assert_eq!(term(&mut server), 0);
}

#[test]
fn a_server_that_is_down_does_not_hold_the_job_and_gets_the_ping_later() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}/ping/ping-key-88");
    let (c, run) = pinger(&base);
    // The job goes on once its start ping is in the outbox, undelivered.
    let job = gated_job(&c, &base, "echo hi; exit 3");
    let queued = eventually(Duration::from_secs(30), || {
        ping_rows(&c, true)
            .iter()
            .any(|r| r["state"] == "running" && r["attempts"] == 1)
    });
    std::fs::write(c.dir.path().join("go"), "").unwrap();
    let out = job.wait_with_output().unwrap();
    assert!(queued, "the start ping was tried while the job ran");
    assert_eq!(common::code(&out), 3, "{}", common::stderr(&out));
    // The pings wait in the outbox; no listing shows the key.
    for args in [&["outbox"][..], &["outbox", "--json", "--all"], &["status"]] {
        let shown = run(&c, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&shown.stdout),
            common::stderr(&shown)
        );
        assert!(!text.contains("ping-key-88"), "{args:?}: {text}");
    }
    assert!(!common::stderr(&out).contains("ping-key-88"));
    let pending = ping_rows(&c, false);
    assert!(!pending.is_empty());
    assert!(
        pending.iter().all(|r| r["status"] == "pending"),
        "{pending:?}"
    );

    // The server comes up; a `belfry deliver` with the same ping URL sends the finish, into
    // which the start that never went was folded: the server never sees a start after it.
    let s = World::with_config(
        "[server]\nping_key = \"ping-key-88\"\n[jobs.x]\nperiod = \"1d\"\n\
         [channels.out]\nurl = \"file:///dev/null\"\n",
    );
    let mut server = s
        .cmd(&["serve", "--listen", &addr])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    assert!(up, "belfry serve listens on {addr}");
    let out = run(&c, &["deliver", "--wait", "60s"]);
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert!(!common::stderr(&out).contains("ping-key-88"));
    let runs = s.history("x");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["exit_code"], 3, "{runs:?}");
    assert!(
        runs[0]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("hi"),
        "{runs:?}"
    );
    // Nothing is left running: no start came after the finish.
    let jobs = s.json(&["status", "--json"]);
    let x = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "x")
        .unwrap();
    assert!(x["running_since"].is_null(), "{x}");
    // On the client, the start went with the finish that carried it.
    let rows = ping_rows(&c, true);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "delivered"), "{rows:?}");
    let start = rows.iter().find(|r| r["state"] == "running").unwrap();
    let finish = rows.iter().find(|r| r["state"] == "failed").unwrap();
    assert_eq!(start["folded_into"], finish["id"], "{rows:?}");
    assert_eq!(term(&mut server), 0);
}

#[test]
fn a_bad_ping_url_is_exit_2_and_the_job_does_not_run() {
    let c = World::new();
    let out = c
        .cmd(&["run", "--name", "x", "--", "echo", "ran"])
        .env("BELFRY_PING_URL", "https://hc-ping.com/?key=sekrit-key-9")
        .output()
        .unwrap();
    assert_eq!(common::code(&out), 2, "{}", common::stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
    let err = common::stderr(&out);
    assert!(err.contains("$BELFRY_PING_URL"), "{err}");
    assert!(!err.contains("sekrit-key-9"), "{err}");
}

#[test]
fn a_command_that_cannot_start_pings_fail_with_the_reason() {
    let s = World::with_config(
        "[server]\nping_key = \"ping-key-66\"\n[jobs.x]\nperiod = \"1d\"\n\
         [channels.out]\nurl = \"file:///dev/null\"\n",
    );
    let (mut server, addr) = serve(&s);
    let (c, run) = pinger(&format!("http://{addr}/ping/ping-key-66"));
    let out = run(&c, &["run", "--name", "x", "--", "/no/such/program"]);
    assert_eq!(common::code(&out), 127, "{}", common::stderr(&out));
    let runs = s.history("x");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["state"], "failed", "{runs:?}");
    assert!(runs[0]["exit_code"].is_null(), "{runs:?}");
    let output = runs[0]["output"].as_str().unwrap_or_default();
    assert!(output.contains("command not found"), "{runs:?}");
    assert_eq!(term(&mut server), 0);
}
