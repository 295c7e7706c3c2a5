//! Alerts that no channel takes: each is said once on standard error (which job, why every
//! channel refuses it, how to fix it) rather than going nowhere silently. The store records
//! them as sent to no channel (`belfry::internal::record_run`, `belfry::internal::reap_crashed`).

use belfry::Config;
use belfry_store::Recorded;

/// Says, for each of `recs` whose alert no channel takes, why. Printed even with `--quiet`:
/// it means an alert is lost.
pub fn report(config: &Config, recs: &[Recorded]) {
    for rec in recs {
        if let Some(n) = config.unrouted(rec) {
            crate::tell::warn(&config.unrouted_message(n));
        }
    }
}

/// [`report`], then the outbox rows `recs` wrote.
pub fn rows_of(config: &Config, recs: Vec<Recorded>) -> Vec<i64> {
    report(config, &recs);
    recs.into_iter().flat_map(|r| r.outbox_ids).collect()
}
