//! Values of the options several commands take.

use std::time::Duration;

/// A duration as belfry writes them (`90s`, `1h 30m`), bounded at 100 years.
pub fn parse_dur(s: &str) -> Result<Duration, String> {
    belfry::core::parse_duration(s).map_err(|e| e.to_string())
}

/// A duration that is more than zero (a time limit of nothing would stop every job at once).
pub fn parse_limit(s: &str) -> Result<Duration, String> {
    match parse_dur(s)? {
        d if d.is_zero() => Err("a time limit must be more than 0".into()),
        d => Ok(d),
    }
}
