use std::fmt;

/// The result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    Unavailable,
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

    /// A PostgreSQL error while doing `doing` at `place` (the database's URL, already without
    /// its password): the SQLSTATE decides what the caller is told. The server's message never
    /// holds the connection string, so it is kept as the detail.
    pub(crate) fn postgres(place: &str, doing: &'static str, e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let kind = match e.code() {
            Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => {
                ErrorKind::DiskFull
            }
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::LOCK_NOT_AVAILABLE
                    || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                ErrorKind::Busy
            }
            Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
                ErrorKind::Corrupt
            }
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || c.code().starts_with("08") =>
            {
                ErrorKind::Unavailable
            }
            Some(_) => ErrorKind::Other,
            // No SQLSTATE, and the connection is gone or could not be made: not a statement's
            // fault. (Without one either, a value the client could not convert is a bug.)
            None if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|c| c.is::<std::io::Error>()) =>
            {
                ErrorKind::Unavailable
            }
            None => ErrorKind::Other,
        };
        Error {
            place: place.to_owned(),
            doing,
            kind,
            detail: postgres_detail(&e),
            source: Some(Box::new(e)),
        }
    }

    /// A store that cannot be used as asked, for a reason belfry found itself (not a database
    /// error): a malformed URL, a schema name it will not quote.
    pub(crate) fn invalid(place: &str, doing: &'static str, what: String) -> Self {
        Error {
            place: place.to_owned(),
            doing,
            kind: ErrorKind::Other,
            detail: what,
            source: None,
        }
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

    pub(crate) fn too_new(place: &str, found: i64, known: i64) -> Self {
        Error {
            place: place.to_owned(),
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

    /// Data in a database that belfry cannot read back (a damaged or foreign row).
    pub(crate) fn bad_data(place: &str, doing: &'static str, what: String) -> Self {
        Error {
            place: place.to_owned(),
            doing,
            kind: ErrorKind::Corrupt,
            detail: what,
            source: None,
        }
    }

    /// A backend broke its contract (a bug, not a state of the database).
    pub(crate) fn internal(place: &str, doing: &'static str) -> Self {
        Error {
            place: place.to_owned(),
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

    /// The database server could not be reached, or the connection to it broke (PostgreSQL).
    /// The handle connects again on its next call; what the failed call wrote may or may not
    /// have been committed.
    pub fn is_unavailable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }

    /// Whether trying the same call again may succeed: the database was busy (a lock, a
    /// serialization conflict, too many connections) or could not be reached.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Busy | ErrorKind::Unavailable)
    }
}

/// A PostgreSQL error in one line: the server's message (with its detail, if any) for a
/// statement that failed, or the client's for a connection that did.
fn postgres_detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!(
                "{} ({}; SQLSTATE {})",
                db.message(),
                detail,
                db.code().code()
            ),
            None => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        },
        None => {
            // The client's own text, with its cause: "error connecting to server: Connection
            // refused (os error 111)". It names no host or password.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                let more = c.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                cause = c.source();
            }
            text
        }
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
