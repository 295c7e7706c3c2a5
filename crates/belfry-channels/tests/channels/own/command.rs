//! The command channel with real child processes: hostile titles arrive as literal arguments,
//! the notification arrives on standard input, a hung command is killed, exit statuses are
//! classified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use belfry_channels::{Channel, Command, Outcome, parse};
use belfry_core::{Notification, Reason, State};

use crate::{notification, send};

fn recorder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/record_argv.py")
}

fn command(argv: &[&str], timeout: Option<Duration>) -> Box<dyn Channel> {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    parse(&Command::url_for(&argv, timeout)).unwrap()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn hostile_titles_arrive_as_literal_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let job = format!(
        "db; rm -rf ~; touch {d}/pwn1 $(touch {d}/pwn2) `touch {d}/pwn3` 'single' \"double\" \
         | tee {d}/pwn4 && echo ${{HOME}} > {d}/pwn5 \\ *"
    );
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.job = job.clone();
    n.title = format!("{job}: Failed\nsecond line\twith a tab");
    let out = dir.path().join("argv.json");
    let ch = command(
        &[
            "python3",
            recorder().to_str().unwrap(),
            out.to_str().unwrap(),
            "{title}",
            "--",
            "job={job}",
            "{{literal}}",
            "{body}",
            "",
        ],
        None,
    );
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);

    let rec = read_json(&out);
    assert_eq!(
        rec["argv"],
        serde_json::json!([
            n.title,
            "--",
            format!("job={job}"),
            "{literal}",
            n.message,
            "",
        ])
    );
    for i in 1..=5 {
        assert!(
            !dir.path().join(format!("pwn{i}")).exists(),
            "pwn{i}: a shell ran something"
        );
    }
    // The notification on standard input, in the documented schema.
    let stdin: Notification = serde_json::from_str(rec["stdin"].as_str().unwrap()).unwrap();
    assert_eq!(stdin, n);
    assert_eq!(rec["env"]["BELFRY_JOB"], job);
    assert_eq!(rec["env"]["BELFRY_STATE"], "failed");
    assert_eq!(rec["env"]["BELFRY_KIND"], "problem");
    assert_eq!(rec["env"]["BELFRY_RUN_ID"], "run-7");
}

/// Whether a process is gone (or a zombie waiting to be reaped).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_hung_command_and_what_it_started_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let ch = command(&["sh", "-c", &script], Some(Duration::from_millis(800)));
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Retry { reason, .. } = &o else {
        panic!("a hung command is retried later, got {o:?}")
    };
    assert!(reason.contains("did not finish within 800ms"), "{reason}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the command started its child before the timeout")
        .trim()
        .parse()
        .unwrap();
    assert!(
        belfry_testkit::eventually(Duration::from_secs(5), || gone(pid)),
        "the grandchild {pid} survived the timeout"
    );
}

#[test]
fn exit_statuses_are_classified_and_stderr_explains() {
    let n = notification(State::Failed, Reason::FirstRun);
    let run = |script: &str| send(command(&["sh", "-c", script], None).as_ref(), &n);
    assert_eq!(run("cat > /dev/null; exit 0"), Outcome::Delivered);
    assert_eq!(
        run("echo first >&2; echo 'it broke' >&2; exit 3"),
        Outcome::retry("sh exited with 3: it broke")
    );
    assert_eq!(
        run("echo 'bad payload' >&2; exit 65"),
        Outcome::permanent("sh exited with 65 (EX_DATAERR): bad payload")
    );
    assert_eq!(
        run("kill -TERM $$"),
        Outcome::retry("sh was killed by signal 15")
    );
    let o = send(command(&["/nonexistent/notifier"], None).as_ref(), &n);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("cannot start /nonexistent/notifier")),
        "{o:?}"
    );
}

#[test]
fn a_command_that_ignores_a_large_input_is_not_held_up_by_it() {
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.output_tail = Some("x".repeat(4 << 20));
    assert_eq!(
        send(command(&["true"], None).as_ref(), &n),
        Outcome::Delivered
    );
}

#[test]
fn secrets_in_arguments_stay_out_of_descriptions_and_reasons() {
    let ch = command(
        &[
            "sh",
            "-c",
            "echo \"failed with $1 at https://bot:$1@chat.example.com/hook\" >&2; exit 1",
            "sh",
            "--token=TOK3N-S3CRET-VALUE",
        ],
        None,
    );
    assert!(!ch.describe().contains("S3CRET"), "{}", ch.describe());
    assert!(!format!("{ch:?}").contains("S3CRET"));
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let reason = o.reason().unwrap();
    assert!(
        reason.starts_with("sh exited with 1: failed with"),
        "{reason}"
    );
    assert!(!reason.contains("S3CRET"), "{reason}");
}
