//! The SMS services' APIs (Vonage, MessageBird, Plivo, ClickSend, Sinch, Telnyx) against the
//! recording receiver standing in for each service's host.

use std::time::Duration;

use base64::Engine as _;
use belfry_channels::{Context, Outcome, parse};
use belfry_core::sms;
use belfry_testkit::{Receiver, Reply};

use crate::{form, planned, problem, send_with};

fn via(origin: &str, rx: &Receiver) -> Context {
    Context::new(Duration::from_secs(5)).with_origin(origin, &rx.url(""))
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    &f.iter().find(|(key, _)| key == k).unwrap().1
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[test]
fn vonage_posts_a_form_per_recipient_and_reads_the_status_in_the_body() {
    let url = "vonage://k3y:S3CRETsecret@15551234567/15557654321/+44 20 7946 0018?ttl=60000";
    assert_eq!(
        planned(url, &problem())[0].url,
        "https://rest.nexmo.com/sms/json"
    );
    let ok = r#"{"message-count":"1","messages":[{"status":"0"}]}"#;
    let rx = Receiver::start(vec![
        Reply::status(200).body(ok),
        Reply::status(200).body(ok),
        Reply::status(200).body(r#"{"messages":[{"status":"1","error-text":"Throttled"}]}"#),
        Reply::status(200)
            .body(r#"{"messages":[{"status":"4","error-text":"Bad Credentials S3CRETsecret"}]}"#),
    ]);
    let ch = parse(url).unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &problem(), via("https://rest.nexmo.com", &rx)),
        Outcome::Delivered
    );
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    for (r, to) in reqs.iter().zip(["15557654321", "442079460018"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/sms/json");
        assert_eq!(
            r.header("content-type").unwrap(),
            "application/x-www-form-urlencoded"
        );
        let f = form(&r.body);
        assert_eq!(field(&f, "api_key"), "k3y");
        assert_eq!(field(&f, "api_secret"), "S3CRETsecret");
        assert_eq!(field(&f, "from"), "15551234567");
        assert_eq!(field(&f, "to"), to);
        assert_eq!(field(&f, "ttl"), "60000");
        assert_eq!(field(&f, "text"), sms::render(&problem()));
    }
    let o = send_with(ch.as_ref(), &problem(), via("https://rest.nexmo.com", &rx));
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("throttled")),
        "{o:?}"
    );
    let o = send_with(ch.as_ref(), &problem(), via("https://rest.nexmo.com", &rx));
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("Bad Credentials") && !reason.contains("S3CRETsecret")),
        "{o:?}"
    );
}

#[test]
fn messagebird_posts_with_its_access_key_and_texts_the_sender_without_recipients() {
    let key = "S3CRETabcdefghijklmnopqrs";
    let rx = Receiver::start(vec![Reply::status(201)]);
    let ch = parse(&format!("msgbird://{key}/15551234567")).unwrap();
    assert_eq!(
        send_with(
            ch.as_ref(),
            &problem(),
            via("https://rest.messagebird.com", &rx)
        ),
        Outcome::Delivered
    );
    let r = &rx.requests()[0];
    assert_eq!(r.target, "/messages");
    assert_eq!(
        r.header("authorization").unwrap(),
        format!("AccessKey {key}")
    );
    let f = form(&r.body);
    assert_eq!(field(&f, "originator"), "+15551234567");
    assert_eq!(field(&f, "recipients"), "+15551234567");
    assert_eq!(field(&f, "body"), sms::render(&problem()));
}

#[test]
fn plivo_posts_json_with_basic_auth_and_batches_recipients_in_dst() {
    let id = "MAXXXXXXXXXXXXXXXXXX";
    let token = "S3CRETYjk3NzAzMmQwNDk5NzZhYjRhZWVlMWE";
    let url = format!("plivo://{id}@{token}/15551234567/15557654321/15550001111?batch=yes");
    assert_eq!(
        planned(&url, &problem())[0].url,
        format!("https://api.plivo.com/v1/Account/{id}/Message/")
    );
    let rx = Receiver::start(vec![Reply::status(202), Reply::status(401).body(token)]);
    let ch = parse(&url).unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &problem(), via("https://api.plivo.com", &rx)),
        Outcome::Delivered
    );
    let r = &rx.requests()[0];
    assert_eq!(r.target, format!("/v1/Account/{id}/Message/"));
    assert_eq!(r.header("authorization").unwrap(), basic(id, token));
    let v = r.json();
    assert_eq!(v["src"], "+15551234567");
    assert_eq!(v["dst"], "+15557654321<+15550001111");
    assert_eq!(v["text"], sms::render(&problem()));
    let o = send_with(ch.as_ref(), &problem(), via("https://api.plivo.com", &rx));
    assert!(
        matches!(&o, Outcome::Permanent { reason } if !reason.contains(token)),
        "{o:?}"
    );
}

#[test]
fn clicksend_posts_its_messages_and_reads_each_ones_status() {
    let rx = Receiver::start(vec![
        Reply::status(200).body(r#"{"data":{"messages":[{"status":"SUCCESS"}]}}"#),
        Reply::status(200).body(r#"{"data":{"messages":[{"status":"SUCCESS"}]}}"#),
        Reply::status(200)
            .body(r#"{"data":{"messages":[{"status":"SUCCESS"},{"status":"INVALID_RECIPIENT"}]}}"#),
    ]);
    let one = parse("clicksend://ada:S3CRETkey@15551234567").unwrap();
    assert_eq!(
        send_with(
            one.as_ref(),
            &problem(),
            via("https://rest.clicksend.com", &rx)
        ),
        Outcome::Delivered
    );
    let r = &rx.requests()[0];
    assert_eq!(r.target, "/v3/sms/send");
    assert_eq!(
        r.header("authorization").unwrap(),
        basic("ada", "S3CRETkey")
    );
    let v = r.json();
    assert_eq!(v["messages"][0]["to"], "+15551234567");
    assert_eq!(v["messages"][0]["body"], sms::render(&problem()));
    let many = parse("clicksend://ada:S3CRETkey@15551234567/15557654321?batch=yes").unwrap();
    assert_eq!(
        send_with(
            many.as_ref(),
            &problem(),
            via("https://rest.clicksend.com", &rx)
        ),
        Outcome::Delivered
    );
    assert_eq!(
        rx.requests()[1].json()["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let o = send_with(
        many.as_ref(),
        &problem(),
        via("https://rest.clicksend.com", &rx),
    );
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("INVALID_RECIPIENT")),
        "{o:?}"
    );
}

#[test]
fn sinch_posts_a_batch_per_recipient_in_its_region() {
    let url = "sinch://ab12cd:5ec12e7@15551234567/15557654321?region=eu";
    assert_eq!(
        planned(url, &problem())[0].url,
        "https://eu.sms.api.sinch.com/xms/v1/ab12cd/batches"
    );
    let rx = Receiver::start(vec![
        Reply::status(201),
        Reply::status(429).header("Retry-After", "3"),
    ]);
    let ch = parse(url).unwrap();
    let cx = || via("https://eu.sms.api.sinch.com", &rx);
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert_eq!(r.target, "/xms/v1/ab12cd/batches");
    assert_eq!(r.header("authorization").unwrap(), "Bearer 5ec12e7");
    let v = r.json();
    assert_eq!(v["from"], "+15551234567");
    assert_eq!(v["to"], serde_json::json!(["+15557654321"]));
    assert_eq!(v["body"], sms::render(&problem()));
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(3)),
        "{o:?}"
    );
}

#[test]
fn telnyx_posts_a_message_per_recipient_with_its_bearer_key_and_quotes_its_refusals() {
    let key = "KEYS3CRET_0190abc";
    let url = format!("telnyx://{key}@+1 555 123 4567/15557654321/+44 20 7946 0018");
    assert_eq!(
        planned(&url, &problem())[0].url,
        "https://api.telnyx.com/v2/messages"
    );
    let accepted = r#"{"data":{"id":"40317159","to":[{"status":"queued"}],"errors":[]}}"#;
    let rx = Receiver::start(vec![
        Reply::status(200).body(accepted),
        Reply::status(200).body(accepted),
        Reply::status(422).body(&format!(
            r#"{{"errors":[{{"code":"10016","title":"Phone number must be in +E.164 format","detail":"The 'to' parameter is invalid for key {key}"}}]}}"#
        )),
        Reply::status(429).header("Retry-After", "5"),
    ]);
    let ch = parse(&url).unwrap();
    assert!(!ch.describe().contains(key), "{}", ch.describe());
    let cx = || via("https://api.telnyx.com", &rx);
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    for (r, to) in reqs.iter().zip(["+15557654321", "+442079460018"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/v2/messages");
        assert_eq!(r.header("authorization").unwrap(), format!("Bearer {key}"));
        assert_eq!(r.header("content-type").unwrap(), "application/json");
        assert_eq!(
            r.json(),
            serde_json::json!({"from": "+15551234567", "to": to, "text": sms::render(&problem())})
        );
    }
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("is invalid for key") && reason.contains("10016") && !reason.contains(key)),
        "{o:?}"
    );
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(5)),
        "{o:?}"
    );
}

#[test]
fn telnyx_sends_its_messaging_profile_with_an_alphanumeric_sender() {
    let rx = Receiver::start(vec![Reply::status(200)]);
    let ch = parse("telnyx://K3Y@15557654321?from=Belfry&profile=40017a2e-0f0e-4b9a").unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &problem(), via("https://api.telnyx.com", &rx)),
        Outcome::Delivered
    );
    let v = rx.requests()[0].json();
    assert_eq!(v["from"], "Belfry");
    assert_eq!(v["to"], "+15557654321");
    assert_eq!(v["messaging_profile_id"], "40017a2e-0f0e-4b9a");
}
