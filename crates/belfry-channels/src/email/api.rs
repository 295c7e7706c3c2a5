//! E-mail through the HTTP APIs of mail services, in Apprise's syntax: Mailgun (`mailgun://`),
//! Postmark (`postmark://`), SparkPost (`sparkpost://`), Resend (`resend://`) and Brevo
//! (`brevo://`). Each sends one request that carries every recipient, the plain-text and HTML
//! bodies of [`belfry_core::email::render`], and the attachments (the whole output, gzipped,
//! when the bodies show only its end; files given to `belfry send --attach`).

use base64::Engine as _;
use lettre::message::Mailbox;
use serde_json::{Value, json};

use super::mail::{self, mailbox, split_addresses};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Which service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Mailgun,
    Postmark,
    SparkPost,
    Resend,
    Brevo,
}

impl Service {
    /// The service for a scheme of [`SCHEMES`].
    fn of(scheme: &str) -> Option<Service> {
        Some(match scheme {
            "mailgun" => Service::Mailgun,
            "postmark" => Service::Postmark,
            "sparkpost" => Service::SparkPost,
            "resend" => Service::Resend,
            "brevo" => Service::Brevo,
            _ => return None,
        })
    }

    fn scheme(self) -> &'static str {
        match self {
            Service::Mailgun => "mailgun",
            Service::Postmark => "postmark",
            Service::SparkPost => "sparkpost",
            Service::Resend => "resend",
            Service::Brevo => "brevo",
        }
    }

    /// Its URL's shape, for errors.
    fn shape(self) -> &'static str {
        match self {
            Service::Mailgun => "mailgun://USER@DOMAIN/APIKEY[/to@…]",
            Service::SparkPost => "sparkpost://USER@DOMAIN/APIKEY[/to@…]",
            Service::Postmark => "postmark://APIKEY:from@example.com[/to@…]",
            Service::Resend => "resend://APIKEY:from@example.com[/to@…]",
            Service::Brevo => "brevo://APIKEY:from@example.com[/to@…]",
        }
    }

    /// The query options Apprise reads for it, and the key prefixes it takes.
    fn options(self) -> (&'static [&'static str], &'static [char]) {
        match self {
            Service::Mailgun => (
                &["to", "cc", "bcc", "from", "name", "region", "batch"],
                &['+'],
            ),
            Service::SparkPost => (&["to", "cc", "bcc", "name", "region", "batch"], &['+']),
            Service::Postmark => (&["to", "cc", "bcc", "name", "reply"], &[]),
            Service::Resend => (&["to", "cc", "bcc", "from", "name", "reply", "apikey"], &[]),
            Service::Brevo => (&["to", "cc", "bcc", "reply"], &[]),
        }
    }
}

/// The schemes of these services.
pub(crate) const SCHEMES: &[&str] = &["mailgun", "postmark", "sparkpost", "resend", "brevo"];

/// A mail service's API (see the module's documentation).
///
/// - Mailgun and SparkPost: `USER@DOMAIN` is the sender, the first path segment the API key,
///   the rest recipients; `region=eu` uses the EU API.
/// - Postmark, Resend and Brevo: the user is the API key, `password@host` the sender.
/// - Recipients: the path's addresses and `to=` (with none, the sender); `cc=`, `bcc=`,
///   `reply=` (where the service takes one), `name=` for the sender's name (default
///   `belfry`); Mailgun's and SparkPost's `+Header=value` become headers of the message.
/// - `batch=` is accepted for Apprise's sake and changes nothing: one request carries every
///   recipient, as one message.
#[derive(Clone)]
pub struct MailApi {
    service: Service,
    pub(crate) base: String,
    api_key: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply: Option<Mailbox>,
    headers: Vec<(String, String)>,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for MailApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailApi")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl MailApi {
    /// Reads `raw`, whose lowercase scheme is one of [`SCHEMES`].
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let service = Service::of(&p.scheme)
            .ok_or_else(|| UrlError::new(raw, "not a mail service's scheme"))?;
        let (known, prefixes) = service.options();
        p.check_keys(raw, known, prefixes, service.scheme())?;
        let shape = service.shape();
        let mut path: Vec<String> = p.path.clone();
        let (api_key, from_text) = match service {
            Service::Mailgun | Service::SparkPost => {
                let key = if path.is_empty() {
                    String::new()
                } else {
                    path.remove(0)
                };
                let user = p.user.clone().unwrap_or_default();
                let from = match p.get("from").filter(|f| !f.is_empty()) {
                    Some(f) => f.to_owned(),
                    None if user.is_empty() || p.host.is_empty() => String::new(),
                    None => format!("{user}@{}", p.host),
                };
                (key, from)
            }
            Service::Postmark | Service::Resend | Service::Brevo => {
                let key = p
                    .get("apikey")
                    .map(str::to_owned)
                    .or(p.user.clone())
                    .unwrap_or_default();
                let from = match p.get("from").filter(|f| !f.is_empty()) {
                    Some(f) => f.to_owned(),
                    None => match &p.password {
                        Some(user) if !user.is_empty() && !p.host.is_empty() => {
                            format!("{user}@{}", p.host)
                        }
                        _ => String::new(),
                    },
                };
                (key, from)
            }
        };
        if !key_ok(&api_key) {
            return Err(UrlError::new(
                raw,
                format!("the API key is missing or not letters, digits, '.', '_' and '-': {shape}"),
            ));
        }
        if from_text.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the sender is missing: {shape}"),
            ));
        }
        let mut from = mailbox(raw, "the sender", &from_text)?;
        if from.name.is_none() {
            from.name = Some(
                p.get("name")
                    .filter(|n| !n.is_empty())
                    .unwrap_or("belfry")
                    .to_owned(),
            );
        }
        let list = |key: &str| -> Result<Vec<Mailbox>, UrlError> {
            let mut out = Vec::new();
            for a in p.get(key).map(split_addresses).unwrap_or_default() {
                out.push(mailbox(raw, key, &a)?);
            }
            Ok(out)
        };
        let mut to = Vec::new();
        for seg in &path {
            for a in split_addresses(seg) {
                to.push(mailbox(raw, "recipient", &a)?);
            }
        }
        to.extend(list("to")?);
        if to.is_empty() {
            let mut me = from.clone();
            me.name = None;
            to.push(me);
        }
        let cc = list("cc")?;
        let bcc = list("bcc")?;
        let reply = list("reply")?.into_iter().next();
        let base = match (
            service,
            p.get("region").map(str::to_ascii_lowercase).as_deref(),
        ) {
            (Service::Mailgun, None | Some("" | "us")) => "https://api.mailgun.net/v3",
            (Service::Mailgun, Some("eu")) => "https://api.eu.mailgun.net/v3",
            (Service::SparkPost, None | Some("" | "us")) => "https://api.sparkpost.com/api/v1",
            (Service::SparkPost, Some("eu")) => "https://api.eu.sparkpost.com/api/v1",
            (Service::Mailgun | Service::SparkPost, Some(other)) => {
                return Err(UrlError::new(
                    raw,
                    format!("region={other:?} is not us or eu"),
                ));
            }
            (Service::Postmark, _) => "https://api.postmarkapp.com",
            (Service::Resend, _) => "https://api.resend.com",
            (Service::Brevo, _) => "https://api.brevo.com/v3",
        };
        if let Some(b) = p.get("batch") {
            crate::url_parts::parse_bool(raw, "batch", b)?;
        }
        let headers = p
            .query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
            .collect();
        let describe = format!(
            "{}://***:{}/{}",
            service.scheme(),
            from.email,
            to.iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
                .join("/")
        );
        Ok(MailApi {
            service,
            base: base.to_owned(),
            api_key,
            from,
            to,
            cc,
            bcc,
            reply,
            headers,
            describe,
            secrets: Secrets::of_url(raw),
        })
    }

    /// The sender's domain (Mailgun's sending domain).
    fn domain(&self) -> String {
        self.from.email.domain().to_owned()
    }

    fn request(&self, msg: &Message<'_>) -> HttpRequest {
        let n = msg.notification;
        let r = mail::render(n);
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let emails = |v: &[Mailbox]| v.iter().map(|m| m.email.to_string()).collect::<Vec<_>>();
        let json_body = |v: Value| serde_json::to_vec(&v).expect("a JSON value serialises");
        let from_name = self.from.name.clone().unwrap_or_default();
        let from_email = self.from.email.to_string();
        match self.service {
            Service::Mailgun => {
                let mut form = Multipart::new(msg.idempotency_key);
                form.field("from", &self.from.to_string());
                form.field("to", &emails(&self.to).join(","));
                if !self.cc.is_empty() {
                    form.field("cc", &emails(&self.cc).join(","));
                }
                if !self.bcc.is_empty() {
                    form.field("bcc", &emails(&self.bcc).join(","));
                }
                form.field("subject", &r.subject);
                form.field("text", &r.text);
                form.field("html", &r.html);
                form.field("h:X-Belfry-Job", &n.job);
                for (k, v) in &self.headers {
                    form.field(&format!("h:{k}"), v);
                }
                for a in &r.attachments {
                    form.file("attachment", &a.file_name, &a.content_type, &a.data);
                }
                let (content_type, body) = form.finish();
                HttpRequest {
                    method: Method::Post,
                    url: format!("{}/{}/messages", self.base, self.domain()),
                    headers: vec![
                        (
                            "Authorization".to_owned(),
                            format!("Basic {}", b64(format!("api:{}", self.api_key).as_bytes())),
                        ),
                        ("Content-Type".to_owned(), content_type),
                    ],
                    body,
                }
            }
            Service::Postmark => {
                let mut v = json!({
                    "From": self.from.to_string(),
                    "To": emails(&self.to).join(","),
                    "Subject": r.subject,
                    "TextBody": r.text,
                    "HtmlBody": r.html,
                    "MessageStream": "outbound",
                    "Headers": [{"Name": "X-Belfry-Job", "Value": n.job}],
                });
                if !self.cc.is_empty() {
                    v["Cc"] = json!(emails(&self.cc).join(","));
                }
                if !self.bcc.is_empty() {
                    v["Bcc"] = json!(emails(&self.bcc).join(","));
                }
                if let Some(rt) = &self.reply {
                    v["ReplyTo"] = json!(rt.email.to_string());
                }
                if !r.attachments.is_empty() {
                    v["Attachments"] = r
                        .attachments
                        .iter()
                        .map(|a| json!({"Name": a.file_name, "Content": b64(&a.data), "ContentType": a.content_type}))
                        .collect();
                }
                HttpRequest {
                    method: Method::Post,
                    url: format!("{}/email", self.base),
                    headers: vec![
                        ("X-Postmark-Server-Token".to_owned(), self.api_key.clone()),
                        ("Accept".to_owned(), "application/json".to_owned()),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                    ],
                    body: json_body(v),
                }
            }
            Service::SparkPost => {
                // Cc and Bcc are recipients whose `header_to` names the To list; the Cc list is
                // shown through the message's own `CC` header.
                let to_header = emails(&self.to).join(",");
                let mut recipients: Vec<Value> = self
                    .to
                    .iter()
                    .map(|m| json!({"address": {"email": m.email.to_string()}}))
                    .collect();
                for m in self.cc.iter().chain(&self.bcc) {
                    recipients.push(
                        json!({"address": {"email": m.email.to_string(), "header_to": to_header}}),
                    );
                }
                let mut headers = serde_json::Map::new();
                headers.insert("X-Belfry-Job".into(), json!(n.job));
                if !self.cc.is_empty() {
                    headers.insert("CC".into(), json!(emails(&self.cc).join(",")));
                }
                for (k, val) in &self.headers {
                    headers.insert(k.clone(), json!(val));
                }
                let mut content = json!({
                    "from": {"email": from_email, "name": from_name},
                    "subject": r.subject,
                    "text": r.text,
                    "html": r.html,
                    "headers": headers,
                });
                if !r.attachments.is_empty() {
                    content["attachments"] = r
                        .attachments
                        .iter()
                        .map(|a| json!({"name": a.file_name, "type": a.content_type, "data": b64(&a.data)}))
                        .collect();
                }
                HttpRequest {
                    method: Method::Post,
                    url: format!("{}/transmissions", self.base),
                    headers: vec![
                        ("Authorization".to_owned(), self.api_key.clone()),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                    ],
                    body: json_body(json!({"recipients": recipients, "content": content})),
                }
            }
            Service::Resend => {
                let mut v = json!({
                    "from": self.from.to_string(),
                    "to": emails(&self.to),
                    "subject": r.subject,
                    "text": r.text,
                    "html": r.html,
                    "headers": {"X-Belfry-Job": n.job},
                });
                if !self.cc.is_empty() {
                    v["cc"] = json!(emails(&self.cc));
                }
                if !self.bcc.is_empty() {
                    v["bcc"] = json!(emails(&self.bcc));
                }
                if let Some(rt) = &self.reply {
                    v["reply_to"] = json!(rt.email.to_string());
                }
                if !r.attachments.is_empty() {
                    v["attachments"] = r
                        .attachments
                        .iter()
                        .map(|a| json!({"filename": a.file_name, "content": b64(&a.data)}))
                        .collect();
                }
                HttpRequest {
                    method: Method::Post,
                    url: format!("{}/emails", self.base),
                    headers: vec![
                        (
                            "Authorization".to_owned(),
                            format!("Bearer {}", self.api_key),
                        ),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                        // Resend drops a second request with the same key (24 hours).
                        ("Idempotency-Key".to_owned(), msg.idempotency_key.to_owned()),
                    ],
                    body: json_body(v),
                }
            }
            Service::Brevo => {
                let people = |v: &[Mailbox]| -> Vec<Value> {
                    v.iter()
                        .map(|m| json!({"email": m.email.to_string()}))
                        .collect()
                };
                let mut v = json!({
                    "sender": {"email": from_email, "name": from_name},
                    "to": people(&self.to),
                    "subject": r.subject,
                    "textContent": r.text,
                    "htmlContent": r.html,
                    "headers": {"X-Belfry-Job": n.job},
                });
                if !self.cc.is_empty() {
                    v["cc"] = json!(people(&self.cc));
                }
                if !self.bcc.is_empty() {
                    v["bcc"] = json!(people(&self.bcc));
                }
                if let Some(rt) = &self.reply {
                    v["replyTo"] = json!({"email": rt.email.to_string()});
                }
                if !r.attachments.is_empty() {
                    v["attachment"] = r
                        .attachments
                        .iter()
                        .map(|a| json!({"name": a.file_name, "content": b64(&a.data)}))
                        .collect();
                }
                HttpRequest {
                    method: Method::Post,
                    url: format!("{}/smtp/email", self.base),
                    headers: vec![
                        ("api-key".to_owned(), self.api_key.clone()),
                        ("Accept".to_owned(), "application/json".to_owned()),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                    ],
                    body: json_body(v),
                }
            }
        }
    }
}

/// A `multipart/form-data` body (RFC 7578), for Mailgun's API. The parts are kept until
/// [`Multipart::finish`], which chooses a boundary that occurs in none of them.
struct Multipart {
    seed: String,
    /// Each part's `Content-Disposition` (and `Content-Type`) lines, and its bytes.
    parts: Vec<(String, Vec<u8>)>,
}

impl Multipart {
    /// A body whose boundary is made from `seed` (the idempotency key: the same notification
    /// gives the same bytes).
    fn new(seed: &str) -> Self {
        Multipart {
            seed: seed
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(24)
                .collect(),
            parts: Vec::new(),
        }
    }

    fn field(&mut self, name: &str, value: &str) {
        self.parts.push((
            format!("Content-Disposition: form-data; name=\"{}\"", quote(name)),
            value.as_bytes().to_vec(),
        ));
    }

    fn file(&mut self, name: &str, file_name: &str, content_type: &str, data: &[u8]) {
        self.parts.push((
            format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}",
                quote(name),
                quote(file_name),
                quote(content_type)
            ),
            data.to_vec(),
        ));
    }

    /// The `Content-Type` header and the body.
    fn finish(self) -> (String, Vec<u8>) {
        let mut boundary = format!("belfry-{}-7f3a9c", self.seed);
        while self
            .parts
            .iter()
            .any(|(_, data)| contains(data, boundary.as_bytes()))
        {
            boundary.push('x');
        }
        let mut body = Vec::new();
        for (head, data) in &self.parts {
            body.extend_from_slice(b"--");
            body.extend_from_slice(boundary.as_bytes());
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(head.as_bytes());
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"--\r\n");
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}

/// A name in a `Content-Disposition` quoted string: quotes and line breaks escaped.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Channel for MailApi {
    fn scheme(&self) -> &'static str {
        self.service.scheme()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![self.request(msg)])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o =
                crate::http::send_planned(reqs, &self.describe, cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_keys_and_recipients_are_read_per_service() {
        let m = MailApi::from_apprise("mailgun://alerts@mg.example.com/key-abc123/ops@example.org?region=eu&cc=lead@example.org")
            .unwrap();
        assert_eq!(m.api_key, "key-abc123");
        assert_eq!(m.from.email.to_string(), "alerts@mg.example.com");
        assert_eq!(m.base, "https://api.eu.mailgun.net/v3");
        assert_eq!(m.to[0].email.to_string(), "ops@example.org");
        assert_eq!(m.cc[0].email.to_string(), "lead@example.org");
        let p = MailApi::from_apprise("postmark://SERVERTOKEN:alerts@example.com").unwrap();
        assert_eq!(p.api_key, "SERVERTOKEN");
        assert_eq!(p.from.email.to_string(), "alerts@example.com");
        assert_eq!(
            p.to[0].email.to_string(),
            "alerts@example.com",
            "none given: the sender"
        );
        assert_eq!(
            p.describe(),
            "postmark://***:alerts@example.com/alerts@example.com"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_key() {
        for (raw, says) in [
            ("mailgun://alerts@mg.example.com", "API key is missing"),
            ("resend://SECRETKEY@example.com", "sender is missing"),
            (
                "brevo://SECRETKEY:alerts@example.com/nope",
                "recipient \"nope\"",
            ),
            (
                "sparkpost://a@example.com/SECRETKEY?region=mars",
                "region=\"mars\"",
            ),
            (
                "postmark://SECRETKEY:alerts@example.com?colour=red",
                "colour",
            ),
            (
                "brevo://SECRETKEY:alerts@example.com?+X-Team=ops",
                "+X-Team",
            ),
        ] {
            let e = MailApi::from_apprise(raw).unwrap_err().to_string();
            assert!(e.contains(says), "{raw}: {e}");
            assert!(!e.contains("SECRETKEY"), "{e}");
        }
    }

    #[test]
    fn a_multipart_boundary_never_occurs_in_a_part() {
        let mut m = Multipart::new("n-1:ops");
        let b = "belfry-n1ops-7f3a9c";
        m.field("subject", "first");
        m.field("text", &format!("look: --{b} inside"));
        let (ct, body) = m.finish();
        let boundary = ct.split("boundary=").nth(1).unwrap();
        assert_ne!(boundary, b);
        let text = String::from_utf8(body).unwrap();
        // Two parts and the closing delimiter, nothing else.
        assert_eq!(text.matches(&format!("--{boundary}")).count(), 3, "{text}");
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
