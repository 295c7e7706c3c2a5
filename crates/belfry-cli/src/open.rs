//! Opening the store, as every command that looks at it does: the configured store, with the
//! runs whose belfry is gone recorded as crashed on the way.

use belfry::Config;
use belfry_store::Store;

/// Opens the store, and records as crashed the runs whose belfry is gone. Their alerts are
/// left to the background sender (started here if need be), so that a command that only looks
/// leaves no alert unsent, and never waits for the network itself.
pub(crate) fn open_store(config: &Config) -> anyhow::Result<Store> {
    let (mut store, found) = open_and_reap(config)?;
    if !found.is_empty() {
        let what = "the alerts of runs found crashed";
        crate::background::hand_over(config, &mut store, &found, what);
    }
    Ok(store)
}

/// Opens the store and records as crashed the runs whose belfry is gone; returns the outbox
/// rows their alerts made.
pub(crate) fn open_and_reap(config: &Config) -> anyhow::Result<(Store, Vec<i64>)> {
    let home = belfry::home_dir()?;
    let mut store = Store::open(config.store_location(&home))?;
    let found = match belfry::internal::reap_crashed(&mut store, config) {
        Ok(recs) => crate::unrouted::rows_of(config, recs),
        Err(e) => {
            crate::tell::warn(&format!("could not check for crashed runs: {e}"));
            Vec::new()
        }
    };
    Ok((store, found))
}
