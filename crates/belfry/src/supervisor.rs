//! Supervising a script: its panics, and its end-of-run summary.

use belfry_core::{Notification, Timestamp};

use crate::item::Item;
use crate::summary::Message;

/// Supervises a script, as a scheduled script's supervisor does: every panic is recorded as
/// `Crashed` for the script's job and alerts by the rules (see
/// [`install_panic_hook`](crate::install_panic_hook)), and [`Supervisor::notify`] sends an
/// end-of-run summary to the job's channels, whatever the rules say.
///
/// ```no_run
/// use belfry::{Attachment, Message, Supervisor};
///
/// let _guard = belfry::init();
/// let supervisor = Supervisor::new("nightly-report");
/// // … the script's work, logging to report.log …
/// supervisor.notify(Message {
///     subject: "Nightly report: 3 files".into(),
///     body: "3 files written, 0 skipped".into(),
///     attachments: vec![Attachment::gzipped_file("report.log")?],
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Supervisor {
    job: String,
}

impl Supervisor {
    /// Supervises the job `job`: installs belfry's panic hook (once per process) and makes
    /// it record under `job`.
    pub fn new(job: impl Into<String>) -> Supervisor {
        let job = job.into();
        crate::panic::install_for(&job);
        Supervisor { job }
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Queues a summary for the job's channels. It is recorded in the outbox and delivered
    /// like any notification (the guard's flush sends it before the program exits).
    pub fn notify(&self, message: Message) {
        let n = Notification::summary_message(
            belfry_store::new_id(),
            &self.job,
            message.subject,
            message.body,
            Timestamp::now(),
            message.attachments.into_iter().map(|a| a.0).collect(),
        );
        crate::client::dispatch(Item::Message(Box::new(n)));
    }
}
