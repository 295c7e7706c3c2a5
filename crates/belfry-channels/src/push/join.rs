//! Join (joaoapps.com), read with Apprise's syntax: a push to devices, device groups or
//! devices by name through Join's messaging API.

use belfry_core::render::{Limit, Markup, TextStyle, render_text, truncate};
use serde_json::Value;

use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Join: `join://APIKEY[/TARGET…]` (or `join://APIKEY@TARGET/…`), Apprise's syntax. A target is
/// a device id (32 letters and digits), a group (`group.all`, `android`, `chrome`, `windows10`,
/// `phone`, `tablet`, `pc`) or a device name; with none, `group.all`. `priority=` is low,
/// moderate, normal, high or emergency (or -2 to 2; a start is enough, as in Apprise).
///
/// Each target gets `POST https://joinjoaomgcd.appspot.com/_ah/api/messaging/v1/sendPush`
/// with the key, the priority, the title (the headline) and the text (belfry's, within Apprise's
/// 1,000 characters) in the query, as Join reads them, and `deviceId` or `deviceNames`. Join
/// answers `200` either way: `"success": false` is permanent, with its `errorMessage`. `image=`
/// is read and sends no icon.
#[derive(Clone)]
pub struct Join {
    pub(crate) base: String,
    key: String,
    targets: Vec<String>,
    priority: i8,
    secrets: Secrets,
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

const GROUPS: &[&str] = &[
    "all",
    "android",
    "chrome",
    "windows10",
    "phone",
    "tablet",
    "pc",
];

/// Apprise's priority keys, in its order: a value that starts with one is that priority.
const PRIORITIES: &[(&str, i8)] = &[
    ("l", -2),
    ("m", -1),
    ("n", 0),
    ("h", 1),
    ("e", 2),
    ("-2", -2),
    ("-1", -1),
    ("0", 0),
    ("1", 1),
    ("2", 2),
];

fn is_device(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Join {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["priority", "image", "to"], &[], "join")?;
        if let Some(v) = p.get("image").filter(|v| !v.trim().is_empty()) {
            parse_bool(raw, "image", v)?;
        }
        let (key, mut written) = match &p.user {
            Some(u) => (u.clone(), vec![p.host.clone()]),
            None => (p.host.clone(), Vec::new()),
        };
        if !is_device(&key) {
            return Err(UrlError::new(
                raw,
                "the API key is missing or not 32 letters and digits: join://APIKEY/DEVICE",
            ));
        }
        written.extend(p.path.iter().cloned());
        if let Some(to) = p.get("to") {
            written.extend(split_list(to).map(str::to_owned));
        }
        let targets: Vec<String> = written
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| {
                let l = t.trim().to_ascii_lowercase();
                let name = l.strip_prefix("group.").unwrap_or(&l);
                if GROUPS.contains(&name) {
                    format!("group.{name}")
                } else {
                    t.trim().to_owned()
                }
            })
            .collect();
        let targets = if targets.is_empty() {
            vec!["group.all".to_owned()]
        } else {
            targets
        };
        let priority = match p.get("priority").map(|v| v.trim().to_ascii_lowercase()) {
            None => 0,
            Some(v) if v.is_empty() => 0,
            Some(v) => PRIORITIES
                .iter()
                .find(|(k, _)| v.starts_with(k))
                .map(|(_, n)| *n)
                .ok_or_else(|| {
                    UrlError::new(
                        raw,
                        format!(
                            "priority={v:?} is not one of low, moderate, normal, high, \
                             emergency (or -2 to 2)"
                        ),
                    )
                })?,
        };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&key);
        Ok(Join {
            base: "https://joinjoaomgcd.appspot.com".to_owned(),
            key,
            targets,
            priority,
            secrets,
        })
    }
}

/// Join's verdict, in the body of a `200`.
fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let http = crate::default_classify(status, retry_after, body);
    if !http.is_delivered() {
        return http;
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v["success"] == Value::Bool(false) {
        let why = v["errorMessage"].as_str().unwrap_or("success: false");
        return Outcome::permanent(format!("Join: {}", shorten(why, 200)));
    }
    Outcome::Delivered
}

impl Channel for Join {
    fn scheme(&self) -> &'static str {
        "join"
    }

    fn describe(&self) -> String {
        let n = self.targets.len();
        format!("join://***/{n} target{}", if n == 1 { "" } else { "s" })
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: false,
                details: true,
                tail_lines: 10,
                limit: Limit::chars(1_000),
            },
        );
        let title = truncate(&n.headline(), Limit::chars(250));
        Some(
            self.targets
                .iter()
                .map(|t| {
                    let mut q = url::form_urlencoded::Serializer::new(String::new());
                    q.append_pair("apikey", &self.key)
                        .append_pair("priority", &self.priority.to_string())
                        .append_pair("title", &title)
                        .append_pair("text", &text);
                    if t.starts_with("group.") || is_device(t) {
                        q.append_pair("deviceId", t);
                    } else {
                        q.append_pair("deviceNames", t);
                    }
                    HttpRequest {
                        method: Method::Post,
                        url: format!("{}/_ah/api/messaging/v1/sendPush?{}", self.base, q.finish()),
                        headers: vec![(
                            "Content-Type".to_owned(),
                            "application/x-www-form-urlencoded".to_owned(),
                        )],
                        body: Vec::new(),
                    }
                })
                .collect(),
        )
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let describe = self.describe();
            let o = crate::http::send_planned(reqs, &describe, cx, classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";

    #[test]
    fn targets_and_priority_are_read_as_apprise_reads_them() {
        let j = Join::from_apprise(&format!("join://{KEY}")).unwrap();
        assert_eq!(
            (j.targets.clone(), j.priority),
            (vec!["group.all".to_owned()], 0)
        );
        let j = Join::from_apprise(&format!(
            "join://{KEY}@Android/{KEY}/My%20Phone?to=group.PC&priority=emergency"
        ))
        .unwrap();
        assert_eq!(j.targets, ["group.android", KEY, "My Phone", "group.pc"]);
        assert_eq!(j.priority, 2);
        assert_eq!(
            Join::from_apprise(&format!("join://{KEY}?priority=-1"))
                .unwrap()
                .priority,
            -1
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("join://short", "32 letters"),
            (
                "join://S3CR3Tabcdefghijklmnopqrstuvwxyz?priority=urgent",
                "priority=\"urgent\"",
            ),
            (
                "join://S3CR3Tabcdefghijklmnopqrstuvwxyz?sound=1",
                "unknown option",
            ),
        ] {
            let e = Join::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
        assert!(
            matches!(classify(200, None, r#"{"success":false,"errorMessage":"No device"}"#), Outcome::Permanent { reason } if reason.contains("No device"))
        );
        assert_eq!(
            classify(200, None, r#"{"success":true}"#),
            Outcome::Delivered
        );
    }
}
