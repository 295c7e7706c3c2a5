//! How the command speaks to its user: usage errors (exit code 2) and its own messages on
//! standard error. Every command uses these; they use nothing of the commands.

/// A usage error: bad options or configuration. Exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Prints one of belfry's own messages unless quiet.
pub fn say(quiet: bool, msg: &str) {
    if !quiet {
        warn(msg);
    }
}

/// Prints a problem on standard error, once. A closed standard error (`2>&1 | head`) is no
/// reason to stop: the message is dropped.
pub fn warn(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "belfry: {msg}");
}
