//! The plain forms: URLs of the most used tocsin services written the simplest documented way
//! (no query, no encoded characters), which belfry recognises without tocsin.
//!
//! tocsin checks a URL with regular expressions, each compiled on its first use in a process;
//! ten channels cost about a millisecond of compiling at every start (BENCHMARKS.md, "Ten
//! channels at start-up"). A URL in a plain form is accepted as it is read and handed to tocsin
//! on its first use instead. Every form here is one tocsin accepts and plans a request for:
//! `tests` generates URLs of each form and reads them both ways, and the corpus test runs every
//! Apprise URL through the parser, so a form that let through a URL tocsin refuses would fail
//! both. A URL that is not in a plain form is read by tocsin at once, as before
//! (docs/decisions.md, "Issue 14, item 5").

/// Whether `raw` is a plain form of the service tocsin calls `service`.
pub(super) fn is_plain(raw: &str, service: &str) -> bool {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return false;
    };
    if !rest.is_ascii() || rest.contains(['?', '%', '\\']) || rest.ends_with('/') {
        return false;
    }
    let parts: Vec<&str> = rest.split('/').collect();
    match (service, scheme) {
        ("telegram", "tgram") => telegram(&parts),
        ("discord", "discord") => discord(&parts),
        ("slack", "slack") => slack(&parts),
        ("ntfy", "ntfy" | "ntfys") => ntfy(&parts),
        ("gotify", "gotify" | "gotifys") => gotify(&parts),
        ("pushover", "pover") => pushover(&parts),
        _ => false,
    }
}

/// `s` has between `min` and `max` characters, each one `ok` takes.
fn run(s: &str, min: usize, max: usize, ok: fn(u8) -> bool) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(ok)
}

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Letters, digits, `_` and `-`.
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `tgram://BOT_ID:TOKEN/CHAT[/CHAT…]`, each chat an id (`-100123`) or a name (`@ops`).
fn telegram(parts: &[&str]) -> bool {
    let [bot, chats @ ..] = parts else {
        return false;
    };
    let Some((id, token)) = bot.split_once(':') else {
        return false;
    };
    run(id, 1, 20, digit)
        && run(token, 1, 128, word)
        && !chats.is_empty()
        && chats.iter().all(|chat| {
            let number = chat.strip_prefix('-').unwrap_or(chat);
            let name = chat.strip_prefix('@').unwrap_or(chat);
            run(number, 1, 32, digit)
                || (name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                    && run(name, 2, 64, word))
        })
}

/// `discord://WEBHOOK_ID/WEBHOOK_TOKEN`.
fn discord(parts: &[&str]) -> bool {
    matches!(parts, [id, token] if run(id, 1, 32, digit) && run(token, 1, 128, word))
}

/// `slack://TOKEN_A/TOKEN_B/TOKEN_C[/#CHANNEL…]`, a webhook's three tokens and its channels
/// (`#name`, `@user`, or an id).
fn slack(parts: &[&str]) -> bool {
    let [a, b, c, channels @ ..] = parts else {
        return false;
    };
    [a, b, c].iter().all(|t| run(t, 1, 64, alnum))
        && channels.iter().all(|ch| {
            let name = ch.strip_prefix(['#', '@']).unwrap_or(ch);
            run(name, 1, 32, word)
        })
}

/// `ntfy://TOPIC`, or `ntfy[s]://[USER:PASSWORD@]HOST[:PORT]/TOPIC[/TOPIC…]`.
fn ntfy(parts: &[&str]) -> bool {
    match parts {
        [topic] => run(topic, 1, 64, word),
        [authority, topics @ ..] => {
            !topics.is_empty()
                && topics.iter().all(|t| run(t, 1, 64, word))
                && server(authority, true)
        }
        [] => false,
    }
}

/// `gotify[s]://HOST[:PORT][/PATH…]/TOKEN`.
fn gotify(parts: &[&str]) -> bool {
    let [authority, path @ .., token] = parts else {
        return false;
    };
    server(authority, false) && run(token, 1, 64, word) && path.iter().all(|p| run(p, 1, 64, word))
}

/// `pover://USER_KEY@TOKEN[/DEVICE…]`.
fn pushover(parts: &[&str]) -> bool {
    let [keys, devices @ ..] = parts else {
        return false;
    };
    let Some((user, token)) = keys.split_once('@') else {
        return false;
    };
    run(user, 30, 30, alnum)
        && run(token, 30, 30, alnum)
        && devices.iter().all(|d| run(d, 1, 25, word))
}

/// `[USER:PASSWORD@]HOST[:PORT]`, with a user only where `login` allows one. The host is a
/// name with at least one letter (not an IP address), its labels of letters, digits and inner
/// hyphens, each two characters or more, or a single letter.
fn server(authority: &str, login: bool) -> bool {
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let Some((user, password)) = userinfo.split_once(':') else {
                return false;
            };
            if !login || !run(user, 1, 64, word) || !run(password, 1, 64, word) {
                return false;
            }
            hostport
        }
        None => authority,
    };
    let host = match hostport.split_once(':') {
        Some((host, port)) => {
            if !run(port, 1, 5, digit) || !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return false;
            }
            host
        }
        None => hostport,
    };
    host.len() <= 253
        && host.bytes().any(|b| b.is_ascii_alphabetic())
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            match b {
                [one] => one.is_ascii_alphabetic(),
                [first, .., last] => {
                    b.len() <= 63
                        && first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                }
                [] => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_common_forms_are_plain_and_others_are_not() {
        for (raw, service) in [
            ("tgram://123456789:AAHtoken/-100123", "telegram"),
            ("tgram://1:a-b_c/@ops/42", "telegram"),
            ("slack://T1ABC/B2DEF/xyz789/#ops", "slack"),
            ("slack://T1ABC/B2DEF/xyz789", "slack"),
            ("discord://123456/tokenABC", "discord"),
            ("ntfys://user:pass@ntfy.example.com/alerts", "ntfy"),
            ("ntfy://ntfy.example.com:8080/backups", "ntfy"),
            ("ntfy://alerts", "ntfy"),
            ("gotify://gotify.example.com/AbCdEf", "gotify"),
            ("gotifys://example.com/sub/path/AbCdEf", "gotify"),
            (
                "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi/phone",
                "pushover",
            ),
        ] {
            assert!(is_plain(raw, service), "{raw}");
        }
        for (raw, service) in [
            // Options, encoded characters, a trailing slash: tocsin reads them.
            ("ntfy://alerts?priority=high", "ntfy"),
            ("tgram://1:a/%40ops", "telegram"),
            ("discord://123456/tokenABC/", "discord"),
            // Shapes that need tocsin's checks or an answer first.
            ("tgram://123456789:AAHtoken", "telegram"),
            ("tgram://12x:AAHtoken/1", "telegram"),
            ("slack://xoxb-1234-5678/#ops", "slack"),
            ("discord://abc/tokenABC", "discord"),
            ("gotify://10.0.0.1/AbCdEf", "gotify"),
            ("gotify://user:pw@example.com/AbCdEf", "gotify"),
            ("gotify://ex-.com/AbCdEf", "gotify"),
            ("ntfy://host:0/topic", "ntfy"),
            ("ntfy://host:99999/topic", "ntfy"),
            ("pover://short@azGDORePK8gMaC0QOYAMyEEuzJnyUi", "pushover"),
            // A scheme that is not the service's.
            ("ntfy://alerts", "gotify"),
            ("NTFY://alerts", "ntfy"),
        ] {
            assert!(!is_plain(raw, service), "{raw}");
        }
    }

    /// Letters, digits, `_` and `-`, between `min` and `max` of them.
    fn words(min: usize, max: usize) -> proptest::string::RegexGeneratorStrategy<String> {
        proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{{min},{max}}}"))
            .expect("a valid pattern")
    }

    fn host() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z]|[A-Za-z0-9][A-Za-z0-9-]{0,10}[A-Za-z0-9]", 1..4)
            .prop_map(|labels| labels.join("."))
    }

    fn port() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), (1u16..).prop_map(|p| format!(":{p}"))]
    }

    /// URLs of every plain form, and some near them.
    fn candidates() -> impl Strategy<Value = (String, &'static str)> {
        let chat = prop_oneof![
            "-?[0-9]{1,32}",
            "@?[A-Za-z][A-Za-z0-9_-]{1,20}",
            "[0-9a-z_-]{1,5}"
        ];
        let telegram = (
            "[0-9]{1,20}",
            words(0, 40),
            proptest::collection::vec(chat, 0..3),
        )
            .prop_map(|(id, token, chats)| {
                let chats: String = chats.iter().map(|c| format!("/{c}")).collect();
                (format!("tgram://{id}:{token}{chats}"), "telegram")
            });
        let discord = ("[0-9]{1,20}|[0-9a-z]{1,4}", words(0, 70))
            .prop_map(|(id, token)| (format!("discord://{id}/{token}"), "discord"));
        let slack = (
            "[A-Za-z0-9]{1,12}",
            "[A-Za-z0-9]{1,12}",
            "[A-Za-z0-9]{1,24}",
            proptest::collection::vec("[#@]?[A-Za-z0-9_-]{1,34}", 0..3),
        )
            .prop_map(|(a, b, c, chans)| {
                let chans: String = chans.iter().map(|c| format!("/{c}")).collect();
                (format!("slack://{a}/{b}/{c}{chans}"), "slack")
            });
        let ntfy = (
            prop_oneof![Just("ntfy"), Just("ntfys")],
            prop_oneof![Just(String::new()), "[a-z0-9_-]{1,8}:[A-Za-z0-9_-]{1,8}@"],
            host(),
            port(),
            proptest::collection::vec(words(1, 66), 0..3),
        )
            .prop_map(|(scheme, login, host, port, topics)| {
                let topics: String = topics.iter().map(|t| format!("/{t}")).collect();
                (format!("{scheme}://{login}{host}{port}{topics}"), "ntfy")
            });
        let gotify = (
            prop_oneof![Just("gotify"), Just("gotifys")],
            host(),
            port(),
            proptest::collection::vec(words(1, 10), 0..3),
            words(1, 40),
        )
            .prop_map(|(scheme, host, port, path, token)| {
                let path: String = path.iter().map(|p| format!("/{p}")).collect();
                (format!("{scheme}://{host}{port}{path}/{token}"), "gotify")
            });
        let key = "[A-Za-z0-9]{30}|[A-Za-z0-9]{29,31}";
        let pushover = (key, key, proptest::collection::vec(words(1, 27), 0..3)).prop_map(
            |(user, token, devices)| {
                let devices: String = devices.iter().map(|d| format!("/{d}")).collect();
                (format!("pover://{user}@{token}{devices}"), "pushover")
            },
        );
        prop_oneof![telegram, discord, slack, ntfy, gotify, pushover]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// A plain URL is one tocsin reads and plans a request for, with the same options
        /// belfry takes from it when it reads it plainly.
        #[test]
        fn every_plain_url_is_one_tocsin_reads((raw, service) in candidates()) {
            if is_plain(&raw, service) {
                let read = tocsin::Service::parse(&raw);
                prop_assert!(read.is_ok(), "{raw}: tocsin refuses it: {:?}", read.err());
                let read = read.unwrap();
                prop_assert_eq!(read.name(), service);
                prop_assert!(read.options().verify_tls());
                let full = super::super::read_now(&raw);
                prop_assert!(full.is_ok(), "{raw}: refused when read whole: {:?}", full.err());
            }
        }
    }
}
