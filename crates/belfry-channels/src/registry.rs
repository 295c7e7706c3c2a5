//! From a channel URL's scheme to the family that parses it: the one place that knows every
//! family. A new channel is a folder (or a file in its family's folder) and a line in
//! [`FAMILIES`].

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;
use crate::{
    apprise, aws, chat, email, foreign, hcping, incident, irc, local, mqtt, push, relay, sms,
    social, syslog, webhook, xmpp,
};

/// What a family's parser is handed (the lowercase scheme, then the whole URL) and returns.
type ParseFn = fn(&str, &str) -> Result<Box<dyn Channel>, UrlError>;

/// A family of channels: the schemes it reads (lowercase), and its parser, which is called only
/// with one of them.
struct Family {
    schemes: &'static [&'static str],
    parse: ParseFn,
}

/// belfry's own families, asked before the services that tocsin plans for.
const FAMILIES: &[Family] = &[
    Family {
        schemes: local::SCHEMES,
        parse: local::parse,
    },
    Family {
        schemes: webhook::SCHEMES,
        parse: webhook::parse,
    },
    Family {
        schemes: email::SCHEMES,
        parse: email::parse,
    },
    Family {
        schemes: sms::SCHEMES,
        parse: sms::parse,
    },
    Family {
        schemes: hcping::SCHEMES,
        parse: hcping::parse,
    },
    Family {
        schemes: incident::SCHEMES,
        parse: incident::parse,
    },
    Family {
        schemes: chat::SCHEMES,
        parse: chat::parse,
    },
    Family {
        schemes: relay::SCHEMES,
        parse: relay::parse,
    },
    Family {
        schemes: syslog::SCHEMES,
        parse: syslog::parse,
    },
    Family {
        schemes: mqtt::SCHEMES,
        parse: mqtt::parse,
    },
    Family {
        schemes: irc::SCHEMES,
        parse: irc::parse,
    },
    Family {
        schemes: xmpp::SCHEMES,
        parse: xmpp::parse,
    },
    Family {
        schemes: push::SCHEMES,
        parse: push::parse,
    },
    Family {
        schemes: aws::SCHEMES,
        parse: aws::parse,
    },
    Family {
        schemes: social::SCHEMES,
        parse: social::parse,
    },
];

/// Parses a channel URL into a channel.
pub fn parse(raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    let raw = raw.trim();
    let Some((scheme, _)) = raw.split_once("://") else {
        if raw == "console" || raw == "console:" {
            return local::parse("console", raw);
        }
        return Err(UrlError::new(
            raw,
            "it has no scheme (write it as scheme://…, e.g. json://host/path)",
        ));
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    if let Some(family) = FAMILIES
        .iter()
        .find(|f| f.schemes.contains(&scheme_lc.as_str()))
    {
        return (family.parse)(&scheme_lc, raw);
    }
    match scheme_lc.as_str() {
        // A service's own web address (a Slack or Discord webhook, a Teams workflow), else
        // belfry's JSON posted to that address.
        "http" | "https" => match apprise::parse_address(raw) {
            Some(service) => service,
            None => match incident::parse_address(raw)
                .or_else(|| chat::parse_address(raw))
                .or_else(|| relay::parse_address(raw))
            {
                Some(service) => service,
                None => match foreign::refuse(raw) {
                    Some(refusal) => Err(refusal),
                    None => webhook::parse_address(raw),
                },
            },
        },
        // Apprise still reads these, but Microsoft has retired the Office 365 connectors they
        // post to: say what to use instead rather than only "unsupported".
        "msteams" => Err(UrlError::new(
            raw,
            "msteams:// posts to an Office 365 connector, which Microsoft has retired; create a \
             Teams workflow (\"Post to a channel when a webhook request is received\") and use \
             its address (https://….logic.azure.com/…) or workflows://…",
        )),
        other => apprise::parse(raw, other).unwrap_or_else(|| {
            let own: Vec<&str> = FAMILIES
                .iter()
                .flat_map(|f| f.schemes.iter().copied())
                .collect();
            Err(UrlError::new(
                raw,
                format!(
                    "unsupported scheme {other:?}; belfry knows: {}, http, https, {}",
                    own.join(", "),
                    apprise::SCHEMES.join(", ")
                ),
            ))
        }),
    }
}

/// A scheme belfry reads, for `belfry channels --schemes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeInfo {
    /// The scheme, lowercase, without `://`.
    pub scheme: &'static str,
    /// The service or kind of channel, for people.
    pub service: &'static str,
    /// Whether the scheme is Apprise's (read with Apprise's syntax), rather than belfry's own.
    pub from_apprise: bool,
}

const fn own(scheme: &'static str, service: &'static str, from_apprise: bool) -> SchemeInfo {
    SchemeInfo {
        scheme,
        service,
        from_apprise,
    }
}

/// The schemes of belfry's own families, with their service. A test checks that it names
/// exactly the schemes of [`FAMILIES`].
const OWN: &[SchemeInfo] = &[
    own(
        "console",
        "standard error, one line per notification",
        false,
    ),
    own("stderr", "standard error, one line per notification", false),
    own(
        "cmd",
        "a program run with the notification as arguments",
        false,
    ),
    own("file", "a file of JSON lines", false),
    own("desktop", "a desktop notification (D-Bus)", false),
    own("dbus", "a desktop notification (D-Bus)", true),
    own("kde", "a desktop notification (D-Bus)", true),
    own("qt", "a desktop notification (D-Bus)", true),
    own("glib", "a desktop notification (D-Bus)", true),
    own("gnome", "a desktop notification (D-Bus)", true),
    own("json", "a JSON webhook (belfry's schema)", true),
    own("jsons", "a JSON webhook (belfry's schema)", true),
    own("mailto", "e-mail over SMTP", true),
    own("mailtos", "e-mail over SMTP", true),
    own("sendgrid", "SendGrid (e-mail)", true),
    own("mailgun", "Mailgun (e-mail)", true),
    own("postmark", "Postmark (e-mail)", true),
    own("sparkpost", "SparkPost (e-mail)", true),
    own("resend", "Resend (e-mail)", true),
    own("brevo", "Brevo (e-mail)", true),
    own("azure", "Microsoft 365 mail (Graph)", true),
    own("o365", "Microsoft 365 mail (Graph)", true),
    own("twilio", "Twilio (SMS, WhatsApp, calls)", true),
    own("vonage", "Vonage (SMS)", true),
    own("nexmo", "Vonage (SMS)", true),
    own("msgbird", "MessageBird (SMS)", true),
    own("plivo", "Plivo (SMS)", true),
    own("clicksend", "ClickSend (SMS)", true),
    own("sinch", "Sinch (SMS)", true),
    own("telnyx", "Telnyx (SMS)", false),
    own("opsgenie", "Opsgenie", true),
    own(
        "hcping",
        "healthchecks-style pings (what belfry run uses for BELFRY_PING_URL)",
        false,
    ),
    own(
        "hcpings",
        "healthchecks-style pings (what belfry run uses for BELFRY_PING_URL)",
        false,
    ),
    own("splunk", "Splunk On-Call (VictorOps)", true),
    own("victorops", "Splunk On-Call (VictorOps)", true),
    own("squadcast", "Squadcast", true),
    own("incidentio", "incident.io", true),
    own("signl4", "SIGNL4", true),
    own("pagertree", "PagerTree", true),
    own("goalert", "GoAlert", true),
    own("goalerts", "GoAlert", true),
    own("ilert", "ilert", true),
    own("xmatters", "xMatters", true),
    own("betterstack", "Better Stack (Uptime incidents)", false),
    own("matrix", "Matrix", true),
    own("matrixs", "Matrix", true),
    own("wxteams", "Webex (Cisco Webex Teams)", true),
    own("webex", "Webex (Cisco Webex Teams)", true),
    own("nctalk", "Nextcloud Talk", true),
    own("nctalks", "Nextcloud Talk", true),
    own("line", "LINE (Messaging API push)", true),
    own("whatsapp", "WhatsApp (Meta's Cloud API)", true),
    own("sns", "Amazon SNS (SMS, topics)", true),
    own("ses", "Amazon SES (e-mail)", true),
    own("apprise", "Apprise API (a relay)", true),
    own("apprises", "Apprise API (a relay)", true),
    own("rsyslog", "a remote syslog server (UDP)", true),
    own("syslog", "the local syslog (/dev/log)", true),
    own("mqtt", "an MQTT broker", true),
    own("mqtts", "an MQTT broker over TLS", true),
    own("irc", "IRC (channels and users)", true),
    own("ircs", "IRC over TLS (channels and users)", true),
    own("xmpp", "XMPP (Jabber IDs and group chats)", true),
    own("xmpps", "XMPP over TLS (Jabber IDs and group chats)", true),
    own("psafer", "Pushsafer", true),
    own("psafers", "Pushsafer", true),
    own("join", "Join (joaoapps)", true),
    own("mastodon", "Mastodon", true),
    own("mastodons", "Mastodon", true),
    own("toot", "Mastodon (public by default)", true),
    own("toots", "Mastodon (public by default)", true),
    own("bsky", "Bluesky", true),
    own("bluesky", "Bluesky", true),
];

/// Every scheme belfry reads, in order of scheme: belfry's own and the services tocsin plans
/// for; `http` and `https` (a service's own address, else a JSON webhook) too.
pub fn schemes() -> Vec<SchemeInfo> {
    let mut all: Vec<SchemeInfo> = OWN.to_vec();
    all.push(own(
        "http",
        "a JSON webhook, or a service's own address",
        false,
    ));
    all.push(own(
        "https",
        "a JSON webhook, or a service's own address",
        false,
    ));
    for p in apprise::profiles() {
        for scheme in p.schemes {
            all.push(own(scheme, p.label, true));
        }
    }
    all.sort_by_key(|s| s.scheme);
    all
}

/// Parses `raw` like [`crate::parse`], then points the channel's API at `base` (scheme, host
/// and port, e.g. `http://127.0.0.1:8080`) instead of the service's own address.
///
/// For tests that send to a loopback receiver standing in for SendGrid, Twilio or an incident service (Opsgenie, Splunk On-Call,
/// Squadcast, incident.io, SIGNL4, PagerTree, ilert, xMatters).
/// No configuration reaches it: a channel URL cannot change where its service lives.
pub fn parse_with_api_base(raw: &str, base: &str) -> Result<Box<dyn Channel>, UrlError> {
    let base = base.trim_end_matches('/').to_owned();
    let scheme = raw
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "sendgrid" => boxed(email::SendGrid::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "twilio" => boxed(sms::Twilio::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "opsgenie" => boxed(incident::Opsgenie::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "mailgun" | "postmark" | "sparkpost" | "resend" | "brevo" => {
            boxed(email::MailApi::from_apprise(raw).map(|mut c| {
                c.base = base;
                c
            }))
        }
        "splunk" | "victorops" => boxed(incident::Splunk::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "squadcast" => boxed(incident::Squadcast::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "incidentio" => boxed(incident::IncidentIo::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "signl4" => boxed(incident::Signl4::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "pagertree" => boxed(incident::PagerTree::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "ilert" => boxed(incident::Ilert::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "xmatters" => boxed(incident::XMatters::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        other => Err(UrlError::new(
            raw,
            format!("{other}:// has no API address to replace"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_list_names_every_scheme_once_and_each_parses_as_its_family() {
        let mut own: Vec<&str> = OWN.iter().map(|s| s.scheme).collect();
        let mut families: Vec<&str> = FAMILIES.iter().flat_map(|f| f.schemes).copied().collect();
        own.sort_unstable();
        families.sort_unstable();
        assert_eq!(own, families);
        let all = schemes();
        let mut names: Vec<&str> = all.iter().map(|s| s.scheme).collect();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a scheme listed twice");
        for s in apprise::SCHEMES {
            assert!(names.contains(s), "{s} is read but not listed");
        }
        // Every listed scheme reaches a parser: none is "unsupported".
        for s in &all {
            if let Err(e) = parse(&format!("{}://x", s.scheme)) {
                assert!(
                    !e.to_string().contains("unsupported scheme"),
                    "{}: {e}",
                    s.scheme
                );
            }
        }
    }

    #[test]
    fn no_scheme_belongs_to_two_families() {
        let mut seen = std::collections::HashSet::new();
        for s in FAMILIES.iter().flat_map(|f| f.schemes) {
            assert!(seen.insert(*s), "{s} is claimed twice");
            assert!(!apprise::SCHEMES.contains(s), "{s} is also tocsin's");
        }
    }

    #[test]
    fn a_retired_teams_connector_url_says_what_to_use_instead() {
        let e = parse("msteams://outlook.office.com/webhook/abc@def/IncomingWebhook/ghi/jkl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retired") && e.contains("workflows://"), "{e}");
        assert!(!e.contains("IncomingWebhook/ghi"), "redacted: {e}");
    }

    #[test]
    fn unknown_schemes_are_named_with_the_known_ones() {
        let e = parse("slck://a/b/c").unwrap_err().to_string();
        assert!(e.contains("\"slck\"") && e.contains("slack"), "{e}");
        let e = parse("hooks.example.com/x").unwrap_err().to_string();
        assert!(e.contains("no scheme"), "{e}");
    }
}
