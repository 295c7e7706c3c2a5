//! An Apprise API server (github.com/caronc/apprise-api): the notification goes to
//! `POST /notify/KEY`, and the server sends it to the services stored under that key.

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text, truncate};
use serde_json::json;

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Apprise API: `apprise://[USER[:PASSWORD]@]HOST[:PORT][/PATH]/KEY` (`apprises://` for
/// HTTPS), Apprise's syntax: the last path part is the configuration key (or `?token=`,
/// `?to=`), the parts before it the server's own path.
///
/// - `POST [/PATH]/notify/KEY` with `title`, `body`, `type` (the notification's Apprise type)
///   and `format`, as a form (`method=form`, Apprise's default) or JSON (`method=json`).
/// - `tags=a,b` sends only to the services the server stores under one of those tags, as the
///   server's `tag` field (`a, b`: either).
/// - `USER:PASSWORD@` is basic authentication; `+Header=value` adds a header; `verify=no`
///   accepts any certificate.
/// - The server's own address, `http(s)://HOST[:PORT][/PATH]/notify/KEY`, is read as the same
///   channel, as Apprise reads it.
#[derive(Clone)]
pub struct AppriseApi {
    scheme: &'static str,
    /// `http(s)://HOST[:PORT][/PATH]/notify/KEY`.
    url: String,
    json: bool,
    tags: Vec<String>,
    headers: Vec<(String, String)>,
    markup: Markup,
    format: &'static str,
    verify_tls: bool,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for AppriseApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppriseApi")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The options Apprise 2.3 reads for Apprise API.
const OPTIONS: &[&str] = &["tags", "method", "to", "token"];

/// What an Apprise API server takes (Apprise's own limits for a title and a body), in
/// characters.
const TITLE_MAX: usize = 250;
const BODY_MAX: usize = 32_768;

/// A configuration key: 1 to 128 letters, digits, `_` and `-`.
fn is_key(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `s` percent-encoded as one path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl AppriseApi {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "apprises" {
            "apprises"
        } else {
            "apprise"
        };
        p.check_keys(raw, OPTIONS, &['+'], scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the Apprise API server is missing: {scheme}://HOST/KEY"),
            ));
        }
        let mut path = p.path.clone();
        let key = match (
            p.get("token").filter(|t| !t.is_empty()),
            p.get("to").filter(|t| !t.is_empty()),
        ) {
            (Some(t), _) | (None, Some(t)) => Some(t.to_owned()),
            (None, None) => path.pop(),
        };
        let Some(key) = key.filter(|k| is_key(k)) else {
            return Err(UrlError::new(
                raw,
                format!(
                    "the configuration key is missing or not 1 to 128 letters, digits, _ and -: \
                     {scheme}://HOST/KEY"
                ),
            ));
        };
        let json = match p.get("method").map(|m| m.trim().to_ascii_lowercase()) {
            None => false,
            Some(m) if m == "form" => false,
            Some(m) if m == "json" => true,
            Some(m) => {
                return Err(UrlError::new(
                    raw,
                    format!("method={m:?} is not form or json"),
                ));
            }
        };
        let (markup, format) = match p.get("format").map(|f| f.trim().to_ascii_lowercase()) {
            None => (Markup::Plain, "text"),
            Some(f) if f.is_empty() || f == "text" => (Markup::Plain, "text"),
            Some(f) if f == "markdown" => (Markup::Markdown, "markdown"),
            Some(f) if f == "html" => (Markup::Html, "html"),
            Some(f) => {
                return Err(UrlError::new(
                    raw,
                    format!("format={f:?} is not one of text, markdown, html"),
                ));
            }
        };
        let verify_tls = match p.get("verify").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "verify", v)?,
            None => true,
        };
        let http = if scheme == "apprises" {
            "https"
        } else {
            "http"
        };
        let port = p.port.map(|n| format!(":{n}")).unwrap_or_default();
        let prefix: String = path.iter().map(|s| format!("/{}", segment(s))).collect();
        let url = format!("{http}://{}{port}{prefix}/notify/{key}", p.host);
        let mut headers: Vec<(String, String)> = p
            .query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
            .collect();
        if let Some(user) = &p.user {
            use base64::Engine as _;
            let pass = p.password.clone().unwrap_or_default();
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            headers.push(("Authorization".to_owned(), format!("Basic {token}")));
        }
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&key);
        Ok(AppriseApi {
            scheme,
            url,
            json,
            tags: p
                .get("tags")
                .map(|t| split_list(t).map(str::to_owned).collect())
                .unwrap_or_default(),
            headers,
            markup,
            format,
            verify_tls,
            describe: format!("{scheme}://{}{port}/***", p.host),
            secrets,
        })
    }

    /// The fields the server reads: `title`, `body`, `type`, `format`, and `tag` when the URL
    /// names tags.
    fn fields(&self, n: &Notification) -> Vec<(&'static str, String)> {
        let body = render_text(
            n,
            &TextStyle {
                markup: self.markup,
                title: false,
                details: true,
                tail_lines: 20,
                limit: Limit::chars(BODY_MAX),
            },
        );
        let mut f = vec![
            ("title", truncate(&n.headline(), Limit::chars(TITLE_MAX))),
            ("body", body),
            ("type", n.apprise_type.clone()),
            ("format", self.format.to_owned()),
        ];
        if !self.tags.is_empty() {
            f.push(("tag", self.tags.join(", ")));
        }
        f
    }
}

impl Channel for AppriseApi {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let fields = self.fields(msg.notification);
        let (content_type, body) = if self.json {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect();
            (
                "application/json",
                serde_json::to_vec(&map).expect("a JSON value serialises"),
            )
        } else {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &fields {
                ser.append_pair(k, v);
            }
            (
                "application/x-www-form-urlencoded",
                ser.finish().into_bytes(),
            )
        };
        let mut headers = vec![
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Content-Type".to_owned(), content_type.to_owned()),
            // Apprise API refuses a message that has gone round too many servers; this one
            // starts its round here.
            ("X-Apprise-Recursion-Count".to_owned(), "1".to_owned()),
        ];
        headers.extend(self.headers.iter().cloned());
        Some(vec![HttpRequest {
            method: Method::Post,
            url: self.url.clone(),
            headers,
            body,
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o = crate::http::send_planned_checking(
                reqs,
                &self.describe,
                cx,
                self.verify_tls,
                classify,
            )
            .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

/// The server's answers: `200` delivered; `204` is how it says it holds no configuration under
/// the key (nothing was sent), which is permanent; `424` is how it says one or more of its
/// services failed, retried (delivery is at least once: the retry reaches every service
/// again); the rest as everywhere.
fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match status {
        204 => Outcome::permanent(
            "HTTP 204: the Apprise API server holds no configuration under this key",
        ),
        424 => Outcome::retry(format!(
            "HTTP 424: one or more of the Apprise API server's services failed: {}",
            crate::shorten(body.trim(), 200)
        )),
        _ => crate::default_classify(status, retry_after, body),
    }
}

/// An Apprise API server's address, `http(s)://HOST[:PORT][/PATH]/notify/KEY[/][?…]` (a key of
/// 1 to 32 letters, digits, `_` and `-`), read as Apprise reads it. `None` for any other
/// address.
pub(super) fn parse_address(raw: &str) -> Option<Result<AppriseApi, UrlError>> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    let secure = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return None;
    };
    let (hostpath, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (hostport, path) = hostpath.split_once('/')?;
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return None;
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let (prefix, key) = path.rsplit_once('/').map_or(("", path), |(a, b)| (a, b));
    let prefix = if prefix.eq_ignore_ascii_case("notify") {
        ""
    } else {
        let cut = prefix.len().checked_sub("/notify".len())?;
        // `get`: a cut inside a character is simply not `/notify`.
        if !prefix.get(cut..)?.eq_ignore_ascii_case("/notify") {
            return None;
        }
        prefix.get(..cut)?
    };
    if key.len() > 32 || !is_key(key) {
        return None;
    }
    let scheme = if secure { "apprises" } else { "apprise" };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    Some(
        AppriseApi::from_apprise(&format!("{scheme}://{hostport}{prefix}/{key}{query}")).map(
            |mut a| {
                a.secrets.add_url(raw);
                a
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_and_the_servers_path_are_read_as_apprise_reads_them() {
        let a = AppriseApi::from_apprise("apprises://u:p@relay.example.org:8443/base/path/K3Y")
            .unwrap();
        assert_eq!(a.url, "https://relay.example.org:8443/base/path/notify/K3Y");
        assert!(
            a.headers
                .iter()
                .any(|(k, v)| k == "Authorization" && v.starts_with("Basic "))
        );
        let a =
            AppriseApi::from_apprise("apprise://relay/base?to=K3Y&method=JSON&tags=a,b").unwrap();
        assert_eq!(a.url, "http://relay/base/notify/K3Y");
        assert!(a.json);
        assert_eq!(a.tags, ["a", "b"]);
        let a = AppriseApi::from_apprise("apprise://relay/ignored?token=T&+X-Team=ops").unwrap();
        assert_eq!(a.url, "http://relay/ignored/notify/T");
        assert_eq!(a.headers, [("X-Team".to_owned(), "ops".to_owned())]);
        assert_eq!(a.describe(), "apprise://relay/***");
    }

    #[test]
    fn bad_urls_are_refused_without_the_key() {
        for (url, what) in [
            ("apprise://relay", "configuration key"),
            ("apprise://relay/T0PS3CR3T?method=xml", "method=\"xml\""),
            ("apprise://relay/T0PS3CR3T?format=rtf", "format=\"rtf\""),
            ("apprise://relay/T0P.S3CR3T", "configuration key"),
            ("apprise://relay/T0PS3CR3T?tag=ops", "unknown option"),
        ] {
            let e = AppriseApi::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn the_servers_address_is_read_as_the_relay() {
        let a = parse_address("https://relay.example.org/notify/abc_123/?tags=ops")
            .unwrap()
            .unwrap();
        assert_eq!(a.url, "https://relay.example.org/notify/abc_123");
        assert_eq!(a.tags, ["ops"]);
        let a = parse_address("http://relay:8000/sub/dir/notify/k")
            .unwrap()
            .unwrap();
        assert_eq!(a.url, "http://relay:8000/sub/dir/notify/k");
        for raw in [
            "https://relay.example.org/notify/",
            "https://relay.example.org/hook/abc",
            "https://relay.example.org/notifyx/abc",
            "https://relay.example.org/xnotify/abc",
            "https://relay.example.org/notify/a.b",
            "https://relay.example.org/notify/abcdefghijklmnopqrstuvwxyz0123456",
            "https://relay.example.org/caf\u{e9}s\u{e9}/abc",
            "https://relay.example.org/\u{e9}\u{e9}\u{e9}\u{e9}/abc",
            "mailto://relay/notify/abc",
        ] {
            assert!(parse_address(raw).is_none(), "{raw}");
        }
    }
}
