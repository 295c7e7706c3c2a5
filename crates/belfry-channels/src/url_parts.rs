//! Apprise-style URLs taken apart by hand: `scheme://user:password@host:port/path/…?query`.
//!
//! The `url` crate would normalise what these URLs carry (a `+` in a phone number as a host,
//! a `%40` in a user name, an API key with dots), so belfry's own channels split them the way
//! Apprise does: the authority ends at the first `/`, `?` or `#`; the user information at its
//! last `@`; a `#` in the path is part of it (`opsgenie://key/#team`, as Apprise writes
//! targets); every piece is percent-decoded.

use crate::url_parse::{UrlError, decode, query_pairs};

/// The pieces of an Apprise-style URL, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Lowercase.
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The path's non-empty segments.
    pub path: Vec<String>,
    /// The query, with Apprise's `+`, `-` and `:` prefixes kept on the keys.
    pub query: Vec<(String, String)>,
}

impl Parts {
    pub fn parse(raw: &str) -> Result<Parts, UrlError> {
        let raw = raw.trim();
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| UrlError::new(raw, "it has no scheme://"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(ui)), None),
            },
        };
        let (host, port) = split_port(raw, hostport)?;
        let path_part = tail.split('?').next().unwrap_or("");
        let path = path_part
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        Ok(Parts {
            scheme: scheme.to_ascii_lowercase(),
            user: user.filter(|u| !u.is_empty()),
            password,
            host: decode(host),
            port,
            path,
            query: query_pairs(raw),
        })
    }

    /// The last value of a query key (Apprise reads a repeated key's last value).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Fails on the first query key that is neither in `known` nor one of Apprise's global
    /// options, nor (when `prefixed` allows it) a `+`/`-`/`:`-prefixed key. A typo must not be
    /// silently ignored.
    pub fn check_keys(
        &self,
        raw: &str,
        known: &[&str],
        prefixed: &[char],
        scheme_name: &str,
    ) -> Result<(), UrlError> {
        for (k, v) in &self.query {
            let lk = k.to_ascii_lowercase();
            // Apprise refuses a URL whose `tz=` names no time zone, whatever the service.
            if lk == "tz" && !v.trim().is_empty() {
                belfry_core::time_zone(v).map_err(|e| UrlError::new(raw, format!("tz=: {e}")))?;
            }
            if known.contains(&lk.as_str())
                || crate::url_parse::APPRISE_GLOBAL_OPTIONS.contains(&lk.as_str())
                || k.chars().next().is_some_and(|c| prefixed.contains(&c))
            {
                continue;
            }
            return Err(UrlError::new(
                raw,
                format!(
                    "unknown option {k:?} for {scheme_name}:// (known: {})",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

fn split_port<'a>(raw: &str, hostport: &'a str) -> Result<(&'a str, Option<u16>), UrlError> {
    // [IPv6]:port
    if let Some(rest) = hostport.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| UrlError::new(raw, "an IPv6 address is missing its ']'"))?;
        let host = &hostport[..close + 2];
        let after = &rest[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(parse_port(raw, p)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(UrlError::new(raw, "unexpected text after an IPv6 address")),
        };
    }
    // A port is digits; anything else after a colon belongs to the host (Twilio's
    // `w:+15551234567`), and the channel judges the host.
    match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((h, Some(parse_port(raw, p)?)))
        }
        _ => Ok((hostport, None)),
    }
}

fn parse_port(raw: &str, p: &str) -> Result<u16, UrlError> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UrlError::new(
            raw,
            format!("the port {p:?} is not a number from 1 to 65535"),
        )),
    }
}

/// Splits a list value (`to=a@x,b@y`) on commas, semicolons and white space.
pub(crate) fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split([',', ';', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Apprise's yes/no values.
pub(crate) fn parse_bool(raw: &str, key: &str, v: &str) -> Result<bool, UrlError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "t" | "1" | "on" | "enable" | "enabled" => Ok(true),
        "no" | "n" | "false" | "f" | "0" | "off" | "disable" | "disabled" => Ok(false),
        _ => Err(UrlError::new(
            raw,
            format!("{key}={v:?} is neither yes nor no"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apprise_urls_come_apart_as_apprise_reads_them() {
        let p = Parts::parse(
            "twilio://AC123:tok%2Fen@+15551234567/+15557654321/w:+4412?to=%2B1,%2B2&+X=1",
        )
        .unwrap();
        assert_eq!(p.scheme, "twilio");
        assert_eq!(p.user.as_deref(), Some("AC123"));
        assert_eq!(p.password.as_deref(), Some("tok/en"));
        assert_eq!(p.host, "+15551234567");
        assert_eq!(p.port, None);
        assert_eq!(p.path, ["+15557654321", "w:+4412"]);
        assert_eq!(p.get("TO"), Some("+1,+2"));
        assert_eq!(p.get("+X"), Some("1"));
        let p = Parts::parse("opsgenie://key/#ops/@ada?region=eu").unwrap();
        assert_eq!(p.path, ["#ops", "@ada"]);

        let p = Parts::parse("mailtos://me%40x.org:p@ss@[::1]:2525/a@b.c").unwrap();
        assert_eq!(p.user.as_deref(), Some("me@x.org"));
        assert_eq!(p.password.as_deref(), Some("p@ss"));
        assert_eq!(p.host, "[::1]");
        assert_eq!(p.port, Some(2525));
        assert_eq!(p.path, ["a@b.c"]);
    }

    #[test]
    fn bad_ports_are_named() {
        let e = Parts::parse("mailto://h:99999").unwrap_err().to_string();
        assert!(e.contains("\"99999\""), "{e}");
        let e = Parts::parse("mailto://h:0").unwrap_err().to_string();
        assert!(e.contains("\"0\""), "{e}");
        assert_eq!(Parts::parse("twilio://w:+1555").unwrap().host, "w:+1555");
    }

    #[test]
    fn lists_split_on_commas_semicolons_and_spaces() {
        assert_eq!(
            split_list(" a@x, b@y;c@z  d@w ").collect::<Vec<_>>(),
            ["a@x", "b@y", "c@z", "d@w"]
        );
    }
}
