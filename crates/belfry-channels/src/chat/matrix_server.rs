//! Matrix's client-server API: finding the homeserver, logging in, joining rooms and sending
//! an `m.room.message` to each. Each step needs what the one before answered, so these
//! requests are made one by one here rather than planned ahead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use belfry_core::Notification;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::text::{html_text, plain_text};
use crate::secrets::Secrets;
use crate::{Context, HttpRequest, Message, Method, Outcome, default_classify};

/// How the account is reached.
#[derive(Clone)]
pub(super) enum Auth {
    /// An access token, used as it is.
    Token(String),
    /// A user's name and password, logged in with (`m.login.password`).
    Login { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Token(_) => "Token(***)",
            Auth::Login { .. } => "Login(***)",
        })
    }
}

/// A room named in the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// `!id[:server]`.
    Id { id: String, server: Option<String> },
    /// `#alias[:server]`, or a bare name.
    Alias {
        name: String,
        server: Option<String>,
    },
}

/// Letters, digits and `._=-`: what Apprise takes in a room's id or alias.
fn is_localpart(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
}

fn is_server(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

impl Target {
    /// A room as Apprise reads one: `!id`, `#alias` or a bare alias, each with an optional
    /// `:server`. A `@user` is refused (belfry does not open direct-message rooms).
    pub(super) fn parse(raw: &str) -> Result<Target, String> {
        let t = raw.trim();
        if t.starts_with('@') {
            return Err(format!(
                "{t:?}: direct messages to a Matrix user are not supported yet; invite the \
                 account to a room and name the room (#alias:server or !id:server)"
            ));
        }
        let (is_id, rest) = match t.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, t.strip_prefix('#').unwrap_or(t)),
        };
        let (local, server) = match rest.split_once(':') {
            Some((l, s)) => (l, Some(s)),
            None => (rest, None),
        };
        if !is_localpart(local) || server.is_some_and(|s| !is_server(s)) {
            return Err(format!(
                "{t:?} is not a Matrix room: write #alias[:server] or !id[:server] (letters, \
                 digits and ._=-)"
            ));
        }
        let (id, server) = (local.to_owned(), server.map(str::to_owned));
        Ok(if is_id {
            Target::Id { id, server }
        } else {
            Target::Alias { name: id, server }
        })
    }

    fn server(&self) -> Option<&str> {
        match self {
            Target::Id { server, .. } | Target::Alias { server, .. } => server.as_deref(),
        }
    }

    /// What to join: the room with its server (`home_server` when it names none).
    fn joinable(&self, home_server: &str, hsreq: bool) -> String {
        match self {
            Target::Id {
                id,
                server: Some(s),
            } => format!("!{id}:{s}"),
            Target::Id { id, server: None } if hsreq => format!("!{id}:{home_server}"),
            Target::Id { id, server: None } => format!("!{id}"),
            Target::Alias { name, server } => {
                format!("#{name}:{}", server.as_deref().unwrap_or(home_server))
            }
        }
    }
}

/// What a process learns from the server and keeps for its next messages.
#[derive(Default)]
struct Learned {
    /// The homeserver's address, after discovery.
    base: Option<String>,
    /// The access token a login gave.
    token: Option<String>,
    /// The server part of the account's id.
    home_server: Option<String>,
    /// Room ids by what was joined.
    rooms: HashMap<String, String>,
}

/// The client-server API of one homeserver, for one account and its rooms.
pub(super) struct Server {
    /// `http(s)://HOST[:PORT]`, from the URL.
    origin: String,
    discovery: bool,
    auth: Auth,
    targets: Vec<Target>,
    hsreq: bool,
    /// `/_matrix/client/v3` or `/_matrix/client/r0`.
    api: &'static str,
    msgtype: &'static str,
    html: bool,
    learned: Mutex<Learned>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("origin", &self.origin)
            .field("rooms", &self.targets.len())
            .finish_non_exhaustive()
    }
}

/// The device every login uses, so that a login per process does not leave a new device on
/// the account each time.
const DEVICE_ID: &str = "BELFRY";

/// What a step of the exchange ends with when it cannot go on.
type Step<T> = Result<T, Outcome>;

impl Server {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        origin: String,
        discovery: bool,
        auth: Auth,
        targets: Vec<Target>,
        hsreq: bool,
        api: &'static str,
        msgtype: &'static str,
        html: bool,
    ) -> Server {
        Server {
            origin,
            discovery,
            auth,
            targets,
            hsreq,
            api,
            msgtype,
            html,
            learned: Mutex::new(Learned::default()),
        }
    }

    /// How many rooms the URL names (0: every joined room).
    pub(super) fn rooms(&self) -> usize {
        self.targets.len()
    }

    #[cfg(test)]
    pub(super) fn is_token(&self, t: &str) -> bool {
        matches!(&self.auth, Auth::Token(x) if x == t)
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The requests that are known before any answer: the discovery, else the login, else
    /// the joins (or the list of joined rooms).
    pub(super) fn plan_first(&self) -> Vec<HttpRequest> {
        if self.discovery {
            return vec![get(
                &format!("{}/.well-known/matrix/client", self.origin),
                None,
            )];
        }
        let base = &self.origin;
        match &self.auth {
            Auth::Login { user, password } => vec![self.login_request(base, user, password)],
            Auth::Token(token) if self.targets.is_empty() => {
                vec![get(
                    &format!("{base}{}/joined_rooms", self.api),
                    Some(token),
                )]
            }
            Auth::Token(token) => {
                let host = host_of(&self.origin);
                self.targets
                    .iter()
                    .map(|t| self.join_request(base, token, &t.joinable(host, self.hsreq)))
                    .collect()
            }
        }
    }

    fn login_request(&self, base: &str, user: &str, password: &str) -> HttpRequest {
        let mut body = if self.api.ends_with("/v3") {
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}})
        } else {
            json!({"type": "m.login.password", "user": user})
        };
        body["password"] = json!(password);
        body["device_id"] = json!(DEVICE_ID);
        body["initial_device_display_name"] = json!("belfry");
        post(&format!("{base}{}/login", self.api), None, &body)
    }

    fn join_request(&self, base: &str, token: &str, room: &str) -> HttpRequest {
        post(
            &format!("{base}{}/join/{}", self.api, enc(room)),
            Some(token),
            &json!({}),
        )
    }

    /// Sends `msg` to every room: discovery, login, joins and messages, each only as needed.
    pub(super) async fn send(
        &self,
        msg: &Message<'_>,
        cx: &Context,
        verify_tls: bool,
        describe: &str,
        secrets: &Secrets,
    ) -> Outcome {
        let call = Call {
            cx,
            verify_tls,
            describe,
        };
        let result = self.send_steps(msg, &call, secrets).await;
        result.unwrap_or_else(|o| o)
    }

    async fn send_steps(
        &self,
        msg: &Message<'_>,
        call: &Call<'_>,
        secrets: &Secrets,
    ) -> Step<Outcome> {
        let base = self.base(call).await?;
        let token = self.token(&base, call).await?;
        // A token a login gave is as secret as the password.
        let mut secrets = secrets.clone();
        secrets.add(&token);
        let rooms = match self.room_ids(&base, &token, call).await {
            Ok(rooms) => rooms,
            Err(o) => return Ok(secrets.scrub_outcome(self.after_401(o))),
        };
        let content = self.content(msg.notification);
        let mut outcome = Outcome::Delivered;
        for (i, room) in rooms.iter().enumerate() {
            let txn = format!("belfry.{}.{i}", enc(msg.idempotency_key));
            let url = format!(
                "{base}{}/rooms/{}/send/m.room.message/{txn}",
                self.api,
                enc(room)
            );
            let mut req = post(&url, Some(&token), &content);
            req.method = Method::Put;
            let o = match call.json(req).await {
                Ok(_) => Outcome::Delivered,
                Err(o) => o,
            };
            outcome = outcome.worst(self.after_401(o));
        }
        Ok(secrets.scrub_outcome(outcome))
    }

    /// After a 401 to a login's token, the token is dropped and the message retried: another
    /// process logging in as the same device ends this one's token, and the retry logs in
    /// again. A 401 to a token from the URL stays permanent (the token is wrong).
    fn after_401(&self, o: Outcome) -> Outcome {
        match o {
            Outcome::Permanent { reason }
                if reason.starts_with("HTTP 401") && matches!(self.auth, Auth::Login { .. }) =>
            {
                self.learned().token = None;
                Outcome::retry(format!("{reason} (the login is repeated on the next try)"))
            }
            o => o,
        }
    }

    /// The homeserver's address: the URL's, or on `matrixs://` what the host's
    /// `/.well-known/matrix/client` names (none there, or a 404: the URL's).
    async fn base(&self, call: &Call<'_>) -> Step<String> {
        if !self.discovery {
            return Ok(self.origin.clone());
        }
        if let Some(b) = self.learned().base.clone() {
            return Ok(b);
        }
        let url = format!("{}/.well-known/matrix/client", self.origin);
        let answer = call
            .cx
            .exchange(&get(&url, None), call.describe, call.verify_tls)
            .await
            .map_err(Outcome::retry)?;
        let base = match answer.status {
            404 => self.origin.clone(),
            200..=299 => {
                let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                if v.as_object().is_none_or(|o| o.is_empty()) {
                    self.origin.clone()
                } else {
                    let b = v["m.homeserver"]["base_url"]
                        .as_str()
                        .map(|b| b.trim().trim_end_matches('/'))
                        .filter(|b| {
                            let l = b.to_ascii_lowercase();
                            (l.starts_with("https://") || l.starts_with("http://"))
                                && b.len() > "https://".len()
                        });
                    match b {
                        Some(b) => b.to_owned(),
                        None => {
                            return Err(Outcome::permanent(format!(
                                "{}: the server's /.well-known/matrix/client names no \
                                 m.homeserver base_url; fix it, or add discovery=no",
                                call.describe
                            )));
                        }
                    }
                }
            }
            s => {
                return Err(default_classify(
                    s,
                    answer.retry_after.as_deref(),
                    &answer.text(),
                ));
            }
        };
        self.learned().base = Some(base.clone());
        Ok(base)
    }

    /// The access token: the URL's, or the one a login gave (logging in once per process).
    async fn token(&self, base: &str, call: &Call<'_>) -> Step<String> {
        let (user, password) = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::Login { user, password } => (user, password),
        };
        if let Some(t) = self.learned().token.clone() {
            return Ok(t);
        }
        let v = call.json(self.login_request(base, user, password)).await?;
        let Some(token) = v["access_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(Outcome::retry(format!(
                "{}: the login's answer holds no access_token",
                call.describe
            )));
        };
        let home_server = v["home_server"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| server_of(v["user_id"].as_str()));
        let mut learned = self.learned();
        learned.token = Some(token.to_owned());
        if home_server.is_some() {
            learned.home_server = home_server;
        }
        Ok(token.to_owned())
    }

    /// The server part of the account's id, for rooms named without one: learned from the
    /// login, else asked (`GET …/account/whoami`).
    async fn home_server(&self, base: &str, token: &str, call: &Call<'_>) -> Step<String> {
        if let Some(h) = self.learned().home_server.clone() {
            return Ok(h);
        }
        let v = call
            .json(get(
                &format!("{base}{}/account/whoami", self.api),
                Some(token),
            ))
            .await?;
        let h =
            server_of(v["user_id"].as_str()).unwrap_or_else(|| host_of(&self.origin).to_owned());
        self.learned().home_server = Some(h.clone());
        Ok(h)
    }

    /// The room ids to send to: every room joined (the URL's, each joined once per process),
    /// or with none named, every room the account is in.
    async fn room_ids(&self, base: &str, token: &str, call: &Call<'_>) -> Step<Vec<String>> {
        if self.targets.is_empty() {
            let v = call
                .json(get(
                    &format!("{base}{}/joined_rooms", self.api),
                    Some(token),
                ))
                .await?;
            let rooms: Vec<String> = v["joined_rooms"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if rooms.is_empty() {
                return Err(Outcome::permanent(format!(
                    "{}: the account is in no room; name one (…/#alias:server)",
                    call.describe
                )));
            }
            return Ok(rooms);
        }
        let needs_home = self
            .targets
            .iter()
            .any(|t| t.server().is_none() && (self.hsreq || matches!(t, Target::Alias { .. })));
        let home = if needs_home {
            self.home_server(base, token, call).await?
        } else {
            String::new()
        };
        let mut ids = Vec::new();
        for t in &self.targets {
            let room = t.joinable(&home, self.hsreq);
            if let Some(id) = self.learned().rooms.get(&room).cloned() {
                ids.push(id);
                continue;
            }
            let id = match call.json(self.join_request(base, token, &room)).await {
                Ok(v) => v["room_id"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| room.clone()),
                Err(Outcome::Permanent { reason })
                    if matches!(t, Target::Alias { .. })
                        && (reason.starts_with("HTTP 404") || reason.contains("M_NOT_FOUND")) =>
                {
                    return Err(Outcome::permanent(format!(
                        "{}: there is no room {room} (belfry does not create rooms; create it \
                         or name an existing one): {reason}",
                        call.describe
                    )));
                }
                Err(o) => return Err(o),
            };
            self.learned().rooms.insert(room, id.clone());
            ids.push(id);
        }
        Ok(ids)
    }

    /// The message's content: `body` as plain text and, when the URL asked for formatting,
    /// `formatted_body` as HTML.
    fn content(&self, n: &Notification) -> Value {
        if self.html {
            json!({
                "msgtype": self.msgtype,
                "body": plain_text(n, FORMATTED_MAX),
                "format": "org.matrix.custom.html",
                "formatted_body": html_text(n, FORMATTED_MAX),
            })
        } else {
            json!({"msgtype": self.msgtype, "body": plain_text(n, PLAIN_MAX)})
        }
    }
}

/// How long a message may be, in bytes after rendering. A Matrix event may hold 65,536
/// bytes, the server's own fields included; Apprise keeps 60,000 characters for a plain body
/// and 29,000 for each of the two bodies of a formatted one. belfry counts bytes.
const PLAIN_MAX: usize = 60_000;
const FORMATTED_MAX: usize = 29_000;

/// One exchange's settings.
struct Call<'a> {
    cx: &'a Context,
    verify_tls: bool,
    describe: &'a str,
}

impl Call<'_> {
    /// Sends `req`; a 2xx answer's JSON (`null` when it has none), else the outcome:
    /// Matrix's `M_LIMIT_EXCEEDED` waits its `retry_after_ms`, the rest as everywhere.
    async fn json(&self, req: HttpRequest) -> Step<Value> {
        let answer = self
            .cx
            .exchange(&req, self.describe, self.verify_tls)
            .await
            .map_err(Outcome::retry)?;
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if (200..300).contains(&answer.status) {
            return Ok(v);
        }
        let o = default_classify(answer.status, answer.retry_after.as_deref(), &answer.text());
        Err(match o {
            Outcome::Retry {
                after: None,
                reason,
            } => {
                let ms = v["retry_after_ms"]
                    .as_u64()
                    .or_else(|| v["error"]["retry_after_ms"].as_u64());
                Outcome::Retry {
                    after: ms.map(Duration::from_millis),
                    reason,
                }
            }
            o => o,
        })
    }
}

fn get(url: &str, token: Option<&str>) -> HttpRequest {
    let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
    }
    HttpRequest {
        method: Method::Get,
        url: url.to_owned(),
        headers,
        body: Vec::new(),
    }
}

fn post(url: &str, token: Option<&str>, body: &Value) -> HttpRequest {
    let mut req = get(url, token);
    req.method = Method::Post;
    req.headers
        .push(("Content-Type".to_owned(), "application/json".to_owned()));
    req.body = serde_json::to_vec(body).expect("a JSON value serialises");
    req
}

/// `s` percent-encoded as one path segment.
fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `example.org` of `@ada:example.org`.
fn server_of(user_id: Option<&str>) -> Option<String> {
    user_id
        .and_then(|u| u.split_once(':'))
        .map(|(_, s)| s.to_owned())
        .filter(|s| !s.is_empty())
}

/// The host of `http(s)://HOST[:PORT]`.
fn host_of(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    match rest.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_read_as_apprise_reads_them() {
        assert_eq!(
            Target::parse("#ops:example.org").unwrap(),
            Target::Alias {
                name: "ops".into(),
                server: Some("example.org".into())
            }
        );
        assert_eq!(
            Target::parse("ops").unwrap(),
            Target::Alias {
                name: "ops".into(),
                server: None
            }
        );
        let id = Target::parse("!AbC123:example.org").unwrap();
        assert_eq!(id.joinable("hs", true), "!AbC123:example.org");
        let id = Target::parse("!AbC123").unwrap();
        assert_eq!(id.joinable("hs.example", true), "!AbC123:hs.example");
        assert_eq!(id.joinable("hs.example", false), "!AbC123");
        assert_eq!(
            Target::parse("ops").unwrap().joinable("hs", false),
            "#ops:hs"
        );
        assert!(
            Target::parse("@ada:example.org")
                .unwrap_err()
                .contains("direct messages")
        );
        assert!(Target::parse("#o ps").is_err());
        assert!(Target::parse("#ops:exa_mple").is_err());
    }

    #[test]
    fn ids_and_hosts_are_taken_apart() {
        assert_eq!(
            server_of(Some("@ada:example.org")).as_deref(),
            Some("example.org")
        );
        assert_eq!(server_of(Some("ada")), None);
        assert_eq!(host_of("https://hs.example.org:8448"), "hs.example.org");
        assert_eq!(host_of("http://hs.example.org"), "hs.example.org");
        assert_eq!(enc("#ops:example.org"), "%23ops%3Aexample%2Eorg");
    }
}
