use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::outcome::{Outcome, classify_http, rate_limit_hint};

/// An HTTP request a channel wants sent: planned without I/O, so that it can be inspected,
/// tested, and sent by one shared client with one set of timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST`, `PUT`, …
    pub method: Method,
    /// The full address, secrets included: never print it; use [`crate::Channel::describe`].
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The HTTP methods channels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// GET
    Get,
    /// DELETE
    Delete,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
    /// UPDATE, a method of no standard that Apprise's webhooks can send.
    Update,
}

impl Method {
    /// Parses `post`, `PUT`, … .
    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "GET" => Some(Method::Get),
            "DELETE" => Some(Method::Delete),
            "HEAD" => Some(Method::Head),
            "OPTIONS" => Some(Method::Options),
            "UPDATE" => Some(Method::Update),
            _ => None,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Get => "GET",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Update => "UPDATE",
        }
    }
}

/// A service's answer, as much of it as channels need to judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The start of the body (at most [`Answer::BODY_MAX`] bytes).
    pub body: Vec<u8>,
    /// The `Ping-Body-Limit` header (healthchecks' answer to a ping: the most body bytes it
    /// keeps), if any.
    pub ping_body_limit: Option<usize>,
}

impl Answer {
    /// The most bytes of a body that are kept: enough for any answer a later request is built
    /// from (a login token, a chat id), and a bound on what a faulty server can make belfry
    /// hold.
    pub const BODY_MAX: usize = 1 << 20;

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// What every send shares: the HTTP clients, the SMTP connections kept between mails (one
/// pool per server and login; [`Context::close`] ends them), the per-request timeout, and
/// where requests for a service's address go instead (for tests against a stand-in server).
///
/// Two clients, each built on first use: one for `http://` that carries no TLS set-up, and
/// one for `https://` with the system's root certificates. Loading those certificates costs
/// milliseconds, which a run that posts to a loopback webhook (or only prints to the console)
/// should not pay. A third, which does not check certificates, is built only for a URL that
/// asks for it (Apprise's `verify=no`).
#[derive(Debug)]
pub struct Context {
    plain: OnceLock<Result<reqwest::Client, String>>,
    tls: OnceLock<Result<reqwest::Client, String>>,
    unverified: OnceLock<Result<reqwest::Client, String>>,
    timeout: Duration,
    origins: Vec<(String, String)>,
    kept: OnceLock<Box<dyn Kept>>,
    /// Addresses already parsed, so that a channel's URL is parsed once rather than once a
    /// request (see [`Context::parsed`]).
    urls: Mutex<Vec<(String, reqwest::Url)>>,
}

/// The most parsed addresses a [`Context`] keeps: a few per channel is the common case; past
/// this, addresses (a per-message URL) are parsed each time and not kept.
const URLS_KEPT: usize = 64;

/// Connections a family of channels keeps open between sends (today the e-mail channels' SMTP
/// sessions), which [`Context::close`] ends. The context holds them without knowing their
/// type, so that this shared file names no family: the family creates its pool on first use
/// ([`Context::kept`]).
pub(crate) trait Kept: Any + Send + Sync + fmt::Debug {
    /// Ends every kept connection.
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The `User-Agent` belfry sends.
pub const USER_AGENT: &str = concat!("belfry/", env!("CARGO_PKG_VERSION"));

/// Which client a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    Plain,
    Tls,
    Unverified,
}

impl Flavour {
    fn of(url: &str, verify_tls: bool) -> Flavour {
        let https = url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        match (https, verify_tls) {
            (false, _) => Flavour::Plain,
            (true, true) => Flavour::Tls,
            (true, false) => Flavour::Unverified,
        }
    }
}

impl Context {
    /// A context whose requests each time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Context {
            plain: OnceLock::new(),
            tls: OnceLock::new(),
            unverified: OnceLock::new(),
            timeout,
            origins: Vec::new(),
            kept: OnceLock::new(),
            urls: Mutex::new(Vec::new()),
        }
    }

    /// The connections of type `K` kept open between sends, created empty on first use (see
    /// [`Context::close`]). `None` only if another type took the slot first, which no family
    /// does: one family keeps connections.
    pub(crate) fn kept<K: Kept + Default>(&self) -> Option<&K> {
        let kept: &dyn Kept = self.kept.get_or_init(|| Box::new(K::default())).as_ref();
        (kept as &dyn Any).downcast_ref::<K>()
    }

    /// Closes what this context keeps open between sends: the e-mail channels' connections,
    /// each with a QUIT (a server that does not answer within a second is left). Call it when
    /// nothing more will be sent through this context, on the runtime that sent.
    pub async fn close(&self) {
        if let Some(kept) = self.kept.get() {
            kept.close().await;
        }
    }

    /// Sends the requests addressed to `from` (an origin: `https://api.telegram.org`) to `to`
    /// (`http://127.0.0.1:8080`) instead, path and query kept. For tests and local stand-ins of
    /// services whose address is fixed.
    pub fn with_origin(mut self, from: &str, to: &str) -> Self {
        self.origins.push((
            from.trim_end_matches('/').to_owned(),
            to.trim_end_matches('/').to_owned(),
        ));
        self
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client_of(&self, flavour: Flavour) -> Result<&reqwest::Client, String> {
        let cell = match flavour {
            Flavour::Plain => &self.plain,
            Flavour::Tls => &self.tls,
            Flavour::Unverified => &self.unverified,
        };
        cell.get_or_init(|| {
            // ring, installed once per process; ignore "already installed".
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut b = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none());
            match flavour {
                Flavour::Plain => {
                    // Never used for a handshake (redirects are off, the URL is http://), so
                    // an empty trust store is enough, and free to build.
                    let tls = rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth();
                    b = b.tls_backend_preconfigured(tls);
                }
                Flavour::Tls => {}
                Flavour::Unverified => b = b.tls_danger_accept_invalid_certs(true),
            }
            b.build()
                .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// The address a request really goes to, after [`Context::with_origin`].
    fn address<'a>(&self, url: &'a str) -> std::borrow::Cow<'a, str> {
        for (from, to) in &self.origins {
            if let Some(head) = url.get(..from.len())
                && head.eq_ignore_ascii_case(from)
                && matches!(
                    url[from.len()..].chars().next(),
                    None | Some('/' | '?' | '#')
                )
            {
                return format!("{to}{}", &url[from.len()..]).into();
            }
        }
        url.into()
    }

    /// `url` parsed, from the addresses parsed before if it is one of them: a channel sends
    /// to the same few addresses again and again. `None` if it does not parse (reqwest then
    /// says why, as it always has).
    fn parsed(&self, url: &str) -> Option<reqwest::Url> {
        let mut kept = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, parsed)) = kept.iter().find(|(raw, _)| raw == url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if kept.len() < URLS_KEPT {
            kept.push((url.to_owned(), parsed.clone()));
        }
        Some(parsed)
    }

    /// Sends one request and returns the answer: its status, `Retry-After` and the start of
    /// its body. A transport failure (refused, timed out, TLS) is an `Err` with a reason that
    /// names the destination as `describe` (no secrets). `verify_tls: false` skips the
    /// certificate check, for a URL that asked for it.
    pub async fn exchange(
        &self,
        req: &HttpRequest,
        describe: &str,
        verify_tls: bool,
    ) -> Result<Answer, String> {
        self.exchange_owned(req.clone(), describe, verify_tls).await
    }

    /// [`Context::exchange`] of a request given away: its body goes out without a copy.
    async fn exchange_owned(
        &self,
        req: HttpRequest,
        describe: &str,
        verify_tls: bool,
    ) -> Result<Answer, String> {
        let url = self.address(&req.url);
        let client = self.client_of(Flavour::of(&url, verify_tls))?;
        let method = match req.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Get => reqwest::Method::GET,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            Method::Options => reqwest::Method::OPTIONS,
            Method::Update => {
                reqwest::Method::from_bytes(b"UPDATE").expect("UPDATE is a valid method token")
            }
        };
        let rb = match self.parsed(&url) {
            Some(parsed) => client.request(method, parsed),
            None => client.request(method, url.as_ref()),
        };
        let mut rb = rb.body(req.body);
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        let mut resp = rb
            .send()
            .await
            .map_err(|e| transport_reason(&e, describe))?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let ping_body_limit = headers
            .get("ping-body-limit")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                rate_limit_hint(
                    status,
                    |name| headers.get(name).and_then(|v| v.to_str().ok()),
                    SystemTime::now(),
                )
            });
        // The body matters for the reason and for services that answer in it; a service that
        // stalls while sending it must not turn a delivered message into a retry, so what
        // arrived before the failure is kept.
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = Answer::BODY_MAX - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= Answer::BODY_MAX {
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) if (200..300).contains(&status) => break,
                Err(e) => {
                    body.extend_from_slice(
                        format!("(unreadable body: {})", e.without_url()).as_bytes(),
                    );
                    break;
                }
            }
        }
        Ok(Answer {
            status,
            retry_after,
            body,
            ping_body_limit,
        })
    }

    /// Sends one planned request and classifies the answer with `classify` (status, the
    /// `Retry-After` header, the start of the body). `describe` names the destination in
    /// failure reasons without secrets.
    pub async fn send(
        &self,
        req: &HttpRequest,
        describe: &str,
        classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
    ) -> Outcome {
        self.send_checking(req, describe, true, classify).await
    }

    /// Like [`Context::send`]; `verify_tls: false` accepts any certificate (a URL's
    /// `verify=no`).
    pub async fn send_checking(
        &self,
        req: &HttpRequest,
        describe: &str,
        verify_tls: bool,
        classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
    ) -> Outcome {
        self.send_owned(req.clone(), describe, verify_tls, classify)
            .await
    }

    /// [`Context::send_checking`] of a request given away: its body goes out without a copy.
    async fn send_owned(
        &self,
        req: HttpRequest,
        describe: &str,
        verify_tls: bool,
        classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
    ) -> Outcome {
        match self.exchange_owned(req, describe, verify_tls).await {
            Ok(answer) => {
                let text = answer.text();
                let cut = match text.char_indices().nth(4096) {
                    Some((i, _)) => &text[..i],
                    None => &text,
                };
                classify(answer.status, answer.retry_after.as_deref(), cut)
            }
            Err(reason) => Outcome::retry(reason),
        }
    }
}

/// The default classification, for services without their own rules.
pub fn default_classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    classify_http(status, retry_after, body, SystemTime::now())
}

fn transport_reason(e: &reqwest::Error, describe: &str) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    // The error's own text may carry the URL; strip it and walk the sources for the cause
    // (connection refused, DNS failure) instead.
    let mut cause = String::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        format!("{what} to {describe}")
    } else {
        format!("{what} to {describe}: {cause}")
    }
}

/// Sends every planned request of an HTTP channel in order, stopping at the first failure;
/// the outcome is the first failure's, or delivered.
pub(crate) async fn send_planned(
    requests: Vec<HttpRequest>,
    describe: &str,
    cx: &Context,
    classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
) -> Outcome {
    send_planned_checking(requests, describe, cx, true, classify).await
}

/// Like [`send_planned`]; `verify_tls: false` accepts any certificate.
pub(crate) async fn send_planned_checking(
    requests: Vec<HttpRequest>,
    describe: &str,
    cx: &Context,
    verify_tls: bool,
    classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
) -> Outcome {
    for req in requests {
        let o = cx.send_owned(req, describe, verify_tls, &classify).await;
        if !o.is_delivered() {
            return o;
        }
    }
    Outcome::Delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_clients_build_and_are_kept_apart() {
        let cx = Context::new(Duration::from_secs(1));
        let client = |url, verify| cx.client_of(Flavour::of(url, verify)).unwrap() as *const _;
        let plain = client("http://127.0.0.1/x", true);
        let tls = client("HTTPS://example.invalid/", true);
        let unverified = client("https://example.invalid/", false);
        assert_ne!(plain, tls);
        assert_ne!(unverified, tls);
        assert_eq!(client("http://other/", true), plain);
        assert_eq!(
            client("http://other/", false),
            plain,
            "no TLS, nothing to verify"
        );
    }

    #[test]
    fn addresses_are_parsed_once_and_kept_up_to_a_bound() {
        let cx = Context::new(Duration::from_secs(1));
        let a = cx.parsed("http://127.0.0.1:9/hook?x=1").unwrap();
        assert_eq!(a.as_str(), "http://127.0.0.1:9/hook?x=1");
        assert_eq!(cx.parsed("http://127.0.0.1:9/hook?x=1"), Some(a));
        assert_eq!(cx.urls.lock().unwrap().len(), 1);
        assert_eq!(cx.parsed("not a url"), None);
        for i in 0..2 * URLS_KEPT {
            let u = format!("http://127.0.0.1:9/{i}");
            assert_eq!(cx.parsed(&u).unwrap().as_str(), u);
        }
        assert_eq!(cx.urls.lock().unwrap().len(), URLS_KEPT);
    }

    #[test]
    fn origins_are_replaced_only_where_they_match_whole() {
        let cx = Context::new(Duration::from_secs(1))
            .with_origin("https://api.telegram.org", "http://127.0.0.1:9/");
        assert_eq!(
            cx.address("https://API.telegram.org/botX/sendMessage"),
            "http://127.0.0.1:9/botX/sendMessage"
        );
        assert_eq!(cx.address("https://api.telegram.org"), "http://127.0.0.1:9");
        assert_eq!(
            cx.address("https://api.telegram.org.evil/x"),
            "https://api.telegram.org.evil/x"
        );
    }
}
