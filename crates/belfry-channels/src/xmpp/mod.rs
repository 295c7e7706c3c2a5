//! XMPP: [`Xmpp`] (`xmpp://`, `xmpps://` with STARTTLS or TLS from the start) sends each
//! notification as a message to Jabber IDs and group chats. `config.rs` reads the URL,
//! `xml.rs` reads and writes the stream's XML, `session.rs` holds one session per
//! notification.

mod config;
mod session;
mod xml;

pub use config::Xmpp;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["xmpp", "xmpps"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Xmpp::from_apprise(raw))
}
