//! From a channel URL's scheme to the family that parses it: the one place that knows every
//! family. A new channel is a folder (or a file in its family's folder) and a line in
//! [`FAMILIES`].

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;
use crate::{apprise, email, hcping, incident, local, sms, webhook};

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
            None => webhook::parse_address(raw),
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

/// Parses `raw` like [`crate::parse`], then points the channel's API at `base` (scheme, host
/// and port, e.g. `http://127.0.0.1:8080`) instead of the service's own address.
///
/// For tests that send to a loopback receiver standing in for SendGrid, Twilio or Opsgenie.
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
