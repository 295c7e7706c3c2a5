//! Matrix, read with Apprise's syntax: a homeserver's client-server API (an access token or a
//! user's login; rooms by id or alias), or one of the webhook bridges Apprise knows (t2bot.io,
//! matrix-hookshot, the Matrix and Slack flavours of the v1 hook).

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::{Value, json};

use super::matrix_server::{Auth, Server, Target};
use super::text::{html_text, plain_text};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Matrix: `matrix://TOKEN@HOST[:PORT]/ROOM…`, `matrix://USER:PASSWORD@HOST/ROOM…`
/// (`matrixs://` for HTTPS), `matrix://T2BOT_TOKEN`, and `?mode=matrix|slack|hookshot|t2bot`
/// for the webhook bridges, Apprise's syntax. A room is `!id[:server]` or `#alias[:server]`
/// (a bare name is an alias); with no room, every room the account has joined.
///
/// - The client-server API (`mode=off`, the default when the URL has a token or a room):
///   `matrixs://` first asks the host's `/.well-known/matrix/client` for the homeserver's
///   address (`discovery=no` skips it); a user and password log in (`POST …/login`, always as
///   the device `BELFRY`, so that logins do not pile up devices on the account); each room is
///   joined (`POST …/join/ROOM`, which is also how an alias becomes a room id) and sent an
///   `m.room.message` (`PUT …/rooms/ID/send/m.room.message/TXN`). The transaction id comes
///   from the notification's idempotency key, so a retry of a message the server already has is
///   not shown twice. Answers that later requests need (the address, the token, room ids) are
///   kept for the life of the process.
/// - `version=2` (or `v=2`) uses the `r0` API paths; `msgtype=notice` sends `m.notice`.
/// - `format=markdown` or `format=html` adds an HTML `formatted_body` to the plain `body`.
/// - Not done, each refused by name: direct messages to a `@user` (Apprise finds or creates a
///   DM room). Apprise also creates a room for an alias that does not exist; belfry does not
///   (an alert in a room nobody is in reaches nobody) and reports the alias as missing.
///   Messages are not end-to-end encrypted: `e2ee=` is read and, as in Apprise without its
///   optional crypto libraries, messages go unencrypted.
///
/// [`Channel::plan`] gives the requests that can be known before any answer: the discovery,
/// or the login, or the joins; the rest depends on what the server answers.
pub struct Matrix {
    scheme: &'static str,
    kind: Kind,
    describe: String,
    verify_tls: bool,
    pub(super) secrets: Secrets,
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matrix")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

enum Kind {
    Server(Box<Server>),
    Hook(Hook),
}

/// A webhook bridge: where it is and which payload it reads.
struct Hook {
    url: String,
    style: HookStyle,
    /// The sender's name shown (the URL's user), else `belfry`.
    name: Option<String>,
    /// Whether the URL asked for formatted text (`format=markdown` or `html`).
    html: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HookStyle {
    /// t2bot.io and Apprise's `mode=matrix`: `displayName`, `format`, `text`.
    Matrix,
    /// `mode=slack`: a Slack attachment.
    Slack,
    /// matrix-hookshot's generic webhook: `username`, `text`, `html`.
    Hookshot,
}

/// The modes Apprise reads, in its order.
const MODES: &[&str] = &["off", "matrix", "slack", "t2bot", "hookshot"];

/// The options Apprise 2.3 reads for Matrix.
const OPTIONS: &[&str] = &[
    "image",
    "discovery",
    "hsreq",
    "mode",
    "path",
    "version",
    "v",
    "msgtype",
    "e2ee",
    "token",
    "to",
];

/// Apprise's limit for the webhook bridges, counted here in bytes.
const HOOK_MAX: usize = 65_000;

impl Matrix {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "matrixs" {
            "matrixs"
        } else {
            "matrix"
        };
        p.check_keys(raw, OPTIONS, &[], scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the Matrix server is missing: {scheme}://TOKEN@HOST/#ROOM"),
            ));
        }
        let flag = |k: &str, default: bool| match p.get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, k, v),
            None => Ok(default),
        };
        // Read, as Apprise reads them; belfry sends no image and does not encrypt.
        flag("image", false)?;
        flag("e2ee", true)?;
        let verify_tls = flag("verify", true)?;
        let mut targets: Vec<String> = p.path.clone();
        if let Some(to) = p.get("to") {
            targets.extend(split_list(to).map(str::to_owned));
        }
        let mut password = p.password.clone().filter(|s| !s.is_empty());
        let mut user = p.user.clone();
        let mode = match p.get("mode") {
            Some(m) => {
                let l = m.trim().to_ascii_lowercase();
                match MODES.iter().find(|x| **x == l) {
                    Some(x) => *x,
                    None => {
                        return Err(UrlError::new(
                            raw,
                            format!("mode={m:?} is not one of {}", MODES.join(", ")),
                        ));
                    }
                }
            }
            // No token and no room: the host is a t2bot.io hook's id.
            None if password.is_none() && targets.is_empty() => "t2bot",
            None => "off",
        };
        if mode == "t2bot" {
            password = Some(p.host.clone());
        }
        match p.get("token").filter(|t| !t.is_empty()) {
            Some(t) => password = Some(t.to_owned()),
            None => {
                if password.is_none() && user.is_some() {
                    password = user.take();
                }
            }
        }
        let html = match p.get("format").map(|f| f.trim().to_ascii_lowercase()) {
            None => false,
            Some(f) if f.is_empty() || f == "text" => false,
            Some(f) if f == "markdown" || f == "html" => true,
            Some(f) => {
                return Err(UrlError::new(
                    raw,
                    format!("format={f:?} is not one of text, markdown, html"),
                ));
            }
        };
        let http = if scheme == "matrixs" { "https" } else { "http" };
        let port = p.port.map(|n| format!(":{n}")).unwrap_or_default();
        let origin = format!("{http}://{}{port}", p.host);
        let mut secrets = Secrets::of_url(raw);
        if let Some(pw) = &password {
            secrets.add(pw);
        }
        let kind = match mode {
            "t2bot" => {
                let token = password.unwrap_or_default();
                if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    let hint = if p.get("mode").is_none() {
                        format!(
                            " (a URL with no room, no password and no mode= is read as a \
                             t2bot.io hook, as Apprise reads it; to send to every room the \
                             account has joined, add mode=off: {scheme}://TOKEN@HOST?mode=off)"
                        )
                    } else {
                        String::new()
                    };
                    return Err(UrlError::new(
                        raw,
                        format!(
                            "a t2bot.io webhook id is 64 letters and digits: matrix://WEBHOOK_ID{hint}"
                        ),
                    ));
                }
                Kind::Hook(Hook {
                    url: format!("https://webhooks.t2bot.io/api/v1/matrix/hook/{token}"),
                    style: HookStyle::Matrix,
                    name: user,
                    html,
                })
            }
            "matrix" | "slack" | "hookshot" => {
                let Some(token) = password else {
                    return Err(UrlError::new(
                        raw,
                        format!("mode={mode} needs the webhook's token: {scheme}://TOKEN@HOST"),
                    ));
                };
                let token: String = url::form_urlencoded::byte_serialize(token.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20");
                let path = if mode == "hookshot" {
                    let path = p.get("path").map(str::trim).unwrap_or("");
                    let path = if path.is_empty() { "/webhook" } else { path };
                    let path = format!("/{}", path.trim_matches('/'));
                    path.trim_end_matches('/').to_owned()
                } else {
                    "/api/v1/matrix/hook".to_owned()
                };
                Kind::Hook(Hook {
                    url: format!("{origin}{path}/{token}"),
                    style: match mode {
                        "slack" => HookStyle::Slack,
                        "hookshot" => HookStyle::Hookshot,
                        _ => HookStyle::Matrix,
                    },
                    name: user,
                    html,
                })
            }
            _ => {
                let auth = match (user, password) {
                    (Some(user), Some(password)) => Auth::Login { user, password },
                    (None, Some(token)) => Auth::Token(token),
                    _ => {
                        return Err(UrlError::new(
                            raw,
                            format!(
                                "no access token or login: {scheme}://TOKEN@HOST/#ROOM or \
                                 {scheme}://USER:PASSWORD@HOST/#ROOM"
                            ),
                        ));
                    }
                };
                let mut rooms = Vec::new();
                for t in &targets {
                    rooms.push(Target::parse(t).map_err(|why| UrlError::new(raw, why))?);
                }
                let version = p
                    .get("version")
                    .filter(|v| !v.is_empty())
                    .or_else(|| p.get("v").filter(|v| !v.is_empty()));
                let api = match version.map(str::trim) {
                    None | Some("3") => "/_matrix/client/v3",
                    Some("2") => "/_matrix/client/r0",
                    Some(v) => {
                        return Err(UrlError::new(raw, format!("version={v:?} is not 2 or 3")));
                    }
                };
                let msgtype = match p.get("msgtype").map(|m| m.trim().to_ascii_lowercase()) {
                    None => "m.text",
                    Some(m) if m.is_empty() || m == "text" => "m.text",
                    Some(m) if m == "notice" => "m.notice",
                    Some(m) => {
                        return Err(UrlError::new(
                            raw,
                            format!("msgtype={m:?} is not text or notice"),
                        ));
                    }
                };
                Kind::Server(Box::new(Server::new(
                    origin.clone(),
                    scheme == "matrixs" && flag("discovery", true)?,
                    auth,
                    rooms,
                    flag("hsreq", true)?,
                    api,
                    msgtype,
                    html,
                )))
            }
        };
        let describe = match &kind {
            Kind::Hook(h) if h.url.starts_with("https://webhooks.t2bot.io/") => {
                format!("{scheme}://*** (t2bot.io)")
            }
            Kind::Hook(_) => format!("{scheme}://***@{}{port} (mode={mode})", p.host),
            Kind::Server(s) => format!(
                "{scheme}://***@{}{port} ({})",
                p.host,
                match s.rooms() {
                    0 => "every joined room".to_owned(),
                    1 => "1 room".to_owned(),
                    n => format!("{n} rooms"),
                }
            ),
        };
        Ok(Matrix {
            scheme,
            kind,
            describe,
            verify_tls,
            secrets,
        })
    }

    /// The text of `n` for a webhook bridge: plain, and HTML when the URL asked for it.
    fn hook_body(hook: &Hook, n: &Notification) -> Value {
        let html_wanted = hook.html;
        let plain = plain_text(n, HOOK_MAX);
        let name = hook.name.clone().unwrap_or_else(|| "belfry".to_owned());
        match hook.style {
            HookStyle::Matrix => {
                if html_wanted {
                    json!({"displayName": name, "format": "html", "text": html_text(n, HOOK_MAX)})
                } else {
                    json!({"displayName": name, "format": "plain", "text": plain})
                }
            }
            HookStyle::Hookshot => {
                json!({"username": name, "text": plain, "html": html_text(n, HOOK_MAX)})
            }
            HookStyle::Slack => {
                let text = render_text(
                    n,
                    &TextStyle {
                        markup: Markup::SlackMrkdwn,
                        title: false,
                        details: true,
                        tail_lines: 20,
                        limit: Limit::bytes(HOOK_MAX),
                    },
                );
                let ts = n.time.as_millis() as f64 / 1000.0;
                json!({
                    "username": name,
                    "mrkdwn": html_wanted,
                    "attachments": [{
                        "title": n.headline(),
                        "text": text,
                        "color": n.tone().hex(),
                        "ts": ts,
                        "footer": "belfry",
                    }],
                })
            }
        }
    }
}

impl Channel for Matrix {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(match &self.kind {
            Kind::Hook(h) => vec![hook_request(h, msg.notification)],
            Kind::Server(s) => s.plan_first(),
        })
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let o = match &self.kind {
                Kind::Hook(h) => {
                    crate::http::send_planned_checking(
                        vec![hook_request(h, msg.notification)],
                        &self.describe,
                        cx,
                        self.verify_tls,
                        crate::default_classify,
                    )
                    .await
                }
                Kind::Server(s) => {
                    s.send(msg, cx, self.verify_tls, &self.describe, &self.secrets)
                        .await
                }
            };
            self.secrets.scrub_outcome(o)
        })
    }
}

fn hook_request(h: &Hook, n: &Notification) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url: h.url.clone(),
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: serde_json::to_vec(&Matrix::hook_body(h, n)).expect("a JSON value serialises"),
    }
}

/// A t2bot.io hook's address (`https://webhooks.t2bot.io/api/vN/matrix/hook/ID`), read as
/// Apprise reads it: `matrixs://ID/?mode=t2bot` with the address's query. `None` for any other
/// address.
pub(super) fn parse_address(raw: &str) -> Option<Result<Matrix, UrlError>> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let (hostpath, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (host, path) = hostpath.split_once('/')?;
    if !host.eq_ignore_ascii_case("webhooks.t2bot.io") {
        return None;
    }
    let path = path.trim_end_matches('/');
    let mut segs = path.split('/');
    let ok = segs.next().is_some_and(|s| s.eq_ignore_ascii_case("api"))
        && segs.next().is_some_and(|v| {
            v.len() > 1
                && (v.starts_with('v') || v.starts_with('V'))
                && v[1..].bytes().all(|b| b.is_ascii_digit())
        })
        && segs
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("matrix"))
        && segs.next().is_some_and(|s| s.eq_ignore_ascii_case("hook"));
    if !ok {
        return None;
    }
    let id = segs.next().unwrap_or("");
    if segs.next().is_some() {
        return None;
    }
    let query = match query {
        Some(q) if !q.is_empty() => format!("?{q}&mode=t2bot"),
        _ => "?mode=t2bot".to_owned(),
    };
    Some(
        Matrix::from_apprise(&format!("matrixs://{id}/{query}")).map(|mut m| {
            m.secrets.add_url(raw);
            m
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ01";

    #[test]
    fn the_mode_is_chosen_as_apprise_chooses_it() {
        let m = Matrix::from_apprise(&format!("matrix://{T2}")).unwrap();
        assert!(
            matches!(&m.kind, Kind::Hook(h) if h.url.ends_with(T2) && h.url.starts_with("https://webhooks.t2bot.io/"))
        );
        let m = Matrix::from_apprise("matrixs://tok3n@hs.example.org/%23ops").unwrap();
        assert!(matches!(&m.kind, Kind::Server(s) if s.is_token("tok3n")));
        let m = Matrix::from_apprise("matrix://hs.example.org/%23ops?token=tok3n").unwrap();
        assert!(matches!(&m.kind, Kind::Server(s) if s.is_token("tok3n")));
        let m = Matrix::from_apprise("matrix://ada:pw@hs.example.org/!abc:hs.example.org").unwrap();
        assert!(matches!(&m.kind, Kind::Server(s) if !s.is_token("pw")));
        let m =
            Matrix::from_apprise("matrix://bot:tok3n@hooks.example.org:8008?mode=matrix").unwrap();
        assert!(
            matches!(&m.kind, Kind::Hook(h) if h.url == "http://hooks.example.org:8008/api/v1/matrix/hook/tok3n" && h.name.as_deref() == Some("bot"))
        );
        let m = Matrix::from_apprise("matrixs://tok3n@hooks.example.org?mode=hookshot&path=hs/in/")
            .unwrap();
        assert!(
            matches!(&m.kind, Kind::Hook(h) if h.url == "https://hooks.example.org/hs/in/tok3n" && h.style == HookStyle::Hookshot)
        );
        assert!(m.describe().contains("hooks.example.org") && !m.describe().contains("tok3n"));
    }

    #[test]
    fn bad_urls_are_refused_without_the_token() {
        for (url, what) in [
            ("matrix://T0PS3CR3T", "64 letters"),
            (
                "matrix://T0PS3CR3T@hs.example.org/%23ops?mode=bridge",
                "mode=\"bridge\"",
            ),
            (
                "matrix://T0PS3CR3T@hs.example.org/%23ops?version=4",
                "version=\"4\"",
            ),
            (
                "matrix://T0PS3CR3T@hs.example.org/%23ops?msgtype=emote",
                "msgtype",
            ),
            (
                "matrix://T0PS3CR3T@hs.example.org/@ada:hs.example.org",
                "direct messages",
            ),
            (
                "matrix://T0PS3CR3T@hs.example.org/%23ops?colour=red",
                "unknown option",
            ),
            ("matrix://T0PS3CR3T@hs.example.org/%23o%20ps", "room"),
            ("matrix://hs.example.org?mode=slack", "token"),
            ("matrix://hs.example.org?mode=off", "no access token"),
        ] {
            let e = Matrix::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn t2bot_addresses_are_read_as_the_hook() {
        let m = parse_address(&format!(
            "https://webhooks.t2bot.io/api/v1/matrix/hook/{T2}/"
        ))
        .unwrap()
        .unwrap();
        assert!(matches!(&m.kind, Kind::Hook(h) if h.url.ends_with(T2)));
        assert!(parse_address("https://webhooks.t2bot.io/api/v1/other/x").is_none());
        assert!(parse_address("https://example.com/api/v1/matrix/hook/x").is_none());
        assert!(
            parse_address("https://webhooks.t2bot.io/api/v1/matrix/hook/short")
                .unwrap()
                .is_err()
        );
    }
}
