//! A connection or transaction with the backend's statement cache: each statement is prepared
//! once per connection and reused, so a call costs one round trip a statement instead of two
//! (a parse, then the execution). The statements live as long as the connection; the cache is
//! emptied when a broken connection is replaced.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement, Transaction};

use super::sql::Tx;

/// Prepared statements by their SQL text.
pub(super) type Cache = RefCell<HashMap<String, Statement>>;

/// A client or a transaction (`C`), with the cache of its connection.
pub(super) struct Conn<'a, C> {
    pub(super) client: &'a mut C,
    pub(super) cache: &'a Cache,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Conn<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.cache.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.borrow_mut().insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    pub(super) fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    /// Hands each row of `sql` (which takes no parameters) to `f` as it arrives, until `f`
    /// returns `false`: nothing is held but the current row.
    pub(super) fn each_row(&mut self, sql: &str, mut f: impl FnMut(&Row) -> Tx<bool>) -> Tx<()> {
        let s = self.statement(sql)?;
        let mut rows = self.client.query_raw(&s, std::iter::empty::<i64>())?;
        while let Some(row) = rows.next()? {
            if !f(&row)? {
                break;
            }
        }
        Ok(())
    }
}

/// The channel `NOTIFY` wakes waiting dispatchers on; the payload is the store's schema.
pub(super) const NOTIFY_CHANNEL: &str = "belfry_outbox";

/// Tells listeners, when the transaction commits, that outbox rows became due.
pub(super) fn notify(tx: &mut Conn<'_, Transaction<'_>>) -> Tx<()> {
    tx.execute("SELECT pg_notify($1, current_schema())", &[&NOTIFY_CHANNEL])?;
    Ok(())
}
