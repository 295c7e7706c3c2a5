use std::time::{Duration, Instant};

/// The longest duration belfry takes anywhere: 100 years (of 365.25 days). Every duration a
/// person writes is checked against it when it is parsed, so that no time limit, wait or age
/// can overflow the arithmetic on instants and timestamps it goes into.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// A duration written by a person could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {why} (write e.g. \"30s\", \"10m\", \"59m 24s\", \"1h30m\", \"250ms\")"
)]
pub struct DurationError {
    input: String,
    why: String,
}

impl DurationError {
    /// The value as it was written.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Parses a human duration: `"1s"`, `"250ms"`, `"59m 24s"`, `"1h30m"`, `"2days"`, at most
/// [`MAX_DURATION`].
///
/// A bare number is rejected rather than guessed at (seconds? milliseconds?).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = |why: &str| DurationError {
        input: input.to_owned(),
        why: why.to_owned(),
    };
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s.strip_prefix('-')
        .is_some_and(|n| n.trim_start().starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err(err("a duration cannot be negative"));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err("a unit is missing"));
    }
    let too_long = || err("it is longer than 100 years, the longest duration belfry takes");
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_long(),
        humantime::DurationError::NumberExpected(_)
        | humantime::DurationError::InvalidCharacter(_) => {
            err("a duration is numbers, each followed by a unit")
        }
        other => err(&other.to_string()),
    })?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// `secs` seconds as a duration, for numbers that come from outside (a service's hint, a
/// stored notification): negative or NaN is zero, anything beyond [`MAX_DURATION`] (infinity
/// included) is [`MAX_DURATION`]. Never panics, unlike [`Duration::from_secs_f64`].
pub fn duration_from_secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(MAX_DURATION, |d| d.min(MAX_DURATION))
}

/// `d` after `at`, saturating: an instant so far away that the clock cannot hold it is taken
/// as [`MAX_DURATION`] after `at` (or `at` itself, if even that cannot be held). `Instant + d`
/// panics there instead.
pub fn instant_after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(MAX_DURATION))
        .unwrap_or(at)
}

/// Formats a duration compactly for people: `"850ms"`, `"12.3s"`, `"4m 5s"`, `"2h 0m"`, `"3d 4h"`.
pub fn format_duration(d: Duration) -> String {
    let mut s = String::new();
    push_duration(&mut s, d);
    s
}

/// Appends [`format_duration`]'s text to `out`, without allocating: `belfry status` writes
/// four durations a job.
pub fn push_duration(out: &mut String, d: Duration) {
    let ms = d.as_millis();
    if ms < 1_000 {
        push_uint(out, ms as u64);
        out.push_str("ms");
        return;
    }
    let secs = d.as_secs();
    if secs < 60 {
        push_uint(out, secs);
        let tenths = (ms % 1_000) / 100;
        if tenths != 0 {
            out.push('.');
            push_uint(out, tenths as u64);
        }
        out.push('s');
        return;
    }
    let (m, s) = (secs / 60, secs % 60);
    let (first, first_unit, second, second_unit) = if m < 60 {
        (m, "m ", s, "s")
    } else if m < 24 * 60 {
        (m / 60, "h ", m % 60, "m")
    } else {
        (m / (24 * 60), "d ", (m / 60) % 24, "h")
    };
    push_uint(out, first);
    out.push_str(first_unit);
    push_uint(out, second);
    out.push_str(second_unit);
}

/// Appends `n` in decimal.
fn push_uint(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_defaults() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_duration("59m 24s").unwrap(),
            Duration::from_secs(3564)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration(" 1h30m ").unwrap(),
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn rejects_bare_numbers_and_nonsense_with_the_input_named() {
        let e = parse_duration("30").unwrap_err().to_string();
        assert!(e.contains("\"30\"") && e.contains("unit"), "{e}");
        let e = parse_duration("5 parsecs").unwrap_err().to_string();
        assert!(e.contains("5 parsecs"), "{e}");
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_are_bounded_at_a_hundred_years_with_the_limit_named() {
        assert_eq!(parse_duration("100y").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("36525days").unwrap(), MAX_DURATION);
        for huge in [
            "100y 1s",
            "9223372036854775807s",
            "18446744073709551615s",
            "99999999999999999999999s",
            "5000000000000000000y",
        ] {
            let e = parse_duration(huge).unwrap_err().to_string();
            assert!(e.contains(huge) && e.contains("100 years"), "{huge}: {e}");
        }
    }

    #[test]
    fn a_negative_duration_is_called_one() {
        for neg in ["-1s", " -5m", "-0s"] {
            let e = parse_duration(neg).unwrap_err().to_string();
            assert!(
                e.contains("cannot be negative") && e.contains(neg),
                "{neg}: {e}"
            );
        }
        for odd in ["s30", "--quiet", "--"] {
            let e = parse_duration(odd).unwrap_err().to_string();
            assert!(e.contains("numbers, each followed by a unit"), "{odd}: {e}");
        }
    }

    #[test]
    fn seconds_from_outside_saturate_instead_of_panicking() {
        assert_eq!(duration_from_secs_f64(1.5), Duration::from_millis(1500));
        assert_eq!(duration_from_secs_f64(-3.0), Duration::ZERO);
        assert_eq!(duration_from_secs_f64(f64::NAN), Duration::ZERO);
        assert_eq!(duration_from_secs_f64(1e20), MAX_DURATION);
        assert_eq!(duration_from_secs_f64(f64::INFINITY), MAX_DURATION);
    }

    #[test]
    fn an_instant_too_far_away_saturates() {
        let now = Instant::now();
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(instant_after(now, Duration::MAX), now + MAX_DURATION);
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 5s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h 0m");
        assert_eq!(
            format_duration(Duration::from_secs(3 * 86400 + 4 * 3600)),
            "3d 4h"
        );
    }
}
