//! Sending what the outbox holds.
//!
//! Rows are claimed with a lease (so two processes never send the same row at once), sent
//! concurrently (a slow channel does not hold up the others), and every attempt is recorded
//! with the channel's verdict. A row that fails stays in the outbox for a later attempt.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use belfry_channels::{Channel, Context, Message, Outcome};
use belfry_core::{Timestamp, format_duration};
use belfry_store::{Attempt, Claimed, Store};

use crate::config::Config;

/// What one delivery pass did.
#[derive(Clone, Debug, Default)]
pub struct DeliveryReport {
    /// Rows delivered, by channel name.
    pub delivered: Vec<String>,
    /// Rows that failed.
    pub failed: Vec<Failure>,
}

/// One failed delivery.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The channel's name.
    pub channel: String,
    /// The channel's URL, redacted.
    pub destination: String,
    /// What went wrong (no secrets).
    pub reason: String,
    /// `None`: permanent, the row is dead. `Some(t)`: it will be tried again from `t`.
    pub retry_at: Option<Timestamp>,
}

impl DeliveryReport {
    /// Whether nothing failed.
    pub fn all_delivered(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The shortest wait before a retry, whatever the service says.
pub const MIN_RETRY: Duration = Duration::from_secs(1);

/// The longest wait before attempt `n + 1` when the service gave no hint: 1 s, 2 s, 4 s, …
/// up to 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(Duration::from_secs(300))
}

/// "Full jitter": the wait before attempt `n + 1` drawn uniformly between [`MIN_RETRY`] and
/// [`backoff`]`(n)`, given `unit` in `[0, 1)`. Alerts that failed together (a channel outage)
/// then come back spread out rather than in waves.
pub fn jittered_backoff(attempts: u32, unit: f64) -> Duration {
    let cap = backoff(attempts).max(MIN_RETRY);
    let span = (cap - MIN_RETRY).as_secs_f64();
    MIN_RETRY + Duration::from_secs_f64(span * unit.clamp(0.0, 1.0))
}

/// A number in `[0, 1)`, different each call: enough for jitter, and no dependency.
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Claims and sends due outbox rows (only `ids` if given) within `wait`, then records every
/// outcome. Repeats until nothing due is left when `ids` is `None`.
pub fn deliver(
    config: &Config,
    store: &mut Store,
    ids: Option<&[i64]>,
    wait: Duration,
) -> Result<DeliveryReport, belfry_store::Error> {
    let owner = format!("pid-{}-{}", std::process::id(), belfry_store::new_id());
    // The lease outlives the wait, so no other process takes a row while this one may still
    // be sending it.
    let lease = wait + config.delivery.request_timeout + Duration::from_secs(30);
    let started = Instant::now();
    let mut report = DeliveryReport::default();
    let mut channels: HashMap<String, Result<Box<dyn Channel>, Outcome>> = HashMap::new();
    let mut runtime: Option<tokio::runtime::Runtime> = None;
    let cx = Context::new(config.delivery.request_timeout);
    loop {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        let claimed = store.claim_due(Timestamp::now(), lease, &owner, ids, 256)?;
        if claimed.is_empty() {
            break;
        }
        for row in &claimed {
            channels.entry(row.channel.clone()).or_insert_with(|| {
                match config.channel(&row.channel) {
                    Some(c) => belfry_channels::parse(c.url())
                        .map_err(|e| Outcome::permanent(c.secrets().scrub(&e.to_string()))),
                    // Perhaps this process lacks the configuration the recording one had
                    // ($BELFRY_URLS, another file): keep the alert and retry until its
                    // deadline rather than lose it.
                    None => Err(Outcome::retry(format!(
                        "channel {:?} is not configured here (another config file, or \
                         $BELFRY_URLS missing?)",
                        row.channel
                    ))),
                }
            });
        }
        let rt = match &runtime {
            Some(rt) => rt,
            None => runtime.insert(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds"),
            ),
        };
        let outcomes: Vec<(Outcome, Duration)> = rt.block_on(async {
            let sends = claimed.iter().map(|row| {
                let ch = &channels[&row.channel];
                send_one(config, row, ch, &cx, left)
            });
            futures_util::future::join_all(sends).await
        });
        for (row, (outcome, elapsed)) in claimed.iter().zip(outcomes) {
            let now = Timestamp::now();
            let destination = match &channels[&row.channel] {
                Ok(ch) => config.scrub(&ch.describe()).into_owned(),
                Err(_) => config
                    .channel(&row.channel)
                    .map(|c| c.describe())
                    .unwrap_or_default(),
            };
            // A reason may quote the service's answer, which may echo a token back: no
            // secret value reaches the store or the terminal.
            let outcome = match outcome {
                Outcome::Retry { after, reason } => Outcome::Retry {
                    after,
                    reason: config.scrub(&reason).into_owned(),
                },
                Outcome::Permanent { reason } => Outcome::Permanent {
                    reason: config.scrub(&reason).into_owned(),
                },
                delivered => delivered,
            };
            let attempt = match &outcome {
                Outcome::Delivered => {
                    report.delivered.push(row.channel.clone());
                    Attempt::Delivered
                }
                Outcome::Retry { after, reason } => {
                    // Never sooner than a second: a `Retry-After: 0` must not turn this loop
                    // (which runs until nothing is due) into a hammer.
                    let wait = after
                        .unwrap_or_else(|| jittered_backoff(row.attempts, random_unit()))
                        .max(MIN_RETRY);
                    let at = now + wait;
                    report.failed.push(Failure {
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: Some(at),
                    });
                    Attempt::Retry {
                        at,
                        reason: reason.clone(),
                    }
                }
                Outcome::Permanent { reason } => {
                    report.failed.push(Failure {
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: None,
                    });
                    Attempt::Permanent {
                        reason: reason.clone(),
                    }
                }
            };
            store.record_attempt(row.id, &attempt, now, elapsed)?;
        }
        if ids.is_some() {
            break;
        }
    }
    Ok(report)
}

async fn send_one(
    config: &Config,
    row: &Claimed,
    ch: &Result<Box<dyn Channel>, Outcome>,
    cx: &Context,
    left: Duration,
) -> (Outcome, Duration) {
    let t = Instant::now();
    let ch = match ch {
        Ok(ch) => ch,
        Err(outcome) => return (outcome.clone(), Duration::ZERO),
    };
    // The channel's templates, if it has any, before the channel formats the message.
    let notification = match config.channel(&row.channel) {
        Some(c) => c.render(&row.notification),
        None => std::borrow::Cow::Borrowed(&row.notification),
    };
    let msg = Message {
        notification: &notification,
        idempotency_key: &row.idempotency_key,
    };
    let outcome = match tokio::time::timeout(left, ch.send(&msg, cx)).await {
        Ok(o) => o,
        Err(_) => Outcome::retry(format!(
            "not delivered within {}; left for a later attempt",
            format_duration(left)
        )),
    };
    (outcome, t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_the_floor_and_the_cap_and_spreads() {
        assert_eq!(jittered_backoff(1, 0.99), MIN_RETRY);
        assert_eq!(jittered_backoff(3, 0.0), MIN_RETRY);
        assert_eq!(jittered_backoff(3, 0.5), Duration::from_millis(2500));
        assert!(jittered_backoff(30, 0.999_999) <= Duration::from_secs(300));
        let draws: Vec<f64> = (0..200).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let low = draws.iter().filter(|u| **u < 0.5).count();
        assert!((40..160).contains(&low), "{low} of 200 below one half");
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let b: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
