//! The dashboard over real HTTP: who gets in (a password login, a bearer key), forms that
//! must come from the dashboard's own pages, what the pages show, and what each action does
//! to the store. The browser tests (`tests/browser/`) drive the same pages in Chromium.

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_server::hash_password;
use belfry_store::{Attempt, RunEnd};

use crate::support::*;

const RW: (&str, &str) = ("Authorization", "Bearer rw-key-0123456789");
const RO: (&str, &str) = ("Authorization", "Bearer ro-key-0123456789");

fn config() -> String {
    let ann = hash_password("correct horse").unwrap();
    let bob = hash_password("battery staple").unwrap();
    format!(
        "[server]\nping_key = \"pk\"\napi_key = \"rw-key-0123456789\"\n\
         api_key_readonly = \"ro-key-0123456789\"\n\
         [server.users.ann]\npassword_hash = \"{ann}\"\n\
         [server.users.bob]\npassword_hash = \"{bob}\"\nrole = \"read-only\"\n\
         [channels.hook]\nurl = \"json://127.0.0.1:9/\"\n\
         [jobs.backup]\nperiod = \"1h\"\ngrace = \"5m\"\ntags = [\"db\", \"nightly\"]\n"
    )
}

fn form_post(s: &TestServer, path: &str, headers: &[(&str, &str)], form: &str) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request(s.addr, "POST", path, &h, form.as_bytes())
}

fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(s.addr, "GET", path, headers, b"")
}

/// The value a `Set-Cookie` header of `r` gives cookie `name`.
fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The value of the hidden field `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} on the page"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Logs in as `user`; the session cookie.
fn login(s: &TestServer, user: &str, password: &str) -> Result<String, Resp> {
    let page = get(s, "/login", &[]);
    let form_cookie = set_cookie(&page, "belfry_login").expect("the login page sets its cookie");
    let token = hidden(&page.text(), "form");
    let cookie = format!("belfry_login={form_cookie}");
    let r = form_post(
        s,
        "/login",
        &[("Cookie", &cookie)],
        &format!("form={token}&next=%2F&user={user}&password={password}"),
    );
    match set_cookie(&r, "belfry_session") {
        Some(c) if r.status == 303 => Ok(c),
        _ => Err(r),
    }
}

fn failed_run(s: &TestServer, job: &str, at: Timestamp) {
    let mut store = s.store();
    let ev = Event {
        job: job.into(),
        state: State::Failed,
        at,
        details: Details {
            exit_code: Some(3),
            ..Details::default()
        },
    };
    store
        .finish_run(
            &RunEnd {
                event: &ev,
                output: Some("disk full\n"),
                output_bytes: 10,
            },
            &Policy::default(),
            |_, _| vec!["hook".to_owned()],
            &s.config.limits(),
        )
        .unwrap();
}

#[test]
fn nobody_gets_in_without_a_login_or_a_key() {
    let s = TestServer::start(&config());
    let r = get(&s, "/job?name=backup", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fjob%3Fname%3Dbackup")
    );
    for path in ["/", "/silences", "/outbox", "/channels"] {
        assert_eq!(get(&s, path, &[]).status, 303, "{path}");
    }
    assert_eq!(
        get(&s, "/", &[("Authorization", "Bearer nope")]).status,
        401
    );
    assert_eq!(get(&s, "/", &[("X-Belfry-Live", "1")]).status, 401);
    assert_eq!(
        get(&s, "/", &[("Cookie", "belfry_session=forged.1.x.y")]).status,
        303
    );
    let r = form_post(&s, "/actions/ack", &[], "name=backup");
    assert_eq!(r.status, 401);
    // The assets and the health check need no login.
    assert_eq!(get(&s, "/static/belfry.css", &[]).status, 200);
    assert_eq!(get(&s, "/healthz", &[]).status, 200);
}

#[test]
fn a_password_login_gives_a_session_and_a_wrong_one_does_not() {
    let s = TestServer::start(&config());
    let r = login(&s, "ann", "wrong").unwrap_err();
    assert_eq!(r.status, 401);
    assert!(r.text().contains("do not match"));
    assert!(login(&s, "nobody", "correct+horse").is_err());
    let cookie = login(&s, "ann", "correct+horse").unwrap();
    let page = get(&s, "/", &[("Cookie", &format!("belfry_session={cookie}"))]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("backup"), "{}", page.text());
    // A login posted without the login page's cookie (from another site's page) is refused.
    let r = form_post(&s, "/login", &[], "form=x&user=ann&password=correct+horse");
    assert_eq!(r.status, 403);
    // The session cookie cannot be read by scripts and is only sent over HTTPS or loopback.
    let page = get(&s, "/login", &[]);
    let token = hidden(&page.text(), "form");
    let form_cookie = set_cookie(&page, "belfry_login").unwrap();
    let r = form_post(
        &s,
        "/login",
        &[("Cookie", &format!("belfry_login={form_cookie}"))],
        &format!("form={token}&next=%2Foutbox&user=ann&password=correct+horse"),
    );
    assert_eq!(r.header("location"), Some("/outbox"));
    let flags = r
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("belfry_session="))
        .map(|(_, v)| v.clone())
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(flags.contains(flag), "{flags}");
    }
}

#[test]
fn a_form_without_its_pages_token_is_refused() {
    let s = TestServer::start(&config());
    failed_run(&s, "backup", Timestamp::now());
    let cookie = format!(
        "belfry_session={}",
        login(&s, "ann", "correct+horse").unwrap()
    );
    let r = form_post(&s, "/actions/ack", &[("Cookie", &cookie)], "name=backup");
    assert_eq!(r.status, 403);
    let r = form_post(
        &s,
        "/actions/ack",
        &[("Cookie", &cookie)],
        "name=backup&csrf=AAAA",
    );
    assert_eq!(r.status, 403);
    // Another site's page: its Origin is refused even with the right token.
    let page = get(&s, "/job?name=backup", &[("Cookie", &cookie)]);
    let csrf = hidden(&page.text(), "csrf");
    let r = form_post(
        &s,
        "/actions/ack",
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        &format!("name=backup&csrf={csrf}"),
    );
    assert_eq!(r.status, 403);
    assert!(
        s.store()
            .check(belfry_store::JobRef::Name("backup"))
            .unwrap()
            .unwrap()
            .acked
            .is_none()
    );
    // With the page's token, it is done.
    let r = form_post(
        &s,
        "/actions/ack",
        &[("Cookie", &cookie)],
        &format!("name=backup&csrf={csrf}&back=%2Fjob%3Fname%3Dbackup"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let acked = s
        .store()
        .check(belfry_store::JobRef::Name("backup"))
        .unwrap()
        .unwrap()
        .acked;
    assert_eq!(acked.map(|(_, by)| by), Some("ann".to_owned()));
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("/job?name=backup&notice="),
        "{location}"
    );
}

#[test]
fn a_read_only_login_or_key_may_look_but_not_act() {
    let s = TestServer::start(&config());
    failed_run(&s, "backup", Timestamp::now());
    let cookie = format!(
        "belfry_session={}",
        login(&s, "bob", "battery+staple").unwrap()
    );
    let page = get(&s, "/job?name=backup", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert!(
        !page.text().contains("action=\"/actions/silence\""),
        "no forms to act"
    );
    let csrf = hidden(&page.text(), "csrf");
    let r = form_post(
        &s,
        "/actions/silence",
        &[("Cookie", &cookie)],
        &format!("name=backup&for=1h&csrf={csrf}"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        form_post(&s, "/actions/silence", &[RO], "name=backup&for=1h").status,
        403
    );
    assert!(s.store().silences(Timestamp::now()).unwrap().is_empty());
}

#[test]
fn silencing_shows_everywhere_and_holds_alerts_back() {
    let s = TestServer::start(&config());
    let r = form_post(
        &s,
        "/actions/silence",
        &[RW],
        "name=backup&for=2h&reason=disk+swap&back=%2F",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let silences = s.store().silences(Timestamp::now()).unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].by, "api");
    failed_run(&s, "backup", Timestamp::now());
    let history = s.store().notifications("backup", 10).unwrap();
    assert!(history[0].hushed.is_some() && history[0].deliveries.is_empty());
    let jobs = get(&s, "/", &[RW]).text();
    assert!(
        jobs.contains("silenced") && jobs.contains("disk swap"),
        "{jobs}"
    );
    let job = get(&s, "/job?name=backup", &[RW]).text();
    assert!(job.contains("not sent: silenced until"), "{job}");
    assert!(job.contains("disk full"), "the run's output shows: {job}");
    let list = get(&s, "/silences", &[RW]).text();
    assert!(list.contains("disk swap"));
    // Ending it.
    let id = silences[0].id;
    let r = form_post(&s, "/actions/end-silence", &[RW], &format!("id={id}"));
    assert_eq!(r.status, 303);
    assert!(s.store().silences(Timestamp::now()).unwrap().is_empty());
    // Bad input says what is wrong.
    for (form, says) in [
        ("name=backup&for=soon", "for:"),
        ("name=nope&for=1h", "no job is named"),
        ("tag=a+b&for=1h", "not a tag"),
        ("name=backup", "say how long"),
    ] {
        let r = form_post(&s, "/actions/silence", &[RW], form);
        assert!(r.status == 400 || r.status == 404, "{form}: {}", r.status);
        assert!(r.text().contains(says), "{form}: {}", r.text());
    }
    assert_eq!(form_post(&s, "/actions/nothing", &[RW], "").status, 404);
}

#[test]
fn a_dead_row_is_retried_and_a_test_message_is_queued() {
    let s = TestServer::start(&config());
    failed_run(&s, "backup", Timestamp::now());
    let id = {
        let mut store = s.store();
        let id = store.outbox_rows(false, 10).unwrap()[0].id;
        store
            .record_attempt(
                id,
                &Attempt::Permanent {
                    reason: "410 gone".into(),
                },
                Timestamp::now(),
                std::time::Duration::from_millis(5),
            )
            .unwrap();
        id
    };
    let outbox = get(&s, "/outbox", &[RW]).text();
    assert!(outbox.contains("410 gone") && outbox.contains(&format!("value=\"{id}\"")));
    let r = form_post(
        &s,
        "/actions/retry",
        &[RW],
        &format!("id={id}&back=%2Foutbox"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let (status, _, _) = s.store().outbox_row_status(id).unwrap().unwrap();
    assert_ne!(status, "dead");
    let r = form_post(&s, "/actions/test", &[RW], "channel=hook&back=%2Fchannels");
    assert_eq!(r.status, 303, "{}", r.text());
    let rows = s.store().outbox_rows(false, 10).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.job == "belfry-test" && r.channel == "hook")
    );
    assert_eq!(
        form_post(&s, "/actions/test", &[RW], "channel=nope").status,
        404
    );
}

#[test]
fn pausing_and_resuming_from_the_dashboard() {
    let s = TestServer::start(&config());
    let paused = |s: &TestServer| {
        s.store()
            .check(belfry_store::JobRef::Name("backup"))
            .unwrap()
            .unwrap()
            .paused
    };
    assert_eq!(
        form_post(&s, "/actions/pause", &[RW], "name=backup").status,
        303
    );
    assert!(paused(&s));
    assert!(get(&s, "/?state=paused", &[RW]).text().contains("backup"));
    assert_eq!(
        form_post(&s, "/actions/resume", &[RW], "name=backup").status,
        303
    );
    assert!(!paused(&s));
}

#[test]
fn what_a_job_is_called_is_shown_as_text_never_as_markup() {
    let s = TestServer::start(&config());
    let name = "<script>alert(1)</script>";
    failed_run(&s, name, Timestamp::now());
    let page = get(&s, "/", &[RW]).text();
    assert!(!page.contains(name));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || page.contains("&lt;script&gt;"),
        "{page}"
    );
    let r = get(&s, "/job?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E", &[RW]);
    assert_eq!(r.status, 200);
    assert!(!r.text().contains(name));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn the_live_part_of_the_jobs_page_is_sent_alone() {
    let s = TestServer::start(&config());
    failed_run(&s, "nightly", Timestamp::now());
    let whole = get(&s, "/", &[RW]).text();
    assert!(whole.contains("<html") && whole.contains("id=\"live\""));
    let part = get(&s, "/", &[RW, ("X-Belfry-Live", "1")]).text();
    assert!(!part.contains("<html"));
    assert!(
        part.contains("nightly") && part.contains("1 with a problem"),
        "{part}"
    );
    // Problems come first.
    assert!(part.find("nightly").unwrap() < part.find("backup").unwrap());
}

#[test]
fn a_jobs_tags_from_belfry_toml_filter_and_silence_it() {
    let s = TestServer::start(&config());
    let c = s
        .store()
        .check(belfry_store::JobRef::Name("backup"))
        .unwrap()
        .unwrap();
    assert_eq!(c.meta.tags, ["db", "nightly"]);
    failed_run(&s, "other", Timestamp::now());
    let page = get(&s, "/?tag=nightly", &[RW]).text();
    assert!(page.contains("backup") && !page.contains("other"), "{page}");
    let r = form_post(&s, "/actions/silence", &[RW], "tag=nightly&for=1h");
    assert_eq!(r.status, 303, "{}", r.text());
    failed_run(&s, "backup", Timestamp::now());
    let n = &s.store().notifications("backup", 5).unwrap()[0];
    assert!(n.hushed.is_some(), "{n:?}");
}
