//! Incident services, where a problem opens an alert and its recovery closes it:
//! [`Opsgenie`] (`opsgenie://`), [`Splunk`] On-Call (`splunk://`, `victorops://`).

mod opsgenie;
mod splunk;

pub use opsgenie::Opsgenie;
pub use splunk::Splunk;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["opsgenie", "splunk", "victorops"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "splunk" | "victorops" => boxed(Splunk::from_apprise(raw)),
        _ => boxed(Opsgenie::from_apprise(raw)),
    }
}

/// The channel for a web address of a service of this family (Splunk On-Call's REST
/// endpoint), or `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    splunk::parse_address(raw).map(boxed)
}
