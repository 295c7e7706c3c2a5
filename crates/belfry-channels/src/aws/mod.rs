//! Amazon Web Services: [`Sns`] (`sns://`), its requests signed with AWS Signature Version 4
//! (`sigv4.rs`, written from AWS's documented algorithm and checked against its examples).

mod sigv4;
mod sns;

pub use sns::Sns;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["sns"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Sns::from_apprise(raw))
}
