//! E-mail: over SMTP ([`Smtp`], `mailto://`, `mailtos://`) and through SendGrid's API
//! ([`SendGrid`], `sendgrid://`). `mail.rs` holds what both share: addresses, and the message
//! rendered with [`belfry_core::email`].

mod mail;
mod sendgrid;
mod smtp;

pub use sendgrid::SendGrid;
pub use smtp::{Security, Smtp};

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["mailto", "mailtos", "sendgrid"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "sendgrid" => boxed(SendGrid::from_apprise(raw)),
        _ => boxed(Smtp::from_apprise(raw)),
    }
}
