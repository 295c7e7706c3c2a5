//! Mailgun, Postmark, SparkPost, Resend and Brevo: each request as the service's API documents
//! it, sent to a loopback receiver standing in for the service (`parse_with_api_base`).

use std::io::Read;

use base64::Engine as _;
use belfry_channels::{Outcome, parse, parse_with_api_base};
use belfry_core::{Reason, State};
use belfry_testkit::{Receiver, Reply};
use serde_json::json;

use crate::{notification, send};

/// A failed run whose output does not fit the bodies (so the gzipped output is attached), sent
/// through `url` to a receiver answering `status`: the outcome and the one request.
fn deliver(url: &str, status: u16) -> (Outcome, belfry_testkit::Request) {
    let rx = Receiver::start(vec![Reply::status(status)]);
    let ch = parse_with_api_base(url, &rx.url("")).unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.output_tail = Some((0..3000).map(|i| format!("row {i}\n")).collect());
    let o = send(ch.as_ref(), &n);
    let mut reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "{url}");
    (o, reqs.remove(0))
}

fn gunzip(b64: &str) -> String {
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut out = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn the_real_api_addresses_are_planned() {
    let n = notification(State::Failed, Reason::FirstRun);
    for (url, address) in [
        (
            "mailgun://alerts@mg.example.com/key-abc123",
            "https://api.mailgun.net/v3/mg.example.com/messages",
        ),
        (
            "mailgun://alerts@mg.example.com/key-abc123?region=eu",
            "https://api.eu.mailgun.net/v3/mg.example.com/messages",
        ),
        (
            "postmark://SERVERTOKEN:alerts@example.com",
            "https://api.postmarkapp.com/email",
        ),
        (
            "sparkpost://alerts@example.com/APIKEY1",
            "https://api.sparkpost.com/api/v1/transmissions",
        ),
        (
            "sparkpost://alerts@example.com/APIKEY1?region=eu",
            "https://api.eu.sparkpost.com/api/v1/transmissions",
        ),
        (
            "resend://re_123abc:alerts@example.com",
            "https://api.resend.com/emails",
        ),
        (
            "brevo://xkeysib-abc:alerts@example.com",
            "https://api.brevo.com/v3/smtp/email",
        ),
    ] {
        let ch = parse(url).unwrap();
        let reqs = ch
            .plan(&belfry_channels::Message {
                notification: &n,
                idempotency_key: "k",
            })
            .unwrap();
        assert_eq!(reqs[0].url, address, "{url}");
    }
}

#[test]
fn mailgun_posts_a_multipart_form_with_basic_auth_and_the_output_attached() {
    let (o, r) = deliver(
        "mailgun://alerts@mg.example.com/key-abc123/ops@example.org?cc=lead@example.org&name=Backups&+X-Team=storage",
        200,
    );
    assert_eq!(o, Outcome::Delivered);
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/mg.example.com/messages")
    );
    let expected = base64::engine::general_purpose::STANDARD.encode("api:key-abc123");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    let ct = r.header("content-type").unwrap().to_owned();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let field = |name: &str| {
        let head = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
        let start = body.find(&head).unwrap_or_else(|| panic!("{name} missing")) + head.len();
        let end = body[start..].find(&format!("\r\n--{boundary}")).unwrap();
        body[start..start + end].to_owned()
    };
    assert_eq!(field("from"), "Backups <alerts@mg.example.com>");
    assert_eq!(field("to"), "ops@example.org");
    assert_eq!(field("cc"), "lead@example.org");
    assert_eq!(field("subject"), "[belfry] nightly-backup: Failed");
    assert!(field("text").contains("row 2999"));
    assert!(field("html").contains("run-7"));
    assert_eq!(field("h:X-Team"), "storage");
    assert!(
        body.contains("name=\"attachment\"; filename=\"nightly-backup-output.txt.gz\"\r\nContent-Type: application/gzip"),
        "{}",
        &body[..400.min(body.len())]
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
}

#[test]
fn postmark_resend_and_brevo_post_json_with_their_own_keys_and_fields() {
    let (o, r) = deliver(
        "postmark://SERVERTOKEN:alerts@example.com/ops@example.org?bcc=audit@example.org&reply=oncall@example.org",
        200,
    );
    assert_eq!(o, Outcome::Delivered);
    assert_eq!(r.target, "/email");
    assert_eq!(r.header("x-postmark-server-token"), Some("SERVERTOKEN"));
    let v = r.json();
    assert_eq!(v["From"], "belfry <alerts@example.com>");
    assert_eq!(v["To"], "ops@example.org");
    assert_eq!(v["Bcc"], "audit@example.org");
    assert_eq!(v["ReplyTo"], "oncall@example.org");
    assert_eq!(v["MessageStream"], "outbound");
    assert!(v["TextBody"].as_str().unwrap().contains("row 2999"));
    assert!(gunzip(v["Attachments"][0]["Content"].as_str().unwrap()).ends_with("row 2999\n"));

    let (_, r) = deliver(
        "resend://re_123abc:alerts@example.com/ops@example.org,lead@example.org",
        200,
    );
    assert_eq!(r.target, "/emails");
    assert_eq!(r.header("authorization"), Some("Bearer re_123abc"));
    assert!(
        r.header("idempotency-key").is_some(),
        "a retried send is not a second mail"
    );
    let v = r.json();
    assert_eq!(v["to"], json!(["ops@example.org", "lead@example.org"]));
    assert_eq!(
        v["attachments"][0]["filename"],
        "nightly-backup-output.txt.gz"
    );

    let (_, r) = deliver(
        "brevo://xkeysib-abc:alerts@example.com/ops@example.org?cc=lead@example.org",
        201,
    );
    assert_eq!(r.target, "/smtp/email");
    assert_eq!(r.header("api-key"), Some("xkeysib-abc"));
    let v = r.json();
    assert_eq!(
        v["sender"],
        json!({"email": "alerts@example.com", "name": "belfry"})
    );
    assert_eq!(v["to"], json!([{"email": "ops@example.org"}]));
    assert_eq!(v["cc"], json!([{"email": "lead@example.org"}]));
    assert!(v["htmlContent"].as_str().unwrap().contains("run-7"));
    assert!(gunzip(v["attachment"][0]["content"].as_str().unwrap()).starts_with("row 0\n"));
}

#[test]
fn sparkpost_sends_cc_and_bcc_as_recipients_under_the_to_header() {
    let (o, r) = deliver(
        "sparkpost://alerts@example.com/APIKEY1/ops@example.org?cc=lead@example.org&bcc=audit@example.org",
        200,
    );
    assert_eq!(o, Outcome::Delivered);
    assert_eq!(r.target, "/transmissions");
    assert_eq!(r.header("authorization"), Some("APIKEY1"));
    let v = r.json();
    assert_eq!(
        v["recipients"],
        json!([
            {"address": {"email": "ops@example.org"}},
            {"address": {"email": "lead@example.org", "header_to": "ops@example.org"}},
            {"address": {"email": "audit@example.org", "header_to": "ops@example.org"}},
        ])
    );
    assert_eq!(v["content"]["headers"]["CC"], "lead@example.org");
    assert_eq!(
        v["content"]["from"],
        json!({"email": "alerts@example.com", "name": "belfry"})
    );
    assert_eq!(v["content"]["attachments"][0]["type"], "application/gzip");
}

#[test]
fn refusals_are_permanent_and_overload_is_retried_and_no_key_leaks() {
    let (o, _) = deliver("postmark://SERVERTOKEN:alerts@example.com", 422);
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");
    let (o, _) = deliver("resend://re_123abc:alerts@example.com", 429);
    assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
    let rx = Receiver::start(vec![Reply::status(401).body("bad key re_SECRETabc")]);
    let ch = parse_with_api_base("resend://re_SECRETabc:alerts@example.com", &rx.url("")).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    assert!(
        format!("{o:?}").contains("401") && !format!("{o:?}").contains("re_SECRETabc"),
        "{o:?}"
    );
    assert!(!ch.describe().contains("SECRET"));
}
