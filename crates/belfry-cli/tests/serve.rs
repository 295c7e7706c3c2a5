//! `belfry serve` as a user runs it: a real child process, pinged with curl, stopped by TERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
