use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds are what the store keeps and what the rules need; the type serialises as an
/// RFC 3339 string so that JSON readers see a date, not a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time. The only impure function of this crate; the rules never call
    /// it, callers do and pass the result in.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// This time plus `ms` milliseconds (saturating).
    pub const fn add_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T23:10:00.123Z`. Times
    /// RFC 3339 cannot write (before 1970 here, after 9999) are written as the nearest it can.
    pub fn to_rfc3339(self) -> String {
        let ms = self.0.clamp(0, LAST_WRITABLE_MS);
        let st = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
        humantime::format_rfc3339_millis(st).to_string()
    }

    /// Parses an RFC 3339 time such as `2026-11-21T23:10:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let st = humantime::parse_rfc3339_weak(s).ok()?;
        let ms = st.duration_since(UNIX_EPOCH).ok()?.as_millis();
        Some(Timestamp(i64::try_from(ms).ok()?))
    }
}

/// 9999-12-31T23:59:59.999Z, the last time a four-digit year holds (humantime refuses to
/// write a later one, and `to_string` would panic on its refusal).
const LAST_WRITABLE_MS: i64 = 253_402_300_799_999;

/// This time plus a duration (saturating).
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, d: Duration) -> Timestamp {
        self.add_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// This time minus a duration (saturating).
impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, d: Duration) -> Timestamp {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_to_the_millisecond() {
        let t = Timestamp::from_millis(1_763_766_600_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-21T23:10:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn the_farthest_times_are_written_without_panicking() {
        assert_eq!(
            Timestamp::from_millis(i64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_millis(i64::MIN).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        let far = Timestamp::from_millis(0) + Duration::MAX;
        assert_eq!(far, Timestamp::from_millis(i64::MAX));
        assert_eq!(far.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn adding_or_subtracting_any_duration_saturates() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(t - Duration::from_millis(400), Timestamp::from_millis(600));
        assert_eq!(t - Duration::MAX, Timestamp::from_millis(i64::MIN + 1_001));
        assert_eq!(
            Timestamp::from_millis(i64::MIN) - Duration::MAX,
            Timestamp::from_millis(i64::MIN)
        );
        assert_eq!(t + Duration::MAX, Timestamp::from_millis(i64::MAX));
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_millis(10);
        assert_eq!(a.since(Timestamp::from_millis(20)), Duration::ZERO);
        assert_eq!(
            Timestamp::from_millis(20).since(a),
            Duration::from_millis(10)
        );
    }
}
