//! The file channel: one JSON line per notification, appended.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::url_parse::{UrlError, decode};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// Appends each notification to a file as one line of JSON, in the schema of
/// `docs/webhook.md`: `file:///var/log/belfry/alerts.jsonl`.
///
/// The file is opened for each notification with `O_APPEND` and the line is written with one
/// `write`, so that belfry processes appending at the same time never interleave their lines.
/// A file that does not exist is created, readable by its owner only (notifications carry the
/// output of jobs); its directory must exist. A failure to write is retried.
#[derive(Clone, Debug)]
pub struct File {
    path: PathBuf,
    describe: String,
}

impl File {
    pub(crate) fn from_url(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let rest = raw
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| UrlError::new(raw, "it has no scheme://"))?;
        if rest.contains(['?', '#']) {
            return Err(UrlError::new(
                raw,
                "file:// takes no options (write ? and # in a file name as %3F and %23)",
            ));
        }
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(UrlError::new(
                raw,
                "the path must be absolute: file:///var/log/belfry/alerts.jsonl",
            ));
        }
        let decoded = decode(path);
        let path = PathBuf::from(&decoded);
        if decoded.ends_with('/') || path.file_name().is_none() {
            return Err(UrlError::new(raw, "the path names a directory, not a file"));
        }
        Ok(File {
            describe: format!("file://{}", path.display()),
            path,
        })
    }

    /// The file appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Channel for File {
    fn scheme(&self) -> &'static str {
        "file"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, _cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut line = serde_json::to_vec(msg.notification).expect("a notification serialises");
            line.push(b'\n');
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .and_then(|mut f| f.write_all(&line));
            match written {
                Ok(()) => Outcome::Delivered,
                Err(e) => Outcome::retry(format!("cannot append to {}: {e}", self.path.display())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_need_an_absolute_path_and_no_options() {
        let f = File::from_url("file:///var/log/belfry/alerts%20x.jsonl").unwrap();
        assert_eq!(f.path(), Path::new("/var/log/belfry/alerts x.jsonl"));
        assert_eq!(f.describe(), "file:///var/log/belfry/alerts x.jsonl");
        assert_eq!(
            File::from_url("file://localhost/tmp/a.jsonl")
                .unwrap()
                .path(),
            Path::new("/tmp/a.jsonl")
        );
        for (raw, needle) in [
            ("file://alerts.jsonl", "absolute"),
            ("file:///tmp/a.jsonl?mode=x", "no options"),
            ("file:///tmp/", "directory"),
        ] {
            let e = File::from_url(raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }
}
