use base64::Engine as _;
use serde_json::Value;

use belfry_core::Notification;

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
        if self.payload_edits.is_empty() {
            return sorted_json(msg.notification);
        }
        edited_json(msg.notification, &self.payload_edits)
    }
}

/// The notification's JSON with its keys in order at every level, as [`edited_json`] (through a
/// `serde_json::Value`, whose maps are sorted) writes it with no edits: the same bytes, written
/// straight from the fields, without building the value's strings and map first. A webhook with
/// no payload edits, the common case, posts this.
///
/// The keys are written in byte order by hand; the nested objects (a digest, attachments) go
/// through a `Value`, as they are rare. The tests compare it with [`edited_json`] for a
/// notification with every field set, so a field added to `Notification` and not here fails
/// them.
fn sorted_json(n: &Notification) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    // `,"key":value` (`{` instead of the comma for the first).
    macro_rules! field {
        ($key:literal, $value:expr) => {{
            out.push(if out.is_empty() { b'{' } else { b',' });
            out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
            serde_json::to_writer(&mut out, $value).expect("a notification field serialises");
        }};
    }
    // A nested object, through a `Value` for its sorted keys.
    macro_rules! nested {
        ($key:literal, $value:expr) => {{
            let v = serde_json::to_value($value).expect("a notification field serialises");
            field!($key, &v);
        }};
    }
    if !n.attachments.is_empty() {
        nested!("attachments", &n.attachments);
    }
    if let Some(backtrace) = &n.backtrace {
        field!("backtrace", backtrace);
    }
    field!("consecutive_problems", &n.consecutive_problems);
    if let Some(digest) = &n.digest {
        nested!("digest", digest);
    }
    field!("duration_seconds", &n.duration_seconds);
    field!("error", &n.error);
    field!("exit_code", &n.exit_code);
    if !n.fields.is_empty() {
        // A BTreeMap: its keys are in order already.
        field!("fields", &n.fields);
    }
    field!("host", &n.host);
    field!("id", &n.id);
    field!("job", &n.job);
    field!("kind", &n.kind);
    field!("message", &n.message);
    field!("output_tail", &n.output_tail);
    field!("previous_state", &n.previous_state);
    field!("reason", &n.reason);
    field!("reason_text", &n.reason_text);
    field!("run_id", &n.run_id);
    field!("signal", &n.signal);
    field!("started_at", &n.started_at);
    field!("state", &n.state);
    field!("time", &n.time);
    field!("title", &n.title);
    field!("type", &n.apprise_type);
    field!("version", &n.version);
    out.push(b'}');
    out
}

/// The notification's JSON through a `serde_json::Value` (keys sorted at every level), with a
/// webhook's payload edits applied: a field renamed, removed, or added.
fn edited_json(n: &Notification, payload_edits: &[(String, String)]) -> Vec<u8> {
    let mut v = serde_json::to_value(n).expect("a notification serialises");
    if let Value::Object(map) = &mut v {
        for (key, val) in payload_edits {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use belfry_core::{Attachment, Digest, DigestCount, Kind, SCHEMA_VERSION, State, Timestamp};

    use super::*;

    /// A notification with every field set (a struct literal, so that a new field must be
    /// added here, and then to `sorted_json`, or this fails to compile or to compare).
    fn full() -> Notification {
        let at = Timestamp::from_millis(1_764_000_000_123);
        Notification {
            version: SCHEMA_VERSION,
            id: "01J-\"quoted\"-id".to_owned(),
            kind: Kind::Problem,
            job: "nightly/backup ünïcode \u{1F514}".to_owned(),
            state: State::Retrying {
                attempt: 2,
                next_at: at,
            },
            previous_state: Some(State::Ok),
            reason: "changed".to_owned(),
            reason_text: "it was OK, now it is not\n\ttabbed \\ backslash".to_owned(),
            title: "nightly: Failed".to_owned(),
            message: "exit code 1 after 2.3s on db1; \u{7} bell".to_owned(),
            apprise_type: "failure".to_owned(),
            exit_code: Some(-1),
            signal: Some(9),
            duration_seconds: Some(2.300_000_000_000_000_3),
            host: Some("db1".to_owned()),
            run_id: Some("run-1".to_owned()),
            started_at: Some(at.add_millis(-2300)),
            time: at,
            consecutive_problems: 3,
            error: Some("boom </script>".to_owned()),
            output_tail: Some("line 1\nline 2\r\n".to_owned()),
            backtrace: Some("at main.rs:1".to_owned()),
            fields: BTreeMap::from([
                ("zeta".to_owned(), "last".to_owned()),
                ("alpha \"q\"".to_owned(), "first".to_owned()),
            ]),
            digest: Some(Digest {
                count: 4,
                states: vec![DigestCount {
                    state: State::Failed,
                    count: 4,
                }],
                first: at.add_millis(-60_000),
                first_error: Some("earlier".to_owned()),
            }),
            attachments: vec![Attachment::new("dir/out.txt", b"hello".to_vec())],
        }
    }

    #[test]
    fn the_direct_body_is_the_sorted_value_byte_for_byte() {
        let full = full();
        let mut bare = full.clone();
        bare.previous_state = None;
        bare.exit_code = None;
        bare.signal = None;
        bare.duration_seconds = Some(f64::NAN);
        bare.host = None;
        bare.run_id = None;
        bare.started_at = None;
        bare.error = None;
        bare.output_tail = None;
        bare.backtrace = None;
        bare.fields.clear();
        bare.digest = None;
        bare.attachments.clear();
        for n in [&full, &bare] {
            let direct = sorted_json(n);
            let through_value = edited_json(n, &[]);
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&through_value)
            );
            let back: Notification = serde_json::from_slice(&direct).unwrap();
            assert_eq!(back.job, n.job);
        }
        let text = String::from_utf8(sorted_json(&full)).unwrap();
        assert!(text.starts_with("{\"attachments\":[{\"base64\":"), "{text}");
        assert!(
            text.ends_with(&format!(",\"version\":{SCHEMA_VERSION}}}")),
            "{text}"
        );
        let bare_text = String::from_utf8(sorted_json(&bare)).unwrap();
        assert!(
            bare_text.contains("\"duration_seconds\":null"),
            "{bare_text}"
        );
        assert!(!bare_text.contains("digest") && !bare_text.contains("fields"));
    }

    #[test]
    fn a_webhook_with_payload_edits_still_applies_them() {
        let hook =
            JsonWebhook::from_apprise("json://127.0.0.1:9/x?:title=headline&:host=&:extra=1")
                .unwrap();
        let n = full();
        let msg = Message {
            notification: &n,
            idempotency_key: "k",
        };
        let v: Value = serde_json::from_slice(&hook.body(&msg)).unwrap();
        assert_eq!(v["headline"], "nightly: Failed");
        assert!(v.get("title").is_none() && v.get("host").is_none());
        assert_eq!(v["extra"], "1");
        let plain = JsonWebhook::from_apprise("json://127.0.0.1:9/x").unwrap();
        assert_eq!(plain.body(&msg), edited_json(&n, &[]));
    }
}
