//! Social networks belfry posts to itself: [`Mastodon`] (`mastodon://`, `mastodons://`,
//! `toot://`, `toots://`) and [`Bluesky`] (`bsky://`, `bluesky://`).

mod bluesky;
mod mastodon;

pub use bluesky::Bluesky;
pub use mastodon::Mastodon;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["mastodon", "mastodons", "toot", "toots", "bsky", "bluesky"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "bsky" | "bluesky" => boxed(Bluesky::from_apprise(raw)),
        _ => boxed(Mastodon::from_apprise(raw)),
    }
}
