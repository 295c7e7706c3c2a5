//! Social networks belfry posts to itself: [`Mastodon`] (`mastodon://`, `mastodons://`,
//! `toot://`, `toots://`).

mod mastodon;

pub use mastodon::Mastodon;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["mastodon", "mastodons", "toot", "toots"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Mastodon::from_apprise(raw))
}
