use std::time::{Duration, SystemTime};

use belfry_core::{MAX_DURATION, duration_from_secs_f64};

/// What became of one delivery attempt, as the channel judged it. The delivery engine only
/// obeys: it never second-guesses a channel's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The service accepted the message.
    Delivered,
    /// A passing failure (network, timeout, 408, 425, 429, 5xx): try again, not before
    /// `after` if the service said when.
    Retry {
        /// The service's own hint (`Retry-After`), if any.
        after: Option<Duration>,
        /// What went wrong, without secrets.
        reason: String,
    },
    /// The service refused the message for good (other 4xx, bad credentials, bad payload).
    Permanent {
        /// What went wrong, without secrets.
        reason: String,
    },
}

impl Outcome {
    /// A retryable failure with no hint.
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Outcome::Permanent {
            reason: reason.into(),
        }
    }

    /// Whether the message got through.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered)
    }

    /// The reason of a failure.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Retry { reason, .. } | Outcome::Permanent { reason } => Some(reason),
        }
    }

    /// The worse of two outcomes (permanent over retry over delivered); used when one
    /// notification needs several requests.
    pub fn worst(self, other: Outcome) -> Outcome {
        fn rank(o: &Outcome) -> u8 {
            match o {
                Outcome::Delivered => 0,
                Outcome::Retry { .. } => 1,
                Outcome::Permanent { .. } => 2,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// Classifies an HTTP answer the way most services mean it: 2xx delivered; 408, 425, 429 and
/// 5xx retry (with `Retry-After` if given); anything else permanent.
///
/// `body` is the start of the answer, quoted (shortened) in the reason because services put
/// their error code there (`invalid_token`, `channel_not_found`).
pub fn classify_http(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now: SystemTime,
) -> Outcome {
    let reason = || {
        let snippet = shorten(body.trim(), 200);
        if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {snippet}")
        }
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason: reason(),
        },
        300..=399 => Outcome::permanent(format!("HTTP {status}: redirects are not followed")),
        _ => Outcome::permanent(reason()),
    }
}

/// When a refusal carries no `Retry-After`, the time to wait from the rate-limit headers that
/// services send instead, as seconds: `RateLimit-Reset` (the IETF draft; seconds),
/// `X-RateLimit-Reset-After` (Discord; seconds, with a fraction), `X-RateLimit-Reset` and
/// `X-Rate-Limit-Reset` (seconds, or the Unix time of the reset when the number is that large).
/// Only a `429` is read this way: other answers carry these headers as information about a
/// window that is not exhausted.
pub fn rate_limit_hint<'h>(
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    now: SystemTime,
) -> Option<String> {
    if status != 429 {
        return None;
    }
    let names = [
        "ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-reset",
        "x-rate-limit-reset",
    ];
    names.iter().find_map(|name| {
        let v: f64 = header(name)?.trim().parse().ok()?;
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        // A Unix time (after 2001) rather than a number of seconds.
        let secs = if v > 1e9 {
            let epoch = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            (v - epoch).max(0.0)
        } else {
            v
        };
        Some(format!("{secs:.3}"))
    })
}

/// Parses a `Retry-After` value in either of its forms: delay-seconds (`"120"`) or an HTTP
/// date (`"Wed, 21 Oct 2026 07:28:00 GMT"`), relative to `now`. A date in the past means "now"
/// (zero); anything unreadable is ignored. A wait beyond [`MAX_DURATION`] (`Retry-After:
/// 100000000000000000000`) is taken as that: the row is given up on long before, and no
/// instant it is added to can overflow.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_DURATION));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(duration_from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_DURATION),
    )
}

/// At most `max` characters of `s`, cut on a character boundary, with `…` if cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sat, 21 Nov 2026 12:00:00 GMT").unwrap()
    }

    #[test]
    fn retry_after_seconds_and_http_dates_are_honoured() {
        assert_eq!(parse_retry_after("3", now()), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sat, 21 Nov 2026 12:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 21 Nov 2026 11:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
    }

    #[test]
    fn a_retry_after_too_far_away_is_capped_not_a_panic() {
        for huge in [
            "100000000000000000000",
            "18446744073709551615",
            "1e300",
            "99999999999999999999999999999999.5",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(huge, now()), Some(MAX_DURATION), "{huge}");
        }
        let hint = rate_limit_hint(429, |_| Some("1e300"), now()).unwrap();
        assert_eq!(parse_retry_after(&hint, now()), Some(MAX_DURATION));
        assert!(matches!(
            classify_http(503, Some("100000000000000000000"), "", now()),
            Outcome::Retry { after: Some(d), .. } if d == MAX_DURATION
        ));
    }

    #[test]
    fn http_statuses_are_classified_as_services_mean_them() {
        let c = |s, ra, body| classify_http(s, ra, body, now());
        assert_eq!(c(200, None, "ok"), Outcome::Delivered);
        assert_eq!(c(204, None, ""), Outcome::Delivered);
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(matches!(c(s, None, ""), Outcome::Retry { .. }), "{s}");
        }
        assert_eq!(
            c(429, Some("3"), "rate_limited"),
            Outcome::Retry {
                after: Some(Duration::from_secs(3)),
                reason: "HTTP 429: rate_limited".into()
            }
        );
        for s in [400, 401, 403, 404, 410, 413] {
            assert!(matches!(c(s, None, ""), Outcome::Permanent { .. }), "{s}");
        }
        assert_eq!(
            c(404, None, "channel_not_found").reason(),
            Some("HTTP 404: channel_not_found")
        );
        assert!(matches!(c(301, None, ""), Outcome::Permanent { .. }));
    }

    #[test]
    fn shortening_never_cuts_inside_a_character() {
        assert_eq!(shorten("héllo wörld", 4), "héll…");
        assert_eq!(shorten("ok", 4), "ok");
        let s = "é".repeat(300);
        assert_eq!(shorten(&s, 200).chars().count(), 201);
    }

    #[test]
    fn the_worst_outcome_wins() {
        let r = Outcome::retry("x");
        let p = Outcome::permanent("y");
        assert_eq!(Outcome::Delivered.worst(r.clone()), r);
        assert_eq!(r.clone().worst(p.clone()), p);
        assert_eq!(p.clone().worst(Outcome::Delivered), p);
    }

    #[test]
    fn rate_limit_headers_stand_in_for_retry_after_on_a_429_only() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        assert_eq!(
            rate_limit_hint(429, h(&[("x-ratelimit-reset-after", "2.5")]), now).as_deref(),
            Some("2.500")
        );
        assert_eq!(
            rate_limit_hint(429, h(&[("ratelimit-reset", "7")]), now).as_deref(),
            Some("7.000")
        );
        // A Unix time becomes the seconds until then.
        assert_eq!(
            rate_limit_hint(429, h(&[("x-ratelimit-reset", "1800000030")]), now).as_deref(),
            Some("30.000")
        );
        assert_eq!(
            rate_limit_hint(503, h(&[("ratelimit-reset", "7")]), now),
            None
        );
        assert_eq!(
            rate_limit_hint(429, h(&[("ratelimit-reset", "soon")]), now),
            None
        );
        assert_eq!(rate_limit_hint(429, h(&[]), now), None);
        let wait = parse_retry_after("2.500", now).unwrap();
        assert_eq!(wait, Duration::from_millis(2500));
    }
}
