//! Mastodon, read with Apprise's syntax: a status posted through an instance's REST API with an
//! application's access token.

use std::sync::Mutex;

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::{Value, json};

use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Mastodon: `mastodons://TOKEN@HOST[:PORT][/TARGET…]` (`mastodon://` over plain HTTP;
/// `toots://` and `toot://` post publicly unless told otherwise), Apprise's syntax. A target is
/// an account to mention (`@user`, `@user@other.host`; a bare name is an account too) or a
/// hashtag (`#name`). `token=`, `to=`, `visibility=default|direct|private|unlisted|public` (a
/// start of a name is enough), `spoiler=` (a content warning), `language=`, `sensitive=`,
/// `ping=@user,#tag` (more mentions and hashtags), `key=`; `batch=` and `cache=` are read and
/// change nothing (belfry posts no media).
///
/// Each notification is one `POST /api/v1/statuses` with the token as bearer and
/// `{"status", "sensitive", "visibility", "spoiler_text", "language"}` (the last three only
/// when set), and an `Idempotency-Key` header derived from the notification, so that a retry of
/// a status the instance already took is not posted twice. The status is belfry's plain text,
/// the mentions and hashtags after it, all within Mastodon's default 500 characters; an `@`
/// followed by a name in belfry's text is kept from mentioning anyone. With `visibility=direct`
/// the mentioned accounts come first, as a direct message needs them; with no account to
/// mention, the token's own account is asked for (`GET /api/v1/accounts/verify_credentials`,
/// once per process) and mentioned, as in Apprise.
pub struct Mastodon {
    scheme: &'static str,
    pub(crate) base: String,
    token: String,
    users: Vec<String>,
    /// Hashtags and `ping=` tokens, said after the text.
    pings: Vec<String>,
    visibility: Option<&'static str>,
    spoiler: Option<String>,
    key: Option<String>,
    language: Option<String>,
    sensitive: bool,
    verify_tls: bool,
    /// The token's own account, once asked for (direct messages without a target).
    me: Mutex<Option<String>>,
    secrets: Secrets,
}

impl std::fmt::Debug for Mastodon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mastodon")
            .field("destination", &self.describe())
            .field("visibility", &self.visibility)
            .finish_non_exhaustive()
    }
}

/// Mastodon's visibilities in Apprise's order, which decides what a start of a name matches
/// (`d` is `default`). `default` sends none: the account's own setting applies.
const VISIBILITIES: &[&str] = &["default", "direct", "private", "unlisted", "public"];

/// The options Apprise reads for Mastodon.
const OPTIONS: &[&str] = &[
    "token",
    "visibility",
    "spoiler",
    "key",
    "language",
    "cache",
    "sensitive",
    "to",
    "batch",
    "ping",
];

/// A status's length on a Mastodon instance that keeps the default.
const STATUS_MAX: usize = 500;

/// The room the mentions and hashtags may take, so that the alert itself keeps some.
const TOKENS_MAX: usize = 400;

/// `@name` or `@name@host` for an account as Apprise reads one (`name`, `@name`,
/// `name@host`, `@name@host`); `None` for anything else.
fn account(s: &str) -> Option<String> {
    let s = s.trim();
    let bare = s.strip_prefix('@').unwrap_or(s);
    let (name, host) = match bare.split_once('@') {
        Some((n, h)) => (n, Some(h)),
        None => (bare, None),
    };
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    });
    (name_ok && host_ok).then(|| format!("@{bare}"))
}

/// Whether `#name` is a hashtag Mastodon recognises: a letter or digit, then letters, digits
/// and underscores, and not only digits.
fn is_hashtag(s: &str) -> bool {
    let Some(v) = s.strip_prefix('#') else {
        return false;
    };
    let mut chars = v.chars();
    chars.next().is_some_and(char::is_alphanumeric)
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && !v.chars().filter(|c| *c != '_').all(|c| c.is_ascii_digit())
}

/// `text` with every `@` that starts a name followed by a zero-width space: a job's output
/// that holds `@someone` must not mention a stranger.
fn defuse_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@'
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
        {
            out.push('\u{200B}');
        }
    }
    out
}

impl Mastodon {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = match p.scheme.as_str() {
            "mastodons" => "mastodons",
            "toot" => "toot",
            "toots" => "toots",
            _ => "mastodon",
        };
        p.check_keys(raw, OPTIONS, &[], scheme)?;
        let q = |k: &str| p.get(k).filter(|v| !v.trim().is_empty());
        let token = match q("token") {
            Some(t) => t.to_owned(),
            None if p.password.is_none() => p.user.clone().unwrap_or_default(),
            None => String::new(),
        };
        if token.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the access token is missing: {scheme}://TOKEN@HOST[/@USER][/#TAG]"),
            ));
        }
        if p.host.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the instance is missing: {scheme}://TOKEN@HOST"),
            ));
        }
        let mut targets: Vec<String> = p.path.clone();
        if let Some(to) = p.get("to") {
            targets.extend(split_list(to).map(str::to_owned));
        }
        let mut users: Vec<String> = Vec::new();
        let mut pings: Vec<String> = Vec::new();
        let add = |list: &mut Vec<String>, t: String| {
            if !list.iter().any(|x| x.to_lowercase() == t.to_lowercase()) {
                list.push(t);
            }
        };
        for t in &targets {
            if let Some(a) = account(t) {
                add(&mut users, a);
            } else if is_hashtag(t.trim()) {
                add(&mut pings, t.trim().to_owned());
            } else {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "the target {t:?} is neither an account (@user, @user@host) nor a \
                         hashtag (#name)"
                    ),
                ));
            }
        }
        if let Some(ping) = p.get("ping") {
            for t in split_list(ping) {
                let token = if t.starts_with('@') {
                    account(t)
                } else {
                    is_hashtag(t).then(|| t.to_owned())
                };
                match token {
                    Some(token) => add(&mut pings, token),
                    None => {
                        return Err(UrlError::new(
                            raw,
                            format!("ping={t:?} is neither @user nor #hashtag"),
                        ));
                    }
                }
            }
        }
        let visibility = match q("visibility") {
            Some(v) => {
                let l = v.trim().to_ascii_lowercase();
                match VISIBILITIES.iter().find(|x| x.starts_with(&l)) {
                    Some(x) => Some(*x),
                    None => {
                        return Err(UrlError::new(
                            raw,
                            format!("visibility={v:?} is not one of {}", VISIBILITIES.join(", ")),
                        ));
                    }
                }
            }
            None if scheme.starts_with("toot") => Some("public"),
            None => None,
        }
        .filter(|v| *v != "default");
        let flag = |k: &str, default: bool| match q(k) {
            Some(v) => parse_bool(raw, k, v),
            None => Ok(default),
        };
        let sensitive = flag("sensitive", false)?;
        flag("batch", true)?;
        flag("cache", true)?;
        let verify_tls = flag("verify", true)?;
        let tokens_len: usize = users
            .iter()
            .chain(&pings)
            .map(|t| t.chars().count() + 1)
            .sum();
        if tokens_len > TOKENS_MAX {
            return Err(UrlError::new(
                raw,
                format!(
                    "the mentions and hashtags take {tokens_len} of a status's {STATUS_MAX} \
                     characters; at most {TOKENS_MAX} leave room for the alert"
                ),
            ));
        }
        let secure = matches!(scheme, "mastodons" | "toots");
        let host = if p.host.contains(':') && !p.host.starts_with('[') {
            format!("[{}]", p.host)
        } else {
            p.host.clone()
        };
        let base = match p.port {
            Some(port) => format!("{}://{host}:{port}", if secure { "https" } else { "http" }),
            None => format!("{}://{host}", if secure { "https" } else { "http" }),
        };
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&token);
        Ok(Mastodon {
            scheme,
            base,
            token,
            users,
            pings,
            visibility,
            spoiler: q("spoiler").map(str::to_owned),
            key: q("key").map(str::to_owned),
            language: q("language").map(|l| l.trim().to_owned()),
            sensitive,
            verify_tls,
            me: Mutex::new(None),
            secrets,
        })
    }

    fn direct(&self) -> bool {
        self.visibility == Some("direct")
    }

    /// The status for `n`: for a direct message the accounts first (`me` when there is none),
    /// then belfry's text, then the mentions and hashtags not already said, within
    /// [`STATUS_MAX`] characters.
    fn status(&self, n: &Notification, me: Option<&str>) -> String {
        let mut head: Vec<&str> = Vec::new();
        let mut tail: Vec<&str> = Vec::new();
        if self.direct() {
            head.extend(self.users.iter().map(String::as_str));
            head.extend(me.filter(|_| self.users.is_empty()));
        } else {
            tail.extend(self.users.iter().map(String::as_str));
        }
        for t in &self.pings {
            if !head.iter().chain(&tail).any(|h| h.eq_ignore_ascii_case(t)) {
                tail.push(t);
            }
        }
        let head = head.join(" ");
        let tail = tail.join(" ");
        let taken = [&head, &tail]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().count() + 1)
            .sum::<usize>();
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 10,
                limit: Limit::chars(STATUS_MAX.saturating_sub(taken)),
            },
        );
        // Each defused `@` takes one more character; cut again so that the whole still fits.
        let mut text = defuse_mentions(&text);
        let room = STATUS_MAX.saturating_sub(taken);
        if text.chars().count() > room {
            text = belfry_core::render::truncate(&text, Limit::chars(room));
        }
        let mut status = String::new();
        for part in [head.as_str(), text.as_str(), tail.as_str()] {
            if part.is_empty() {
                continue;
            }
            if !status.is_empty() {
                status.push(' ');
            }
            status.push_str(part);
        }
        status
    }

    /// The `POST /api/v1/statuses` for `n`.
    fn post(&self, msg: &Message<'_>, me: Option<&str>) -> HttpRequest {
        let mut body = json!({
            "status": self.status(msg.notification, me),
            "sensitive": self.sensitive,
        });
        if let Some(v) = self.visibility {
            body["visibility"] = json!(v);
        }
        if let Some(s) = &self.spoiler {
            body["spoiler_text"] = json!(s);
        }
        if let Some(l) = &self.language {
            body["language"] = json!(l);
        }
        let key = match &self.key {
            Some(k) => format!("{k}-{}", msg.idempotency_key),
            None => msg.idempotency_key.to_owned(),
        };
        HttpRequest {
            method: Method::Post,
            url: format!("{}/api/v1/statuses", self.base),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Authorization".to_owned(), format!("Bearer {}", self.token)),
                ("Idempotency-Key".to_owned(), key),
            ],
            body: serde_json::to_vec(&body).expect("a JSON value serialises"),
        }
    }

    fn whoami(&self) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: format!("{}/api/v1/accounts/verify_credentials", self.base),
            headers: vec![("Authorization".to_owned(), format!("Bearer {}", self.token))],
            body: Vec::new(),
        }
    }

    /// The token's own account as `@name`: kept, else asked of the instance.
    async fn me(&self, cx: &Context, describe: &str) -> Result<String, Outcome> {
        if let Some(me) = self.me.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(me);
        }
        let answer = cx
            .exchange(&self.whoami(), describe, self.verify_tls)
            .await
            .map_err(Outcome::retry)?;
        let text = answer.text();
        let o = crate::default_classify(answer.status, answer.retry_after.as_deref(), &text);
        if !o.is_delivered() {
            return Err(match o {
                Outcome::Permanent { reason } => Outcome::permanent(format!(
                    "{describe}: cannot look up the token's own account (a direct message with \
                     no one to mention; the token needs read:accounts): {reason}"
                )),
                o => o,
            });
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let name = v["username"]
            .as_str()
            .filter(|u| account(u).is_some())
            .ok_or_else(|| {
                Outcome::retry(format!(
                    "{describe}: verify_credentials answered no username: {}",
                    shorten(&text, 200)
                ))
            })?;
        let me = format!("@{name}");
        *self.me.lock().unwrap_or_else(|p| p.into_inner()) = Some(me.clone());
        Ok(me)
    }
}

impl Channel for Mastodon {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        let host = self.base.split_once("://").map_or("", |(_, h)| h);
        let n = self.users.len() + self.pings.len();
        if n == 0 {
            format!("{}://***@{host}", self.scheme)
        } else {
            format!(
                "{}://***@{host} ({n} mention{} and hashtag{})",
                self.scheme,
                if n == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" }
            )
        }
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let me = self.me.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if self.direct() && self.users.is_empty() && me.is_none() {
            return Some(vec![self.whoami()]);
        }
        Some(vec![self.post(msg, me.as_deref())])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let describe = self.describe();
            let me = if self.direct() && self.users.is_empty() {
                match self.me(cx, &describe).await {
                    Ok(me) => Some(me),
                    Err(o) => return self.secrets.scrub_outcome(o),
                }
            } else {
                None
            };
            let req = self.post(msg, me.as_deref());
            let o = cx
                .send_checking(&req, &describe, self.verify_tls, crate::default_classify)
                .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_options_are_read_as_apprise_reads_them() {
        let m = Mastodon::from_apprise(
            "mastodons://T0KEN@social.example:8443/@ada/bob@other.example/%23ops?to=carol,%23Ops\
             &ping=@dan,%23backup&visibility=un&spoiler=cw&language=en&sensitive=yes",
        )
        .unwrap();
        assert_eq!(m.base, "https://social.example:8443");
        assert_eq!(m.token, "T0KEN");
        assert_eq!(m.users, ["@ada", "@bob@other.example", "@carol"]);
        assert_eq!(m.pings, ["#ops", "@dan", "#backup"], "#Ops is #ops again");
        assert_eq!(m.visibility, Some("unlisted"));
        assert!(m.sensitive);
        let m = Mastodon::from_apprise("toot://x@host?token=T0KEN").unwrap();
        assert_eq!(m.token, "T0KEN");
        assert_eq!(m.base, "http://host");
        assert_eq!(m.visibility, Some("public"), "toot:// posts publicly");
        let m = Mastodon::from_apprise("toots://T0KEN@host?visibility=d").unwrap();
        assert_eq!(m.visibility, None, "d is default: the account's setting");
        let m = Mastodon::from_apprise("mastodon://T0KEN@host?visibility=di").unwrap();
        assert!(m.direct());
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_token() {
        for (url, what) in [
            ("mastodons://host", "access token is missing"),
            ("mastodons://u:S3CR3Tpw@host", "access token is missing"),
            ("mastodons://S3CR3T@host/a.b", "the target \"a.b\""),
            ("mastodons://S3CR3T@host/%23123", "the target \"#123\""),
            (
                "mastodons://S3CR3T@host?visibility=friends",
                "visibility=\"friends\"",
            ),
            ("mastodons://S3CR3T@host?ping=dan", "ping=\"dan\""),
            (
                "mastodons://S3CR3T@host?sensitive=maybe",
                "sensitive=\"maybe\"",
            ),
            (
                "mastodons://S3CR3T@host?subject=x",
                "unknown option \"subject\"",
            ),
        ] {
            let e = Mastodon::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
        let many: Vec<String> = (0..50).map(|i| format!("%23tag{i:05}")).collect();
        let e = Mastodon::from_apprise(&format!("toots://T0KEN@host/{}", many.join("/")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("leave room for the alert"), "{e}");
    }

    #[test]
    fn mentions_in_belfrys_text_are_defused() {
        assert_eq!(
            defuse_mentions("mail @ada, a @ b, x@y"),
            "mail @\u{200B}ada, a @ b, x@\u{200B}y"
        );
        assert!(is_hashtag("#ops_2") && !is_hashtag("#_ops") && !is_hashtag("#1_2"));
        assert_eq!(account(" @ada@x.org").as_deref(), Some("@ada@x.org"));
        assert_eq!(account("a-b"), None);
    }
}
