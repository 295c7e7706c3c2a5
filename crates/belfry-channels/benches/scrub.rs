//! What hiding secrets costs: scrubbing a failure reason with the secrets of four channels
//! against the plain `str::replace` loop over the same values that belfry used before (which
//! saw only the values as they are), and collecting a URL's secrets (done for every channel
//! whenever the configuration is loaded) against parsing the URL (which loading does anyway).
//!
//! ```sh
//! cargo bench -p belfry-channels --bench scrub
//! ```

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use belfry_channels::{Secrets, parse};
use criterion::{Criterion, criterion_group, criterion_main};

const URLS: [&str; 4] = [
    "json://alice:hunter2-pw@hooks.example.com/hooks/FAKESECRETpath",
    "ntfy://ntfy.example.com/alerts?token=tk_FAKESECRETtoken0123",
    "slack://T0000FAKE/B0000FAKE/XXXXXXXXFAKESECRET/#ops",
    "tgram://123456789:AAH-FAKESECRET-token/-100123",
];

/// The values the old scrubber looked for: the URL parts of six characters or more.
fn raw_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "hunter2-pw",
        "FAKESECRETpath",
        "tk_FAKESECRETtoken0123",
        "T0000FAKE",
        "B0000FAKE",
        "XXXXXXXXFAKESECRET",
        "123456789:AAH-FAKESECRET-token",
        "AAH-FAKESECRET-token",
        "123456789",
        "-100123",
    ]
    .map(str::to_owned)
    .to_vec();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

fn replace_loop(values: &[String], text: &str) -> String {
    let mut out = text.to_owned();
    for s in values {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn scrub(c: &mut Criterion) {
    let mut secrets = Secrets::default();
    for u in URLS {
        secrets.extend(&Secrets::of_url(u));
    }
    let values = raw_values();
    let reasons = [
        (
            "plain",
            "HTTP 503: upstream connect error or disconnect/reset before headers. reset reason: \
             connection failure, transport failure reason: delayed connect error: 111; please \
             try again later (request id 7f3a9c2e-41b0-4d8e-9f11-2b6c0d5e8a77)…",
        ),
        (
            "raw secret",
            "HTTP 401: invalid token tk_FAKESECRETtoken0123 for topic alerts; check the token \
             and the topic's access control list, then try again (request id 7f3a9c2e-41b0)",
        ),
        (
            "JSON echo",
            "HTTP 400: {\"error\":\"bad request\",\"headers\":{\"authorization\":\"Basic \
             YWxpY2U6aHVudGVyMi1wdw==\"},\"url\":\"\\/hooks\\/FAKESECRETpath?x=%2Fa%20b\",\
             \"body\":\"{\\\"job\\\":\\\"nightly\\\"}\"}…",
        ),
    ];
    let mut g = c.benchmark_group("scrub_reason");
    g.measurement_time(Duration::from_secs(3));
    for (name, text) in reasons {
        g.bench_function(format!("{name}: replace loop (before)"), |b| {
            b.iter(|| replace_loop(&values, black_box(text)))
        });
        g.bench_function(format!("{name}: Secrets::scrub"), |b| {
            b.iter(|| secrets.scrub(black_box(text)).len())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("load_url");
    g.measurement_time(Duration::from_secs(3));
    for u in [URLS[0], URLS[2]] {
        let scheme = u.split_once("://").map_or("", |(s, _)| s);
        g.bench_function(format!("{scheme}: parse"), |b| {
            b.iter(|| parse(black_box(u)).is_ok())
        });
        g.bench_function(format!("{scheme}: Secrets::of_url"), |b| {
            b.iter(|| Secrets::of_url(black_box(u)).is_empty())
        });
    }
    g.finish();
}

criterion_group!(benches, scrub);
criterion_main!(benches);
