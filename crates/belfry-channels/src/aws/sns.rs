//! Amazon SNS, read with Apprise's syntax: a text message to each phone number, and a
//! publication to each topic, through SNS's query API signed with Signature Version 4.

use std::collections::HashMap;
use std::sync::Mutex;

use belfry_core::render::{Limit, Markup, TextStyle, render_text, truncate};
use belfry_core::{Notification, Timestamp, sms};

use super::query::{Credentials, classify, region, xml_value};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Outcome};

/// Amazon SNS: `sns://ACCESS_KEY_ID/SECRET_ACCESS_KEY/REGION/TARGET[/TARGET…]`, Apprise's
/// syntax: the secret may hold slashes (the path parts up to the region are the secret), a
/// target is a phone number (with its country code) or a topic (`#name`); `SESSION_TOKEN@`
/// (or `token=`) for temporary credentials; `key=`/`access=`, `secret=`, `region=`, `to=`,
/// `mode=sms|topic`.
///
/// Every request is `POST https://sns.REGION.amazonaws.com/`, a form signed with Signature
/// Version 4. A phone number gets `Action=Publish` with `PhoneNumber` and belfry's one SMS
/// segment. A topic is looked up by name (`Action=CreateTopic`, which returns the topic's ARN
/// and creates it only if it does not exist, as in Apprise; the ARN is kept for the process's
/// life), then published to: in topic mode (the default when there are only topics) with
/// `Subject` (the title in ASCII, under 100 characters, as SNS requires) and belfry's whole
/// text, in SMS mode with the SMS segment.
///
/// SNS's throttling answers (`Throttling`, `Throttled`, `ThrottlingException`) are retried;
/// other refusals are permanent, with SNS's code and message.
pub struct Sns {
    pub(crate) base: String,
    access_key: String,
    secret: String,
    session_token: Option<String>,
    region: String,
    phones: Vec<String>,
    topics: Vec<String>,
    topic_mode: bool,
    arns: Mutex<HashMap<String, String>>,
    secrets: Secrets,
}

impl std::fmt::Debug for Sns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sns")
            .field("region", &self.region)
            .field("phones", &self.phones.len())
            .field("topics", &self.topics.len())
            .finish_non_exhaustive()
    }
}

/// The largest text published to a topic, in bytes (SNS takes 256 KB).
const TOPIC_TEXT_MAX: usize = 200_000;

impl Sns {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &["to", "token", "access", "key", "secret", "region", "mode"],
            &[],
            "sns",
        )?;
        let q = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        // The secret runs up to the first path part that is a region.
        let at = p.path.iter().position(|s| region(s).is_some());
        let (secret, region_name, mut targets) = match at {
            Some(i) => (
                p.path[..i].join("/"),
                region(&p.path[i]),
                p.path[i + 1..].to_vec(),
            ),
            None => (String::new(), None, Vec::new()),
        };
        if let Some(to) = p.get("to") {
            targets.extend(split_list(to).map(str::to_owned));
        }
        let secret = q("secret").unwrap_or(secret);
        let access_key = q("key").or(q("access")).unwrap_or(p.host.clone());
        let region_name = match q("region") {
            Some(r) => Some(region(&r).ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!("region={r:?} is not an AWS region (us-east-1)"),
                )
            })?),
            None => region_name,
        };
        let session_token = q("token").or(p.user.clone());
        if access_key.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                "the access key id is missing: sns://ACCESS_KEY_ID/SECRET/REGION/TARGET",
            ));
        }
        let Some(region_name) = region_name else {
            return Err(UrlError::new(
                raw,
                "no AWS region (us-east-1) after the secret: sns://ACCESS_KEY_ID/SECRET/REGION/TARGET",
            ));
        };
        if secret.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                "the secret access key is missing: sns://ACCESS_KEY_ID/SECRET/REGION/TARGET",
            ));
        }
        let mut phones = Vec::new();
        let mut topics = Vec::new();
        for t in &targets {
            let d: Option<String> = {
                let s = t.trim();
                (!s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')')))
                .then(|| s.chars().filter(char::is_ascii_digit).collect())
            };
            match d {
                Some(d) if (10..=14).contains(&d.len()) => phones.push(format!("+{d}")),
                _ => {
                    let name = t.trim().trim_start_matches('#');
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(UrlError::new(
                            raw,
                            format!(
                                "the target {t:?} is neither a phone number with its country \
                                 code (10 to 14 digits) nor a topic (#name)"
                            ),
                        ));
                    }
                    topics.push(name.to_owned());
                }
            }
        }
        if phones.is_empty() && topics.is_empty() {
            return Err(UrlError::new(
                raw,
                "no phone number or topic to publish to: sns://…/REGION/+PHONE or …/#topic",
            ));
        }
        let topic_mode = match p.get("mode").map(|m| m.trim().to_ascii_lowercase()) {
            None => !topics.is_empty() && phones.is_empty(),
            Some(m) if !m.is_empty() && "sms".starts_with(&m) => false,
            Some(m) if !m.is_empty() && "topic".starts_with(&m) => true,
            Some(m) => {
                return Err(UrlError::new(
                    raw,
                    format!("mode={m:?} is not sms or topic"),
                ));
            }
        };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&secret);
        if let Some(t) = &session_token {
            secrets.add(t);
        }
        Ok(Sns {
            base: format!("https://sns.{region_name}.amazonaws.com"),
            access_key,
            secret,
            session_token,
            region: region_name,
            phones,
            topics,
            topic_mode,
            arns: Mutex::new(HashMap::new()),
            secrets,
        })
    }

    /// A signed `POST /` of `form` (pairs in the order given), at `now`.
    fn request(&self, form: &[(&str, &str)], now: Timestamp) -> HttpRequest {
        let host = format!("sns.{}.amazonaws.com", self.region);
        Credentials {
            access_key: &self.access_key,
            secret: &self.secret,
            session_token: self.session_token.as_deref(),
            region: &self.region,
            service: "sns",
            host: &host,
            base: &self.base,
        }
        .post(form, now)
    }

    fn phone_publish(&self, n: &Notification, phone: &str, now: Timestamp) -> HttpRequest {
        let text = sms::render(n);
        self.request(
            &[
                ("Action", "Publish"),
                ("Message", &text),
                ("Version", "2010-03-31"),
                ("PhoneNumber", phone),
            ],
            now,
        )
    }

    fn create_topic(&self, topic: &str, now: Timestamp) -> HttpRequest {
        self.request(
            &[
                ("Action", "CreateTopic"),
                ("Version", "2010-03-31"),
                ("Name", topic),
            ],
            now,
        )
    }

    fn topic_publish(&self, n: &Notification, arn: &str, now: Timestamp) -> HttpRequest {
        if !self.topic_mode {
            let text = sms::render(n);
            return self.request(
                &[
                    ("Action", "Publish"),
                    ("Version", "2010-03-31"),
                    ("TopicArn", arn),
                    ("Message", &text),
                ],
                now,
            );
        }
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 50,
                limit: Limit::bytes(TOPIC_TEXT_MAX),
            },
        );
        // SNS's subject: printable ASCII, no line breaks, under 100 characters.
        let ascii: String = n
            .title
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let subject = truncate(ascii.trim(), Limit::bytes(99)).replace('…', "");
        let subject = if subject.is_empty() {
            "belfry".to_owned()
        } else {
            subject
        };
        self.request(
            &[
                ("Action", "Publish"),
                ("Version", "2010-03-31"),
                ("TopicArn", arn),
                ("Message", &text),
                ("Subject", &subject),
            ],
            now,
        )
    }

    /// The ARN of `topic`: kept, else asked of SNS (`CreateTopic`).
    async fn arn(&self, topic: &str, cx: &Context, describe: &str) -> Result<String, Outcome> {
        if let Some(a) = self
            .arns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
        {
            return Ok(a);
        }
        let answer = cx
            .exchange(&self.create_topic(topic, Timestamp::now()), describe, true)
            .await
            .map_err(Outcome::retry)?;
        let text = answer.text();
        let o = classify(answer.status, answer.retry_after.as_deref(), &text);
        if !o.is_delivered() {
            return Err(o);
        }
        let arn = xml_value(&text, "TopicArn").ok_or_else(|| {
            Outcome::retry(format!(
                "{describe}: CreateTopic's answer holds no TopicArn"
            ))
        })?;
        self.arns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_owned(), arn.clone());
        Ok(arn)
    }
}

impl Channel for Sns {
    fn scheme(&self) -> &'static str {
        "sns"
    }

    fn describe(&self) -> String {
        format!(
            "sns://***/***/{}/{} phone(s), {} topic(s)",
            self.region,
            self.phones.len(),
            self.topics.len()
        )
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let now = Timestamp::now();
        let n = msg.notification;
        let mut reqs: Vec<HttpRequest> = self
            .phones
            .iter()
            .map(|p| self.phone_publish(n, p, now))
            .collect();
        reqs.extend(self.topics.iter().map(|t| self.create_topic(t, now)));
        Some(reqs)
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let describe = self.describe();
            let n = msg.notification;
            let phones: Vec<HttpRequest> = self
                .phones
                .iter()
                .map(|p| self.phone_publish(n, p, Timestamp::now()))
                .collect();
            let mut o = crate::http::send_planned(phones, &describe, cx, classify).await;
            if o.is_delivered() {
                for topic in &self.topics {
                    let arn = match self.arn(topic, cx, &describe).await {
                        Ok(a) => a,
                        Err(e) => {
                            o = e;
                            break;
                        }
                    };
                    let req = self.topic_publish(n, &arn, Timestamp::now());
                    o = cx.send(&req, &describe, classify).await;
                    if !o.is_delivered() {
                        break;
                    }
                }
            }
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::sigv4::Signer;
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn keys_region_and_targets_are_read_as_apprise_reads_them() {
        let s = Sns::from_apprise(&format!(
            "sns://AKIDEXAMPLE/{SECRET}/us-west-2/+1 555 123 4567/%23alerts?to=ops"
        ))
        .unwrap();
        assert_eq!(s.secret, SECRET, "the secret keeps its slash");
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.phones, ["+15551234567"]);
        assert_eq!(s.topics, ["alerts", "ops"]);
        assert!(!s.topic_mode, "phones and topics: SMS mode");
        let s = Sns::from_apprise("sns://T0KEN@AKID/SECRET/eu-central-1/%23alerts").unwrap();
        assert_eq!(s.session_token.as_deref(), Some("T0KEN"));
        assert!(s.topic_mode, "only topics: topic mode");
        assert_eq!(s.base, "https://sns.eu-central-1.amazonaws.com");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_secret() {
        for (url, what) in [
            ("sns://AKID/S3CR3T/us-east-1", "no phone number or topic"),
            ("sns://AKID/S3CR3T/15551234567", "no AWS region"),
            ("sns://AKID/S3CR3T/us-east-1/a.b", "the target \"a.b\""),
            (
                "sns://AKID/S3CR3T/us-east-1/%23a?mode=email",
                "mode=\"email\"",
            ),
            (
                "sns://AKID/S3CR3T/us-east-1/%23a?region=mars",
                "region=\"mars\"",
            ),
            (
                "sns://AKID/S3CR3T/us-east-1/%23a?subject=x",
                "unknown option",
            ),
        ] {
            let e = Sns::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }

    #[test]
    fn requests_are_signed_for_sns_in_the_region() {
        let s = Sns::from_apprise(&format!("sns://AKIDEXAMPLE/{SECRET}/us-east-1/15551234567"))
            .unwrap();
        let now = Timestamp::from_millis(1_440_938_160_000); // 2015-08-30T12:36:00Z
        let r = s.request(&[("Action", "Publish"), ("Message", "a b")], now);
        assert_eq!(r.url, "https://sns.us-east-1.amazonaws.com/");
        assert_eq!(r.body, b"Action=Publish&Message=a%20b");
        let auth = &r
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .unwrap()
            .1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sns/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );
        // The same request signed by hand with the signer AWS's examples check.
        let (creq, signed) = Signer::canonical_request(
            "POST",
            "/",
            "",
            &[
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("host".into(), "sns.us-east-1.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
            ],
            b"Action=Publish&Message=a%20b",
        );
        let signer = Signer {
            access_key: "AKIDEXAMPLE",
            secret: SECRET,
            region: "us-east-1",
            service: "sns",
        };
        assert_eq!(
            *auth,
            signer.authorization(&creq, &signed, "20150830T123600Z")
        );
    }

    #[test]
    fn answers_are_read_from_awss_xml() {
        let arn = "<CreateTopicResponse><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:1:alerts</TopicArn></CreateTopicResult></CreateTopicResponse>";
        assert_eq!(
            xml_value(arn, "TopicArn").as_deref(),
            Some("arn:aws:sns:us-east-1:1:alerts")
        );
        let throttled = "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert!(matches!(
            classify(400, None, throttled),
            Outcome::Retry { .. }
        ));
        let denied = "<ErrorResponse><Error><Code>AuthorizationError</Code><Message>not allowed</Message></Error></ErrorResponse>";
        assert!(
            matches!(classify(403, None, denied), Outcome::Permanent { reason } if reason.contains("AuthorizationError"))
        );
    }
}
