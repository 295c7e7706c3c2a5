//! SMS (and WhatsApp) through Twilio's Messages API: Apprise's `twilio://` syntax.

use base64::Engine as _;
use belfry_core::sms;

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

const API: &str = "https://api.twilio.com";

/// Twilio SMS: `twilio://AccountSID:AuthToken@+FromNumber/+ToNumber/…`, Apprise's syntax.
///
/// - Targets are the path's numbers and `to=`, in E.164 form with their country code
///   (11 to 14 digits; spaces, dashes and brackets are ignored). A `w:` prefix sends that
///   number a WhatsApp message instead; a `w:` on the sender makes WhatsApp the default.
/// - With no target, the message goes to the sender's own number (not for a short code).
/// - `sid=`, `token=` and `from=` (or `source=`) may replace the URL's parts; `apikey=SK…`
///   authenticates with an API key (its secret as the token) instead of the account.
/// - The text is [`belfry_core::sms::render`]: state, job, host and the one-line reason, cut
///   to one segment (160 GSM-7 characters, or 70 in UCS-2).
#[derive(Clone)]
pub struct Twilio {
    pub(crate) base: String,
    sid: String,
    auth_user: String,
    token: String,
    from: String,
    to: Vec<(bool, String)>,
    describe: String,
    /// What may be secret in the URL, scrubbed from failure reasons (an error page may echo
    /// the request).
    secrets: Secrets,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

fn digits(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        return None;
    }
    Some(s.chars().filter(char::is_ascii_digit).collect())
}

/// Splits a `w:`/`whatsapp:` (or `s:`/`sms:`) prefix off a number.
fn mode_prefix(s: &str) -> (Option<bool>, &str) {
    match s.split_once(':') {
        Some((m, rest)) if m.eq_ignore_ascii_case("w") || m.eq_ignore_ascii_case("whatsapp") => {
            (Some(true), rest)
        }
        Some((m, rest)) if m.eq_ignore_ascii_case("s") || m.eq_ignore_ascii_case("sms") => {
            (Some(false), rest)
        }
        _ => (None, s),
    }
}

impl Twilio {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        if let Some(m) = p.get("method")
            && !m.is_empty()
            && !"sms".starts_with(&m.to_ascii_lowercase())
        {
            return Err(UrlError::new(
                raw,
                format!("method={m:?}: belfry sends Twilio messages only (method=sms)"),
            ));
        }
        p.check_keys(
            raw,
            &["to", "from", "source", "sid", "token", "apikey", "method"],
            &[],
            "twilio",
        )?;
        let sid = p
            .get("sid")
            .map(str::to_owned)
            .or(p.user.clone())
            .unwrap_or_default();
        let token = p
            .get("token")
            .map(str::to_owned)
            .or(p.password.clone())
            .unwrap_or_default();
        // `get`, not slicing: a SID with a multi-byte character second is refused, not a panic.
        if !(sid.len() > 2
            && sid.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AC"))
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(UrlError::new(
                raw,
                "the Account SID (the URL's user) must be AC followed by hexadecimal digits",
            ));
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UrlError::new(
                raw,
                "the Auth Token (the URL's password) must be letters and digits",
            ));
        }
        let auth_user = match p.get("apikey").filter(|k| !k.is_empty()) {
            None => sid.clone(),
            Some(k)
                if k.len() > 2
                    && k[..2].eq_ignore_ascii_case("SK")
                    && k[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                k.to_owned()
            }
            Some(_) => {
                return Err(UrlError::new(
                    raw,
                    "apikey= must be SK followed by hexadecimal digits",
                ));
            }
        };
        let source = p
            .get("source")
            .or(p.get("from"))
            .map(str::to_owned)
            .unwrap_or(p.host.clone());
        let (wa, number) = mode_prefix(&source);
        let whatsapp_default = wa.unwrap_or(false);
        let from_digits = digits(number).ok_or_else(|| {
            UrlError::new(raw, format!("the sender {source:?} is not a phone number"))
        })?;
        let short_code = matches!(from_digits.len(), 5 | 6);
        let from = match from_digits.len() {
            5 | 6 => from_digits,
            11..=14 => format!("+{from_digits}"),
            _ => {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "the sender {source:?} is neither a phone number with its country code \
                         (11 to 14 digits) nor a short code (5 or 6)"
                    ),
                ));
            }
        };
        if short_code && whatsapp_default {
            return Err(UrlError::new(raw, "WhatsApp cannot send from a short code"));
        }
        let mut to = Vec::new();
        let targets = p
            .path
            .iter()
            .map(String::as_str)
            .chain(p.get("to").into_iter().flat_map(split_list));
        for t in targets {
            let (wa, number) = mode_prefix(t);
            let d = digits(number)
                .filter(|d| (11..=14).contains(&d.len()))
                .ok_or_else(|| {
                    UrlError::new(
                        raw,
                        format!(
                            "the recipient {t:?} is not a phone number with its country code \
                             (11 to 14 digits)"
                        ),
                    )
                })?;
            let wa = wa.unwrap_or(whatsapp_default);
            if wa && short_code {
                return Err(UrlError::new(raw, "WhatsApp cannot send from a short code"));
            }
            to.push((wa, format!("+{d}")));
        }
        if to.is_empty() {
            if short_code {
                return Err(UrlError::new(
                    raw,
                    "a short code needs at least one recipient",
                ));
            }
            to.push((whatsapp_default, from.clone()));
        }
        let describe = format!(
            "twilio://***:***@{from}/{}",
            to.iter()
                .map(|(wa, n)| if *wa { format!("w:{n}") } else { n.clone() })
                .collect::<Vec<_>>()
                .join("/")
        );
        Ok(Twilio {
            base: API.to_owned(),
            sid,
            auth_user,
            token,
            from,
            to,
            describe,
            secrets: Secrets::of_url(raw),
        })
    }
}

impl Channel for Twilio {
    fn scheme(&self) -> &'static str {
        "twilio"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base, self.sid
        );
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.auth_user, self.token));
        let text = sms::render(msg.notification);
        Some(
            self.to
                .iter()
                .map(|(wa, number)| {
                    let (from, to) = if *wa {
                        (
                            format!("whatsapp:{}", self.from),
                            format!("whatsapp:{number}"),
                        )
                    } else {
                        (self.from.clone(), number.clone())
                    };
                    let body = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("To", &to)
                        .append_pair("From", &from)
                        .append_pair("Body", &text)
                        .finish();
                    HttpRequest {
                        method: Method::Post,
                        url: url.clone(),
                        headers: vec![
                            ("Authorization".to_owned(), format!("Basic {auth}")),
                            (
                                "Content-Type".to_owned(),
                                "application/x-www-form-urlencoded".to_owned(),
                            ),
                            ("Accept".to_owned(), "application/json".to_owned()),
                        ],
                        body: body.into_bytes(),
                    }
                })
                .collect(),
        )
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

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

    #[test]
    fn numbers_sources_and_whatsapp_prefixes_are_read() {
        let t = Twilio::from_apprise(&format!(
            "twilio://{SID}:{TOKEN}@+1 (555) 123-4567/+15557654321/w:+447700900123?to=%2B33612345678"
        ))
        .unwrap();
        assert_eq!(t.from, "+15551234567");
        assert_eq!(
            t.to,
            [
                (false, "+15557654321".to_owned()),
                (true, "+447700900123".to_owned()),
                (false, "+33612345678".to_owned()),
            ]
        );
        let t = Twilio::from_apprise(&format!("twilio://{SID}:{TOKEN}@15551234567")).unwrap();
        assert_eq!(
            t.to,
            [(false, "+15551234567".to_owned())],
            "no target: the sender"
        );
        let t = Twilio::from_apprise(&format!(
            "twilio://{SID}:{TOKEN}@12345/15557654321?apikey=SK0123abcd"
        ))
        .unwrap();
        assert_eq!(t.from, "12345");
        assert_eq!(t.auth_user, "SK0123abcd");
    }

    #[test]
    fn bad_twilio_urls_are_refused_without_quoting_secrets() {
        for (raw, needle) in [
            (format!("twilio://XX123:{TOKEN}@15551234567"), "Account SID"),
            (format!("twilio://Aé:{TOKEN}@15551234567"), "Account SID"),
            (
                format!("twilio://%C3%A9x:{TOKEN}@15551234567"),
                "Account SID",
            ),
            (
                format!("twilio://{SID}:bad-token!@15551234567"),
                "Auth Token",
            ),
            (format!("twilio://{SID}:{TOKEN}@555"), "sender"),
            (
                format!("twilio://{SID}:{TOKEN}@15551234567/5551234"),
                "recipient \"5551234\"",
            ),
            (format!("twilio://{SID}:{TOKEN}@12345"), "short code needs"),
            (
                format!("twilio://{SID}:{TOKEN}@15551234567?method=call"),
                "method=",
            ),
            (
                format!("twilio://{SID}:{TOKEN}@15551234567?colour=red"),
                "colour",
            ),
        ] {
            let e = Twilio::from_apprise(&raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
            assert!(!e.contains(TOKEN) && !e.contains(SID), "{e}");
        }
    }
}
