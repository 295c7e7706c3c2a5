//! Webex (Cisco Webex Teams), read with Apprise's syntax: a space's incoming webhook, or a
//! bot's access token and the rooms it posts to.

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::json;

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Webex: `wxteams://WEBHOOK_TOKEN` (or `webex://`), `wxteams://ACCESS_TOKEN/ROOM_ID[/ROOM_ID…]`
/// for a bot, `?mode=webhook|bot`, and a webhook's own address
/// (`https://webexapis.com/v1/webhooks/incoming/TOKEN`), Apprise's syntax.
///
/// - Webhook mode (a token of 80 to 160 letters and digits, and no room):
///   `POST https://webexapis.com/v1/webhooks/incoming/TOKEN` with `{"markdown": …}`.
/// - Bot mode (rooms given, or `mode=bot`): `POST https://webexapis.com/v1/messages` with the
///   token as bearer, `{"roomId": …, "markdown": …}`, one request per room, in order; the first
///   failure stops the notification and the retry posts to every room again.
/// - `format=text` sends `text` instead of `markdown`. The text is kept within Apprise's limits:
///   1,000 characters through a webhook, 7,439 through the API.
#[derive(Clone)]
pub struct Webex {
    scheme: &'static str,
    pub(crate) base: String,
    kind: Kind,
    markdown: bool,
    secrets: Secrets,
}

#[derive(Clone)]
enum Kind {
    Webhook { token: String },
    Bot { token: String, rooms: Vec<String> },
}

impl std::fmt::Debug for Webex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webex")
            .field("destination", &self.describe())
            .finish_non_exhaustive()
    }
}

const MODES: &[&str] = &["webhook", "bot"];

/// The options Apprise 2.3 reads for Webex.
const OPTIONS: &[&str] = &["token", "mode", "to"];

const WEBHOOK_MAX: usize = 1_000;
const BOT_MAX: usize = 7_439;

fn is_webhook_token(s: &str) -> bool {
    (80..=160).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Webex {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "webex" {
            "webex"
        } else {
            "wxteams"
        };
        p.check_keys(raw, OPTIONS, &[], scheme)?;
        let mode = match p.get("mode").map(str::trim).filter(|m| !m.is_empty()) {
            None => None,
            Some(m) => {
                let l = m.to_ascii_lowercase();
                match MODES.iter().find(|x| x.starts_with(&l)) {
                    Some(x) => Some(*x),
                    None => {
                        return Err(UrlError::new(
                            raw,
                            format!("mode={m:?} is not webhook or bot"),
                        ));
                    }
                }
            }
        };
        let mut rooms: Vec<String> = p.path.clone();
        if let Some(to) = p.get("to") {
            rooms.extend(split_list(to).map(str::to_owned));
        }
        let token = p
            .get("token")
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| p.host.clone());
        if token.is_empty() {
            return Err(UrlError::new(
                raw,
                format!(
                    "the token is missing: {scheme}://WEBHOOK_TOKEN or {scheme}://ACCESS_TOKEN/ROOM_ID"
                ),
            ));
        }
        // As Apprise: rooms (or mode=bot) make a bot; else a token that looks like a
        // webhook's is one, and anything else is a bot's token.
        let bot = mode == Some("bot")
            || (!rooms.is_empty() && mode != Some("webhook"))
            || (mode.is_none() && !is_webhook_token(&token));
        let kind = if bot {
            if rooms.is_empty() {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "no room to post to: a webhook token is 80 to 160 letters and digits \
                         ({scheme}://WEBHOOK_TOKEN); a bot's access token needs rooms \
                         ({scheme}://ACCESS_TOKEN/ROOM_ID)"
                    ),
                ));
            }
            Kind::Bot { token, rooms }
        } else {
            if !is_webhook_token(&token) {
                return Err(UrlError::new(
                    raw,
                    "the webhook token is not 80 to 160 letters and digits",
                ));
            }
            Kind::Webhook { token }
        };
        let markdown = match p.get("format").map(|f| f.trim().to_ascii_lowercase()) {
            Some(f) if f == "text" => false,
            Some(f) if f.is_empty() || f == "markdown" || f == "html" => true,
            None => true,
            Some(f) => {
                return Err(UrlError::new(
                    raw,
                    format!("format={f:?} is not one of text, markdown, html"),
                ));
            }
        };
        let mut secrets = Secrets::of_url(raw);
        match &kind {
            Kind::Webhook { token } | Kind::Bot { token, .. } => secrets.add(token),
        }
        Ok(Webex {
            scheme,
            base: "https://webexapis.com".to_owned(),
            kind,
            markdown,
            secrets,
        })
    }

    /// The message's text field: `markdown` (Apprise's default) or `text`, fitted to `max`.
    fn text(&self, n: &Notification, max: usize) -> (&'static str, String) {
        let markup = if self.markdown {
            Markup::Markdown
        } else {
            Markup::Plain
        };
        let text = render_text(
            n,
            &TextStyle {
                markup,
                title: true,
                details: true,
                tail_lines: 20,
                limit: Limit::chars(max),
            },
        );
        (if self.markdown { "markdown" } else { "text" }, text)
    }
}

fn post(url: String, bearer: Option<&str>, body: &serde_json::Value) -> HttpRequest {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(t) = bearer {
        headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
    }
    HttpRequest {
        method: Method::Post,
        url,
        headers,
        body: serde_json::to_vec(body).expect("a JSON value serialises"),
    }
}

impl Channel for Webex {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Webhook { .. } => format!("{}://*** (webhook)", self.scheme),
            Kind::Bot { rooms, .. } => format!(
                "{}://*** (bot, {} room{})",
                self.scheme,
                rooms.len(),
                if rooms.len() == 1 { "" } else { "s" }
            ),
        }
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        Some(match &self.kind {
            Kind::Webhook { token } => {
                let (field, text) = self.text(n, WEBHOOK_MAX);
                vec![post(
                    format!("{}/v1/webhooks/incoming/{token}", self.base),
                    None,
                    &json!({ field: text }),
                )]
            }
            Kind::Bot { token, rooms } => {
                let (field, text) = self.text(n, BOT_MAX);
                rooms
                    .iter()
                    .map(|room| {
                        post(
                            format!("{}/v1/messages", self.base),
                            Some(token),
                            &json!({ "roomId": room, field: text }),
                        )
                    })
                    .collect()
            }
        })
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let describe = self.describe();
            let o = crate::http::send_planned(reqs, &describe, cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

/// A Webex incoming webhook's address (`https://webexapis.com/v1/webhooks/incoming/TOKEN`, or
/// on `api.ciscospark.com`), read as Apprise reads it: `wxteams://TOKEN/` with the address's
/// query. `None` for any other address.
pub(super) fn parse_address(raw: &str) -> Option<Result<Webex, UrlError>> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let (hostpath, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (host, path) = hostpath.split_once('/')?;
    if !host.eq_ignore_ascii_case("webexapis.com")
        && !host.eq_ignore_ascii_case("api.ciscospark.com")
    {
        return None;
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segs = path.split('/');
    let version_ok = segs.next().is_some_and(|v| {
        let digits = v.strip_prefix(['v', 'V']).unwrap_or("");
        !digits.is_empty() && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let ok = version_ok
        && segs
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("webhooks"))
        && segs
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("incoming"));
    let token = segs.next()?;
    if !ok
        || segs.next().is_some()
        || token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Some(
        Webex::from_apprise(&format!("wxteams://{token}/{query}")).map(|mut w| {
            w.secrets.add_url(raw);
            w
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: usize) -> String {
        "Ab3".repeat(n).chars().take(n).collect()
    }

    #[test]
    fn the_mode_is_chosen_as_apprise_chooses_it() {
        let hook = token(86);
        let w = Webex::from_apprise(&format!("wxteams://{hook}")).unwrap();
        assert!(matches!(&w.kind, Kind::Webhook { token } if *token == hook));
        let w = Webex::from_apprise("webex://B0TTOKEN/room1/room2?to=room3").unwrap();
        assert!(
            matches!(&w.kind, Kind::Bot { token, rooms } if token == "B0TTOKEN" && rooms.len() == 3)
        );
        assert_eq!(w.describe(), "webex://*** (bot, 3 rooms)");
        let w = Webex::from_apprise(&format!("wxteams://{hook}/room1?mode=w")).unwrap();
        assert!(
            matches!(&w.kind, Kind::Webhook { .. }),
            "mode=webhook ignores the rooms"
        );
        let w = Webex::from_apprise(&format!("wxteams://x?token={hook}&mode=bot&to=r")).unwrap();
        assert!(matches!(&w.kind, Kind::Bot { token, .. } if *token == hook));
    }

    #[test]
    fn bad_urls_are_refused_without_the_token() {
        for (url, what) in [
            ("wxteams://T0PS3CR3T", "no room"),
            ("wxteams://T0PS3CR3T?mode=webhook", "80 to 160"),
            ("wxteams://T0PS3CR3T/room?mode=robot", "mode=\"robot\""),
            ("wxteams://T0PS3CR3T/room?format=rtf", "format"),
            ("wxteams://T0PS3CR3T/room?colour=red", "unknown option"),
            ("wxteams://", "token is missing"),
        ] {
            let e = Webex::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn webhook_addresses_are_read_as_the_webhook() {
        let hook = token(90);
        for host in ["webexapis.com", "api.ciscospark.com"] {
            let w = parse_address(&format!("https://{host}/v1/webhooks/incoming/{hook}/"))
                .unwrap()
                .unwrap();
            assert!(matches!(&w.kind, Kind::Webhook { token } if *token == hook));
        }
        assert!(parse_address("https://webexapis.com/v1/people/me").is_none());
        assert!(parse_address("https://webexapis.com/v0/webhooks/incoming/x").is_none());
        assert!(parse_address("https://example.com/v1/webhooks/incoming/x").is_none());
        assert!(
            parse_address("https://webexapis.com/v1/webhooks/incoming/short")
                .unwrap()
                .is_err()
        );
    }
}
