//! Text messages: [`Twilio`] (`twilio://`), rendered with [`belfry_core::sms`].

mod twilio;

pub use twilio::Twilio;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["twilio"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Twilio::from_apprise(raw))
}
