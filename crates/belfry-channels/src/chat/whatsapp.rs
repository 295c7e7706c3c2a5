//! WhatsApp through Meta's Cloud API, read with Apprise's syntax: a text or a template message
//! from a business phone number to each person or group.

use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::{Value, json};

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// WhatsApp: `whatsapp://TOKEN@FROM_PHONE_ID/TARGET[/TARGET…]`, or
/// `whatsapp://TEMPLATE:TOKEN@FROM_PHONE_ID/TARGET…` for a template message, Apprise's syntax
/// (`token=`, `template=`, `lang=` (`en_US` by default), `from=`/`source=`, `to=`). A target is
/// a phone number with its country code, or a group id (16 digits or more, `#` or `@g.us`
/// allowed).
///
/// Each target gets `POST https://graph.facebook.com/v21.0/FROM_PHONE_ID/messages` with the
/// token as bearer: `{"messaging_product": "whatsapp", "to": …, "recipient_type": …}` and
/// either `"type": "text"` with belfry's text (1,024 characters at most, Apprise's limit) or
/// `"type": "template"` naming the template and its language. A template's body parameters
/// come from `:N=text` (a fixed text for parameter N), `:body=N` (belfry's text) and
/// `:type=N` (the notification's Apprise type), in the order of N.
#[derive(Clone)]
pub struct WhatsApp {
    pub(crate) base: String,
    token: String,
    from: String,
    targets: Vec<String>,
    template: Option<(String, String)>,
    /// The template's body parameters in order: a fixed text, or `body` / `type`.
    params: Vec<Param>,
    secrets: Secrets,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Param {
    Text(String),
    Body,
    Type,
}

impl std::fmt::Debug for WhatsApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsApp")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

const TEXT_MAX: usize = 1_024;

fn digits(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
    {
        return None;
    }
    Some(s.chars().filter(char::is_ascii_digit).collect())
}

impl WhatsApp {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &["from", "source", "token", "template", "lang", "to"],
            &[':'],
            "whatsapp",
        )?;
        let q = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let (mut template, mut token) = match (&p.user, &p.password) {
            (Some(u), Some(pw)) if !pw.is_empty() => (Some(u.clone()), pw.clone()),
            (u, _) => (None, u.clone().unwrap_or_default()),
        };
        if let Some(t) = q("token") {
            token = t;
        }
        if let Some(t) = q("template") {
            template = Some(t);
        }
        let from = q("source").or(q("from")).unwrap_or(p.host.clone());
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UrlError::new(
                raw,
                "the access token is missing or not letters and digits: \
                 whatsapp://TOKEN@FROM_PHONE_ID/TARGET",
            ));
        }
        if from.is_empty() || !from.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UrlError::new(
                raw,
                "the sender's phone number id is missing or not digits: \
                 whatsapp://TOKEN@FROM_PHONE_ID/TARGET",
            ));
        }
        let template = match template {
            None => None,
            Some(t) if t.is_empty() || t.chars().any(char::is_whitespace) => {
                return Err(UrlError::new(
                    raw,
                    format!("template {t:?} is not a template name (no spaces)"),
                ));
            }
            Some(t) => {
                let lang = q("lang").unwrap_or_else(|| "en_US".to_owned());
                if lang
                    .chars()
                    .any(|c| c.is_ascii_digit() || c.is_whitespace())
                {
                    return Err(UrlError::new(
                        raw,
                        format!("lang={lang:?} is not a language code (en_US)"),
                    ));
                }
                Some((t, lang))
            }
        };
        let mut targets = Vec::new();
        let written = p
            .path
            .iter()
            .map(String::as_str)
            .chain(p.get("to").into_iter().flat_map(split_list));
        for t in written {
            let group = t.trim().trim_start_matches('#');
            let group = group
                .get(..group.len().saturating_sub(5))
                .filter(|_| group.to_ascii_lowercase().ends_with("@g.us"))
                .unwrap_or(group);
            match digits(t) {
                Some(d) if (10..=14).contains(&d.len()) => targets.push(format!("+{d}")),
                _ if group.len() >= 16 && group.bytes().all(|b| b.is_ascii_digit()) => {
                    targets.push(format!("#{group}"));
                }
                _ => {
                    return Err(UrlError::new(
                        raw,
                        format!(
                            "the target {t:?} is neither a phone number with its country code \
                             (10 to 14 digits) nor a group id (16 digits or more)"
                        ),
                    ));
                }
            }
        }
        if targets.is_empty() {
            return Err(UrlError::new(
                raw,
                "no one to message: whatsapp://TOKEN@FROM_PHONE_ID/+PHONE",
            ));
        }
        let mut indexed: Vec<(u32, Param)> = Vec::new();
        for (k, v) in &p.query {
            let Some(key) = k.strip_prefix(':') else {
                continue;
            };
            let index = |s: &str| s.parse::<u32>().ok().filter(|n| *n >= 1);
            let (i, param) = match (index(key), key.to_ascii_lowercase().as_str()) {
                (Some(i), _) => (i, Param::Text(v.clone())),
                (None, m @ ("body" | "type")) => match index(v) {
                    Some(i) => (
                        i,
                        if m == "body" {
                            Param::Body
                        } else {
                            Param::Type
                        },
                    ),
                    None => {
                        return Err(UrlError::new(
                            raw,
                            format!(":{key}={v:?}: the value must be a parameter number (1, 2, …)"),
                        ));
                    }
                },
                _ => {
                    return Err(UrlError::new(
                        raw,
                        format!(":{key}= is not a template parameter (a number, body or type)"),
                    ));
                }
            };
            if indexed.iter().any(|(j, _)| *j == i) {
                return Err(UrlError::new(
                    raw,
                    format!("template parameter {i} is given twice"),
                ));
            }
            indexed.push((i, param));
        }
        if !indexed.is_empty() && template.is_none() {
            return Err(UrlError::new(
                raw,
                "template parameters (:N=…) need a template: whatsapp://TEMPLATE:TOKEN@…",
            ));
        }
        indexed.sort_by_key(|(i, _)| *i);
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&token);
        Ok(WhatsApp {
            base: "https://graph.facebook.com".to_owned(),
            token,
            from,
            targets,
            template,
            params: indexed.into_iter().map(|(_, p)| p).collect(),
            secrets,
        })
    }

    fn message(&self, n: &belfry_core::Notification, to: &str) -> Value {
        let text = || {
            render_text(
                n,
                &TextStyle {
                    markup: Markup::Plain,
                    title: true,
                    details: true,
                    tail_lines: 10,
                    limit: Limit::chars(TEXT_MAX),
                },
            )
        };
        let (to, kind) = match to.strip_prefix('#') {
            Some(g) => (format!("{g}@g.us"), "group"),
            None => (to.to_owned(), "individual"),
        };
        let mut v = json!({"messaging_product": "whatsapp", "to": to, "recipient_type": kind});
        match &self.template {
            None => {
                v["type"] = json!("text");
                v["text"] = json!({ "body": text() });
            }
            Some((name, lang)) => {
                v["type"] = json!("template");
                v["template"] = json!({"name": name, "language": {"code": lang}});
                if !self.params.is_empty() {
                    let params: Vec<Value> = self
                        .params
                        .iter()
                        .map(|p| {
                            let t = match p {
                                Param::Text(t) => t.clone(),
                                Param::Body => text(),
                                Param::Type => n.apprise_type.clone(),
                            };
                            json!({"type": "text", "text": t})
                        })
                        .collect();
                    v["template"]["components"] = json!([{"type": "body", "parameters": params}]);
                }
            }
        }
        v
    }
}

impl Channel for WhatsApp {
    fn scheme(&self) -> &'static str {
        "whatsapp"
    }

    fn describe(&self) -> String {
        let n = self.targets.len();
        format!(
            "whatsapp://***@{}/{n} target{}",
            self.from,
            if n == 1 { "" } else { "s" }
        )
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(
            self.targets
                .iter()
                .map(|to| HttpRequest {
                    method: Method::Post,
                    url: format!("{}/v21.0/{}/messages", self.base, self.from),
                    headers: vec![
                        ("Accept".to_owned(), "application/json".to_owned()),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                        ("Authorization".to_owned(), format!("Bearer {}", self.token)),
                    ],
                    body: serde_json::to_vec(&self.message(msg.notification, to))
                        .expect("a JSON value serialises"),
                })
                .collect(),
        )
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let describe = self.describe();
            let o = crate::http::send_planned(reqs, &describe, cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_templates_and_parameters_are_read_as_apprise_reads_them() {
        let w = WhatsApp::from_apprise(
            "whatsapp://T0K3N@1234567890/+1 555 123 4567/1234567890123456@g.us?to=%231234567890123457",
        )
        .unwrap();
        assert_eq!(
            w.targets,
            ["+15551234567", "#1234567890123456", "#1234567890123457"]
        );
        assert!(w.template.is_none());
        let w = WhatsApp::from_apprise(
            "whatsapp://alert_tpl:T0K3N@1234567890/15551234567?lang=de&:2=fixed&:body=1&:type=3",
        )
        .unwrap();
        assert_eq!(w.template, Some(("alert_tpl".to_owned(), "de".to_owned())));
        assert_eq!(
            w.params,
            [Param::Body, Param::Text("fixed".to_owned()), Param::Type]
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_token() {
        for (url, what) in [
            ("whatsapp://S3CR3T@1234567890", "no one to message"),
            ("whatsapp://S3CR3T@12ab/15551234567", "phone number id"),
            ("whatsapp://S3CR3T@1234567890/42", "the target \"42\""),
            (
                "whatsapp://S3CR3T@1234567890/15551234567?:1=x",
                "need a template",
            ),
            (
                "whatsapp://t:S3CR3T@1234567890/15551234567?:x=1",
                "not a template parameter",
            ),
            (
                "whatsapp://t:S3CR3T@1234567890/15551234567?:1=a&:body=1",
                "given twice",
            ),
            (
                "whatsapp://S3CR3T@1234567890/15551234567?priority=1",
                "unknown option",
            ),
        ] {
            let e = WhatsApp::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
