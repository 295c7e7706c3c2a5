//! An end-of-run summary's parts: its [`Message`] and the files ([`Attachment`]) sent with it;
//! what [`Supervisor::notify`](crate::Supervisor::notify) and
//! [`Belfry::notify`](crate::Belfry::notify) take.

use std::io::Write;
use std::path::Path;

/// A file to send with a summary, read when it is made.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment(pub(crate) belfry_core::Attachment);

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Attachment {
    /// The file as it is, named by its file name.
    pub fn file(path: impl AsRef<Path>) -> std::io::Result<Attachment> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| with_path(path, e))?;
        Ok(Attachment(belfry_core::Attachment {
            name: file_name(path),
            mime_type: mimetype_of(path).to_owned(),
            data,
        }))
    }

    /// The file gzipped, named `NAME.gz` (`application/gzip`): a log of megabytes becomes
    /// an attachment of kilobytes.
    pub fn gzipped_file(path: impl AsRef<Path>) -> std::io::Result<Attachment> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| with_path(path, e))?;
        Ok(Attachment::gzipped(
            format!("{}.gz", file_name(path)),
            &data,
        ))
    }

    /// Bytes from memory, as a file named `filename`.
    pub fn bytes(filename: impl Into<String>, mimetype: impl Into<String>, data: Vec<u8>) -> Self {
        Attachment(belfry_core::Attachment {
            name: filename.into(),
            mime_type: mimetype.into(),
            data,
        })
    }

    /// Bytes from memory, gzipped, as a file named `filename` (which should end in `.gz`).
    pub fn gzipped(filename: impl Into<String>, data: &[u8]) -> Self {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gz = enc
            .write_all(data)
            .and_then(|()| enc.finish())
            .expect("writing to memory cannot fail");
        Attachment::bytes(filename, "application/gzip", gz)
    }

    /// The file name the reader sees.
    pub fn filename(&self) -> &str {
        &self.0.name
    }

    /// The bytes sent.
    pub fn data(&self) -> &[u8] {
        &self.0.data
    }

    /// Its MIME type (`text/plain`, `application/gzip`, …).
    pub fn mime_type(&self) -> &str {
        &self.0.mime_type
    }
}

fn with_path(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot attach {}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "attachment".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn mimetype_of(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("log" | "txt" | "out" | "err") => "text/plain",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html",
        Some("gz") => "application/gzip",
        Some("zip") => "application/zip",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// An end-of-run summary: a subject, a body, files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The subject (an e-mail's subject, a chat message's title).
    pub subject: String,
    /// The text.
    pub body: String,
    /// Files sent with it ([`Attachment::file`], [`Attachment::gzipped_file`]).
    pub attachments: Vec<Attachment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzipped_file_unzips_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let text = "line\n".repeat(10_000);
        std::fs::write(&log, &text).unwrap();
        let a = Attachment::gzipped_file(&log).unwrap();
        assert_eq!(a.filename(), "run.log.gz");
        assert_eq!(a.0.mime_type, "application/gzip");
        assert!(a.data().len() < text.len() / 20, "{} bytes", a.data().len());
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(a.data()), &mut back)
            .unwrap();
        assert_eq!(back, text);
        let plain = Attachment::file(&log).unwrap();
        assert_eq!(
            (plain.filename(), plain.0.mime_type.as_str()),
            ("run.log", "text/plain")
        );
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let e = Attachment::file("/nonexistent/belfry/x.log").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/belfry/x.log"), "{e}");
    }
}
