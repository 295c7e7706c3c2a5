//! Push services belfry speaks itself: [`Pushsafer`] (`psafer://`, `psafers://`) and [`Join`]
//! (`join://`).

mod join;
mod pushsafer;

pub use join::Join;
pub use pushsafer::Pushsafer;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["psafer", "psafers", "join"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "join" => boxed(Join::from_apprise(raw)),
        _ => boxed(Pushsafer::from_apprise(raw)),
    }
}
