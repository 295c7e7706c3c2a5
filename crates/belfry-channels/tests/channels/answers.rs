//! How each service's answers are judged, with the receiver's scripted replies.

use std::time::Duration;

use belfry_channels::{Outcome, parse};
use belfry_testkit::{Receiver, Reply};

use super::{problem, send, send_with, via};

fn retry_after(o: &Outcome) -> Option<Duration> {
    match o {
        Outcome::Retry { after, .. } => *after,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn a_429_with_retry_after_is_retried_after_that_time() {
    let rx = Receiver::start(vec![Reply::status(429).header("Retry-After", "7")]);
    let ch = parse(&format!("gotify://{}/AbCdEf123", rx.addr())).unwrap();
    let o = send(ch.as_ref(), &problem());
    assert_eq!(retry_after(&o), Some(Duration::from_secs(7)));
}

#[test]
fn a_503_is_retried_and_bad_credentials_are_permanent() {
    let rx = Receiver::start(vec![
        Reply::status(503),
        Reply::status(401).body(r#"{"error":"Unauthorized","errorCode":401}"#),
        Reply::status(403),
    ]);
    let ch = parse(&format!("ntfy://{}/backups", rx.addr())).unwrap();
    assert!(matches!(
        send(ch.as_ref(), &problem()),
        Outcome::Retry { after: None, .. }
    ));
    let o = send(ch.as_ref(), &problem());
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");
    assert!(o.reason().unwrap().contains("HTTP 401"), "{o:?}");
    assert!(matches!(
        send(ch.as_ref(), &problem()),
        Outcome::Permanent { .. }
    ));
}

#[test]
fn telegram_flood_control_is_honoured_and_its_refusals_read_from_the_body() {
    let rx = Receiver::start(vec![
        Reply::status(429).body(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#,
        ),
        Reply::ok().body(r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
        Reply::status(401).body(r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
        Reply::ok().body(r#"{"ok":true,"result":{"message_id":1}}"#),
    ]);
    let ch = parse("tgram://123456789:AAHtoken/42").unwrap();
    let cx = || via("https://api.telegram.org", &rx);
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert_eq!(
        o,
        Outcome::Retry {
            after: Some(Duration::from_secs(35)),
            reason: "Telegram: Too Many Requests: retry after 35".into()
        }
    );
    assert_eq!(
        send_with(ch.as_ref(), &problem(), cx()),
        Outcome::permanent("Telegram: Bad Request: chat not found")
    );
    assert_eq!(
        send_with(ch.as_ref(), &problem(), cx()),
        Outcome::permanent("Telegram: Unauthorized")
    );
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
}

#[test]
fn slack_rate_limits_inside_a_200_are_retried() {
    let rx = Receiver::start(vec![
        Reply::ok()
            .header("Retry-After", "3")
            .body(r#"{"ok":false,"error":"ratelimited"}"#),
        Reply::ok().body(r#"{"ok":false,"error":"not_in_channel"}"#),
        Reply::ok().body(r#"{"ok":true}"#),
    ]);
    let ch = parse("slack://xoxb-1234-5678-abcdef/#ops").unwrap();
    let cx = || via("https://slack.com", &rx);
    assert_eq!(
        send_with(ch.as_ref(), &problem(), cx()),
        Outcome::Retry {
            after: Some(Duration::from_secs(3)),
            reason: "Slack: ratelimited".into()
        }
    );
    assert_eq!(
        send_with(ch.as_ref(), &problem(), cx()),
        Outcome::permanent("Slack: not_in_channel")
    );
    assert_eq!(send_with(ch.as_ref(), &problem(), cx()), Outcome::Delivered);
}

#[test]
fn a_slack_webhook_that_does_not_say_ok_did_not_take_the_message() {
    let rx = Receiver::start(vec![
        Reply::ok().body("<html>maintenance</html>"),
        Reply::status(404).body("no_service"),
    ]);
    let ch = parse("slack://T1ABC/B2DEF/xyz789").unwrap();
    let cx = || via("https://hooks.slack.com", &rx);
    let o = send_with(ch.as_ref(), &problem(), cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("without \"ok\"")),
        "{o:?}"
    );
    assert_eq!(
        send_with(ch.as_ref(), &problem(), cx()),
        Outcome::permanent("HTTP 404: no_service")
    );
}

#[test]
fn discord_says_how_long_to_wait_in_its_body() {
    let rx = Receiver::start(vec![Reply::status(429).body(
        r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#,
    )]);
    let ch = parse("discord://123456789/tokenABC").unwrap();
    let o = send_with(ch.as_ref(), &problem(), via("https://discord.com", &rx));
    assert_eq!(retry_after(&o), Some(Duration::from_millis(1500)));
}

#[test]
fn a_retry_stops_the_plan_and_a_refused_chat_does_not_stop_the_others() {
    // Two chats: the first is rate limited, so the second is not sent now (both go again).
    let rx = Receiver::start(vec![Reply::status(429).header("Retry-After", "2")]);
    let ch = parse("tgram://123456789:AAHtoken/11/22").unwrap();
    let o = send_with(
        ch.as_ref(),
        &problem(),
        via("https://api.telegram.org", &rx),
    );
    assert_eq!(retry_after(&o), Some(Duration::from_secs(2)));
    assert_eq!(rx.requests().len(), 1);

    // The first chat is refused for good: the second still gets the alert, and the outcome
    // says what went wrong.
    let rx = Receiver::start(vec![Reply::status(400).body(
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    )]);
    let o = send_with(
        ch.as_ref(),
        &problem(),
        via("https://api.telegram.org", &rx),
    );
    assert_eq!(
        o,
        Outcome::permanent("Telegram: Bad Request: chat not found")
    );
    assert_eq!(rx.requests().len(), 2);
}

#[test]
fn a_lookup_that_finds_nothing_is_permanent() {
    let rx = Receiver::start(vec![
        Reply::ok().body(r#"{"ok":false,"error":"users_not_found"}"#),
    ]);
    let ch = parse("slack://xoxb-1234-5678-abcdef/nobody@example.com").unwrap();
    let o = send_with(ch.as_ref(), &problem(), via("https://slack.com", &rx));
    assert_eq!(o, Outcome::permanent("Slack: users_not_found"));
    assert_eq!(rx.requests().len(), 1, "nothing is posted without the user");
}

#[test]
fn an_unreachable_service_is_retried_with_a_redacted_reason() {
    let port = belfry_testkit::closed_port();
    let ch = parse(&format!("gotify://127.0.0.1:{port}/AbCdEf123")).unwrap();
    let o = send(ch.as_ref(), &problem());
    let reason = o.reason().unwrap();
    assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
    assert!(
        reason.contains(&format!("could not connect to gotify://127.0.0.1:{port}/…")),
        "{reason}"
    );
    assert!(!reason.contains("AbCdEf123"), "{reason}");
}
