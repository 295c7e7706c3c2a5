//! belfry's JSON webhook (`json://`, `jsons://`, and plain `http://` / `https://` addresses
//! that belong to no known service), which posts the notification JSON documented in
//! `docs/webhook.md`.

mod json;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family (plain web addresses come through [`parse_address`]).
pub(crate) const SCHEMES: &[&str] = &["json", "jsons"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(json::JsonWebhook::from_apprise(raw))
}

/// The webhook for a plain `http://` or `https://` address.
pub(crate) fn parse_address(raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(json::JsonWebhook::from_address(raw))
}
