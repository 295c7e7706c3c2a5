//! When a job is expected to report, and so when its silence becomes a problem: a fixed
//! `period`, or a five-field `cron` expression in a time zone, each with a `grace` time, and
//! optionally a longest run time for a run that started and has not finished.
//!
//! Pure, like the rest of this crate: a store keeps an [`Expect`] per job (as JSON) and asks it,
//! in the transaction that records a report, when the job becomes late
//! ([`Expect::late_after`]); a sweeper marks the jobs whose time has come. Time zones come from
//! the copy of the IANA database bundled into the binary, so no file is read.
//!
//! Cron is Vixie cron's dialect as Debian ships it, daylight-saving behaviour included (see
//! [`Cron`]).

mod cron;
mod describe;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::duration::{MAX_DURATION, format_duration};

/// The shortest period and grace belfry takes: a second.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// When a job is expected to report, and how long its silence is tolerated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// When reports are due.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// How long after a due time a report may still come before the job is late.
    #[serde(rename = "grace_ms", with = "millis")]
    pub grace: Duration,
    /// A run that started and has not finished within this is a problem.
    #[serde(
        rename = "max_runtime_ms",
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_millis"
    )]
    pub max_runtime: Option<Duration>,
}

/// When reports are due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Schedule {
    /// Every `period` after the last report.
    Period {
        /// The time between reports.
        #[serde(rename = "period_ms", with = "millis")]
        period: Duration,
    },
    /// At the times a cron expression names, in a time zone.
    Cron(Cron),
}

/// A five-field cron expression (minute, hour, day of month, month, day of week) read in an
/// IANA time zone.
///
/// The dialect is Vixie cron's, as Debian ships it: `*`, lists (`1,15`), ranges (`1-5`), steps
/// (`*/5`, `1-30/2`), month and weekday names (`jan`, `mon`, any case), 7 for Sunday, and the
/// nicknames `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
/// When both day fields are restricted (neither starts with `*`), a day matches if either does;
/// otherwise it must match both (Vixie's rule: `0 12 */2 * mon` is odd days that are Mondays).
///
/// Across a change of offset (daylight saving time) it behaves like Debian's cron: an expression
/// whose minute and hour are fixed (no `*`, no step) runs by the wall clock, once at the first
/// occurrence of a repeated time and at the moment of the jump for a skipped one; any other
/// expression runs in real time, so skipped minutes do not happen and repeated ones happen twice.
///
/// ```
/// use belfry_core::{Cron, Timestamp};
///
/// let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
/// // 2026-03-29 02:30 does not exist in Berlin (02:00 jumps to 03:00): the job runs at the jump.
/// let before = Timestamp::parse_rfc3339("2026-03-28T23:00:00Z").unwrap();
/// let next = cron.next_after(before).unwrap();
/// assert_eq!(next.to_rfc3339(), "2026-03-29T01:00:00.000Z");
/// assert_eq!(cron.describe(), "at 02:30 every day");
/// assert_eq!(cron.wall_clock(next), "2026-03-29 03:00 CEST");
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "CronText", into = "CronText")]
pub struct Cron {
    /// The expression as written (trimmed).
    expr: String,
    /// The IANA name of the time zone it is read in.
    tz: String,
    fields: cron::Fields,
    zone: jiff::tz::TimeZone,
}

/// How a [`Cron`] is kept: `{"cron": "0 3 * * *", "tz": "Europe/Berlin"}`; read back through
/// [`Cron::parse`], so a stored expression is checked again.
#[derive(Serialize, Deserialize)]
struct CronText {
    cron: String,
    #[serde(default = "utc")]
    tz: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

impl TryFrom<CronText> for Cron {
    type Error = ScheduleError;

    fn try_from(t: CronText) -> Result<Cron, ScheduleError> {
        Cron::parse(&t.cron, &t.tz)
    }
}

impl From<Cron> for CronText {
    fn from(c: Cron) -> CronText {
        CronText {
            cron: c.expr,
            tz: c.tz,
        }
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl Eq for Cron {}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cron")
            .field("expr", &self.expr)
            .field("tz", &self.tz)
            .finish()
    }
}

/// A schedule that belfry cannot use: what was wrong, in words that name the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

impl Schedule {
    /// A report every `period`, at least [`MIN_PERIOD`].
    pub fn period(period: Duration) -> Result<Schedule, ScheduleError> {
        check_span("period", period)?;
        Ok(Schedule::Period { period })
    }

    /// A five-field cron expression read in the IANA time zone `tz` (`None`: UTC).
    pub fn cron(expr: &str, tz: Option<&str>) -> Result<Schedule, ScheduleError> {
        Cron::parse(expr, tz.unwrap_or("UTC")).map(Schedule::Cron)
    }

    /// The first time a report is due strictly after `t`; `None` if there is none (a cron
    /// expression that names no existing day, such as the 31st of February).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Period { period } => Some(t.add_millis(millis_of(*period))),
            Schedule::Cron(c) => c.next_after(t),
        }
    }

    /// The first `n` due times after `after`, in order ("the next five times"); fewer if the
    /// schedule names fewer.
    pub fn next_times(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n.min(1000));
        let mut t = after;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) if next > t => {
                    out.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// The canonical IANA name of the time zone called `name` (any case), from the database bundled
/// into belfry; the error says what an IANA name looks like.
pub fn time_zone(name: &str) -> Result<String, ScheduleError> {
    cron::zone(name).map(|(_, n)| n).map_err(ScheduleError)
}

impl Cron {
    /// Parses `expr` in the IANA time zone `tz`. The error names the field and the value:
    /// `cron "61 * * * *": minute 61 is out of range 0-59`.
    pub fn parse(expr: &str, tz: &str) -> Result<Cron, ScheduleError> {
        let expr = expr.trim();
        let fields = cron::parse(expr)
            .map_err(|e| ScheduleError(format!("cron {:?}: {e}", shorten(expr))))?;
        let (zone, tz) = cron::zone(tz).map_err(ScheduleError)?;
        Ok(Cron {
            expr: expr.to_owned(),
            tz,
            fields,
            zone,
        })
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The IANA name of the time zone it is read in.
    pub fn tz(&self) -> &str {
        &self.tz
    }

    /// The first time strictly after `t` the expression names (daylight saving time handled as
    /// the type's documentation says). `None` if it names no time in the eight years after `t`'s
    /// year (the 31st of February), or none that belfry's time range holds.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let t = jiff::Timestamp::from_millisecond(t.as_millis()).ok()?;
        let next = self.fields.next_after(&self.zone, t)?;
        Some(Timestamp::from_millis(next.as_millisecond()))
    }

    /// The expression in plain words, such as `at 03:00 every day`, `every 5 minutes` or
    /// `at minute 0 past every 2nd hour on Monday-Friday` (local times; the zone is not named).
    pub fn describe(&self) -> String {
        describe::describe(&self.fields)
    }

    /// `t` on the wall clock of the expression's time zone, to the minute, with the zone's
    /// abbreviation: `2026-12-05 03:00 CET`.
    pub fn wall_clock(&self, t: Timestamp) -> String {
        match jiff::Timestamp::from_millisecond(t.as_millis()) {
            Ok(ts) => ts
                .to_zoned(self.zone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            Err(_) => t.to_rfc3339(),
        }
    }
}

/// At most 100 characters of what the user wrote, for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Expect {
    /// A schedule with its grace time (at least [`MIN_PERIOD`]) and optional longest run time.
    pub fn new(
        schedule: Schedule,
        grace: Duration,
        max_runtime: Option<Duration>,
    ) -> Result<Expect, ScheduleError> {
        check_span("grace", grace)?;
        if let Some(m) = max_runtime {
            check_span("max_runtime", m)?;
        }
        Ok(Expect {
            schedule,
            grace,
            max_runtime,
        })
    }

    /// When a job whose last report came at `last` becomes late: its next due time after
    /// `last`, plus the grace time. `None` if no time is due again.
    pub fn late_after(&self, last: Timestamp) -> Option<Timestamp> {
        self.schedule
            .next_after(last)
            .map(|due| due.add_millis(millis_of(self.grace)))
    }

    /// When a run that started at `started` and has not finished becomes a problem, if the
    /// job has a longest run time.
    pub fn overdue_after(&self, started: Timestamp) -> Option<Timestamp> {
        self.max_runtime.map(|m| started.add_millis(millis_of(m)))
    }
}

impl fmt::Display for Expect {
    /// `every 1d, grace 1h` or `cron "0 3 * * *" in Europe/Berlin, grace 1h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schedule {
            Schedule::Period { period } => write!(f, "every {}", format_duration(*period))?,
            Schedule::Cron(c) => write!(f, "cron {:?} in {}", c.expr, c.tz)?,
        }
        write!(f, ", grace {}", format_duration(self.grace))?;
        if let Some(m) = self.max_runtime {
            write!(f, ", runs at most {}", format_duration(m))?;
        }
        Ok(())
    }
}

fn check_span(what: &str, d: Duration) -> Result<(), ScheduleError> {
    if d < MIN_PERIOD {
        return Err(ScheduleError(format!(
            "{what} {} is shorter than a second, the shortest belfry takes",
            format_duration(d)
        )));
    }
    if d > MAX_DURATION {
        return Err(ScheduleError(format!(
            "{what} is longer than 100 years, the longest belfry takes"
        )));
    }
    Ok(())
}

fn millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod cron_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    #[test]
    fn a_period_job_is_late_a_period_and_a_grace_after_its_last_report() {
        let e = Expect::new(
            Schedule::period(Duration::from_secs(2)).unwrap(),
            Duration::from_secs(1),
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        assert_eq!(e.late_after(T0), Some(T0.add_millis(3000)));
        assert_eq!(e.overdue_after(T0), Some(T0.add_millis(60_000)));
        assert_eq!(e.to_string(), "every 2s, grace 1s, runs at most 1m 0s");
    }

    #[test]
    fn an_expectation_round_trips_through_json() {
        let e = Expect::new(
            Schedule::period(Duration::from_secs(86_400)).unwrap(),
            Duration::from_secs(3600),
            None,
        )
        .unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"period_ms":86400000,"grace_ms":3600000}"#);
        assert_eq!(serde_json::from_str::<Expect>(&json).unwrap(), e);
    }

    #[test]
    fn spans_under_a_second_are_refused_with_their_name() {
        let e = Schedule::period(Duration::from_millis(500)).unwrap_err();
        assert!(e.to_string().starts_with("period 500ms is shorter"), "{e}");
        let e = Expect::new(
            Schedule::period(Duration::from_secs(5)).unwrap(),
            Duration::ZERO,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("grace "), "{e}");
    }
}
