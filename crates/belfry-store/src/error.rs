use std::fmt;

/// Something went wrong reading or writing the store.
///
/// The message names the store's file and what belfry was doing; the cause is available
/// through `source()`. Ask [`Error::is_disk_full`] or [`Error::is_busy`] rather than matching.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    /// The store's file, or its database's URL without a password.
    place: String,
    doing: &'static str,
    kind: ErrorKind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    DiskFull,
    Busy,
    Corrupt,
    TooNew,
    Other,
}

impl Error {
    pub(crate) fn sqlite(path: &std::path::Path, doing: &'static str, e: rusqlite::Error) -> Self {
        let kind = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => ErrorKind::DiskFull,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                ErrorKind::Busy
            }
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                ErrorKind::Corrupt
            }
            _ => ErrorKind::Other,
        };
        Error::caused(path, doing, kind, e)
    }

    pub(crate) fn io(path: &std::path::Path, doing: &'static str, e: std::io::Error) -> Self {
        let kind = if e.kind() == std::io::ErrorKind::StorageFull {
            ErrorKind::DiskFull
        } else {
            ErrorKind::Other
        };
        Error::caused(path, doing, kind, e)
    }

    fn caused(
        path: &std::path::Path,
        doing: &'static str,
        kind: ErrorKind,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            place: path.display().to_string(),
            doing,
            kind,
            detail: cause.to_string(),
            source: Some(Box::new(cause)),
        }
    }

    pub(crate) fn too_new(path: &std::path::Path, found: i64, known: i64) -> Self {
        Error {
            place: path.display().to_string(),
            doing: "opening the store",
            kind: ErrorKind::TooNew,
            detail: format!(
                "its schema is version {found}, written by a newer belfry; this one knows up to \
                 version {known}"
            ),
            source: None,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, doing: &'static str, what: String) -> Self {
        Error {
            place: path.display().to_string(),
            doing,
            kind: ErrorKind::Corrupt,
            detail: what,
            source: None,
        }
    }

    /// A backend broke its contract (a bug, not a state of the database).
    pub(crate) fn internal(place: &crate::Location, doing: &'static str) -> Self {
        Error {
            place: place.to_string(),
            doing,
            kind: ErrorKind::Other,
            detail: "the store's backend returned no result where one is always made".into(),
            source: None,
        }
    }

    /// The disk (or the file system's quota) is full.
    pub fn is_disk_full(&self) -> bool {
        self.kind == ErrorKind::DiskFull
    }

    /// Another process held the store for longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        self.kind == ErrorKind::Busy
    }

    /// The file is not a belfry store, or is damaged.
    pub fn is_corrupt(&self) -> bool {
        self.kind == ErrorKind::Corrupt
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store {}: {} failed: {}",
            self.place, self.doing, self.detail
        )
    }
}
