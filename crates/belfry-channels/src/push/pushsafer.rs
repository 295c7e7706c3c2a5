//! Pushsafer, read with Apprise's syntax: a push to each device or device group (or all of
//! them) through Pushsafer's API.

use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::Value;

use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Pushsafer: `psafers://PRIVATE_KEY[/DEVICE…]` (`psafer://` over plain HTTP), Apprise's
/// syntax; with no device, every device (`a`). `priority=low|medium|normal|high|emergency` (or
/// -2 to 2), `sound=` (a name or 0 to 60), `vibration=1|2|3`, `to=`.
///
/// Each device gets `POST https://www.pushsafer.com/api`, a form with `k` (the key), `d`,
/// `t` (the headline), `m` (belfry's text), `i` (Apprise's icon, 25), `c` (the state's colour)
/// and `pr`, `s`, `v` when given. Pushsafer puts its verdict in the body: `status` 1 is sent,
/// anything else is permanent, with its `error`.
#[derive(Clone)]
pub struct Pushsafer {
    pub(crate) base: String,
    key: String,
    devices: Vec<String>,
    priority: Option<i8>,
    sound: Option<u8>,
    vibration: Option<u8>,
    secrets: Secrets,
}

impl std::fmt::Debug for Pushsafer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushsafer")
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

const PRIORITIES: &[(&str, i8)] = &[
    ("low", -2),
    ("medium", -1),
    ("normal", 0),
    ("high", 1),
    ("emergency", 2),
];

/// Pushsafer's sounds by the names Apprise reads, in Apprise's order (a name may be given by
/// its start).
const SOUNDS: &[(&str, u8)] = &[
    ("silent", 0),
    ("ahem", 1),
    ("applause", 2),
    ("arrow", 3),
    ("baby", 4),
    ("bell", 5),
    ("bicycle", 6),
    ("bike", 6),
    ("boing", 7),
    ("buzzer", 8),
    ("camera", 9),
    ("carhorn", 10),
    ("horn", 10),
    ("cashregister", 11),
    ("chime", 12),
    ("creakydoor", 13),
    ("cuckooclock", 14),
    ("cuckoo", 14),
    ("disconnect", 15),
    ("dog", 16),
    ("doorbell", 17),
    ("fanfare", 18),
    ("gunshot", 19),
    ("honk", 20),
    ("jawharp", 21),
    ("morse", 22),
    ("electric", 23),
    ("radiotuner", 24),
    ("sirens", 25),
    ("militarytrumpets", 26),
    ("military", 26),
    ("trumpets", 26),
    ("ufo", 27),
    ("whahwhah", 28),
    ("whah", 42),
    ("goodye", 29),
    ("hello", 30),
    ("no", 31),
    ("okay", 32),
    ("ok", 32),
    ("ooohhhweee", 33),
    ("warn", 34),
    ("warning", 34),
    ("welcome", 35),
    ("yeah", 36),
    ("yes", 37),
    ("beep", 38),
    ("beep1", 38),
    ("weee", 39),
    ("wee", 39),
    ("cutinout", 40),
    ("flickglass", 41),
    ("laser", 43),
    ("windchime", 44),
    ("echo", 45),
    ("zipper", 46),
    ("hihat", 47),
    ("beep2", 48),
    ("beep3", 49),
    ("beep4", 50),
    ("alarmarmed", 51),
    ("armed", 51),
    ("alarmdisarmed", 52),
    ("disarmed", 52),
    ("backupready", 53),
    ("dooropen", 55),
    ("dopen", 55),
    ("doorclosed", 54),
    ("dclosed", 54),
    ("windowopen", 57),
    ("wopen", 57),
    ("windowclosed", 56),
    ("wclosed", 56),
    ("lighton", 58),
    ("lon", 58),
    ("lightoff", 59),
    ("loff", 59),
    ("doorbellrang", 60),
];

/// A value given as a number, or as a name (or its start) from `names`.
fn number_or_name<T: Copy + std::str::FromStr + PartialEq>(
    raw: &str,
    key: &str,
    v: &str,
    names: &[(&str, T)],
) -> Result<T, UrlError> {
    let l = v.trim().to_ascii_lowercase();
    let found = match l.parse::<T>() {
        Ok(n) => names.iter().find(|(_, c)| *c == n),
        Err(_) if l.is_empty() => None,
        Err(_) => names.iter().find(|(name, _)| name.starts_with(&l)),
    };
    found.map(|(_, c)| *c).ok_or_else(|| {
        UrlError::new(
            raw,
            format!("{key}={v:?} is not one of Pushsafer's {key} values"),
        )
    })
}

impl Pushsafer {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme = if p.scheme == "psafers" {
            "psafers"
        } else {
            "psafer"
        };
        p.check_keys(raw, &["priority", "sound", "vibration", "to"], &[], scheme)?;
        let key = p.host.trim().to_owned();
        if key.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the private key is missing: {scheme}://PRIVATE_KEY[/DEVICE]"),
            ));
        }
        let mut devices = p.path.clone();
        if let Some(to) = p.get("to") {
            devices.extend(split_list(to).map(str::to_owned));
        }
        if devices.is_empty() {
            devices.push("a".to_owned());
        }
        let q = |k: &str| p.get(k).filter(|v| !v.trim().is_empty());
        let priority = q("priority")
            .map(|v| number_or_name(raw, "priority", v, PRIORITIES))
            .transpose()?;
        let sound = q("sound")
            .map(|v| number_or_name(raw, "sound", v, SOUNDS))
            .transpose()?;
        let vibration =
            match q("vibration") {
                None => None,
                Some(v) => Some(v.trim().parse::<u8>().ok().filter(|n| *n <= 3).ok_or_else(
                    || UrlError::new(raw, format!("vibration={v:?} is not 1, 2 or 3")),
                )?),
            };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&key);
        Ok(Pushsafer {
            base: format!(
                "{}://www.pushsafer.com",
                if scheme == "psafers" { "https" } else { "http" }
            ),
            key,
            devices,
            priority,
            sound,
            vibration,
            secrets,
        })
    }
}

/// Pushsafer's verdict, in the body of a `200`.
fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let http = crate::default_classify(status, retry_after, body);
    if !http.is_delivered() {
        return http;
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v["status"].as_i64() == Some(1) || v["status"].as_str() == Some("1") {
        Outcome::Delivered
    } else {
        let why = v["error"].as_str().unwrap_or("no status 1 in the answer");
        Outcome::permanent(format!("Pushsafer: {}", shorten(why, 200)))
    }
}

impl Channel for Pushsafer {
    fn scheme(&self) -> &'static str {
        if self.base.starts_with("https") {
            "psafers"
        } else {
            "psafer"
        }
    }

    fn describe(&self) -> String {
        let n = self.devices.len();
        format!(
            "{}://***/{n} device{}",
            self.scheme(),
            if n == 1 { "" } else { "s" }
        )
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: false,
                details: true,
                tail_lines: 20,
                limit: Limit::chars(4_000),
            },
        );
        Some(
            self.devices
                .iter()
                .map(|d| {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("k", &self.key)
                        .append_pair("d", d)
                        .append_pair("t", &n.headline())
                        .append_pair("m", &text)
                        .append_pair("i", "25")
                        .append_pair("c", n.tone().hex());
                    if let Some(pr) = self.priority {
                        form.append_pair("pr", &pr.to_string());
                    }
                    if let Some(s) = self.sound {
                        form.append_pair("s", &s.to_string());
                    }
                    if let Some(v) = self.vibration {
                        form.append_pair("v", &v.to_string());
                    }
                    HttpRequest {
                        method: Method::Post,
                        url: format!("{}/api", self.base),
                        headers: vec![(
                            "Content-Type".to_owned(),
                            "application/x-www-form-urlencoded".to_owned(),
                        )],
                        body: form.finish().into_bytes(),
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

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let s = Pushsafer::from_apprise(
            "psafers://K3Y/dev1/gs23?priority=emer&sound=armed&vibration=3&to=dev2",
        )
        .unwrap();
        assert_eq!(s.devices, ["dev1", "gs23", "dev2"]);
        assert_eq!(
            (s.priority, s.sound, s.vibration),
            (Some(2), Some(51), Some(3))
        );
        let s = Pushsafer::from_apprise("psafer://K3Y?priority=-1&sound=60").unwrap();
        assert_eq!(s.devices, ["a"], "no device: all of them");
        assert_eq!((s.priority, s.sound), (Some(-1), Some(60)));
        assert_eq!(s.scheme(), "psafer");
        assert_eq!(s.describe(), "psafer://***/1 device");
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("psafers://S3CR3T?priority=urgent", "priority=\"urgent\""),
            ("psafers://S3CR3T?priority=3", "priority=\"3\""),
            ("psafers://S3CR3T?sound=61", "sound=\"61\""),
            ("psafers://S3CR3T?vibration=4", "vibration=\"4\""),
            ("psafers://S3CR3T?icon=2", "unknown option"),
            ("psafers://", "private key is missing"),
        ] {
            let e = Pushsafer::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn the_verdict_is_read_from_the_body() {
        assert_eq!(
            classify(200, None, r#"{"status":1,"success":"ok"}"#),
            Outcome::Delivered
        );
        assert!(
            matches!(classify(200, None, r#"{"status":0,"error":"invalid key"}"#), Outcome::Permanent { reason } if reason.contains("invalid key"))
        );
        assert!(matches!(classify(500, None, ""), Outcome::Retry { .. }));
    }
}
