//! SMS (and WhatsApp) through Twilio's Messages API: Apprise's `twilio://` syntax.

use base64::Engine as _;
use belfry_core::sms;

use super::phone::digits;
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
/// - `method=call` phones each recipient instead (Twilio's Calls API) and reads the same text
///   out (`<Say>` in the call's TwiML); a call needs a recipient and is not WhatsApp.
#[derive(Clone)]
pub struct Twilio {
    pub(crate) base: String,
    sid: String,
    auth_user: String,
    token: String,
    from: String,
    to: Vec<(bool, String)>,
    /// Phone the recipients (`method=call`) rather than message them.
    call: bool,
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
        // Apprise's methods, matched by their start as Apprise does (`c` is `call`).
        let call = match p.get("method").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => false,
            Some(m) if "sms".starts_with(m) => false,
            Some(m) if "call".starts_with(m) => true,
            Some(_) => {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "method={:?} is not sms or call",
                        p.get("method").unwrap_or_default()
                    ),
                ));
            }
        };
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
        if call && whatsapp_default {
            return Err(UrlError::new(
                raw,
                "method=call cannot place a WhatsApp call",
            ));
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
            if wa && call {
                return Err(UrlError::new(
                    raw,
                    format!("method=call cannot place a WhatsApp call ({t:?})"),
                ));
            }
            to.push((wa, format!("+{d}")));
        }
        if to.is_empty() {
            if call {
                return Err(UrlError::new(
                    raw,
                    "method=call needs at least one recipient",
                ));
            }
            if short_code {
                return Err(UrlError::new(
                    raw,
                    "a short code needs at least one recipient",
                ));
            }
            to.push((whatsapp_default, from.clone()));
        }
        let describe = format!(
            "twilio://***:***@{from}/{}{}",
            to.iter()
                .map(|(wa, n)| if *wa { format!("w:{n}") } else { n.clone() })
                .collect::<Vec<_>>()
                .join("/"),
            if call { "?method=call" } else { "" }
        );
        Ok(Twilio {
            base: API.to_owned(),
            sid,
            auth_user,
            token,
            from,
            to,
            call,
            describe,
            secrets: Secrets::of_url(raw),
        })
    }
}

/// The TwiML of a call that reads `text` out once.
fn twiml_say(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    format!("<Response><Say>{escaped}</Say></Response>")
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
            "{}/2010-04-01/Accounts/{}/{}.json",
            self.base,
            self.sid,
            if self.call { "Calls" } else { "Messages" }
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
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("To", &to).append_pair("From", &from);
                    if self.call {
                        form.append_pair("Twiml", &twiml_say(&text));
                    } else {
                        form.append_pair("Body", &text);
                    }
                    let body = form.finish();
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
    fn a_calls_text_is_escaped_into_its_twiml() {
        assert_eq!(
            twiml_say("FAILED <job> & \"it's\"\nbroken"),
            "<Response><Say>FAILED &lt;job&gt; &amp; &quot;it&apos;s&quot; broken</Say></Response>"
        );
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
                format!("twilio://{SID}:{TOKEN}@15551234567?method=fax"),
                "method=\"fax\" is not sms or call",
            ),
            (
                format!("twilio://{SID}:{TOKEN}@15551234567?method=call"),
                "needs at least one recipient",
            ),
            (
                format!("twilio://{SID}:{TOKEN}@15551234567/w:15557654321?method=call"),
                "WhatsApp call",
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
