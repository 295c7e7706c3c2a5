//! Incident services, where a problem opens an alert and its recovery closes it:
//! [`Opsgenie`] (`opsgenie://`), [`Splunk`] On-Call (`splunk://`, `victorops://`),
//! [`Squadcast`] (`squadcast://`), [`IncidentIo`] (`incidentio://`), [`Signl4`]
//! (`signl4://`), [`PagerTree`] (`pagertree://`),
//! [`GoAlert`] (`goalert://`, `goalerts://`), [`Ilert`] (`ilert://`), [`XMatters`]
//! (`xmatters://`), [`BetterStack`] (`betterstack://`, a scheme of belfry's own).

mod betterstack;
mod common;
mod goalert;
mod ilert;
mod incidentio;
mod opsgenie;
mod pagertree;
mod signl4;
mod splunk;
mod squadcast;
mod xmatters;

pub use betterstack::BetterStack;
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
    "betterstack",
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
        "betterstack" => boxed(BetterStack::from_url(raw)),
        _ => boxed(Opsgenie::from_apprise(raw)),
    }
}

/// The channel for a web address of a service of this family (Splunk On-Call's REST
/// endpoint, Squadcast's webhook, an incident.io alert source, an xMatters trigger), or
/// `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    splunk::parse_address(raw)
        .map(boxed)
        .or_else(|| squadcast::parse_address(raw).map(boxed))
        .or_else(|| incidentio::parse_address(raw).map(boxed))
        .or_else(|| xmatters::parse_address(raw).map(boxed))
}
