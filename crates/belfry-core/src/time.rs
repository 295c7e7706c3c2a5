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
        self.rfc3339().as_str().to_owned()
    }

    /// [`Timestamp::to_rfc3339`]'s text, on the stack: `belfry status --json` writes five
    /// times a job.
    pub fn rfc3339(self) -> Rfc3339 {
        let ms = self.0.clamp(0, LAST_WRITABLE_MS);
        let (days, ms_of_day) = (ms / DAY_MS, ms % DAY_MS);
        let (year, month, day) = civil_date(days);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, ms_of_day / 3_600_000);
        put(14, 2, ms_of_day / 60_000 % 60);
        put(17, 2, ms_of_day / 1_000 % 60);
        put(20, 3, ms_of_day % 1_000);
        Rfc3339(b)
    }

    /// Parses an RFC 3339 time such as `2026-11-21T23:10:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let st = humantime::parse_rfc3339_weak(s).ok()?;
        let ms = st.duration_since(UNIX_EPOCH).ok()?.as_millis();
        Some(Timestamp(i64::try_from(ms).ok()?))
    }
}

/// A time written as RFC 3339 (see [`Timestamp::rfc3339`]).
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// The text, as bytes.
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

const DAY_MS: i64 = 86_400_000;

/// The (year, month, day) of the day `days` after 1970-01-01 (0 or more), in the proleptic
/// Gregorian calendar: counted in 400-year eras from 0000-03-01, so that the leap day ends
/// each year of the count.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
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
        f.write_str(self.rfc3339().as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.rfc3339().as_str())
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
    fn rfc3339_is_written_as_humantime_writes_it_from_1970_to_9999() {
        let humantime = |ms: i64| {
            let st = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
            humantime::format_rfc3339_millis(st).to_string()
        };
        // Every day of the first four years and of 2000 (a leap century), then a stride
        // through every era up to the last writable millisecond.
        let mut at: Vec<i64> = (0..4 * 366)
            .map(|d| d * DAY_MS + d * 7_919 % DAY_MS)
            .collect();
        let y2000 = 946_684_800_000;
        at.extend((0..367).map(|d| y2000 + d * DAY_MS - 1));
        at.extend((0..LAST_WRITABLE_MS).step_by(9_876_543_211_u64 as usize));
        at.push(LAST_WRITABLE_MS);
        for ms in at {
            assert_eq!(Timestamp(ms).to_rfc3339(), humantime(ms), "{ms}");
        }
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
