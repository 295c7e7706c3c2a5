//! The URL readers of the services added for issue 14, fed URLs built from their own syntax's
//! pieces: none panics, every refusal names what is wrong, and every accepted URL plans its
//! requests (or, for a non-HTTP channel, describes itself) without panicking.

use belfry_channels::{Message, parse};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};

use crate::problem;

const SCHEMES: &[&str] = &[
    "matrix",
    "matrixs",
    "wxteams",
    "webex",
    "nctalk",
    "nctalks",
    "line",
    "apprise",
    "apprises",
    "vonage",
    "nexmo",
    "msgbird",
    "plivo",
    "clicksend",
    "sinch",
    "telnyx",
    "betterstack",
    "rsyslog",
    "syslog",
    "mqtt",
    "mqtts",
    "psafer",
    "psafers",
    "whatsapp",
    "sns",
    "join",
];

/// Pieces Apprise URLs are made of, the awkward ones included.
const PIECES: &[&str] = &[
    "a",
    "Z9",
    "tok3n",
    "@",
    ":",
    "/",
    "?",
    "&",
    "=",
    "#",
    "!",
    "%",
    "%2F",
    "%23",
    "%40",
    "+",
    "+1555",
    "15551234567",
    ",",
    " ",
    ".",
    "..",
    "-",
    "_",
    "é",
    "🔴",
    "[::1]",
    ":0",
    ":99999",
    ":1883",
    "?to=",
    "?mode=",
    "t2bot",
    "bot",
    "off",
    "hookshot",
    "?qos=",
    "2",
    "?token=",
    "?format=",
    "markdown",
    "?version=",
    "5",
    "?region=",
    "eu",
    "?priority=",
    "high",
    "=",
    "abcdefghijklmnopqrstuvwxy",
    "\u{0}",
    "\\",
];

#[test]
fn new_service_urls_never_panic_over_4000_inputs() {
    let url = (
        proptest::sample::select(SCHEMES),
        proptest::collection::vec(proptest::sample::select(PIECES), 0..14),
    )
        .prop_map(|(s, p)| format!("{s}://{}", p.concat()));
    let n = problem();
    TestRunner::new(Cases::with_cases(4_000))
        .run(&url, |raw| {
            match parse(&raw) {
                Ok(ch) => {
                    let _ = ch.describe();
                    let _ = ch.plan(&Message {
                        notification: &n,
                        idempotency_key: "n-1:fuzz",
                    });
                }
                Err(e) => prop_assert!(!e.why().is_empty(), "{raw}"),
            }
            Ok(())
        })
        .unwrap();
}

/// The pieces of the service addresses read as those services (an Apprise API server's, a
/// t2bot.io hook's, a Webex webhook's), and awkward text around them.
const ADDRESS_PIECES: &[&str] = &[
    "relay.example.org",
    "webhooks.t2bot.io",
    "webexapis.com",
    "api.ciscospark.com",
    "/notify/",
    "/api/v1/matrix/hook/",
    "/v1/webhooks/incoming/",
    "/",
    "abc",
    "é",
    "éé",
    "?",
    "&",
    "=",
    ":8000",
    "%",
    "notify",
    "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0abcd",
];

#[test]
fn service_addresses_never_panic_over_4000_inputs() {
    let url = (
        proptest::sample::select(&["https", "http"][..]),
        proptest::collection::vec(proptest::sample::select(ADDRESS_PIECES), 0..10),
    )
        .prop_map(|(s, p)| format!("{s}://{}", p.concat()));
    let n = problem();
    TestRunner::new(Cases::with_cases(4_000))
        .run(&url, |raw| {
            if let Ok(ch) = parse(&raw) {
                let _ = ch.describe();
                let _ = ch.plan(&Message {
                    notification: &n,
                    idempotency_key: "n-1:fuzz",
                });
            }
            Ok(())
        })
        .unwrap();
}
