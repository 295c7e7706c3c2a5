//! Who is asking: a session cookie (after a login with a password), or a bearer token (the
//! server's API keys, for scripts and tests); and the token that proves a form came from one of
//! the dashboard's own pages (cross-site request forgery).
//!
//! Sessions are kept by the browser, not the server: the cookie holds the user's name, when it
//! ends, and a fingerprint of the user's password hash, signed with HMAC-SHA256 under a key
//! kept in the store (so every replica reads it). Changing a user's password, or removing the
//! user, ends their sessions at the next restart; logging out removes the cookie. A form's
//! token is the HMAC of the session's cookie: it needs no state either, and a page of another
//! site can read neither.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use belfry::config::Config;
use belfry_core::Timestamp;
use ring::hmac;

/// How long a session lasts.
pub(crate) const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The session cookie's name.
pub(crate) const COOKIE: &str = "belfry_session";

/// The login form's own cookie: its value must come back in the form (a login from another
/// site's page cannot read it).
pub(crate) const LOGIN_COOKIE: &str = "belfry_login";

/// Failed logins a minute the server takes before answering 429, all clients together.
const FAILED_LOGINS_PER_MINUTE: f64 = 20.0;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Who {
    /// A user's name, or `api` for a bearer token.
    pub name: String,
    /// May look, not act.
    pub read_only: bool,
    /// The session's cookie value, whose HMAC is its forms' token; `None` for a bearer token
    /// (no cookie, so nothing for another site to ride on).
    pub session: Option<String>,
}

/// A user the server knows, with the password hash checked at start.
struct User {
    hash: String,
    read_only: bool,
    /// Part of the cookie: a new password ends old sessions.
    fingerprint: String,
}

/// The server's users, its signing key, and the limit on failed logins.
pub(crate) struct Auth {
    users: BTreeMap<String, User>,
    /// A hash checked when the user is unknown, so that an unknown name takes as long as a
    /// wrong password (a random password no one knows).
    dummy: String,
    key: hmac::Key,
    failures: Mutex<(f64, Instant)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A user's password hash is not one the server can check.
#[derive(Debug, thiserror::Error)]
#[error("[server.users.{user}] password_hash: {why}; make one with `belfry hash-password`")]
pub struct BadHash {
    user: String,
    why: String,
}

impl Auth {
    /// The users of `config`, each hash read whole; `secret`: the key sessions are signed
    /// with (kept in the store).
    pub(crate) fn new(config: &Config, secret: &str) -> Result<Auth, BadHash> {
        let mut users = BTreeMap::new();
        for (name, u) in &config.server.users {
            let bad = |why: String| BadHash {
                user: name.clone(),
                why,
            };
            let h = PasswordHash::new(&u.password_hash)
                .map_err(|e| bad(format!("is not a password hash in the PHC format ({e})")))?;
            if h.hash.is_none() || h.salt.is_none() {
                return Err(bad("has no salt or no hash".into()));
            }
            argon2::Params::try_from(&h)
                .map_err(|e| bad(format!("its Argon2 parameters are not usable ({e})")))?;
            let digest = ring::digest::digest(&ring::digest::SHA256, u.password_hash.as_bytes());
            users.insert(
                name.clone(),
                User {
                    hash: u.password_hash.clone(),
                    read_only: u.read_only,
                    fingerprint: URL_SAFE_NO_PAD.encode(&digest.as_ref()[..9]),
                },
            );
        }
        let dummy = hash_password(&random_token()).map_err(|why| BadHash {
            user: "*".into(),
            why,
        })?;
        Ok(Auth {
            users,
            dummy,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            failures: Mutex::new((FAILED_LOGINS_PER_MINUTE, Instant::now())),
        })
    }

    /// Whether anyone can log in with a password.
    pub(crate) fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, payload.as_bytes()).as_ref())
    }

    /// Checks a user's password (slow on purpose: call it off the HTTP threads); the session
    /// cookie's value if it is right.
    pub(crate) fn login(&self, user: &str, password: &str, now: Timestamp) -> Option<String> {
        let known = self.users.get(user);
        let hash = known.map_or(self.dummy.as_str(), |u| u.hash.as_str());
        let ok = PasswordHash::new(hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        let u = known.filter(|_| ok)?;
        let until = now + SESSION;
        let payload = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(user.as_bytes()),
            until.as_millis(),
            u.fingerprint
        );
        Some(format!("{payload}.{}", self.sign(&payload)))
    }

    /// The user a session cookie names, if it is signed by this server, not over, and the
    /// user and their password are still the same.
    pub(crate) fn session(&self, cookie: &str, now: Timestamp) -> Option<Who> {
        let (payload, mac) = cookie.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        hmac::verify(&self.key, payload.as_bytes(), &mac).ok()?;
        let mut parts = payload.split('.');
        let name = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let until: i64 = parts.next()?.parse().ok()?;
        let fingerprint = parts.next()?;
        let u = self.users.get(&name)?;
        (now.as_millis() < until && u.fingerprint == fingerprint).then(|| Who {
            name,
            read_only: u.read_only,
            session: Some(cookie.to_owned()),
        })
    }

    /// The token a session's forms carry.
    pub(crate) fn form_token(&self, who: &Who) -> String {
        match &who.session {
            Some(s) => self.sign(&format!("form:{s}")),
            None => String::new(),
        }
    }

    /// Whether a form's token is its session's (always, for a bearer token).
    pub(crate) fn form_ok(&self, who: &Who, token: &str) -> bool {
        match &who.session {
            None => true,
            Some(s) => URL_SAFE_NO_PAD.decode(token).is_ok_and(|mac| {
                hmac::verify(&self.key, format!("form:{s}").as_bytes(), &mac).is_ok()
            }),
        }
    }

    /// Takes one failed login from the bucket; `false` when there were too many lately.
    pub(crate) fn may_try(&self) -> bool {
        let mut g = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(g.1).as_secs_f64() * FAILED_LOGINS_PER_MINUTE / 60.0;
        g.0 = (g.0 + refill).min(FAILED_LOGINS_PER_MINUTE);
        g.1 = now;
        g.0 >= 1.0
    }

    /// Counts a failed login.
    pub(crate) fn failed(&self) {
        let mut g = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = (g.0 - 1.0).max(0.0);
    }
}

/// Who a bearer token (`Authorization: Bearer <key>`) is: the API's read-write or read-only
/// key.
pub(crate) fn bearer(config: &Config, header: &str) -> Option<Who> {
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))?
        .trim();
    let s = &config.server;
    let read_only = if s.api_key.as_ref().is_some_and(|k| k.matches(token)) {
        false
    } else if s
        .api_key_readonly
        .as_ref()
        .is_some_and(|k| k.matches(token))
    {
        true
    } else {
        return None;
    };
    Some(Who {
        name: "api".into(),
        read_only,
        session: None,
    })
}

/// A random value for keys and the login form's cookie: 32 bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The system's generator failing is not something a login can work around; a zeroed
    // token would be guessable, so the process stops rather than use one.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system's random number generator works");
    URL_SAFE_NO_PAD.encode(b)
}

/// Hashes a password as `belfry hash-password` does: Argon2id with the crate's defaults
/// (19 MiB, two passes), a random salt, in the PHC string format.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher as _;
    use argon2::password_hash::SaltString;
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "the system's random number generator failed".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> (Auth, Timestamp) {
        let ann = hash_password("correct horse").unwrap();
        let bob = hash_password("battery staple").unwrap();
        let text = format!(
            "[server]\napi_key = \"rw-key\"\napi_key_readonly = \"ro-key\"\n\
             [server.users.ann]\npassword_hash = \"{ann}\"\n\
             [server.users.bob]\npassword_hash = \"{bob}\"\nrole = \"read-only\"\n"
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        (
            Auth::new(&config, "k").unwrap(),
            Timestamp::from_millis(1_000_000),
        )
    }

    #[test]
    fn a_right_password_gives_a_session_that_names_its_user_until_it_ends() {
        let (a, now) = auth();
        assert_eq!(a.login("ann", "wrong", now), None);
        assert_eq!(a.login("nobody", "correct horse", now), None);
        let cookie = a.login("ann", "correct horse", now).unwrap();
        let who = a.session(&cookie, now).unwrap();
        assert_eq!((who.name.as_str(), who.read_only), ("ann", false));
        let bob = a.login("bob", "battery staple", now).unwrap();
        assert!(a.session(&bob, now).unwrap().read_only);
        assert_eq!(a.session(&cookie, now + SESSION), None, "over");
        // Any change to the cookie breaks its signature.
        let forged = cookie.replacen(
            &URL_SAFE_NO_PAD.encode("ann"),
            &URL_SAFE_NO_PAD.encode("bob"),
            1,
        );
        assert_eq!(a.session(&forged, now), None);
        // Another server's key does not sign it.
        let other = Auth::new(&Config::parse("", "t.toml").unwrap(), "other").unwrap();
        assert_eq!(other.session(&cookie, now), None);
    }

    #[test]
    fn a_forms_token_belongs_to_its_session() {
        let (a, now) = auth();
        let ann = a
            .session(&a.login("ann", "correct horse", now).unwrap(), now)
            .unwrap();
        let bob = a
            .session(&a.login("bob", "battery staple", now).unwrap(), now)
            .unwrap();
        let t = a.form_token(&ann);
        assert!(a.form_ok(&ann, &t));
        assert!(!a.form_ok(&bob, &t));
        assert!(!a.form_ok(&ann, ""));
        assert!(!a.form_ok(&ann, "not base64 !"));
    }

    #[test]
    fn bearer_tokens_are_the_api_keys() {
        let config = Config::parse(
            "[server]\napi_key = \"rw-key\"\napi_key_readonly = \"ro-key\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            bearer(&config, "Bearer rw-key").map(|w| w.read_only),
            Some(false)
        );
        assert_eq!(
            bearer(&config, "Bearer ro-key").map(|w| w.read_only),
            Some(true)
        );
        assert_eq!(bearer(&config, "Bearer rw-ke"), None);
        assert_eq!(bearer(&config, "Basic rw-key"), None);
        assert_eq!(
            bearer(&Config::parse("", "t.toml").unwrap(), "Bearer "),
            None
        );
    }

    #[test]
    fn a_hash_that_cannot_be_read_is_refused_at_start_by_user() {
        let config = Config::parse(
            "[server.users.ann]\npassword_hash = \"$argon2id$garbage\"\n",
            "t.toml",
        )
        .unwrap();
        let e = Auth::new(&config, "k").unwrap_err().to_string();
        assert!(
            e.contains("[server.users.ann]") && e.contains("hash-password"),
            "{e}"
        );
    }
}
