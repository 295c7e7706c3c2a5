//! The management API over real HTTP, on both stores: what healthchecks.io's clients call
//! (checks listed, created, upserted, updated, paused, resumed, deleted; pings, a ping's body,
//! flips, channels), its keys and refusals, and belfry's own calls (runs, the outbox,
//! silences, acknowledgements, test messages).

use std::time::Duration;

use belfry_testkit::{Lcg, PgSchema, Receiver, Reply, eventually};
use serde_json::{Value, json};

use crate::support::{Resp, TestServer, request};

const RW: &str = "rw0123456789abcdef0123456789abcd";
const RO: &str = "ro0123456789abcdef0123456789abcd";

fn config(store: &str, hook: &Receiver) -> String {
    format!(
        "{store}[server]\nping_key = \"pk\"\napi_key = \"{RW}\"\napi_key_readonly = \"{RO}\"\n\
         [delivery]\ndigest_window = \"0s\"\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n\
         [jobs.nightly]\nperiod = \"1d\"\n",
        hook.addr()
    )
}

struct Api<'a> {
    server: &'a TestServer,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![];
        if let Some(k) = key {
            headers.push(("X-Api-Key", k));
        }
        request(self.server.addr, method, path, &headers, body.as_bytes())
    }

    /// A call with the read-write key that must answer `status`; its JSON.
    fn rw(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.call(method, path, Some(RW), body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }
}

fn error(r: &Resp) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["error"].as_str().unwrap_or_default().to_owned()
}

fn the_api_answers_as_healthchecks_io_does(store: &str) {
    let hook = Receiver::start(vec![Reply::status(400)]);
    let server = TestServer::start(&config(store, &hook));
    let api = Api { server: &server };

    // Keys.
    let r = api.call("GET", "/api/v3/checks/", None, None);
    assert_eq!((r.status, error(&r).as_str()), (401, "missing api key"));
    let r = api.call("GET", "/api/v3/checks/", Some("nope"), None);
    assert_eq!((r.status, error(&r).as_str()), (401, "wrong api key"));
    let r = api.call(
        "POST",
        "/api/v3/checks/",
        Some(RO),
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401, "the read-only key does not write");
    // The key may also come in a POST's body.
    let r = api.call(
        "POST",
        "/api/v3/checks/",
        None,
        Some(json!({"api_key": RW, "slug": "from-body"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // Create, then the same again with `unique`: one check.
    let spec = json!({"name": "Backup DB", "tags": "prod db", "timeout": 3600, "grace": 60,
                      "unique": ["name"]});
    let made = api.rw("POST", "/api/v3/checks/", Some(spec.clone()), 201);
    assert_eq!(made["slug"], "backup-db");
    assert_eq!(made["name"], "Backup DB");
    assert_eq!(
        (made["timeout"].as_u64(), made["grace"].as_u64()),
        (Some(3600), Some(60))
    );
    assert_eq!(made["status"], "new");
    let uuid = made["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        made["ping_url"],
        format!("http://{}/ping/{uuid}", server.addr)
    );
    let again = api.rw("POST", "/api/v3/checks/", Some(spec), 200);
    assert_eq!(again["uuid"], made["uuid"]);
    let by_slug = json!({"slug": "backup-db", "unique": ["slug"], "desc": "by its slug"});
    let again = api.rw("POST", "/api/v3/checks/", Some(by_slug), 200);
    assert_eq!(
        (&again["uuid"], &again["desc"]),
        (&made["uuid"], &json!("by its slug"))
    );
    let r = api.call(
        "POST",
        "/api/v3/checks/",
        Some(RW),
        Some(json!({"slug": "backup-db"})),
    );
    assert_eq!(r.status, 409, "a second check of one slug: {}", r.text());
    let r = api.call(
        "POST",
        "/api/v3/checks/",
        Some(RW),
        Some(json!({"timeout": 0})),
    );
    assert_eq!(
        (r.status, error(&r).as_str()),
        (400, "json validation error: timeout is too small")
    );
    let r = request(
        server.addr,
        "POST",
        "/api/v3/checks/",
        &[("X-Api-Key", RW)],
        b"{not json",
    );
    assert_eq!(
        (r.status, error(&r).as_str()),
        (400, "could not parse request body")
    );

    // Pings through the ping API show in the check, its pings, their bodies and its flips.
    let check = format!("/api/v3/checks/{uuid}");
    assert_eq!(
        server
            .request("POST", &format!("/ping/{uuid}"), b"all good")
            .status,
        200
    );
    // Its alert is refused before the next ping makes another: queued together, the two
    // could be folded into one, and the outbox checks below would see the other reason.
    assert!(eventually(Duration::from_secs(20), || {
        api.rw("GET", "/api/v3/outbox/?status=dead", None, 200)["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    }));
    assert_eq!(
        server.request("GET", "/ping/pk/backup-db/fail", b"").status,
        200
    );
    let c = api.rw("GET", &check, None, 200);
    assert_eq!(
        (c["status"].as_str(), c["n_pings"].as_u64()),
        (Some("down"), Some(2))
    );
    let pings = api.rw("GET", &format!("{check}/pings/"), None, 200);
    let pings = pings["pings"].as_array().unwrap();
    let seen: Vec<(&str, u64)> = pings
        .iter()
        .map(|p| (p["type"].as_str().unwrap(), p["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, [("fail", 2), ("success", 1)]);
    assert_eq!(pings[1]["remote_addr"], "127.0.0.1");
    assert_eq!(pings[0]["body_url"], Value::Null, "the fail had no body");
    let body_url = pings[1]["body_url"].as_str().unwrap();
    let path = body_url.split_once(&server.addr.to_string()).unwrap().1;
    let r = api.call("GET", path, Some(RW), None);
    assert_eq!((r.status, r.text().as_str()), (200, "all good"));
    assert_eq!(
        api.call("GET", &format!("{check}/pings/9/body"), Some(RW), None)
            .status,
        404
    );
    let flips = api.rw("GET", &format!("{check}/flips/"), None, 200);
    let ups: Vec<u64> = flips
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["up"].as_u64().unwrap())
        .collect();
    assert_eq!(ups, [0, 1], "newest first: down, after up");
    assert_eq!(
        api.rw("GET", &format!("{check}/flips/?seconds=3600"), None, 200)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = api.call("GET", &format!("{check}/flips/?start=soon"), Some(RW), None);
    assert_eq!(r.status, 400);
    let runs = api.rw("GET", &format!("{check}/runs/"), None, 200);
    let states: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "ok"]);

    // The read-only key reads by unique key, and sees no uuid or URLs.
    let ro = api.call("GET", "/api/v3/checks/", Some(RO), None);
    assert_eq!(ro.status, 200);
    let ro: Value = serde_json::from_slice(&ro.body).unwrap();
    let mine = ro["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slug"] == "backup-db")
        .unwrap();
    assert!(mine.get("uuid").is_none() && mine.get("ping_url").is_none());
    let key = mine["unique_key"].as_str().unwrap();
    let r = api.call("GET", &format!("/api/v3/checks/{key}"), Some(RO), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.call("GET", &format!("{check}/pings/"), Some(RO), None);
    assert_eq!(r.status, 401, "pings need the read-write key");

    // Update: a schedule in a time zone, a description; the slug stays.
    let c = api.rw(
        "POST",
        &check,
        Some(json!({"schedule": "0 3 * * *", "tz": "Europe/Riga", "desc": "nightly dump"})),
        200,
    );
    assert_eq!(
        (c["schedule"].as_str(), c["tz"].as_str()),
        (Some("0 3 * * *"), Some("Europe/Riga"))
    );
    assert!(c.get("timeout").is_none());
    assert_eq!(
        (c["desc"].as_str(), c["grace"].as_u64()),
        (Some("nightly dump"), Some(60))
    );
    let r = api.call("POST", &check, Some(RW), Some(json!({"slug": "renamed"})));
    assert_eq!(r.status, 400, "{}", r.text());

    // Filters.
    let listed = |q: &str| -> Vec<String> {
        api.rw("GET", &format!("/api/v3/checks/{q}"), None, 200)["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed("?tag=prod"), ["backup-db"]);
    assert_eq!(listed("?tag=prod&tag=db"), ["backup-db"]);
    assert!(listed("?tag=staging").is_empty());
    assert_eq!(listed("?slug=nightly"), ["nightly"]);

    // Pause and resume.
    let c = api.rw("POST", &format!("{check}/pause"), None, 200);
    assert_eq!(c["status"], "paused");
    assert_eq!(api.rw("GET", &check, None, 200)["status"], "paused");
    let c = api.rw("POST", &format!("{check}/resume"), None, 200);
    assert_ne!(c["status"], "paused");
    let r = api.call("POST", &format!("{check}/resume"), Some(RW), None);
    assert_eq!((r.status, error(&r).as_str()), (409, "check is not paused"));

    // Channels, and the check's channels by their ids.
    let chans = api.rw("GET", "/api/v3/channels/", None, 200);
    let hook_ch = &chans["channels"][0];
    assert_eq!(
        (hook_ch["name"].as_str(), hook_ch["kind"].as_str()),
        (Some("hook"), Some("json"))
    );
    assert_eq!(api.rw("GET", &check, None, 200)["channels"], hook_ch["id"]);

    // A job belfry.toml declares keeps the schedule belfry.toml gives it.
    let nightly = listed("?slug=nightly");
    assert_eq!(nightly.len(), 1);
    let all = api.rw("GET", "/api/v3/checks/?slug=nightly", None, 200);
    let n_uuid = all["checks"][0]["uuid"].as_str().unwrap().to_owned();
    let r = api.call(
        "POST",
        &format!("/api/v3/checks/{n_uuid}"),
        Some(RW),
        Some(json!({"timeout": 60})),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(error(&r).contains("belfry.toml"));
    let r = api.call(
        "DELETE",
        &format!("/api/v3/checks/{n_uuid}"),
        Some(RW),
        None,
    );
    assert_eq!(r.status, 409);
    api.rw(
        "POST",
        &format!("/api/v3/checks/{n_uuid}"),
        Some(json!({"tags": "ok-to-tag"})),
        200,
    );

    // The outbox: the first alert (the first run's) was refused (400, dead); retrying it
    // delivers it.
    let dead = api.rw("GET", "/api/v3/outbox/?status=dead", None, 200);
    let id = dead["rows"][0]["id"].as_i64().unwrap();
    assert_eq!(dead["rows"][0]["job"], "backup-db");
    assert_eq!(dead["rows"][0]["reason"], "first_run");
    let row = api.rw("POST", &format!("/api/v3/outbox/{id}/retry"), None, 200);
    // Due again; a dispatcher may have taken it (or sent it) before the answer read it back.
    assert!(
        matches!(
            row["status"].as_str(),
            Some("pending" | "sending" | "delivered")
        ),
        "{row}"
    );
    let got = hook.wait_for(3, Duration::from_secs(20));
    assert_eq!(
        got.len(),
        3,
        "the refused alert, the fail's, the retried one"
    );
    assert!(eventually(Duration::from_secs(20), || {
        api.rw("GET", "/api/v3/outbox/?status=delivered", None, 200)["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["id"] == id))
    }));
    let r = api.call(
        "POST",
        &format!("/api/v3/outbox/{id}/retry"),
        Some(RW),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        api.call("POST", "/api/v3/outbox/999999/retry", Some(RW), None)
            .status,
        404
    );
    let r = api.call("GET", "/api/v3/outbox/?status=lost", Some(RW), None);
    assert_eq!(r.status, 400);

    // Delete.
    let gone = api.rw("DELETE", &check, None, 200);
    assert_eq!(gone["slug"], "backup-db");
    assert_eq!(api.call("GET", &check, Some(RW), None).status, 404);
    assert_eq!(
        server.request("GET", &format!("/ping/{uuid}"), b"").status,
        404
    );

    // CORS preflight, and what is not the API's.
    let r = api.call("OPTIONS", "/api/v3/checks/", None, None);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-headers"), Some("X-Api-Key"));
    assert_eq!(
        api.call("GET", "/api/v9/checks/", Some(RW), None).status,
        404
    );
    assert_eq!(
        api.call("PUT", "/api/v3/checks/", Some(RW), None).status,
        405
    );
    // v1 and v2 paths answer alike.
    assert_eq!(
        api.rw("GET", "/api/v1/checks/", None, 200)["checks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_api_answers_as_healthchecks_io_does_on_sqlite() {
    the_api_answers_as_healthchecks_io_does("");
}

#[test]
fn the_api_answers_as_healthchecks_io_does_on_postgres() {
    let schema = PgSchema::new("serve_api");
    the_api_answers_as_healthchecks_io_does(&format!("[store]\nurl = \"{}\"\n", schema.url()));
}

fn silences_acknowledgements_and_test_messages_through_the_api(store: &str) {
    let hook = Receiver::start(vec![]);
    let server = TestServer::start(&config(store, &hook));
    let api = Api { server: &server };
    let nightly = api.rw("GET", "/api/v3/checks/?slug=nightly", None, 200)["checks"][0]["ping_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // A job's silence, then the list.
    let s = api.rw(
        "POST",
        &format!("/api/v3/checks/{nightly}/silence"),
        Some(json!({ "for": 3600, "reason": "moving racks" })),
        201,
    );
    assert_eq!(
        (s["job"].as_str(), s["by"].as_str()),
        (Some("nightly"), Some("api"))
    );
    let tag = api.rw(
        "POST",
        "/api/v3/silences/",
        Some(json!({ "tag": "db", "for": "2h" })),
        201,
    );
    let list = api.rw("GET", "/api/v3/silences/", None, 200);
    assert_eq!(list["silences"].as_array().map(Vec::len), Some(2));
    let r = api.call("GET", "/api/v3/silences/", Some(RO), None);
    assert_eq!(r.status, 200, "the read-only key may list them");
    let r = api.call(
        "POST",
        "/api/v3/silences/",
        Some(RO),
        Some(json!({ "tag": "x", "for": "1h" })),
    );
    assert_eq!(r.status, 401, "but not make one");
    // Refusals say what is wrong.
    for (body, says) in [
        (json!({ "tag": "db" }), "say how long"),
        (json!({ "tag": "db", "for": "soon" }), "for:"),
        (json!({ "tag": "db", "for": true }), "for is not a string"),
        (json!({ "job": "nope", "for": "1h" }), "no job is named"),
        (json!({ "for": "1h" }), "a job or a tag"),
    ] {
        let r = api.call("POST", "/api/v3/silences/", Some(RW), Some(body.clone()));
        assert!(r.status == 400 || r.status == 404, "{body}: {}", r.text());
        assert!(error(&r).contains(says), "{body}: {}", r.text());
    }
    // The silence holds the failure's alert back: recorded, not sent.
    assert_eq!(
        server.request("GET", "/ping/pk/nightly/fail", b"").status,
        200
    );
    assert!(eventually(Duration::from_secs(10), || {
        !server
            .store()
            .notifications("nightly", 5)
            .unwrap()
            .is_empty()
    }));
    let n = &server.store().notifications("nightly", 5).unwrap()[0];
    assert!(n.hushed.is_some() && n.deliveries.is_empty(), "{n:?}");
    let id = tag["id"].as_i64().unwrap();
    api.rw("DELETE", &format!("/api/v3/silences/{id}"), None, 200);
    let r = api.call("DELETE", &format!("/api/v3/silences/{id}"), Some(RW), None);
    assert_eq!(r.status, 404);
    // Acknowledging the problem.
    let c = api.rw("POST", &format!("/api/v3/checks/{nightly}/ack"), None, 200);
    assert_eq!(c["slug"], "nightly");
    assert!(
        server
            .store()
            .check(belfry_store::JobRef::Name("nightly"))
            .unwrap()
            .unwrap()
            .acked
            .is_some()
    );
    // A test message to a channel, by the channel's id.
    let channels = api.rw("GET", "/api/v3/channels/", None, 200);
    let ch = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let t = api.rw("POST", &format!("/api/v3/channels/{ch}/test"), None, 202);
    assert!(t["outbox_id"].as_i64().is_some());
    assert!(eventually(Duration::from_secs(10), || {
        hook.requests()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("test message"))
    }));
}

#[test]
fn silences_acknowledgements_and_test_messages_through_the_api_on_sqlite() {
    silences_acknowledgements_and_test_messages_through_the_api("");
}

#[test]
fn silences_acknowledgements_and_test_messages_through_the_api_on_postgres() {
    let schema = PgSchema::new("serve_silence");
    silences_acknowledgements_and_test_messages_through_the_api(&format!(
        "[store]\nurl = \"{}\"\n",
        schema.url()
    ));
}

#[test]
fn without_an_api_key_the_api_is_off() {
    let server = TestServer::start("");
    let r = request(
        server.addr,
        "GET",
        "/api/v3/checks/",
        &[("X-Api-Key", RW)],
        b"",
    );
    assert_eq!(r.status, 403);
    assert!(error(&r).contains("api_key"), "{}", r.text());
}

#[test]
fn each_key_is_limited_to_its_requests_a_minute() {
    let hook = Receiver::start(vec![]);
    let toml = config("", &hook).replace("[delivery]", "api_rate_limit = 3\n[delivery]");
    let server = TestServer::start(&toml);
    let api = Api { server: &server };
    for _ in 0..3 {
        api.rw("GET", "/api/v3/checks/", None, 200);
    }
    let r = api.call("GET", "/api/v3/checks/", Some(RW), None);
    assert_eq!(r.status, 429);
    assert!(
        error(&r).contains("at most 3 requests a minute"),
        "{}",
        r.text()
    );
    let r = api.call("GET", "/api/v3/checks/", Some(RO), None);
    assert_eq!(r.status, 200, "the read-only key counts apart");
}

/// A random JSON value: the fields a check has, and others, of every type.
fn random_value(rng: &mut Lcg, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.below(100_000_000) as i64 - 1000),
        3 => json!((rng.below(1000) as f64) / 7.0),
        4 => json!(
            [
                "",
                "0 3 * * *",
                "Europe/Riga",
                "*",
                "x y",
                "é\u{0}",
                "name",
                "-"
            ][rng.below(8) as usize]
        ),
        5 => json!("a".repeat(rng.below(300) as usize)),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut Lcg, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "name",
        "slug",
        "tags",
        "desc",
        "timeout",
        "grace",
        "schedule",
        "tz",
        "unique",
        "channels",
        "manual_resume",
        "methods",
        "max_runtime",
        "subject",
        "filter_body",
        "api_key",
        "other",
    ];
    let mut m = serde_json::Map::new();
    for _ in 0..rng.below(5) {
        let k = KEYS[rng.below(KEYS.len() as u64) as usize];
        m.insert(k.to_owned(), random_value(rng, depth));
    }
    Value::Object(m)
}

#[test]
fn management_bodies_of_every_kind_get_an_answer_and_a_refusal_changes_nothing() {
    let hook = Receiver::start(vec![]);
    let toml = config("", &hook).replace("[delivery]", "api_rate_limit = 1000000\n[delivery]");
    let server = TestServer::start(&toml);
    let api = Api { server: &server };
    let made = api.rw(
        "POST",
        "/api/v3/checks/",
        Some(json!({"slug": "target", "tags": "t", "timeout": 600})),
        201,
    );
    let check = format!("/api/v3/checks/{}", made["uuid"].as_str().unwrap());
    let mut rng = Lcg(0x5eed_0001);
    let mut refused = 0;
    for i in 0..400 {
        let raw: Vec<u8> = match rng.below(6) {
            // Not JSON, cut-off JSON, bytes that are not UTF-8, a value that is not an object.
            0 => b"{\"name\": \"x\"".to_vec(),
            1 => vec![0xff, 0xfe, b'{', b'}'],
            2 => random_value(&mut rng, 4).to_string().into_bytes(),
            3 => format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            _ => random_object(&mut rng, 0).to_string().into_bytes(),
        };
        let target = if i % 2 == 0 {
            check.as_str()
        } else {
            "/api/v3/checks/"
        };
        let before = api.rw("GET", &check, None, 200);
        let r = request(server.addr, "POST", target, &[("X-Api-Key", RW)], &raw);
        assert!(
            matches!(r.status, 200 | 201 | 400 | 409),
            "{} for {:?}: {}",
            r.status,
            String::from_utf8_lossy(&raw),
            r.text()
        );
        if r.status >= 400 {
            refused += 1;
            assert!(!error(&r).is_empty(), "a refusal says why: {}", r.text());
            assert_eq!(
                api.rw("GET", &check, None, 200),
                before,
                "a refusal changed the check"
            );
        }
    }
    assert!(
        refused > 100,
        "the bodies were mostly wrong: {refused} refused"
    );
    assert_eq!(server.request("GET", "/healthz", b"").status, 200);
}
