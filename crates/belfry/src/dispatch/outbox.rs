//! Every store call the dispatcher makes, in one place: claiming due rows, renewing and
//! giving back leases, recording outcomes, and looking for the next due row.
//!
//! Times come from the store's clock ([`Store::now`]): the system's for SQLite, the database
//! server's for PostgreSQL, so that dispatchers on hosts whose clocks disagree agree on when a
//! lease runs out and a row falls due.
//!
//! A store backend may block the thread it runs on (PostgreSQL's client does, and refuses to
//! run inside an async runtime), so the dispatcher calls these only from its plain sync
//! frame, never while its runtime is entered; each call checks that in debug builds.

use std::time::Duration;

use belfry_core::Timestamp;
use belfry_store::{Attempt, Claim, Claimed, Error, Store};

/// Panics in debug builds when called inside a tokio runtime: the guard that keeps every
/// store call of the dispatcher out of its async code.
fn outside_runtime(what: &str) {
    debug_assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the dispatcher called the store ({what}) inside its runtime"
    );
}

/// Claims due rows as `claim` says: its lease, digest window and console exemption are
/// arguments of the store call.
pub(crate) fn claim(store: &mut Store, claim: &Claim<'_>) -> Result<Vec<Claimed>, Error> {
    outside_runtime("claim");
    let now = store.now()?;
    store.claim_due(now, claim)
}

pub(crate) fn renew(
    store: &mut Store,
    owner: &str,
    ids: &[i64],
    lease: Duration,
) -> Result<(), Error> {
    outside_runtime("renew");
    let now = store.now()?;
    store.renew_leases(owner, ids, now + lease).map(drop)
}

pub(crate) fn release(
    store: &mut Store,
    owner: &str,
    ids: &[i64],
    due: Option<Timestamp>,
) -> Result<(), Error> {
    outside_runtime("release");
    store.release_claims(owner, ids, due).map(drop)
}

pub(crate) fn record(
    store: &mut Store,
    outcomes: &[(i64, Attempt, Duration)],
) -> Result<(), Error> {
    outside_runtime("record");
    let now = store.now()?;
    store.record_attempts(outcomes, now)
}

pub(crate) fn expedite(store: &mut Store, ids: &[i64]) -> Result<(), Error> {
    outside_runtime("expedite");
    let now = store.now()?;
    store.expedite_untried(ids, now).map(drop)
}

/// How long until the next row is due, by the store's clock (zero if it is due already);
/// `None` when no row waits.
pub(crate) fn next_due(store: &Store) -> Result<Option<Duration>, Error> {
    outside_runtime("next_due");
    let Some(due) = store.next_due()? else {
        return Ok(None);
    };
    Ok(Some(due.since(store.now()?)))
}

/// Whether the store can wake a waiting dispatcher itself (PostgreSQL's `LISTEN/NOTIFY`)
/// rather than be looked at again after a sleep.
pub(crate) fn can_wake(store: &Store) -> bool {
    matches!(store.location(), belfry_store::Location::Postgres(_))
}

/// Waits up to `wait` for the store to say that rows became due (see
/// [`Store::wait_for_work`]).
pub(crate) fn wait_for_work(store: &mut Store, wait: Duration) -> Result<bool, Error> {
    outside_runtime("wait_for_work");
    store.wait_for_work(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(debug_assertions)]
    fn a_store_call_inside_the_runtime_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db")).unwrap();
        // Outside: fine.
        assert_eq!(next_due(&store).unwrap(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async { next_due(&store) })
        }));
        let msg = inside.expect_err("the guard fires");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("inside its runtime"), "{msg}");
    }
}
