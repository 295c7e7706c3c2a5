//! Secret references in configuration values, and their redaction.
//!
//! A channel URL (or a command's argument) may hold `${env:NAME}` (the environment variable
//! `NAME`) or `${file:PATH}` (the content of a file, its trailing line ending removed)
//! anywhere in it. They are resolved once, when the configuration is loaded; a variable that
//! is not set, or a file that cannot be read, is an error that names the reference, never a
//! value. `$${` writes a literal `${`.
//!
//! Every value resolved is kept in a [`Secrets`] set (with the secrets written inline in the
//! channel URLs: [`Secrets::add_url`]), and everything belfry prints or stores about a channel
//! (its description, a delivery failure's reason, an error) goes through [`Secrets::scrub`],
//! which replaces each value with `***`, in whatever form it comes back (percent-encoded,
//! JSON-escaped, base64 as in `Authorization: Basic`). That is on top of the URL redaction the
//! channels do themselves (`user:***@host/…`), so a secret stays hidden even where it sits in
//! a part of the URL that is usually shown (a host name, a query).
//!
//! ```
//! use belfry::secret::{Lookup, Secrets, resolve};
//!
//! let env = |name: &str| (name == "HOOK_TOKEN").then(|| "s3cr3t-t0ken".into());
//! let lookup = Lookup::with_env(&env, None);
//! let mut secrets = Secrets::default();
//! let url = resolve("json://ops:${env:HOOK_TOKEN}@hooks.example/x", &lookup, &mut secrets)
//!     .unwrap();
//! assert_eq!(url, "json://ops:s3cr3t-t0ken@hooks.example/x");
//! assert_eq!(secrets.scrub("401 for token s3cr3t-t0ken"), "401 for token ***");
//!
//! let e = resolve("slack://${env:MISSING}", &lookup, &mut secrets).unwrap_err();
//! assert_eq!(e.to_string(), "${env:MISSING}: the environment variable MISSING is not set");
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use belfry_channels::{MIN_SCRUBBED_LEN, Secrets};

/// The largest file a `${file:…}` reference reads: a secret is small, and a reference to
/// the wrong file (a log, a binary) should fail loudly rather than fill a URL.
pub const MAX_FILE_SECRET: u64 = 64 * 1024;

/// Where references are looked up: an environment and the directory relative `${file:…}`
/// paths start from.
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    env: &'a dyn Fn(&str) -> Option<OsString>,
    base_dir: Option<&'a Path>,
}

impl fmt::Debug for Lookup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

impl<'a> Lookup<'a> {
    /// This process's environment; relative paths from `base_dir` (the configuration file's
    /// directory), or from the working directory if `None`.
    pub fn process(base_dir: Option<&'a Path>) -> Self {
        Lookup {
            env: &process_env,
            base_dir,
        }
    }

    /// Another environment (tests, or a library user with their own).
    pub fn with_env(env: &'a dyn Fn(&str) -> Option<OsString>, base_dir: Option<&'a Path>) -> Self {
        Lookup { env, base_dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        match self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_owned(),
        }
    }
}

/// A reference that could not be resolved. Its message names the reference as written (and
/// the file path), never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reference}: {why}")]
pub struct RefError {
    reference: String,
    why: String,
}

impl RefError {
    /// The reference as written, e.g. `${env:SLACK_HOOK}`.
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

/// Resolves every reference in `text`, adding the values to `secrets`. Text without `${` is
/// returned as it is.
pub fn resolve(text: &str, lookup: &Lookup<'_>, secrets: &mut Secrets) -> Result<String, RefError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(lit) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = lit;
            continue;
        }
        let Some(inner_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = inner_start.find('}') else {
            let shown: String = after.chars().take(24).collect();
            return Err(RefError {
                reference: shown,
                why: "a reference without its closing }".into(),
            });
        };
        let inner = &inner_start[..end];
        let reference = format!("${{{inner}}}");
        let value = resolve_one(inner, lookup).map_err(|why| RefError {
            reference: reference.clone(),
            why,
        })?;
        secrets.add(&value);
        out.push_str(&value);
        rest = &inner_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_one(inner: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    if let Some(name) = inner.strip_prefix("env:") {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
            ));
        }
        return match (lookup.env)(name).map(OsString::into_string) {
            None => Err(format!("the environment variable {name} is not set")),
            Some(Err(_)) => Err(format!("the environment variable {name} is not UTF-8")),
            Some(Ok(v)) if v.is_empty() => Err(format!("the environment variable {name} is empty")),
            Some(Ok(v)) => Ok(v),
        };
    }
    if let Some(p) = inner.strip_prefix("file:") {
        if p.is_empty() {
            return Err("no file named (write ${file:/path/to/secret})".into());
        }
        let path = lookup.path(p);
        let shown = path.display();
        let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{shown} is not a file"));
        }
        if meta.len() > MAX_FILE_SECRET {
            return Err(format!(
                "{shown} is larger than {} KiB; is it the right file?",
                MAX_FILE_SECRET / 1024
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
        let value = text.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(format!("{shown} is empty"));
        }
        return Ok(value.to_owned());
    }
    Err("unknown reference; write ${env:NAME} or ${file:PATH} ($${ for a literal ${)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<OsString> {
        use std::os::unix::ffi::OsStringExt;
        match name {
            "TOKEN" => Some("tok-ABC123".into()),
            "EMPTY" => Some(OsString::new()),
            "SHORT" => Some("ab".into()),
            "ENCODED" => Some("p%40ss%2Fword".into()),
            "BINARY" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => None,
        }
    }

    fn go(text: &str) -> (Result<String, RefError>, Secrets) {
        let mut s = Secrets::default();
        let r = resolve(text, &Lookup::with_env(&env, None), &mut s);
        (r, s)
    }

    #[test]
    fn references_resolve_anywhere_and_literals_stay() {
        let (r, s) = go("json://u:${env:TOKEN}@h/${env:TOKEN}?x=$HOME&y=$${env:TOKEN}");
        assert_eq!(
            r.unwrap(),
            "json://u:tok-ABC123@h/tok-ABC123?x=$HOME&y=${env:TOKEN}"
        );
        assert_eq!(s.scrub("a tok-ABC123 b"), "a *** b");
        let (r, s) = go("json://host/plain");
        assert_eq!(r.unwrap(), "json://host/plain");
        assert!(s.is_empty());
    }

    #[test]
    fn bad_references_name_the_reference_never_a_value() {
        for (text, want) in [
            (
                "x${env:NOPE}",
                "${env:NOPE}: the environment variable NOPE is not set",
            ),
            (
                "x${env:EMPTY}",
                "${env:EMPTY}: the environment variable EMPTY is empty",
            ),
            ("x${env:1X}", "is not a variable name"),
            ("x${env:BINARY}", "BINARY is not UTF-8"),
            ("x${TOKEN}", "unknown reference"),
            ("x${env:TOKEN", "without its closing }"),
            ("${file:}", "no file named"),
            (
                "${file:/nonexistent/belfry-secret}",
                "cannot read /nonexistent/belfry-secret",
            ),
        ] {
            let e = go(text).0.unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("tok-ABC123"), "{e}");
        }
    }

    #[test]
    fn files_are_read_whole_without_the_trailing_line_ending_relative_to_the_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "file-secret-1\r\n").unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 70 * 1024]).unwrap();
        let mut s = Secrets::default();
        let lookup = Lookup::with_env(&env, Some(dir.path()));
        assert_eq!(
            resolve("a${file:s}b", &lookup, &mut s).unwrap(),
            "afile-secret-1b"
        );
        assert_eq!(s.scrub("file-secret-1"), "***");
        let abs = format!("${{file:{}}}", dir.path().join("s").display());
        assert_eq!(
            resolve(&abs, &Lookup::with_env(&env, None), &mut s).unwrap(),
            "file-secret-1"
        );
        for (name, want) in [
            ("empty", "is empty"),
            ("big", "larger than 64 KiB"),
            (".", "not a file"),
        ] {
            let e = resolve(&format!("${{file:{name}}}"), &lookup, &mut s)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn scrubbing_hides_encoded_and_decoded_forms_longest_first_but_not_tiny_values() {
        let (_, s) = go("${env:ENCODED} ${env:SHORT} ${env:TOKEN}");
        assert_eq!(s.scrub("p%40ss%2Fword"), "***");
        assert_eq!(s.scrub("p@ss/word"), "***");
        assert_eq!(s.scrub("tok-ABC123, again tok-ABC123"), "***, again ***");
        // Too short to hide without mangling every message.
        assert_eq!(s.scrub("ab"), "ab");
        let mut t = Secrets::default();
        t.add("abc");
        t.add("abcdef");
        assert_eq!(t.scrub("abcdef abc"), "*** ***");
        assert!(!format!("{t:?}").contains("abc"));
        let mut u = Secrets::default();
        u.extend(&t);
        assert_eq!(u, t);
    }
}
