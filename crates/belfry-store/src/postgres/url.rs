//! A PostgreSQL store's URL: what belfry takes out of it (`schema=`), what it hands to the
//! client, and the form with no password that every message shows.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// Where a PostgreSQL store is: a `postgres://` or `postgresql://` URL, as libpq reads it,
/// plus an optional `schema=NAME` query parameter that belfry takes out before connecting.
///
/// It holds the password the URL may carry, so it shows only a redacted form
/// (`postgres://user:***@host/db`), in [`fmt::Display`] and [`fmt::Debug`] alike.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL the client connects with: the given one without `schema=`. Secret.
    connect: String,
    /// The schema named by `schema=`, if any.
    schema: Option<String>,
    /// The URL with the password replaced by `***`: what messages show.
    shown: String,
}

impl PostgresUrl {
    /// Whether `s` is meant as a PostgreSQL URL (by its scheme), rather than a file's path.
    pub fn is_postgres_url(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// Reads a `postgres://` URL. The client's parser checks the rest (hosts, ports, options),
    /// so that a mistake is reported when the location is read, not at the first connection.
    pub fn parse(url: &str) -> Result<PostgresUrl> {
        let shown = redact(url);
        let doing = "reading the database URL";
        if !PostgresUrl::is_postgres_url(url) {
            return Err(Error::invalid(
                &shown,
                doing,
                "it does not begin with postgres:// or postgresql://".into(),
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut schema = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key != "schema" {
                kept.push(pair);
                continue;
            }
            let name = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| Error::invalid(&shown, doing, "schema= is not UTF-8".into()))?;
            check_schema_name(&name).map_err(|what| Error::invalid(&shown, doing, what))?;
            schema = Some(name.into_owned());
        }
        let connect = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // The parser's messages name options, never their values.
        connect
            .parse::<postgres::Config>()
            .map_err(|e| Error::invalid(&shown, doing, e.to_string()))?;
        Ok(PostgresUrl {
            connect,
            schema,
            shown,
        })
    }

    /// The schema named by `schema=`, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The client's configuration, from the URL without `schema=`.
    pub(crate) fn config(&self) -> Result<postgres::Config> {
        self.connect.parse().map_err(|e: postgres::Error| {
            Error::invalid(&self.shown, "reading the database URL", e.to_string())
        })
    }

    /// The URL without its password: what messages show.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

/// The URL with any password (in the user part, or a `password=` parameter) replaced by
/// `***`. Works on text that does not parse too: a malformed URL is still shown in errors.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match base.find('/') {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let mut out = if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key == "password" => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Schema names are quoted in SQL, but belfry takes only plain ones (letters, digits and `_`,
/// not starting with a digit, at most PostgreSQL's 63 bytes), so that the name one writes is
/// the name one finds in `psql`.
fn check_schema_name(name: &str) -> std::result::Result<(), String> {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if plain && first_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "schema={name:?} is not a plain name (letters, digits and _, not starting with a \
             digit, at most 63 bytes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        for (url, shown) in [
            (
                "postgres://belfry:s3cret@db.example:5432/alerts",
                "postgres://belfry:***@db.example:5432/alerts",
            ),
            (
                "postgresql://u:p%40ss@h1,h2/db?schema=ops&sslmode=disable",
                "postgresql://u:***@h1,h2/db?schema=ops&sslmode=disable",
            ),
            (
                "postgres://h/db?user=u&password=s3cret",
                "postgres://h/db?user=u&password=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
        ] {
            let parsed = PostgresUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert!(!format!("{parsed:?}").contains("s3cret"));
        }
    }

    #[test]
    fn schema_is_taken_out_before_the_client_sees_the_url() {
        let url = PostgresUrl::parse("postgres://u@h/db?schema=team_a&connect_timeout=3").unwrap();
        assert_eq!(url.schema(), Some("team_a"));
        assert_eq!(url.connect, "postgres://u@h/db?connect_timeout=3");
        assert_eq!(
            PostgresUrl::parse("postgres://u@h/db").unwrap().schema(),
            None
        );
    }

    #[test]
    fn a_schema_name_that_is_not_plain_is_refused_without_the_password() {
        for bad in [
            "a-b",
            "1st",
            "",
            "x\"; DROP TABLE jobs; --",
            &"a".repeat(64),
        ] {
            let url = format!("postgres://u:s3cret@h/db?schema={bad}");
            let err = PostgresUrl::parse(&url).unwrap_err().to_string();
            assert!(err.contains("schema="), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn a_malformed_url_is_refused_without_the_password() {
        let err = PostgresUrl::parse("postgres://u:s3cret@h/db?no_such_option=1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://u:***@h/db"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
