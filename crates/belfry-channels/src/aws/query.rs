//! What AWS's query APIs (SNS, SES's first API) share: a region as Apprise reads one, a form
//! `POST /` signed with Signature Version 4, and the XML answers.

use belfry_core::Timestamp;

use super::sigv4::{Signer, amz_date};
use crate::outcome::shorten;
use crate::{HttpRequest, Method, Outcome};

/// An AWS region as Apprise reads one: `us-east-1` (any case, trimmed), lowercased.
pub(super) fn region(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let (country, rest) = s.split_once('-')?;
    let (area, no) = rest.rsplit_once('-')?;
    (country.len() == 2
        && country.bytes().all(|b| b.is_ascii_lowercase())
        && !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && !no.is_empty()
        && no.bytes().all(|b| b.is_ascii_digit()))
    .then_some(s)
}

/// Who signs a request, and where it goes.
pub(super) struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    /// The signing name of the service: `sns`, `ses`.
    pub service: &'a str,
    /// The host the signature names (`sns.us-east-1.amazonaws.com`).
    pub host: &'a str,
    /// Where the request is sent: `https://` and the host, unless a test points it elsewhere.
    pub base: &'a str,
}

impl Credentials<'_> {
    /// A signed `POST /` of `form` (pairs in the order given), at `now`.
    pub(super) fn post(&self, form: &[(&str, &str)], now: Timestamp) -> HttpRequest {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            ser.append_pair(k, v);
        }
        // AWS decodes `+` as a space too, but `%20` is what its own encoders write.
        let body = ser.finish().replace('+', "%20").into_bytes();
        let date = amz_date(&now.to_rfc3339());
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut signed_headers = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("host".to_owned(), self.host.to_owned()),
            ("x-amz-date".to_owned(), date.clone()),
        ];
        if let Some(t) = self.session_token {
            signed_headers.push(("x-amz-security-token".to_owned(), t.to_owned()));
        }
        let (creq, signed) = Signer::canonical_request("POST", "/", "", &signed_headers, &body);
        let signer = Signer {
            access_key: self.access_key,
            secret: self.secret,
            region: self.region,
            service: self.service,
        };
        let mut headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("X-Amz-Date".to_owned(), date.clone()),
        ];
        if let Some(t) = self.session_token {
            headers.push(("X-Amz-Security-Token".to_owned(), t.to_owned()));
        }
        headers.push((
            "Authorization".to_owned(),
            signer.authorization(&creq, &signed, &date),
        ));
        HttpRequest {
            method: Method::Post,
            url: format!("{}/", self.base),
            headers,
            body,
        }
    }
}

/// The text of the first `<tag>…</tag>` in an XML answer, entities decoded.
pub(super) fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let v = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let v = v.trim().to_owned();
    (!v.is_empty()).then_some(v)
}

/// AWS's answers: 2xx delivered; throttling (a 400 with code `Throttling`, `Throttled`,
/// `ThrottlingException` or `RequestLimitExceeded`) retried; other refusals by status, named
/// with the service's code and message.
pub(super) fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered;
    }
    let code = xml_value(body, "Code").unwrap_or_default();
    let message = xml_value(body, "Message").unwrap_or_default();
    if matches!(
        code.as_str(),
        "Throttling" | "Throttled" | "ThrottlingException" | "RequestLimitExceeded"
    ) {
        return Outcome::retry(format!("HTTP {status}: {code}: {}", shorten(&message, 200)));
    }
    match crate::default_classify(status, retry_after, body) {
        Outcome::Permanent { .. } if !code.is_empty() => {
            Outcome::permanent(format!("HTTP {status}: {code}: {}", shorten(&message, 200)))
        }
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_as_apprise_reads_them() {
        assert_eq!(region(" US-East-1 ").as_deref(), Some("us-east-1"));
        assert_eq!(region("ap-southeast-2").as_deref(), Some("ap-southeast-2"));
        for bad in ["us-east", "useast-1", "u-east-1", "15551234567", "us--1"] {
            assert_eq!(region(bad), None, "{bad}");
        }
    }
}
