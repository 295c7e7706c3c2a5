//! The sweeper: one std thread that marks late the jobs whose deadline has passed
//! (`Store::mark_late`), each through the rules in its own transaction with its alert, then
//! wakes the dispatcher. It sleeps until the next deadline (`Store::next_late`), but never
//! longer than [`POLL`]: another replica, a `belfry run` on the same store or a ping may
//! have moved the deadlines since it looked. Between looks it also reads the outbox's
//! figures for `/metrics`, and now and then records as crashed the runs of this host whose
//! `belfry run` is gone (as the detached drain does, which a server makes unneeded).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use belfry::config::Config;
use belfry::internal::Waker;
use belfry_core::Timestamp;
use belfry_store::Store;

use crate::metrics::Metrics;

/// The longest the sweeper sleeps between looks at the store.
pub const POLL: Duration = Duration::from_millis(250);

/// Jobs marked late in one call (it calls again at once while there are more).
const BATCH: u32 = 1000;

/// How often the outbox's figures are read for `/metrics`.
const FIGURES_EVERY: Duration = Duration::from_secs(1);

/// How often runs of this host whose `belfry run` is gone are looked for (and recorded as
/// crashed), as the detached drain does between its passes.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// Tells the sweeper (and the checkpointer) to stop, and wakes it.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl Stop {
    pub(crate) fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps `d` or until stopped; returns whether stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Runs the sweeper until `stop`.
pub(crate) fn run(
    mut store: Store,
    config: Arc<Config>,
    stop: Arc<Stop>,
    metrics: Arc<Metrics>,
    waker: Waker,
) {
    let mut figures_at = Instant::now();
    let mut reaped_at: Option<Instant> = None;
    let mut failing = false;
    loop {
        let wait = match sweep(&mut store, &config, &metrics, &waker, &stop) {
            Ok(next) => {
                failing = false;
                next.map_or(POLL, |at| at.since(Timestamp::now()).min(POLL))
            }
            Err(e) => {
                metrics.store_errors.fetch_add(1, Relaxed);
                // Said once per spell of failures, not every poll.
                if !failing {
                    crate::log::warn(&format!(
                        "could not look for late jobs: {}",
                        config.scrub(&e.to_string())
                    ));
                }
                failing = true;
                POLL
            }
        };
        if reaped_at.is_none_or(|t| t.elapsed() >= REAP_EVERY) {
            reaped_at = Some(Instant::now());
            match belfry::internal::reap_crashed(&mut store, &config) {
                Ok(recs) => {
                    if recs.iter().any(|r| r.notification.is_some()) {
                        metrics.alerts.fetch_add(
                            recs.iter().filter(|r| r.notification.is_some()).count() as u64,
                            Relaxed,
                        );
                        waker.wake();
                    }
                }
                Err(e) => crate::log::warn(&format!(
                    "could not look for crashed runs: {}",
                    config.scrub(&e.to_string())
                )),
            }
        }
        if figures_at.elapsed() >= FIGURES_EVERY {
            figures_at = Instant::now();
            if let Ok(c) = store.outbox_counts() {
                metrics.outbox_pending.store(c.pending + c.sending, Relaxed);
                metrics.outbox_delivered.store(c.delivered, Relaxed);
                metrics.outbox_dead.store(c.dead, Relaxed);
            }
        }
        if stop.sleep(wait) {
            return;
        }
    }
}

/// Marks every job that is late now, a batch at a time, until told to stop; returns the next
/// deadline.
fn sweep(
    store: &mut Store,
    config: &Config,
    metrics: &Metrics,
    waker: &Waker,
    stop: &Stop,
) -> Result<Option<Timestamp>, belfry_store::Error> {
    loop {
        let recs = store.mark_late(Timestamp::now(), BATCH, config)?;
        metrics.late.fetch_add(recs.len() as u64, Relaxed);
        let mut alerted = false;
        for rec in &recs {
            if rec.notification.is_some() {
                metrics.alerts.fetch_add(1, Relaxed);
                alerted = true;
            }
            if let Err(e) = belfry::internal::mark_unrouted(store, config, rec) {
                crate::log::warn(&format!(
                    "could not mark an alert as sent to no channel: {}",
                    config.scrub(&e.to_string())
                ));
            }
        }
        if alerted {
            waker.wake();
        }
        // A TERM is not held up by a backlog (100,000 jobs gone late at once): the rest are
        // marked by the next sweeper, each batch committed whole.
        if recs.len() < BATCH as usize || stop.is_stopped() {
            break;
        }
    }
    store.next_late()
}
