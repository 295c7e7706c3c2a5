//! Relays: other notification servers that fan a message out themselves. [`AppriseApi`]
//! (`apprise://`, `apprises://`) hands it to an Apprise API server.

mod apprise_api;

pub use apprise_api::AppriseApi;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["apprise", "apprises"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(AppriseApi::from_apprise(raw))
}

/// The channel for an Apprise API server's own address (`…/notify/KEY`), or `None` when `raw`
/// is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    apprise_api::parse_address(raw).map(boxed)
}
