//! What the e-mail channels share: addresses as Apprise writes them, and a notification
//! rendered as a mail with its attachments.

use std::io::Write;

use belfry_core::Notification;
use belfry_core::email;
use lettre::message::Mailbox;

use crate::url_parse::UrlError;

/// A file attached to a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// Its file name, e.g. `nightly-backup-output.txt.gz`.
    pub file_name: String,
    /// Its MIME type, e.g. `application/gzip`.
    pub content_type: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A notification rendered as a mail.
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

/// Renders `n` for the e-mail channels: the subject and bodies from
/// [`belfry_core::email::render`], and the attachments of [`attachments`].
pub(crate) fn render(n: &Notification) -> Rendered {
    let e = email::render(n);
    let mut attachments = attachments(&e);
    // The notification's own files (`belfry send --attach`, a Supervisor's summary), as given.
    attachments.extend(n.attachments.iter().map(|a| Attachment {
        file_name: a.name.clone(),
        content_type: a.mime_type.clone(),
        data: a.data.clone(),
    }));
    Rendered {
        subject: e.subject,
        text: e.text,
        html: e.html,
        attachments,
    }
}

/// The file an e-mail adds of its own: the whole kept output, gzipped, when the bodies show only
/// its end. [`render`] puts the notification's own files after it.
pub(crate) fn attachments(e: &email::Email) -> Vec<Attachment> {
    let mut out = Vec::new();
    if let Some(output) = &e.full_output {
        out.push(Attachment {
            file_name: format!("{}.gz", e.output_file_name),
            content_type: "application/gzip".to_owned(),
            data: gzip(output.as_bytes()),
        });
    }
    out
}

/// `data` gzipped.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("writing to memory cannot fail");
    enc.finish().expect("writing to memory cannot fail")
}

/// Parses one address as Apprise accepts it: `ops@example.com` or `Ops <ops@example.com>`.
pub(crate) fn mailbox(raw: &str, what: &str, s: &str) -> Result<Mailbox, UrlError> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|_| UrlError::new(raw, format!("{what} {s:?} is not an e-mail address")))
}

/// Splits an address list (`to=a@x.org,B <b@y.org>`) on commas and semicolons, and on white
/// space between plain addresses.
pub(crate) fn split_addresses(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()) {
        if piece.contains('<') {
            out.push(piece.to_owned());
        } else {
            out.extend(piece.split_whitespace().map(str::to_owned));
        }
    }
    out
}

/// Whether `s` is an e-mail address (no display name).
pub(crate) fn is_address(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok()
}

/// A Message-ID that is the same for every attempt to deliver one notification through one
/// channel (the idempotency key), so that mail systems can drop a duplicate.
pub(crate) fn message_id(idempotency_key: &str, domain: &str) -> String {
    let local: String = idempotency_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() { "belfry" } else { local };
    // Dots may not repeat in a dot-atom.
    let mut collapsed = String::with_capacity(local.len());
    for c in local.chars() {
        if !(c == '.' && collapsed.ends_with('.')) {
            collapsed.push(c);
        }
    }
    format!("<{collapsed}.belfry@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn address_lists_split_like_apprise_and_keep_display_names() {
        assert_eq!(
            split_addresses("a@x.org, B Team <b@y.org>;c@z.org d@w.org"),
            ["a@x.org", "B Team <b@y.org>", "c@z.org", "d@w.org"]
        );
        let m = mailbox("mailto://h", "to", "B Team <b@y.org>").unwrap();
        assert_eq!(m.name.as_deref(), Some("B Team"));
        assert_eq!(m.email.to_string(), "b@y.org");
        let e = mailbox("mailto://h", "to", "not-an-address")
            .unwrap_err()
            .to_string();
        assert!(e.contains("to \"not-an-address\""), "{e}");
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        let id = message_id("0190a1b2-c3d4:ops mail", "example.com");
        assert_eq!(id, "<0190a1b2-c3d4.ops.mail.belfry@example.com>");
        assert_eq!(id, message_id("0190a1b2-c3d4:ops mail", "example.com"));
        assert_eq!(message_id("::", "h"), "<belfry.belfry@h>");
    }

    #[test]
    fn gzip_round_trips() {
        let z = gzip(b"hello\nworld\n");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello\nworld\n");
    }
}
