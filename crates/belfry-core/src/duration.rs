use std::time::Duration;

/// A duration written by a person could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {why} (write e.g. \"30s\", \"10m\", \"59m 24s\", \"1h30m\", \"250ms\")"
)]
pub struct DurationError {
    input: String,
    why: String,
}

/// Parses a human duration: `"1s"`, `"250ms"`, `"59m 24s"`, `"1h30m"`, `"2days"`.
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
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err("a unit is missing"));
    }
    humantime::parse_duration(s).map_err(|e| err(&e.to_string()))
}

/// Formats a duration compactly for people: `"850ms"`, `"12.3s"`, `"4m 5s"`, `"2h 0m"`, `"3d 4h"`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms % 1_000) / 100;
        return if tenths == 0 {
            format!("{secs}s")
        } else {
            format!("{secs}.{tenths}s")
        };
    }
    let (m, s) = (secs / 60, secs % 60);
    if m < 60 {
        return format!("{m}m {s}s");
    }
    let (h, m) = (m / 60, m % 60);
    if h < 24 {
        return format!("{h}h {m}m");
    }
    format!("{}d {}h", h / 24, h % 24)
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
