//! Syslog: [`RemoteSyslog`] (`rsyslog://`), a message per notification to a syslog server over
//! UDP, and [`LocalSyslog`] (`syslog://`), one to the local syslog's socket.

mod facility;
mod local;
mod remote;

pub use local::LocalSyslog;
pub use remote::RemoteSyslog;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["rsyslog", "syslog"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "syslog" => boxed(LocalSyslog::from_apprise(raw)),
        _ => boxed(RemoteSyslog::from_apprise(raw)),
    }
}
