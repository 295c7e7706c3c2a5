//! What every way of sending shares: a destination's pace (a token bucket, requests in
//! flight, a pause the service asked for), one attempt bounded in time, the wait before the
//! next attempt, and an outcome with its secrets hidden. The dispatcher uses all of it for
//! outbox rows; [`crate::send`] uses the attempt, the wait and the scrubbing for messages
//! sent by hand.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use belfry_channels::{Channel, Context, Message, Outcome, Pace};
use belfry_core::{duration_from_secs_f64, format_duration, instant_after};
use belfry_store::Claimed;

use crate::secret::Secrets;

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
    MIN_RETRY + duration_from_secs_f64(span * unit.clamp(0.0, 1.0))
}

/// A number in `[0, 1)`, different each call: enough for jitter, and no dependency.
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The wait before the next attempt after `attempts` failed ones: what the service asked
/// for (`after`), or a jittered backoff; never less than [`MIN_RETRY`], so that a
/// `Retry-After: 0` cannot turn a retry loop into a hammer.
pub(crate) fn retry_wait(after: Option<Duration>, attempts: u32) -> Duration {
    after
        .unwrap_or_else(|| jittered_backoff(attempts, random_unit()))
        .max(MIN_RETRY)
}

/// `outcome` with every secret value hidden from its reason: a reason may quote the
/// service's answer, which may echo a token back.
pub(crate) fn scrubbed(outcome: Outcome, secrets: &Secrets) -> Outcome {
    match outcome {
        Outcome::Retry { after, reason } => Outcome::Retry {
            after,
            reason: secrets.scrub(&reason).into_owned(),
        },
        Outcome::Permanent { reason } => Outcome::Permanent {
            reason: secrets.scrub(&reason).into_owned(),
        },
        delivered => delivered,
    }
}

/// One attempt at sending `msg`, given at most `limit`; past it, a retry whose reason says
/// how long it was given and `then` (what becomes of the message).
pub(crate) async fn attempt(
    channel: &dyn Channel,
    msg: &Message<'_>,
    cx: &Context,
    limit: Duration,
    then: &str,
) -> Outcome {
    match tokio::time::timeout(limit, channel.send(msg, cx)).await {
        Ok(o) => o,
        Err(_) => Outcome::retry(format!(
            "not delivered within {}{then}",
            format_duration(limit)
        )),
    }
}

/// A destination's pace as the dispatcher keeps it: a token bucket, requests in flight, rows
/// waiting their turn, and a pause the service asked for.
pub(crate) struct Lane {
    /// The channel, or why it cannot be used here (the outcome every row of it gets).
    pub channel: Result<Arc<dyn Channel>, Outcome>,
    pub pace: Pace,
    tokens: f64,
    refilled: Instant,
    pub paused_until: Option<Instant>,
    pub in_flight: usize,
    pub queue: VecDeque<Claimed>,
}

impl Lane {
    pub fn new(channel: Result<Arc<dyn Channel>, Outcome>, pace: Pace) -> Lane {
        Lane {
            channel,
            pace,
            tokens: f64::from(pace.burst.max(1)),
            refilled: Instant::now(),
            paused_until: None,
            in_flight: 0,
            queue: VecDeque::new(),
        }
    }

    /// Whether another request may start now as far as concurrency goes.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.pace.concurrency.max(1)
    }

    /// Takes a token if the bucket has one; otherwise says when it will.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Err(until);
        }
        let Some(rate) = self.pace.per_second.filter(|r| *r > 0.0) else {
            return Ok(());
        };
        let burst = f64::from(self.pace.burst.max(1));
        let gained = now.duration_since(self.refilled).as_secs_f64() * rate;
        self.tokens = (self.tokens + gained).min(burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // A rate of 1e-300 a second means "next to never", not a panic.
            Err(instant_after(
                now,
                duration_from_secs_f64((1.0 - self.tokens) / rate),
            ))
        }
    }
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
    fn a_retry_waits_as_asked_but_never_less_than_the_floor() {
        assert_eq!(retry_wait(Some(Duration::ZERO), 1), MIN_RETRY);
        assert_eq!(
            retry_wait(Some(Duration::from_secs(30)), 1),
            Duration::from_secs(30)
        );
        let w = retry_wait(None, 4);
        assert!((MIN_RETRY..=backoff(4)).contains(&w), "{w:?}");
    }

    #[test]
    fn a_lane_spends_its_burst_then_one_token_per_interval() {
        let mut lane = Lane::new(Err(Outcome::permanent("unused")), Pace::limited(2.0, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(lane.take(t0), Ok(()));
        }
        let next = lane.take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(500));
        assert!(lane.take(t0 + Duration::from_millis(499)).is_err());
        assert_eq!(lane.take(t0 + Duration::from_millis(500)), Ok(()));
        // A long quiet spell saves up no more than the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(lane.take(later), Ok(()));
        }
        assert!(lane.take(later).is_err());
        // A pause the service asked for holds every send until it ends.
        lane.paused_until = Some(later + Duration::from_secs(5));
        let resume = lane.take(later + Duration::from_secs(10));
        assert_eq!(resume, Ok(()));
        lane.paused_until = Some(later + Duration::from_secs(20));
        assert_eq!(
            lane.take(later + Duration::from_secs(11)),
            Err(later + Duration::from_secs(20))
        );
        // Without a rate, nothing waits.
        let mut free = Lane::new(Err(Outcome::permanent("unused")), Pace::default());
        assert!((0..1000).all(|_| free.take(t0).is_ok()));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let b: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_rate_of_next_to_nothing_waits_a_century_instead_of_panicking() {
        let mut lane = Lane::new(Err(Outcome::permanent("unused")), Pace::limited(1e-300, 1));
        let t0 = Instant::now();
        assert_eq!(lane.take(t0), Ok(()));
        let next = lane.take(t0).unwrap_err();
        assert_eq!(next - t0, belfry_core::MAX_DURATION);
    }
}
