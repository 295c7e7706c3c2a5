//! Text messages through the HTTP APIs of SMS services, in Apprise's syntax: Vonage
//! (`vonage://`, `nexmo://`), MessageBird (`msgbird://`), Plivo (`plivo://`), ClickSend
//! (`clicksend://`) and Sinch (`sinch://`); and Telnyx (`telnyx://`), which Apprise does not
//! speak, in a syntax of belfry's own shaped like its neighbours'. Each message is
//! [`belfry_core::sms::render`]'s one segment; each recipient gets one request (a batch of them
//! with `batch=yes` where the service takes several).

use base64::Engine as _;
use belfry_core::sms;
use serde_json::{Value, json};

use super::phone::{digits, number, recipients};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Which service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Vonage,
    MessageBird,
    Plivo,
    ClickSend,
    Sinch,
    Telnyx,
}

impl Service {
    /// The service of a scheme, with the scheme as a static string.
    fn of(scheme: &str) -> Option<(Service, &'static str)> {
        Some(match scheme {
            "vonage" => (Service::Vonage, "vonage"),
            "nexmo" => (Service::Vonage, "nexmo"),
            "msgbird" => (Service::MessageBird, "msgbird"),
            "plivo" => (Service::Plivo, "plivo"),
            "clicksend" => (Service::ClickSend, "clicksend"),
            "sinch" => (Service::Sinch, "sinch"),
            "telnyx" => (Service::Telnyx, "telnyx"),
            _ => return None,
        })
    }

    /// The query options Apprise 2.3 reads for it (for Telnyx, belfry's own: its neighbours'
    /// `to`, `from` and `key`, and `profile` for a messaging profile).
    fn options(self) -> &'static [&'static str] {
        match self {
            Service::Vonage => &["to", "from", "source", "key", "secret", "ttl"],
            Service::MessageBird => &["to", "from"],
            Service::Plivo => &["to", "from", "id", "token", "batch"],
            Service::ClickSend => &["to", "key", "batch"],
            Service::Sinch => &["to", "from", "source", "spi", "token", "region"],
            Service::Telnyx => &["to", "from", "key", "profile"],
        }
    }

    fn shape(self) -> &'static str {
        match self {
            Service::Vonage => "vonage://APIKEY:SECRET@FROM_PHONE[/TO_PHONE…]",
            Service::MessageBird => "msgbird://APIKEY/FROM_PHONE[/TO_PHONE…]",
            Service::Plivo => "plivo://AUTH_ID@TOKEN/FROM_PHONE[/TO_PHONE…]",
            Service::ClickSend => "clicksend://USER:APIKEY@TO_PHONE[/TO_PHONE…]",
            Service::Sinch => "sinch://SERVICE_PLAN_ID:API_TOKEN@FROM_PHONE[/TO_PHONE…]",
            Service::Telnyx => "telnyx://APIKEY@FROM_PHONE[/TO_PHONE…]",
        }
    }
}

/// An SMS service's API (see the module's documentation).
///
/// - Vonage: `POST https://rest.nexmo.com/sms/json`, a form with `api_key`, `api_secret`,
///   `from`, `to`, `text` and `ttl` (`ttl=` milliseconds, 20,000 to 604,800,000; 900,000 by
///   default); the verdict is in the body's `messages[].status` (`0` sent, `1` throttled).
/// - MessageBird: `POST https://rest.messagebird.com/messages` (`Authorization: AccessKey …`),
///   a form with `originator`, `recipients` and `body`.
/// - Plivo: `POST https://api.plivo.com/v1/Account/AUTH_ID/Message/` (basic authentication),
///   JSON `src`, `dst` and `text`; `batch=yes` puts up to 20 recipients in one `dst`, joined by
///   `<` as Plivo reads them.
/// - ClickSend: `POST https://rest.clicksend.com/v3/sms/send` (basic authentication), JSON
///   `messages` of `source`, `to` and `body`; `batch=yes` sends up to 1,000 in one request; each
///   message's own `status` in the answer is checked.
/// - Sinch: `POST https://REGION.sms.api.sinch.com/xms/v1/SERVICE_PLAN_ID/batches`
///   (`region=us|eu`, `Authorization: Bearer …`), JSON `from`, `to` and `body`; the sender may
///   be a short code (5 or 6 digits).
/// - Telnyx: `POST https://api.telnyx.com/v2/messages` (`Authorization: Bearer …`), JSON
///   `from`, `to` and `text`, with `messaging_profile_id` when the URL has `profile=`; the
///   sender may be a short code, or an alphanumeric sender ID (up to 11 letters, digits and
///   spaces, written in `from=` to keep its case) when a profile is given, as Telnyx asks. A
///   refusal's reason is Telnyx's own (`errors[].detail`).
///
/// With no recipient, Vonage, MessageBird, Plivo, Sinch and Telnyx text the sender's own
/// number, as Apprise does for the first four (not a short code); ClickSend has no sender in
/// its URL and needs a recipient.
#[derive(Clone)]
pub struct SmsApi {
    service: Service,
    scheme: &'static str,
    pub(crate) base: String,
    /// The account's credentials: Vonage's key and secret, MessageBird's and Sinch's token,
    /// Telnyx's API key (the secret), Plivo's and ClickSend's basic authentication.
    user: String,
    secret: String,
    /// Telnyx's messaging profile (`profile=`).
    profile: Option<String>,
    /// The sender as the service takes it (`+` and digits, a short code, or Telnyx's
    /// alphanumeric sender ID).
    from: String,
    /// The recipients, `+` and digits.
    to: Vec<String>,
    /// How many recipients one request carries.
    batch: usize,
    ttl: u64,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for SmsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsApi")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Letters and digits.
fn alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl SmsApi {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let (service, scheme) = Service::of(&p.scheme).unwrap_or((Service::Vonage, "vonage"));
        p.check_keys(raw, service.options(), &[], scheme)?;
        let q = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let shape = service.shape();
        let bad = |what: &str| UrlError::new(raw, format!("{what}: {shape}"));
        let batch_flag = match p.get("batch").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "batch", v)?,
            None => false,
        };
        let mut ttl = 900_000;
        let mut profile = None;
        let (user, secret, from, to, batch) = match service {
            Service::Vonage => {
                let key = q("key").or(p.user.clone()).unwrap_or_default();
                let secret = q("secret").or(p.password.clone()).unwrap_or_default();
                if !alnum(&key) {
                    return Err(bad("the API key is missing or not letters and digits"));
                }
                if !alnum(&secret) {
                    return Err(bad("the API secret is missing or not letters and digits"));
                }
                if let Some(t) = q("ttl") {
                    ttl = t
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|t| (20_000..=604_800_000).contains(t))
                        .ok_or_else(|| {
                            UrlError::new(
                                raw,
                                format!(
                                    "ttl={t:?} is not a number of milliseconds from 20000 to \
                                     604800000"
                                ),
                            )
                        })?;
                }
                let source = q("source").or(q("from")).unwrap_or(p.host.clone());
                let from = number(raw, "the sender", &source)?;
                (key, secret, from, recipients(raw, &p, &p.path)?, 1)
            }
            Service::MessageBird => {
                let key = p.host.clone();
                if key.len() != 25 || !alnum(&key) {
                    return Err(bad(
                        "the access key is missing or not 25 letters and digits",
                    ));
                }
                let mut path = p.path.clone();
                let source = match q("from") {
                    Some(f) => f,
                    None if !path.is_empty() => path.remove(0),
                    None => return Err(bad("the sender's number is missing")),
                };
                let from = format!("+{}", number(raw, "the sender", &source)?);
                (key, String::new(), from, recipients(raw, &p, &path)?, 1)
            }
            Service::Plivo => {
                let id = q("id").or(p.user.clone()).unwrap_or_default();
                let mut path = p.path.clone();
                let token = match q("token") {
                    Some(t) => {
                        if !p.host.is_empty() {
                            path.insert(0, p.host.clone());
                        }
                        t
                    }
                    None => p.host.clone(),
                };
                if !(20..=30).contains(&id.len()) || !alnum(&id) {
                    return Err(bad(
                        "the Auth ID is missing or not 20 to 30 letters and digits",
                    ));
                }
                if !(30..=50).contains(&token.len()) || !alnum(&token) {
                    return Err(bad(
                        "the Auth Token is missing or not 30 to 50 letters and digits",
                    ));
                }
                let source = match q("from") {
                    Some(f) => f,
                    None if !path.is_empty() => path.remove(0),
                    None => return Err(bad("the sender's number is missing")),
                };
                let from = number(raw, "the sender", &source)?;
                let batch = if batch_flag { 20 } else { 1 };
                (id, token, from, recipients(raw, &p, &path)?, batch)
            }
            Service::ClickSend => {
                let user = p.user.clone().unwrap_or_default();
                let key = q("key").or(p.password.clone()).unwrap_or_default();
                if user.is_empty() || key.is_empty() {
                    return Err(bad("the user name and API key are missing"));
                }
                let mut path = p.path.clone();
                if !p.host.is_empty() {
                    path.insert(0, p.host.clone());
                }
                let to = recipients(raw, &p, &path)?;
                if to.is_empty() {
                    return Err(bad("no recipient"));
                }
                let batch = if batch_flag { 1000 } else { 1 };
                (user, key, String::new(), to, batch)
            }
            Service::Sinch => {
                let spi = q("spi").or(p.user.clone()).unwrap_or_default();
                let token = q("token").or(p.password.clone()).unwrap_or_default();
                let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
                if !hex(&spi) {
                    return Err(bad("the service plan id is missing or not hexadecimal"));
                }
                if !hex(&token) {
                    return Err(bad("the API token is missing or not hexadecimal"));
                }
                let source = q("source").or(q("from")).unwrap_or(p.host.clone());
                let from = match digits(&source) {
                    Some(d) if (11..=14).contains(&d.len()) => format!("+{d}"),
                    Some(d) if matches!(d.len(), 5 | 6) => d,
                    _ => {
                        return Err(UrlError::new(
                            raw,
                            format!(
                                "the sender {source:?} is neither a phone number with its \
                                 country code (11 to 14 digits) nor a short code (5 or 6)"
                            ),
                        ));
                    }
                };
                let to = recipients(raw, &p, &p.path)?;
                if to.is_empty() && !from.starts_with('+') {
                    return Err(bad("a short code needs a recipient"));
                }
                (spi, token, from, to, 1)
            }
            Service::Telnyx => {
                let key = q("key").or(p.user.clone()).unwrap_or_default();
                let token = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                };
                if !token(&key) {
                    return Err(bad(
                        "the API key is missing or not letters, digits, _ and -",
                    ));
                }
                if let Some(id) = q("profile").map(|v| v.trim().to_owned()) {
                    if !token(&id) {
                        return Err(UrlError::new(
                            raw,
                            format!(
                                "profile={id:?} is not a messaging profile id (letters, digits, \
                                 _ and -)"
                            ),
                        ));
                    }
                    profile = Some(id);
                }
                // With `from=`, the host is one more recipient rather than a number ignored.
                let mut path = p.path.clone();
                let source = match q("from") {
                    Some(f) => {
                        if !p.host.is_empty() {
                            path.insert(0, p.host.clone());
                        }
                        f
                    }
                    None => p.host.clone(),
                };
                let from = telnyx_sender(raw, &source, profile.is_some())?;
                let to = recipients(raw, &p, &path)?;
                if to.is_empty() && !from.starts_with('+') {
                    return Err(bad(
                        "a short code or an alphanumeric sender needs a recipient",
                    ));
                }
                (String::new(), key, from, to, 1)
            }
        };
        let to: Vec<String> = if to.is_empty() {
            vec![from.trim_start_matches('+').to_owned()]
        } else {
            to
        };
        let to: Vec<String> = to.into_iter().map(|d| format!("+{d}")).collect();
        let from = match service {
            Service::Vonage => from,
            Service::Plivo => format!("+{from}"),
            _ => from,
        };
        let base = match service {
            Service::Vonage => "https://rest.nexmo.com".to_owned(),
            Service::MessageBird => "https://rest.messagebird.com".to_owned(),
            Service::Plivo => "https://api.plivo.com".to_owned(),
            Service::ClickSend => "https://rest.clicksend.com".to_owned(),
            Service::Telnyx => "https://api.telnyx.com".to_owned(),
            Service::Sinch => {
                let region = q("region")
                    .map(|r| r.trim().to_ascii_lowercase())
                    .unwrap_or_else(|| "us".to_owned());
                if region != "us" && region != "eu" {
                    return Err(UrlError::new(
                        raw,
                        format!("region={region:?} is not us or eu"),
                    ));
                }
                format!("https://{region}.sms.api.sinch.com")
            }
        };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&secret);
        if matches!(service, Service::MessageBird) {
            secrets.add(&user);
        }
        let describe = format!(
            "{scheme}://***@{}/{}",
            if from.is_empty() { "…" } else { &from },
            to.join("/")
        );
        Ok(SmsApi {
            service,
            scheme,
            base,
            user,
            secret,
            profile,
            from,
            to,
            batch,
            ttl,
            describe,
            secrets,
        })
    }

    fn basic(&self) -> (String, String) {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.secret));
        ("Authorization".to_owned(), format!("Basic {token}"))
    }

    fn requests(&self, text: &str) -> Vec<HttpRequest> {
        let form = |pairs: &[(&str, &str)]| {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                ser.append_pair(k, v);
            }
            ser.finish().into_bytes()
        };
        let json_body = |v: Value| serde_json::to_vec(&v).expect("a JSON value serialises");
        let content = |t: &str| ("Content-Type".to_owned(), t.to_owned());
        self.to
            .chunks(self.batch.max(1))
            .map(|group| match self.service {
                Service::Vonage => HttpRequest {
                    method: Method::Post,
                    url: format!("{}/sms/json", self.base),
                    headers: vec![content("application/x-www-form-urlencoded")],
                    body: form(&[
                        ("api_key", &self.user),
                        ("api_secret", &self.secret),
                        ("ttl", &self.ttl.to_string()),
                        ("from", &self.from),
                        // Vonage takes numbers without their `+`.
                        ("to", group[0].trim_start_matches('+')),
                        ("text", text),
                    ]),
                },
                Service::MessageBird => HttpRequest {
                    method: Method::Post,
                    url: format!("{}/messages", self.base),
                    headers: vec![
                        content("application/x-www-form-urlencoded"),
                        (
                            "Authorization".to_owned(),
                            format!("AccessKey {}", self.user),
                        ),
                    ],
                    body: form(&[
                        ("originator", &self.from),
                        ("recipients", &group[0]),
                        ("body", text),
                    ]),
                },
                Service::Plivo => HttpRequest {
                    method: Method::Post,
                    url: format!("{}/v1/Account/{}/Message/", self.base, self.user),
                    headers: vec![content("application/json"), self.basic()],
                    body: json_body(json!({
                        "src": self.from,
                        "dst": group.join("<"),
                        "text": text,
                    })),
                },
                Service::ClickSend => HttpRequest {
                    method: Method::Post,
                    url: format!("{}/v3/sms/send", self.base),
                    headers: vec![content("application/json; charset=utf-8"), self.basic()],
                    body: json_body(json!({
                        "messages": group
                            .iter()
                            .map(|to| json!({"source": "belfry", "to": to, "body": text}))
                            .collect::<Vec<_>>(),
                    })),
                },
                Service::Sinch => HttpRequest {
                    method: Method::Post,
                    url: format!("{}/xms/v1/{}/batches", self.base, self.user),
                    headers: vec![
                        content("application/json"),
                        (
                            "Authorization".to_owned(),
                            format!("Bearer {}", self.secret),
                        ),
                    ],
                    body: json_body(json!({"from": self.from, "to": group, "body": text})),
                },
                Service::Telnyx => {
                    let mut body = json!({"from": self.from, "to": group[0], "text": text});
                    if let Some(id) = &self.profile {
                        body["messaging_profile_id"] = json!(id);
                    }
                    HttpRequest {
                        method: Method::Post,
                        url: format!("{}/v2/messages", self.base),
                        headers: vec![
                            content("application/json"),
                            (
                                "Authorization".to_owned(),
                                format!("Bearer {}", self.secret),
                            ),
                        ],
                        body: json_body(body),
                    }
                }
            })
            .collect()
    }
}

/// Telnyx's sender, as it is sent: a phone number (`+` and 10 to 14 digits), a short code (5
/// or 6 digits), or, with a messaging profile, an alphanumeric sender ID (1 to 11 letters,
/// digits and spaces, one of them a letter).
fn telnyx_sender(raw: &str, s: &str, profile: bool) -> Result<String, UrlError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UrlError::new(
            raw,
            "the sender is missing: telnyx://APIKEY@FROM_PHONE[/TO_PHONE…]",
        ));
    }
    match digits(s) {
        Some(d) if (10..=14).contains(&d.len()) => return Ok(format!("+{d}")),
        Some(d) if matches!(d.len(), 5 | 6) => return Ok(d),
        _ => {}
    }
    let sender_id = s.len() <= 11
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic());
    if sender_id && profile {
        return Ok(s.to_owned());
    }
    let why = if sender_id {
        format!(
            "the alphanumeric sender {s:?} needs a messaging profile (profile=), as Telnyx sends \
             one only through a profile"
        )
    } else {
        format!(
            "the sender {s:?} is neither a phone number with its country code (10 to 14 digits), \
             a short code (5 or 6) nor an alphanumeric sender ID (up to 11 letters, digits and \
             spaces)"
        )
    };
    Err(UrlError::new(raw, why))
}

/// A refusal with Telnyx's own words for it: each of the answer's `errors[]` (code, title,
/// detail) in place of the body's start; the verdict stays HTTP's.
fn telnyx_refusal(http: Outcome, status: u16, body: &str) -> Outcome {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let said: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let text = |k: &str| e[k].as_str().map(str::trim).filter(|t| !t.is_empty());
            let what = text("detail").or_else(|| text("title"))?;
            Some(match text("code") {
                Some(code) => format!("{what} (Telnyx error {code})"),
                None => what.to_owned(),
            })
        })
        .collect();
    if said.is_empty() {
        return http;
    }
    let reason = format!("HTTP {status}: {}", shorten(&said.join("; "), 300));
    match http {
        Outcome::Retry { after, .. } => Outcome::Retry { after, reason },
        Outcome::Permanent { .. } => Outcome::permanent(reason),
        delivered => delivered,
    }
}

/// The verdict of an answer: HTTP's (with Telnyx's reasons for a refusal), then what Vonage and
/// ClickSend say per message inside a `200`. A Telnyx `2xx` means the message was accepted;
/// whether it reached the phone is told later, by webhook, which a notifier does not wait for.
fn classify(service: Service, status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let http = crate::default_classify(status, retry_after, body);
    if !http.is_delivered() {
        return match service {
            Service::Telnyx => telnyx_refusal(http, status, body),
            _ => http,
        };
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match service {
        Service::Vonage => {
            for m in v["messages"].as_array().into_iter().flatten() {
                let code = m["status"].as_str().unwrap_or("0");
                let text = m["error-text"].as_str().unwrap_or("");
                match code {
                    "0" => {}
                    // Throttled: sending faster than the account may.
                    "1" => return Outcome::retry(format!("Vonage status 1 (throttled): {text}")),
                    _ => {
                        return Outcome::permanent(format!(
                            "Vonage status {code}: {}",
                            shorten(text, 200)
                        ));
                    }
                }
            }
            Outcome::Delivered
        }
        Service::ClickSend => {
            for m in v["data"]["messages"].as_array().into_iter().flatten() {
                let s = m["status"].as_str().unwrap_or("SUCCESS");
                if s != "SUCCESS" {
                    return Outcome::permanent(format!("ClickSend message status {s}"));
                }
            }
            Outcome::Delivered
        }
        _ => Outcome::Delivered,
    }
}

impl Channel for SmsApi {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(self.requests(&sms::render(msg.notification)))
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let service = self.service;
            let o = crate::http::send_planned(reqs, &self.describe, cx, |s, r, b| {
                classify(service, s, r, b)
            })
            .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_senders_and_recipients_are_read_per_service() {
        let v = SmsApi::from_apprise("nexmo://abc123:def456@+1 555 123 4567/15557654321?ttl=30000")
            .unwrap();
        assert_eq!(
            (v.user.as_str(), v.secret.as_str(), v.from.as_str()),
            ("abc123", "def456", "15551234567")
        );
        assert_eq!(v.to, ["+15557654321"]);
        assert_eq!((v.ttl, v.scheme), (30_000, "nexmo"));
        let m = SmsApi::from_apprise("msgbird://abcdefghijklmnopqrstuvwxy/15551234567").unwrap();
        assert_eq!(
            (m.from.as_str(), m.to.clone()),
            ("+15551234567", vec!["+15551234567".to_owned()])
        );
        let id = "MAXXXXXXXXXXXXXXXXXX";
        let tok = "NGFhYjk3NzAzMmQwNDk5NzZhYjRhZWVlMWE";
        let pl = SmsApi::from_apprise(&format!(
            "plivo://{id}@{tok}/15551234567/15557654321/15550000000?batch=yes"
        ))
        .unwrap();
        assert_eq!(pl.from, "+15551234567");
        assert_eq!((pl.to.len(), pl.batch), (2, 20));
        // With token=, the host is the sender (Apprise puts it first among the path's numbers).
        let url = format!("plivo://15551234567/15557654321?id={id}&token={tok}");
        let pl = SmsApi::from_apprise(&url).unwrap();
        assert_eq!(pl.from, "+15551234567");
        assert_eq!(pl.to, ["+15557654321"]);
        let c =
            SmsApi::from_apprise("clicksend://ada:K3Y@15551234567/15557654321?batch=no").unwrap();
        assert_eq!(c.to, ["+15551234567", "+15557654321"]);
        let s = SmsApi::from_apprise("sinch://ab12:cd34@12345/15557654321?region=EU").unwrap();
        assert_eq!(
            (s.from.as_str(), s.base.as_str()),
            ("12345", "https://eu.sms.api.sinch.com")
        );
        let t = SmsApi::from_apprise("telnyx://KEY01_ab-c@+1 555 123 4567").unwrap();
        assert_eq!(
            (t.secret.as_str(), t.from.as_str(), t.profile.as_deref()),
            ("KEY01_ab-c", "+15551234567", None)
        );
        assert_eq!(t.to, ["+15551234567"], "the sender's own number");
        let t = SmsApi::from_apprise(
            "telnyx://15557654321?key=K3Y&from=Belfry%20Ops&profile=4001-abcd&to=15550001111",
        )
        .unwrap();
        assert_eq!(
            (t.from.as_str(), t.profile.as_deref()),
            ("Belfry Ops", Some("4001-abcd"))
        );
        assert_eq!(
            t.to,
            ["+15557654321", "+15550001111"],
            "host first, then to="
        );
        let t = SmsApi::from_apprise("telnyx://K3Y@12345/15557654321").unwrap();
        assert_eq!(t.from, "12345", "a short code is sent as it is");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_secret() {
        for (url, what) in [
            ("vonage://abc:S3CR3T@12345", "the sender \"12345\""),
            ("vonage://abc:S3CR3T@15551234567?ttl=5", "ttl=\"5\""),
            ("vonage://abc:S3CR3T@15551234567/42", "the recipient \"42\""),
            ("vonage://abc@15551234567", "API secret"),
            ("msgbird://S3CR3T/15551234567", "25 letters"),
            ("plivo://short@S3CR3T/15551234567", "Auth ID"),
            ("clicksend://ada:S3CR3T@", "no recipient"),
            ("sinch://ab12:cd34@12345", "short code needs a recipient"),
            ("sinch://ab12:cd34@15551234567?region=ap", "region=\"ap\""),
            ("sinch://xyz:S3CR3T@15551234567", "service plan id"),
            ("telnyx://15551234567/15557654321", "API key is missing"),
            ("telnyx://S3CR3T.KEY@15551234567", "API key"),
            ("telnyx://S3CR3T@", "the sender is missing"),
            ("telnyx://S3CR3T@555", "the sender \"555\""),
            ("telnyx://S3CR3T@12345", "needs a recipient"),
            (
                "telnyx://S3CR3T@15557654321?from=Belfry",
                "needs a messaging profile",
            ),
            ("telnyx://S3CR3T@15551234567/42", "the recipient \"42\""),
            ("telnyx://S3CR3T@15551234567?profile=a/b", "profile=\"a/b\""),
            (
                "telnyx://S3CR3T@15551234567?ttl=60000",
                "unknown option \"ttl\" for telnyx://",
            ),
            (
                "vonage://abc:S3CR3T@15551234567?priority=1",
                "unknown option",
            ),
        ] {
            let e = SmsApi::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn verdicts_inside_a_200_are_read() {
        let ok = r#"{"message-count":"1","messages":[{"status":"0"}]}"#;
        assert_eq!(classify(Service::Vonage, 200, None, ok), Outcome::Delivered);
        let throttled = r#"{"messages":[{"status":"1","error-text":"Throttled"}]}"#;
        assert!(matches!(
            classify(Service::Vonage, 200, None, throttled),
            Outcome::Retry { .. }
        ));
        let bad = r#"{"messages":[{"status":"4","error-text":"Bad Credentials"}]}"#;
        assert!(
            matches!(classify(Service::Vonage, 200, None, bad), Outcome::Permanent { reason } if reason.contains("Bad Credentials"))
        );
        let cs = r#"{"data":{"messages":[{"status":"SUCCESS"},{"status":"INVALID_RECIPIENT"}]}}"#;
        assert!(
            matches!(classify(Service::ClickSend, 200, None, cs), Outcome::Permanent { reason } if reason.contains("INVALID_RECIPIENT"))
        );
        assert!(matches!(
            classify(Service::Sinch, 503, None, ""),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn telnyx_refusals_are_told_in_telnyxs_words() {
        let accepted = r#"{"data":{"id":"4031","to":[{"status":"queued"}],"errors":[]}}"#;
        assert_eq!(
            classify(Service::Telnyx, 200, None, accepted),
            Outcome::Delivered
        );
        let bad = r#"{"errors":[{"code":"10016","title":"Phone number must be in +E.164 format","detail":"The 'to' parameter must be in +E.164 format"}]}"#;
        assert_eq!(
            classify(Service::Telnyx, 422, None, bad),
            Outcome::permanent(
                "HTTP 422: The 'to' parameter must be in +E.164 format (Telnyx error 10016)"
            )
        );
        let limited = r#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#;
        let o = classify(Service::Telnyx, 429, Some("7"), limited);
        assert!(
            matches!(&o, Outcome::Retry { after: Some(d), reason } if d.as_secs() == 7 && reason == "HTTP 429: Too many requests (Telnyx error 10011)"),
            "{o:?}"
        );
        // An answer that is not Telnyx's error object keeps HTTP's reason.
        assert_eq!(
            classify(Service::Telnyx, 401, None, "denied"),
            Outcome::permanent("HTTP 401: denied")
        );
        assert!(matches!(
            classify(Service::Telnyx, 503, None, ""),
            Outcome::Retry { .. }
        ));
    }
}
