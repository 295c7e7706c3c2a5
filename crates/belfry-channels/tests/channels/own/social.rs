//! Mastodon against the recording receiver standing in for an instance (a self-hosted
//! service: its address is the URL's).

use belfry_channels::{Outcome, parse};
use belfry_testkit::{Receiver, Reply};

use crate::{planned, problem, send};

const TOKEN: &str = "S3CRETmastodonAccessToken";

fn json_reply(body: &str) -> Reply {
    Reply::status(200)
        .header("Content-Type", "application/json")
        .body(body)
}

#[test]
fn mastodon_posts_one_status_with_the_mentions_and_an_idempotency_key() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"id":"1","account":{"username":"belfry"}}"#),
        json_reply(r#"{"id":"2"}"#),
        Reply::status(422).body(&format!(
            r#"{{"error":"Validation failed: token {TOKEN} cannot post"}}"#
        )),
    ]);
    let url = format!(
        "mastodon://{TOKEN}@{}/@ada/bob@other.example/%23ops?spoiler=belfry&language=en",
        rx.addr()
    );
    let ch = parse(&url).unwrap();
    assert!(!ch.describe().contains(TOKEN) && !format!("{ch:?}").contains(TOKEN));
    let mut n = problem();
    n.output_tail = Some("mail @root about it\n".into());
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/api/v1/statuses")
    );
    assert_eq!(
        r.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert_eq!(r.header("content-type").unwrap(), "application/json");
    // The same notification twice: the same key, which the instance answers once.
    assert_eq!(r.header("idempotency-key").unwrap(), "n-1:ops");
    assert_eq!(reqs[1].header("idempotency-key").unwrap(), "n-1:ops");
    let v = r.json();
    let status = v["status"].as_str().unwrap();
    assert!(status.starts_with("🔴 nightly-backup: Failed"), "{status}");
    assert!(
        status.ends_with(" @ada @bob@other.example #ops"),
        "{status}"
    );
    assert!(
        status.contains("mail @\u{200B}root"),
        "a job's @ is no mention: {status}"
    );
    assert!(status.chars().count() <= 500);
    assert_eq!(v["spoiler_text"], "belfry");
    assert_eq!(v["language"], "en");
    assert_eq!(v["sensitive"], false);
    assert!(v.get("visibility").is_none(), "the account's own default");

    let o = send(ch.as_ref(), &n);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("HTTP 422") && !reason.contains(TOKEN)),
        "{o:?}"
    );
}

#[test]
fn mastodon_direct_messages_mention_the_accounts_first_or_the_tokens_own() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"id":"7","username":"opsbot","acct":"opsbot"}"#),
        json_reply(r#"{"id":"1"}"#),
        json_reply(r#"{"id":"2"}"#),
    ]);
    let url = format!(
        "toot://{TOKEN}@{}?visibility=direct&ping=%23alerts",
        rx.addr()
    );
    let ch = parse(&url).unwrap();
    // Before the first send, the plan starts with the question.
    assert_eq!(
        planned(&url, &problem())[0].url,
        format!("http://{}/api/v1/accounts/verify_credentials", rx.addr())
    );
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3, "the account is asked for once");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].target.as_str()),
        ("GET", "/api/v1/accounts/verify_credentials")
    );
    assert_eq!(
        reqs[0].header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    let v = reqs[1].json();
    assert_eq!(v["visibility"], "direct");
    let status = v["status"].as_str().unwrap();
    assert!(status.starts_with("@opsbot 🔴 nightly-backup"), "{status}");
    assert!(status.ends_with(" #alerts"), "{status}");

    let rx = Receiver::start(vec![json_reply(r#"{"id":"1"}"#)]);
    let url = format!("toots://{TOKEN}@{}/@ada?visibility=direct", rx.addr());
    let reqs = planned(&url, &problem());
    let v: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert!(v["status"].as_str().unwrap().starts_with("@ada 🔴"), "{v}");
    assert!(reqs[0].url.starts_with("https://"));
}
