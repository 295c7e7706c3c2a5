//! Amazon SES, read with Apprise's syntax: one e-mail per notification through SES's query API
//! (`SendEmail`), signed with Signature Version 4.

use belfry_core::{Timestamp, email};
use lettre::message::Mailbox;

use super::query::{Credentials, classify, region};
use crate::email::{mailbox, split_addresses};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Outcome};

/// Amazon SES: `ses://FROM_USER@FROM_DOMAIN/ACCESS_KEY_ID/SECRET_ACCESS_KEY/REGION[/TO…]`,
/// Apprise's syntax: the secret may hold slashes (the path parts up to the region are the
/// secret); `FROM_USER:SESSION_TOKEN@FROM_DOMAIN` (or `token=`) for temporary credentials;
/// `from=`, `name=`, `to=`, `cc=`, `bcc=`, `reply=`, `key=`/`access=`, `secret=`, `region=`.
/// With no recipient, the mail goes to the sender.
///
/// Each notification is one `POST https://email.REGION.amazonaws.com/`, a form signed with
/// Signature Version 4: `Action=SendEmail` with every recipient (`To`, `Cc`, `Bcc`), belfry's
/// subject and its text and HTML bodies (the same as the SMTP channel's). SES's throttling
/// (`Throttling`: the account's sending rate) is retried; other refusals
/// (`MessageRejected`, an unverified sender) are permanent, with SES's code and message.
pub struct Ses {
    pub(crate) base: String,
    access_key: String,
    secret: String,
    session_token: Option<String>,
    region: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Option<Mailbox>,
    secrets: Secrets,
}

impl std::fmt::Debug for Ses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ses")
            .field("region", &self.region)
            .field("from", &self.from.email.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

/// The options Apprise reads for SES.
const OPTIONS: &[&str] = &[
    "to", "from", "reply", "name", "token", "access", "key", "secret", "region", "cc", "bcc",
];

const SHAPE: &str = "ses://FROM_USER@FROM_DOMAIN/ACCESS_KEY_ID/SECRET/REGION[/TO…]";

/// `Name <address>` as SES's `Source` and `ReplyToAddresses` take it: a name that is not
/// printable ASCII goes as an RFC 2047 encoded word, which SES requires.
fn source(m: &Mailbox) -> String {
    match m.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => m.email.to_string(),
        Some(n) if n.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
            let quoted = n.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" <{}>", m.email)
        }
        Some(n) => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(n.as_bytes());
            format!("=?utf-8?B?{b64}?= <{}>", m.email)
        }
    }
}

impl Ses {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, OPTIONS, &[], "ses")?;
        let q = |k: &str| p.get(k).filter(|v| !v.trim().is_empty()).map(str::to_owned);
        // The access key id first, then the secret's parts up to the region; an address there
        // ends the secret without a region (which `region=` must then give).
        let mut path = p.path.iter();
        let access_from_path = path.next().cloned();
        let mut secret_parts: Vec<&str> = Vec::new();
        let mut region_from_path = None;
        let mut targets: Vec<String> = Vec::new();
        for part in path.by_ref() {
            if let Some(r) = region(part) {
                region_from_path = Some(r);
                break;
            }
            if part.parse::<lettre::Address>().is_ok() {
                targets.push(part.clone());
                break;
            }
            secret_parts.push(part);
        }
        targets.extend(path.cloned());
        if let Some(to) = p.get("to") {
            targets.extend(split_addresses(to));
        }
        let access_key = q("key").or(q("access")).or(access_from_path);
        let Some(access_key) = access_key.filter(|k| !k.trim().is_empty()) else {
            return Err(UrlError::new(
                raw,
                format!("the access key id is missing: {SHAPE}"),
            ));
        };
        let secret = q("secret").unwrap_or_else(|| secret_parts.join("/"));
        if secret.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the secret access key is missing: {SHAPE}"),
            ));
        }
        let region_name = match q("region") {
            Some(r) => Some(region(&r).ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!("region={r:?} is not an AWS region (us-east-1)"),
                )
            })?),
            None => region_from_path,
        };
        let Some(region_name) = region_name else {
            return Err(UrlError::new(
                raw,
                format!("no AWS region (us-east-1) after the secret: {SHAPE}"),
            ));
        };
        let from_text = match q("from") {
            Some(f) => f,
            None => match &p.user {
                Some(u) => format!("{u}@{}", p.host),
                None => String::new(),
            },
        };
        if from_text.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the sender is missing: {SHAPE} (or from=)"),
            ));
        }
        let mut from = mailbox(raw, "the sender", &from_text)?;
        if let Some(name) = q("name") {
            from.name = Some(name);
        }
        let mut to = targets
            .iter()
            .map(|t| mailbox(raw, "the recipient", t))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            to.push(from.clone());
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
        let reply_to = q("reply")
            .map(|r| mailbox(raw, "the reply address", &r))
            .transpose()?;
        let session_token = q("token").or(p.password.clone().filter(|t| !t.is_empty()));
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&secret);
        if let Some(t) = &session_token {
            secrets.add(t);
        }
        Ok(Ses {
            base: format!("https://email.{region_name}.amazonaws.com"),
            access_key,
            secret,
            session_token,
            region: region_name,
            from,
            to,
            cc,
            bcc,
            reply_to,
            secrets,
        })
    }

    /// The signed `SendEmail` for `n`, at `now`.
    fn request(&self, n: &belfry_core::Notification, now: Timestamp) -> HttpRequest {
        let e = email::render(n);
        let mut form: Vec<(String, String)> = vec![
            ("Action".into(), "SendEmail".into()),
            ("Version".into(), "2010-12-01".into()),
            ("Source".into(), source(&self.from)),
        ];
        for (field, list) in [
            ("ToAddresses", &self.to),
            ("CcAddresses", &self.cc),
            ("BccAddresses", &self.bcc),
        ] {
            for (i, m) in list.iter().enumerate() {
                form.push((format!("Destination.{field}.member.{}", i + 1), source(m)));
            }
        }
        if let Some(r) = &self.reply_to {
            form.push(("ReplyToAddresses.member.1".into(), source(r)));
        }
        for (k, v) in [
            ("Message.Subject.Data", e.subject),
            ("Message.Subject.Charset", "UTF-8".into()),
            ("Message.Body.Text.Data", e.text),
            ("Message.Body.Text.Charset", "UTF-8".into()),
            ("Message.Body.Html.Data", e.html),
            ("Message.Body.Html.Charset", "UTF-8".into()),
        ] {
            form.push((k.into(), v));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let host = format!("email.{}.amazonaws.com", self.region);
        Credentials {
            access_key: &self.access_key,
            secret: &self.secret,
            session_token: self.session_token.as_deref(),
            region: &self.region,
            service: "ses",
            host: &host,
            base: &self.base,
        }
        .post(&pairs, now)
    }
}

impl Channel for Ses {
    fn scheme(&self) -> &'static str {
        "ses"
    }

    fn describe(&self) -> String {
        let n = self.to.len() + self.cc.len() + self.bcc.len();
        format!(
            "ses://{}/***/***/{} to {n} recipient{}",
            self.from.email,
            self.region,
            if n == 1 { "" } else { "s" }
        )
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![self.request(msg.notification, Timestamp::now())])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let req = self.request(msg.notification, Timestamp::now());
            let o = cx.send(&req, &self.describe(), classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn sender_keys_region_and_recipients_are_read_as_apprise_reads_them() {
        let s = Ses::from_apprise(&format!(
            "ses://alerts@example.org/AKIDEXAMPLE/{SECRET}/us-west-2/ops@example.org\
             ?to=dev@example.org&cc=Boss%20%3Cboss@example.org%3E&bcc=audit@example.org\
             &reply=help@example.org&name=belfry"
        ))
        .unwrap();
        assert_eq!(s.secret, SECRET, "the secret keeps its slash");
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.base, "https://email.us-west-2.amazonaws.com");
        assert_eq!(source(&s.from), "\"belfry\" <alerts@example.org>");
        let to: Vec<String> = s.to.iter().map(source).collect();
        assert_eq!(to, ["ops@example.org", "dev@example.org"]);
        assert_eq!(source(&s.cc[0]), "\"Boss\" <boss@example.org>");
        assert_eq!(s.bcc.len(), 1);
        assert!(s.reply_to.is_some());
        assert_eq!(s.session_token, None);

        let s = Ses::from_apprise("ses://a:T0KEN@example.org/AKID/SECRET/eu-west-1").unwrap();
        assert_eq!(s.session_token.as_deref(), Some("T0KEN"));
        assert_eq!(
            s.to.iter().map(source).collect::<Vec<_>>(),
            ["a@example.org"],
            "no recipient: the sender"
        );
        let s = Ses::from_apprise(
            "ses://x?from=a@example.org&key=AKID&secret=SECRET&region=ap-south-1&to=b@example.org",
        )
        .unwrap();
        assert_eq!(
            (s.access_key.as_str(), s.region.as_str()),
            ("AKID", "ap-south-1")
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_secret() {
        for (url, what) in [
            ("ses://a@example.org/AKID/S3CR3T", "no AWS region"),
            (
                "ses://a@example.org/AKID/S3CR3T/us-east-1/not-mail",
                "the recipient \"not-mail\"",
            ),
            ("ses://a@example.org/AKID", "secret access key is missing"),
            (
                "ses://example.org/AKID/S3CR3T/us-east-1",
                "the sender is missing",
            ),
            (
                "ses://a@example.org/AKID/S3CR3T/us-east-1?cc=x",
                "the Cc address \"x\"",
            ),
            (
                "ses://a@example.org/AKID/S3CR3T/us-east-1?region=moon",
                "region=\"moon\"",
            ),
            (
                "ses://a@example.org/AKID/S3CR3T/us-east-1?subject=x",
                "unknown option",
            ),
        ] {
            let e = Ses::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn names_outside_ascii_are_encoded_words() {
        let m: Mailbox = "Zoë <z@example.org>".parse().unwrap();
        assert_eq!(source(&m), "=?utf-8?B?Wm/Dqw==?= <z@example.org>");
    }
}
