//! Syslog: [`RemoteSyslog`] (`rsyslog://`), a message per notification to a syslog server over
//! UDP.

mod remote;

pub use remote::RemoteSyslog;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["rsyslog"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(RemoteSyslog::from_apprise(raw))
}
