//! No input makes belfry panic: generated durations, service hints, channel URLs,
//! configuration files and job names, 120,500 inputs in all (the counts are in each test's
//! name). Each suite takes a few seconds in a debug build; a failure is shrunk by proptest and
//! saved under `proptest-regressions/` to be replayed first next time.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use belfry::config::Config;
use belfry::core::{
    Details, Event, MAX_DURATION, Policy, State, Timestamp, derive_job_name, format_duration,
    instant_after, parse_duration, validate_job_name,
};
use belfry::secret::Lookup;
use belfry_store::{RunEnd, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};

// The generators are built from pieces picked from lists rather than from regular
// expressions: proptest's regex strategies (`any::<String>()` is one) cost a millisecond or more
// a value in a debug build.

/// Any text: up to 24 characters of any kind.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..24).prop_map(|v| v.into_iter().collect())
}

/// Text made of `pieces`, fewer than `max` of them.
fn made_of(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> + Clone {
    proptest::collection::vec(proptest::sample::select(pieces), 0..max).prop_map(|v| v.concat())
}

/// A number as written: small, any `u64`, past `u64`, with a fraction or an exponent, or none.
fn number() -> impl Strategy<Value = String> {
    (any::<u64>(), 0u8..7).prop_map(|(n, how)| match how {
        0 => (n % 100).to_string(),
        1 => (n % 1_000_000).to_string(),
        2 => n.to_string(),
        3 => format!("{n}{}", n % 1000),
        4 => format!("{}.{}", n % 1000, n % 7919),
        5 => format!("{}e{}", n % 100, n % 400),
        _ => String::new(),
    })
}

const UNITS: &[&str] = &[
    "ns", "us", "µs", "ms", "s", "sec", "m", "min", "h", "hours", "d", "days", "w", "weeks", "M",
    "months", "y", "years", "parsecs", "off", "", " ", ".", "-",
];

/// Text that looks like a duration often enough to reach every branch: signs, digits past
/// `u64`, fractions, every unit and some that are not, several parts; and any text at all.
fn duration_text() -> impl Strategy<Value = String> {
    let part = (number(), proptest::sample::select(UNITS)).prop_map(|(n, u)| format!("{n}{u}"));
    let sign = proptest::sample::select(&["", "", "", "-", "+", " ", "--", "- "][..]);
    prop_oneof![
        4 => (sign, proptest::collection::vec(part, 0..4))
            .prop_map(|(sign, parts)| format!("{sign}{}", parts.join(" "))),
        1 => text(),
    ]
}

/// A `Retry-After` value: seconds past `u64`, floats with exponents, HTTP dates up to 9999
/// and past it.
fn retry_after_text() -> impl Strategy<Value = String> {
    let sign = proptest::sample::select(&["", "", "-", " "][..]);
    prop_oneof![
        (sign, number()).prop_map(|(s, n)| format!("{s}{n}")),
        (0u64..253_402_300_799)
            .prop_map(|s| httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s))),
        (1u32..100_000, 0u32..60).prop_map(|(y, s)| format!("Fri, 31 Dec {y} 23:59:{s:02} GMT")),
        text(),
    ]
}

fn cases(n: u32) -> TestRunner {
    TestRunner::new(Cases::with_cases(n))
}

/// Whatever a parsed duration is added to, nothing overflows: the bound is what makes it so.
fn use_a_duration(d: Duration) {
    assert!(d <= MAX_DURATION, "{d:?}");
    let now = Instant::now();
    assert_eq!(instant_after(now, d), now + d);
    let t = Timestamp::now() + d;
    assert!(t.to_rfc3339().len() >= 20);
    assert!((t - d).as_millis() <= Timestamp::now().as_millis());
    assert!(!format_duration(d).is_empty());
}

#[test]
fn durations_as_written_never_panic_over_30000_inputs() {
    cases(30_000)
        .run(&duration_text(), |s| {
            match parse_duration(&s) {
                Ok(d) => use_a_duration(d),
                Err(e) => prop_assert!(e.to_string().contains(&format!("{s:?}")), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn service_hints_to_wait_never_panic_over_15000_inputs() {
    let now = SystemTime::now();
    cases(15_000)
        .run(&retry_after_text(), |v| {
            if let Some(d) = belfry::channels::parse_retry_after(&v, now) {
                use_a_duration(d);
            }
            let header = |_: &str| Some(v.as_str());
            if let Some(hint) = belfry::channels::rate_limit_hint(429, header, now) {
                let d = belfry::channels::parse_retry_after(&hint, now);
                prop_assert!(d.is_some(), "{hint}");
                use_a_duration(d.unwrap_or_default());
            }
            for status in [200, 429, 503] {
                let _ = belfry::channels::classify_http(status, Some(&v), &v, now);
            }
            Ok(())
        })
        .unwrap();
}

/// The schemes belfry reads, and a few it does not.
const SCHEMES: &[&str] = &[
    "console",
    "stderr",
    "json",
    "jsons",
    "http",
    "https",
    "tgram",
    "discord",
    "slack",
    "mmost",
    "rocket",
    "workflows",
    "gchat",
    "zulip",
    "ntfy",
    "ntfys",
    "gotify",
    "pover",
    "pbul",
    "prowl",
    "pagerduty",
    "signal",
    "hassio",
    "ifttt",
    "bark",
    "xml",
    "form",
    "mailto",
    "mailtos",
    "sendgrid",
    "twilio",
    "opsgenie",
    "cmd",
    "file",
    "msteams",
    "nope",
    "",
];

/// What URLs hold: characters, percent escapes good and bad, brackets, templates, options in
/// Apprise's forms, phone numbers, tokens, secrets' references.
const URL_PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "9",
    ".",
    "_",
    "~",
    "-",
    "%",
    "%4",
    "%41",
    "%C3%A9",
    "%ZZ",
    "%00",
    "@",
    ":",
    "/",
    "?",
    "#",
    "&",
    "=",
    "+",
    ",",
    ";",
    "[",
    "]",
    "{",
    "}",
    "$",
    " ",
    "é",
    "\u{0}",
    "\n",
    "{title}",
    "{nope}",
    "+X-H=1",
    "-p=1",
    ":k=v",
    "to=",
    "arg=",
    "timeout=",
    "AC0123abcdef",
    "+15551234567",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "${env:X}",
    "0123456789abcdef",
];

/// A channel URL: a real scheme, then user, password, host, port, path and query made of
/// [`URL_PIECES`]; or any text at all.
fn url_text() -> impl Strategy<Value = String> {
    let piece = made_of(URL_PIECES, 10);
    prop_oneof![
        4 => (
            proptest::sample::select(SCHEMES),
            proptest::option::of(piece.clone()),
            proptest::option::of(piece.clone()),
            piece.clone(),
            proptest::option::of(0u32..100_000),
            piece.clone(),
            proptest::option::of(piece),
        )
            .prop_map(|(scheme, user, pass, host, port, path, query)| {
                let mut u = format!("{scheme}://");
                if let Some(user) = user {
                    u.push_str(&user);
                    if let Some(pass) = pass {
                        u.push(':');
                        u.push_str(&pass);
                    }
                    u.push('@');
                }
                u.push_str(&host);
                if let Some(port) = port {
                    u.push_str(&format!(":{port}"));
                }
                u.push('/');
                u.push_str(&path);
                if let Some(q) = query {
                    u.push('?');
                    u.push_str(&q);
                }
                u
            }),
        1 => text(),
    ]
}

#[test]
fn channel_urls_never_panic_over_25000_inputs() {
    cases(25_000)
        .run(&url_text(), |u| {
            match belfry::channels::parse(&u) {
                Ok(ch) => {
                    let _ = ch.describe();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            let _ = belfry::channels::redact_url(&u);
            Ok(())
        })
        .unwrap();
}

/// A TOML string holding `s`, escaped as TOML's basic strings want.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A small generator (splitmix64) for building a file from one proptest-drawn seed: far
/// cheaper than a proptest strategy per key and value.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn made_of(&mut self, pieces: &[&str], max: usize) -> String {
        (0..self.below(max + 1))
            .map(|_| self.pick(pieces))
            .collect()
    }

    /// A number of any size, as written: from negative through small to past `u64`.
    fn number(&mut self) -> String {
        let n = self.next();
        match self.below(6) {
            0 => (n % 10).to_string(),
            1 => (n % 100_000).to_string(),
            2 => n.to_string(),
            3 => format!("{n}{}", n % 1000),
            4 => format!("-{}", n % 100),
            _ => (n as i64).to_string(),
        }
    }

    fn duration(&mut self) -> String {
        if self.below(2) == 0 {
            let n = self.below(1000);
            return format!("{n}{}", self.pick(&["ms", "s", "m", "h", "d", "y"]));
        }
        let parts = 1 + self.below(3);
        let mut d = String::new();
        for i in 0..parts {
            if i > 0 {
                d.push(' ');
            }
            d.push_str(&self.number());
            d.push_str(self.pick(UNITS));
        }
        d
    }

    fn list(&mut self, item: impl Fn(&mut Mix) -> String) -> String {
        let items: Vec<String> = (0..self.below(4)).map(|_| item(self)).collect();
        format!("[{}]", items.join(", "))
    }

    fn url(&mut self) -> String {
        if self.below(2) == 0 {
            return self
                .pick(&[
                    "json://127.0.0.1:8080/x",
                    "json://u:${env:TOKEN}@127.0.0.1/x?+X-Run=1",
                    "console://",
                    "file:///tmp/belfry-fuzz.jsonl",
                    "cmd://true?arg={title}",
                    "slack://T1234/B5678/C9abcdefghijklmnopqrstuv",
                    "mailto://u:p@127.0.0.1:2525?to=a@example.com",
                ])
                .to_owned();
        }
        let scheme = self.pick(SCHEMES);
        let rest = self.made_of(URL_PIECES, 24);
        format!("{scheme}://{rest}")
    }

    /// Any value at all, of any type.
    fn anything(&mut self) -> String {
        match self.below(9) {
            0 => self.number(),
            1 => format!("{:e}", f64::from_bits(self.next())).replace("NaN", "nan"),
            2 => ["true", "false"][self.below(2)].to_owned(),
            3 => quoted(&self.made_of(URL_PIECES, 6)),
            4 => quoted(&self.duration()),
            5 => self.list(Mix::number),
            6 => "{ a = 1 }".to_owned(),
            7 => "1979-05-27T07:32:00Z".to_owned(),
            _ => quoted(
                &(0..self.below(6))
                    .filter_map(|_| char::from_u32(self.next() as u32 % 0x11_0000))
                    .collect::<String>(),
            ),
        }
    }

    /// A value for `key`: most of the time of the key's own type (in range or not), else
    /// anything.
    fn value_for(&mut self, key: &str) -> String {
        if self.below(10) == 0 {
            return self.anything();
        }
        match key {
            "repeat_failures_after"
            | "timeout"
            | "kill_after"
            | "wait"
            | "give_up_after"
            | "request_timeout"
            | "digest_window"
            | "lease" => quoted(&self.duration()),
            "ok_heartbeat_after" if self.below(4) == 0 => quoted("off"),
            "ok_heartbeat_after" => quoted(&self.duration()),
            "fail_threshold" | "burst" | "concurrency" | "tail_bytes" | "head_lines" => {
                if self.below(2) == 0 {
                    (1 + self.below(100)).to_string()
                } else {
                    self.number()
                }
            }
            "ok_codes" => self.list(Mix::number),
            "rate" => format!("{}", f64::from_bits(self.next()).abs() % 1e6),
            "background" => ["true", "false"][self.below(2)].to_owned(),
            "url" => quoted(&self.url()),
            "command" => self.list(|m| quoted(&m.made_of(URL_PIECES, 4))),
            "jobs" | "channels" => self.list(|m| quoted(m.pick(NAMES))),
            "states" => self.list(|m| {
                quoted(m.pick(&["problem", "recovered", "failed", "ok", "late", "nope", ""]))
            }),
            _ => quoted(&self.made_of(TEMPLATE_PIECES, 6)),
        }
    }
}

const POLICY: &[&str] = &[
    "repeat_failures_after",
    "ok_heartbeat_after",
    "fail_threshold",
];
const CHANNEL: &[&str] = &[
    "url",
    "url",
    "url",
    "command",
    "timeout",
    "jobs",
    "states",
    "title",
    "body",
    "rate",
    "burst",
    "concurrency",
];
const JOB: &[&str] = &[
    "repeat_failures_after",
    "ok_heartbeat_after",
    "fail_threshold",
    "channels",
    "timeout",
    "ok_codes",
];
const RUN: &[&str] = &["tail_bytes", "head_lines", "kill_after"];
const DELIVERY: &[&str] = &[
    "wait",
    "give_up_after",
    "request_timeout",
    "background",
    "digest_window",
    "lease",
];
const NAMES: &[&str] = &[
    "ops",
    "hook",
    "backup-db",
    "backup-*",
    "urls-1",
    "a.b",
    "",
    "é x",
];
const TEMPLATE_PIECES: &[&str] = &[
    "{{ title }}",
    "{{ host }}",
    "{{ nope }}",
    "{{",
    "}}",
    "{% if duration %}",
    "{% endif %}",
    "{{ 1 / 0 }}",
    "x",
    " ",
    "{title}",
    "é",
];

/// A `belfry.toml` built from the real sections and keys (now and then one there is not), each
/// key with a value of its own type most of the time, drawn from `seed`.
fn config_from(seed: u64) -> String {
    let mut m = Mix(seed);
    let mut text = String::new();
    let mut headers = Vec::new();
    for _ in 0..1 + m.below(5) {
        let (header, keys) = match m.below(5) {
            0 => ("[policy]".to_owned(), POLICY),
            1 => (format!("[channels.{}]", m.pick(NAMES)), CHANNEL),
            2 => (format!("[jobs.\"{}\"]", m.pick(NAMES)), JOB),
            3 => ("[run]".to_owned(), RUN),
            _ => ("[delivery]".to_owned(), DELIVERY),
        };
        // A table or a key twice is a TOML error every time: now and then only.
        if headers.contains(&header) && m.below(10) > 0 {
            continue;
        }
        text.push_str(&header);
        text.push('\n');
        headers.push(header);
        let mut used = Vec::new();
        for _ in 0..m.below(6) {
            let key = if m.below(20) == 0 {
                "colour"
            } else {
                m.pick(keys)
            };
            if used.contains(&key) && m.below(10) > 0 {
                continue;
            }
            used.push(key);
            let value = m.value_for(key);
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text
}

fn parse(text: &str) {
    let env = |_: &str| Some(OsString::from("env-value-1"));
    match Config::parse_with(text, "fuzz.toml", &Lookup::with_env(&env, None)) {
        Ok(c) => {
            for ch in &c.channels {
                let _ = ch.describe();
            }
            let _ = c.policy_for("backup-db");
            let _ = c.route("backup-db", &State::Failed, false);
        }
        Err(e) => assert!(e.to_string().starts_with("config fuzz.toml"), "{e}"),
    }
}

#[test]
fn configuration_files_built_from_the_real_keys_never_panic_over_20000_inputs() {
    // Enough of them load, so that what comes after the file's shape is reached too.
    let loaded = (0..2_000u64)
        .filter(|&seed| Config::parse(&config_from(seed), "f").is_ok())
        .count();
    assert!(loaded >= 100, "only {loaded} of 2000 loaded");
    cases(20_000)
        .run(&any::<u64>(), |seed| {
            parse(&config_from(seed));
            Ok(())
        })
        .unwrap();
}

/// A configuration that loads, for the byte-level mutations below to start from.
const SAMPLE: &str = "[policy]\nrepeat_failures_after = \"1s\"\nok_heartbeat_after = \"59m 24s\"\n\
fail_threshold = 1\n\n[channels.ops]\nurl = \"json://u:${env:TOKEN}@127.0.0.1:8080/x?+X-Run=1\"\n\
states = [\"problem\", \"recovered\"]\njobs = [\"backup-*\"]\nrate = 1.0\nburst = 3\n\
title = \"[{{ host }}] {{ title }}\"\n\n[channels.desk]\ncommand = [\"notify-send\", \"{title}\"]\n\
timeout = \"10s\"\n\n[jobs.backup-db]\nfail_threshold = 2\nchannels = [\"ops\"]\ntimeout = \"2h\"\n\
ok_codes = [0, 24]\n\n[run]\ntail_bytes = 65536\nkill_after = \"10s\"\n\n[delivery]\nwait = \"10s\"\n\
lease = \"15s\"\n";

#[test]
fn configuration_bytes_never_panic_over_20000_inputs() {
    parse(SAMPLE);
    let env = |_: &str| Some(OsString::from("env-value-1"));
    let sample = Config::parse_with(SAMPLE, "sample", &Lookup::with_env(&env, None));
    assert!(sample.is_ok(), "{:?}", sample.err());
    // Random bytes, read as the loader reads a file it was given…
    cases(10_000)
        .run(&proptest::collection::vec(any::<u8>(), 0..400), |bytes| {
            parse(&String::from_utf8_lossy(&bytes));
            Ok(())
        })
        .unwrap();
    // …and a loading file with bytes changed, inserted or cut here and there.
    let edits =
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6);
    cases(10_000)
        .run(&edits, |edits| {
            let mut b = SAMPLE.as_bytes().to_vec();
            for (at, byte, how) in edits {
                let i = at.index(b.len().max(1));
                match how {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i.min(b.len()), byte),
                    _ if i < b.len() => {
                        b.remove(i);
                    }
                    _ => {}
                }
            }
            parse(&String::from_utf8_lossy(&b));
            Ok(())
        })
        .unwrap();
}

#[test]
fn job_names_never_panic_over_10000_inputs_and_valid_ones_are_kept_as_given() {
    const NAME_PIECES: &[&str] = &[
        "a", "Z", "0", " ", ".", "_", "/", "-", "..", "é", "*", "\t", "\n", "\u{7f}", "\u{200b}",
    ];
    let name = prop_oneof![
        3 => made_of(NAME_PIECES, 20),
        1 => text(),
        1 => proptest::collection::vec(any::<char>(), 190..210).prop_map(|v| v.into_iter().collect()),
    ];
    let argv = proptest::collection::vec(made_of(NAME_PIECES, 8), 0..4);
    let cwd = prop_oneof![
        Just("/".to_owned()),
        made_of(NAME_PIECES, 12).prop_map(|p| format!("/{p}")),
        text(),
    ];
    cases(10_000)
        .run(&(name, argv, cwd), |(name, argv, cwd)| {
            if let Err(e) = validate_job_name(&name) {
                prop_assert!(e.to_string().contains("invalid job name"), "{e}");
            }
            let derived = derive_job_name(&argv, Path::new(&cwd));
            prop_assert!(!derived.is_empty());
            Ok(())
        })
        .unwrap();
    // A sample of the valid ones go through a real store and come back as they were given.
    let dir = tempfile::tempdir().unwrap();
    let store = std::cell::RefCell::new(Store::open(dir.path().join("fuzz.db")).unwrap());
    let valid = prop_oneof![made_of(NAME_PIECES, 20), text()]
        .prop_filter("a valid name", |n| validate_job_name(n).is_ok());
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    cases(500)
        .run(&valid, |job| {
            let ev = Event {
                job: job.clone(),
                state: State::Ok,
                at: t0,
                details: Details {
                    run_id: Some(belfry_store::new_id()),
                    duration: Some(Duration::from_millis(5)),
                    ..Details::default()
                },
            };
            let end = RunEnd {
                event: &ev,
                output: None,
                output_bytes: 0,
            };
            let mut store = store.borrow_mut();
            store
                .finish_run(
                    &end,
                    &Policy::default(),
                    |_, _| Vec::new(),
                    &belfry_store::Limits::default(),
                )
                .unwrap();
            let runs = store.runs(&job, 1, false).unwrap();
            prop_assert_eq!(runs.len(), 1, "{:?}", job);
            prop_assert_eq!(&runs[0].job, &job);
            Ok(())
        })
        .unwrap();
}
