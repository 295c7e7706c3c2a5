//! `belfry` as a user runs it: real child processes, real signals, a real HTTP receiver on
//! loopback, a real store on disk.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use belfry_testkit::{Receiver, Reply, eventually, reveals};
use common::{World, code, stderr};
use serde_json::Value;

/// A webhook channel to `rx`, failures repeated after 400 ms, and no digest window: each
/// alert goes out on its own, as the rules made it.
fn hook(rx: &Receiver) -> String {
    format!(
        "[policy]\nrepeat_failures_after = \"400ms\"\n\n[delivery]\ndigest_window = \"0s\"\n\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n",
        rx.addr()
    )
}

/// Kills the process with this pid when dropped: a job whose wrapper a test killed lives on in
/// its own process group, and must not outlive the test.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0]).status();
    }
}

#[test]
fn a_failing_then_recovering_then_healthy_job_alerts_by_the_rules() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    let job = ["run", "--name", "nightly-backup", "--"];
    let fail = |w: &World| {
        let mut a = job.to_vec();
        a.extend(["sh", "-c", "echo copying; echo 'disk full' >&2; exit 3"]);
        w.run(&a)
    };
    let ok = |w: &World| {
        let mut a = job.to_vec();
        a.extend(["true"]);
        w.run(&a)
    };
    assert_eq!(code(&fail(&w)), 3); // first run: alert
    assert_eq!(code(&fail(&w)), 3); // inside repeat_failures_after: quiet
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(code(&fail(&w)), 3); // the window has passed: repeat
    assert_eq!(code(&fail(&w)), 3); // inside the window again: quiet
    assert_eq!(code(&ok(&w)), 0); // recovered
    assert_eq!(code(&ok(&w)), 0); // healthy, heartbeat not due: quiet

    let got = rx.wait_for(3, Duration::from_secs(5));
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["state"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("failed".into(), "first_run".into()),
            ("failed".into(), "repeated".into()),
            ("ok".into(), "recovered".into())
        ]
    );
    let first = got[0].json();
    assert_eq!(first["job"], "nightly-backup");
    assert_eq!(first["exit_code"], 3);
    assert_eq!(first["previous_state"], Value::Null);
    assert!(first["output_tail"].as_str().unwrap().contains("disk full"));
    assert!(first["duration_seconds"].as_f64().unwrap() >= 0.0);
    assert!(first["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // The reminder counts the failure held back before it; the recovery, the one after it.
    let repeated = got[1].json();
    assert_eq!(repeated["digest"]["count"], 2, "{repeated:#}");
    assert!(
        repeated["message"]
            .as_str()
            .unwrap()
            .starts_with("2 times in "),
        "{repeated:#}"
    );
    let recovered = got[2].json();
    assert_eq!(recovered["previous_state"], "failed");
    assert_eq!(recovered["kind"], "recovered");
    assert_eq!(recovered["digest"]["count"], 2, "{recovered:#}");
    assert_eq!(recovered["digest"]["states"][0]["state"], "failed");
    assert_eq!(recovered["digest"]["states"][1]["state"], "ok");
    // Every run is in the history, each with its reason.
    let reasons: Vec<String> = w
        .history("nightly-backup")
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "within_heartbeat_window",
            "recovered",
            "within_repeat_window",
            "repeated",
            "within_repeat_window",
            "first_run"
        ]
    );
    // Nothing more arrived.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rx.requests().len(), 3);
}

#[test]
fn an_alert_held_back_by_fail_threshold_counts_the_runs_it_waited_for() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx).replace("[policy]\n", "[policy]\nfail_threshold = 3\n"));
    for _ in 0..3 {
        assert_eq!(code(&w.run(&["run", "--name", "flaky", "--", "false"])), 1);
    }
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let n = got[0].json();
    assert_eq!(n["reason"], "threshold_reached");
    assert_eq!(n["consecutive_problems"], 3);
    assert_eq!(n["digest"]["count"], 3, "{n:#}");
}

#[test]
fn runs_sixteen_at_a_time_are_each_counted_once_in_the_messages_a_channel_receives() {
    // 60 runs of one job, every third failing, 16 at a time: they end in one order and
    // record in another. Reminders are due 50 ms after a message, so that many messages count
    // held-back runs; a closing OK run makes the recovery that tells the failures held back
    // at the end. Each run delivers its own alerts (no digest window), so concurrent senders
    // fold each other's rows too.
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[policy]\nrepeat_failures_after = \"50ms\"\n\n[delivery]\ndigest_window = \"0s\"\n\n[channels.hook]\nurl = \"json://{}/belfry\"\n",
        rx.addr()
    ));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= 60 {
                        break;
                    }
                    let fails = i.is_multiple_of(3);
                    let exit = format!("exit {}", u8::from(fails));
                    let o = w.run(&["run", "--quiet", "--name", "j", "--", "sh", "-c", &exit]);
                    assert_eq!(code(&o), i32::from(fails), "{}", stderr(&o));
                }
            });
        }
    });
    assert_eq!(
        code(&w.run(&["run", "--quiet", "--name", "j", "--", "true"])),
        0
    );
    let undelivered = |w: &World| {
        w.json(&["outbox", "--json", "-n", "1000"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "pending" || r["status"] == "sending")
            .count()
    };
    assert!(
        eventually(Duration::from_secs(60), || {
            w.run(&["deliver"]);
            undelivered(&w) == 0
        }),
        "the outbox never emptied"
    );
    let problem =
        |s: &Value| ["failed", "timed_out", "crashed", "late"].contains(&s.as_str().unwrap());
    let told: u64 = rx
        .requests()
        .iter()
        .map(|r| {
            let n = r.json();
            match n["digest"]["states"].as_array() {
                Some(states) => states
                    .iter()
                    .filter(|c| problem(&c["state"]))
                    .map(|c| c["count"].as_u64().unwrap())
                    .sum(),
                None if problem(&n["state"]) => n["digest"]["count"].as_u64().unwrap_or(1),
                None => 0,
            }
        })
        .sum();
    assert_eq!(told, 20, "{} messages", rx.requests().len());
}

#[test]
fn exit_codes_follow_the_table() {
    let w = World::new();
    let q = |args: &[&str]| {
        let mut a = vec!["run", "--quiet", "--"];
        a.extend(args);
        code(&w.run(&a))
    };
    assert_eq!(q(&["sh", "-c", "exit 7"]), 7);
    assert_eq!(q(&["sh", "-c", "kill -SEGV $$"]), 128 + 11);
    assert_eq!(q(&["no-such-command-belfry"]), 127);
    let not_exec = w.dir.path().join("not-executable.sh");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    assert_eq!(q(&[not_exec.to_str().unwrap()]), 126);
    // --ok-codes widens success, and the exit code is still the child's.
    let o = w.run(&[
        "run",
        "--name",
        "lenient",
        "--ok-codes",
        "0,3",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&o), 3);
    assert_eq!(w.history("lenient")[0]["state"], "ok");
    // Usage errors are 2 and run nothing.
    let marker = w.dir.path().join("ran");
    let o = w.run(&[
        "run",
        "--timeout",
        "soon",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("soon"), "{}", stderr(&o));
    assert!(!marker.exists());
    assert_eq!(code(&w.run(&["run"])), 2);
    assert_eq!(code(&w.run(&["frobnicate"])), 2);
    let o = w.run(&["run", "--name", "", "--", "true"]);
    assert_eq!(code(&o), 2);
    // A time limit of nothing, and exit codes no process can have.
    for (opt, value, says) in [
        ("--timeout", "0s", "more than 0"),
        ("--ok-codes", "0,300", "300 is not in 0..=255"),
        ("--ok-codes", "-1", "-1 is not in 0..=255"),
    ] {
        let o = w.run(&["run", opt, value, "--", "touch", marker.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{opt} {value}");
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert!(!marker.exists());
    }
    // The table is in --help.
    let help = String::from_utf8(w.run(&["run", "--help"]).stdout).unwrap();
    assert!(help.contains("124") && help.contains("128+N"), "{help}");
}

#[test]
fn a_time_limit_past_a_hundred_years_is_a_usage_error_before_the_job_runs() {
    let w = World::new();
    let marker = w.dir.path().join("ran");
    let job = format!("touch {}; echo started; exit 3", marker.display());
    for huge in [
        "9223372036854775807s",
        "18446744073709551615s",
        "100y 1s",
        "99999999999999999999999999h",
    ] {
        for opt in ["--timeout", "--kill-after"] {
            let o = w.run(&["run", "--name", "big", opt, huge, "--", "sh", "-c", &job]);
            let e = stderr(&o);
            assert_eq!(code(&o), 2, "{opt} {huge}: {e}");
            assert!(
                e.contains(opt) && e.contains(huge) && e.contains("100 years"),
                "{opt} {huge}: {e}"
            );
            assert!(!e.contains("panicked"), "{e}");
            assert!(!marker.exists(), "{opt} {huge}: the job ran");
        }
    }
    // The same in the job's configuration: the file, the line and the key are named.
    std::fs::write(
        w.dir.path().join("belfry.toml"),
        "[jobs.big]\ntimeout = \"9223372036854775807s\"\n",
    )
    .unwrap();
    let o = w.run(&["run", "--name", "big", "--", "sh", "-c", &job]);
    let e = stderr(&o);
    assert_eq!(code(&o), 2, "{e}");
    assert!(
        e.contains("belfry.toml")
            && e.contains("line 2")
            && e.contains("jobs.big.timeout")
            && e.contains("100 years"),
        "{e}"
    );
    assert!(!marker.exists(), "the job ran");
    // The longest limit there is runs the job as any other.
    std::fs::write(w.dir.path().join("belfry.toml"), "").unwrap();
    let o = w.run(&["history", "big"]);
    assert!(
        stderr(&o).contains("no job named"),
        "a refused run was recorded"
    );
    let o = w.run(&[
        "run",
        "--quiet",
        "--name",
        "big",
        "--timeout",
        "100y",
        "--kill-after",
        "100y",
        "--",
        "sh",
        "-c",
        &job,
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "started\n");
    assert!(marker.exists());
}

#[test]
fn a_negative_time_limit_is_called_a_negative_duration_not_an_unknown_option() {
    let w = World::new();
    let marker = w.dir.path().join("ran");
    for args in [
        &["run", "--timeout", "-1s"][..],
        &["run", "--timeout=-1s"],
        &["run", "--kill-after", "-5m"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--", "touch", marker.to_str().unwrap()]);
        let o = w.run(&a);
        let e = stderr(&o);
        assert_eq!(code(&o), 2, "{args:?}: {e}");
        assert!(
            e.contains("invalid duration") && e.contains("cannot be negative"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("unexpected argument"), "{args:?}: {e}");
        assert!(!marker.exists());
    }
    for (args, says) in [
        (&["deliver", "--wait", "-3s"][..], "cannot be negative"),
        (&["check", "x", "--max-age", "-1h"], "cannot be negative"),
        (
            &["outbox", "purge", "--dead", "--older-than", "-1d"],
            "cannot be negative",
        ),
        (&["deliver", "--wait", "1000y"], "100 years"),
    ] {
        let o = w.run(args);
        let e = stderr(&o);
        assert!(e.contains(says), "{args:?}: {e}");
        assert_ne!(code(&o), 0, "{args:?}");
    }
}

#[test]
fn crashes_and_failed_starts_are_recorded_as_problems() {
    let w = World::new();
    w.run(&[
        "run",
        "-q",
        "--name",
        "segv",
        "--",
        "sh",
        "-c",
        "kill -SEGV $$",
    ]);
    let r = &w.history("segv")[0];
    assert_eq!(r["state"], "crashed");
    assert_eq!(r["signal"], 11);
    w.run(&[
        "run",
        "-q",
        "--name",
        "gone",
        "--",
        "no-such-command-belfry",
    ]);
    let r = &w.history("gone")[0];
    assert_eq!(r["state"], "failed");
    assert!(r["error"].as_str().unwrap().contains("not found"));
}

#[test]
fn a_timeout_sends_term_then_kill_and_records_timed_out() {
    let w = World::new();
    let t = Instant::now();
    // The job ignores TERM, so only the KILL ends it.
    let o = w.run(&[
        "run",
        "--name",
        "stuck",
        "--timeout",
        "300ms",
        "--kill-after",
        "300ms",
        "--",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 0.05; done",
    ]);
    assert_eq!(code(&o), 124);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let r = &w.history("stuck")[0];
    assert_eq!(r["state"], "timed_out");
    assert_eq!(r["signal"], 9);
    assert!(stderr(&o).contains("Timed out"), "{}", stderr(&o));
}

#[test]
fn when_a_timed_out_job_exits_what_is_left_of_its_group_is_killed() {
    let w = World::new();
    let pidfile = w.dir.path().join("leftover.pid");
    // The job's main process dies of the TERM; a process it started ignores TERM and would
    // outlive it. (The main process waits until that one has set its trap.)
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {p}; while :; do sleep 0.05; done' & \
         while [ ! -s {p} ]; do sleep 0.01; done; exec sleep 30",
        p = pidfile.display()
    );
    let o = w.run(&[
        "run",
        "--name",
        "leftover",
        "--timeout",
        "500ms",
        "--kill-after",
        "1h",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Gone, or a zombie waiting for whoever adopted it: not running.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            let state = s.rsplit(") ").next().and_then(|r| r.chars().next());
            state != Some('Z')
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || !running()),
        "the leftover {pid} still runs"
    );
    assert_eq!(w.history("leftover")[0]["state"], "timed_out");
}

/// Starts `belfry run` with a child that prints `ready` once its traps are set; returns the
/// process and the reader of its stdout.
fn start_ready(
    w: &World,
    name: &str,
    script: &str,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = w
        .cmd(&["run", "-q", "--name", name, "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// `belfry run` opens the store beside the job, so the job may print before its start is
/// recorded: wait for the record.
fn wait_until_recorded_running(w: &World) {
    let recorded = eventually(Duration::from_secs(10), || {
        w.json(&["status", "--json"])[0]["running_since"].is_string()
    });
    assert!(recorded, "{}", w.json(&["status", "--json"]));
}

fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn term_is_passed_on_to_the_job_which_may_finish_its_way() {
    let w = World::new();
    let (mut child, mut out) = start_ready(
        &w,
        "graceful",
        "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
    );
    send_signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(rest.contains("got-term"), "{rest}");
    assert_eq!(status.code(), Some(7));
    assert_eq!(w.history("graceful")[0]["state"], "cancelled");
}

#[test]
fn int_and_hup_reach_the_job_and_its_death_by_signal_is_128_plus_n() {
    for (sig, n) in [("INT", 2), ("HUP", 1)] {
        let w = World::new();
        let (mut child, _out) = start_ready(&w, "sig", "echo ready; exec sleep 30");
        send_signal(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + n), "{sig}");
        let r = &w.history("sig")[0];
        assert_eq!(r["state"], "cancelled", "{sig}");
        assert_eq!(r["signal"], n, "{sig}");
    }
}

#[test]
fn output_passes_through_unchanged_and_its_ends_are_kept() {
    let w = World::new();
    // 3000 numbered lines on stdout (about 40 KB), with a line of raw bytes in the middle.
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i of the output\"; \
                  if [ $i = 1500 ]; then printf '\\377\\376 not utf-8\\n'; fi; i=$((i+1)); done";
    let o = w.run(&[
        "run",
        "-q",
        "--name",
        "chatty",
        "--tail-bytes",
        "200",
        "--head-lines",
        "2",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 0);
    let mut expected: Vec<u8> = Vec::new();
    for i in 0..3000 {
        expected.extend(format!("line {i} of the output\n").as_bytes());
        if i == 1500 {
            expected.extend(b"\xff\xfe not utf-8\n");
        }
    }
    assert_eq!(
        o.stdout, expected,
        "the output must pass through byte for byte"
    );
    let r = &w.history("chatty")[0];
    let kept = r["output"].as_str().unwrap();
    assert!(
        kept.starts_with("line 0 of the output\nline 1 of the output\n[… "),
        "{kept}"
    );
    assert!(kept.ends_with("line 2999 of the output\n"), "{kept}");
    assert!(kept.len() < 400, "{kept}");
    assert_eq!(r["output_bytes"].as_u64().unwrap(), expected.len() as u64);
}

#[test]
fn the_job_sees_its_name_and_run_id() {
    let w = World::new();
    let o = w.run(&[
        "run",
        "-q",
        "--name",
        "env-check",
        "--",
        "sh",
        "-c",
        "echo \"$BELFRY_JOB $BELFRY_RUN_ID\"",
    ]);
    let line = String::from_utf8(o.stdout).unwrap();
    let (job, run) = line.trim().split_once(' ').unwrap();
    assert_eq!(job, "env-check");
    assert_eq!(w.history("env-check")[0]["id"], run);
}

#[test]
fn a_job_run_on_a_terminal_gets_one_and_under_cron_a_pipe() {
    use rustix::pty::OpenptFlags;
    use std::io::Read;
    let w = World::new();
    let script = "if [ -t 1 ]; then echo 'out: terminal'; else echo 'out: pipe'; fi; \
                  if [ -t 2 ]; then echo 'err: terminal' >&2; else echo 'err: pipe' >&2; fi";
    // Under cron (pipes): as ever.
    let out = w.run(&["run", "-q", "--name", "where", "--", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out: pipe\n");
    assert_eq!(stderr(&out), "err: pipe\n");

    // By hand on a terminal: belfry's output is a pseudo-terminal of this test's.
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let ours = rustix::pty::openpt(flags).unwrap();
    rustix::pty::grantpt(&ours).unwrap();
    rustix::pty::unlockpt(&ours).unwrap();
    let theirs = rustix::pty::ioctl_tiocgptpeer(&ours, flags).unwrap();
    let mut belfry = w
        .cmd(&["run", "-q", "--name", "where", "--", "sh", "-c", script])
        .stdout(Stdio::from(theirs.try_clone().unwrap()))
        .stderr(Stdio::from(theirs))
        .spawn()
        .unwrap();
    // The output is small: the terminal holds it until belfry is over.
    assert_eq!(belfry.wait().unwrap().code(), Some(0));
    let mut seen = Vec::new();
    let mut ours = std::fs::File::from(ours);
    let mut buf = [0u8; 4096];
    // Read until every writer is gone (EIO).
    while let Ok(n @ 1..) = ours.read(&mut buf) {
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("out: terminal"), "{seen:?}");
    assert!(seen.contains("err: terminal"), "{seen:?}");
    // What is kept with the run is what the job wrote, without a terminal's line endings.
    let kept = w.history("where")[0]["output"].as_str().unwrap().to_owned();
    assert!(kept.contains("out: terminal\n"), "{kept:?}");
    assert!(kept.contains("err: terminal\n"), "{kept:?}");
    assert!(!kept.contains('\r'), "{kept:?}");
}

#[test]
fn names_are_derived_stably_from_the_command() {
    let w = World::new();
    w.run(&["run", "-q", "--", "true"]);
    w.run(&["run", "-q", "--", "sh", "-c", "exit 0"]);
    w.run(&["run", "-q", "--", "sh", "-c", "exit 0"]);
    let names: Vec<String> = w
        .json(&["status", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"true".to_owned()));
    let sh = names.iter().find(|n| n.starts_with("sh-")).unwrap();
    assert_eq!(w.history(sh).len(), 2);
}

#[test]
fn forty_concurrent_runs_of_one_job_lose_nothing_and_never_see_a_locked_store() {
    let w = World::new();
    let children: Vec<_> = (0..40)
        .map(|i| {
            w.cmd(&[
                "run",
                "-q",
                "--name",
                "crowd",
                "--",
                "sh",
                "-c",
                &format!("exit {}", i % 3),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(i as i32 % 3));
        assert!(o.stderr.is_empty(), "run {i}: {}", stderr(&o));
    }
    let runs = w.history("crowd");
    assert_eq!(runs.len(), 40);
    assert!(runs.iter().all(|r| r["state"] != "running"));
}

#[test]
fn status_history_and_check_tell_the_truth() {
    let w = World::new();
    w.run(&["run", "-q", "--name", "good", "--", "true"]);
    w.run(&["run", "-q", "--name", "bad", "--", "false"]);
    w.run(&["run", "-q", "--name", "bad", "--", "false"]);

    let status = w.json(&["status", "--json"]);
    let bad = status
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "bad")
        .unwrap();
    assert_eq!(bad["state"], "failed");
    assert_eq!(bad["consecutive_problems"], 2);
    assert_eq!(bad["last_run"]["exit_code"], 1);
    assert_eq!(bad["last_notification"]["reason"], "first_run");
    let table = String::from_utf8(w.run(&["status"]).stdout).unwrap();
    assert!(table.starts_with("JOB"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bad") && l.contains("failed")),
        "{table}"
    );

    let o = w.run(&["check", "good"]);
    assert_eq!(code(&o), 0);
    let line = String::from_utf8(o.stdout).unwrap();
    assert!(line.starts_with("BELFRY OK - good"), "{line}");
    assert!(
        line.contains("| duration=") && line.contains(" age="),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);

    let o = w.run(&["check", "bad"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8(o.stdout).unwrap().contains("CRITICAL"));

    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(code(&w.run(&["check", "good", "--max-age", "1s"])), 2);
    assert_eq!(code(&w.run(&["check", "good", "--warn-age", "1s"])), 1);
    assert_eq!(code(&w.run(&["check", "good", "--max-age", "1h"])), 0);
    assert_eq!(code(&w.run(&["check", "nope"])), 3);
    assert_eq!(code(&w.run(&["check", "good", "--max-age", "x"])), 3);
    // A global option before the command does not hide it: still Nagios's UNKNOWN.
    let conf = w.dir.path().join("empty.toml");
    std::fs::write(&conf, "").unwrap();
    let conf = conf.to_str().unwrap();
    assert_eq!(
        code(&w.run(&["--config", conf, "check", "good", "--max-age", "x"])),
        3
    );
    assert_eq!(code(&w.run(&["--config", conf, "check", "nope"])), 3);

    let o = w.run(&["history", "nope"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no job named"), "{}", stderr(&o));
}

#[test]
fn check_as_json_gives_the_plugin_verdict_and_the_job_as_status_shows_it() {
    let w = World::new();
    w.run(&["run", "-q", "--name", "good", "--", "true"]);
    w.run(&["run", "-q", "--name", "bad", "--", "false"]);
    w.run(&["run", "-q", "--name", "bad", "--", "false"]);
    let status = w.json(&["status", "--json"]);
    for (job, expected, label) in [
        ("good", 0, "OK"),
        ("bad", 2, "CRITICAL"),
        ("nope", 3, "UNKNOWN"),
    ] {
        let o = w.run(&["check", job, "--json"]);
        assert_eq!(code(&o), expected, "{job}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["name"], job);
        assert_eq!(v["status"], label);
        assert_eq!(v["code"], expected);
        // The message is the plugin line's, without its prefix and perfdata (up to the age,
        // which has moved on between the two calls).
        let line = String::from_utf8(w.run(&["check", job]).stdout).unwrap();
        let message = format!("BELFRY {label} - {}", v["message"].as_str().unwrap());
        let stem = |s: &str| {
            s.split(|c: char| c.is_ascii_digit())
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(stem(line.trim_end()), stem(&message), "{line} / {message}");
        let listed = status.as_array().unwrap().iter().find(|j| j["name"] == job);
        assert_eq!(v["job"], listed.cloned().unwrap_or(Value::Null), "{job}");
        assert_eq!(v["age_seconds"].is_number(), job != "nope", "{v}");
    }
}

#[test]
fn a_bad_config_is_a_usage_error_naming_file_line_and_key_and_runs_nothing() {
    let w = World::with_config("[policy]\nfail_threshold = 2\nrepeat_failure_after = \"1s\"\n");
    let marker = w.dir.path().join("ran");
    let o = w.run(&["run", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("belfry.toml") && e.contains("line 3") && e.contains("repeat_failure_after"),
        "{e}"
    );
    assert!(!marker.exists());
    // An exit code out of range, with where it is.
    std::fs::write(
        w.dir.path().join("belfry.toml"),
        "[jobs.x]\nok_codes = [0, 256]\n",
    )
    .unwrap();
    let o = w.run(&["run", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("line 2") && e.contains("256 is not an exit code"),
        "{e}"
    );
    assert!(!marker.exists());
    // --config naming a missing file.
    let o = w.run(&["--config", "/nonexistent/belfry.toml", "status"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("/nonexistent/belfry.toml"));
}

#[test]
fn an_unreachable_channel_never_changes_the_exit_code_and_deliver_sends_it_later() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://u:SECRETPW@127.0.0.1:{port}/SECRETPATH\"\n"
    ));
    let o = w.run(&["run", "--name", "lonely", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5);
    let e = stderr(&o);
    assert_eq!(e.matches("could not notify").count(), 1, "{e}");
    assert!(e.contains("belfry deliver"), "{e}");
    assert!(!e.contains("SECRET"), "{e}");

    // Before its retry is due, a `belfry deliver` with no time to wait for it sends nothing
    // and says when it will be.
    let o = w.run(&["deliver", "--wait", "0s"]);
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        said.contains("delivered 0, failed 0; outbox: 1 pending, the next due in "),
        "{said}"
    );

    // The channel comes back: `belfry deliver` sends what was kept. (The retry is due after
    // its backoff of 1 s.)
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = Receiver::on(listener, vec![], Reply::ok());
    std::thread::sleep(Duration::from_millis(1100));
    let o = w.run(&["deliver"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/SECRETPATH");
    assert_eq!(got[0].json()["job"], "lonely");
    // And only once.
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.requests().len(), 1);

    // The secret is nowhere in the store.
    for f in std::fs::read_dir(w.home()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!contains(&bytes, b"SECRETPW") && !contains(&bytes, b"SECRETPATH"));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_store_that_cannot_be_written_never_changes_the_exit_code() {
    let w = World::new();
    // BELFRY_HOME is a file: nothing can be created under it.
    std::fs::write(w.home(), "not a directory").unwrap();
    let o = w.run(&["run", "--name", "x", "--", "sh", "-c", "echo out; exit 4"]);
    assert_eq!(code(&o), 4);
    assert_eq!(o.stdout, b"out\n");
    // The console's alert says it, once: no separate warning.
    let e = stderr(&o);
    assert_eq!(e.matches("belfry:").count(), 1, "{e}");
    assert!(e.contains("x: Failed") && e.contains("not recorded"), "{e}");
}

#[test]
fn a_problem_the_store_cannot_take_is_still_sent_straight_to_its_channels() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    std::fs::write(w.home(), "not a directory").unwrap();
    let o = w.run(&["run", "--name", "x", "--", "sh", "-c", "exit 4"]);
    assert_eq!(code(&o), 4);
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "{}", stderr(&o));
    let n = got[0].json();
    assert_eq!(
        (n["job"].as_str(), n["state"].as_str()),
        (Some("x"), Some("failed"))
    );
    assert_eq!(n["reason"], "unrecorded");
    let message = n["message"].as_str().unwrap();
    assert!(message.contains("not recorded, so sent at once"), "{n}");
    assert!(message.contains("File exists"), "the cause is told: {n}");
    // An OK run is not news: nothing is sent.
    assert_eq!(code(&w.run(&["run", "--name", "x", "--", "true"])), 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rx.requests().len(), 1);
    // Nothing was written where the store should be.
    assert_eq!(std::fs::read(w.home()).unwrap(), b"not a directory");
}

#[test]
fn belfry_urls_work_with_no_file_and_quiet_silences_the_console() {
    let rx = Receiver::start(vec![]);
    let w = World::new();
    let o = w
        .cmd(&["run", "--name", "envjob", "--", "false"])
        .env(
            "BELFRY_URLS",
            format!("json://{}/a, json://{}/b", rx.addr(), rx.addr()),
        )
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let got = rx.wait_for(2, Duration::from_secs(5));
    let mut targets: Vec<_> = got.iter().map(|r| r.target.clone()).collect();
    targets.sort();
    assert_eq!(targets, ["/a", "/b"]);

    // No channel at all: the console, unless --quiet.
    let o = w.run(&["run", "--name", "console-job", "--", "false"]);
    assert!(
        stderr(&o).contains("belfry: console-job: Failed"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["run", "--quiet", "--name", "quiet-job", "--", "false"]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn a_store_file_that_is_not_belfrys_is_left_alone() {
    let w = World::new();
    std::fs::create_dir_all(w.home()).unwrap();
    let db: &Path = &w.home().join("belfry.db");
    let junk = b"precious notes, not a database\n".repeat(200);
    std::fs::write(db, &junk).unwrap();
    let o = w.run(&["run", "--name", "x", "--", "true"]);
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("could not record"), "{}", stderr(&o));
    assert_eq!(std::fs::read(db).unwrap(), junk);
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct TinyDisk {
    path: PathBuf,
}

impl TinyDisk {
    /// `None` (the test says it skipped) where mounting is not allowed.
    fn mount(path: &Path, size: &str) -> Option<TinyDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyDisk {
            path: path.to_owned(),
        })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_never_changes_the_exit_code_and_harms_nothing_stored() {
    let w = World::new();
    let Some(_disk) = TinyDisk::mount(&w.home(), "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    assert_eq!(
        code(&w.run(&["run", "-q", "--name", "safe", "--", "true"])),
        0
    );
    assert_eq!(
        code(&w.run(&["run", "-q", "--name", "safe", "--", "false"])),
        1
    );
    // Fill the disk to the last byte.
    let filler = w.home().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.flush()).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
    }
    // A failing job with plenty of output to keep: the job's exit code wins, the problem is
    // said once.
    let o = w.run(&[
        "run",
        "--name",
        "safe",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 3",
    ]);
    assert_eq!(code(&o), 3);
    let e = stderr(&o);
    assert_eq!(e.matches("belfry:").count(), 1, "{e}");
    assert!(
        e.contains("not recorded") && e.contains("disk is full"),
        "{e}"
    );
    // Space again: what was stored is intact, and belfry works on.
    std::fs::remove_file(&filler).unwrap();
    let runs = w.history("safe");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(runs[1]["state"], "ok");
    let conn = rusqlite::Connection::open(w.home().join("belfry.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    assert_eq!(
        code(&w.run(&["run", "-q", "--name", "safe", "--", "true"])),
        0
    );
    assert_eq!(w.history("safe").len(), 3);
}

#[test]
fn a_wrapper_killed_mid_job_is_recorded_as_crashed_by_the_next_belfry_and_alerts() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    let pidfile = w.dir.path().join("job.pid");
    let script = format!("echo $$ > {}; echo ready; exec sleep 30", pidfile.display());
    let (mut wrapper, _out) = start_ready(&w, "victim", &script);
    // The job's first report of itself is in the store as running.
    wait_until_recorded_running(&w);
    let status = w.json(&["status", "--json"]);
    assert_eq!(status[0]["name"], "victim");

    send_signal(wrapper.id(), "KILL");
    wrapper.wait().unwrap();
    // The job itself lives on (its own process group); stop it at the end of the test.
    let _reap = KillOnDrop(std::fs::read_to_string(&pidfile).unwrap().trim().to_owned());

    // The next belfry process that opens the store notices.
    let status = w.json(&["status", "--json"]);
    let victim = &status.as_array().unwrap()[0];
    assert_eq!(victim["state"], "crashed", "{victim}");
    assert_eq!(victim["running_since"], Value::Null);
    let run = &w.history("victim")[0];
    assert_eq!(run["state"], "crashed");
    assert!(run["error"].as_str().unwrap().contains("is gone"), "{run}");
    // Its alert waits in the outbox, and goes out with the next delivery, once.
    assert_eq!(code(&w.run(&["deliver"])), 0);
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let alert = got[0].json();
    assert_eq!(
        (alert["job"].as_str(), alert["state"].as_str()),
        (Some("victim"), Some("crashed"))
    );
    assert_eq!(code(&w.run(&["status"])), 0);
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.requests().len(), 1);
}

/// Starts `belfry run --name JOB` on a job that writes its pid to a file and sleeps, and kills
/// belfry with SIGKILL as soon as the job exists. Returns a guard that stops the job.
fn kill_wrapper_once_its_job_runs(w: &World, job: &str) -> impl Drop {
    let pidfile = w.dir.path().join(format!("{job}.pid"));
    let script = format!(
        "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 30",
        pidfile.display()
    );
    let mut wrapper = w
        .cmd(&["run", "-q", "--name", job, "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually(Duration::from_secs(20), || pidfile.exists());
    send_signal(wrapper.id(), "KILL");
    wrapper.wait().unwrap();
    assert!(started, "the job did not start");
    // The job lives on (its own process group); it is stopped when the guard goes.
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-9", &self.0]).status();
        }
    }
    Stop(std::fs::read_to_string(&pidfile).unwrap().trim().to_owned())
}

#[test]
fn a_run_killed_in_its_first_milliseconds_is_found_and_alerts() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    // The store exists, and is locked by another writer: the run's start cannot reach it, so
    // belfry is surely killed before the store knows the run (its job is running by then).
    assert_eq!(code(&w.run(&["status"])), 0);
    let db = rusqlite::Connection::open(w.home().join("belfry.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let _early = kill_wrapper_once_its_job_runs(&w, "early");
    db.execute_batch("ROLLBACK").unwrap();
    // Unhindered: killed before or after the start is recorded, whichever comes first.
    let _late = kill_wrapper_once_its_job_runs(&w, "late");

    // The next belfry process finds both, each once however many look.
    for _ in 0..2 {
        let status = w.json(&["status", "--json"]);
        let jobs = status.as_array().unwrap();
        assert_eq!(jobs.len(), 2, "{status:#}");
        for j in jobs {
            assert_eq!(j["state"], "crashed", "{j}");
            assert_eq!(j["running_since"], Value::Null, "{j}");
        }
    }
    for job in ["early", "late"] {
        let runs = w.history(job);
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0]["state"], "crashed");
        assert!(
            runs[0]["error"].as_str().unwrap().contains("is gone"),
            "{runs:?}"
        );
    }
    // Their alerts wait in the outbox and go out with the next delivery, once each.
    assert_eq!(code(&w.run(&["deliver"])), 0);
    let got = rx.wait_for(2, Duration::from_secs(5));
    let mut alerted: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["job"].as_str().unwrap().into(),
                v["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    alerted.sort();
    assert_eq!(
        alerted,
        [
            ("early".to_owned(), "crashed".to_owned()),
            ("late".to_owned(), "crashed".to_owned())
        ]
    );
    // Nothing is left behind to find again.
    let left: Vec<_> = std::fs::read_dir(w.home())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("intent-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_running_job_is_not_mistaken_for_a_crash() {
    let w = World::new();
    let (mut wrapper, _out) = start_ready(&w, "alive", "echo ready; exec sleep 30");
    wait_until_recorded_running(&w);
    // Other belfry processes look at the store while the job runs.
    for _ in 0..3 {
        let status = w.json(&["status", "--json"]);
        assert!(status[0]["running_since"].is_string(), "{status}");
        assert_eq!(status[0]["state"], Value::Null);
    }
    send_signal(wrapper.id(), "TERM");
    wrapper.wait().unwrap();
    assert_eq!(w.history("alive")[0]["state"], "cancelled");
}

#[test]
fn an_operator_can_stop_a_belfry_that_waits_for_a_slow_channel() {
    // A channel that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{port}/x\"\n"
    ));
    let mut belfry = w
        .cmd(&["run", "--name", "slow", "--", "false"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // belfry is waiting for the answer once it has connected.
    let (_conn, _) = listener.accept().unwrap();
    let t = Instant::now();
    send_signal(belfry.id(), "INT");
    let status = belfry.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(status.code(), Some(130));
    // The run and its alert were recorded before the wait.
    assert_eq!(w.history("slow")[0]["state"], "failed");
}

#[test]
fn the_outbox_shows_pending_and_dead_rows_and_can_retry_and_purge_them() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://u:SECRETPW@127.0.0.1:{port}/p\"\n"
    ));
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "false"])), 1);
    let out = w.run(&["outbox", "--json"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRETPW"));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(row["status"], "pending");
    assert_eq!(row["job"], "j");
    assert_eq!(row["attempts"], 1);
    assert!(
        row["last_reason"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{row}"
    );
    assert_eq!(
        row["destination"],
        format!("json://u:***@127.0.0.1:{port}/…")
    );
    let id = row["id"].as_i64().unwrap().to_string();
    let table = String::from_utf8(w.run(&["outbox"]).stdout).unwrap();
    assert!(
        table.starts_with("ID") && table.contains("pending"),
        "{table}"
    );

    // The channel comes back, but refuses this payload: the row is dead, with the reason.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = Receiver::on(
        listener,
        vec![Reply::status(400).body("bad payload")],
        Reply::ok(),
    );
    assert_eq!(code(&w.run(&["outbox", "retry", &id])), 0);
    assert_eq!(code(&w.run(&["deliver"])), 1);
    let rows = w.json(&["outbox", "--json"]);
    assert_eq!(rows[0]["status"], "dead");
    assert_eq!(rows[0]["last_reason"], "HTTP 400: bad payload");

    // Revived, it goes out; the default listing no longer shows it, --all does.
    assert_eq!(code(&w.run(&["outbox", "retry", "--dead"])), 0);
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.requests().len(), 2);
    assert_eq!(w.json(&["outbox", "--json"]), Value::Array(vec![]));
    let all = w.json(&["outbox", "--all", "--json"]);
    assert_eq!(all[0]["status"], "delivered");
    assert_eq!(all[0]["attempts"], 3);

    assert_eq!(code(&w.run(&["outbox", "purge", "--delivered"])), 0);
    assert_eq!(w.json(&["outbox", "--all", "--json"]), Value::Array(vec![]));
    // The notification log keeps it: the job still shows its last notification.
    assert_eq!(
        w.json(&["status", "--json"])[0]["last_notification"]["reason"],
        "first_run"
    );
    // Nothing to retry under an unknown id; purge needs to be told what.
    assert_eq!(code(&w.run(&["outbox", "retry", "999"])), 1);
    assert_eq!(code(&w.run(&["outbox", "purge"])), 2);
}

/// Whether some process holds the drain lock of `home`.
fn drainer_holds_lock(home: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(home.join("deliver.lock"))
    else {
        return false;
    };
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
}

#[test]
fn a_background_drain_delivers_when_the_channel_comes_back_and_then_exits() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{port}/b\"\n"
    ));
    let o = w
        .cmd(&["run", "--name", "bg", "--", "false"])
        .env_remove("BELFRY_BACKGROUND")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("retrying in the background"),
        "{}",
        stderr(&o)
    );
    // The drainer takes the lock a moment after `belfry run` has started it and exited.
    assert!(
        eventually(Duration::from_secs(5), || drainer_holds_lock(&w.home())),
        "no drainer started"
    );
    // The channel comes back; nobody runs `belfry deliver`.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = Receiver::on(listener, vec![], Reply::ok());
    let got = rx.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "the drainer did not deliver");
    assert_eq!(got[0].json()["job"], "bg");
    // Then it exits: the lock is free, and nothing is left.
    assert!(
        eventually(Duration::from_secs(10), || !drainer_holds_lock(&w.home())),
        "the drainer did not exit"
    );
    assert_eq!(w.json(&["outbox", "--json"]), Value::Array(vec![]));
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn outbox_retry_names_the_rows_it_could_not_revive_and_purge_names_its_options() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{port}/p\"\n"
    ));
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "false"])), 1);
    let id = w.json(&["outbox", "--json"])[0]["id"].as_i64().unwrap();
    let o = w.run(&["outbox", "retry", &id.to_string(), "999"]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "1 row(s) due now; `belfry deliver` sends them\n"
    );
    assert_eq!(
        stderr(&o),
        "belfry: there is no outbox row 999 (see `belfry outbox --all`)\n"
    );
    // Without saying which rows, purge names every option it takes.
    let o = w.run(&["outbox", "purge"]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    for option in ["--delivered", "--dead", "--older-than"] {
        assert!(e.contains(option), "{option}: {e}");
    }
}

#[test]
fn with_the_background_drain_off_nothing_moves_until_belfry_deliver() {
    let port = belfry_testkit::closed_port();
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{port}/b\"\n[delivery]\nbackground = false\n"
    ));
    let o = w
        .cmd(&["run", "--name", "fg", "--", "false"])
        .env_remove("BELFRY_BACKGROUND")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("`belfry deliver` will retry it"),
        "{}",
        stderr(&o)
    );
    assert!(!drainer_holds_lock(&w.home()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = Receiver::on(listener, vec![], Reply::ok());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(rx.requests().is_empty());
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn a_reader_that_goes_away_is_not_an_error_for_any_command() {
    let w = World::new();
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "false"])), 1);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["outbox", "--all"],
        &["outbox", "--all", "--json"],
        &["history", "j"],
        &["history", "j", "--json"],
        &["channels"],
        &["channels", "--json"],
        &["channels", "--schemes"],
        &["check", "j"],
        &["deliver"],
        &["send", "--dry-run", "-b", "hi"],
    ] {
        let expected = code(&w.run(args));
        // Standard output is a pipe whose reader is already gone: every write fails with
        // EPIPE, as when `head` has read what it wanted.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = w.cmd(args).stdout(writer).output().unwrap();
        assert_eq!(code(&o), expected, "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

/// The commands a help text lists under `Commands:` (clap's own `help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_help_ends_with_the_same_exit_code_table_as_the_readme() {
    let w = World::new();
    let help = |path: &[String]| {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = w.run(&args);
        assert_eq!(code(&o), 0, "{path:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let top = help(&[]);
    let block = &top[top
        .find("Exit codes:")
        .expect("the top-level help has the codes")..];
    // Each entry: the command(s) it is about, then its codes over one or more lines.
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in block.lines().skip(1) {
        if line.starts_with("  ") && !line.starts_with("   ") {
            let (name, codes) = line.trim().split_once("  ").unwrap();
            entries.push((name.to_owned(), codes.trim().to_owned()));
        } else if let Some((_, codes)) = entries.last_mut() {
            codes.push(' ');
            codes.push_str(line.trim());
        }
    }
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    // `belfry test` shares `belfry send`'s three codes, named on one entry with it.
    assert_eq!(
        names,
        [
            "belfry run",
            "belfry check",
            "belfry config check",
            "belfry send, test",
            "other commands"
        ]
    );
    for ((name, codes), expected) in entries.iter().zip([
        &[
            "124 it ran past",
            "128+N",
            "126",
            "127",
            "2 belfry's usage error",
        ][..],
        &["0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"],
        &[
            "0 the configuration is valid",
            "1 with --job",
            "2 a bad configuration",
        ],
        &["0 every channel", "1 a channel failed", "2 usage error"],
        &["0 success, 1 failure, 2 usage error"],
    ]) {
        for c in expected {
            assert!(codes.contains(c), "{name}: {c}: {codes}");
        }
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for row in [
        "| `belfry run` |",
        "| `belfry check` |",
        "| `belfry config check` |",
        "| `belfry send`, `belfry test` |",
    ] {
        assert!(readme.contains(row), "README: {row}");
    }
    // Every command's help, nested ones too, ends with the very same block.
    let mut todo: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let text = help(&path);
        assert!(text.ends_with(block), "{path:?}:\n{text}");
        assert_eq!(text.matches("Exit codes:").count(), 1, "{path:?}");
        for sub in subcommands(&text) {
            let mut deeper = path.clone();
            deeper.push(sub);
            todo.push(deeper);
        }
        seen += 1;
    }
    assert!(seen >= 11, "{seen} commands");
}

/// `belfry send`, `channels`, `test`, secret references and templates.
#[path = "cli/send.rs"]
mod send;

#[test]
fn status_puts_problems_first_tells_how_long_a_job_has_run_and_problems_exits_1() {
    let w = World::new();
    w.run(&["run", "-q", "--name", "a-fine", "--", "true"]);
    w.run(&["run", "-q", "--name", "z-broken", "--", "false"]);
    let (mut wrapper, _out) = start_ready(&w, "m-slow", "echo ready; exec sleep 30");
    let recorded = eventually(Duration::from_secs(10), || {
        w.json(&["status", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "m-slow" && j["running_since"].is_string())
    });
    assert!(recorded, "{}", w.json(&["status", "--json"]));

    let o = w.run(&["status"]);
    assert_eq!(code(&o), 0);
    let table = String::from_utf8(o.stdout).unwrap();
    let names: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["z-broken", "a-fine", "m-slow"], "{table}");
    let slow = table.lines().find(|l| l.starts_with("m-slow")).unwrap();
    assert!(slow.contains("running for "), "{table}");
    let json = w.json(&["status", "--json"]);
    let order: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["z-broken", "a-fine", "m-slow"]);

    let o = w.run(&["status", "--problems"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("z-broken"),
        "{table}"
    );
    let o = w.run(&["status", "--problems", "--json"]);
    assert_eq!(code(&o), 1);
    let only: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["name"], "z-broken");

    // Recovered: nothing to report, and a monitoring script sees 0.
    w.run(&["run", "-q", "--name", "z-broken", "--", "true"]);
    let o = w.run(&["status", "--problems"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "no job is in a problem state\n"
    );
    let o = w.run(&["status", "--problems", "--json"]);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, b"[]\n".as_slice()));
    send_signal(wrapper.id(), "TERM");
    wrapper.wait().unwrap();
}

#[test]
fn the_store_section_bounds_what_each_job_keeps() {
    let w = World::with_config("[store]\nkeep_runs = 3\nkeep_notifications = 2\n");
    for _ in 0..70 {
        assert_eq!(
            code(&w.run(&["run", "-q", "--name", "often", "--", "true"])),
            0
        );
    }
    let kept = w.history("often").len();
    assert!((3..70).contains(&kept), "{kept} runs kept");

    let bad = World::with_config("[store]\nkeep_runs = 0\n");
    let o = bad.run(&["status"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("keep_runs") && err.contains("between 1 and 10000"),
        "{err}"
    );
}

/// Crashes found by commands that only look, alerts no channel takes, alerts left with no
/// sender, and `belfry config check`.
#[path = "cli/reach.rs"]
mod reach;

/// Secrets quoted back by receivers, through every output and the store.
#[path = "cli/secrets.rs"]
mod secrets;

#[path = "cli/store.rs"]
mod store;

#[path = "cli/quiet.rs"]
mod quiet;
