use base64::Engine as _;
use serde_json::Value;

use crate::secrets::Secrets;
use crate::url_parse::{APPRISE_GLOBAL_OPTIONS, UrlError, decode, query_pairs, redact_url};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Posts belfry's notification JSON (the [`belfry_core::Notification`] schema) to a web
/// address.
///
/// From Apprise's `json://` / `jsons://` syntax: `user:password@` for HTTP basic auth,
/// `?+Header=value` adds a header, `?-name=value` a query parameter of the request,
/// `?:key=value` adds a payload field (or, if `key` is already a field, renames it to
/// `value`; an empty value removes it), `?method=PUT`, and `?verify=no` to accept any
/// certificate (a self-signed one) on `jsons://`. A plain `http(s)://` address is posted to as
/// it is, query included.
#[derive(Clone)]
pub struct JsonWebhook {
    scheme: &'static str,
    target: String,
    method: Method,
    headers: Vec<(String, String)>,
    payload_edits: Vec<(String, String)>,
    describe: String,
    /// Whether the server's certificate is checked (`verify=no` turns it off).
    verify_tls: bool,
    /// What may be secret in the URL, scrubbed from failure reasons (an error page may echo
    /// the request).
    secrets: Secrets,
}

impl std::fmt::Debug for JsonWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonWebhook")
            .field("url", &self.describe)
            .finish_non_exhaustive()
    }
}

impl JsonWebhook {
    /// `json://…` or `jsons://…`.
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let url = url::Url::parse(raw).map_err(|e| UrlError::new(raw, e.to_string()))?;
        let secure = url.scheme().eq_ignore_ascii_case("jsons");
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| UrlError::new(raw, "it has no host name"))?;
        let mut target = format!("{}://{host}", if secure { "https" } else { "http" });
        if let Some(port) = url.port() {
            target.push_str(&format!(":{port}"));
        }
        target.push_str(if url.path().is_empty() {
            "/"
        } else {
            url.path()
        });
        let mut hook = JsonWebhook {
            scheme: if secure { "jsons" } else { "json" },
            target: String::new(),
            method: Method::Post,
            headers: Vec::new(),
            payload_edits: Vec::new(),
            describe: redact_url(raw),
            verify_tls: true,
            secrets: Secrets::of_url(raw),
        };
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in query_pairs(raw) {
            if let Some(h) = k.strip_prefix('+') {
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    return Err(UrlError::new(raw, format!("bad header name {h:?}")));
                }
                hook.headers.push((h.to_owned(), v));
            } else if let Some(p) = k.strip_prefix('-') {
                params.push((p.to_owned(), v));
            } else if let Some(key) = k.strip_prefix(':') {
                hook.payload_edits.push((key.to_owned(), v));
            } else if k == "verify" {
                hook.verify_tls = crate::url_parts::parse_bool(raw, "verify", &v)?;
            } else if k == "method" {
                hook.method = Method::parse(&v).ok_or_else(|| {
                    UrlError::new(
                        raw,
                        format!(
                            "method={v:?} is not one of POST, PUT, PATCH, GET, DELETE, HEAD, \
                             OPTIONS, UPDATE"
                        ),
                    )
                })?;
            } else if !APPRISE_GLOBAL_OPTIONS.contains(&k.as_str()) {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "unknown option {k:?} (headers are written +Name=value, request \
                         parameters -name=value, payload fields :key=value)"
                    ),
                ));
            }
        }
        if !params.is_empty() {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                ser.append_pair(k, v);
            }
            target.push('?');
            target.push_str(&ser.finish());
        }
        hook.target = target;
        if !url.username().is_empty() || url.password().is_some() {
            hook.headers.insert(
                0,
                basic_auth(
                    &decode(url.username()),
                    &decode(url.password().unwrap_or("")),
                ),
            );
        }
        Ok(hook)
    }

    /// A plain `http://` or `https://` address.
    pub(crate) fn from_address(raw: &str) -> Result<Self, UrlError> {
        let mut url = url::Url::parse(raw).map_err(|e| UrlError::new(raw, e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::new(raw, "it has no host name"));
        }
        let mut headers = Vec::new();
        if !url.username().is_empty() || url.password().is_some() {
            headers.push(basic_auth(
                &decode(url.username()),
                &decode(url.password().unwrap_or("")),
            ));
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        url.set_fragment(None);
        let scheme = if url.scheme() == "https" {
            "https"
        } else {
            "http"
        };
        Ok(JsonWebhook {
            scheme,
            target: url.to_string(),
            method: Method::Post,
            headers,
            payload_edits: Vec::new(),
            describe: redact_url(raw),
            // A plain address is posted to as it is, query included: nothing in it is ours.
            verify_tls: true,
            secrets: Secrets::of_url(raw),
        })
    }

    fn body(&self, msg: &Message<'_>) -> Vec<u8> {
        let mut v = serde_json::to_value(msg.notification).expect("a notification serialises");
        if let Value::Object(map) = &mut v {
            for (key, val) in &self.payload_edits {
                match map.remove(key) {
                    Some(_) if val.is_empty() => {}
                    Some(existing) => {
                        map.insert(val.clone(), existing);
                    }
                    None => {
                        map.insert(key.clone(), Value::String(val.clone()));
                    }
                }
            }
        }
        serde_json::to_vec(&v).expect("a JSON value serialises")
    }
}

fn basic_auth(user: &str, pass: &str) -> (String, String) {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    ("Authorization".to_owned(), format!("Basic {token}"))
}

impl Channel for JsonWebhook {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Idempotency-Key".to_owned(), msg.idempotency_key.to_owned()),
        ];
        for (k, v) in &self.headers {
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        Some(vec![HttpRequest {
            method: self.method,
            url: self.target.clone(),
            headers,
            body: self.body(msg),
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
                crate::default_classify,
            )
            .await;
            self.secrets.scrub_outcome(o)
        })
    }
}
