//! Text messages: [`Twilio`] (`twilio://`) and the SMS services' APIs ([`SmsApi`]: Vonage,
//! MessageBird, Plivo, ClickSend, Sinch, Telnyx), rendered with [`belfry_core::sms`].
//! `phone.rs` reads phone numbers as Apprise does.

mod api;
mod phone;
mod twilio;

pub use api::SmsApi;
pub use twilio::Twilio;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &[
    "twilio",
    "vonage",
    "nexmo",
    "msgbird",
    "plivo",
    "clicksend",
    "sinch",
    "telnyx",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "twilio" => boxed(Twilio::from_apprise(raw)),
        _ => boxed(SmsApi::from_apprise(raw)),
    }
}
