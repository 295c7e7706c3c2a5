//! `belfry send`, `belfry channels`, `belfry test`, secret references and templates, as a
//! user runs them: real processes, a real receiver on loopback, a real store on disk.

use std::process::Output;

use super::*;

/// Two fake secrets, planted in the environment and in a file; they must reach the channel
/// and nothing else.
const ENV_SECRET: &str = "envsecret-Xq7Zk9Lm";
const FILE_SECRET: &str = "filesecret-Pw3Rt8Vb";

fn send(w: &World, args: &[&str]) -> Output {
    let mut a = vec!["send"];
    a.extend_from_slice(args);
    w.run(&a)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn send_delivers_title_body_type_and_attachments_to_a_json_receiver() {
    let rx = Receiver::start(vec![]);
    let w = World::new();
    let file = w.dir.path().join("df.txt");
    std::fs::write(&file, "/ 91%\n").unwrap();
    let url = format!("json://{}/hook", rx.addr());
    let o = send(
        &w,
        &[
            "-t",
            "Disk",
            "-b",
            "nearly full",
            "-n",
            "warning",
            "--attach",
            file.to_str().unwrap(),
            "--job",
            "disk-check",
            &url,
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/hook");
    let v = got[0].json();
    assert_eq!(v["title"], "Disk");
    assert_eq!(v["message"], "nearly full");
    assert_eq!(v["type"], "warning");
    assert_eq!(v["job"], "disk-check");
    assert_eq!(v["reason"], "sent");
    assert_eq!(v["attachments"][0]["filename"], "df.txt");
    assert_eq!(v["attachments"][0]["mimetype"], "text/plain");
    assert_eq!(v["attachments"][0]["base64"], "LyA5MSUK"); // "/ 91%\n"
    // Nothing is stored: a message sent by hand does not go through the outbox.
    assert!(!w.home().exists());

    // A channel that refuses: exit 1, the reason named on standard error.
    let rx = Receiver::start_with_fallback(vec![], Reply::status(400).body("no such hook"));
    let o = send(&w, &["-b", "hi", &format!("json://{}/x", rx.addr())]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert!(
        e.contains("not sent to url 1") && e.contains("HTTP 400: no such hook"),
        "{e}"
    );
}

#[test]
fn the_body_can_come_from_standard_input() {
    let rx = Receiver::start(vec![]);
    let w = World::new();
    let o = w.run_with_input(
        &["send", "-t", "df", &format!("json://{}/", rx.addr())],
        "Filesystem  Use%\n/dev/vda1   91%\n".as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = rx.wait_for(1, Duration::from_secs(5))[0].json();
    assert_eq!(v["message"], "Filesystem  Use%\n/dev/vda1   91%");
    assert_eq!(v["title"], "df");

    // Nothing at all to say is a usage error, and nothing is sent.
    let o = send(&w, &[&format!("json://{}/", rx.addr())]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nothing to send"), "{}", stderr(&o));
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn a_dry_run_shows_each_channel_redacted_sends_nothing_and_exits_0() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://{}/hooks/SECRETPATH\"\ntitle = \"[{{{{ job }}}}] {{{{ title }}}}\"\n",
        rx.addr()
    ));
    let port = rx.addr().port();
    let o = send(
        &w,
        &[
            "--dry-run",
            "-t",
            "Backup",
            "-b",
            "done",
            "--channel",
            "hook",
            &format!("json://bob:SECRETPW@127.0.0.1:{port}/SECRETPATH2"),
            "slack://SECRETA/SECRETB/SECRETC",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("SECRET"), "{out}");
    assert!(
        out.starts_with("dry run: nothing sent; 3 channel(s)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("hook: json://127.0.0.1:{port}/…")),
        "{out}"
    );
    assert!(
        out.contains(&format!("POST http://127.0.0.1:{port}/…")),
        "{out}"
    );
    // The configured channel's template is applied; the URLs given by hand have none.
    assert!(out.contains("title: [send] Backup"), "{out}");
    assert!(
        out.contains(&format!("url 1: json://bob:***@127.0.0.1:{port}/…")),
        "{out}"
    );
    assert!(out.contains("url 2: slack://***/…"), "{out}");
    assert!(out.contains("POST https://hooks.slack.com/…"), "{out}");
    assert!(
        out.contains("title: Backup") && out.contains("body:  done"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rx.requests().len(), 0, "a dry run sends nothing");

    // As JSON: the same, every field redacted, bodies whole.
    let o = send(
        &w,
        &[
            "--dry-run",
            "--json",
            "-t",
            "Backup",
            "-b",
            "done\nin 3m",
            "--channel",
            "hook",
            "slack://SECRETA/SECRETB/SECRETC",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("SECRET"), "{}", stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "info");
    assert_eq!(v["attachments"], Value::Array(vec![]));
    let hook = &v["channels"][0];
    assert_eq!(hook["name"], "hook");
    assert_eq!(hook["scheme"], "json");
    assert_eq!(hook["destination"], format!("json://127.0.0.1:{port}/…"));
    assert_eq!(hook["requests"][0]["method"], "POST");
    assert!(hook["requests"][0]["body_bytes"].as_u64().unwrap() > 0);
    assert_eq!(hook["title"], "[send] Backup");
    assert_eq!(hook["body"], "done\nin 3m");
    assert_eq!(v["channels"][1]["destination"], "slack://***/…");
    // --json is the dry run's: a real send answers with its exit code.
    assert_eq!(code(&send(&w, &["--json", "-b", "x"])), 2);

    // Non-HTTP channels say so; with nothing named, the configured channels are used.
    let w = World::new();
    let o = send(&w, &["--dry-run", "-b", "x"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("console: console://\n    console (no HTTP request)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_invalid_url_exits_2_naming_it_redacted_and_what_is_wrong() {
    let rx = Receiver::start(vec![]);
    let w = World::new();
    let good = format!("json://{}/", rx.addr());
    for (url, want) in [
        (
            "slack://SECRETA/SECRETB",
            "a Slack webhook needs three tokens",
        ),
        (
            "slck://SECRETA/SECRETB/SECRETC",
            "unsupported scheme \"slck\"",
        ),
        ("json://u:SECRETPW@h/p?bogus=1", "unknown option \"bogus\""),
        ("hooks.example.com/SECRETPATH", "it has no scheme"),
    ] {
        for dry in [false, true] {
            let mut args = vec!["-b", "hi", good.as_str(), url];
            if dry {
                args.insert(0, "--dry-run");
            }
            let o = send(&w, &args);
            assert_eq!(code(&o), 2, "{url}");
            let e = stderr(&o);
            assert!(
                e.contains("invalid channel URL") && e.contains(want),
                "{url}: {e}"
            );
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
    let e = stderr(&send(&w, &["-b", "hi", "slack://SECRETA/SECRETB"]));
    assert!(e.contains("slack://***/…"), "{e}");
    // No good channel got anything: the URLs are checked before sending.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rx.requests().len(), 0);
    // An unknown channel name, and a bad type, are usage errors too.
    let o = send(&w, &["-b", "hi", "--channel", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no channel named \"nope\" and none tagged so (configured: console)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&send(&w, &["-b", "hi", "-n", "loud", &good])), 2);
}

#[test]
fn channels_lists_the_configured_channels_redacted() {
    let w = World::with_config(
        "[channels.ops]\nurl = \"slack://SECRETA/SECRETB/SECRETC\"\nstates = [\"problem\", \"recovered\"]\njobs = [\"backup-*\"]\n\n\
         [channels.hook]\nurl = \"json://u:SECRETPW@hooks.example:8080/SECRETPATH\"\nbody = \"{{ message }}\"\n",
    );
    let o = w.run(&["channels"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("SECRET"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DESTINATION"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("hook") && lines[1].contains("json://u:***@hooks.example:8080/…"),
        "{out}"
    );
    assert!(
        lines[1].contains("everything") && lines[1].ends_with("body"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("ops") && lines[2].contains("slack://***/…"),
        "{out}"
    );
    assert!(
        lines[2].contains("states problem,recovered; jobs backup-*"),
        "{out}"
    );
    let v = w.json(&["channels", "--json"]);
    assert_eq!(v[1]["name"], "ops");
    assert_eq!(v[1]["states"], serde_json::json!(["problem", "recovered"]));
    assert_eq!(v[0]["templates"], serde_json::json!(["body"]));
    assert!(!v.to_string().contains("SECRET"));
}

#[test]
fn test_sends_a_test_message_to_the_named_channel() {
    let rx = Receiver::start(vec![]);
    let other = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://{}/t\"\n[channels.other]\nurl = \"json://{}/o\"\n",
        rx.addr(),
        other.addr()
    ));
    let o = w.run(&["test", "hook"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("sent to hook"), "{}", stdout(&o));
    let v = rx.wait_for(1, Duration::from_secs(5))[0].json();
    assert_eq!(v["reason"], "test");
    assert_eq!(v["title"], "belfry test");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("to the channel hook"),
        "{v}"
    );
    assert_eq!(other.requests().len(), 0, "only the channel named");

    let o = w.run(&["test", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("hook, other"), "{}", stderr(&o));
    // A channel that is down: exit 1 and why.
    let port = belfry_testkit::closed_port();
    let o = w.run(&["test", &format!("json://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
}

#[test]
fn env_and_file_references_resolve_in_config_belfry_urls_and_command_line_urls() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://{}/${{file:secrets/path}}?+X-Token=${{env:HOOK_TOKEN}}\"\n",
        rx.addr()
    ));
    // Relative to the configuration file's directory.
    std::fs::create_dir(w.dir.path().join("secrets")).unwrap();
    std::fs::write(
        w.dir.path().join("secrets/path"),
        format!("{FILE_SECRET}\n"),
    )
    .unwrap();
    let o = w
        .cmd(&["send", "-b", "one"])
        .env("HOOK_TOKEN", ENV_SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(got[0].target, format!("/{FILE_SECRET}"));
    assert_eq!(got[0].header("x-token"), Some(ENV_SECRET));

    // A missing variable is a config error naming file, line, key and reference.
    let o = w.run(&["send", "-b", "two"]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("belfry.toml: line 2, column 7, key channels.hook.url"),
        "{e}"
    );
    assert!(
        e.contains("${env:HOOK_TOKEN}: the environment variable HOOK_TOKEN is not set"),
        "{e}"
    );
    assert!(!e.contains(FILE_SECRET), "{e}");

    // $BELFRY_URLS and URLs on the command line take references too.
    let w = World::new();
    let o = w
        .cmd(&["send", "-b", "three"])
        .env(
            "BELFRY_URLS",
            format!("json://{}/${{env:HOOK_TOKEN}}", rx.addr()),
        )
        .env("HOOK_TOKEN", ENV_SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w
        .cmd(&[
            "send",
            "-b",
            "four",
            &format!("json://{}/x?+X-Token=${{env:HOOK_TOKEN}}", rx.addr()),
        ])
        .env("HOOK_TOKEN", ENV_SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(3, Duration::from_secs(5));
    assert_eq!(got[1].target, format!("/{ENV_SECRET}"));
    assert_eq!(got[2].header("x-token"), Some(ENV_SECRET));
    let o = w.run(&["send", "-b", "five", "json://h/${env:NOT_SET_ANYWHERE}"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("${env:NOT_SET_ANYWHERE}: the environment variable"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn planted_secrets_appear_in_no_output_and_no_byte_of_the_store() {
    // The receiver refuses, echoing the token back in its answer (services do), so the secret
    // reaches the failure reasons that belfry prints and stores.
    let rx = Receiver::start_with_fallback(
        vec![],
        Reply::status(401).body(&format!("invalid token {ENV_SECRET} for {FILE_SECRET}")),
    );
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://belfry:${{env:HOOK_TOKEN}}@{}/${{file:token}}?+X-Token=${{env:HOOK_TOKEN}}\"\n\
         title = \"{{{{ job }}}}: {{{{ state }}}}\"\n",
        rx.addr()
    ));
    std::fs::write(w.dir.path().join("token"), FILE_SECRET).unwrap();
    let with_env = |args: &[&str]| w.cmd(args).env("HOOK_TOKEN", ENV_SECRET).output().unwrap();
    let mut outputs = Vec::new();
    let o = with_env(&[
        "run",
        "--name",
        "leaky",
        "--",
        "sh",
        "-c",
        "echo working; exit 3",
    ]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    outputs.push(o);
    let o = with_env(&["send", "-b", "hi"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("HTTP 401: invalid token *** for ***"),
        "{}",
        stderr(&o)
    );
    outputs.push(o);
    for args in [
        &["send", "--dry-run", "-b", "hi"][..],
        &["test", "hook"],
        &["channels"],
        &["channels", "--json"],
        &["status"],
        &["status", "--json"],
        &["outbox", "--all"],
        &["outbox", "--all", "--json"],
        &["history", "leaky", "--json", "--output"],
        &["deliver"],
        &["--config", "belfry.toml", "outbox", "retry", "--dead"],
        &["deliver"],
    ] {
        outputs.push(with_env(args));
    }
    // The secrets did reach the channel, so the searches below could have found them.
    let got = rx.requests();
    assert!(got.len() >= 3, "{}", got.len());
    assert!(got.iter().all(|r| r.target == format!("/{FILE_SECRET}")));
    assert!(got.iter().all(|r| r.header("x-token") == Some(ENV_SECRET)));
    // And the store holds the refusal, scrubbed.
    let o = with_env(&["outbox", "--all", "--json"]);
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        rows[0]["last_reason"],
        "HTTP 401: invalid token *** for ***"
    );
    for o in &outputs {
        for text in [stdout(o), stderr(o)] {
            assert!(
                !text.contains(ENV_SECRET) && !text.contains(FILE_SECRET),
                "{text}"
            );
        }
    }
    let mut files = 0;
    for f in std::fs::read_dir(w.home()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        files += 1;
        assert!(!contains(&bytes, ENV_SECRET.as_bytes()));
        assert!(!contains(&bytes, FILE_SECRET.as_bytes()));
    }
    assert!(files >= 2, "the store and its WAL were searched");
}

#[test]
fn template_errors_are_caught_at_load_naming_file_line_and_key() {
    for (toml, want) in [
        (
            "title = \"{{ jobb }}\"",
            "line 3, column 9, key channels.hook.title: title template: unknown variable jobb",
        ),
        (
            "body = \"\"\"\nok\n{% if job %}\"\"\"",
            "line 3, column 8, key channels.hook.body: body template, its line 2: syntax error",
        ),
        (
            "body = \"{{ job | shout }}\"",
            "key channels.hook.body: body template: unknown filter: filter shout is unknown",
        ),
    ] {
        let w = World::with_config(&format!("[channels.hook]\nurl = \"console://\"\n{toml}\n"));
        let marker = w.dir.path().join("ran");
        for args in [
            &["send", "-b", "x"][..],
            &["channels"],
            &["run", "--", "touch", marker.to_str().unwrap()],
        ] {
            let o = w.run(args);
            assert_eq!(code(&o), 2, "{args:?}");
            let e = stderr(&o);
            assert!(
                e.contains("belfry.toml") && e.contains(want),
                "{args:?}: {e}"
            );
        }
        assert!(
            !marker.exists(),
            "a bad template stops the job from running"
        );
    }
}

#[test]
fn templates_render_before_the_channel_formats_the_message() {
    let rx = Receiver::start(vec![]);
    let w = World::with_config(&format!(
        "[channels.hook]\nurl = \"json://{}/t\"\n\
         title = \"[{{{{ host }}}}] {{{{ job }}}} is {{{{ state }}}}\"\n\
         body = \"{{{{ outcome }}}}{{% if duration %}} after {{{{ duration }}}}{{% endif %}} ({{{{ reason }}}}){{% if exit_code is not none %}}; code {{{{ exit_code }}}}{{% endif %}}\"\n",
        rx.addr()
    ));
    // The alert path: `belfry run`, through the outbox and the delivery engine.
    let o = w.run(&["run", "--name", "nightly", "--", "sh", "-c", "exit 4"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    // By hand: `belfry send` through the same channel.
    let o = send(&w, &["-t", "Hello", "-b", "world", "--channel", "hook"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(2, Duration::from_secs(5));
    let host = got[0].json()["host"].as_str().unwrap().to_owned();
    let alert = got[0].json();
    assert_eq!(alert["title"], format!("[{host}] nightly is failed"));
    let body = alert["message"].as_str().unwrap();
    assert!(body.starts_with("exit code 4 after "), "{body}");
    assert!(body.ends_with(" (first_run); code 4"), "{body}");
    // The other fields are the channel's own, untouched.
    assert_eq!(alert["exit_code"], 4);
    assert_eq!(alert["type"], "failure");
    let sent = got[1].json();
    assert_eq!(sent["title"], format!("[{host}] send is ok"));
    assert_eq!(sent["message"], "ok (sent)");
}

#[test]
fn retry_for_retries_a_passing_failure_in_place() {
    let rx = Receiver::start(vec![
        Reply::status(503),
        Reply::status(503).header("Retry-After", "1"),
    ]);
    let w = World::new();
    let url = format!("json://{}/", rx.addr());
    // One attempt by default: the 503 is reported.
    let o = send(&w, &["-b", "hi", &url]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("503"), "{}", stderr(&o));
    // With --retry-for, the next 503 (Retry-After: 1) is waited out and the third try lands.
    let o = send(&w, &["-b", "hi", "--retry-for", "30s", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.wait_for(3, Duration::from_secs(5));
    assert_eq!(
        got.iter().map(|r| r.status_sent).collect::<Vec<_>>(),
        [503, 503, 200]
    );
}

#[test]
fn channels_schemes_lists_every_scheme_with_its_service_and_origin() {
    let w = World::new();
    let o = w.run(&["channels", "--schemes"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let line = |scheme: &str| {
        text.lines()
            .find(|l| l.starts_with(scheme))
            .unwrap_or_else(|| panic!("{scheme} missing:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("tgram://"), "tgram:// Telegram Apprise");
    assert_eq!(
        line("cmd://"),
        "cmd:// a program run with the notification as arguments belfry"
    );
    assert_eq!(line("opsgenie://"), "opsgenie:// Opsgenie Apprise");
    // Services Apprise does not speak are read in a syntax of belfry's own.
    assert_eq!(line("telnyx://"), "telnyx:// Telnyx (SMS) belfry");
    assert_eq!(
        line("betterstack://"),
        "betterstack:// Better Stack (Uptime incidents) belfry"
    );

    let o = w.run(&["channels", "--schemes", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let all = v.as_array().unwrap();
    assert!(all.len() >= 50, "{} schemes", all.len());
    let wecom = all.iter().find(|s| s["scheme"] == "wecombot").unwrap();
    assert_eq!(
        (wecom["service"].as_str(), wecom["apprise"].as_bool()),
        (Some("WeCom group robot"), Some(true))
    );
    // Every listed scheme is one belfry reads: a dry run with it is never "unsupported".
    for s in all {
        let url = format!("{}://x", s["scheme"].as_str().unwrap());
        let o = w.run(&["send", "--dry-run", "-b", "hi", &url]);
        assert!(
            !stderr(&o).contains("unsupported scheme"),
            "{url}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn an_apprise_configuration_is_read_and_its_tags_choose_the_channels() {
    let rx = Receiver::start(vec![]);
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apprise.yml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nurls:\n  - json://{a}/untagged\n  - json://{a}/ops:\n      - tag: devops\n",
            a = rx.addr()
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let o = w.run(&["--config", config, "channels"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("tags devops"), "{}", stdout(&o));
    // Without a tag: the untagged channel only, as `apprise` without --tag.
    let o = w.run(&["--config", config, "send", "-b", "plain"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // With the tag: the tagged one; `all`: both.
    assert_eq!(
        code(&w.run(&[
            "--config", config, "send", "-b", "tagged", "--tag", "devops"
        ])),
        0
    );
    assert_eq!(
        code(&w.run(&[
            "--config",
            config,
            "send",
            "-b",
            "every",
            "--channel",
            "all"
        ])),
        0
    );
    let mut got: Vec<(String, String)> = rx
        .requests()
        .iter()
        .map(|r| {
            (
                r.target.clone(),
                r.json()["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("/ops".to_owned(), "every".to_owned()),
            ("/ops".to_owned(), "tagged".to_owned()),
            ("/untagged".to_owned(), "every".to_owned()),
            ("/untagged".to_owned(), "plain".to_owned()),
        ]
    );
}
