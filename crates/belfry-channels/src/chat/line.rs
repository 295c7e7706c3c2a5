//! LINE, read with Apprise's syntax: a Messaging API channel's push message to each user,
//! group or room.

use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::json;

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// LINE: `line://ACCESS_TOKEN/TARGET[/TARGET…]`, Apprise's syntax: a long-lived token may hold
/// slashes (its parts up to the one that ends in `=` are the token), `token=` gives it whole,
/// `to=` adds targets (user, group or room ids).
///
/// Each target gets `POST https://api.line.me/v2/bot/message/push` with the token as bearer
/// and one text message (belfry's text, within LINE's 5,000 characters) sent as `belfry`. Its
/// `X-Line-Retry-Key` is derived from the notification's idempotency key and the target, so a
/// retry of a push LINE already accepted is not delivered twice (LINE answers 409). `image=`
/// is read and sends no icon (as for Telegram).
#[derive(Clone)]
pub struct Line {
    pub(crate) base: String,
    token: String,
    targets: Vec<String>,
    secrets: Secrets,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

const TEXT_MAX: usize = 5_000;

/// The namespace of the retry keys (a UUID v5 of the idempotency key and the target).
const RETRY_KEY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1e_3b0e_8f4a_4e55_9a57_b3f1_0c2d_7e41);

impl Line {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["to", "image", "token"], &[], "line")?;
        if let Some(v) = p.get("image").filter(|v| !v.trim().is_empty()) {
            parse_bool(raw, "image", v)?;
        }
        let mut targets = p.path.clone();
        let token = match p.get("token").filter(|t| !t.is_empty()) {
            Some(t) => t.to_owned(),
            None => {
                let mut token = p.host.clone();
                if !token.ends_with('=')
                    && let Some(i) = targets.iter().position(|t| t.ends_with('='))
                {
                    for part in targets.drain(..=i) {
                        token.push('/');
                        token.push_str(&part);
                    }
                }
                token
            }
        };
        if token.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                "the channel access token is missing: line://ACCESS_TOKEN/TARGET",
            ));
        }
        if let Some(to) = p.get("to") {
            targets.extend(
                to.split([' ', '\t', '\r', '\n', ',', '#', '\\', '/'])
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        if targets.is_empty() {
            return Err(UrlError::new(
                raw,
                "no user, group or room to push to: line://ACCESS_TOKEN/TARGET",
            ));
        }
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&token);
        Ok(Line {
            base: "https://api.line.me".to_owned(),
            token,
            targets,
            secrets,
        })
    }

    fn retry_key(idempotency_key: &str, target: &str) -> String {
        uuid::Uuid::new_v5(
            &RETRY_KEY_NAMESPACE,
            format!("{idempotency_key}\u{0}{target}").as_bytes(),
        )
        .to_string()
    }
}

impl Channel for Line {
    fn scheme(&self) -> &'static str {
        "line"
    }

    fn describe(&self) -> String {
        let n = self.targets.len();
        format!("line://***/{n} target{}", if n == 1 { "" } else { "s" })
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let text = render_text(
            msg.notification,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 20,
                limit: Limit::chars(TEXT_MAX),
            },
        );
        Some(
            self.targets
                .iter()
                .map(|to| HttpRequest {
                    method: Method::Post,
                    url: format!("{}/v2/bot/message/push", self.base),
                    headers: vec![
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                        ("Authorization".to_owned(), format!("Bearer {}", self.token)),
                        (
                            "X-Line-Retry-Key".to_owned(),
                            Line::retry_key(msg.idempotency_key, to),
                        ),
                    ],
                    body: serde_json::to_vec(&json!({
                        "to": to,
                        "messages": [{"type": "text", "text": text, "sender": {"name": "belfry"}}],
                    }))
                    .expect("a JSON value serialises"),
                })
                .collect(),
        )
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let describe = self.describe();
            let o = crate::http::send_planned(reqs, &describe, cx, classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

/// LINE's answers: a 409 to a retry key means the push was already accepted (delivered).
fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    if status == 409 {
        return Outcome::Delivered;
    }
    crate::default_classify(status, retry_after, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_slashes_and_targets_are_read_as_apprise_reads_them() {
        let l = Line::from_apprise("line://abc/def+ghi=/U123/C456?to=R789,U1").unwrap();
        assert_eq!(l.token, "abc/def+ghi=");
        assert_eq!(l.targets, ["U123", "C456", "R789", "U1"]);
        let l = Line::from_apprise("line://x/U123?token=T0K%2FEN=").unwrap();
        assert_eq!(l.token, "T0K/EN=");
        assert_eq!(l.targets, ["U123"], "with token=, the host is not a target");
        assert_eq!(l.describe(), "line://***/1 target");
        assert_ne!(
            Line::retry_key("n-1:a", "U1"),
            Line::retry_key("n-1:a", "U2")
        );
        assert_eq!(
            Line::retry_key("n-1:a", "U1"),
            Line::retry_key("n-1:a", "U1")
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_token() {
        for (url, what) in [
            ("line://S3CR3TTOKEN=", "no user, group or room"),
            ("line://S3CR3TTOKEN=/U1?image=perhaps", "image"),
            ("line://S3CR3TTOKEN=/U1?notify=yes", "unknown option"),
        ] {
            let e = Line::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
