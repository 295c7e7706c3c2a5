use std::io::Write;

use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// Prints each notification as one line on standard error.
#[derive(Debug, Default)]
pub struct Console;

impl Console {
    /// The line printed for a notification.
    pub fn render(n: &belfry_core::Notification) -> String {
        let mut line = format!("belfry: {} — {}", n.title, n.message);
        if let Some(run) = &n.run_id {
            line.push_str(&format!(" [run {run}]"));
        }
        for a in &n.attachments {
            line.push_str(&format!(
                " [attached: {} ({} bytes)]",
                a.filename,
                a.data.len()
            ));
        }
        line.push('\n');
        line
    }
}

impl Channel for Console {
    fn scheme(&self) -> &'static str {
        "console"
    }

    fn describe(&self) -> String {
        "console://".to_owned()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, _cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let line = Console::render(msg.notification);
            // One write of the whole line, so that concurrent writers do not interleave.
            match std::io::stderr().lock().write_all(line.as_bytes()) {
                Ok(()) => Outcome::Delivered,
                // A closed stderr will not reopen: retrying cannot help.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    Outcome::permanent("standard error is closed")
                }
                Err(e) => Outcome::retry(format!("cannot write to standard error: {e}")),
            }
        })
    }
}
