//! Where a store is: a SQLite file, or a PostgreSQL database.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::postgres::PostgresUrl;

/// Where a store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created with its directory if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database (the schema of its `schema=` parameter, created if missing).
    Postgres(PostgresUrl),
}

impl Location {
    /// Reads where a store is from what a user wrote: a `postgres://` or `postgresql://` URL
    /// is a PostgreSQL database, anything else a SQLite file's path. Fails only for a URL the
    /// PostgreSQL client would not take (the error shows it without its password).
    ///
    /// ```
    /// use belfry_store::Location;
    ///
    /// let db = Location::parse("postgres://belfry:s3cret@db.internal/ops?schema=team_a")?;
    /// assert_eq!(db.to_string(), "postgres://belfry:***@db.internal/ops?schema=team_a");
    /// let Location::Postgres(url) = &db else { unreachable!() };
    /// assert_eq!(url.schema(), Some("team_a"));
    ///
    /// let file = Location::parse("/var/lib/belfry/belfry.db")?;
    /// assert!(matches!(file, Location::Sqlite(_)));
    /// # Ok::<(), belfry_store::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Location> {
        if PostgresUrl::is_postgres_url(s) {
            PostgresUrl::parse(s).map(Location::Postgres)
        } else {
            Ok(Location::Sqlite(PathBuf::from(s)))
        }
    }
}

impl std::str::FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location> {
        Location::parse(s)
    }
}

impl From<PostgresUrl> for Location {
    fn from(url: PostgresUrl) -> Location {
        Location::Postgres(url)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_owned())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

impl fmt::Display for Location {
    /// The file's path, or the database's URL without its password: what messages show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}
