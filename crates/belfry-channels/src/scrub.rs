//! Scrubbing a channel URL's secrets out of failure reasons.

use crate::Outcome;
use crate::url_parse::{decode, query_pairs};

/// The values of a channel URL that may be secret, to scrub from failure reasons in case a
/// service quotes them back (an error body that echoes the request).
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Every part of `raw` (credentials, tokens in the host or path, option values) except the
    /// host its redacted form `describe` shows, of six characters or more, so that short words
    /// are not scrubbed from reasons.
    pub(crate) fn of(raw: &str, describe: &str) -> Secrets {
        let mut out = Vec::new();
        let Some((_, rest)) = raw.split_once("://") else {
            return Secrets(out);
        };
        let shown = describe
            .split_once("://")
            .map_or("", |(_, r)| r)
            .trim_start_matches("***@");
        let shown = shown.rsplit_once(":***@").map_or(shown, |(_, h)| h);
        let shown_host = shown.split(['/', '@']).next().unwrap_or("");
        let public = |s: &str| {
            !shown_host.starts_with("***")
                && !shown_host.is_empty()
                && (s == shown_host || shown_host.split(':').next() == Some(s))
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut add = |s: &str| {
            for v in [s.to_owned(), decode(s)] {
                if v.chars().count() >= 6 && !public(&v) && !out.contains(&v) {
                    out.push(v);
                }
            }
        };
        // Whole tokens first (a Telegram token is `id:secret`), then their parts.
        for part in location.split(['/', '@', ',']) {
            add(part.trim_start_matches('#'));
            for piece in part.split(':') {
                add(piece);
            }
        }
        for (_, v) in query_pairs(&format!("?{query}")) {
            add(&v);
        }
        // Longest first, so that a secret containing another is scrubbed whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets(out)
    }

    /// `reason` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, reason: &str) -> String {
        let mut out = reason.to_owned();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// An outcome whose reason is scrubbed.
    pub(crate) fn scrub_outcome(&self, o: Outcome) -> Outcome {
        match o {
            Outcome::Delivered => Outcome::Delivered,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.scrub(&reason),
            },
            Outcome::Permanent { reason } => Outcome::Permanent {
                reason: self.scrub(&reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url_parse::redact_url;

    #[test]
    fn secrets_are_collected_from_every_part_of_the_url() {
        let has = |raw: &str, want: &str| {
            Secrets::of(raw, &redact_url(raw))
                .0
                .iter()
                .any(|x| x == want)
        };
        let raw = "rocket://hookid1/hooktoken@chat.example.com/#general?avatar=no&token=abcdef123";
        for want in ["hookid1", "hooktoken", "general", "abcdef123"] {
            assert!(has(raw, want), "{want}");
        }
        assert!(!has(raw, "chat.example.com"));
        assert!(has(
            "tgram://123456789:AAH-token/-100200300",
            "123456789:AAH-token"
        ));
        let raw = "json://alice:hunter22@hooks.example.com:8080/path/secretpath";
        assert!(has(raw, "hunter22") && has(raw, "secretpath"));
        assert!(!has(raw, "hooks.example.com"));
        let s = Secrets::of(raw, &redact_url(raw));
        assert_eq!(
            s.scrub("HTTP 400: bad token hunter22 for hooks.example.com"),
            "HTTP 400: bad token *** for hooks.example.com"
        );
    }
}
