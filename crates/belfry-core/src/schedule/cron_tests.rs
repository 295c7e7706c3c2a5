//! Cron schedules: next times (calendar edges, the day-field rule, daylight saving time in two
//! zones), errors, the stored form, and properties over random expressions and times.
//!
//! The fixed dates here are inputs to a pure function; no clock is read.

use proptest::prelude::*;

use super::cron::{Fields, parse};
use super::*;

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("bad fixture {rfc3339}"))
}

fn cron(expr: &str, tz: &str) -> Cron {
    Cron::parse(expr, tz).unwrap_or_else(|e| panic!("{expr} in {tz}: {e}"))
}

/// The first `n` times after `after`, in RFC 3339 (UTC, milliseconds).
fn times(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    Schedule::Cron(cron(expr, tz))
        .next_times(at(after), n)
        .into_iter()
        .map(Timestamp::to_rfc3339)
        .collect()
}

fn next(expr: &str, tz: &str, after: &str) -> Option<String> {
    cron(expr, tz)
        .next_after(at(after))
        .map(Timestamp::to_rfc3339)
}

#[test]
fn next_times_in_utc_cross_month_and_year_ends_and_leap_days() {
    let none = "";
    for (expr, after, want) in [
        // strictly after: a due time equal to `after` is not the answer
        ("0 3 * * *", "2026-01-31T03:00:00Z", "2026-02-01T03:00:00Z"),
        ("* * * * *", "2026-05-05T10:00:00Z", "2026-05-05T10:01:00Z"),
        (
            "* * * * *",
            "2026-05-05T10:00:59.999Z",
            "2026-05-05T10:01:00Z",
        ),
        ("0 0 1 * *", "2026-12-31T12:00:00Z", "2027-01-01T00:00:00Z"),
        (
            "59 23 31 12 *",
            "2026-06-01T00:00:00Z",
            "2026-12-31T23:59:00Z",
        ),
        (
            "@yearly",
            "2026-12-31T23:59:59.999Z",
            "2027-01-01T00:00:00Z",
        ),
        ("@annually", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"),
        ("@monthly", "2026-02-15T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("@weekly", "2026-12-05T12:00:00Z", "2026-12-06T00:00:00Z"),
        ("@hourly", "2026-12-05T23:00:00Z", "2026-12-06T00:00:00Z"),
        ("@midnight", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"),
        // months too short for the day are skipped
        ("0 0 31 * *", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"),
        ("0 0 30 * *", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z"),
        // the 29th of February: leap years only, and 2100 is not one
        ("0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
        ("0 0 28 2 *", "2028-02-28T00:00:00Z", "2029-02-28T00:00:00Z"),
        // days that never come
        ("0 0 31 2 *", "2026-01-01T00:00:00Z", none),
        ("0 0 30 2 *", "2026-01-01T00:00:00Z", none),
        ("0 0 31 apr,jun,sep,nov *", "2026-01-01T00:00:00Z", none),
        // both day fields restricted: either matches (2026-02-01 is a Sunday)
        (
            "0 12 1 * mon",
            "2026-02-01T12:00:00Z",
            "2026-02-02T12:00:00Z",
        ),
        (
            "0 12 1 * mon",
            "2026-02-23T12:00:00Z",
            "2026-03-01T12:00:00Z",
        ),
        ("0 0 29 2 1", "2026-02-10T00:00:00Z", "2026-02-16T00:00:00Z"),
        // one day field starts with `*`: both must match (odd days that are Mondays)
        (
            "0 12 */2 * mon",
            "2026-02-01T00:00:00Z",
            "2026-02-09T12:00:00Z",
        ),
        ("0 12 1 * *", "2026-02-01T12:00:00Z", "2026-03-01T12:00:00Z"),
        // a restricted day field that names every day makes the other one moot (2026-12-04 is a
        // Friday)
        (
            "0 6 1-31 * mon",
            "2026-12-04T06:00:00Z",
            "2026-12-05T06:00:00Z",
        ),
        // steps, ranges, lists
        (
            "*/5 * * * *",
            "2026-05-05T10:07:30Z",
            "2026-05-05T10:10:00Z",
        ),
        (
            "*/5 * * * *",
            "2026-05-05T23:55:00Z",
            "2026-05-06T00:00:00Z",
        ),
        (
            "1-30/2 * * * *",
            "2026-05-05T10:29:00Z",
            "2026-05-05T11:01:00Z",
        ),
        (
            "0 */6 * * *",
            "2026-05-05T18:00:00Z",
            "2026-05-06T00:00:00Z",
        ),
        (
            "15,45 9-17 * * *",
            "2026-05-05T17:45:00Z",
            "2026-05-06T09:15:00Z",
        ),
        (
            "*/90 * * * *",
            "2026-05-05T10:00:00Z",
            "2026-05-05T11:00:00Z",
        ),
        // names, any case, and 7 for Sunday (2026-12-04 is a Friday)
        (
            "0 9 * * mon-fri",
            "2026-12-04T09:00:00Z",
            "2026-12-07T09:00:00Z",
        ),
        (
            "0 9 * * MON-Fri",
            "2026-12-03T09:00:00Z",
            "2026-12-04T09:00:00Z",
        ),
        ("0 0 * * 7", "2026-12-04T00:00:00Z", "2026-12-06T00:00:00Z"),
        (
            "0 0 * * 5-7",
            "2026-12-06T00:00:00Z",
            "2026-12-11T00:00:00Z",
        ),
        (
            "0 0 1 Feb *",
            "2026-02-01T00:00:00Z",
            "2027-02-01T00:00:00Z",
        ),
        (
            "0 0 * feb *",
            "2026-02-28T00:00:00Z",
            "2027-02-01T00:00:00Z",
        ),
        (
            "0 0 1 oct-dec *",
            "2026-12-01T00:00:00Z",
            "2027-10-01T00:00:00Z",
        ),
    ] {
        let want = (!want.is_empty()).then(|| to_millis_text(want));
        assert_eq!(next(expr, "UTC", after), want, "{expr} after {after}");
    }
}

/// `2026-01-01T00:00:00Z` as [`Timestamp::to_rfc3339`] writes it.
fn to_millis_text(s: &str) -> String {
    at(s).to_rfc3339()
}

fn all(ts: &[&str]) -> Vec<String> {
    ts.iter().map(|s| to_millis_text(s)).collect()
}

// Europe/Berlin: on 2026-03-29 clocks jump from 02:00 CET (01:00Z) to 03:00 CEST; on
// 2026-10-25 they go back from 03:00 CEST (01:00Z) to 02:00 CET, so 02:00-02:59 happens twice.

#[test]
fn berlin_fixed_time_in_the_skipped_hour_runs_at_the_jump() {
    assert_eq!(
        times("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        all(&[
            "2026-03-29T01:00:00Z", // the jump: 03:00 CEST
            "2026-03-30T00:30:00Z", // 02:30 CEST
            "2026-03-31T00:30:00Z",
        ])
    );
    // 02:00 itself is skipped too; two times in the gap run once, at the jump.
    assert_eq!(
        times("0,45 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2),
        all(&["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"])
    );
    // A time after the gap on the same day is not moved.
    assert_eq!(
        next("30 3 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z"),
        Some(to_millis_text("2026-03-29T01:30:00Z"))
    );
}

#[test]
fn berlin_fixed_time_in_the_repeated_hour_runs_once_at_the_first() {
    assert_eq!(
        times("30 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", 2),
        all(&[
            "2026-10-25T00:30:00Z", // 02:30 CEST, the first 02:30
            "2026-10-26T01:30:00Z", // 02:30 CET the next day, not the second 02:30
        ])
    );
    // Asked from inside the second 02:00-02:59, the next time is tomorrow's.
    assert_eq!(
        next("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z"),
        Some(to_millis_text("2026-10-26T01:30:00Z"))
    );
}

#[test]
fn berlin_wildcards_run_in_real_time() {
    // Skipped: 02:30 does not exist, so "minute 30 of every hour" goes from 01:30 to 03:30.
    assert_eq!(
        times("30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2),
        all(&["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"])
    );
    assert_eq!(
        times("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 3),
        all(&[
            "2026-03-29T00:30:00Z", // 01:30 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST
            "2026-03-29T01:30:00Z",
        ])
    );
    // Repeated: 02:30 happens twice and so does the job; @hourly is a wildcard job.
    assert_eq!(
        times("30 * * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", 4),
        all(&[
            "2026-10-24T23:30:00Z", // 01:30 CEST
            "2026-10-25T00:30:00Z", // 02:30 CEST
            "2026-10-25T01:30:00Z", // 02:30 CET
            "2026-10-25T02:30:00Z", // 03:30 CET
        ])
    );
    assert_eq!(
        times("@hourly", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
        all(&[
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z"
        ])
    );
}

// America/New_York: on 2026-03-08 clocks jump from 02:00 EST (07:00Z) to 03:00 EDT; on
// 2026-11-01 they go back from 02:00 EDT (06:00Z) to 01:00 EST.

#[test]
fn new_york_fixed_times_across_both_changes() {
    assert_eq!(
        times("15 2 8 3 *", "America/New_York", "2026-03-08T05:00:00Z", 2),
        all(&[
            "2026-03-08T07:00:00Z", // the jump, 03:00 EDT
            "2027-03-08T07:15:00Z", // 02:15 EST: daylight time starts on the 14th in 2027
        ])
    );
    assert_eq!(
        times("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z", 2),
        all(&[
            "2026-11-01T05:30:00Z", // 01:30 EDT, the first
            "2026-11-02T06:30:00Z", // 01:30 EST the next day
        ])
    );
}

#[test]
fn new_york_wildcards_across_both_changes() {
    assert_eq!(
        times(
            "*/20 * * * *",
            "America/New_York",
            "2026-03-08T06:30:00Z",
            3
        ),
        all(&[
            "2026-03-08T06:40:00Z", // 01:40 EST
            "2026-03-08T07:00:00Z", // 03:00 EDT
            "2026-03-08T07:20:00Z",
        ])
    );
    assert_eq!(
        times("30 * * * *", "America/New_York", "2026-11-01T05:00:00Z", 3),
        all(&[
            "2026-11-01T05:30:00Z", // 01:30 EDT
            "2026-11-01T06:30:00Z", // 01:30 EST
            "2026-11-01T07:30:00Z", // 02:30 EST
        ])
    );
    // A star in the minute is a wildcard even with a fixed hour: 01:59 EDT, then 01:00 EST.
    assert_eq!(
        times("* 1 * * *", "America/New_York", "2026-11-01T05:58:00Z", 3),
        all(&[
            "2026-11-01T05:59:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:01:00Z"
        ])
    );
}

#[test]
fn bad_expressions_are_refused_naming_the_field_and_value() {
    for (expr, want) in [
        (
            "61 * * * *",
            r#"cron "61 * * * *": minute 61 is out of range 0-59"#,
        ),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day of month 0 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day of week 8 is out of range 0-7"),
        (
            "99999999999 * * * *",
            "minute 99999999999 is out of range 0-59",
        ),
        (
            "* * * foo *",
            r#"month "foo" is neither a number nor a name (jan-dec)"#,
        ),
        (
            "* * * * mon-sun",
            "day of week range mon-sun runs backwards",
        ),
        ("mon * * * *", r#"minute "mon" is not a number"#),
        ("*/0 * * * *", r#"minute step "0" in */0"#),
        ("*/x * * * *", r#"minute step "x" in */x"#),
        (
            "5/10 * * * *",
            "minute 5/10 puts a step after a single value",
        ),
        ("1,,2 * * * *", "has an empty list item"),
        ("1- * * * *", r#"minute "" is not a number"#),
        (
            "* * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
        ),
        (
            "0 * * * * *",
            "found 6; belfry's cron has no seconds or year field",
        ),
        ("", "found 0"),
        ("@reboot", "@reboot names no time of day"),
        ("@often", "unknown nickname @often"),
    ] {
        let e = Cron::parse(expr, "UTC").unwrap_err().to_string();
        assert!(e.contains(want), "{expr}: {e}");
        assert!(e.starts_with(&format!("cron {expr:?}: ")), "{expr}: {e}");
    }
}

#[test]
fn time_zones_are_iana_names_in_any_case() {
    let e = Cron::parse("* * * * *", "Mars/Olympus").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"time zone "Mars/Olympus" is not an IANA time zone name (such as Europe/Berlin, America/New_York or UTC)"#
    );
    assert_eq!(cron("* * * * *", "europe/berlin").tz(), "Europe/Berlin");
    assert_eq!(cron("* * * * *", "UTC").tz(), "UTC");
    let Schedule::Cron(c) = Schedule::cron(" 0 3 * * * ", None).unwrap() else {
        panic!("not a cron schedule");
    };
    assert_eq!((c.expr(), c.tz()), ("0 3 * * *", "UTC"));
}

#[test]
fn the_bundled_database_holds_the_zones_without_any_files() {
    // The database the schedules use is the bundled one, so this holds on a machine without
    // /usr/share/zoneinfo as well.
    let db = jiff::tz::TimeZoneDatabase::bundled();
    for name in ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"] {
        assert!(db.get(name).is_ok(), "{name}");
    }
}

#[test]
fn a_cron_expectation_round_trips_through_json_and_is_checked_when_read() {
    let e = Expect::new(
        Schedule::cron("0 3 * * *", Some("Europe/Berlin")).unwrap(),
        Duration::from_secs(3600),
        None,
    )
    .unwrap();
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(
        json,
        r#"{"cron":"0 3 * * *","tz":"Europe/Berlin","grace_ms":3600000}"#
    );
    let back: Expect = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    assert_eq!(
        e.to_string(),
        r#"cron "0 3 * * *" in Europe/Berlin, grace 1h 0m"#
    );
    // Read back, it still computes (the parsed form is rebuilt, not trusted).
    let t = at("2026-06-01T00:00:00Z");
    assert_eq!(back.late_after(t), Some(at("2026-06-01T02:00:00Z")));

    let utc: Expect = serde_json::from_str(r#"{"cron":"@daily","grace_ms":1000}"#).unwrap();
    assert_eq!(
        utc.schedule,
        Schedule::cron("@daily", Some("UTC")).unwrap(),
        "tz defaults to UTC"
    );
    for bad in [
        r#"{"cron":"61 * * * *","tz":"UTC","grace_ms":1000}"#,
        r#"{"cron":"* * * * *","tz":"Nowhere/Land","grace_ms":1000}"#,
    ] {
        assert!(serde_json::from_str::<Expect>(bad).is_err(), "{bad}");
    }
}

#[test]
fn late_after_a_cron_slot_is_the_slot_plus_grace() {
    let e = Expect::new(
        Schedule::cron("*/15 * * * *", None).unwrap(),
        Duration::from_secs(120),
        None,
    )
    .unwrap();
    assert_eq!(
        e.late_after(at("2026-05-05T10:07:00Z")),
        Some(at("2026-05-05T10:17:00Z"))
    );
    let never = Expect::new(
        Schedule::cron("0 0 31 2 *", None).unwrap(),
        Duration::from_secs(120),
        None,
    )
    .unwrap();
    assert_eq!(never.late_after(at("2026-05-05T10:07:00Z")), None);
}

#[test]
fn next_times_stops_where_the_schedule_does() {
    let s = Schedule::cron("0 0 31 2 *", None).unwrap();
    assert!(s.next_times(at("2026-01-01T00:00:00Z"), 5).is_empty());
    let s = Schedule::period(Duration::from_secs(60)).unwrap();
    let t = at("2026-01-01T00:00:00Z");
    assert_eq!(
        s.next_times(t, 3),
        vec![
            t.add_millis(60_000),
            t.add_millis(120_000),
            t.add_millis(180_000)
        ]
    );
    assert!(s.next_times(t, 0).is_empty());
}

#[test]
fn times_at_the_edges_of_the_range_give_none_not_a_panic() {
    let c = cron("* * * * *", "Europe/Berlin");
    assert_eq!(c.next_after(Timestamp::from_millis(i64::MAX)), None);
    assert_eq!(c.next_after(Timestamp::from_millis(i64::MIN)), None);
    // The last minute jiff can hold: nothing after it.
    assert_eq!(
        cron("0 0 1 1 *", "UTC").next_after(at("9999-06-01T00:00:00Z")),
        None
    );
}

/// Whether the local minute `dt` is one the fields name (written apart from the search, with
/// jiff's calendar).
fn names(f: &Fields, dt: jiff::civil::DateTime) -> bool {
    let bit = |bits: u64, v: i64| bits & (1 << v) != 0;
    let dom = bit(f.doms, i64::from(dt.day()));
    let dow = bit(f.dows, i64::from(dt.weekday().to_sunday_zero_offset()));
    let day = if f.dom_star || f.dow_star {
        dom && dow
    } else {
        dom || dow
    };
    dt.second() == 0
        && dt.subsec_nanosecond() == 0
        && bit(f.minutes, i64::from(dt.minute()))
        && bit(f.hours, i64::from(dt.hour()))
        && bit(f.months, i64::from(dt.month()))
        && day
}

/// One field, written in one of the forms cron takes.
fn field(low: u32, high: u32, names: &'static [&'static str]) -> BoxedStrategy<String> {
    let value = move || {
        (low..=high).prop_flat_map(move |v| {
            let name = names.get((v - low) as usize).copied();
            match name {
                Some(n) => prop_oneof![Just(v.to_string()), Just(n.to_uppercase())].boxed(),
                None => Just(v.to_string()).boxed(),
            }
        })
    };
    let range =
        move || (low..=high, low..=high).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b)));
    let single = prop_oneof![
        Just("*".to_owned()),
        (1..=high).prop_map(|s| format!("*/{s}")),
        value(),
        range(),
        (range(), 1..=high).prop_map(|(r, s)| format!("{r}/{s}")),
    ];
    prop::collection::vec(single, 1..=3)
        .prop_map(|items| items.join(","))
        .boxed()
}

fn expression() -> impl Strategy<Value = String> {
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    (
        field(0, 59, &[]),
        field(0, 23, &[]),
        field(1, 31, &[]),
        field(1, 12, MONTHS),
        field(0, 7, DAYS),
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

/// 1970 to 2200, in milliseconds.
fn instant() -> impl Strategy<Value = Timestamp> {
    (0i64..7_258_118_400_000).prop_map(Timestamp::from_millis)
}

proptest! {
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(expr in "\\PC{0,40}", tz in "\\PC{0,20}") {
        let _ = Cron::parse(&expr, &tz);
    }

    #[test]
    fn cron_like_text_is_parsed_or_refused_without_panicking(
        expr in "[0-9*/,@a-zA-Z -]{0,30}"
    ) {
        if let Ok(c) = Cron::parse(&expr, "Europe/Berlin") {
            let _ = c.describe();
            let _ = c.next_after(Timestamp::from_millis(1_800_000_000_000));
        }
    }

    #[test]
    fn in_utc_the_next_time_is_later_named_by_the_expression_and_the_first(
        expr in expression(),
        t in instant(),
    ) {
        let c = cron(&expr, "UTC");
        let f = parse(&expr).unwrap();
        prop_assert!(!c.describe().is_empty());
        let Some(next) = c.next_after(t) else {
            // Only expressions that name no existing day may have no next time.
            prop_assert!(f.months & (1 << 2) != 0 || f.doms & (1 << 31 | 1 << 30) != 0, "{expr}");
            return Ok(());
        };
        prop_assert!(next > t, "{expr}: {} after {}", next.to_rfc3339(), t.to_rfc3339());
        let utc = |ts: Timestamp| {
            jiff::Timestamp::from_millisecond(ts.as_millis()).unwrap().to_zoned(jiff::tz::TimeZone::UTC).datetime()
        };
        prop_assert!(names(&f, utc(next)), "{expr}: {} is not named", next.to_rfc3339());
        // No minute in between is named (checked minute by minute when the gap is short).
        let minute = 60_000;
        if next.as_millis() - t.as_millis() <= 2 * 86_400_000 {
            let mut m = t.as_millis().div_euclid(minute) * minute + minute;
            while m < next.as_millis() {
                prop_assert!(!names(&f, utc(Timestamp::from_millis(m))), "{expr}: {m} skipped");
                m += minute;
            }
        }
    }

    #[test]
    fn across_daylight_saving_times_only_move_forward(
        expr in expression(),
        t in instant(),
        tz in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Lord_Howe")],
    ) {
        let s = Schedule::Cron(cron(&expr, tz));
        let ts = s.next_times(t, 4);
        let mut prev = t;
        for next in ts {
            prop_assert!(next > prev, "{expr} in {tz}");
            prev = next;
        }
    }
}

/// Debian cron's rule, checked the slow way: walks real minutes from `t` and returns the first
/// at which cron would start the job, looking `horizon` minutes ahead. A wildcard job starts at
/// every minute whose local time it names; a wall-clock job at the first occurrence of a named
/// local time, and at a jump forward over a named local time.
fn debian_by_the_minute(
    f: &Fields,
    tz: &jiff::tz::TimeZone,
    t: jiff::Timestamp,
    horizon: i64,
) -> Option<jiff::Timestamp> {
    use jiff::tz::AmbiguousOffset;
    let minute = 60_000;
    let first = t.as_millisecond().div_euclid(minute) * minute + minute;
    for i in 0..horizon {
        let x = jiff::Timestamp::from_millisecond(first + i * minute).ok()?;
        let local = tz.to_datetime(x);
        if !f.wall_clock {
            if names(f, local) {
                return Some(x);
            }
            continue;
        }
        let first_occurrence = match tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok() == Some(x),
            _ => true,
        };
        if names(f, local) && first_occurrence {
            return Some(x);
        }
        let (was, now) = (
            tz.to_offset(x - jiff::SignedDuration::from_millis(1)),
            tz.to_offset(x),
        );
        if now.seconds() > was.seconds() {
            // A jump forward at x: local times from x at the old offset up to x at the new one
            // were skipped.
            let mut skipped = was.to_datetime(x);
            let end = now.to_datetime(x);
            while skipped < end {
                if names(f, skipped) {
                    return Some(x);
                }
                skipped = skipped
                    .checked_add(jiff::SignedDuration::from_mins(1))
                    .ok()?;
            }
        }
    }
    None
}

/// A time within three hours of a change of offset in one of three zones (Lord Howe moves by
/// half an hour), between 1990 and 2100.
fn near_a_change() -> impl Strategy<Value = (&'static str, jiff::Timestamp)> {
    (
        prop_oneof![
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("Australia/Lord_Howe")
        ],
        1990i16..2100,
        0usize..2,
        -10_800_000i64..10_800_000,
    )
        .prop_map(|(zone, year, which, shift)| {
            let tz = jiff::tz::TimeZone::get(zone).unwrap();
            let jan = jiff::civil::date(year, 1, 1).to_zoned(tz.clone()).unwrap();
            let change = tz
                .following(jan.timestamp())
                .nth(which)
                .unwrap()
                .timestamp();
            let t = jiff::Timestamp::from_millisecond(change.as_millisecond() + shift).unwrap();
            (zone, t)
        })
}

/// Expressions likely to name times near a change of offset (in the small hours, most days).
fn small_hours_expression() -> impl Strategy<Value = String> {
    let minute = prop_oneof![
        Just("0".to_owned()),
        Just("30".to_owned()),
        Just("15,45".to_owned()),
        Just("*/15".to_owned()),
        Just("0-59/20".to_owned()),
        Just("*".to_owned()),
        field(0, 59, &[]),
    ];
    let hour = prop_oneof![
        Just("1".to_owned()),
        Just("2".to_owned()),
        Just("3".to_owned()),
        Just("1-3".to_owned()),
        Just("2,3".to_owned()),
        Just("*/2".to_owned()),
        Just("0-23/2".to_owned()),
        Just("*".to_owned()),
        field(0, 23, &[]),
    ];
    let day =
        |low, high, names| prop_oneof![4 => Just("*".to_owned()), 1 => field(low, high, names)];
    (
        minute,
        hour,
        day(1, 31, &[]),
        day(1, 12, &[]),
        day(0, 7, &[]),
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn near_daylight_saving_changes_the_search_agrees_with_a_walk_by_the_minute(
        expr in prop_oneof![small_hours_expression(), expression()],
        (zone, t) in near_a_change(),
    ) {
        const HORIZON: i64 = 24 * 60;
        let c = cron(&expr, zone);
        let f = parse(&expr).unwrap();
        let tz = jiff::tz::TimeZone::get(zone).unwrap();
        let want = debian_by_the_minute(&f, &tz, t, HORIZON);
        let got = c
            .next_after(Timestamp::from_millis(t.as_millisecond()))
            .map(|n| jiff::Timestamp::from_millisecond(n.as_millis()).unwrap());
        match want {
            Some(w) => prop_assert_eq!(got, Some(w), "{} in {} after {}", expr, zone, t),
            None => prop_assert!(
                got.is_none_or(|g| g.as_millisecond() >= t.as_millisecond() + HORIZON * 60_000),
                "{} in {} after {}: {:?} within the horizon", expr, zone, t, got
            ),
        }
    }
}
