//! `belfry run` as a healthchecks pinger (`BELFRY_PING_URL`, `[ping] url`): the start and the
//! finish of a run become outbox rows of the hidden ping channel ([`belfry::Config::ping`]),
//! sent by the normal delivery, so that a server that is down never holds the job.

use belfry::Config;
use belfry::core::{Event, Notification, Policy};
use belfry_store::Store;

use crate::tell::warn;

/// The ping of `event` (a run's start, `running`, or its end): a notification made outside
/// the rules, for the ping channel only.
fn notification(event: &Event) -> Notification {
    let decision = belfry::core::decide(None, &event.state, event.at, &Policy::default());
    let mut n = Notification::new(belfry_store::new_id(), event, None, &decision);
    n.reason = "ping".to_owned();
    n.reason_text = "healthchecks ping".to_owned();
    n
}

/// Writes the ping of `event` to the outbox, if a ping URL is set. Returns its row; a store
/// that cannot take it is said once (the run's own record is not affected).
pub fn record(store: &mut Store, config: &Config, event: &Event) -> Option<i64> {
    let ping = config.ping.as_ref()?;
    let n = notification(event);
    match store.record_notification(&n, vec![ping.name.clone()], false, &config.limits()) {
        Ok(ids) => ids.first().copied(),
        Err(e) => {
            warn(&config.scrub(&format!("could not queue the ping for {}: {e}", event.job)));
            None
        }
    }
}
