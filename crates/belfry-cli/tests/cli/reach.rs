//! Every alert reaches someone, or someone is told: a crash found by a command that only looks
//! is sent without a further command, an alert no channel takes is said and recorded as sent
//! nowhere, an alert left in the outbox with no sender says so, and `belfry config check`
//! shows where a job's alerts go.

use super::*;

/// A channel that takes only the `backup-*` jobs' alerts, and nothing else configured.
fn backups_only(rx: &Receiver) -> String {
    format!(
        "[delivery]\ndigest_window = \"0s\"\n\n[channels.ops]\nurl = \"json://{}/ops\"\n\
         jobs = [\"backup-*\"]\n",
        rx.addr()
    )
}

/// Kills `belfry run`'s wrapper of a job `victim` mid-job with KILL, as a crash would; the
/// job itself is killed when the returned guard is dropped.
fn crash_a_wrapper(w: &World) -> impl Drop {
    let pidfile = w.dir.path().join("job.pid");
    let script = format!("echo $$ > {}; echo ready; exec sleep 30", pidfile.display());
    let (mut wrapper, _out) = start_ready(w, "victim", &script);
    wait_until_recorded_running(w);
    send_signal(wrapper.id(), "KILL");
    wrapper.wait().unwrap();
    super::KillOnDrop(std::fs::read_to_string(&pidfile).unwrap().trim().to_owned())
}

#[test]
fn a_crash_found_by_status_is_delivered_without_another_belfry_command() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    let _job = crash_a_wrapper(&w);

    // Only a look at the status, with the background delivery on as users have it: the crash
    // it finds is sent by the sender it starts, and the look itself sends nothing.
    let o = w
        .cmd(&["status"])
        .env_remove("BELFRY_BACKGROUND")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let got = rx.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "the crash's alert was not sent");
    let alert = got[0].json();
    assert_eq!(
        (alert["job"].as_str(), alert["state"].as_str()),
        (Some("victim"), Some("crashed"))
    );
    // The sender leaves once the outbox is delivered; nothing is left for anyone.
    assert!(eventually(Duration::from_secs(20), || !drainer_holds_lock(
        &w.home()
    )));
    assert_eq!(w.json(&["outbox", "--json"]), Value::Array(vec![]));
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn a_crash_found_with_background_delivery_off_says_that_it_waits_for_deliver() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&hook(&rx));
    let _job = crash_a_wrapper(&w);

    let o = w.run(&["check", "victim"]);
    assert_eq!(code(&o), 2, "CRITICAL: the job crashed");
    let e = stderr(&o);
    assert_eq!(e.matches("belfry:").count(), 1, "{e}");
    assert!(
        e.contains("not sent yet")
            && e.contains("BELFRY_BACKGROUND=0")
            && e.contains("belfry deliver"),
        "{e}"
    );
    assert!(rx.requests().is_empty());
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn an_alert_no_channel_takes_is_said_on_stderr_and_recorded_as_sent_nowhere() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&backups_only(&rx));
    // --quiet silences belfry's own talk, not the news that an alert is lost.
    let o = w.run(&["run", "--quiet", "--name", "other", "--", "false"]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert_eq!(e.matches("belfry:").count(), 1, "{e}");
    for part in [
        "failed alert for other",
        "reaches no channel",
        "ops: its jobs (backup-*) do not match other",
        "belfry config check --job other",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    let run = &w.history("other")[0];
    assert_eq!(run["notified"], false, "{run}");
    assert_eq!(run["reason"], "no_channel", "{run}");
    assert!(
        run["reason_text"]
            .as_str()
            .unwrap()
            .starts_with("first run of this job; "),
        "{run}"
    );
    let table = String::from_utf8(w.run(&["history", "other"]).stdout).unwrap();
    assert!(table.contains("no (no_channel)"), "{table}");
    // The notification log holds only what was sent somewhere.
    assert_eq!(
        w.json(&["status", "--json"])[0]["last_notification"],
        Value::Null
    );
    assert_eq!(w.json(&["outbox", "--all", "--json"]), Value::Array(vec![]));

    // A job the channel takes alerts as before, and says nothing of the kind.
    let o = w.run(&["run", "--name", "backup-db", "--", "false"]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
    assert_eq!(w.history("backup-db")[0]["notified"], true);
}

#[test]
fn quiet_with_only_the_console_is_not_an_alert_sent_nowhere() {
    let w = World::new();
    let o = w.run(&["run", "--quiet", "--name", "hush", "--", "false"]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let run = &w.history("hush")[0];
    assert_eq!(
        (&run["notified"], &run["reason"]),
        (&Value::Bool(true), &Value::from("first_run"))
    );
}

#[test]
fn config_check_shows_which_channels_take_a_jobs_alerts_and_why_not() {
    let w = World::with_config(
        "[channels.ops]\nurl = \"json://127.0.0.1:9/ops\"\njobs = [\"backup-*\"]\n\
         states = [\"problem\", \"recovered\"]\n\n\
         [channels.chat]\nurl = \"json://127.0.0.1:9/chat\"\nstates = [\"ok\"]\n\n\
         [channels.pager]\nurl = \"json://127.0.0.1:9/pager\"\nstates = [\"crashed\"]\n",
    );
    let o = w.run(&["config", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("belfry.toml"), "{out}");
    for name in ["ops", "chat", "pager"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name}: {out}");
    }

    let rows = |o: &std::process::Output| -> Vec<Vec<String>> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip_while(|l| !l.starts_with("where the alerts of"))
            .skip(2)
            .take(3)
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(|c| c.trim().to_owned())
                    .collect()
            })
            .collect()
    };
    let o = w.run(&["config", "check", "--job", "backup-db"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        rows(&o),
        [
            vec!["chat", "no", "yes", "yes", "its states (ok) do not take it"],
            vec![
                "ops",
                "yes",
                "yes",
                "no",
                "its states (problem, recovered) do not take it"
            ],
            vec![
                "pager",
                "crashed",
                "no",
                "no",
                "its states (crashed) do not take it"
            ],
        ]
    );
    // A job only `pager` takes problems for, and only crashes: still reached.
    let o = w.run(&["config", "check", "--job", "other"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(rows(&o)[1][4], "its jobs (backup-*) do not match other");

    // With the crash channel gone, the job's problems reach nobody: exit 1, and said.
    let w = World::with_config(
        "[channels.ops]\nurl = \"json://127.0.0.1:9/ops\"\njobs = [\"backup-*\"]\n",
    );
    let o = w.run(&["config", "check", "--job", "other"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("no channel takes the problem alerts of other"),
        "{out}"
    );
    assert_eq!(code(&w.run(&["config", "check", "--job", ""])), 2);
}

#[test]
fn a_command_channel_whose_program_cannot_run_is_a_configuration_error_for_every_command() {
    let w = World::with_config(
        "[policy]\n\n[channels.desk]\ncommand = [\"belfry-no-such-notifier\", \"{title}\"]\n",
    );
    let marker = w.dir.path().join("ran");
    for args in [
        vec!["config", "check"],
        vec!["status"],
        vec![
            "run",
            "--name",
            "j",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    ] {
        let o = w.run(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("line 3")
                && e.contains("[channels.desk]")
                && e.contains("belfry-no-such-notifier is not found on PATH"),
            "{e}"
        );
    }
    assert!(
        !marker.exists(),
        "the job must not run under a bad configuration"
    );

    // A file that is there but not executable, then the same file made executable.
    let program = w.dir.path().join("notify.sh");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(
        w.dir.path().join("belfry.toml"),
        format!("[channels.desk]\ncommand = [\"{}\"]\n", program.display()),
    )
    .unwrap();
    let o = w.run(&["config", "check"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not executable"), "{}", stderr(&o));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = w.run(&["config", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn with_no_wait_and_no_background_a_run_says_its_alert_waits_for_deliver() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[delivery]\nwait = \"0s\"\nbackground = false\n\n[channels.hook]\nurl = \"json://{}/h\"\n",
        rx.addr()
    ));
    let o = w.run(&["run", "--quiet", "--name", "j", "--", "false"]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert_eq!(e.matches("belfry:").count(), 1, "{e}");
    assert!(
        e.contains("not sent yet: the alert for j (1 in the outbox)")
            && e.contains("[delivery] background = false")
            && e.contains("run `belfry deliver`"),
        "{e}"
    );
    assert!(rx.requests().is_empty());
    assert_eq!(code(&w.run(&["deliver"])), 0);
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn rows_made_due_again_are_sent_by_the_background_delivery_that_retry_starts() {
    // Refused for good once (the row is dead), then taken.
    let rx = Receiver::start(vec![Reply::status(400)]);
    let w = World::with_config(&hook(&rx));
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "false"])), 1);
    assert_eq!(w.json(&["outbox", "--json"])[0]["status"], "dead");

    let o = w
        .cmd(&["outbox", "retry", "--dead"])
        .env_remove("BELFRY_BACKGROUND")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = String::from_utf8(o.stdout).unwrap();
    assert!(
        said.contains("the background delivery sends them"),
        "{said}"
    );
    assert_eq!(rx.wait_for(2, Duration::from_secs(20)).len(), 2);
    assert!(eventually(Duration::from_secs(20), || !drainer_holds_lock(
        &w.home()
    )));
    assert_eq!(w.json(&["outbox", "--json"]), Value::Array(vec![]));
}

#[test]
fn a_crash_found_by_status_is_printed_when_the_console_is_its_channel() {
    // Only the console: a detached sender could print nowhere, so the look prints it itself.
    let w = World::new();
    let _job = crash_a_wrapper(&w);
    let o = w
        .cmd(&["status", "--json"])
        .env_remove("BELFRY_BACKGROUND")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let e = stderr(&o);
    assert!(e.contains("belfry: victim: Crashed"), "{e}");
    assert!(!e.contains("not sent yet"), "{e}");
    assert!(!drainer_holds_lock(&w.home()));
    let all = w.json(&["outbox", "--all", "--json"]);
    assert_eq!(all[0]["status"], "delivered", "{all}");
}
