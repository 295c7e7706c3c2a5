//! Microsoft 365 (Office 365, Outlook) mail, read with Apprise's syntax: an application's token
//! from Microsoft's identity platform, then Microsoft Graph's `sendMail` from a mailbox.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lettre::message::Mailbox;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::mail::{self, mailbox, split_addresses};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Microsoft 365 mail: `azure://SOURCE/TENANT/CLIENT_ID/CLIENT_SECRET[/TO…]` (or `o365://`),
/// Apprise's syntax: SOURCE is the mailbox that sends (`user@example.com`, written as
/// `azure://user@example.com/…`, or its object id), the secret may hold slashes (the trailing
/// path parts that are addresses are recipients, the rest the secret). `from=`, `tenant=`,
/// `oauth_id=`, `oauth_secret=`, `to=`, `cc=`, `bcc=`, `reply_to=`, `savesent=no`,
/// `mode=org`. With no recipient, the mail goes to the mailbox itself.
///
/// Sending is two steps: a token for the application (the OAuth 2.0 client-credentials grant,
/// `POST https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`, scope
/// `https://graph.microsoft.com/.default`; kept until a minute before it expires), then
/// `POST https://graph.microsoft.com/v1.0/users/SOURCE/sendMail` with the token as bearer:
/// belfry's subject and HTML body, every recipient, and belfry's attachments up to 3 MB in all.
/// The application needs Graph's `Mail.Send` application permission. A 401 to `sendMail`
/// forgets the token and is retried.
pub struct Microsoft365 {
    scheme: &'static str,
    pub(crate) login_base: String,
    pub(crate) graph_base: String,
    source: String,
    tenant: String,
    client_id: String,
    secret: String,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
    save_sent: bool,
    token: Mutex<Option<(String, Instant)>>,
    secrets: Secrets,
}

impl std::fmt::Debug for Microsoft365 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microsoft365")
            .field("source", &self.source)
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

/// The options Apprise reads for Microsoft 365.
const OPTIONS: &[&str] = &[
    "from",
    "tenant",
    "oauth_id",
    "oauth_secret",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "mode",
    "savesent",
];

/// What Graph takes inline in one `sendMail`: Apprise's 3 MB (the request may hold 4 MB).
const ATTACHMENTS_MAX: usize = 3 * 1024 * 1024;

/// A mailbox's address or id as a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

/// Whether `domain` is one of Microsoft's consumer domains (outlook.com, hotmail.*, live.*,
/// msn.com), which Apprise sends from in its "personal" mode.
fn is_personal(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    d == "msn.com"
        || ["outlook.", "hotmail.", "live."]
            .iter()
            .any(|p| d.starts_with(p))
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Microsoft365 {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "o365" { "o365" } else { "azure" };
        p.check_keys(raw, OPTIONS, &[], scheme)?;
        let shape = format!("{scheme}://USER@DOMAIN/TENANT/CLIENT_ID/CLIENT_SECRET[/TO]");
        let q = |k: &str| p.get(k).filter(|v| !v.trim().is_empty()).map(str::to_owned);
        let source = match q("from") {
            Some(f) => f.trim().to_owned(),
            None => match &p.user {
                Some(u) => format!("{u}@{}", p.host),
                None => p.host.clone(),
            },
        };
        if source.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the sending mailbox is missing: {shape}"),
            ));
        }
        let source_address = source.parse::<lettre::Address>().ok();
        let personal = source_address
            .as_ref()
            .is_some_and(|a| is_personal(a.domain()));
        match q("mode").map(|m| m.trim().to_ascii_lowercase()) {
            Some(m) if m == "org" => {}
            None if !personal => {}
            Some(m) if m != "personal" => {
                return Err(UrlError::new(raw, format!("mode={m:?} is not org")));
            }
            _ => {
                return Err(UrlError::new(
                    raw,
                    "a personal Microsoft account (outlook.com, hotmail, live; Apprise's \
                     mode=personal) signs in with a refresh token belfry does not keep; send \
                     from an organisation's mailbox with an app's client credentials (mode=org)",
                ));
            }
        }
        if source_address.is_none() && !is_id(&source) {
            return Err(UrlError::new(
                raw,
                format!(
                    "the sending mailbox {source:?} is neither an address nor an object id: {shape}"
                ),
            ));
        }
        let mut entries: Vec<String> = p.path.clone();
        let tenant = match q("tenant") {
            Some(t) => t,
            None if !entries.is_empty() => entries.remove(0),
            None => String::new(),
        };
        let client_id = match q("oauth_id") {
            Some(c) => c,
            None if !entries.is_empty() => entries.remove(0),
            None => String::new(),
        };
        let mut targets: Vec<String> = Vec::new();
        while entries
            .last()
            .is_some_and(|e| e.parse::<lettre::Address>().is_ok())
        {
            targets.insert(0, entries.pop().unwrap_or_default());
        }
        let secret = q("oauth_secret").unwrap_or_else(|| entries.join("/"));
        for (what, v) in [("tenant", &tenant), ("client id", &client_id)] {
            if !is_id(v) {
                return Err(UrlError::new(
                    raw,
                    format!("the {what} is missing or not letters, digits and dashes: {shape}"),
                ));
            }
        }
        if secret.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the client secret is missing: {shape}"),
            ));
        }
        if let Some(to) = p.get("to") {
            targets.extend(split_addresses(to));
        }
        let mut to = targets
            .iter()
            .map(|t| mailbox(raw, "the recipient", t))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            match source_address {
                Some(a) => to.push(Mailbox::new(None, a)),
                None => {
                    return Err(UrlError::new(
                        raw,
                        "no recipient: a mailbox given by its object id needs to= or an address \
                         at the end of the path",
                    ));
                }
            }
        }
        let list = |key: &str, what: &str| -> Result<Vec<Mailbox>, UrlError> {
            match p.get(key) {
                Some(v) => split_addresses(v)
                    .iter()
                    .map(|a| mailbox(raw, what, a))
                    .collect(),
                None => Ok(Vec::new()),
            }
        };
        let cc = list("cc", "the Cc address")?;
        let bcc = list("bcc", "the Bcc address")?;
        let reply_to = list("reply_to", "the reply address")?;
        let save_sent = match q("savesent") {
            Some(v) => parse_bool(raw, "savesent", &v)?,
            None => true,
        };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&secret);
        Ok(Microsoft365 {
            scheme,
            login_base: "https://login.microsoftonline.com".to_owned(),
            graph_base: "https://graph.microsoft.com".to_owned(),
            source,
            tenant,
            client_id,
            secret,
            to,
            cc,
            bcc,
            reply_to,
            save_sent,
            token: Mutex::new(None),
            secrets,
        })
    }

    fn token_slot(&self) -> MutexGuard<'_, Option<(String, Instant)>> {
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn token_request(&self) -> HttpRequest {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.secret)
            .append_pair("scope", "https://graph.microsoft.com/.default");
        HttpRequest {
            method: Method::Post,
            url: format!("{}/{}/oauth2/v2.0/token", self.login_base, self.tenant),
            headers: vec![(
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body: form.finish().into_bytes(),
        }
    }

    fn send_request(&self, n: &belfry_core::Notification, token: &str) -> HttpRequest {
        let r = mail::render(n);
        let people = |list: &[Mailbox]| -> Value {
            list.iter()
                .map(|m| {
                    let mut a = json!({ "address": m.email.to_string() });
                    if let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) {
                        a["name"] = json!(name);
                    }
                    json!({ "emailAddress": a })
                })
                .collect()
        };
        let mut message = json!({
            "subject": r.subject,
            "body": { "contentType": "HTML", "content": r.html },
            "toRecipients": people(&self.to),
        });
        for (field, list) in [
            ("ccRecipients", &self.cc),
            ("bccRecipients", &self.bcc),
            ("replyTo", &self.reply_to),
        ] {
            if !list.is_empty() {
                message[field] = people(list);
            }
        }
        let mut used = 0;
        let files: Vec<Value> = r
            .attachments
            .iter()
            .filter(|a| {
                used += a.data.len();
                used <= ATTACHMENTS_MAX
            })
            .map(|a| {
                json!({
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": a.file_name,
                    "contentType": a.content_type,
                    "contentBytes": base64::engine::general_purpose::STANDARD.encode(&a.data),
                })
            })
            .collect();
        if !files.is_empty() {
            message["attachments"] = Value::Array(files);
        }
        HttpRequest {
            method: Method::Post,
            url: format!(
                "{}/v1.0/users/{}/sendMail",
                self.graph_base,
                utf8_percent_encode(&self.source, SEGMENT)
            ),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Authorization".to_owned(), format!("Bearer {token}")),
            ],
            body: serde_json::to_vec(&json!({
                "message": message,
                "saveToSentItems": self.save_sent,
            }))
            .expect("a JSON value serialises"),
        }
    }

    /// The application's token: kept while it has a minute left, else asked for.
    async fn token(&self, cx: &Context, describe: &str) -> Result<String, Outcome> {
        if let Some((t, until)) = self.token_slot().clone()
            && Instant::now() < until
        {
            return Ok(t);
        }
        let answer = cx
            .exchange(&self.token_request(), describe, true)
            .await
            .map_err(Outcome::retry)?;
        let text = answer.text();
        match crate::default_classify(answer.status, answer.retry_after.as_deref(), &text) {
            Outcome::Delivered => {}
            Outcome::Permanent { reason } => {
                return Err(Outcome::permanent(format!(
                    "{describe} (getting a token for the app): {reason}"
                )));
            }
            Outcome::Retry { after, reason } => {
                return Err(Outcome::Retry {
                    after,
                    reason: format!("{describe} (getting a token for the app): {reason}"),
                });
            }
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let token = v["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Outcome::retry(format!("{describe}: the token answer has no token")))?
            .to_owned();
        let lasts = v["expires_in"]
            .as_u64()
            .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        let until = Instant::now() + Duration::from_secs(lasts.saturating_sub(60));
        *self.token_slot() = Some((token.clone(), until));
        Ok(token)
    }
}

impl Channel for Microsoft365 {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        let n = self.to.len() + self.cc.len() + self.bcc.len();
        format!(
            "{}://{}/***/***/*** to {n} recipient{}",
            self.scheme,
            self.source,
            if n == 1 { "" } else { "s" }
        )
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![match self.token_slot().clone() {
            Some((t, until)) if Instant::now() < until => self.send_request(msg.notification, &t),
            _ => self.token_request(),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let describe = self.describe();
            let o = match self.token(cx, &describe).await {
                Err(o) => o,
                Ok(token) => {
                    let req = self.send_request(msg.notification, &token);
                    match cx.send(&req, &describe, crate::default_classify).await {
                        Outcome::Permanent { reason } if reason.starts_with("HTTP 401") => {
                            *self.token_slot() = None;
                            Outcome::retry(format!(
                                "{reason} (the token was refused; the retry gets a new one)"
                            ))
                        }
                        o => o,
                    }
                }
            };
            let mut secrets = self.secrets.clone();
            if let Some((t, _)) = self.token_slot().as_ref() {
                secrets.add(t);
            }
            secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "ab12cd34-0000-4000-8000-123456789abc";

    #[test]
    fn the_url_is_read_as_apprise_reads_it() {
        let m = Microsoft365::from_apprise(&format!(
            "azure://alerts@contoso.com/{TENANT}/app-id-1/S3CR3T/with~slash/ops@contoso.com\
             ?cc=lead@contoso.com&reply_to=help@contoso.com&savesent=no"
        ))
        .unwrap();
        assert_eq!(m.source, "alerts@contoso.com");
        assert_eq!(m.tenant, TENANT);
        assert_eq!(m.client_id, "app-id-1");
        assert_eq!(m.secret, "S3CR3T/with~slash", "the secret keeps its slash");
        assert_eq!(m.to[0].email.to_string(), "ops@contoso.com");
        assert_eq!(m.cc.len(), 1);
        assert!(!m.save_sent);
        let m = Microsoft365::from_apprise(&format!(
            "o365://x?from=alerts@contoso.com&tenant={TENANT}&oauth_id=app&oauth_secret=S3CR3T"
        ))
        .unwrap();
        assert_eq!(
            m.to[0].email.to_string(),
            "alerts@contoso.com",
            "no recipient: the mailbox itself"
        );
        let m = Microsoft365::from_apprise(&format!(
            "azure://{TENANT}/{TENANT}/app/S3CR3T?to=ops@contoso.com"
        ))
        .unwrap();
        assert_eq!(m.source, TENANT, "an object id sends too");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_secret() {
        for (url, what) in [
            (
                "azure://alerts@contoso.com/tenant/app",
                "client secret is missing",
            ),
            (
                "azure://alerts@contoso.com/ten.ant/app/S3CR3T",
                "the tenant is missing or",
            ),
            (
                "azure://alerts@outlook.com/app/S3CR3T",
                "personal Microsoft account",
            ),
            (
                "azure://alerts@contoso.com/t/app/S3CR3T?mode=personal",
                "personal Microsoft",
            ),
            (
                "azure://alerts@contoso.com/t/app/S3CR3T?mode=home",
                "mode=\"home\"",
            ),
            ("azure://some-id/t/app/S3CR3T", "no recipient"),
            (
                "azure://alerts@contoso.com/t/app/S3CR3T?cc=bob",
                "the Cc address \"bob\"",
            ),
            (
                "azure://alerts@contoso.com/t/app/S3CR3T?subject=x",
                "unknown option",
            ),
        ] {
            let e = Microsoft365::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn consumer_domains_are_told_from_organisations() {
        for d in ["outlook.com", "hotmail.co.uk", "live.de", "msn.com"] {
            assert!(is_personal(d), "{d}");
        }
        for d in [
            "contoso.com",
            "outlookfans.org",
            "contoso.onmicrosoft.com",
            "olive.com",
        ] {
            assert!(!is_personal(d), "{d}");
        }
    }
}
