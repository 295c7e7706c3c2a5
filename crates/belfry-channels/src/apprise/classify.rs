//! How each service's answers are judged. Most services mean what their status says
//! ([`classify_http`]); some answer `200` to a message they refused, or say in the body when to
//! come back, and are read from the body.

use std::time::{Duration, SystemTime};

use belfry_core::{MAX_DURATION, duration_from_secs_f64};
use serde_json::Value;

use crate::outcome::{Outcome, classify_http, parse_retry_after, shorten};

/// Status codes that are worth another try.
fn transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

fn json(body: &str) -> Option<Value> {
    serde_json::from_str(body.trim()).ok()
}

/// A number of seconds from a JSON value (`35`, `1.5`, `"2"`).
fn seconds(v: &Value) -> Option<Duration> {
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    (secs.is_finite() && secs >= 0.0).then(|| duration_from_secs_f64(secs))
}

/// A retry after the service's hint: the body's if it gave one, else `Retry-After`.
fn retry(body_hint: Option<Duration>, retry_after: Option<&str>, reason: String) -> Outcome {
    Outcome::Retry {
        after: body_hint
            .or_else(|| retry_after.and_then(|v| parse_retry_after(v, SystemTime::now()))),
        reason,
    }
}

/// By status: 2xx delivered, 408/425/429/5xx retried (after `Retry-After`), the rest permanent.
pub(crate) fn default(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    classify_http(status, retry_after, body, SystemTime::now())
}

/// Telegram's Bot API answers `{"ok": false, "error_code": …, "description": …}`, and a
/// flood-control refusal carries `parameters.retry_after` (seconds), which is honoured. A
/// group that became a supergroup names its new chat id (`migrate_to_chat_id`).
pub(crate) fn telegram(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let Some(v) = json(body) else {
        return default(status, retry_after, body);
    };
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) if (200..300).contains(&status) => Outcome::Delivered,
        Some(false) => {
            let code = v
                .get("error_code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(status);
            let what = v
                .get("description")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map_or_else(|| format!("error {code}"), |d| shorten(d, 200));
            let reason = format!("Telegram: {what}");
            let params = v.get("parameters");
            if let Some(after) = params.and_then(|p| p.get("retry_after")).and_then(seconds) {
                return retry(Some(after), retry_after, reason);
            }
            if let Some(id) = params.and_then(|p| p.get("migrate_to_chat_id")) {
                return Outcome::permanent(format!(
                    "{reason} (the group is now the supergroup {id}: use that chat id)"
                ));
            }
            if transient(code) || transient(status) {
                retry(None, retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
        _ => default(status, retry_after, body),
    }
}

/// Slack's webhooks answer `ok`; its Web API answers `200` with `{"ok": false, "error": …}`
/// even for a rate limit (`ratelimited`) or its own trouble, which are retried.
pub(crate) fn slack(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    if !(200..300).contains(&status) {
        return default(status, retry_after, body);
    }
    let text = body.trim();
    if text == "ok" || text.is_empty() {
        return Outcome::Delivered;
    }
    let Some(v) = json(text) else {
        return Outcome::permanent(format!(
            "Slack answered HTTP {status} without \"ok\": {}",
            shorten(text, 200)
        ));
    };
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        return Outcome::Delivered;
    }
    let error = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let reason = format!("Slack: {}", shorten(error, 200));
    match error {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => retry(None, retry_after, reason),
        _ => Outcome::permanent(reason),
    }
}

/// Discord says how long to wait in the body too (`retry_after`, seconds with a fraction).
pub(crate) fn discord(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    if status == 429
        && retry_after.is_none()
        && let Some(after) = json(body)
            .as_ref()
            .and_then(|v| v.get("retry_after"))
            .and_then(seconds)
    {
        return retry(
            Some(after),
            None,
            "Discord: rate limited (HTTP 429)".to_owned(),
        );
    }
    default(status, retry_after, body)
}

/// Zulip answers `{"result": "error", "msg": …}`, with `retry-after` in the body of a 429.
pub(crate) fn zulip(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let Some(v) = json(body) else {
        return default(status, retry_after, body);
    };
    if v.get("result").and_then(Value::as_str) != Some("error") {
        return default(status, retry_after, body);
    }
    let msg = v.get("msg").and_then(Value::as_str).unwrap_or("error");
    let reason = format!("Zulip: {}", shorten(msg, 200));
    let code = v.get("code").and_then(Value::as_str);
    if transient(status) || code == Some("RATE_LIMIT_HIT") {
        retry(v.get("retry-after").and_then(seconds), retry_after, reason)
    } else {
        Outcome::permanent(reason)
    }
}

/// Rocket.Chat answers `{"success": false, "error": …}`.
pub(crate) fn rocketchat(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match json(body) {
        Some(v) if v.get("success").and_then(Value::as_bool) == Some(false) => {
            let error = v
                .get("error")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("refused");
            let reason = format!("Rocket.Chat: {}", shorten(error, 200));
            if transient(status) {
                retry(None, retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
        _ => default(status, retry_after, body),
    }
}

/// Pushover answers `{"status": 1}`, or `{"status": 0, "errors": […]}`.
pub(crate) fn pushover(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match json(body) {
        Some(v) if v.get("status").and_then(Value::as_i64) == Some(0) => {
            let errors: Vec<&str> = v
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let reason = format!("Pushover: {}", shorten(&errors.join("; "), 200));
            if transient(status) {
                retry(None, retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
        _ => default(status, retry_after, body),
    }
}

/// DingTalk's robots and WeCom's group robots answer `200` with `{"errcode": 0, "errmsg":
/// "ok"}`, or a non-zero `errcode`. Sending too fast (DingTalk's 130101, WeCom's 45009) is
/// retried after a minute, the window both count in; any other code is permanent.
pub(crate) fn errcode(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let Some(v) = json(body) else {
        return default(status, retry_after, body);
    };
    match v.get("errcode").and_then(Value::as_i64) {
        Some(0) | None => default(status, retry_after, body),
        Some(code) => {
            let what = v.get("errmsg").and_then(Value::as_str).unwrap_or("refused");
            let reason = format!("errcode {code}: {}", shorten(what, 200));
            if matches!(code, 130_101 | 45_009) || transient(status) {
                retry(Some(Duration::from_secs(60)), retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
    }
}

/// Feishu's and Lark's custom bots answer `{"code": 0, …}` (older ones `{"StatusCode": 0}`),
/// or a non-zero code with `msg`. Their rate limit (9499, 11232) is retried; any other code is
/// permanent.
pub(crate) fn feishu(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let Some(v) = json(body) else {
        return default(status, retry_after, body);
    };
    let code = v
        .get("code")
        .or_else(|| v.get("StatusCode"))
        .and_then(Value::as_i64);
    match code {
        Some(0) | None => default(status, retry_after, body),
        Some(code) => {
            let what = v
                .get("msg")
                .or_else(|| v.get("StatusMessage"))
                .and_then(Value::as_str)
                .unwrap_or("refused");
            let reason = format!("code {code}: {}", shorten(what, 200));
            if matches!(code, 9499 | 11_232) || transient(status) {
                retry(None, retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
    }
}

/// ServerChan answers `{"code": 0, …}`, or a non-zero code with `message` (a wrong SendKey, the
/// day's quota used up); those are permanent.
pub(crate) fn serverchan(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match json(body).and_then(|v| {
        let code = v.get("code").and_then(Value::as_i64)?;
        let what = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .to_owned();
        Some((code, what))
    }) {
        Some((code, what)) if code != 0 && !transient(status) => {
            Outcome::permanent(format!("code {code}: {}", shorten(&what, 200)))
        }
        _ => default(status, retry_after, body),
    }
}

/// Prowl refuses with 406 once the hour's API calls are used up, and says in `resetdate`
/// (Unix seconds) when they come back.
pub(crate) fn prowl(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    if status != 406 {
        return default(status, retry_after, body);
    }
    let reset = body
        .split("resetdate=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|s| s.parse::<u64>().ok())
        .map(|at| {
            // A reset beyond what the clock can hold is as far as belfry waits.
            match std::time::UNIX_EPOCH.checked_add(Duration::from_secs(at)) {
                Some(at) => at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_DURATION),
                None => MAX_DURATION,
            }
        });
    retry(
        reset,
        retry_after,
        "Prowl: the hourly API limit is used up (HTTP 406)".to_owned(),
    )
}

/// Bark answers `{"code": 200, …}` and puts an error's code in the body.
pub(crate) fn bark(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match json(body).and_then(|v| {
        let code = u16::try_from(v.get("code")?.as_u64()?).ok()?;
        let msg = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Some((code, msg))
    }) {
        Some((code, msg)) if code >= 400 && (200..300).contains(&status) => {
            let reason = format!("Bark: {} ({code})", shorten(&msg, 200));
            if transient(code) {
                retry(None, retry_after, reason)
            } else {
                Outcome::permanent(reason)
            }
        }
        _ => default(status, retry_after, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_flood_control_is_a_retry_after_its_hint() {
        let body = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#;
        // The same whether Telegram says it with a 429 or with a 200.
        for status in [429, 200] {
            assert_eq!(
                telegram(status, None, body),
                Outcome::Retry {
                    after: Some(Duration::from_secs(35)),
                    reason: "Telegram: Too Many Requests: retry after 35".into()
                }
            );
        }
        let bad = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        assert_eq!(
            telegram(200, None, bad),
            Outcome::permanent("Telegram: Bad Request: chat not found")
        );
        let moved = r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#;
        assert!(
            telegram(400, None, moved)
                .reason()
                .unwrap()
                .contains("supergroup -1001234")
        );
        assert_eq!(
            telegram(200, None, r#"{"ok":true,"result":{}}"#),
            Outcome::Delivered
        );
        assert!(matches!(
            telegram(502, None, "Bad Gateway"),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn slack_web_api_errors_are_read_from_a_200() {
        assert_eq!(slack(200, None, "ok"), Outcome::Delivered);
        assert_eq!(
            slack(200, None, r#"{"ok":true,"ts":"1"}"#),
            Outcome::Delivered
        );
        assert_eq!(
            slack(200, Some("7"), r#"{"ok":false,"error":"ratelimited"}"#),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "Slack: ratelimited".into()
            }
        );
        assert_eq!(
            slack(200, None, r#"{"ok":false,"error":"channel_not_found"}"#),
            Outcome::permanent("Slack: channel_not_found")
        );
        assert!(matches!(
            slack(200, None, "<html>"),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            slack(404, None, "no_service"),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn discord_zulip_and_prowl_hints_are_honoured() {
        assert_eq!(
            discord(
                429,
                None,
                r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#
            ),
            Outcome::Retry {
                after: Some(Duration::from_millis(1500)),
                reason: "Discord: rate limited (HTTP 429)".into()
            }
        );
        let z = zulip(
            429,
            None,
            r#"{"result":"error","msg":"API usage exceeded rate limit","code":"RATE_LIMIT_HIT","retry-after":28}"#,
        );
        assert_eq!(
            z.clone(),
            Outcome::Retry {
                after: Some(Duration::from_secs(28)),
                reason: "Zulip: API usage exceeded rate limit".into()
            }
        );
        assert!(matches!(
            zulip(
                400,
                None,
                r#"{"result":"error","msg":"Stream 'x' does not exist","code":"STREAM_DOES_NOT_EXIST"}"#
            ),
            Outcome::Permanent { .. }
        ));
        let soon = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let p = prowl(
            406,
            None,
            &format!(r#"<error code="406" resetdate="{soon}">limit</error>"#),
        );
        let Outcome::Retry {
            after: Some(after), ..
        } = p
        else {
            panic!("{p:?}")
        };
        assert!(after <= Duration::from_secs(600) && after > Duration::from_secs(500));
    }

    #[test]
    fn hints_in_bodies_too_far_away_are_capped_not_a_panic() {
        let p = prowl(
            406,
            None,
            &format!(
                r#"<error code="406" resetdate="{}">limit</error>"#,
                u64::MAX
            ),
        );
        assert!(
            matches!(p, Outcome::Retry { after: Some(d), .. } if d == MAX_DURATION),
            "{p:?}"
        );
        let p = prowl(
            406,
            None,
            r#"<error code="406" resetdate="5">limit</error>"#,
        );
        assert!(
            matches!(p, Outcome::Retry { after: Some(d), .. } if d == Duration::ZERO),
            "{p:?}"
        );
        for v in [serde_json::json!(1e300), serde_json::json!("1e30")] {
            assert_eq!(seconds(&v), Some(MAX_DURATION), "{v}");
        }
    }

    #[test]
    fn services_that_refuse_in_the_body_are_permanent() {
        assert!(matches!(
            pushover(
                400,
                None,
                r#"{"user":"invalid","errors":["user identifier is invalid"],"status":0}"#
            ),
            Outcome::Permanent { .. }
        ));
        assert_eq!(pushover(200, None, r#"{"status":1}"#), Outcome::Delivered);
        assert_eq!(
            rocketchat(200, None, r#"{"success":false,"error":"invalid-channel"}"#),
            Outcome::permanent("Rocket.Chat: invalid-channel")
        );
        assert_eq!(
            bark(
                200,
                None,
                r#"{"code":400,"message":"failed to get device token"}"#
            ),
            Outcome::permanent("Bark: failed to get device token (400)")
        );
        assert_eq!(
            bark(200, None, r#"{"code":200,"message":"success"}"#),
            Outcome::Delivered
        );
    }
}
