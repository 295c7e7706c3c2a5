//! E-mail: over SMTP ([`Smtp`], `mailto://`, `mailtos://`), through SendGrid's API
//! ([`SendGrid`], `sendgrid://`), through Mailgun's, Postmark's, SparkPost's, Resend's and
//! Brevo's ([`MailApi`]), and through Microsoft Graph from a Microsoft 365 mailbox
//! ([`Microsoft365`], `azure://`, `o365://`). `mail.rs` holds what they share: addresses, and
//! the message rendered with [`belfry_core::email`].

mod api;
mod graph;
mod mail;
mod sendgrid;
mod smtp;

pub use api::MailApi;
pub use graph::Microsoft365;
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
    "azure",
    "o365",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "sendgrid" => boxed(SendGrid::from_apprise(raw)),
        "azure" | "o365" => boxed(Microsoft365::from_apprise(raw)),
        s if api::SCHEMES.contains(&s) => boxed(MailApi::from_apprise(raw)),
        _ => boxed(Smtp::from_apprise(raw)),
    }
}
