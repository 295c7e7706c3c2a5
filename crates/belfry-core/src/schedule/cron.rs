//! The cron dialect belfry reads (Vixie cron's, as Debian ships it) and the search for the next
//! time an expression names, with Debian cron's daylight-saving behaviour.
//!
//! An expression is parsed once into bit sets ([`Fields`]). The search walks the local calendar
//! field by field (a month that does not match is skipped whole, then a day, an hour, a minute),
//! so that a yearly expression costs a few dozen steps, not a year of minutes.

use std::sync::OnceLock;

use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};

/// How many calendar years after the starting one the search looks through before it decides
/// that an expression names no time: the 29th of February can be eight years away (2096 to
/// 2104), and an expression that names no existing day (the 31st of February) must still end.
const SEARCH_YEARS: i32 = 8;

/// A parsed expression: which minutes, hours, days, months and weekdays it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fields {
    /// Bit `m` for minute `m` (0-59).
    pub(super) minutes: u64,
    /// Bit `h` for hour `h` (0-23).
    pub(super) hours: u64,
    /// Bit `d` for day of month `d` (1-31).
    pub(super) doms: u64,
    /// Bit `m` for month `m` (1-12).
    pub(super) months: u64,
    /// Bit `d` for weekday `d` (0-6, Sunday 0).
    pub(super) dows: u64,
    /// The day-of-month field starts with `*`.
    pub(super) dom_star: bool,
    /// The day-of-week field starts with `*`.
    pub(super) dow_star: bool,
    /// Minute and hour are fixed (neither has a `*` nor a step): the job runs by the wall clock
    /// across a change of offset, once in a repeated hour and at the jump in a skipped one.
    pub(super) wall_clock: bool,
}

/// One field's name and limits.
struct Spec {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

const MINUTE: Spec = Spec {
    name: "minute",
    low: 0,
    high: 59,
    names: &[],
};
const HOUR: Spec = Spec {
    name: "hour",
    low: 0,
    high: 23,
    names: &[],
};
const DOM: Spec = Spec {
    name: "day of month",
    low: 1,
    high: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    low: 1,
    high: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
// 7 is Sunday too, as in Vixie cron; it is folded onto 0 after parsing.
const DOW: Spec = Spec {
    name: "day of week",
    low: 0,
    high: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a five-field expression or an `@` nickname. The error is the detail only (what and
/// where); the caller puts the expression in front.
pub(super) fn parse(expr: &str) -> Result<Fields, String> {
    let expr = expr.trim();
    if let Some(nick) = expr.strip_prefix('@') {
        let fields = match nick.to_ascii_lowercase().as_str() {
            "hourly" => "0 * * * *",
            "daily" | "midnight" => "0 0 * * *",
            "weekly" => "0 0 * * 0",
            "monthly" => "0 0 1 * *",
            "yearly" | "annually" => "0 0 1 1 *",
            "reboot" => {
                return Err(
                    "@reboot names no time of day (it runs when the cron daemon starts), \
                            so belfry cannot tell when a report is due; use a period instead"
                        .to_owned(),
                );
            }
            _ => {
                return Err(format!(
                    "unknown nickname @{nick} (belfry knows @hourly, @daily, @midnight, \
                     @weekly, @monthly, @yearly and @annually)"
                ));
            }
        };
        return parse(fields);
    }
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = parts[..] else {
        let hint = if parts.len() == 6 {
            "; belfry's cron has no seconds or year field"
        } else {
            ""
        };
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}{hint}",
            parts.len()
        ));
    };
    let mut dows = field(dow, &DOW)?;
    if dows & (1 << 7) != 0 {
        dows = (dows & !(1 << 7)) | 1;
    }
    Ok(Fields {
        minutes: field(minute, &MINUTE)?,
        hours: field(hour, &HOUR)?,
        doms: field(dom, &DOM)?,
        months: field(month, &MONTH)?,
        dows,
        dom_star: dom.starts_with('*'),
        dow_star: dow.starts_with('*'),
        wall_clock: !(minute.contains(['*', '/']) || hour.contains(['*', '/'])),
    })
}

/// One field: a comma-separated list of `*`, `n` or `a-b`, each range optionally `/step`.
fn field(text: &str, spec: &Spec) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{} {text:?} has an empty list item", spec.name));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (spec.low, spec.high)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, spec)?, value(b, spec)?);
            if a > b {
                return Err(format!(
                    "{} range {range} runs backwards; write the smaller value first",
                    spec.name
                ));
            }
            (a, b)
        } else {
            let v = value(range, spec)?;
            if step.is_some() {
                return Err(format!(
                    "{} {item} puts a step after a single value; write a range, e.g. {v}-{}/…",
                    spec.name, spec.high
                ));
            }
            (v, v)
        };
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(format!(
                        "{} step {s:?} in {item} is not a whole number of 1 or more",
                        spec.name
                    ));
                }
            },
        };
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
    Ok(bits)
}

/// One value: a number in the field's range, or (months, weekdays) a three-letter name.
fn value(text: &str, spec: &Spec) -> Result<u32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (spec.low..=spec.high).contains(&n) => Ok(n),
            _ => Err(format!(
                "{} {text} is out of range {}-{}",
                spec.name, spec.low, spec.high
            )),
        };
    }
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        // Month names count from 1, weekday names from 0 (Sunday): the field's low value.
        return Ok(spec.low + i as u32);
    }
    Err(match (spec.names.first(), spec.names.last()) {
        (Some(first), Some(last)) => format!(
            "{} {text:?} is neither a number nor a name ({first}-{last})",
            spec.name
        ),
        _ => format!("{} {text:?} is not a number", spec.name),
    })
}

/// The time zone database: the copy of the IANA database bundled into the binary, so that the
/// answer is the same on every machine, with or without /usr/share/zoneinfo, and this crate
/// reads no files (docs/decisions.md, "Cron schedules").
fn zones() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// The zone called `name` (an IANA name, any case) and its canonical name.
pub(super) fn zone(name: &str) -> Result<(TimeZone, String), String> {
    let tz = zones()
        .get(name.trim())
        .map_err(|_| format!("time zone {name:?} is not an IANA time zone name (such as Europe/Berlin, America/New_York or UTC)"))?;
    let canonical = tz.iana_name().unwrap_or(name.trim()).to_owned();
    Ok((tz, canonical))
}

/// A minute of the local calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

impl Civil {
    fn of(dt: jiff::civil::DateTime) -> Civil {
        Civil {
            year: i32::from(dt.year()),
            month: dt.month() as u32,
            day: dt.day() as u32,
            hour: dt.hour() as u32,
            minute: dt.minute() as u32,
        }
    }

    /// The first whole minute strictly after `dt`.
    fn after(dt: jiff::civil::DateTime) -> Civil {
        Civil::of(dt).plus_minute()
    }

    /// The first whole minute at or after `dt`.
    fn at_or_after(dt: jiff::civil::DateTime) -> Civil {
        let c = Civil::of(dt);
        if dt.second() == 0 && dt.subsec_nanosecond() == 0 {
            c
        } else {
            c.plus_minute()
        }
    }

    fn to_jiff(self) -> Option<jiff::civil::DateTime> {
        jiff::civil::DateTime::new(
            i16::try_from(self.year).ok()?,
            self.month as i8,
            self.day as i8,
            self.hour as i8,
            self.minute as i8,
            0,
            0,
        )
        .ok()
    }

    fn plus_minute(self) -> Civil {
        if self.minute < 59 {
            Civil {
                minute: self.minute + 1,
                ..self
            }
        } else if self.hour < 23 {
            Civil {
                hour: self.hour + 1,
                minute: 0,
                ..self
            }
        } else {
            self.next_day()
        }
    }

    fn next_day(self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil {
                day: self.day + 1,
                hour: 0,
                minute: 0,
                ..self
            }
        } else {
            self.next_month()
        }
    }

    fn next_month(self) -> Civil {
        let (year, month) = if self.month < 12 {
            (self.year, self.month + 1)
        } else {
            (self.year + 1, 1)
        };
        Civil {
            year,
            month,
            day: 1,
            hour: 0,
            minute: 0,
        }
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The weekday of a date, Sunday 0 (proleptic Gregorian calendar).
fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // Days from 1970-01-01 (a Thursday), counted in 400-year eras from 0000-03-01.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days + 4).rem_euclid(7) as u32
}

/// The lowest set bit at or above `from`, if any.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

fn has(bits: u64, i: u32) -> bool {
    i < 64 && bits & (1 << i) != 0
}

impl Fields {
    /// Vixie cron's day rule: if either day field starts with `*`, a day must match both;
    /// if both are restricted, a day matches if either does.
    fn day_matches(&self, c: Civil) -> bool {
        let dom = has(self.doms, c.day);
        let dow = has(self.dows, weekday(c.year, c.month, c.day));
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first local minute at or after `from` that the expression names, looking no further
    /// than the end of `last_year`.
    fn first_match(&self, from: Civil, last_year: i32) -> Option<Civil> {
        let mut c = from;
        while c.year <= last_year {
            if !has(self.months, c.month) {
                c = c.next_month();
            } else if !self.day_matches(c) {
                c = c.next_day();
            } else if !has(self.hours, c.hour) {
                match next_bit(self.hours, c.hour) {
                    Some(hour) => {
                        c = Civil {
                            hour,
                            minute: 0,
                            ..c
                        }
                    }
                    None => c = c.next_day(),
                }
            } else {
                match next_bit(self.minutes, c.minute) {
                    Some(minute) => return Some(Civil { minute, ..c }),
                    None => c = Civil { minute: 59, ..c }.plus_minute(),
                }
            }
        }
        None
    }

    /// The first time strictly after `t` the expression names in `tz`.
    pub(super) fn next_after(&self, tz: &TimeZone, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let local = tz.to_offset(t).to_datetime(t);
        let last_year = (i32::from(local.year()) + SEARCH_YEARS).min(9999);
        if self.wall_clock {
            self.next_by_wall_clock(tz, t, last_year)
        } else {
            self.next_in_real_time(tz, t, last_year)
        }
    }

    /// Wildcard jobs: every local minute that exists and matches, in real time. A skipped
    /// minute does not exist; a repeated one happens twice. Searched one stretch of constant
    /// offset at a time, in which local time and real time move together.
    fn next_in_real_time(
        &self,
        tz: &TimeZone,
        t: jiff::Timestamp,
        last_year: i32,
    ) -> Option<jiff::Timestamp> {
        let mut offset: Offset = tz.to_offset(t);
        let mut from = Civil::after(offset.to_datetime(t));
        let mut stretch_start = t;
        loop {
            let stretch_end = tz.following(stretch_start).next().map(|tr| tr.timestamp());
            let c = self.first_match(from, last_year)?;
            let at = offset.to_timestamp(c.to_jiff()?).ok()?;
            match stretch_end {
                Some(end) if at >= end => {
                    offset = tz.to_offset(end);
                    from = Civil::at_or_after(offset.to_datetime(end));
                    stretch_start = end;
                }
                _ => return Some(at),
            }
        }
    }

    /// Jobs at a fixed minute and hour: every matching local time once, by the wall clock. A
    /// time in a repeated stretch runs at its first occurrence; a time in a skipped stretch runs
    /// at the jump. Mapped this way, later local times never come at earlier instants, so the
    /// first match whose instant is after `t` is the answer.
    fn next_by_wall_clock(
        &self,
        tz: &TimeZone,
        t: jiff::Timestamp,
        last_year: i32,
    ) -> Option<jiff::Timestamp> {
        let mut from = Civil::after(tz.to_offset(t).to_datetime(t));
        loop {
            let c = self.first_match(from, last_year)?;
            let dt = c.to_jiff()?;
            let at = match tz.to_ambiguous_timestamp(dt).offset() {
                AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
                AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok()?,
                AmbiguousOffset::Gap { after, .. } => {
                    // Read with the later offset, the skipped time lies before the jump; the
                    // next transition is the jump itself.
                    let before_jump = after.to_timestamp(dt).ok()?;
                    tz.following(before_jump).next()?.timestamp()
                }
            };
            if at > t {
                return Some(at);
            }
            from = c.plus_minute();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_agree_with_the_calendar() {
        assert_eq!(weekday(1970, 1, 1), 4);
        assert_eq!(weekday(2000, 2, 29), 2);
        assert_eq!(weekday(2026, 12, 4), 5);
        assert_eq!(weekday(2024, 3, 10), 0);
        for (y, m, d) in [(1, 1, 1), (1600, 3, 1), (2100, 2, 28), (9999, 12, 31)] {
            let date = jiff::civil::Date::new(y as i16, m as i8, d as i8).unwrap();
            assert_eq!(
                weekday(y, m, d),
                u32::from(date.weekday().to_sunday_zero_offset() as u8),
                "{y}-{m}-{d}"
            );
        }
    }

    #[test]
    fn fields_become_bit_sets() {
        let f = parse("*/15 9-17 1,15 jan-mar mon-fri").unwrap();
        assert_eq!(f.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(f.hours, 0b11_1111_1110_0000_0000);
        assert_eq!(f.doms, 1 << 1 | 1 << 15);
        assert_eq!(f.months, 0b1110);
        assert_eq!(f.dows, 0b11_1110);
        assert!(!f.dom_star && !f.dow_star && !f.wall_clock);
        let f = parse("0 3 * * 7").unwrap();
        assert_eq!(f.dows, 1, "7 is Sunday");
        assert!(f.wall_clock && f.dom_star);
        assert!(
            !parse("0-59/5 3 * * *").unwrap().wall_clock,
            "a step is a wildcard"
        );
        assert!(!parse("@hourly").unwrap().wall_clock);
        assert!(parse("@daily").unwrap().wall_clock);
    }
}
