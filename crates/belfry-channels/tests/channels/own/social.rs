//! Mastodon against the recording receiver standing in for an instance (a self-hosted
//! service: its address is the URL's); Bluesky against the receiver standing in for the
//! handle resolver, the DID directory and the account's server.

use std::time::Duration;

use belfry_channels::{Context, Outcome, parse};
use belfry_testkit::{Receiver, Reply};

use crate::{planned, problem, send, send_with};

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

const APP_PASSWORD: &str = "S3CR-ETap-pPas-swrd";

/// A context that sends Bluesky's resolver, the PLC directory, a `did:web` host and the
/// account's server (`https://pds.example.org`) to `rx`.
fn bsky_context(rx: &Receiver) -> Context {
    Context::new(Duration::from_secs(5))
        .with_origin("https://public.api.bsky.app", &rx.url(""))
        .with_origin("https://plc.directory", &rx.url(""))
        .with_origin("https://ada.example.org", &rx.url(""))
        .with_origin("https://pds.example.org", &rx.url(""))
}

fn did_document() -> Reply {
    json_reply(
        r##"{"id":"did:x","service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://pds.example.org/"}]}"##,
    )
}

#[test]
fn bluesky_resolves_the_handle_logs_in_once_and_creates_a_post_record() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"did":"did:plc:ewvi7nxzyoun6zhxrhs64oiz"}"#),
        did_document(),
        json_reply(
            r#"{"accessJwt":"eyJ.access.one","refreshJwt":"eyJ.refresh","did":"did:plc:ewvi7nxzyoun6zhxrhs64oiz","handle":"alice.bsky.social"}"#,
        ),
        json_reply(
            r#"{"uri":"at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/1","cid":"c1"}"#,
        ),
        Reply::status(400)
            .header("Content-Type", "application/json")
            .body(r#"{"error":"ExpiredToken","message":"Token has expired"}"#),
        json_reply(r#"{"accessJwt":"eyJ.access.two","refreshJwt":"eyJ.refresh"}"#),
        json_reply(r#"{"uri":"at://x/app.bsky.feed.post/2","cid":"c2"}"#),
    ]);
    let ch = parse(&format!("bsky://alice@{APP_PASSWORD}")).unwrap();
    assert_eq!(ch.describe(), "bsky://alice.bsky.social@***");
    assert!(!format!("{ch:?}").contains(APP_PASSWORD));
    assert_eq!(
        send_with(ch.as_ref(), &problem(), bsky_context(&rx)),
        Outcome::Delivered
    );
    let o = send_with(ch.as_ref(), &problem(), bsky_context(&rx));
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("logs in again")),
        "{o:?}"
    );
    assert_eq!(
        send_with(ch.as_ref(), &problem(), bsky_context(&rx)),
        Outcome::Delivered
    );
    let reqs = rx.requests();
    let steps: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "GET",
                "/xrpc/com.atproto.identity.resolveHandle?handle=alice.bsky.social"
            ),
            ("GET", "/did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
            ("POST", "/xrpc/com.atproto.server.createSession"),
            ("POST", "/xrpc/com.atproto.repo.createRecord"),
            ("POST", "/xrpc/com.atproto.repo.createRecord"),
            ("POST", "/xrpc/com.atproto.server.createSession"),
            ("POST", "/xrpc/com.atproto.repo.createRecord"),
        ]
    );
    let login = reqs[2].json();
    assert_eq!(login["identifier"], "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    assert_eq!(login["password"], APP_PASSWORD);
    assert!(reqs[2].header("authorization").is_none());
    let post = &reqs[3];
    assert_eq!(
        post.header("authorization").unwrap(),
        "Bearer eyJ.access.one"
    );
    assert_eq!(post.header("content-type").unwrap(), "application/json");
    let v = post.json();
    assert_eq!(v["repo"], "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    assert_eq!(v["collection"], "app.bsky.feed.post");
    assert_eq!(v["record"]["$type"], "app.bsky.feed.post");
    let text = v["record"]["text"].as_str().unwrap();
    assert!(text.starts_with("🔴 nightly-backup: Failed"), "{text}");
    assert!(text.chars().count() <= 300, "{text}");
    let created = v["record"]["createdAt"].as_str().unwrap();
    assert!(
        belfry_core::Timestamp::parse_rfc3339(created).is_some(),
        "{created}"
    );
    assert_eq!(
        reqs[6].header("authorization").unwrap(),
        "Bearer eyJ.access.two",
        "logged in again after the token expired"
    );
}

#[test]
fn bluesky_reads_a_did_web_document_and_a_wrong_password_is_permanent() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"did":"did:web:ada.example.org"}"#),
        did_document(),
        Reply::status(401)
            .header("Content-Type", "application/json")
            .body(&format!(
                r#"{{"error":"AuthenticationRequired","message":"Invalid identifier or password {APP_PASSWORD}"}}"#
            )),
    ]);
    let ch = parse(&format!("bluesky://ada.example.org:{APP_PASSWORD}@")).unwrap();
    let o = send_with(ch.as_ref(), &problem(), bsky_context(&rx));
    assert!(
        matches!(&o, Outcome::Permanent { reason }
            if reason.contains("logging in") && reason.contains("HTTP 401") && !reason.contains(APP_PASSWORD)),
        "{o:?}"
    );
    let reqs = rx.requests();
    assert_eq!(reqs[1].target, "/.well-known/did.json");
    assert_eq!(reqs[2].json()["identifier"], "did:web:ada.example.org");
}

#[test]
fn a_bluesky_post_is_cut_to_300_characters() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"did":"did:plc:abc"}"#),
        did_document(),
        json_reply(r#"{"accessJwt":"eyJ.a"}"#),
        json_reply(r#"{"uri":"at://x"}"#),
    ]);
    let mut n = problem();
    n.message = "é".repeat(1_000);
    let ch = parse(&format!("bsky://alice.example.com@{APP_PASSWORD}")).unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &n, bsky_context(&rx)),
        Outcome::Delivered
    );
    let reqs = rx.requests();
    assert_eq!(
        reqs[0].target,
        "/xrpc/com.atproto.identity.resolveHandle?handle=alice.example.com"
    );
    let v = reqs[3].json();
    let text = v["record"]["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 300, "{text}");
    assert!(text.contains('…'));
}
