//! A cron expression in plain words, for people reading a dashboard: "at 03:00 every day",
//! "every 5 minutes", "at minute 0 past every 2nd hour on Monday-Friday".
//!
//! The words are made from the parsed sets, not from the text, so they say what the schedule
//! does however it was written (`*/15` and `0,15,30,45` read the same).

use std::fmt::Write as _;

use super::cron::Fields;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The largest number of times of day written out one by one ("at 09:00 and 17:30").
const MAX_LISTED_TIMES: usize = 6;

pub(super) fn describe(f: &Fields) -> String {
    let minutes = members(f.minutes, 0, 59);
    let hours = members(f.hours, 0, 23);
    let all_minutes = minutes.len() == 60;
    let all_hours = hours.len() == 24;

    let mut out = String::new();
    let mut clock_times = false;
    if all_minutes && all_hours {
        out.push_str("every minute");
    } else if !all_minutes && !all_hours && minutes.len() * hours.len() <= MAX_LISTED_TIMES {
        clock_times = true;
        let times: Vec<String> = hours
            .iter()
            .flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}")))
            .collect();
        out.push_str("at ");
        out.push_str(&and_list(&times));
    } else {
        let every_n_minutes = step_from_zero(&minutes, 60);
        match (minutes.len(), every_n_minutes) {
            (60, _) => out.push_str("every minute"),
            (_, Some(n)) => {
                let _ = write!(out, "every {n} minutes");
            }
            (1, _) => {
                let _ = write!(out, "at minute {}", minutes[0]);
            }
            _ => {
                let _ = write!(out, "at minutes {}", ranges(&minutes));
            }
        }
        let at_minute = out.starts_with("at ");
        if !all_hours {
            let hours_text = match step_from_zero(&hours, 24) {
                Some(n) => format!("every {} hour", ordinal(n)),
                None if hours.len() == 1 => format!("hour {}", hours[0]),
                None => format!("hours {}", ranges(&hours)),
            };
            out.push_str(if at_minute { " past " } else { " during " });
            out.push_str(&hours_text);
        } else if at_minute {
            out.push_str(" past every hour");
        }
    }

    let doms = members(f.doms, 1, 31);
    let months = members(f.months, 1, 12);
    let dows = members(f.dows, 0, 6);
    // Both restricted: a day matches if either does, so a full one means every day.
    let either = !f.dom_star && !f.dow_star;
    let every_day = either && (doms.len() == 31 || dows.len() == 7);
    let dom_text = (doms.len() < 31 && !every_day).then(|| match doms.len() {
        1 => format!("day {}", doms[0]),
        _ => format!("days {}", ranges(&doms)),
    });
    let dow_text = (dows.len() < 7 && !every_day).then(|| named_ranges(&dows, 0, &WEEKDAYS));
    let month_text = (months.len() < 12).then(|| named_ranges(&months, 1, &MONTHS));

    let day_text_empty = dom_text.is_none() && dow_text.is_none();
    match (dom_text, dow_text) {
        (None, None) => {}
        (None, Some(dow)) => {
            let _ = write!(out, " on {dow}");
        }
        (Some(dom), None) if month_text.is_some() => {
            let _ = write!(out, " on {dom}");
        }
        (Some(dom), None) => {
            let _ = write!(out, " on {dom} of the month");
        }
        (Some(dom), Some(dow)) if either => {
            let _ = write!(out, " on {dom} of the month or on {dow}");
        }
        (Some(dom), Some(dow)) => {
            let _ = write!(out, " on {dom} of the month if it is a {dow}");
        }
    }
    match month_text {
        Some(m) => {
            let _ = write!(out, " in {m}");
        }
        None if clock_times && day_text_empty => out.push_str(" every day"),
        None => {}
    }
    out
}

/// The members of a bit set from `low` to `high`.
fn members(bits: u64, low: u32, high: u32) -> Vec<u32> {
    (low..=high).filter(|&i| bits & (1 << i) != 0).collect()
}

/// `n` if the values are exactly 0, n, 2n, … up to the field's end (`*/n`, n > 1).
fn step_from_zero(values: &[u32], size: u32) -> Option<u32> {
    let n = *values.get(1)?;
    if values[0] != 0 || n < 2 {
        return None;
    }
    let expected: Vec<u32> = (0..size).step_by(n as usize).collect();
    (values == expected.as_slice()).then_some(n)
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Consecutive runs of three or more values as `a-b`, the rest one by one: `1-5,10,12`.
fn ranges(values: &[u32]) -> String {
    runs(values)
        .into_iter()
        .map(|(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a},{b}"),
            _ => format!("{a}-{b}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Names instead of numbers: `Monday-Friday`, `January and July`.
fn named_ranges(values: &[u32], low: u32, names: &[&str]) -> String {
    let name = |v: u32| names[(v - low) as usize];
    let mut parts = Vec::new();
    for (a, b) in runs(values) {
        match b - a {
            0 => parts.push(name(a).to_owned()),
            1 => {
                parts.push(name(a).to_owned());
                parts.push(name(b).to_owned());
            }
            _ => parts.push(format!("{}-{}", name(a), name(b))),
        }
    }
    and_list(&parts)
}

/// Runs of consecutive values, as (first, last).
fn runs(values: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == v => *last = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::cron::parse;
    use super::*;

    #[test]
    fn expressions_read_as_plain_words() {
        for (expr, words) in [
            ("0 3 * * *", "at 03:00 every day"),
            ("@daily", "at 00:00 every day"),
            ("*/5 * * * *", "every 5 minutes"),
            (
                "0,5,10,15,20,25,30,35,40,45,50,55 * * * *",
                "every 5 minutes",
            ),
            ("* * * * *", "every minute"),
            (
                "0 */2 * * 1-5",
                "at minute 0 past every 2nd hour on Monday-Friday",
            ),
            ("@hourly", "at minute 0 past every hour"),
            ("15,45 * * * *", "at minutes 15,45 past every hour"),
            (
                "*/10 9-17 * * mon-fri",
                "every 10 minutes during hours 9-17 on Monday-Friday",
            ),
            (
                "0,30 9,17 * * *",
                "at 09:00, 09:30, 17:00 and 17:30 every day",
            ),
            ("30 2 * * sun", "at 02:30 on Sunday"),
            ("0 0 1 * *", "at 00:00 on day 1 of the month"),
            ("0 0 1 1 *", "at 00:00 on day 1 in January"),
            (
                "0 12 1,15 * fri",
                "at 12:00 on days 1,15 of the month or on Friday",
            ),
            (
                "0 12 */2 * fri",
                "at 12:00 on days 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 of the month if it is a Friday",
            ),
            (
                "0 8 * jan,jul mon,wed,fri",
                "at 08:00 on Monday, Wednesday and Friday in January and July",
            ),
            ("0 8 * * 0,6", "at 08:00 on Sunday and Saturday"),
            ("* 4 * * *", "every minute during hour 4"),
            (
                "1-30/2 * * * *",
                "at minutes 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29 past every hour",
            ),
        ] {
            assert_eq!(describe(&parse(expr).unwrap()), words, "{expr}");
        }
    }

    #[test]
    fn ordinals_take_their_suffix() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22].map(ordinal).to_vec();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd"
            ]
        );
    }
}
