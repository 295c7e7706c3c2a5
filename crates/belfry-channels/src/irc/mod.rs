//! IRC: [`Irc`] (`irc://`, `ircs://` over TLS) says each notification in channels and to users
//! of an IRC network. `config.rs` reads the URL, `line.rs` reads and writes the protocol's
//! lines, `session.rs` holds one session per notification.

mod config;
mod line;
mod session;

pub use config::Irc;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["irc", "ircs"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Irc::from_apprise(raw))
}
