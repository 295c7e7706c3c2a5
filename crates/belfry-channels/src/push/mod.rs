//! Push services belfry speaks itself: [`Pushsafer`] (`psafer://`, `psafers://`).

mod pushsafer;

pub use pushsafer::Pushsafer;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["psafer", "psafers"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Pushsafer::from_apprise(raw))
}
