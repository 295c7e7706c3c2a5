//! An application that logs with `tracing`: its ERROR events become notifications.
//!
//! ```sh
//! cargo run -p belfry --example tracing_app
//! ```
//!
//! The job is the event's `job` field, or its target (the module path). A burst of 10,000
//! errors becomes a handful of messages, each saying how many errors it covers.
#![allow(clippy::print_stdout)]

use tracing::{error, info, info_span, warn};
use tracing_subscriber::prelude::*;

fn charge(invoice: u32) -> Result<(), std::io::Error> {
    if invoice.is_multiple_of(2) {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "payment provider refused the connection",
        ))
    } else {
        Ok(())
    }
}

/// The application: a billing run with two failures, then a storm of 10,000 errors.
pub fn main() {
    let _guard = belfry::init();
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout))
        .with(belfry::layer())
        .init();

    let span = info_span!("billing_run", batch = 7);
    let _entered = span.enter();
    for invoice in 1..=4 {
        match charge(invoice) {
            Ok(()) => info!(invoice, "charged"),
            // Notified for the job "billing", with the invoice, the error and the span.
            Err(e) => error!(
                job = "billing",
                invoice,
                error = &e as &dyn std::error::Error,
                "charge failed"
            ),
        }
    }
    // Warnings are not alerts (unless the layer is built `.with_level(Level::WARN)`).
    warn!("disk 85% full");

    // A storm: 10,000 errors from one place. The first is announced at once; the rest are
    // counted and told in digests.
    for i in 0..10_000 {
        error!(attempt = i, "cache unreachable");
    }
    println!("done; the guard's flush sends the last digest");
}
