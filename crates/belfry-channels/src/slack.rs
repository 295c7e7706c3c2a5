use belfry_core::{Kind, Notification, format_duration};
use serde_json::{Value, json};

use crate::outcome::shorten;
use crate::url_parse::{APPRISE_GLOBAL_OPTIONS, UrlError, decode, query_pairs, redact_url};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

const HOOKS: &str = "https://hooks.slack.com/services";

/// Slack through an incoming webhook: Apprise's `slack://[botname@]TokenA/TokenB/TokenC[/#channel…]`
/// or the `https://hooks.slack.com/services/…` address Slack shows.
///
/// The message is an attachment coloured by state (red problem, green recovery, blue OK) with
/// the details as fields and the end of the output as a code block.
#[derive(Clone)]
pub struct Slack {
    base: String,
    tokens: [String; 3],
    username: Option<String>,
    channels: Vec<String>,
    describe: String,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("url", &self.describe)
            .finish_non_exhaustive()
    }
}

fn token_ok(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Slack {
    pub(crate) fn is_webhook_address(raw: &str) -> bool {
        let lc = raw.to_ascii_lowercase();
        lc.starts_with("https://hooks.slack.com/services/")
    }

    pub(crate) fn from_webhook_address(raw: &str) -> Result<Self, UrlError> {
        let rest = &raw["https://hooks.slack.com/services/".len()..];
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Self::build(raw, &parts, None, Vec::new())
    }

    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let after = &raw[raw.find("://").map_or(0, |i| i + 3)..];
        let (main, _query) = after.split_once('?').unwrap_or((after, ""));
        let (userinfo, path) = match main.split_once('/') {
            Some((auth, p)) => match auth.rsplit_once('@') {
                Some((u, host)) => (Some(u), format!("{host}/{p}")),
                None => (None, main.to_owned()),
            },
            None => (None, main.to_owned()),
        };
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        if segments
            .first()
            .is_some_and(|t| t.starts_with("xox") && t.contains('-'))
        {
            return Err(UrlError::new(
                raw,
                "Slack bot tokens (xoxb-…, xoxp-…) are not supported yet; use an incoming \
                 webhook (slack://TokenA/TokenB/TokenC)",
            ));
        }
        let tokens: Vec<&str> = segments.iter().take(3).map(String::as_str).collect();
        let mut channels: Vec<String> = segments.iter().skip(3).cloned().collect();
        for (k, v) in query_pairs(raw) {
            match k.as_str() {
                "to" | "channel" | "channels" => channels.extend(
                    v.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
                k if APPRISE_GLOBAL_OPTIONS.contains(&k) => {}
                // Apprise's cosmetic options: accepted, the webhook decides these itself.
                "image" | "footer" | "blocks" => {}
                other => {
                    return Err(UrlError::new(
                        raw,
                        format!("unknown option {other:?} for slack://"),
                    ));
                }
            }
        }
        Self::build(raw, &tokens, userinfo.map(decode), channels)
    }

    fn build(
        raw: &str,
        tokens: &[&str],
        username: Option<String>,
        channels: Vec<String>,
    ) -> Result<Self, UrlError> {
        if tokens.len() < 3 {
            return Err(UrlError::new(
                raw,
                "a Slack webhook needs three tokens: slack://TokenA/TokenB/TokenC",
            ));
        }
        if let Some(bad) = tokens.iter().position(|t| !token_ok(t)) {
            return Err(UrlError::new(
                raw,
                format!(
                    "Slack token {} is not made of letters and digits",
                    ["A", "B", "C"][bad]
                ),
            ));
        }
        Ok(Slack {
            base: HOOKS.to_owned(),
            tokens: [tokens[0].into(), tokens[1].into(), tokens[2].into()],
            username: username.filter(|u| !u.is_empty()),
            channels: channels
                .into_iter()
                .map(|c| {
                    if c.starts_with('#') || c.starts_with('@') {
                        c
                    } else {
                        format!("#{c}")
                    }
                })
                .collect(),
            describe: redact_url(raw),
        })
    }

    /// Slack's payload for a notification, optionally to one channel.
    pub fn payload(&self, n: &Notification, channel: Option<&str>) -> Value {
        let (color, emoji) = match n.kind {
            Kind::Problem => ("#D50200", "🔴"),
            Kind::Recovered => ("#2EB886", "✅"),
            Kind::Ok => ("#439FE0", "🔵"),
        };
        let mut fields =
            vec![json!({"title": "State", "value": esc(n.state.label()), "short": true})];
        if let Some(code) = n.exit_code {
            fields.push(json!({"title": "Exit code", "value": code.to_string(), "short": true}));
        }
        if let Some(sig) = n.signal {
            fields.push(json!({"title": "Signal", "value": sig.to_string(), "short": true}));
        }
        if let Some(secs) = n.duration_seconds {
            let d = std::time::Duration::from_secs_f64(secs.max(0.0));
            fields.push(json!({"title": "Duration", "value": format_duration(d), "short": true}));
        }
        if let Some(h) = &n.host {
            fields.push(json!({"title": "Host", "value": esc(h), "short": true}));
        }
        let mut text = esc(&n.message);
        if n.kind == Kind::Problem
            && let Some(tail) = n.tail_lines(15)
        {
            // Slack shows about 3,000 characters of an attachment comfortably.
            let tail = tail_chars(&tail, 2500);
            text.push_str(&format!("\n```{}```", esc(&tail)));
        }
        let mut attachment = json!({
            "fallback": shorten(&format!("{} — {}", n.title, n.message), 300),
            "color": color,
            "title": format!("{emoji} {}", esc(&n.title)),
            "text": text,
            "fields": fields,
            "footer": match &n.run_id {
                Some(r) => format!("belfry · run {r}"),
                None => "belfry".to_owned(),
            },
            "ts": n.time.as_millis() / 1000,
            "mrkdwn_in": ["text"],
        });
        if n.kind == Kind::Recovered {
            attachment["fields"] = Value::Array(Vec::new());
        }
        let mut p = json!({
            "text": format!("{emoji} {}", esc(&n.title)),
            "attachments": [attachment],
        });
        if let Some(u) = &self.username {
            p["username"] = json!(u);
        }
        if let Some(c) = channel {
            p["channel"] = json!(c);
        }
        p
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped, and nothing else.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The last `max` characters of `s`, cut on a character boundary.
fn tail_chars(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    let skip = n - max;
    let start = s.char_indices().nth(skip).map_or(0, |(i, _)| i);
    format!("…{}", &s[start..])
}

impl Channel for Slack {
    fn scheme(&self) -> &'static str {
        "slack"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let url = format!(
            "{}/{}/{}/{}",
            self.base, self.tokens[0], self.tokens[1], self.tokens[2]
        );
        let targets: Vec<Option<&str>> = if self.channels.is_empty() {
            vec![None]
        } else {
            self.channels.iter().map(|c| Some(c.as_str())).collect()
        };
        Some(
            targets
                .into_iter()
                .map(|ch| HttpRequest {
                    method: Method::Post,
                    url: url.clone(),
                    headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
                    body: serde_json::to_vec(&self.payload(msg.notification, ch))
                        .expect("a JSON value serialises"),
                })
                .collect(),
        )
    }

    /// Slack allows about one message a second per webhook, with short bursts.
    fn pace(&self) -> crate::Pace {
        crate::Pace::limited(1.0, 3)
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            crate::send_planned(reqs, &self.describe, cx, crate::default_classify).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apprise_and_web_addresses_give_the_same_webhook() {
        let a = Slack::from_apprise("slack://T1ABC/B2DEF/xyz789").unwrap();
        let b = Slack::from_webhook_address("https://hooks.slack.com/services/T1ABC/B2DEF/xyz789")
            .unwrap();
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.tokens[2], "xyz789", "token case is kept");
    }

    #[test]
    fn botname_and_channels_are_read() {
        let s = Slack::from_apprise("slack://belfry@T1/B2/C3/#ops/alerts/@ada").unwrap();
        assert_eq!(s.username.as_deref(), Some("belfry"));
        assert_eq!(s.channels, ["#ops", "#alerts", "@ada"]);
        let s = Slack::from_apprise("slack://T1/B2/C3?to=ops,dev").unwrap();
        assert_eq!(s.channels, ["#ops", "#dev"]);
    }

    #[test]
    fn bad_slack_urls_say_what_is_wrong() {
        let e = Slack::from_apprise("slack://T1/B2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("three tokens"), "{e}");
        let e = Slack::from_apprise("slack://xoxb-123-456/#ops")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bot tokens"), "{e}");
        let e = Slack::from_apprise("slack://T1/B2/C3?colour=red")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(!e.contains("C3"), "the token must not leak: {e}");
    }

    #[test]
    fn mrkdwn_is_escaped_and_long_tails_are_cut_on_character_boundaries() {
        assert_eq!(esc("<a & b>"), "&lt;a &amp; b&gt;");
        let s = "é".repeat(3000);
        let t = tail_chars(&s, 2500);
        assert_eq!(t.chars().count(), 2501);
    }
}
