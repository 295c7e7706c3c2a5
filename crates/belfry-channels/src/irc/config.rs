//! An IRC URL read as Apprise reads it: the server, the login, the targets and the options.

use crate::secrets::Secrets;
use crate::url_parse::{UrlError, decode};
use crate::url_parts::{Parts, parse_bool, split_list};

use super::line::is_clean;

/// IRC: `irc://[USER[:PASSWORD]@]HOST[:PORT]/TARGET…`, Apprise's syntax; port 6667
/// (`ircs://`: TLS, port 6697, the certificate checked against the system's trust store unless
/// `verify=no`).
///
/// A target is a channel, `#NAME` or `#NAME:KEY` (`%23` for the `#` too), or a user, `@NICK`
/// or a bare nick; targets are path parts or `to=` (commas or spaces between them). Options,
/// exactly Apprise's: `nick=` (else the user, else `belfry` and three characters of its own),
/// `name=` (the real name; `belfry` by default), `join=no` to speak in channels without joining
/// them (a channel with a key is always joined), `mode=` how the password is used, `server`
/// (`PASS` before registering; the default), `nickserv` (`IDENTIFY` to NickServ after it),
/// `znc` (`PASS USER:PASSWORD`, a ZNC bouncer's login) or `none`, the start of a name being
/// enough as in Apprise. Without a port, Libera.Chat and SynIRC hosts get TLS on 6697 and
/// NickServ, EFnet hosts 6667 in the clear, as Apprise's templates for them say.
///
/// One connection per notification: register, wait for the welcome (`001`), join, say each
/// line, `QUIT`.
#[derive(Clone)]
pub struct Irc {
    pub(super) tls: bool,
    pub(super) verify_tls: bool,
    pub(super) host: String,
    pub(super) port: u16,
    /// The nick asked for; `None`: one of belfry's own.
    pub(super) nick: Option<String>,
    pub(super) real_name: String,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) mode: Mode,
    pub(super) join: bool,
    /// Channels (with `#`) and their keys.
    pub(super) channels: Vec<(String, Option<String>)>,
    pub(super) users: Vec<String>,
    pub(super) describe: String,
    pub(super) secrets: Secrets,
}

impl std::fmt::Debug for Irc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Irc")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// How the URL's password is used (Apprise's `mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// `PASS PASSWORD` before registering.
    Server,
    /// `PRIVMSG NickServ :IDENTIFY PASSWORD` once registered.
    NickServ,
    /// `PASS USER:PASSWORD`: a ZNC bouncer's login.
    Znc,
    /// The password is not sent.
    None,
}

/// Apprise's modes in its order, which decides what a start of a name means.
const MODES: [(&str, Mode); 4] = [
    ("znc", Mode::Znc),
    ("server", Mode::Server),
    ("nickserv", Mode::NickServ),
    ("none", Mode::None),
];

/// The options Apprise reads for IRC.
const OPTIONS: &[&str] = &["to", "name", "nick", "join", "mode", "host"];

/// Networks whose defaults Apprise applies when the URL gives no port: a host ending, TLS,
/// the port, and the mode.
const NETWORKS: [(&str, bool, u16, Mode); 3] = [
    (".synirc.net", true, 6697, Mode::NickServ),
    (".libera.chat", true, 6697, Mode::NickServ),
    (".efnet.org", false, 6667, Mode::Server),
];

impl Irc {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let mut tls = p.scheme == "ircs";
        p.check_keys(raw, OPTIONS, &[], &p.scheme)?;
        // As Apprise: with `host=`, the URL's host is the first target.
        let mut targets: Vec<String> = Vec::new();
        let host = match p.get("host").map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => {
                targets.push(p.host.clone());
                h.to_owned()
            }
            None => p.host.clone(),
        };
        if host.is_empty() {
            return Err(UrlError::new(
                raw,
                "the IRC server is missing: irc://[USER[:PASSWORD]@]HOST[:PORT]/#CHANNEL",
            ));
        }
        targets.extend(p.path.iter().cloned());
        if let Some(to) = p.get("to") {
            targets.extend(split_list(&decode(to)).map(str::to_owned));
        }
        let mut channels: Vec<(String, Option<String>)> = Vec::new();
        let mut users: Vec<String> = Vec::new();
        for t in &targets {
            let t = t.trim();
            if let Some(chan) = t.strip_prefix('#') {
                let (name, key) = match chan.split_once(':') {
                    Some((n, k)) => (n, Some(k.to_owned()).filter(|k| !k.is_empty())),
                    None => (chan, None),
                };
                // The key is secret: never in the message.
                if key
                    .as_deref()
                    .is_some_and(|k| k.contains([' ', ',']) || !is_clean(k))
                {
                    return Err(UrlError::new(
                        raw,
                        format!("the key of #{name} cannot hold a space, a comma or a line break"),
                    ));
                }
                if name.is_empty() || name.contains([' ', ',', '@', '#', '\x07']) || !is_clean(name)
                {
                    return Err(UrlError::new(
                        raw,
                        format!(
                            "{:?} is not an IRC channel (#NAME or #NAME:KEY)",
                            format!("#{name}")
                        ),
                    ));
                }
                channels.push((format!("#{name}"), key));
            } else {
                let nick = t.strip_prefix('@').unwrap_or(t);
                if nick.is_empty() || nick.contains([' ', ',', '@', '#', ':', '!']) || !is_clean(t)
                {
                    return Err(UrlError::new(
                        raw,
                        format!("{t:?} is not an IRC target (#CHANNEL or @NICK)"),
                    ));
                }
                users.push(nick.to_owned());
            }
        }
        if channels.is_empty() && users.is_empty() {
            return Err(UrlError::new(
                raw,
                "no channel or user to send to: irc://HOST/#CHANNEL (or /@NICK, ?to=)",
            ));
        }
        let mut mode = Mode::Server;
        let mut port = p.port;
        if port.is_none() {
            let lower = host.to_ascii_lowercase();
            if let Some((_, secure, default_port, default_mode)) =
                NETWORKS.iter().find(|(end, ..)| lower.ends_with(end))
            {
                tls = *secure;
                port = Some(*default_port);
                mode = *default_mode;
            }
        }
        if let Some(m) = p.get("mode").map(str::trim).filter(|m| !m.is_empty()) {
            let lower = m.to_ascii_lowercase();
            mode = MODES
                .iter()
                .find(|(name, _)| name.starts_with(&lower))
                .map(|(_, mode)| *mode)
                .ok_or_else(|| {
                    UrlError::new(
                        raw,
                        format!("mode={m:?} is not one of znc, server, nickserv, none"),
                    )
                })?;
        }
        let word = |key: &str| -> Result<Option<String>, UrlError> {
            match p.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) if is_clean(v) && (key == "name" || !v.contains([' ', ',', '@', '!'])) => {
                    Ok(Some(v.to_owned()))
                }
                Some(v) => Err(UrlError::new(
                    raw,
                    format!("{key}={v:?} cannot be sent to an IRC server"),
                )),
            }
        };
        let user = p.user.clone().map(|u| u.trim().to_owned());
        if user
            .as_deref()
            .is_some_and(|u| u.contains([' ', '@', '!']) || !is_clean(u))
        {
            return Err(UrlError::new(
                raw,
                "the user name cannot be sent to an IRC server",
            ));
        }
        let nick = word("nick")?.or_else(|| user.clone());
        let real_name = word("name")?.unwrap_or_else(|| "belfry".to_owned());
        let join = match p.get("join").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "join", v)?,
            None => true,
        };
        let verify_tls = match p.get("verify").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "verify", v)?,
            None => true,
        };
        let password = p.password.clone().filter(|pw| !pw.is_empty());
        if password.as_deref().is_some_and(|pw| !is_clean(pw)) {
            return Err(UrlError::new(
                raw,
                "the password cannot be sent to an IRC server",
            ));
        }
        if mode == Mode::Znc && (user.is_none() || password.is_none()) {
            return Err(UrlError::new(
                raw,
                "mode=znc logs in to the bouncer with USER:PASSWORD@, and the URL lacks one",
            ));
        }
        let port = port.unwrap_or(if tls { 6697 } else { 6667 });
        let scheme = if tls { "ircs" } else { "irc" };
        let targets: Vec<String> = channels
            .iter()
            .map(|(c, _)| c.clone())
            .chain(users.iter().map(|u| format!("@{u}")))
            .collect();
        let describe = format!(
            "{scheme}://{}{host}:{port}/{}",
            match (&user, &password) {
                (Some(u), Some(_)) => format!("{u}:***@"),
                (Some(u), None) => format!("{u}@"),
                _ => String::new(),
            },
            targets.join(",")
        );
        let mut secrets = Secrets::default();
        if let Some(pw) = &password {
            secrets.add(pw);
        }
        for (_, key) in &channels {
            if let Some(k) = key {
                secrets.add(k);
            }
        }
        Ok(Irc {
            tls,
            verify_tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            nick,
            real_name,
            user,
            password,
            mode,
            join,
            channels,
            users,
            describe,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_options_are_read_as_apprise_reads_them() {
        let i = Irc::from_apprise(
            "irc://bot:pw@irc.example.net/%23ops/#secret:k3y/@alice/bob?to=#more,@carol&name=Belfry%20Bot",
        )
        .unwrap();
        assert_eq!(
            i.channels,
            [
                ("#ops".to_owned(), None),
                ("#secret".to_owned(), Some("k3y".to_owned())),
                ("#more".to_owned(), None)
            ]
        );
        assert_eq!(i.users, ["alice", "bob", "carol"]);
        assert_eq!(
            (i.tls, i.port, i.mode, i.join),
            (false, 6667, Mode::Server, true)
        );
        assert_eq!(i.nick.as_deref(), Some("bot"));
        assert_eq!(i.real_name, "Belfry Bot");
        assert_eq!(
            i.describe,
            "irc://bot:***@irc.example.net:6667/#ops,#secret,#more,@alice,@bob,@carol"
        );
        assert!(!format!("{i:?}").contains("k3y"));

        let i = Irc::from_apprise("ircs://h/#x?nick=watcher&join=no&mode=nick&verify=no").unwrap();
        assert_eq!(
            (i.tls, i.port, i.verify_tls, i.join),
            (true, 6697, false, false)
        );
        assert_eq!(
            (i.mode, i.nick.as_deref()),
            (Mode::NickServ, Some("watcher"))
        );
        // `z` is ZNC's before anything else, as Apprise's order has it.
        let i = Irc::from_apprise("irc://u:p@h/#x?mode=z").unwrap();
        assert_eq!(i.mode, Mode::Znc);
        // With host=, the URL's host is a target.
        let i = Irc::from_apprise("irc://alice?host=irc.example.net").unwrap();
        assert_eq!(
            (i.host.as_str(), i.users.as_slice()),
            ("irc.example.net", &["alice".to_owned()][..])
        );
    }

    #[test]
    fn known_networks_get_apprises_defaults_unless_a_port_is_given() {
        let i = Irc::from_apprise("irc://me:pw@irc.libera.chat/#ops").unwrap();
        assert_eq!((i.tls, i.port, i.mode), (true, 6697, Mode::NickServ));
        let i = Irc::from_apprise("irc://me:pw@irc.libera.chat:6667/#ops").unwrap();
        assert_eq!((i.tls, i.port, i.mode), (false, 6667, Mode::Server));
        let i = Irc::from_apprise("ircs://irc.efnet.org/#ops").unwrap();
        assert_eq!((i.tls, i.port), (false, 6667));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_secrets() {
        for (url, what) in [
            ("irc://u:S3CR3T@host", "no channel or user"),
            ("irc://u:S3CR3T@host/#", "not an IRC channel"),
            ("irc://u:S3CR3T@host/#a%20b", "not an IRC channel"),
            ("irc://u:pw@host/#a:S3CR3T%20y", "the key of #a"),
            ("irc://u:S3CR3T@host/@a!b", "not an IRC target"),
            ("irc://u:S3CR3T@host/#x?mode=sasl", "mode=\"sasl\""),
            ("irc://u:S3CR3T@host/#x?join=maybe", "join=\"maybe\""),
            ("irc://u:S3CR3T@host/#x?channel=y", "unknown option"),
            ("irc://u:S3CR3T@host/#x?nick=a%0Db", "nick="),
            ("irc://u@host/#x?mode=znc", "USER:PASSWORD"),
            ("irc:///#x", "server is missing"),
        ] {
            let e = Irc::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
