//! A supervised script: a panic would be recorded as Crashed; at the end it sends a summary
//! with its log, gzipped, attached. On the console channel (the default) the summary is printed
//! with the attachment's name and size; with an e-mail channel it is a mail with the file.
//!
//! ```sh
//! cargo run -p belfry --example supervised_script
//! ```
#![allow(clippy::print_stdout)]

use std::io::Write;

use belfry::{Attachment, Message, Supervisor};

/// The script: export, then a summary with the log attached.
pub fn main() -> std::io::Result<()> {
    let _guard = belfry::init();
    let supervisor = Supervisor::new("nightly-report");

    let dir = std::env::temp_dir().join(format!("belfry-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("nightly-report.log");
    let mut log = std::fs::File::create(&log_path)?;
    let mut written = 0;
    for table in ["users", "orders", "invoices"] {
        for row in 0..2_000 {
            writeln!(log, "{table}: exported row {row}")?;
        }
        written += 1;
    }
    log.flush()?;

    supervisor.notify(Message {
        subject: format!("Nightly report: {written} tables exported"),
        body: format!("{written} tables, 6000 rows, no errors. The log is attached."),
        attachments: vec![Attachment::gzipped_file(&log_path)?],
    });
    println!("summary queued; the guard delivers it on exit");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
