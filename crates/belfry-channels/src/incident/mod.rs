//! Incident services, where a problem opens an alert and its recovery closes it:
//! [`Opsgenie`] (`opsgenie://`).

mod opsgenie;

pub use opsgenie::Opsgenie;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["opsgenie"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Opsgenie::from_apprise(raw))
}
