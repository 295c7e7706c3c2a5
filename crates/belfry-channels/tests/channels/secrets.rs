//! Planted fake secrets never appear in descriptions, `Debug`, URL errors or failure reasons,
//! not even when a service quotes the request back in its error.

use belfry_channels::{Context, Outcome, parse};
use belfry_testkit::{Receiver, Reply, reveals};

use super::{problem, send_with};

const MARK: &str = "FAKESECRET";

/// One URL per service, every secret part planted; `{addr}` is the receiver, and the origin
/// (for services with a fixed address) is sent to it.
fn urls() -> Vec<(String, Option<&'static str>)> {
    let prowl = format!("{MARK}{}", "0".repeat(40 - MARK.len()));
    let zulip = format!("{MARK}{}", "1".repeat(32 - MARK.len()));
    vec![
        (
            "tgram://123456789:FAKESECRETtok/-100123".into(),
            Some("https://api.telegram.org"),
        ),
        (
            "discord://99FAKESECRET/FAKESECRETtok".into(),
            Some("https://discord.com"),
        ),
        (
            "https://discord.com/api/webhooks/998877/FAKESECRETtok".into(),
            Some("https://discord.com"),
        ),
        (
            "slack://FAKESECRETa/FAKESECRETb/FAKESECRETc/#ops".into(),
            Some("https://hooks.slack.com"),
        ),
        (
            "slack://xoxb-FAKESECRET-1/#ops".into(),
            Some("https://slack.com"),
        ),
        (
            "https://hooks.slack.com/services/FAKESECRETA/FAKESECRETB/FAKESECRETC".into(),
            Some("https://hooks.slack.com"),
        ),
        ("mmost://{addr}/FAKESECREThook".into(), None),
        (
            "rocket://FAKESECRETid/FAKESECRETtok@{addr}/#ops".into(),
            None,
        ),
        ("rocket://alice:FAKESECRETpw@{addr}/#ops".into(), None),
        (
            "workflows://flows.example.com/FAKESECRETwf/FAKESECRETsig".into(),
            Some("https://flows.example.com"),
        ),
        (
            "gchat://FAKESECRETws/FAKESECRETkey/FAKESECRETtok".into(),
            Some("https://chat.googleapis.com"),
        ),
        (
            format!("zulip://bot@org/{zulip}"),
            Some("https://org.zulipchat.com"),
        ),
        ("ntfy://FAKESECRETtopic".into(), Some("https://ntfy.sh")),
        (
            "ntfy://alice:FAKESECRETpw@{addr}/topic?token=FAKESECRETq".into(),
            None,
        ),
        ("gotify://{addr}/FAKESECRETapp".into(), None),
        (
            "pover://FAKESECRETuser@FAKESECRETapp".into(),
            Some("https://api.pushover.net"),
        ),
        (
            "pbul://FAKESECRETtoken".into(),
            Some("https://api.pushbullet.com"),
        ),
        (format!("prowl://{prowl}"), Some("https://api.prowlapp.com")),
        (
            "pagerduty://FAKESECRETint@FAKESECRETapi".into(),
            Some("https://events.pagerduty.com"),
        ),
        (
            "signal://alice:FAKESECRETpw@{addr}/+12025550123".into(),
            None,
        ),
        (
            "hassio://{addr}/FAKESECRET.FAKESECRET.FAKESECRET".into(),
            None,
        ),
        (
            "ifttt://FAKESECRETid@event".into(),
            Some("https://maker.ifttt.com"),
        ),
        ("bark://{addr}/FAKESECRETdev".into(), None),
        (
            "xml://alice:FAKESECRETpw@{addr}/hook?-token=FAKESECRETq".into(),
            None,
        ),
        ("form://{addr}/hook/FAKESECRETpath".into(), None),
        (
            "json://alice:FAKESECRETpw@{addr}/FAKESECRETpath".into(),
            None,
        ),
        (
            "matrix://FAKESECRETtok@{addr}/%23ops:example.org".into(),
            None,
        ),
        (
            "matrix://alice:FAKESECRETpw@{addr}/!room:example.org".into(),
            None,
        ),
        (
            format!("matrix://{MARK}{}", "a".repeat(64 - MARK.len())),
            Some("https://webhooks.t2bot.io"),
        ),
        (
            "apprise://ops:FAKESECRETpw@{addr}/FAKESECRETkey".into(),
            None,
        ),
        (
            format!("wxteams://{MARK}{}", "a".repeat(90 - MARK.len())),
            Some("https://webexapis.com"),
        ),
        (
            "webex://FAKESECRETbot/room1".into(),
            Some("https://webexapis.com"),
        ),
        (
            "vonage://key123:FAKESECRET9@15551234567".into(),
            Some("https://rest.nexmo.com"),
        ),
        (
            format!(
                "msgbird://{MARK}{}/15551234567",
                "b".repeat(25 - MARK.len())
            ),
            Some("https://rest.messagebird.com"),
        ),
        (
            "plivo://MAXXXXXXXXXXXXXXXXXX@FAKESECRETNGFhYjk3NzAzMmQwNDk5Nz/15551234567".into(),
            Some("https://api.plivo.com"),
        ),
        (
            "clicksend://ada:FAKESECRETkey@15551234567".into(),
            Some("https://rest.clicksend.com"),
        ),
        (
            "telnyx://KEYFAKESECRET_01@15551234567".into(),
            Some("https://api.telnyx.com"),
        ),
        (
            "betterstack://FAKESECRETtok_01?requester=ops@example.org".into(),
            Some("https://uptime.betterstack.com"),
        ),
        ("nctalk://ada:FAKESECRETpw@{addr}/room1".into(), None),
        (
            "line://FAKESECRETtok/part=/Uuser1".into(),
            Some("https://api.line.me"),
        ),
        (
            "psafers://FAKESECRETkey/dev1".into(),
            Some("https://www.pushsafer.com"),
        ),
        (
            "whatsapp://FAKESECRETtok@1065403/15551234567".into(),
            Some("https://graph.facebook.com"),
        ),
        (
            "sns://AKIDEXAMPLE/FAKESECRET/K7MDENG/us-east-1/15551234567".into(),
            Some("https://sns.us-east-1.amazonaws.com"),
        ),
        (
            "ses://alerts:FAKESECRETtok@example.org/AKIDEXAMPLE/FAKESECRET/K7MDENG/us-east-1/ops@example.org".into(),
            Some("https://email.us-east-1.amazonaws.com"),
        ),
        (
            format!("join://{MARK}{}/chrome", "j".repeat(32 - MARK.len())),
            Some("https://joinjoaomgcd.appspot.com"),
        ),
        ("mastodon://FAKESECRETtok@{addr}/@ada".into(), None),
        (
            "azure://alerts@contoso.com/tenant1/app-id/FAKESECRET/ops@contoso.com".into(),
            Some("https://login.microsoftonline.com"),
        ),
        (
            "bsky://alice@FAKESECRET-pass".into(),
            Some("https://public.api.bsky.app"),
        ),
    ]
}

/// How error pages quote the request back: the credentials belfry sent (`Basic base64(…)`,
/// `Bearer …`), every header, the address and the body, as they are, percent-encoded,
/// JSON-escaped and HTML-escaped. Each is first in the answer, as a reason keeps only the
/// start of it.
const ECHOES: &[&str] = &[
    "auth: {header:authorization}",
    "auth: {header:authorization|percent}",
    "{\"auth\":\"{header:authorization|json}\"}",
    "{headers}",
    "{headers|json}",
    "{target}",
    "{target|percent}",
    "{\"url\":\"{target|json}\"}",
    "{body}",
    "{\"got\":\"{body|json}\"}",
    "{body|percent}",
    "<pre>{header:authorization|html} {target|html}</pre>",
];

#[test]
fn descriptions_debug_and_failure_reasons_hold_no_secret() {
    for (template, origin) in urls() {
        // The service answers with an error that quotes the whole URL back, then with one
        // that quotes the request back in each way error pages do.
        let bad_url = format!("bad: {template}");
        for (i, echo) in std::iter::once("")
            .chain(ECHOES.iter().copied())
            .enumerate()
        {
            let reply = match i {
                0 => Reply::status(400).body(&bad_url),
                _ => Reply::status(400).echo(echo),
            };
            let rx = Receiver::start_with_fallback(vec![], reply);
            let url = template.replace("{addr}", &rx.addr().to_string());
            let ch = parse(&url).unwrap_or_else(|e| panic!("{template}: {e}"));
            let describe = ch.describe();
            assert!(!describe.contains(MARK), "{template}: {describe}");
            let debug = format!("{ch:?}");
            assert!(!debug.contains(MARK), "{template}: {debug}");

            let cx = match origin {
                Some(o) => {
                    Context::new(std::time::Duration::from_secs(5)).with_origin(o, &rx.url(""))
                }
                None => Context::new(std::time::Duration::from_secs(5)),
            };
            let o = send_with(ch.as_ref(), &problem(), cx);
            let Outcome::Permanent { reason } = &o else {
                panic!("{template}: expected a permanent failure, got {o:?}")
            };
            assert!(
                !reveals(reason, MARK),
                "{template}, echo {echo:?}: {reason}"
            );
            assert!(!rx.requests().is_empty(), "{template}: nothing was sent");
        }

        // And when the service cannot be reached at all.
        let closed = format!("http://127.0.0.1:{}", belfry_testkit::closed_port());
        let cx = match origin {
            Some(o) => Context::new(std::time::Duration::from_secs(5)).with_origin(o, &closed),
            None => Context::new(std::time::Duration::from_secs(5)),
        };
        let broken = match origin {
            Some(_) => template.clone(),
            None => template.replace("{addr}", closed.trim_start_matches("http://")),
        };
        let ch = parse(&broken).unwrap();
        let o = send_with(ch.as_ref(), &problem(), cx);
        assert!(matches!(o, Outcome::Retry { .. }), "{template}: {o:?}");
        assert!(!reveals(o.reason().unwrap(), MARK), "{template}: {o:?}");
    }
}

#[test]
fn belfrys_own_services_hide_their_keys_however_the_request_is_quoted_back() {
    // Keys in the forms the services accept; each is checked for in every encoding.
    let sid = "AC0123456789abcdef0123456789abcdef";
    let token = "f00dfeedf00dfeedf00dfeedf00dfeed";
    for (url, secrets) in [
        (
            format!("twilio://{sid}:{token}@+15551234567/+15557654321"),
            vec![token],
        ),
        (
            "sendgrid://SG.FAKESECRET-key_1:alerts@example.com/ops@example.org".to_owned(),
            vec![MARK],
        ),
        (
            "opsgenie://0b1c2d3e-FAKESECRET-key/@ada".to_owned(),
            vec![MARK],
        ),
    ] {
        for echo in ECHOES {
            let rx = Receiver::start_with_fallback(vec![], Reply::status(400).echo(echo));
            let ch = belfry_channels::parse_with_api_base(&url, &rx.url("")).unwrap();
            let cx = Context::new(std::time::Duration::from_secs(5));
            let o = send_with(ch.as_ref(), &problem(), cx);
            let reason = o.reason().unwrap_or_else(|| panic!("{url}: {o:?}"));
            for s in &secrets {
                assert!(!reveals(reason, s), "{url}, echo {echo:?}: {reason}");
            }
        }
    }
}

#[test]
fn url_errors_name_the_url_redacted_and_what_is_wrong() {
    for (bad, says) in [
        (
            "tgram://FAKESECRETtok/42",
            "the bot token is missing or malformed: tgram://BOT_TOKEN/CHAT_ID",
        ),
        (
            "discord://FAKESECRETid",
            "expected discord://WEBHOOK_ID/WEBHOOK_TOKEN",
        ),
        (
            "slack://FAKESECRETonly",
            "a Slack webhook needs three tokens (slack://TokenA/TokenB/TokenC",
        ),
        (
            "pagerduty://FAKESECRETint@FAKESECRETapi?region=FAKESECRETregion",
            "the value of option \"region\"",
        ),
        ("prowl://FAKESECRETshort", "keys of 40 letters and digits"),
        ("ifttt://FAKESECRETid", "expected ifttt://WEBHOOK_ID@EVENT"),
        ("ntfys://alice:FAKESECRETpw@", "nowhere to send to"),
        (
            "https://hooks.slack.com/services/FAKESECRET",
            "looks like a Slack address",
        ),
        ("gotify://bad host/FAKESECRETapp", "expected gotify://HOST"),
        ("slck://FAKESECRET/x", "unsupported scheme \"slck\""),
        (
            "mailto://u:FAKESECRETpw@example.com?tz=Mars/Olympus",
            "tz=: time zone \"Mars/Olympus\" is not an IANA time zone name",
        ),
        (
            "opsgenie://FAKESECRETkey?tz=nowhere",
            "tz=: time zone \"nowhere\"",
        ),
    ] {
        let e = parse(bad).expect_err(bad);
        let text = e.to_string();
        assert!(text.contains(says), "{bad}: {text}");
        assert!(text.starts_with("invalid channel URL "), "{text}");
        assert!(!text.contains(MARK), "{bad}: {text}");
        assert!(!format!("{e:?}").contains(MARK), "{bad}: {e:?}");
        assert_eq!(e.url(), belfry_channels::redact_url(bad));
    }
}
