//! The schemes of belfry's own channels (the services that are not plain HTTP requests
//! planned by a library, or that belfry renders itself): e-mail, SMS, Opsgenie, commands,
//! files and the desktop.

use crate::Channel;
use crate::command::Command;
use crate::file::File;
use crate::opsgenie::Opsgenie;
use crate::sendgrid::SendGrid;
use crate::smtp::Smtp;
use crate::twilio::Twilio;
use crate::url_parse::UrlError;

/// belfry's own schemes, for error messages.
pub(crate) const SCHEMES: &[&str] = &[
    "mailto", "mailtos", "sendgrid", "twilio", "opsgenie", "cmd", "file", "desktop",
];

fn boxed<C: Channel + 'static>(r: Result<C, UrlError>) -> Result<Box<dyn Channel>, UrlError> {
    r.map(|c| Box::new(c) as Box<dyn Channel>)
}

/// The channel for `raw` if `scheme` (lowercase) is one of belfry's own, else `None`.
pub(crate) fn parse(scheme: &str, raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    Some(match scheme {
        "mailto" | "mailtos" => boxed(Smtp::from_apprise(raw)),
        "sendgrid" => boxed(SendGrid::from_apprise(raw)),
        "twilio" => boxed(Twilio::from_apprise(raw)),
        "opsgenie" => boxed(Opsgenie::from_apprise(raw)),
        "cmd" => boxed(Command::from_url(raw)),
        "file" => boxed(File::from_url(raw)),
        s if crate::desktop::SCHEMES.contains(&s) => crate::desktop::parse(raw),
        _ => return None,
    })
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
        "sendgrid" => boxed(SendGrid::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "twilio" => boxed(Twilio::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        "opsgenie" => boxed(Opsgenie::from_apprise(raw).map(|mut c| {
            c.base = base;
            c
        })),
        other => Err(UrlError::new(
            raw,
            format!("{other}:// has no API address to replace"),
        )),
    }
}
