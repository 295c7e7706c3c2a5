//! Incident services, where a problem opens an alert and its recovery closes it:
//! [`Opsgenie`] (`opsgenie://`), [`Splunk`] On-Call (`splunk://`, `victorops://`),
//! [`Squadcast`] (`squadcast://`), [`IncidentIo`] (`incidentio://`), [`Signl4`]
//! (`signl4://`), [`PagerTree`] (`pagertree://`),
//! [`GoAlert`] (`goalert://`, `goalerts://`), [`Ilert`] (`ilert://`), [`XMatters`]
//! (`xmatters://`).

mod goalert;
mod ilert;
mod incidentio;
mod opsgenie;
mod pagertree;
mod signl4;
mod splunk;
mod squadcast;
mod xmatters;

pub use goalert::GoAlert;
pub use ilert::Ilert;
pub use incidentio::IncidentIo;
pub use opsgenie::Opsgenie;
pub use pagertree::PagerTree;
pub use signl4::Signl4;
pub use splunk::Splunk;
pub use squadcast::Squadcast;
pub use xmatters::XMatters;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &[
    "opsgenie",
    "splunk",
    "victorops",
    "squadcast",
    "incidentio",
    "signl4",
    "pagertree",
    "goalert",
    "goalerts",
    "ilert",
    "xmatters",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "splunk" | "victorops" => boxed(Splunk::from_apprise(raw)),
        "squadcast" => boxed(Squadcast::from_apprise(raw)),
        "incidentio" => boxed(IncidentIo::from_apprise(raw)),
        "signl4" => boxed(Signl4::from_apprise(raw)),
        "pagertree" => boxed(PagerTree::from_apprise(raw)),
        "goalert" | "goalerts" => boxed(GoAlert::from_apprise(raw)),
        "ilert" => boxed(Ilert::from_apprise(raw)),
        "xmatters" => boxed(XMatters::from_apprise(raw)),
        _ => boxed(Opsgenie::from_apprise(raw)),
    }
}

/// The channel for a web address of a service of this family (Splunk On-Call's REST
/// endpoint, Squadcast's webhook, an incident.io alert source, an xMatters trigger), or `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    None.or_else(|| splunk::parse_address(raw).map(boxed))
        .or_else(|| squadcast::parse_address(raw).map(boxed))
        .or_else(|| incidentio::parse_address(raw).map(boxed))
        .or_else(|| xmatters::parse_address(raw).map(boxed))
}

/// The first of `choices` equal to `v`, else the first that starts with it (case and
/// surrounding spaces ignored), as Apprise's `parse_choice` matches a value.
fn choice(v: &str, choices: &[&str]) -> Option<usize> {
    let l = v.trim().to_ascii_lowercase();
    if l.is_empty() {
        return None;
    }
    choices
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&l))
        .or_else(|| {
            choices
                .iter()
                .position(|c| c.to_ascii_lowercase().starts_with(&l))
        })
}

/// A key made of letters, digits, `_` and `-` (what these services' keys are).
fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An `http(s)://` address taken apart: its host (lowercase, without a port), its path (from
/// its `/`, as written) and its query (with its `?`, or empty). `None` for any other scheme.
fn web_address(raw: &str) -> Option<(String, &str, &str)> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let q = rest.find('?').unwrap_or(rest.len());
    let (hostpath, query) = rest.split_at(q);
    let p = hostpath.find('/').unwrap_or(hostpath.len());
    let (host, path) = hostpath.split_at(p);
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    Some((host, path, query))
}

/// The details of a notification that every incident service carries as its custom fields:
/// job, state, reason, exit code, signal, host and run id (those the notification has).
fn details(n: &belfry_core::Notification) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), serde_json::Value::String(v));
        }
    };
    put("job", Some(n.job.clone()));
    put("state", Some(n.state.name().to_owned()));
    put("reason", Some(n.reason_text.clone()));
    put("exit_code", n.exit_code.map(|c| c.to_string()));
    put("signal", n.signal.map(|s| s.to_string()));
    put("host", n.host.clone());
    put("run_id", n.run_id.clone());
    m
}
