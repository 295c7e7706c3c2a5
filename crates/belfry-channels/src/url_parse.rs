//! The shared URL handling every family parses with: percent-decoding, the query, the
//! redaction of secrets for messages, and the error for a URL belfry cannot use.

use percent_encoding::percent_decode_str;

/// A channel URL that belfry cannot use. The message shows the URL redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel URL {redacted}: {why}")]
pub struct UrlError {
    redacted: String,
    why: String,
}

impl UrlError {
    pub(crate) fn new(raw: &str, why: impl Into<String>) -> Self {
        UrlError {
            redacted: redact_url(raw),
            why: why.into(),
        }
    }

    /// The URL, redacted.
    pub fn url(&self) -> &str {
        &self.redacted
    }

    /// What is wrong with it.
    pub fn why(&self) -> &str {
        &self.why
    }
}

/// Schemes whose host part is a host name, not a token: their host is shown when redacting.
const HOST_IS_PUBLIC: &[&str] = &[
    "json",
    "jsons",
    "http",
    "https",
    "xml",
    "xmls",
    "form",
    "forms",
    "gotify",
    "gotifys",
    "mmost",
    "mmosts",
    "rocket",
    "rockets",
    "hassio",
    "hassios",
    "signal",
    "signals",
    "bark",
    "barks",
    "workflow",
    "workflows",
    "mailto",
    "mailtos",
    "cmd",
    "rsyslog",
    "irc",
    "ircs",
    "xmpp",
    "xmpps",
    "apprise",
    "apprises",
    "nctalk",
    "nctalks",
    "mastodon",
    "mastodons",
    "toot",
    "toots",
    "ses",
    "azure",
    "o365",
];

/// Schemes whose user information is a credential through and through (an API key, an
/// account id): none of it is shown when redacting.
const USER_IS_SECRET: &[&str] = &["sendgrid", "twilio", "postmark", "resend", "brevo"];

/// A URL with its secrets hidden, safe to print or store: any password becomes `***`, any
/// user name alone `***`, the host is kept only where it is a host name (not a token), and
/// everything after it becomes `…`.
///
/// Works on strings that do not parse, too: error messages about bad URLs use it.
pub fn redact_url(raw: &str) -> String {
    let raw = raw.trim();
    let Some((scheme, rest)) = raw.split_once("://") else {
        return "(a URL without scheme://)".to_owned();
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return "(a URL with an unreadable scheme)".to_owned();
    }
    let scheme_lc = scheme.to_ascii_lowercase();
    let mut end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // Rocket.Chat writes its webhook as `ID/TOKEN@host`: the user part holds a slash.
    if scheme_lc.starts_with("rocket")
        && let Some(at) = rest.find('@')
        && rest[..at].matches('/').count() == 1
        && !rest[..at].contains(['?', '#'])
    {
        end = rest[at..]
            .find(['/', '?', '#'])
            .map_or(rest.len(), |i| at + i);
    }
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let mut out = format!("{scheme}://");
    let user_secret = USER_IS_SECRET.contains(&scheme.to_ascii_lowercase().as_str());
    if let Some(ui) = userinfo {
        match ui.split_once(':') {
            Some(_) if user_secret => out.push_str("***:***@"),
            Some((user, _)) if !user.is_empty() && !looks_secret(user) => {
                out.push_str(user);
                out.push_str(":***@");
            }
            _ => out.push_str("***@"),
        }
    }
    // `ntfy://topic` is ntfy.sh's topic (a secret), `ntfys://host/topic` a server's name.
    let ntfy_server = matches!(scheme_lc.as_str(), "ntfy" | "ntfys")
        && tail
            .strip_prefix('/')
            .is_some_and(|p| !p.is_empty() && !p.starts_with(['?', '#', '/']));
    // `matrix://ID` is a t2bot.io hook's id (a secret); `matrix://TOKEN@hs.example.org` a
    // homeserver, which has a dot (or is an IP address).
    let matrix_server = matches!(scheme_lc.as_str(), "matrix" | "matrixs")
        && (host.contains('.') || host.starts_with('['));
    let public = HOST_IS_PUBLIC.contains(&scheme_lc.as_str()) || ntfy_server || matrix_server;
    if public {
        out.push_str(host);
    } else if !host.is_empty() {
        out.push_str("***");
    }
    if !tail.is_empty() && tail != "/" {
        out.push_str("/…");
    }
    out
}

/// A long run of letters and digits is more likely a token than a user name.
fn looks_secret(s: &str) -> bool {
    s.len() >= 20
}

/// The query of a URL as (key, value) pairs, percent-decoded but with `+` kept as `+`:
/// Apprise gives a leading `+`, `-` and `:` meanings of their own.
pub(crate) fn query_pairs(raw: &str) -> Vec<(String, String)> {
    let Some(q) = raw.split_once('?').map(|(_, q)| q) else {
        return Vec::new();
    };
    // As Apprise reads a query: everything after the `?` (a `#` is a character of it, as in
    // `?to=#team`, not the start of a fragment), pairs split at `&` and at `;`.
    q.split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The options Apprise (2.3) reads for every service; belfry accepts them where they make
/// sense and ignores the rest rather than reject a URL that works with Apprise.
pub(crate) const APPRISE_GLOBAL_OPTIONS: &[&str] = &[
    "format", "overflow", "emojis", "rto", "cto", "verify", "tz", "store", "redirect", "retry",
    "wait", "optional", "user", "pass", "password", "port",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_tokens_and_paths() {
        assert_eq!(
            redact_url("json://bob:hunter2@example.com:8080/hook?x=1"),
            "json://bob:***@example.com:8080/…"
        );
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("slack://T000/B000/XXXXXXXX"), "slack://***/…");
        assert_eq!(
            redact_url("slack://botname@T000/B000/XXXXXXXX/#ops"),
            "slack://***@***/…"
        );
        assert_eq!(redact_url("json://localhost"), "json://localhost");
        assert_eq!(redact_url("ntfy://SECRETTOPIC"), "ntfy://***");
        assert_eq!(
            redact_url("ntfys://u:p@ntfy.example.com/alerts"),
            "ntfys://u:***@ntfy.example.com/…"
        );
        assert_eq!(
            redact_url("rocket://SECRETID/SECRETTOKEN@chat.example.com/#ops"),
            "rocket://***@chat.example.com/…"
        );
        assert_eq!(
            redact_url("tgram://123456789:SECRETTOKEN/-100123"),
            "tgram://***/…"
        );
        assert_eq!(
            redact_url("sendgrid://KEY:alerts@example.com/a@b.org"),
            "sendgrid://***:***@***/…"
        );
        assert_eq!(
            redact_url("mailtos://bob:pw@example.com?to=a@b.org"),
            "mailtos://bob:***@example.com/…"
        );
        assert_eq!(
            redact_url("matrixs://SECRETTOKEN@matrix.example.org/#ops"),
            "matrixs://***@matrix.example.org/…"
        );
        assert_eq!(redact_url("matrix://SECRETT2BOTID"), "matrix://***");
        assert_eq!(redact_url("no-scheme-secret"), "(a URL without scheme://)");
        for raw in [
            "json://u:SECRETPASS@h/p",
            "slack://SECRETA/SECRETB/SECRETC",
            "https://h/SECRETPATH?token=SECRETQ",
            "jsons://SECRETUSERNAMEISLONGENOUGH:x@h",
            "rocket://SECRETA/SECRETB@h/#c",
            "pover://SECRETUSER@SECRETTOKEN/phone",
            "discord://SECRETID/SECRETTOKEN",
            "gotify://h/SECRETTOKEN",
            "pagerduty://SECRETI@SECRETA/src",
        ] {
            assert!(!redact_url(raw).contains("SECRET"), "{raw}");
        }
    }

    #[test]
    fn query_pairs_keep_apprise_prefixes() {
        let q = query_pairs("json://h/p?+X-Token=a%20b&-page=2&:title=&method=put");
        assert_eq!(
            q,
            [
                ("+X-Token".to_string(), "a b".to_string()),
                ("-page".into(), "2".into()),
                (":title".into(), "".into()),
                ("method".into(), "put".into()),
            ]
        );
    }
}
