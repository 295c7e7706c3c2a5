//! E-mail through SendGrid's v3 Mail Send API: Apprise's `sendgrid://` syntax.

use base64::Engine as _;
use lettre::message::Mailbox;
use serde_json::{Map, Value, json};

use super::mail::{self, mailbox, split_addresses};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

const API: &str = "https://api.sendgrid.com";

/// SendGrid: `sendgrid://APIKey:FromUser@FromDomain[/to@example.org…]?to=…&cc=…&bcc=…&template=…&+key=value`,
/// Apprise's syntax.
///
/// The sender is `FromUser@FromDomain` (a domain verified with SendGrid). Recipients are the
/// path's addresses and `to=` (with none, the sender). One request carries the plain-text and
/// HTML bodies of [`belfry_core::email::render`] and, when the output does not fit, the whole
/// output gzipped as an attachment. `template=d-…` sends through a dynamic template, whose data
/// are the notification's fields (`job`, `state`, `title`, `message`, …) and the URL's
/// `+key=value` pairs.
#[derive(Clone)]
pub struct SendGrid {
    pub(crate) base: String,
    api_key: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    template: Option<String>,
    template_data: Vec<(String, String)>,
    describe: String,
    /// What may be secret in the URL, scrubbed from failure reasons (an error page may echo
    /// the request).
    secrets: Secrets,
}

impl std::fmt::Debug for SendGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGrid")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

impl SendGrid {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["to", "cc", "bcc", "template"], &['+'], "sendgrid")?;
        let api_key = p.user.clone().unwrap_or_default();
        if api_key.is_empty()
            || !api_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(UrlError::new(
                raw,
                "the API key (the URL's user) must be letters, digits, '.', '_' and '-': \
                 sendgrid://APIKey:FromUser@FromDomain",
            ));
        }
        let from_user = p.password.clone().unwrap_or_default();
        if from_user.is_empty() || p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                "the sender is missing: sendgrid://APIKey:FromUser@FromDomain",
            ));
        }
        let from = mailbox(raw, "the sender", &format!("{from_user}@{}", p.host))?;
        let mut to = Vec::new();
        for seg in &p.path {
            for a in split_addresses(seg) {
                to.push(mailbox(raw, "recipient", &a)?);
            }
        }
        let list = |key: &str| -> Result<Vec<Mailbox>, UrlError> {
            let mut out = Vec::new();
            for a in p.get(key).map(split_addresses).unwrap_or_default() {
                out.push(mailbox(raw, key, &a)?);
            }
            Ok(out)
        };
        to.extend(list("to")?);
        if to.is_empty() {
            to.push(from.clone());
        }
        // SendGrid refuses a personalization that names an address twice.
        let mut seen: Vec<String> = Vec::new();
        let mut keep = |m: &Mailbox| {
            let a = m.email.to_string().to_ascii_lowercase();
            let fresh = !seen.contains(&a);
            seen.push(a);
            fresh
        };
        to.retain(&mut keep);
        let mut cc = list("cc")?;
        cc.retain(&mut keep);
        let mut bcc = list("bcc")?;
        bcc.retain(&mut keep);
        let template = p
            .get("template")
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let template_data = p
            .query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
            .collect();
        let describe = format!(
            "sendgrid://***:{}/{}",
            from.email,
            to.iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
                .join("/")
        );
        Ok(SendGrid {
            base: API.to_owned(),
            api_key,
            from,
            to,
            cc,
            bcc,
            template,
            template_data,
            describe,
            secrets: Secrets::of_url(raw),
        })
    }

    fn payload(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let r = mail::render(n);
        let addr = |m: &Mailbox| match &m.name {
            Some(name) => json!({"email": m.email.to_string(), "name": name}),
            None => json!({"email": m.email.to_string()}),
        };
        let mut person = Map::new();
        person.insert("to".into(), self.to.iter().map(addr).collect());
        if !self.cc.is_empty() {
            person.insert("cc".into(), self.cc.iter().map(addr).collect());
        }
        if !self.bcc.is_empty() {
            person.insert("bcc".into(), self.bcc.iter().map(addr).collect());
        }
        let mut from = addr(&self.from);
        if self.from.name.is_none() {
            from["name"] = json!("belfry");
        }
        let mut p = json!({
            "personalizations": [Value::Object(person)],
            "from": from,
            "subject": r.subject,
            // SendGrid wants text/plain before text/html.
            "content": [
                {"type": "text/plain", "value": r.text},
                {"type": "text/html", "value": r.html},
            ],
            "headers": {
                "X-Belfry-Job": n.job,
                "X-Belfry-State": n.state.name(),
                "X-Belfry-Kind": n.apprise_type,
            },
            "custom_args": {"belfry_idempotency_key": msg.idempotency_key},
        });
        if !r.attachments.is_empty() {
            p["attachments"] = r
                .attachments
                .iter()
                .map(|a| {
                    json!({
                        "content": base64::engine::general_purpose::STANDARD.encode(&a.data),
                        "type": a.content_type,
                        "filename": a.file_name,
                        "disposition": "attachment",
                    })
                })
                .collect();
        }
        if let Some(t) = &self.template {
            p["template_id"] = json!(t);
            let mut data = match serde_json::to_value(n) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in &self.template_data {
                data.insert(k.clone(), json!(v));
            }
            p["personalizations"][0]["dynamic_template_data"] = Value::Object(data);
        }
        p
    }
}

impl Channel for SendGrid {
    fn scheme(&self) -> &'static str {
        "sendgrid"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/v3/mail/send", self.base),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", self.api_key),
                ),
                ("Content-Type".to_owned(), "application/json".to_owned()),
            ],
            body: serde_json::to_vec(&self.payload(msg)).expect("a JSON value serialises"),
        }])
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
    fn the_sender_is_user_at_domain_and_recipients_default_to_it() {
        let s = SendGrid::from_apprise("sendgrid://SG.abc-123_x:alerts@example.com").unwrap();
        assert_eq!(s.from.email.to_string(), "alerts@example.com");
        assert_eq!(s.to.len(), 1);
        assert_eq!(s.to[0].email.to_string(), "alerts@example.com");
        let s = SendGrid::from_apprise(
            "sendgrid://key:alerts@example.com/a@x.org?to=b@y.org,a@x.org&cc=c@z.org&bcc=b@y.org",
        )
        .unwrap();
        let emails = |v: &[Mailbox]| v.iter().map(|m| m.email.to_string()).collect::<Vec<_>>();
        assert_eq!(emails(&s.to), ["a@x.org", "b@y.org"]);
        assert_eq!(emails(&s.cc), ["c@z.org"]);
        assert!(s.bcc.is_empty(), "an address already in To is not repeated");
        assert_eq!(
            s.describe(),
            "sendgrid://***:alerts@example.com/a@x.org/b@y.org"
        );
    }

    #[test]
    fn bad_sendgrid_urls_say_what_is_wrong() {
        for (raw, needle) in [
            ("sendgrid://key%21:alerts@example.com", "API key"),
            ("sendgrid://SECRETKEY@example.com", "sender is missing"),
            (
                "sendgrid://SECRETKEY:alerts@example.com/nope",
                "recipient \"nope\"",
            ),
            (
                "sendgrid://SECRETKEY:alerts@example.com?cc=bad",
                "cc \"bad\"",
            ),
            (
                "sendgrid://SECRETKEY:alerts@example.com?colour=red",
                "colour",
            ),
        ] {
            let e = SendGrid::from_apprise(raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
            assert!(!e.contains("SECRETKEY"), "{e}");
        }
    }
}
