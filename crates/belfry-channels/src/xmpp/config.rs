//! An XMPP URL read as Apprise reads it: the account, the server, the security and the
//! targets.

use crate::secrets::Secrets;
use crate::url_parse::{UrlError, decode};
use crate::url_parts::{Parts, parse_bool, split_list};

/// XMPP: `xmpp://USER:PASSWORD@HOST[:PORT]/TARGET…`, Apprise's syntax. `USER` is the account's
/// local part (its domain is `HOST`) or a whole `local@domain`. A target is a JID (`name`,
/// `name@domain`, `name@domain/resource`; a bare name is on `HOST`) or a group chat,
/// `#room@conference.domain`; targets are path parts (`%2F` for a resource's slash) or `to=`.
/// With no target, the message goes to the account itself, as in Apprise.
///
/// `mode=starttls|tls|none` (the start of a name is enough): `xmpps://` upgrades with STARTTLS
/// on port 5222 unless `mode=tls` asks for TLS from the start (port 5223); `xmpp://` is plain
/// text, the password included, unless a mode says otherwise. The certificate is checked
/// against the system's trust store for the account's domain unless `verify=no`.
/// `subject=yes` sends the headline as the message's subject; `name=` is the nick in group
/// chats (`belfry` by default); `roster=` and `keepalive=` are read and change nothing (belfry
/// asks for no roster and holds one session per notification).
///
/// One session per notification: the stream, TLS, SASL PLAIN, a resource bound, each group
/// chat joined, one message per target, the stream closed.
#[derive(Clone)]
pub struct Xmpp {
    pub(super) security: Security,
    pub(super) verify_tls: bool,
    pub(super) host: String,
    pub(super) port: u16,
    /// The account's local part and domain.
    pub(super) local: String,
    pub(super) domain: String,
    pub(super) password: String,
    /// (JID, whether it is a group chat).
    pub(super) targets: Vec<(String, bool)>,
    pub(super) subject: bool,
    pub(super) nick: String,
    pub(super) describe: String,
    pub(super) secrets: Secrets,
}

impl std::fmt::Debug for Xmpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xmpp")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// How the connection is protected (Apprise's `mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Security {
    StartTls,
    /// TLS from the first byte (XEP-0368's direct TLS).
    Tls,
    None,
}

/// Apprise's modes in its order, which decides what a start of a name means.
const MODES: [(&str, Security); 3] = [
    ("starttls", Security::StartTls),
    ("tls", Security::Tls),
    ("none", Security::None),
];

/// The options Apprise reads for XMPP.
const OPTIONS: &[&str] = &["mode", "roster", "subject", "keepalive", "to", "name"];

/// A JID's parts: `local@domain/resource`, the domain `default` when absent.
fn jid(raw: &str, t: &str, default: &str) -> Result<String, UrlError> {
    let bad = || {
        UrlError::new(
            raw,
            format!("{t:?} is not a Jabber ID (NAME, NAME@DOMAIN or NAME@DOMAIN/RESOURCE)"),
        )
    };
    let (bare, resource) = match t.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (t, None),
    };
    let (local, domain) = bare.split_once('@').unwrap_or((bare, default));
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.contains(|c: char| {
                c.is_whitespace() || matches!(c, '@' | '/' | '<' | '>' | '&' | '\'' | '"')
            })
    };
    if !part_ok(local) || !part_ok(domain) {
        return Err(bad());
    }
    match resource {
        None => Ok(format!("{local}@{domain}")),
        Some(r)
            if !r.is_empty()
                && !r.contains(char::is_whitespace)
                && !r.contains(['<', '>', '&', '\'', '"']) =>
        {
            Ok(format!("{local}@{domain}/{r}"))
        }
        Some(_) => Err(bad()),
    }
}

impl Xmpp {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, OPTIONS, &[], &p.scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                "the XMPP server is missing: xmpp://USER:PASSWORD@HOST[:PORT]/TARGET",
            ));
        }
        let (Some(user), Some(password)) = (
            p.user.as_deref().map(str::trim).filter(|u| !u.is_empty()),
            p.password.clone().filter(|pw| !pw.is_empty()),
        ) else {
            return Err(UrlError::new(
                raw,
                "XMPP signs in with an account: xmpp://USER:PASSWORD@HOST",
            ));
        };
        let host = p
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let account = jid(raw, user, &host)?;
        if account.contains('/') {
            return Err(UrlError::new(
                raw,
                "the account is NAME or NAME@DOMAIN, without a resource (belfry binds its own)",
            ));
        }
        let (local, domain) = match account.split_once('@') {
            Some((l, d)) => (l.to_owned(), d.to_owned()),
            None => (account.clone(), host.clone()),
        };
        let mut written: Vec<String> = p.path.clone();
        if let Some(to) = p.get("to") {
            written.extend(split_list(&decode(to)).map(str::to_owned));
        }
        let mut targets = Vec::new();
        for t in &written {
            let t = t.trim();
            match t.strip_prefix('#') {
                Some(room) => {
                    let room = jid(raw, room, &host)?;
                    if room.contains('/') {
                        return Err(UrlError::new(
                            raw,
                            format!("{t:?}: a group chat is #ROOM@SERVICE, without a resource"),
                        ));
                    }
                    targets.push((room, true));
                }
                None => targets.push((jid(raw, t, &host)?, false)),
            }
        }
        let mut security = if p.scheme == "xmpps" {
            Security::StartTls
        } else {
            Security::None
        };
        if let Some(m) = p.get("mode").map(str::trim).filter(|m| !m.is_empty()) {
            let lower = m.to_ascii_lowercase();
            security = MODES
                .iter()
                .find(|(name, _)| name.starts_with(&lower))
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    UrlError::new(raw, format!("mode={m:?} is not one of starttls, tls, none"))
                })?;
            // As Apprise: xmpps:// with mode=none is still protected.
            if p.scheme == "xmpps" && security == Security::None {
                security = Security::StartTls;
            }
        }
        let flag = |k: &str, default: bool| match p.get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, k, v),
            None => Ok(default),
        };
        let subject = flag("subject", false)?;
        flag("roster", false)?;
        flag("keepalive", false)?;
        let verify_tls = flag("verify", true)?;
        let nick = match p.get("name").map(str::trim).filter(|n| !n.is_empty()) {
            None => "belfry".to_owned(),
            Some(n) if n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => n.to_owned(),
            Some(n) => {
                return Err(UrlError::new(
                    raw,
                    format!("name={n:?}: a group chat nick is letters, digits and _"),
                ));
            }
        };
        let port = p.port.unwrap_or(if security == Security::Tls {
            5223
        } else {
            5222
        });
        let scheme = if security == Security::None {
            "xmpp"
        } else {
            "xmpps"
        };
        let shown: Vec<String> = targets
            .iter()
            .map(|(j, room)| if *room { format!("#{j}") } else { j.clone() })
            .collect();
        let describe = format!(
            "{scheme}://{local}%40{domain}:***@{host}:{port}/{}",
            if shown.is_empty() {
                "(itself)".to_owned()
            } else {
                shown.join(",")
            }
        );
        let mut secrets = Secrets::default();
        secrets.add(&password);
        Ok(Xmpp {
            security,
            verify_tls,
            host,
            port,
            local,
            domain,
            password,
            targets,
            subject,
            nick,
            describe,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_targets_and_modes_are_read_as_apprise_reads_them() {
        let x = Xmpp::from_apprise(
            "xmpps://belfry:pw@chat.example.org/alice/bob@other.org/carol@other.org%2Fphone/%23ops@conference.example.org?to=dave&subject=yes&name=Bot_1",
        )
        .unwrap();
        assert_eq!(
            (x.local.as_str(), x.domain.as_str()),
            ("belfry", "chat.example.org")
        );
        assert_eq!(
            x.targets,
            [
                ("alice@chat.example.org".to_owned(), false),
                ("bob@other.org".to_owned(), false),
                ("carol@other.org/phone".to_owned(), false),
                ("ops@conference.example.org".to_owned(), true),
                ("dave@chat.example.org".to_owned(), false),
            ]
        );
        assert_eq!(
            (x.security, x.port, x.subject, x.nick.as_str()),
            (Security::StartTls, 5222, true, "Bot_1")
        );
        assert!(
            !x.describe.contains("pw")
                && x.describe
                    .starts_with("xmpps://belfry%40chat.example.org:***@chat.example.org:5222/"),
            "{}",
            x.describe
        );
        assert!(!format!("{x:?}").contains(":pw"));

        let x = Xmpp::from_apprise(
            "xmpp://me%40example.com:pw@xmpp.example.com?mode=t&roster=yes&keepalive=no",
        )
        .unwrap();
        assert_eq!((x.security, x.port), (Security::Tls, 5223));
        assert_eq!((x.local.as_str(), x.domain.as_str()), ("me", "example.com"));
        assert!(x.targets.is_empty(), "no target: the account itself");
        let x = Xmpp::from_apprise("xmpp://me:pw@h/a").unwrap();
        assert_eq!((x.security, x.port), (Security::None, 5222));
        let x = Xmpp::from_apprise("xmpps://me:pw@h/a?mode=none").unwrap();
        assert_eq!(x.security, Security::StartTls, "xmpps:// stays protected");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, what) in [
            ("xmpp://me@h/a", "signs in with an account"),
            ("xmpp://:S3CR3T@h/a", "signs in with an account"),
            ("xmpp://me:S3CR3T@h/a%20b", "not a Jabber ID"),
            ("xmpp://me:S3CR3T@h/a@b@c", "not a Jabber ID"),
            ("xmpp://me:S3CR3T@h/%23room%2Fres", "without a resource"),
            ("xmpp://me:S3CR3T@h/a?mode=ssl", "mode=\"ssl\""),
            ("xmpp://me:S3CR3T@h/a?name=a-b", "name=\"a-b\""),
            ("xmpp://me:S3CR3T@h/a?priority=1", "unknown option"),
            ("xmpp://me:S3CR3T@h/a?subject=maybe", "subject=\"maybe\""),
        ] {
            let e = Xmpp::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
