//! The store's guarantees, against real SQLite files and a real PostgreSQL server.
//!
//! `conformance` holds every test of what a store promises, run against both backends;
//! `sqlite` and `postgres` what only one of them promises (files and migrations, URLs and
//! notifications); `copy` a store copied into one of the other kind; `hush` silences and acknowledgements; `fleet` many handles on
//! one PostgreSQL schema at once, some of them cut off or stopped mid-send. The PostgreSQL
//! tests use `$BELFRY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`), a
//! fresh schema each, and fail when the server cannot be reached.

/// Each test named, once against each backend: `sqlite::name` and `postgres::name` in the
/// module that lists them.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::support::Db::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::support::Db::postgres());
                }
            )*
        }
    };
}

mod checks;
mod conformance;
mod copy;
mod fleet;
mod hush;
mod postgres;
mod sqlite;
mod support;
