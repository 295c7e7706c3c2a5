//! What the server says about itself: one line per event on standard error (a service
//! manager's journal keeps it), never a secret (callers scrub what they pass).

use std::io::Write;

/// Writes `msg` as a warning line on standard error.
pub(crate) fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "belfry serve: {msg}");
}
