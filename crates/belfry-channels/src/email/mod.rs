//! E-mail: over SMTP ([`Smtp`], `mailto://`, `mailtos://`), through SendGrid's API
//! ([`SendGrid`], `sendgrid://`), and through Mailgun's, Postmark's, SparkPost's, Resend's and
//! Brevo's ([`MailApi`]). `mail.rs` holds what both share: addresses, and the message
//! rendered with [`belfry_core::email`].

mod api;
mod mail;
mod sendgrid;
mod smtp;

pub use api::MailApi;
pub(crate) use mail::{mailbox, split_addresses};
pub use sendgrid::SendGrid;
pub use smtp::{Security, Smtp};

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &[
    "mailto",
    "mailtos",
    "sendgrid",
    "mailgun",
    "postmark",
    "sparkpost",
    "resend",
    "brevo",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "sendgrid" => boxed(SendGrid::from_apprise(raw)),
        s if api::SCHEMES.contains(&s) => boxed(MailApi::from_apprise(raw)),
        _ => boxed(Smtp::from_apprise(raw)),
    }
}
