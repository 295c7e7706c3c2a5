//! The corpus of Apprise-style URLs (`tests/corpus/apprise_urls.txt`): each URL through the
//! parser, with the verdict Apprise gives it and, where it is accepted, the address of the first
//! request it makes. Every disagreement is listed, not only the first.

use belfry_channels::{Message, parse};

use crate::problem;

/// One line of the corpus.
enum Expect<'a> {
    /// Accepted; the first request's method and address (`None`: no HTTP request).
    Ok(Option<(&'a str, &'a str)>),
    /// Refused with an error containing this text.
    Err(String),
}

/// The address of a request without its query, written the one way equal URLs share: an
/// unreserved character that was percent-encoded decoded (`%5F` is `_`, RFC 3986 §6.2.2.2), and
/// an empty path as `/`.
fn address(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let mut out = String::with_capacity(url.len() + 1);
    let mut rest = url;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let decoded = rest
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        match decoded {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    let after_scheme = out.find("://").map_or(0, |i| i + 3);
    if !out[after_scheme..].contains('/') {
        out.push('/');
    }
    out
}

#[test]
fn apprise_urls_get_apprises_verdict_and_first_request() {
    let corpus = include_str!("../corpus/apprise_urls.txt");
    let n = problem();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (i, line) in corpus.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (expect, url) = match fields.as_slice() {
            ["ok", "-", "-", url] => (Expect::Ok(None), *url),
            ["ok", method, addr, url] => (Expect::Ok(Some((*method, *addr))), *url),
            ["err", text, url] => (Expect::Err(text.replace('_', " ")), *url),
            _ => panic!("corpus line {}: cannot read {line:?}", i + 1),
        };
        checked += 1;
        let at = format!("line {}: {url}", i + 1);
        match (expect, parse(url)) {
            (Expect::Ok(want), Ok(ch)) => {
                let got = ch
                    .plan(&Message {
                        notification: &n,
                        idempotency_key: "n-1:corpus",
                    })
                    .and_then(|reqs| reqs.into_iter().next())
                    .map(|r| (r.method.as_str().to_owned(), address(&r.url)));
                let want = want.map(|(m, a)| (m.to_owned(), address(a)));
                if got != want {
                    wrong.push(format!("{at}\n    expected {want:?}\n    got      {got:?}"));
                }
            }
            (Expect::Ok(_), Err(e)) => wrong.push(format!("{at}\n    refused: {e}")),
            (Expect::Err(text), Ok(ch)) => wrong.push(format!(
                "{at}\n    accepted as {}, expected an error saying {text:?}",
                ch.describe()
            )),
            (Expect::Err(text), Err(e)) => {
                if !e.to_string().contains(&text) {
                    wrong.push(format!("{at}\n    error {e}\n    does not say {text:?}"));
                }
            }
        }
    }
    assert!(checked >= 60, "the corpus holds {checked} URLs");
    assert!(
        wrong.is_empty(),
        "{} of {checked} URLs disagree with Apprise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
