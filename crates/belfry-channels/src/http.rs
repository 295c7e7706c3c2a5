use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::Outcome;
use crate::outcome::classify_http;

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
}

impl Method {
    /// Parses `post`, `PUT`, … .
    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "GET" => Some(Method::Get),
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
        }
    }
}

/// What every send shares: the HTTP clients and the per-request timeout.
///
/// Two clients, each built on first use: one for `http://` that carries no TLS set-up, and
/// one for `https://` with the system's root certificates. Loading those certificates costs
/// milliseconds, which a run that posts to a loopback webhook (or only prints to the console)
/// should not pay.
#[derive(Debug)]
pub struct Context {
    plain: OnceLock<Result<reqwest::Client, String>>,
    tls: OnceLock<Result<reqwest::Client, String>>,
    timeout: Duration,
}

/// The `User-Agent` belfry sends.
pub const USER_AGENT: &str = concat!("belfry/", env!("CARGO_PKG_VERSION"));

impl Context {
    /// A context whose requests each time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Context {
            plain: OnceLock::new(),
            tls: OnceLock::new(),
            timeout,
        }
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client(&self, url: &str) -> Result<&reqwest::Client, String> {
        let https = url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        let cell = if https { &self.tls } else { &self.plain };
        cell.get_or_init(|| {
            // ring, installed once per process; ignore "already installed".
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut b = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none());
            if !https {
                // Never used for a handshake (redirects are off, the URL is http://), so an
                // empty trust store is enough, and free to build.
                let tls = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                b = b.tls_backend_preconfigured(tls);
            }
            b.build()
                .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
        })
        .as_ref()
        .map_err(Clone::clone)
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
        let client = match self.client(&req.url) {
            Ok(c) => c,
            Err(e) => return Outcome::retry(e),
        };
        let method = match req.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Get => reqwest::Method::GET,
        };
        let mut rb = client.request(method, &req.url).body(req.body.clone());
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::retry(transport_reason(&e, describe)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The body only matters for the reason; a service that stalls while sending it must
        // not turn a delivered message into a retry.
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(_) if (200..300).contains(&status) => String::new(),
            Err(e) => format!("(unreadable body: {})", e.without_url()),
        };
        classify(status, retry_after.as_deref(), &body)
    }
}

async fn read_body(resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let bytes = resp.bytes().await?;
    let cut = &bytes[..bytes.len().min(4096)];
    Ok(String::from_utf8_lossy(cut).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_clients_build_and_are_kept_apart() {
        let cx = Context::new(Duration::from_secs(1));
        let plain = cx.client("http://127.0.0.1/x").unwrap() as *const _;
        let tls = cx.client("HTTPS://example.invalid/").unwrap() as *const _;
        assert_ne!(plain, tls);
        assert_eq!(cx.client("http://other/").unwrap() as *const _, plain);
    }
}
