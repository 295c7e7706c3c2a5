//! Channels that stay on this host: the [`Console`] (standard error), a [`Command`] run per
//! notification, a [`File`] of JSON lines, and desktop notifications (`desktop.rs`, with the
//! `desktop` cargo feature).

mod command;
mod console;
mod desktop;
mod file;

pub use command::Command;
pub use console::Console;
#[cfg(feature = "desktop")]
pub use desktop::Desktop;
pub use file::File;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family: the desktop's come last, under all the names Apprise gives it.
pub(crate) const SCHEMES: &[&str] = &[
    "console", "stderr", "cmd", "file", "desktop", "dbus", "kde", "qt", "glib", "gnome",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "cmd" => boxed(Command::from_url(raw)),
        "file" => boxed(File::from_url(raw)),
        s if desktop::SCHEMES.contains(&s) => desktop::parse(raw),
        // What is left of SCHEMES: `console` and `stderr`.
        _ => boxed(Ok(Console)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_desktop_scheme_belongs_to_the_family() {
        for s in super::desktop::SCHEMES {
            assert!(super::SCHEMES.contains(s), "{s}");
        }
    }
}
