//! Amazon Web Services: [`Sns`] (`sns://`) and [`Ses`] (`ses://`), their requests signed with
//! AWS Signature Version 4 (`sigv4.rs`, written from AWS's documented algorithm and checked
//! against its examples) and sent as the query APIs take them (`query.rs`).

mod query;
mod ses;
mod sigv4;
mod sns;

pub use ses::Ses;
pub use sns::Sns;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["sns", "ses"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "ses" => boxed(Ses::from_apprise(raw)),
        _ => boxed(Sns::from_apprise(raw)),
    }
}
