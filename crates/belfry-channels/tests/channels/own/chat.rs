//! Matrix against the recording receiver standing in for a homeserver (its client-server
//! API, answered step by step as Synapse answers) and for t2bot.io.

use std::time::Duration;

use belfry_channels::{Context, Outcome, parse};
use belfry_testkit::{Receiver, Reply};

use crate::{planned, problem, recovery, send, send_with};

const TOKEN: &str = "syt_S3CRET_access_token";

fn json_reply(body: &str) -> Reply {
    Reply::status(200)
        .header("Content-Type", "application/json")
        .body(body)
}

fn server(rx: &Receiver) -> String {
    rx.url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn matrix_joins_each_room_once_and_puts_the_message_with_a_transaction_id() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"room_id":"!ops1:example.org"}"#),
        json_reply(r#"{"room_id":"!RoomB:example.org"}"#),
        json_reply(r#"{"event_id":"$e1"}"#),
        json_reply(r#"{"event_id":"$e2"}"#),
        json_reply(r#"{"event_id":"$e3"}"#),
        json_reply(r#"{"event_id":"$e4"}"#),
    ]);
    let url = format!(
        "matrix://{TOKEN}@{}/%23ops:example.org/!RoomB:example.org?msgtype=notice",
        server(&rx)
    );
    let ch = parse(&url).unwrap();
    assert_eq!(ch.scheme(), "matrix");
    assert!(!ch.describe().contains(TOKEN), "{}", ch.describe());
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);

    let reqs = rx.requests();
    assert_eq!(
        reqs.len(),
        6,
        "two joins, then two messages per notification"
    );
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].target,
        "/_matrix/client/v3/join/%23ops%3Aexample%2Eorg"
    );
    assert_eq!(
        reqs[0].header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert_eq!(reqs[0].json(), serde_json::json!({}));
    assert_eq!(
        reqs[1].target,
        "/_matrix/client/v3/join/%21RoomB%3Aexample%2Eorg"
    );
    let put = &reqs[2];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.target,
        "/_matrix/client/v3/rooms/%21ops1%3Aexample%2Eorg/send/m.room.message/belfry.n%2D1%3Aops.0"
    );
    assert_eq!(put.header("content-type").unwrap(), "application/json");
    let v = put.json();
    assert_eq!(v["msgtype"], "m.notice");
    let body = v["body"].as_str().unwrap();
    assert!(body.contains("nightly-backup: Failed"), "{body}");
    assert!(
        body.contains("<b>disk</b> full & sad"),
        "plain text unescaped: {body}"
    );
    assert!(
        v.get("formatted_body").is_none(),
        "text unless format= asks"
    );
    assert!(reqs[3].target.starts_with(
        "/_matrix/client/v3/rooms/%21RoomB%3Aexample%2Eorg/send/m.room.message/belfry.n%2D1%3Aops.1"
    ));
    // The recovery reuses the room ids.
    assert_eq!(reqs[4].method, "PUT");
    assert_ne!(reqs[4].json()["body"], reqs[2].json()["body"]);
    assert!(reqs[4].target.ends_with("/belfry.n%2D1%3Aops.0"));
}

#[test]
fn matrix_logs_in_as_one_device_learns_its_server_and_sends_html_when_asked() {
    let rx = Receiver::start(vec![
        json_reply(
            r#"{"access_token":"syt_FROM_LOGIN_xyz","user_id":"@bot:example.org","device_id":"BELFRY"}"#,
        ),
        json_reply(r#"{"room_id":"!ops1:example.org"}"#),
        json_reply(r#"{"event_id":"$e1"}"#),
    ]);
    let url = format!(
        "matrix://bot:pa55word@{}/ops?version=2&format=markdown",
        server(&rx)
    );
    let ch = parse(&url).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/_matrix/client/r0/login");
    let login = reqs[0].json();
    assert_eq!(login["type"], "m.login.password");
    assert_eq!(login["user"], "bot", "r0 names the user directly");
    assert_eq!(login["password"], "pa55word");
    assert_eq!(login["device_id"], "BELFRY");
    // The bare alias is completed with the account's server.
    assert_eq!(
        reqs[1].target,
        "/_matrix/client/r0/join/%23ops%3Aexample%2Eorg"
    );
    assert_eq!(
        reqs[1].header("authorization").unwrap(),
        "Bearer syt_FROM_LOGIN_xyz"
    );
    let v = reqs[2].json();
    assert_eq!(v["msgtype"], "m.text");
    assert_eq!(v["format"], "org.matrix.custom.html");
    let html = v["formatted_body"].as_str().unwrap();
    assert!(html.starts_with("<b>"), "{html}");
    assert!(html.contains("<br>"), "{html}");
    assert!(
        html.contains("&lt;b&gt;disk&lt;/b&gt; full &amp; sad"),
        "{html}"
    );
    assert!(v["body"].as_str().unwrap().contains("<b>disk</b>"));

    // v3 logs in with an identifier.
    let rx = Receiver::start(vec![json_reply(r#"{"access_token":"t"}"#)]);
    let ch = parse(&format!(
        "matrix://bot:pa55word@{}/%23ops:example.org",
        server(&rx)
    ))
    .unwrap();
    send(ch.as_ref(), &problem());
    let login = rx.requests()[0].json();
    assert_eq!(login["identifier"]["type"], "m.id.user");
    assert_eq!(login["identifier"]["user"], "bot");
}

#[test]
fn matrix_without_rooms_sends_to_every_joined_room_and_whoami_names_the_server() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"joined_rooms":["!a:example.org","!b:example.org"]}"#),
        json_reply(r#"{"event_id":"$1"}"#),
        json_reply(r#"{"event_id":"$2"}"#),
    ]);
    let ch = parse(&format!("matrix://{}?token={TOKEN}&mode=off", server(&rx))).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/_matrix/client/v3/joined_rooms");
    assert!(
        reqs[1]
            .target
            .starts_with("/_matrix/client/v3/rooms/%21a%3Aexample%2Eorg/send/")
    );
    assert!(
        reqs[2]
            .target
            .starts_with("/_matrix/client/v3/rooms/%21b%3Aexample%2Eorg/send/")
    );

    // A room id without a server is completed with the one whoami names.
    let rx = Receiver::start(vec![
        json_reply(r#"{"user_id":"@bot:hs.example.net"}"#),
        json_reply(r#"{"room_id":"!abc:hs.example.net"}"#),
        json_reply(r#"{"event_id":"$1"}"#),
    ]);
    let ch = parse(&format!("matrix://{TOKEN}@{}/!abc", server(&rx))).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs[0].target, "/_matrix/client/v3/account/whoami");
    assert_eq!(
        reqs[1].target,
        "/_matrix/client/v3/join/%21abc%3Ahs%2Eexample%2Enet"
    );
}

#[test]
fn matrixs_discovers_the_homeserver_through_well_known() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"m.homeserver":{"base_url":"https://hs.example.org/"}}"#),
        json_reply(r#"{"user_id":"@bot:example.org"}"#),
        json_reply(r#"{"room_id":"!ops1:example.org"}"#),
        json_reply(r#"{"event_id":"$1"}"#),
        json_reply(r#"{"event_id":"$2"}"#),
    ]);
    let url = format!("matrixs://{TOKEN}@example.org/%23ops");
    assert_eq!(
        planned(&url, &problem())[0].url,
        "https://example.org/.well-known/matrix/client"
    );
    let ch = parse(&url).unwrap();
    let cx = || {
        Context::new(Duration::from_secs(5))
            .with_origin("https://example.org", &rx.url(""))
            .with_origin("https://hs.example.org", &rx.url(""))
    };
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    // Learned once per process: the second message goes straight to the room.
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/.well-known/matrix/client");
    // The alias names no server: the account's, from whoami, at the discovered address.
    assert_eq!(reqs[1].target, "/_matrix/client/v3/account/whoami");
    assert_eq!(
        reqs[2].target,
        "/_matrix/client/v3/join/%23ops%3Aexample%2Eorg"
    );
    assert_eq!(reqs[4].method, "PUT");

    // No well-known (404): the host itself; discovery=no asks nothing.
    let rx = Receiver::start(vec![
        Reply::status(404),
        json_reply(r#"{"user_id":"@bot:example.org"}"#),
        json_reply(r#"{"room_id":"!x:example.org"}"#),
        json_reply(r#"{"event_id":"$1"}"#),
    ]);
    let cx = Context::new(Duration::from_secs(5)).with_origin("https://example.org", &rx.url(""));
    assert_eq!(
        send_with(parse(&url).unwrap().as_ref(), &problem(), cx),
        Outcome::Delivered
    );
    assert_eq!(
        rx.requests()[2].target,
        "/_matrix/client/v3/join/%23ops%3Aexample%2Eorg"
    );
    let first = &planned(&format!("{url}?discovery=no"), &problem())[0];
    assert_eq!(
        first.url,
        "https://example.org/_matrix/client/v3/join/%23ops%3Aexample%2Eorg"
    );
}

#[test]
fn matrix_answers_are_classified_without_the_token() {
    // A missing alias is permanent, and named; belfry creates no room.
    let rx = Receiver::start(vec![Reply::status(404).body(&format!(
        r#"{{"errcode":"M_NOT_FOUND","error":"Room alias not found ({TOKEN})"}}"#
    ))]);
    let ch = parse(&format!(
        "matrix://{TOKEN}@{}/%23gone:example.org",
        server(&rx)
    ))
    .unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("there is no room") && reason.contains("does not create rooms") && !reason.contains(TOKEN)),
        "{o:?}"
    );

    // Rate limited: waits what the server asks.
    let rx = Receiver::start(vec![
        json_reply(r#"{"room_id":"!r:example.org"}"#),
        Reply::status(429).body(r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2500}"#),
    ]);
    let ch = parse(&format!("matrix://{TOKEN}@{}/!r:example.org", server(&rx))).unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_millis(2500)),
        "{o:?}"
    );

    // A login's token refused later is retried with a new login.
    let rx = Receiver::start(vec![
        json_reply(r#"{"access_token":"syt_first_login_tok","user_id":"@bot:example.org"}"#),
        json_reply(r#"{"room_id":"!r:example.org"}"#),
        Reply::status(401).body(r#"{"errcode":"M_UNKNOWN_TOKEN","error":"syt_first_login_tok"}"#),
        json_reply(r#"{"access_token":"syt_second_login","user_id":"@bot:example.org"}"#),
        json_reply(r#"{"event_id":"$1"}"#),
    ]);
    let ch = parse(&format!(
        "matrix://bot:pa55word@{}/!r:example.org",
        server(&rx)
    ))
    .unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("401") && !reason.contains("syt_first_login_tok")),
        "{o:?}"
    );
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs[3].target, "/_matrix/client/v3/login");
    assert_eq!(
        reqs[4].header("authorization").unwrap(),
        "Bearer syt_second_login"
    );

    // A token from the URL that is refused is permanent.
    let rx = Receiver::start(vec![
        Reply::status(401).body(r#"{"errcode":"M_UNKNOWN_TOKEN"}"#),
    ]);
    let ch = parse(&format!("matrix://{TOKEN}@{}/!r:example.org", server(&rx))).unwrap();
    assert!(matches!(
        send(ch.as_ref(), &problem()),
        Outcome::Permanent { .. }
    ));
}

const T2BOT: &str = "S3CRETabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV";

#[test]
fn matrix_t2bot_hook_and_its_address_post_the_hook_payload() {
    let url = format!("matrix://{T2BOT}");
    let reqs = planned(&url, &problem());
    assert_eq!(
        reqs[0].url,
        format!("https://webhooks.t2bot.io/api/v1/matrix/hook/{T2BOT}")
    );
    let native = format!("https://webhooks.t2bot.io/api/v1/matrix/hook/{T2BOT}");
    let ch = parse(&native).unwrap();
    assert_eq!(ch.scheme(), "matrixs");
    assert!(!ch.describe().contains(T2BOT));

    let rx = Receiver::start(vec![Reply::status(200)]);
    let cx =
        Context::new(Duration::from_secs(5)).with_origin("https://webhooks.t2bot.io", &rx.url(""));
    assert_eq!(send_with(ch.as_ref(), &problem(), cx), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("/api/v1/matrix/hook/{T2BOT}"));
    let v = r.json();
    assert_eq!(v["displayName"], "belfry");
    assert_eq!(v["format"], "plain");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("nightly-backup: Failed")
    );

    // A self-hosted hookshot webhook gets text and HTML.
    let rx = Receiver::start(vec![Reply::status(200), Reply::status(500).body(T2BOT)]);
    let ch = parse(&format!(
        "matrix://alerts:{T2BOT}@{}?mode=hookshot",
        server(&rx)
    ))
    .unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert_eq!(r.target, format!("/webhook/{T2BOT}"));
    assert_eq!(r.json()["username"], "alerts");
    assert!(r.json()["html"].as_str().unwrap().contains("<br>"));
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if !reason.contains(T2BOT)),
        "{o:?}"
    );
}

const WEBEX_HOOK: &str =
    "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svZjJlZjM0S3CRETMTQ5LWI3ZDQtNjY1ZDQwZGFhYjM1ZWJhZjhjNGQ";
const WEBEX_BOT: &str = "NzFmS3CRETbot-access_token";

fn webex_via(rx: &Receiver) -> Context {
    Context::new(Duration::from_secs(5)).with_origin("https://webexapis.com", &rx.url(""))
}

#[test]
fn webex_webhook_posts_markdown_to_the_incoming_webhook() {
    assert!((80..=160).contains(&WEBEX_HOOK.len()));
    let url = format!("wxteams://{WEBEX_HOOK}");
    assert_eq!(
        planned(&url, &problem())[0].url,
        format!("https://webexapis.com/v1/webhooks/incoming/{WEBEX_HOOK}")
    );
    // The webhook's own address is the same channel.
    let native = parse(&format!(
        "https://api.ciscospark.com/v1/webhooks/incoming/{WEBEX_HOOK}"
    ))
    .unwrap();
    assert_eq!(native.scheme(), "wxteams");
    assert!(!native.describe().contains(WEBEX_HOOK));

    let rx = Receiver::start(vec![Reply::status(204), Reply::status(204)]);
    for ch in [parse(&url).unwrap(), native] {
        assert_eq!(
            send_with(ch.as_ref(), &problem(), webex_via(&rx)),
            Outcome::Delivered
        );
    }
    let reqs = rx.requests();
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, format!("/v1/webhooks/incoming/{WEBEX_HOOK}"));
        assert_eq!(r.header("content-type").unwrap(), "application/json");
        assert!(r.header("authorization").is_none());
    }
    let v = reqs[0].json();
    let md = v["markdown"].as_str().unwrap();
    assert!(md.starts_with("**"), "{md}");
    assert!(
        md.contains("nightly\\-backup") || md.contains("nightly-backup"),
        "{md}"
    );
    assert!(md.chars().count() <= 1000);
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");

    let rx = Receiver::start(vec![Reply::status(204)]);
    let ch = parse(&format!("webex://{WEBEX_HOOK}?format=text")).unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &recovery(), webex_via(&rx)),
        Outcome::Delivered
    );
    let v = rx.requests()[0].json();
    assert!(
        v["text"].as_str().unwrap().contains("nightly-backup"),
        "{v}"
    );
}

#[test]
fn webex_bot_posts_one_message_per_room_with_its_token() {
    let rx = Receiver::start(vec![
        json_reply(r#"{"id":"m1"}"#),
        json_reply(r#"{"id":"m2"}"#),
        Reply::status(401).body(&format!(r#"{{"message":"bad token {WEBEX_BOT}"}}"#)),
        Reply::status(429).header("Retry-After", "7"),
    ]);
    let ch = parse(&format!(
        "wxteams://{WEBEX_BOT}/Y2lzY29zcGFyazovL3VzL1JPT00vYQ?to=roomB"
    ))
    .unwrap();
    assert_eq!(
        send_with(ch.as_ref(), &problem(), webex_via(&rx)),
        Outcome::Delivered
    );
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    for (r, room) in reqs.iter().zip(["Y2lzY29zcGFyazovL3VzL1JPT00vYQ", "roomB"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/v1/messages");
        assert_eq!(
            r.header("authorization").unwrap(),
            format!("Bearer {WEBEX_BOT}")
        );
        assert_eq!(r.json()["roomId"], room);
        assert!(r.json()["markdown"].as_str().is_some());
    }
    let o = send_with(ch.as_ref(), &problem(), webex_via(&rx));
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains(WEBEX_BOT)),
        "{o:?}"
    );
    let o = send_with(ch.as_ref(), &problem(), webex_via(&rx));
    assert!(
        matches!(&o, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{o:?}"
    );
}

#[test]
fn nextcloud_talk_posts_the_message_to_each_room_as_the_user() {
    let rx = Receiver::start(vec![
        Reply::status(201),
        Reply::status(201),
        Reply::status(404).body("{\"ocs\":{\"meta\":{\"statuscode\":404}}} S3CRETapp-pass"),
    ]);
    let url = format!(
        "nctalk://ada:S3CRETapp-pass@{}/r00m1/r00m2?url_prefix=nextcloud&+X-Team=ops",
        server(&rx)
    );
    let ch = parse(&url).unwrap();
    assert!(!ch.describe().contains("S3CRET"), "{}", ch.describe());
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    for (r, room) in reqs.iter().zip(["r00m1", "r00m2"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.target,
            format!("/nextcloud/ocs/v2.php/apps/spreed/api/v1/chat/{room}")
        );
        assert_eq!(r.header("ocs-apirequest").unwrap(), "true");
        assert_eq!(r.header("x-team").unwrap(), "ops");
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "ada:S3CRETapp-pass",
        );
        assert_eq!(r.header("authorization").unwrap(), format!("Basic {basic}"));
        let m = r.json()["message"].as_str().unwrap().to_owned();
        assert!(m.starts_with("🔴 nightly-backup: Failed\n"), "{m}");
    }
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("404") && !reason.contains("S3CRET")),
        "{o:?}"
    );
}

const LINE_TOKEN: &str = "S3CRETline/token+part=";

#[test]
fn line_pushes_a_text_message_to_each_target_with_a_retry_key() {
    let url = format!("line://{LINE_TOKEN}/Uuser1/Cgroup2");
    let reqs = planned(&url, &problem());
    assert_eq!(reqs[0].url, "https://api.line.me/v2/bot/message/push");
    let rx = Receiver::start(vec![
        Reply::status(200),
        Reply::status(200),
        Reply::status(409).body(r#"{"message":"The retry key is already accepted"}"#),
        Reply::status(200),
        Reply::status(401).body(&format!(
            r#"{{"message":"Authentication failed {LINE_TOKEN}"}}"#
        )),
    ]);
    let ch = parse(&url).unwrap();
    let cx =
        || Context::new(Duration::from_secs(5)).with_origin("https://api.line.me", &rx.url(""));
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    // A retry: LINE already has the first push (409), the second goes through.
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let reqs = rx.requests();
    for (r, to) in reqs.iter().zip(["Uuser1", "Cgroup2"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/v2/bot/message/push");
        assert_eq!(
            r.header("authorization").unwrap(),
            format!("Bearer {LINE_TOKEN}")
        );
        let v = r.json();
        assert_eq!(v["to"], to);
        assert_eq!(v["messages"][0]["type"], "text");
        assert_eq!(v["messages"][0]["sender"]["name"], "belfry");
        assert!(
            v["messages"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("🔴 nightly-backup: Failed")
        );
    }
    assert_eq!(
        reqs[0].header("x-line-retry-key"),
        reqs[2].header("x-line-retry-key")
    );
    assert_ne!(
        reqs[0].header("x-line-retry-key"),
        reqs[1].header("x-line-retry-key")
    );
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains("S3CRET")),
        "{o:?}"
    );
}

const WA_TOKEN: &str = "EAAGS3CRETtoken123";

#[test]
fn whatsapp_sends_a_text_or_a_template_message_to_each_target() {
    let url = format!("whatsapp://{WA_TOKEN}@106540352242922/+15551234567/120363040000000000@g.us");
    assert_eq!(
        planned(&url, &problem())[0].url,
        "https://graph.facebook.com/v21.0/106540352242922/messages"
    );
    let rx = Receiver::start(vec![
        json_reply(r#"{"messages":[{"id":"wamid.1"}]}"#),
        json_reply(r#"{"messages":[{"id":"wamid.2"}]}"#),
        json_reply(r#"{"messages":[{"id":"wamid.3"}]}"#),
        Reply::status(401).body(&format!(
            r#"{{"error":{{"message":"Invalid OAuth access token {WA_TOKEN}"}}}}"#
        )),
    ]);
    let cx = || {
        Context::new(Duration::from_secs(5)).with_origin("https://graph.facebook.com", &rx.url(""))
    };
    let ch = parse(&url).unwrap();
    assert!(!ch.describe().contains(WA_TOKEN));
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs[0].target, "/v21.0/106540352242922/messages");
    assert_eq!(
        reqs[0].header("authorization").unwrap(),
        format!("Bearer {WA_TOKEN}")
    );
    let v = reqs[0].json();
    assert_eq!(v["messaging_product"], "whatsapp");
    assert_eq!(v["to"], "+15551234567");
    assert_eq!(v["recipient_type"], "individual");
    assert_eq!(v["type"], "text");
    assert!(
        v["text"]["body"]
            .as_str()
            .unwrap()
            .starts_with("🔴 nightly-backup: Failed")
    );
    let v = reqs[1].json();
    assert_eq!(v["to"], "120363040000000000@g.us");
    assert_eq!(v["recipient_type"], "group");

    let ch = parse(&format!(
        "whatsapp://job_alert:{WA_TOKEN}@106540352242922/15551234567?lang=en_GB&:1=belfry&:type=3&:body=2"
    ))
    .unwrap();
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
    let v = rx.requests()[2].json();
    assert_eq!(v["type"], "template");
    assert_eq!(v["template"]["name"], "job_alert");
    assert_eq!(v["template"]["language"]["code"], "en_GB");
    let params = &v["template"]["components"][0];
    assert_eq!(params["type"], "body");
    assert_eq!(params["parameters"][0]["text"], "belfry");
    assert!(
        params["parameters"][1]["text"]
            .as_str()
            .unwrap()
            .contains("nightly-backup")
    );
    assert_eq!(params["parameters"][2]["text"], "failure");
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains("S3CRET")),
        "{o:?}"
    );
}
