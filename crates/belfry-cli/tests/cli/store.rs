//! A store elsewhere than the state directory: PostgreSQL, shared by several hosts (each a
//! state directory of its own here), chosen by `[store] url` or `$BELFRY_STORE`.

use std::time::Duration;

use belfry_testkit::{PgSchema, Receiver};

use crate::common::{World, code, stderr};

/// A world whose belfry uses `schema`'s store, alerting `rx` once per problem spell (no
/// reminder within the test).
fn host(rx: &Receiver, schema: &PgSchema) -> World {
    World::with_config(&format!(
        "[policy]\nrepeat_failures_after = \"1h\"\n\n[delivery]\ndigest_window = \"0s\"\n\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n\n[store]\nurl = \"{}\"\n",
        rx.addr(),
        schema.url()
    ))
}

#[test]
fn runs_from_several_hosts_on_one_postgres_store_make_one_history_and_one_alert() {
    let rx = Receiver::start(vec![]);
    let schema = PgSchema::new("cli");
    let hosts = [host(&rx, &schema), host(&rx, &schema)];
    // Five runs from each host at once, all failing.
    let children: Vec<_> = (0..10)
        .map(|i| {
            hosts[i % 2]
                .cmd(&["run", "--name", "shared", "--", "sh", "-c", "exit 4"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(4), "the job's own exit code");
    }
    // Either host sees every run, in one history, and the rules counted them all.
    for w in &hosts {
        let runs = w.history("shared");
        assert_eq!(runs.len(), 10, "{runs:#?}");
        assert!(runs.iter().all(|r| r["state"] == "failed"), "{runs:#?}");
        let status = w.json(&["status", "--json"]);
        let job = &status.as_array().unwrap()[0];
        assert_eq!(job["name"], "shared");
        assert_eq!(job["consecutive_problems"], 10, "{job:#}");
    }
    // One first-run alert among them; the others fell inside the repeat window.
    let got = rx.wait_for(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.requests().len(), 1, "{got:#?}");
    let notified = hosts[0]
        .history("shared")
        .iter()
        .filter(|r| r["notified"] == true)
        .count();
    assert_eq!(notified, 1);
    // And nothing is left in the shared outbox.
    let out = hosts[1].json(&["outbox", "--json"]);
    assert_eq!(out.as_array().map(Vec::len), Some(0), "{out:#}");
}

#[test]
fn belfry_store_wins_over_the_file_and_a_store_that_cannot_be_reached_never_shows_its_password() {
    let rx = Receiver::start(vec![]);
    let schema = PgSchema::new("cli");
    let w = host(&rx, &schema);
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://postgres:${env:PG_TEST_PASS}@127.0.0.1:1/test";
    let out = w
        .cmd(&["status"])
        .env("BELFRY_STORE", url)
        .env("PG_TEST_PASS", "s3cret-pass-2941")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("postgres://postgres:***@127.0.0.1:1/test"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pass-2941"), "{err}");
    // Without $BELFRY_STORE, the file's store is used, and works.
    assert_eq!(code(&w.run(&["run", "--name", "j", "--", "true"])), 0);
    assert_eq!(w.history("j").len(), 1);
}

#[test]
fn a_store_url_that_is_not_one_is_a_usage_error_naming_its_line() {
    let w = World::with_config("[store]\nurl = \"mysql://root@localhost/belfry\"\n");
    let out = w.run(&["status"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("line 2") && err.contains("store.url"), "{err}");
    assert!(err.contains("postgres://"), "says what to write: {err}");
    let out = w.run(&["run", "--name", "j", "--", "touch", "ran"]);
    assert_eq!(code(&out), 2);
    assert!(!w.dir.path().join("ran").exists(), "the job does not run");
}

#[test]
fn a_host_moves_up_to_postgres_with_its_history_and_its_waiting_alerts() {
    // A dead channel: the alerts stay pending in the host's SQLite store.
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://127.0.0.1:{}/x\"\n",
        belfry_testkit::closed_port()
    ));
    assert_eq!(
        code(&w.run(&[
            "run",
            "--name",
            "backup",
            "--",
            "sh",
            "-c",
            "echo copying; exit 3"
        ])),
        3
    );
    assert_eq!(code(&w.run(&["run", "--name", "report", "--", "true"])), 0);
    let before = w.history("backup");
    // A silence moves with the store: the new store must not send what was silenced.
    let out = w.run(&[
        "silence",
        "report",
        "--for",
        "2h",
        "--reason",
        "moving the disk",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let schema = PgSchema::new("cli");

    let out = w.run(&["store", "migrate", "--to", &schema.url(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let copied: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(copied["jobs"], 2, "{copied:#}");
    assert_eq!(copied["runs"], 2, "{copied:#}");
    // Both first runs alerted (a new job's first OK says so too); neither reached the channel.
    assert_eq!(copied["outbox"]["pending"], 2, "{copied:#}");
    assert_eq!(copied["already_there"], 0, "{copied:#}");
    assert_eq!(copied["silences"], 1, "{copied:#}");

    // Again: nothing new, and it says so.
    let out = w.run(&["store", "migrate", "--to", &schema.url()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("copied nothing"), "{said}");

    // The copy is the store from now on: the same history, the alerts still waiting.
    let on_pg = |args: &[&str]| {
        w.cmd(args)
            .env("BELFRY_STORE", schema.url())
            .output()
            .unwrap()
    };
    let history: serde_json::Value =
        serde_json::from_slice(&on_pg(&["history", "backup", "--json", "--output"]).stdout)
            .unwrap();
    assert_eq!(history.as_array().unwrap().len(), before.len());
    assert_eq!(history[0]["output"], before[0]["output"]);
    let outbox: serde_json::Value =
        serde_json::from_slice(&on_pg(&["outbox", "--json"]).stdout).unwrap();
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{outbox:#}");
    assert!(rows.iter().all(|r| r["status"] == "pending"), "{outbox:#}");
    let silences = String::from_utf8_lossy(&on_pg(&["silence"]).stdout).into_owned();
    assert!(silences.contains("moving the disk"), "{silences}");

    // A --to that is the store itself is refused.
    let out = w
        .cmd(&["store", "migrate", "--to", &schema.url()])
        .env("BELFRY_STORE", schema.url())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("already at"), "{}", stderr(&out));
}
