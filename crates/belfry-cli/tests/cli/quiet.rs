//! `belfry silence`, `belfry ack` and `belfry hash-password`, as a user runs them on the
//! store `belfry run` records into: a silenced job's failure alerts nobody, an acknowledged
//! one's reminders stop, and the hash is one the dashboard takes.

use std::time::Duration;

use belfry_testkit::{Receiver, eventually};

use crate::common::{World, code, stderr};

fn world(rx: &Receiver) -> World {
    World::with_config(&format!(
        "[policy]\nrepeat_failures_after = \"1s\"\n\n[delivery]\ndigest_window = \"0s\"\n\
         wait = \"5s\"\n\n[channels.hook]\nurl = \"json://{}/belfry\"\n",
        rx.addr()
    ))
}

fn fail(w: &World, job: &str) {
    let o = w.run(&["run", "--name", job, "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn a_silenced_job_fails_quietly_until_the_silence_is_ended() {
    let rx = Receiver::start(vec![]);
    let w = world(&rx);
    // A job must exist to be silenced by name.
    let o = w.run(&["silence", "backup", "--for", "1h"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no job is named \"backup\""),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["run", "--name", "backup", "--", "true"]);
    assert_eq!(code(&o), 0);
    let o = w.run(&["silence", "backup", "--for", "soon"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("for:"), "{}", stderr(&o));
    let o = w.run(&["silence", "backup", "--for", "2h", "--reason", "disk swap"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("job backup silenced until"));
    let list = w.json(&["silence", "--json"]);
    assert_eq!(list[0]["job"], "backup");
    assert_eq!(list[0]["reason"], "disk swap");
    let before = rx.requests().len();
    fail(&w, "backup");
    let history = w.history("backup");
    assert_eq!(history[0]["state"], "failed");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.requests().len(),
        before,
        "nothing was sent while silenced"
    );
    // Ended, the next alert (the recovery) goes out.
    let id = list[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(code(&w.run(&["silence", "--end", &id])), 0);
    assert_eq!(code(&w.run(&["silence", "--end", &id])), 2);
    let o = w.run(&["run", "--name", "backup", "--", "true"]);
    assert_eq!(code(&o), 0);
    assert!(eventually(Duration::from_secs(10), || rx.requests().len() > before));
}

#[test]
fn an_acknowledged_problem_sends_no_reminders() {
    let rx = Receiver::start(vec![]);
    let w = world(&rx);
    fail(&w, "sync");
    assert!(eventually(Duration::from_secs(10), || rx.requests().len() == 1));
    let o = w.run(&["ack", "sync"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Past the repeat window: a reminder would be due, and is held back.
    std::thread::sleep(Duration::from_millis(1100));
    fail(&w, "sync");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.requests().len(), 1);
    let o = w.run(&["ack", "nope"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn a_password_hash_is_printed_for_the_configuration() {
    let w = World::new();
    let o = w.run_with_input(&["hash-password"], b"correct horse\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let hash = String::from_utf8(o.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    // The configuration takes it.
    let w = World::with_config(&format!("[server.users.ann]\npassword_hash = \"{hash}\"\n"));
    assert_eq!(code(&w.run(&["config", "check"])), 0);
    let o = World::new().run(&["hash-password"]);
    assert_eq!(code(&o), 2, "no password: {}", stderr(&o));
}

#[test]
fn a_job_is_paused_and_resumed_from_the_shell() {
    let w = World::new();
    assert_eq!(code(&w.run(&["pause", "nope"])), 2);
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "true"])), 0);
    let o = w.run(&["pause", "j"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("j: paused"));
    let paused = || {
        let store = belfry_store::Store::open(w.home().join("belfry.db")).unwrap();
        let c = store
            .check(belfry_store::JobRef::Name("j"))
            .unwrap()
            .unwrap();
        c.paused
    };
    assert!(paused());
    assert_eq!(code(&w.run(&["resume", "j"])), 0);
    assert!(!paused());
}
