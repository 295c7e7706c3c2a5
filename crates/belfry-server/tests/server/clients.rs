//! Real clients against a real server: curl as cron lines use it, the `healthchecks-io`
//! package from PyPI (its pydantic models check belfry's JSON; installed into
//! `target/clients-venv` by `scripts/test-deps.sh`), and the `healthchecks` crate.

use std::path::PathBuf;
use std::process::Command;

use belfry_testkit::Receiver;
use healthchecks::manage::{UpsertResult, get_client_with_url};
use healthchecks::model::{NewCheck, UpdatedCheck};

use crate::support::{TestServer, job, pings};

const RW: &str = "rw-key-for-the-clients-00000000";
const RO: &str = "ro-key-for-the-python-client-000";

fn server(hook: &Receiver) -> TestServer {
    TestServer::start(&format!(
        "[server]\nping_key = \"pk\"\napi_key = \"{RW}\"\napi_key_readonly = \"{RO}\"\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n",
        hook.addr()
    ))
}

/// The Python of the clients' virtual environment.
fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join("target/clients-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test-deps.sh, which installs the healthchecks-io client",
        py.display()
    );
    py
}

#[test]
fn the_healthchecks_io_python_client_works_unchanged() {
    let hook = Receiver::start(vec![]);
    let server = server(&hook);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/healthchecks_io_client.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .args([RW, "pk"])
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim() == "ok", "{text}");
    // What it did is in the store: the check it deleted is gone, its pings with it.
    let store = server.store();
    assert!(job(&store, "py-backup").is_none());
    assert!(pings(&store, "py-backup").is_empty());
}

#[test]
fn the_healthchecks_crate_works_unchanged() {
    let hook = Receiver::start(vec![]);
    let server = server(&hook);
    let api =
        get_client_with_url(RW.into(), None, format!("http://{}/api/v3", server.addr)).unwrap();
    let made = api
        .create_check(NewCheck {
            name: Some("Rust Backup".into()),
            tags: Some("rust".into()),
            timeout: Some(600),
            grace: Some(60),
            ..NewCheck::default()
        })
        .unwrap();
    assert_eq!(made.slug.as_deref(), Some("rust-backup"));
    assert_eq!((made.timeout, made.grace), (Some(600), 60));
    let id = made.id().expect("the read-write key sees the ping URL");
    let (result, again) = api
        .upsert_check(NewCheck {
            name: Some("Rust Backup".into()),
            unique: Some(vec!["name".into()]),
            ..NewCheck::default()
        })
        .unwrap();
    assert!(matches!(result, UpsertResult::Updated));
    assert_eq!(again.id(), Some(id.clone()));

    let ping =
        healthchecks::ping::get_client_with_url(&id, &format!("http://{}/ping", server.addr))
            .unwrap();
    let rid = uuid::Uuid::new_v4();
    assert!(ping.start_timer_with_run_id(Some(&rid)));
    assert!(ping.report_success_with_run_id(Some(&rid)));
    assert!(ping.report_failure_with_logs("disk full"));

    let logged = api.list_logged_pings(&id).unwrap();
    let kinds: Vec<&str> = logged.iter().map(|p| p.type_field.as_str()).collect();
    assert_eq!(kinds, ["fail", "success", "start"]);
    assert!(logged[1].duration.is_some(), "paired by rid: {logged:?}");
    let flips = api.list_status_changes(&id).unwrap();
    assert_eq!(flips.iter().map(|f| f.up).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(api.get_check(&id).unwrap().status, "down");

    let updated = api
        .update_check(
            UpdatedCheck {
                desc: Some("made by the crate".into()),
                schedule: Some("30 2 * * *".into()),
                tz: Some("Europe/Berlin".into()),
                ..UpdatedCheck::default()
            },
            &id,
        )
        .unwrap();
    assert_eq!(updated.desc, "made by the crate");
    assert_eq!(updated.schedule.as_deref(), Some("30 2 * * *"));
    assert_eq!(updated.tz.as_deref(), Some("Europe/Berlin"));
    assert_eq!(api.pause(&id).unwrap().status, "paused");
    let channels = api.get_channels().unwrap();
    assert_eq!(
        channels
            .iter()
            .map(|c| (c.name.as_str(), c.kind.as_str()))
            .collect::<Vec<_>>(),
        [("hook", "json")]
    );
    assert_eq!(api.get_checks().unwrap().len(), 1);
    let ro =
        get_client_with_url(RO.into(), None, format!("http://{}/api/v3", server.addr)).unwrap();
    let seen = ro.get_checks().unwrap();
    assert!(seen[0].ping_url.is_none() && seen[0].unique_key.is_some());
    assert!(ro.delete(&id).is_err(), "the read-only key does not delete");
    api.delete(&id).unwrap();
    assert!(api.get_check(&id).is_err());
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(args).output().expect("curl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn curl_one_liners_from_cron_work_unchanged() {
    let hook = Receiver::start(vec![]);
    let server = server(&hook);
    let base = format!("http://{}", server.addr);
    // The cron line healthchecks.io suggests, by slug with auto-provisioning.
    let (ok, body) = curl(&[
        "-fsS",
        "-m",
        "10",
        "--retry",
        "5",
        &format!("{base}/ping/pk/nightly-report?create=1"),
    ]);
    assert!(ok);
    assert_eq!(body, "Created");
    // The job's output as the body of a failure, then a start and an exit status.
    let (ok, body) = curl(&[
        "-fsS",
        "-m",
        "10",
        "--data-raw",
        "error: disk full",
        &format!("{base}/ping/pk/nightly-report/fail"),
    ]);
    assert!(ok && body == "OK");
    assert!(curl(&["-fsS", &format!("{base}/ping/pk/nightly-report/start")]).0);
    assert!(curl(&["-fsS", &format!("{base}/ping/pk/nightly-report/0")]).0);
    // -f fails on a 404: a mistyped slug is noticed.
    assert!(!curl(&["-fsS", &format!("{base}/ping/pk/no-such-job")]).0);
    let kept = pings(&server.store(), "nightly-report");
    assert_eq!(kept.len(), 4);
    // The management API from a shell.
    let (ok, body) = curl(&[
        "-fsS",
        "-H",
        &format!("X-Api-Key: {RW}"),
        &format!("{base}/api/v3/checks/"),
    ]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["checks"][0]["slug"], "nightly-report");
    assert_eq!(v["checks"][0]["n_pings"], 4);
    assert_eq!(v["checks"][0]["status"], "up", "the exit 0 recovered it");
    let (ok, body) = curl(&[
        "-fsS",
        "-X",
        "POST",
        "-H",
        &format!("X-Api-Key: {RW}"),
        "--data",
        r#"{"name": "From curl", "timeout": 300, "grace": 60}"#,
        &format!("{base}/api/v3/checks/"),
    ]);
    assert!(ok, "{body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(made["slug"], "from-curl");
}
