use std::io::Write;

use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// Prints each notification as one line on standard error.
#[derive(Debug, Default)]
pub struct Console;

impl Console {
    /// The line printed for a notification.
    pub fn render(n: &belfry_core::Notification) -> String {
        // A message sent by hand may have no title (`belfry send -b hi`), or no body.
        let mut line = match (n.title.trim().is_empty(), n.message.trim().is_empty()) {
            (true, _) => format!("belfry: {}", n.message),
            (false, true) => format!("belfry: {}", n.title),
            (false, false) => format!("belfry: {} — {}", n.title, n.message),
        };
        if let Some(run) = &n.run_id {
            line.push_str(&format!(" [run {run}]"));
        }
        for a in &n.attachments {
            line.push_str(&format!(" [attached: {} ({} bytes)]", a.name, a.data.len()));
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

    /// One message at a time, so that lines never interleave.
    fn pace(&self) -> crate::Pace {
        crate::Pace {
            concurrency: 1,
            ..crate::Pace::default()
        }
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

#[cfg(test)]
mod tests {
    use belfry_core::{Adhoc, MessageType, Notification, Timestamp};

    use super::Console;

    fn sent(title: &str, body: &str) -> Notification {
        Notification::adhoc(
            "n1".into(),
            Adhoc {
                job: "send".into(),
                title: title.into(),
                body: body.into(),
                message_type: MessageType::Info,
                host: None,
                reason: "sent",
                reason_text: "sent by hand".into(),
                attachments: Vec::new(),
            },
            Timestamp::from_millis(0),
        )
    }

    #[test]
    fn a_line_has_no_dangling_dash_when_the_title_or_the_body_is_missing() {
        assert_eq!(Console::render(&sent("", "hi")), "belfry: hi\n");
        assert_eq!(Console::render(&sent("disk", "")), "belfry: disk\n");
        assert_eq!(
            Console::render(&sent("disk", "full")),
            "belfry: disk — full\n"
        );
    }
}
