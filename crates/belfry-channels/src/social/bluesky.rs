//! Bluesky, read with Apprise's syntax: a post made through the account's own server (its PDS),
//! found from the handle, after logging in with an app password.

use std::sync::{Mutex, MutexGuard};

use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use belfry_core::{Notification, Timestamp};
use serde_json::{Value, json};

use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Bluesky: `bsky://HANDLE@APP_PASSWORD` (or `bluesky://`; `HANDLE:APP_PASSWORD@` too), Apprise's
/// syntax. A handle without a dot is on `bsky.social` (`alice` is `alice.bsky.social`).
///
/// A post is a conversation, each step needing the answer before it, as the AT Protocol
/// describes it: the handle is resolved to its DID
/// (`GET https://public.api.bsky.app/xrpc/com.atproto.identity.resolveHandle`), the DID's
/// document names the account's server (`https://plc.directory/DID` for `did:plc:`,
/// `https://DOMAIN/.well-known/did.json` for `did:web:`), a session is opened there
/// (`POST /xrpc/com.atproto.server.createSession` with the DID and the app password), and the
/// post is a record created in the account's repository
/// (`POST /xrpc/com.atproto.repo.createRecord`, collection `app.bsky.feed.post`, the session's
/// token as bearer). What the first three teach is kept for the process's life; a token the
/// server calls expired is forgotten and the notification retried, which logs in again.
///
/// The text is belfry's plain text within Bluesky's 300 graphemes, counted as characters
/// (never fewer than graphemes, so the post always fits).
pub struct Bluesky {
    scheme: &'static str,
    handle: String,
    password: String,
    learned: Mutex<Learned>,
    secrets: Secrets,
}

/// What the conversation has taught so far.
#[derive(Clone, Default)]
struct Learned {
    /// The account's DID and its server's address.
    account: Option<(String, String)>,
    /// The session's access token.
    token: Option<String>,
}

impl std::fmt::Debug for Bluesky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bluesky")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Where handles are resolved (Bluesky's public AppView, as in Apprise).
const RESOLVER: &str = "https://public.api.bsky.app";
/// The directory of `did:plc:` documents.
const PLC_DIRECTORY: &str = "https://plc.directory";
/// The host of a handle given without one.
const DEFAULT_HOST: &str = "bsky.social";
/// A post's text: 300 graphemes.
const POST_MAX: usize = 300;

/// What a step of the conversation ends with when it cannot go on.
type Step<T> = Result<T, Outcome>;

fn is_handle(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

impl Bluesky {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "bluesky" {
            "bluesky"
        } else {
            "bsky"
        };
        p.check_keys(raw, &[], &[], scheme)?;
        let user = p.user.clone().unwrap_or_default();
        let user = user.trim().trim_start_matches('@');
        if user.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the handle is missing: {scheme}://HANDLE@APP_PASSWORD"),
            ));
        }
        let handle = if user.contains('.') {
            user.to_ascii_lowercase()
        } else {
            format!("{}.{DEFAULT_HOST}", user.to_ascii_lowercase())
        };
        if !is_handle(&handle) {
            return Err(UrlError::new(
                raw,
                format!("the handle {user:?} is not a Bluesky handle (alice, alice.example.com)"),
            ));
        }
        // As Apprise: the password part, else the host.
        let password = match p.password.as_deref().filter(|p| !p.is_empty()) {
            Some(pw) => pw.to_owned(),
            None => p.host.clone(),
        };
        if password.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!(
                    "the app password is missing: {scheme}://HANDLE@APP_PASSWORD (make one under \
                     Settings, Privacy and security, App passwords)"
                ),
            ));
        }
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&password);
        Ok(Bluesky {
            scheme,
            handle,
            password,
            learned: Mutex::new(Learned::default()),
            secrets,
        })
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn resolve_request(&self) -> HttpRequest {
        get(format!(
            "{RESOLVER}/xrpc/com.atproto.identity.resolveHandle?handle={}",
            self.handle
        ))
    }

    fn session_request(&self, did: &str, pds: &str) -> HttpRequest {
        post(
            format!("{pds}/xrpc/com.atproto.server.createSession"),
            None,
            &json!({ "identifier": did, "password": self.password }),
        )
    }

    fn record_request(&self, n: &Notification, did: &str, pds: &str, token: &str) -> HttpRequest {
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: false,
                tail_lines: 3,
                limit: Limit::chars(POST_MAX),
            },
        );
        post(
            format!("{pds}/xrpc/com.atproto.repo.createRecord"),
            Some(token),
            &json!({
                "repo": did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": text,
                    "createdAt": Timestamp::now().to_rfc3339(),
                },
            }),
        )
    }

    /// The account's DID and server: kept, else resolved from the handle.
    async fn account(&self, call: &Call<'_>) -> Step<(String, String)> {
        if let Some(a) = self.learned().account.clone() {
            return Ok(a);
        }
        let v = call
            .json(self.resolve_request(), "resolving the handle")
            .await?;
        let did = v["did"].as_str().unwrap_or_default().to_owned();
        let doc_url = if did.starts_with("did:plc:") {
            format!("{PLC_DIRECTORY}/{did}")
        } else if let Some(domain) = did.strip_prefix("did:web:") {
            format!("https://{domain}/.well-known/did.json")
        } else {
            return Err(Outcome::permanent(format!(
                "{}: the handle {} resolved to {:?}, which is neither a did:plc nor a did:web",
                call.describe,
                self.handle,
                shorten(&did, 100)
            )));
        };
        let doc = call.json(get(doc_url), "reading the DID document").await?;
        let pds = doc["service"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["type"] == "AtprotoPersonalDataServer")
            .and_then(|s| s["serviceEndpoint"].as_str())
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| e.starts_with("https://") || e.starts_with("http://"))
            .ok_or_else(|| {
                Outcome::permanent(format!(
                    "{}: the DID document of {} names no AtprotoPersonalDataServer",
                    call.describe, self.handle
                ))
            })?;
        let account = (did, pds);
        self.learned().account = Some(account.clone());
        Ok(account)
    }

    /// The session's token: kept, else a new session.
    async fn token(&self, did: &str, pds: &str, call: &Call<'_>) -> Step<String> {
        if let Some(t) = self.learned().token.clone() {
            return Ok(t);
        }
        let v = call
            .json(self.session_request(did, pds), "logging in")
            .await?;
        let token = v["accessJwt"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Outcome::retry(format!(
                    "{}: createSession answered no accessJwt",
                    call.describe
                ))
            })?
            .to_owned();
        self.learned().token = Some(token.clone());
        Ok(token)
    }

    async fn post_steps(&self, n: &Notification, call: &Call<'_>) -> Step<()> {
        let (did, pds) = self.account(call).await?;
        let token = self.token(&did, &pds, call).await?;
        match call
            .json(self.record_request(n, &did, &pds, &token), "posting")
            .await
        {
            Ok(_) => Ok(()),
            Err(o) if expired(&o) => {
                self.learned().token = None;
                Err(Outcome::retry(format!(
                    "{}: the session ended; the retry logs in again",
                    call.describe
                )))
            }
            Err(o) => Err(o),
        }
    }
}

/// Whether a refusal says the session's token is no longer good.
fn expired(o: &Outcome) -> bool {
    matches!(o, Outcome::Permanent { reason }
        if reason.contains("HTTP 401") || reason.contains("ExpiredToken") || reason.contains("InvalidToken"))
}

fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url,
        headers: vec![("Accept".to_owned(), "application/json".to_owned())],
        body: Vec::new(),
    }
}

fn post(url: String, token: Option<&str>, body: &Value) -> HttpRequest {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
    }
    HttpRequest {
        method: Method::Post,
        url,
        headers,
        body: serde_json::to_vec(body).expect("a JSON value serialises"),
    }
}

/// One conversation's settings.
struct Call<'a> {
    cx: &'a Context,
    describe: &'a str,
}

impl Call<'_> {
    /// Sends `req`; a 2xx answer's JSON, else the outcome, naming the step (`doing`).
    async fn json(&self, req: HttpRequest, doing: &str) -> Step<Value> {
        let answer = self
            .cx
            .exchange(&req, self.describe, true)
            .await
            .map_err(Outcome::retry)?;
        let text = answer.text();
        match crate::default_classify(answer.status, answer.retry_after.as_deref(), &text) {
            Outcome::Delivered => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            Outcome::Retry { after, reason } => Err(Outcome::Retry {
                after,
                reason: format!("{} ({doing}): {reason}", self.describe),
            }),
            Outcome::Permanent { reason } => Err(Outcome::permanent(format!(
                "{} ({doing}): {reason}",
                self.describe
            ))),
        }
    }
}

impl Channel for Bluesky {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        format!("{}://{}@***", self.scheme, self.handle)
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let learned = self.learned().clone();
        Some(vec![match (learned.account, learned.token) {
            (None, _) => self.resolve_request(),
            (Some((did, pds)), None) => self.session_request(&did, &pds),
            (Some((did, pds)), Some(token)) => {
                self.record_request(msg.notification, &did, &pds, &token)
            }
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let describe = self.describe();
            let call = Call {
                cx,
                describe: &describe,
            };
            let o = match self.post_steps(msg.notification, &call).await {
                Ok(()) => Outcome::Delivered,
                Err(o) => o,
            };
            // The session's token is a secret too, should a server quote it back.
            let mut secrets = self.secrets.clone();
            if let Some(t) = &self.learned().token {
                secrets.add(t);
            }
            secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_passwords_are_read_as_apprise_reads_them() {
        let b = Bluesky::from_apprise("bsky://alice@abcd-efgh-ijkl-mnop").unwrap();
        assert_eq!(b.handle, "alice.bsky.social");
        assert_eq!(b.password, "abcd-efgh-ijkl-mnop");
        let b = Bluesky::from_apprise("bluesky://Alice.Example.com:S3CR3T-pass@").unwrap();
        assert_eq!(b.handle, "alice.example.com");
        assert_eq!(b.password, "S3CR3T-pass");
        assert_eq!(b.describe(), "bluesky://alice.example.com@***");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, what) in [
            ("bsky://S3CR3T-pass", "the handle is missing"),
            ("bsky://alice@", "the app password is missing"),
            ("bsky://al_ice@S3CR3T-pass", "not a Bluesky handle"),
            (
                "bsky://alice@S3CR3T-pass?visibility=public",
                "unknown option",
            ),
        ] {
            let e = Bluesky::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn an_ended_session_is_told_from_other_refusals() {
        assert!(expired(&Outcome::permanent(
            r#"x (posting): HTTP 400: {"error":"ExpiredToken","message":"Token has expired"}"#
        )));
        assert!(expired(&Outcome::permanent("x (posting): HTTP 401")));
        assert!(!expired(&Outcome::permanent(
            r#"x (posting): HTTP 400: {"error":"InvalidRequest"}"#
        )));
    }
}
