//! Making sure a sender exists: every belfry process that leaves due rows in the outbox (a
//! run's alert it could not deliver, a crashed run it found, rows it made due again) starts
//! the detached `belfry deliver --background`, or, where that is turned off, says once that
//! the rows wait for `belfry deliver`.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use belfry::Config;
use belfry::internal::DeliveryReport;
use belfry_store::Store;

use crate::tell::warn;

/// Whether undelivered notifications are left to a background `belfry deliver`.
pub fn enabled(config: &Config) -> bool {
    config.delivery.background && std::env::var_os("BELFRY_BACKGROUND").is_none_or(|v| v != "0")
}

/// This process leaves `rows` outbox rows undelivered (`what` says whose, as in "the alert
/// for backup"): starts the background drainer, or says once that `belfry deliver` must send
/// them. Returns whether a drainer was started.
pub fn leave_to_sender(config: &Config, rows: usize, what: &str) -> bool {
    if rows == 0 {
        return false;
    }
    if enabled(config) {
        spawn_drainer(config);
        return true;
    }
    let off = if config.delivery.background {
        "BELFRY_BACKGROUND=0"
    } else {
        "[delivery] background = false"
    };
    warn(&format!(
        "not sent yet: {what} ({rows} in the outbox); background delivery is off ({off}): \
         run `belfry deliver` to send"
    ));
    false
}

/// Hands over the outbox rows `ids` that this process wrote and does not send itself (the
/// alerts of crashed runs that a command which only looks found): those for the console are
/// printed now, since only this process has the user's terminal (a detached sender's output
/// goes nowhere) and printing is no network I/O; the others are left to the sender.
pub fn hand_over(config: &Config, store: &mut Store, ids: &[i64], what: &str) {
    let (console, others): (Vec<i64>, Vec<i64>) = ids.iter().partition(|&&id| {
        matches!(store.outbox_channel(id), Ok(Some(ch))
            if config.channel(&ch).is_some_and(|c| c.is_console()))
    });
    if !console.is_empty() {
        match belfry::internal::deliver(config, store, Some(&console), config.delivery.wait) {
            Ok(report) => report_failures(&report, enabled(config)),
            Err(e) => warn(&format!("could not print {what} ({e})")),
        }
    }
    leave_to_sender(config, others.len(), what);
}

/// Starts `belfry deliver --background`, detached (its own process group, no terminal
/// streams), with this process's configuration. If one already drains this state directory,
/// the new one exits at once. It does not wait for it: the caller's work stays as fast as it
/// was, and the network is the drainer's business.
pub fn spawn_drainer(config: &Config) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            warn(&format!("cannot start the background delivery: {e}"));
            return;
        }
    };
    let mut cmd = Command::new(exe);
    if let Some(file) = &config.source {
        cmd.arg("--config").arg(file);
    }
    cmd.args(["deliver", "--background"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Err(e) = cmd.spawn() {
        warn(&format!("cannot start the background delivery: {e}"));
    }
}

/// Says once, on standard error, what could not be delivered.
pub fn report_failures(report: &DeliveryReport, background: bool) {
    for f in &report.failed {
        let what = match f.retry_at {
            Some(_) if background => "kept in the outbox; retrying in the background",
            Some(_) => "kept in the outbox; `belfry deliver` will retry it",
            None => "given up (permanent failure)",
        };
        warn(&format!(
            "could not notify {} ({}): {}; {what}",
            f.channel, f.destination, f.reason
        ));
    }
}
