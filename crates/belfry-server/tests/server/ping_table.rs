//! The ping API, row by row, as healthchecks.io's documentation describes it (the "Pinging
//! API" page and its "slug URLs" notes): each row sends one request over real HTTP and checks
//! the status, the answer's text, and what the store then shows for the row's own job. Rows
//! may send pings first (`before`) to set the scene. Where belfry answers differently on
//! purpose, the row says so (and `docs/decisions.md` says why).

use belfry_core::State;

use crate::support::{self, TestServer};

const KEY: &str = "pk-test_01";
const LIMIT: usize = 100;

/// What the store shows for the row's job afterwards.
#[derive(Debug)]
enum Then {
    /// No ping was kept for the job.
    NoPing,
    /// The newest ping kept is of this kind (`start`, `success`, `fail`, `log`, `exit`), with
    /// this exit status if any.
    Kind(&'static str, Option<u8>),
    /// The newest ping kept has this body.
    Body(&'static [u8]),
    /// The job's rules state.
    State(State),
    /// A run is going.
    Running,
    /// No run is going.
    NotRunning,
    /// A job of this name exists (created by the ping).
    Exists(&'static str),
    /// No job of this name exists.
    Absent(&'static str),
    /// Nothing to check in the store.
    Skip,
}

struct Row {
    what: &'static str,
    before: &'static [&'static str],
    method: &'static str,
    path: &'static str,
    body: &'static [u8],
    status: u16,
    text: &'static str,
    then: &'static [Then],
}

const fn row(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    status: u16,
    text: &'static str,
    then: &'static [Then],
) -> Row {
    Row {
        what,
        before: &[],
        method,
        path,
        body: b"",
        status,
        text,
        then,
    }
}

const fn body(mut r: Row, b: &'static [u8]) -> Row {
    r.body = b;
    r
}

const fn after(mut r: Row, before: &'static [&'static str]) -> Row {
    r.before = before;
    r
}

use Then::*;

/// `{uuid}` is the row's job's UUID, `{job}` its name, `{key}` the ping key, `{nobody}` a
/// UUID no job has, `{rid1}` and `{rid2}` run ids of the row's own (the store keys runs by
/// id, so rows do not share them).
const ROWS: &[Row] = &[
    // --- by UUID: success, start, fail, log, exit status
    row(
        "a GET is a success",
        "GET",
        "/ping/{uuid}",
        200,
        "OK",
        &[Kind("success", None), State(State::Ok)],
    ),
    row(
        "a POST is a success",
        "POST",
        "/ping/{uuid}",
        200,
        "OK",
        &[Kind("success", None), State(State::Ok)],
    ),
    row(
        "a HEAD is a success, with no body in the answer",
        "HEAD",
        "/ping/{uuid}",
        200,
        "",
        &[Kind("success", None), State(State::Ok)],
    ),
    row(
        "/start starts a run",
        "GET",
        "/ping/{uuid}/start",
        200,
        "OK",
        &[Kind("start", None), Running],
    ),
    row(
        "/fail is a failure",
        "GET",
        "/ping/{uuid}/fail",
        200,
        "OK",
        &[Kind("fail", None), State(State::Failed)],
    ),
    row(
        "/log is kept, and changes no state",
        "GET",
        "/ping/{uuid}/log",
        200,
        "OK",
        &[Kind("log", None), NotRunning],
    ),
    row(
        "/0 is a success",
        "GET",
        "/ping/{uuid}/0",
        200,
        "OK",
        &[Kind("exit", Some(0)), State(State::Ok)],
    ),
    row(
        "/1 is a failure",
        "GET",
        "/ping/{uuid}/1",
        200,
        "OK",
        &[Kind("exit", Some(1)), State(State::Failed)],
    ),
    row(
        "/255 is the highest exit status",
        "GET",
        "/ping/{uuid}/255",
        200,
        "OK",
        &[Kind("exit", Some(255)), State(State::Failed)],
    ),
    row(
        "/256 is not an exit status",
        "GET",
        "/ping/{uuid}/256",
        400,
        "invalid url format",
        &[NoPing],
    ),
    row(
        "a huge exit status is not one either",
        "GET",
        "/ping/{uuid}/99999999999999999999",
        400,
        "invalid url format",
        &[NoPing],
    ),
    row(
        "a negative exit status is no URL",
        "GET",
        "/ping/{uuid}/-1",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "an unknown action is no URL",
        "GET",
        "/ping/{uuid}/finish",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "a POST to /fail is a failure",
        "POST",
        "/ping/{uuid}/fail",
        200,
        "OK",
        &[State(State::Failed)],
    ),
    row(
        "a HEAD to /start starts a run",
        "HEAD",
        "/ping/{uuid}/start",
        200,
        "",
        &[Running],
    ),
    // --- run ids
    after(
        row(
            "a finish with the start's rid ends that run",
            "GET",
            "/ping/{uuid}/0?rid={rid1}",
            200,
            "OK",
            &[State(State::Ok), NotRunning],
        ),
        &["/ping/{uuid}/start?rid={rid1}"],
    ),
    after(
        row(
            "a finish with another rid leaves the first run going",
            "GET",
            "/ping/{uuid}?rid={rid2}",
            200,
            "OK",
            &[State(State::Ok), Running],
        ),
        &["/ping/{uuid}/start?rid={rid1}"],
    ),
    after(
        row(
            "a finish without rid ends the rid-less start",
            "GET",
            "/ping/{uuid}",
            200,
            "OK",
            &[State(State::Ok), NotRunning],
        ),
        &["/ping/{uuid}/start"],
    ),
    after(
        row(
            "overlapping runs each end by rid",
            "GET",
            "/ping/{uuid}/fail?rid={rid2}",
            200,
            "OK",
            &[State(State::Failed), NotRunning],
        ),
        &[
            "/ping/{uuid}/start?rid={rid1}",
            "/ping/{uuid}/start?rid={rid2}",
            "/ping/{uuid}/0?rid={rid1}",
        ],
    ),
    row(
        "a rid that is no UUID is refused",
        "GET",
        "/ping/{uuid}?rid=nope",
        400,
        "invalid uuid format",
        &[NoPing],
    ),
    row(
        "an empty rid is refused",
        "GET",
        "/ping/{uuid}/start?rid=",
        400,
        "invalid uuid format",
        &[NoPing, NotRunning],
    ),
    row(
        "a finish with no start is a run of its own",
        "GET",
        "/ping/{uuid}/0?rid={rid1}",
        200,
        "OK",
        &[State(State::Ok), NotRunning],
    ),
    // --- unknown checks and malformed URLs
    row(
        "an unknown UUID is not found",
        "GET",
        "/ping/{nobody}",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "?create=1 does not create by UUID",
        "GET",
        "/ping/{nobody}?create=1",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "a UUID without hyphens is no URL",
        "GET",
        "/ping/{uuid_simple}",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "a trailing slash is no URL",
        "GET",
        "/ping/{uuid}/",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "a bare /ping/ is not found",
        "GET",
        "/ping/",
        404,
        "not found",
        &[Skip],
    ),
    row(
        "a bare /ping is not found",
        "GET",
        "/ping",
        404,
        "not found",
        &[Skip],
    ),
    row(
        "four segments are no URL",
        "GET",
        "/ping/{key}/{job}/start/more",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "other query parameters are ignored",
        "GET",
        "/ping/{uuid}?foo=bar&x",
        200,
        "OK",
        &[State(State::Ok)],
    ),
    // --- methods
    row(
        "PUT is not a ping",
        "PUT",
        "/ping/{uuid}",
        405,
        "method not allowed",
        &[NoPing],
    ),
    row(
        "DELETE is not a ping",
        "DELETE",
        "/ping/{uuid}",
        405,
        "method not allowed",
        &[NoPing],
    ),
    // belfry differs: healthchecks.io records a CORS preflight as a ping.
    row(
        "an OPTIONS preflight is not a ping",
        "OPTIONS",
        "/ping/{uuid}",
        204,
        "",
        &[NoPing],
    ),
    // --- bodies
    body(
        row(
            "a POST body is kept",
            "POST",
            "/ping/{uuid}",
            200,
            "OK",
            &[Body(b"backup: 41 GB")],
        ),
        b"backup: 41 GB",
    ),
    body(
        row(
            "a /fail body is kept",
            "POST",
            "/ping/{uuid}/fail",
            200,
            "OK",
            &[Body(b"disk full"), State(State::Failed)],
        ),
        b"disk full",
    ),
    body(
        row(
            "a /log body is kept",
            "POST",
            "/ping/{uuid}/log",
            200,
            "OK",
            &[Body(b"halfway")],
        ),
        b"halfway",
    ),
    body(
        row(
            "a body longer than the limit is cut to it",
            "POST",
            "/ping/{uuid}",
            200,
            "OK",
            &[Body(&[b'x'; LIMIT])],
        ),
        &[b'x'; LIMIT + 50],
    ),
    body(
        row(
            "a body of exactly the limit is kept whole",
            "POST",
            "/ping/{uuid}",
            200,
            "OK",
            &[Body(&[b'y'; LIMIT])],
        ),
        &[b'y'; LIMIT],
    ),
    body(
        row(
            "a body that is not UTF-8 is kept",
            "POST",
            "/ping/{uuid}",
            200,
            "OK",
            &[Body(b"\xff\xfe ok")],
        ),
        b"\xff\xfe ok",
    ),
    row(
        "a GET has an empty body",
        "GET",
        "/ping/{uuid}",
        200,
        "OK",
        &[Body(b"")],
    ),
    // --- by ping key and name (slug)
    row(
        "key and name: success",
        "GET",
        "/ping/{key}/{job}",
        200,
        "OK",
        &[Kind("success", None), State(State::Ok)],
    ),
    row(
        "key and name: /start",
        "GET",
        "/ping/{key}/{job}/start",
        200,
        "OK",
        &[Running],
    ),
    row(
        "key and name: /fail",
        "POST",
        "/ping/{key}/{job}/fail",
        200,
        "OK",
        &[State(State::Failed)],
    ),
    row(
        "key and name: /log",
        "GET",
        "/ping/{key}/{job}/log",
        200,
        "OK",
        &[Kind("log", None)],
    ),
    row(
        "key and name: /0",
        "GET",
        "/ping/{key}/{job}/0",
        200,
        "OK",
        &[State(State::Ok)],
    ),
    row(
        "key and name: /7",
        "GET",
        "/ping/{key}/{job}/7",
        200,
        "OK",
        &[Kind("exit", Some(7)), State(State::Failed)],
    ),
    row(
        "key and name: /256",
        "GET",
        "/ping/{key}/{job}/256",
        400,
        "invalid url format",
        &[NoPing],
    ),
    row(
        "key and name: a bad rid",
        "GET",
        "/ping/{key}/{job}?rid=12",
        400,
        "invalid uuid format",
        &[NoPing],
    ),
    row(
        "a wrong key is not found",
        "GET",
        "/ping/wrong-key/{job}",
        404,
        "not found",
        &[NoPing],
    ),
    row(
        "a key alone is not found",
        "GET",
        "/ping/{key}",
        404,
        "not found",
        &[Skip],
    ),
    row(
        "an unknown name is not found",
        "GET",
        "/ping/{key}/no-such-job",
        404,
        "not found",
        &[Absent("no-such-job")],
    ),
    row(
        "?create=1 creates the job",
        "GET",
        "/ping/{key}/made-by-ping?create=1",
        201,
        "Created",
        &[Exists("made-by-ping")],
    ),
    row(
        "?create=1 with /start creates it running",
        "GET",
        "/ping/{key}/made-by-start/start?create=1",
        201,
        "Created",
        &[Exists("made-by-start")],
    ),
    row(
        "?create=1 on a HEAD creates it",
        "HEAD",
        "/ping/{key}/made-by-head?create=1",
        201,
        "",
        &[Exists("made-by-head")],
    ),
    row(
        "?create=1 for a job that exists is a plain OK",
        "GET",
        "/ping/{key}/{job}?create=1",
        200,
        "OK",
        &[State(State::Ok)],
    ),
    row(
        "?create=0 does not create",
        "GET",
        "/ping/{key}/not-made-0?create=0",
        404,
        "not found",
        &[Absent("not-made-0")],
    ),
    row(
        "?create=yes does not create",
        "GET",
        "/ping/{key}/not-made-yes?create=yes",
        404,
        "not found",
        &[Absent("not-made-yes")],
    ),
    row(
        "?create=1 with a wrong key creates nothing",
        "GET",
        "/ping/wrong-key/not-made-key?create=1",
        404,
        "not found",
        &[Absent("not-made-key")],
    ),
    row(
        "a name is percent-decoded",
        "GET",
        "/ping/{key}/made%20by%20space?create=1",
        201,
        "Created",
        &[Exists("made by space")],
    ),
    row(
        "a name with a control character is no job's",
        "GET",
        "/ping/{key}/bad%07name?create=1",
        404,
        "not found",
        &[Absent("bad\u{7}name")],
    ),
    row(
        "a name with a leading space is no job's",
        "GET",
        "/ping/{key}/%20lead?create=1",
        404,
        "not found",
        &[Absent(" lead")],
    ),
    // --- the rest of the server
    row("/healthz answers OK", "GET", "/healthz", 200, "OK", &[Skip]),
    row(
        "an unknown path is not found",
        "GET",
        "/nothing-here",
        404,
        "not found",
        &[Skip],
    ),
];

fn toml() -> String {
    let mut t = format!("[server]\nping_key = \"{KEY}\"\nping_body_limit = {LIMIT}\n");
    for i in 0..ROWS.len() {
        t.push_str(&format!("[jobs.t{i:02}]\nperiod = \"1d\"\n"));
    }
    t
}

#[test]
fn the_ping_api_answers_as_healthchecks_documents() {
    assert!(ROWS.len() >= 50, "{} rows", ROWS.len());
    let server = TestServer::start(&toml());
    let store = server.store();
    let nobody = "6f0a5b5e-35cb-4f6e-9a3b-000000000000";
    let mut failures = Vec::new();
    for (i, r) in ROWS.iter().enumerate() {
        let job = format!("t{i:02}");
        let uuid = support::uuid_of(&store, &job);
        let fill = |p: &str| {
            p.replace("{uuid_simple}", &uuid.simple().to_string())
                .replace("{uuid}", &uuid.to_string())
                .replace("{nobody}", nobody)
                .replace("{key}", KEY)
                .replace("{job}", &job)
                .replace(
                    "{rid1}",
                    &format!("0b6d2a52-2f8e-4f7a-9a55-1111111111{i:02}"),
                )
                .replace(
                    "{rid2}",
                    &format!("0b6d2a52-2f8e-4f7a-9a55-2222222222{i:02}"),
                )
        };
        for b in r.before {
            let resp = server.request("GET", &fill(b), b"");
            assert_eq!(
                resp.status,
                200,
                "row {i} ({}): before {b}: {}",
                r.what,
                resp.text()
            );
        }
        let resp = server.request(r.method, &fill(r.path), r.body);
        let mut wrong = Vec::new();
        if resp.status != r.status {
            wrong.push(format!("status {} (wanted {})", resp.status, r.status));
        }
        if resp.text() != r.text {
            wrong.push(format!("text {:?} (wanted {:?})", resp.text(), r.text));
        }
        if r.path.starts_with("/ping") && resp.header("access-control-allow-origin") != Some("*") {
            wrong.push("no Access-Control-Allow-Origin: *".to_owned());
        }
        if resp.status < 300 && r.path.starts_with("/ping") && r.method != "OPTIONS" {
            if resp.header("ping-body-limit") != Some(&LIMIT.to_string()) {
                wrong.push(format!(
                    "Ping-Body-Limit {:?}",
                    resp.header("ping-body-limit")
                ));
            }
            if !resp
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/plain"))
            {
                wrong.push(format!("Content-Type {:?}", resp.header("content-type")));
            }
        }
        for t in r.then {
            if let Some(w) = check(&store, &job, t) {
                wrong.push(w);
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "row {i} ({}): {} {} -> {}",
                r.what,
                r.method,
                r.path,
                wrong.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

fn check(store: &belfry_store::Store, job: &str, t: &Then) -> Option<String> {
    let pings = support::pings(store, job);
    let row = support::job(store, job);
    let wrong = |what: String| Some(format!("then {t:?}: {what}"));
    match t {
        NoPing if !pings.is_empty() => wrong(format!("{} ping(s) kept", pings.len())),
        Kind(kind, exit) => match pings.first() {
            Some(p) if p.kind == *kind && p.exit == *exit => None,
            other => wrong(format!("newest ping {other:?}")),
        },
        Body(b) => match pings.first() {
            Some(p) if p.body == String::from_utf8_lossy(b) => None,
            other => wrong(format!("newest ping {other:?}")),
        },
        State(s) => match row.as_ref().and_then(|r| r.state) {
            Some(got) if got == *s => None,
            other => wrong(format!("state {other:?}")),
        },
        Running if support::running(store, job).is_empty() => wrong("no run going".to_owned()),
        NotRunning if !support::running(store, job).is_empty() => {
            wrong(format!("runs going: {:?}", support::running(store, job)))
        }
        Exists(name) if support::job(store, name).is_none() => wrong("no such job".to_owned()),
        Absent(name) if support::job(store, name).is_some() => wrong("it exists".to_owned()),
        _ => None,
    }
}

#[test]
fn a_ping_resumes_a_paused_job_as_healthchecks_does() {
    let server = TestServer::start("[server]\nping_key = \"k\"\n[jobs.p]\nperiod = \"1h\"\n");
    let mut store = server.store();
    assert!(
        store
            .set_paused("p", true, belfry_core::Timestamp::now())
            .unwrap()
    );
    let paused = |s: &belfry_store::Store| {
        s.check(belfry_store::JobRef::Name("p"))
            .unwrap()
            .expect("the job")
            .paused
    };
    assert!(paused(&store));
    assert_eq!(server.request("GET", "/ping/k/p/log", b"").status, 200);
    assert!(!paused(&store), "a ping resumes the job");
}
