//! Channels against a real HTTP receiver on loopback.
//!
//! Services whose address is in their URL (self-hosted ntfy, Gotify, Mattermost, the webhooks)
//! are sent to the receiver directly; services with a fixed address (Telegram, Slack, …) have
//! their planned requests checked, and are sent to the receiver through
//! [`Context::with_origin`] where their answers matter.

mod answers;
mod corpus;
mod fuzz;
mod secrets;
mod services;

use std::time::Duration;

use belfry_channels::{Channel, Context, HttpRequest, Message, Outcome, parse};
use belfry_core::{Decision, Details, Event, Notification, Reason, State, Timestamp};
use belfry_testkit::{Receiver, Reply};

fn notification(state: State, reason: Reason) -> Notification {
    let ev = Event {
        job: "nightly-backup".into(),
        state,
        at: Timestamp::from_millis(1_800_000_000_000),
        details: Details {
            run_id: Some("run-7".into()),
            exit_code: Some(if state == State::Ok { 0 } else { 2 }),
            duration: Some(Duration::from_millis(1500)),
            host: Some("db1".into()),
            output_tail: Some("starting\n<b>disk</b> full & sad\n".into()),
            ..Details::default()
        },
    };
    Notification::new(
        "n-1".into(),
        &ev,
        None,
        &Decision {
            notify: true,
            reason,
        },
    )
}

fn send(ch: &dyn Channel, n: &Notification) -> Outcome {
    send_with(ch, n, Context::new(Duration::from_secs(5)))
}

/// Sends through `cx` (which may send a service's fixed address to a receiver).
fn send_with(ch: &dyn Channel, n: &Notification, cx: Context) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let msg = Message {
        notification: n,
        idempotency_key: "n-1:ops",
    };
    rt.block_on(ch.send(&msg, &cx))
}

/// A context that sends the requests for `origin` to `rx`.
fn via(origin: &str, rx: &Receiver) -> Context {
    Context::new(Duration::from_secs(5)).with_origin(origin, &rx.url(""))
}

/// A failed first run of `nightly-backup`, and its recovery.
fn problem() -> Notification {
    notification(State::Failed, Reason::FirstRun)
}

fn recovery() -> Notification {
    notification(State::Ok, Reason::Recovered { after: 2 })
}

/// The requests `url`'s channel plans for `n`.
fn planned(url: &str, n: &Notification) -> Vec<HttpRequest> {
    let ch = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    ch.plan(&Message {
        notification: n,
        idempotency_key: "n-1:ops",
    })
    .expect("an HTTP channel plans its requests")
}

/// A planned request's header (case-insensitive name).
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A planned request's JSON body.
fn json(req: &HttpRequest) -> serde_json::Value {
    serde_json::from_slice(&req.body).expect("a JSON body")
}

/// A form body as (key, value) pairs.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn json_webhook_posts_the_documented_notification() {
    let rx = Receiver::start(vec![]);
    let url = format!(
        "json://bob:s3cret@{}/hooks/belfry?+X-Team=ops&-source=belfry&:title=&:message=text&:extra=1",
        rx.addr()
    );
    let ch = parse(&url).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/hooks/belfry?source=belfry");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("n-1:ops"));
    assert_eq!(r.header("x-team"), Some("ops"));
    // bob:s3cret
    assert_eq!(r.header("authorization"), Some("Basic Ym9iOnMzY3JldA=="));
    assert!(r.header("user-agent").unwrap().starts_with("belfry/"));
    let v = r.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["job"], "nightly-backup");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["reason"], "first_run");
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["host"], "db1");
    assert_eq!(v["run_id"], "run-7");
    assert_eq!(v["duration_seconds"], 1.5);
    assert!(v["output_tail"].as_str().unwrap().contains("disk"));
    // Apprise's payload edits: :title= removed it, :message=text renamed it, :extra=1 added.
    assert!(v.get("title").is_none());
    assert!(v.get("message").is_none());
    assert!(v["text"].as_str().unwrap().starts_with("exit code 2"));
    assert_eq!(v["extra"], "1");
}

#[test]
fn a_plain_http_address_is_posted_to_as_it_is() {
    let rx = Receiver::start(vec![]);
    let ch = parse(&rx.url("/in?token=abc")).unwrap();
    assert_eq!(ch.scheme(), "http");
    assert_eq!(
        send(ch.as_ref(), &notification(State::Ok, Reason::FirstRun)),
        Outcome::Delivered
    );
    let r = &rx.requests()[0];
    assert_eq!(r.target, "/in?token=abc");
    assert_eq!(r.json()["kind"], "ok");
}

#[test]
fn answers_are_classified_and_retry_after_is_read() {
    let rx = Receiver::start(vec![
        Reply::status(503),
        Reply::status(429).header("Retry-After", "3"),
        Reply::status(400).body("invalid_payload"),
    ]);
    let ch = parse(&format!("json://{}/x", rx.addr())).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    assert!(matches!(
        send(ch.as_ref(), &n),
        Outcome::Retry { after: None, .. }
    ));
    assert_eq!(
        send(ch.as_ref(), &n),
        Outcome::Retry {
            after: Some(Duration::from_secs(3)),
            reason: "HTTP 429".into()
        }
    );
    assert_eq!(
        send(ch.as_ref(), &n),
        Outcome::Permanent {
            reason: "HTTP 400: invalid_payload".into()
        }
    );
}

#[test]
fn a_refused_connection_is_retryable_and_its_reason_holds_no_secret() {
    let port = belfry_testkit::closed_port();
    let ch = parse(&format!("json://u:TOPSECRET@127.0.0.1:{port}/SECRETPATH")).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Retry { reason, .. } = &o else {
        panic!("expected a retry, got {o:?}")
    };
    assert!(reason.contains("could not connect"), "{reason}");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert!(!reason.contains("SECRET"), "{reason}");
    assert!(!format!("{ch:?}").contains("SECRET"));
}

#[test]
fn slack_gets_a_coloured_attachment_with_escaped_text() {
    let ch = parse("slack://belfry@T1ABC/B2DEF/xyz789/#ops").unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    let msg = Message {
        notification: &n,
        idempotency_key: "k",
    };
    let plan = ch.plan(&msg).unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(
        plan[0].url,
        "https://hooks.slack.com/services/T1ABC/B2DEF/xyz789"
    );
    // Send the planned request to a loopback receiver standing in for Slack's server.
    let rx = Receiver::start(vec![]);
    let mut req = plan[0].clone();
    req.url = req.url.replace("https://hooks.slack.com", &rx.url(""));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cx = Context::new(Duration::from_secs(5));
    let o = rt.block_on(cx.send(&req, &ch.describe(), belfry_channels::default_classify));
    assert_eq!(o, Outcome::Delivered);
    let got = &rx.requests()[0];
    assert_eq!(got.target, "/services/T1ABC/B2DEF/xyz789");
    let v = got.json();
    assert_eq!(v["channel"], "#ops");
    assert_eq!(v["username"], "belfry");
    let a = &v["attachments"][0];
    assert_eq!(a["color"], "#D50200");
    assert!(
        a["title"]
            .as_str()
            .unwrap()
            .contains("nightly-backup: Failed")
    );
    let text = a["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;b&gt;disk&lt;/b&gt; full &amp; sad"),
        "{text}"
    );

    let rec = notification(State::Ok, Reason::Recovered { after: 2 });
    let v = match ch.as_ref().plan(&Message {
        notification: &rec,
        idempotency_key: "k",
    }) {
        Some(p) => serde_json::from_slice::<serde_json::Value>(&p[0].body).unwrap(),
        None => panic!("slack plans requests"),
    };
    assert_eq!(v["attachments"][0]["color"], "#2EB886");
    assert!(v["text"].as_str().unwrap().contains("Recovered"));
}

#[test]
fn the_console_line_reads_well() {
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(
        belfry_channels::Console::render(&n),
        "belfry: nightly-backup: Failed — exit code 2 after 1.5s on db1; first run of this job [run run-7]\n"
    );
}

// belfry's own channels: e-mail, SendGrid, Twilio, Opsgenie, commands, files.
mod own;
