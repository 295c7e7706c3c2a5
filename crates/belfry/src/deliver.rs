//! Sending what the outbox holds.
//!
//! Rows are claimed with a lease (so two processes never send the same row at once), sent
//! concurrently (a slow channel does not hold up the others), and every attempt is recorded
//! with the channel's verdict. A row that fails stays in the outbox for a later attempt.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use belfry_channels::{BoxFuture, Channel, Context, Message, Outcome, Pace};
use belfry_core::{Timestamp, duration_from_secs_f64, format_duration, instant_after};
use belfry_store::{Attempt, Claim, Claimed, Store};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

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
    /// The outbox row.
    pub row: i64,
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

/// A destination's pace as the engine keeps it: a token bucket, requests in flight, rows
/// waiting their turn, and a pause the service asked for.
struct Lane {
    channel: Result<Arc<dyn Channel>, Outcome>,
    pace: Pace,
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
    in_flight: usize,
    queue: VecDeque<Claimed>,
}

impl Lane {
    fn new(channel: Result<Arc<dyn Channel>, Outcome>, pace: Pace) -> Lane {
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

    /// Takes a token if the bucket has one; otherwise says when it will.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
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

/// Claims and sends due outbox rows (only those of the jobs and channels of `ids`, if given)
/// for at most `wait`, recording every outcome as it comes. Returns when nothing due is left,
/// or when the time is up (rows not yet tried are given back; requests still running are
/// recorded as retries).
///
/// Each destination has its own lane: its pace ([`Pace`]: a token bucket and a limit on
/// requests in flight), and a pause when it answers with a time to wait, so a slow or
/// rate-limited channel never holds up the others. Claims are leased for
/// `config.delivery.lease` and renewed while this process works, so the rows of a process
/// that dies go to another one soon after.
pub fn deliver(
    config: &Config,
    store: &mut Store,
    ids: Option<&[i64]>,
    wait: Duration,
) -> Result<DeliveryReport, belfry_store::Error> {
    let owner = format!("pid-{}-{}", std::process::id(), belfry_store::new_id());
    let lease = config.delivery.lease.max(Duration::from_secs(1));
    let consoles: Vec<String> = config
        .channels
        .iter()
        .filter(|c| c.is_console())
        .map(|c| c.name.clone())
        .collect();
    let deadline = instant_after(Instant::now(), wait);
    let cx = Context::new(config.delivery.request_timeout);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let mut engine = Engine {
        config,
        consoles: &consoles,
        owner: &owner,
        lease,
        ids,
        deadline,
        lanes: HashMap::new(),
        report: DeliveryReport::default(),
        drained: false,
        flying: HashSet::new(),
        unrecorded: Vec::new(),
        unrecorded_since: None,
        pauses: Vec::new(),
    };
    rt.block_on(async {
        let ran = engine.run(store, &cx).await;
        // QUIT to the mail servers whose connections were kept for a next mail.
        cx.close().await;
        ran
    })?;
    Ok(engine.report)
}

type Sent = (Claimed, Outcome, Duration);

struct Engine<'a> {
    config: &'a Config,
    /// The console channels, which the digest window never holds (see [`Claim`]).
    consoles: &'a [String],
    owner: &'a str,
    lease: Duration,
    ids: Option<&'a [i64]>,
    deadline: Instant,
    lanes: HashMap<String, Lane>,
    report: DeliveryReport,
    /// The last claim found nothing due.
    drained: bool,
    /// Rows being sent, or sent and not yet recorded: the rows whose leases to renew.
    flying: HashSet<i64>,
    /// Outcomes not yet written.
    unrecorded: Vec<(i64, Attempt, Duration)>,
    /// When the oldest of them came.
    unrecorded_since: Option<Instant>,
    /// Destinations that asked for a pause, and until when.
    pauses: Vec<(String, Timestamp)>,
}

/// Outcomes written in one transaction at most.
const RECORD_BATCH: usize = 64;

/// The longest an outcome waits to be written with others.
const RECORD_DELAY: Duration = Duration::from_millis(2);

impl<'a> Engine<'a> {
    async fn run(&mut self, store: &mut Store, cx: &Context) -> Result<(), belfry_store::Error> {
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Sent>> = FuturesUnordered::new();
        let renew_every = self.lease / 3;
        let mut next_renewal = instant_after(Instant::now(), renew_every);
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            if !self.drained && self.queued() < 64 {
                self.claim(store)?;
            }
            let wake = self.start_sends(&mut in_flight, cx, now);
            if in_flight.is_empty() && self.queued() == 0 && self.drained {
                break;
            }
            let mut wake = wake
                .unwrap_or(self.deadline)
                .min(self.deadline)
                .min(next_renewal);
            if let Some(t) = self.unrecorded_since {
                wake = wake.min(t + RECORD_DELAY);
            }
            tokio::select! {
                Some(done) = in_flight.next() => {
                    let mut batch = vec![done];
                    while let Some(Some(more)) = in_flight.next().now_or_never() {
                        batch.push(more);
                    }
                    self.finish(batch);
                    // A lane freed up, or rows of the same job and channel are now claimable.
                    self.drained = false;
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            // Outcomes are written in batches: when enough have gathered, when the oldest has
            // waited a couple of milliseconds, or when nothing else is being sent.
            if self.unrecorded.len() >= RECORD_BATCH
                || in_flight.is_empty()
                || self
                    .unrecorded_since
                    .is_some_and(|t| t.elapsed() >= RECORD_DELAY)
            {
                self.flush(store)?;
            }
            if Instant::now() >= next_renewal {
                let held: Vec<i64> = self.held_ids();
                store.renew_leases(self.owner, &held, Timestamp::now() + self.lease)?;
                next_renewal = instant_after(Instant::now(), renew_every);
            }
        }
        // Time is up: rows not tried go back. Requests still running end now too (each is
        // bounded by the same deadline) and are recorded as failed tries.
        let untried: Vec<i64> = self
            .lanes
            .values_mut()
            .flat_map(|l| l.queue.drain(..))
            .map(|c| c.id)
            .collect();
        store.release_claims(self.owner, &untried, None)?;
        let mut last = Vec::new();
        while let Some(done) = in_flight.next().await {
            last.push(done);
        }
        self.finish(last);
        self.flush(store)
    }

    fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }

    /// Every row this process holds: waiting in a lane, or being sent.
    fn held_ids(&self) -> Vec<i64> {
        self.lanes
            .values()
            .flat_map(|l| l.queue.iter().map(|c| c.id))
            .chain(self.flying.iter().copied())
            .collect()
    }

    fn claim(&mut self, store: &mut Store) -> Result<(), belfry_store::Error> {
        let claim = Claim {
            owner: self.owner,
            lease: self.lease,
            ids: self.ids,
            limit: 256,
            digest_window: self.config.delivery.digest_window,
            window_exempt: self.consoles,
        };
        let claimed = store.claim_due(Timestamp::now(), &claim)?;
        self.drained = claimed.is_empty();
        for row in claimed {
            let config = self.config;
            let lane = self.lanes.entry(row.channel.clone()).or_insert_with(|| {
                let channel = build_channel(config, &row.channel);
                let pace = channel.as_ref().map_or(Pace::default(), |c| c.pace());
                let pace = match config.channel(&row.channel) {
                    Some(c) => c.pace.apply(pace),
                    None => pace,
                };
                Lane::new(channel, pace)
            });
            lane.queue.push_back(row);
        }
        Ok(())
    }

    /// Starts every send the lanes allow now; returns when a waiting lane can go next.
    fn start_sends<'f>(
        &mut self,
        in_flight: &mut FuturesUnordered<BoxFuture<'f, Sent>>,
        cx: &'f Context,
        now: Instant,
    ) -> Option<Instant>
    where
        'a: 'f,
    {
        let mut wake: Option<Instant> = None;
        for lane in self.lanes.values_mut() {
            while !lane.queue.is_empty() && lane.in_flight < lane.pace.concurrency.max(1) {
                if let Err(at) = lane.take(now) {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                    break;
                }
                let row = lane.queue.pop_front().expect("not empty");
                lane.in_flight += 1;
                self.flying.insert(row.id);
                let channel = lane.channel.clone();
                let left = self.deadline.saturating_duration_since(now);
                in_flight.push(Box::pin(send_one(self.config, row, channel, cx, left)));
            }
        }
        wake
    }

    /// Takes note of finished sends: frees their lanes' slots, pauses lanes whose service
    /// named a time to wait, and keeps the outcomes for [`Engine::flush`].
    fn finish(&mut self, batch: Vec<Sent>) {
        let now = Timestamp::now();
        for (row, outcome, elapsed) in batch {
            let lane = self
                .lanes
                .get_mut(&row.channel)
                .expect("a lane per claimed row");
            lane.in_flight = lane.in_flight.saturating_sub(1);
            // Only a failure names its destination: no description is built per delivery.
            let destination = match (&outcome, &lane.channel) {
                (Outcome::Delivered, _) => String::new(),
                (_, Ok(ch)) => self.config.scrub(&ch.describe()).into_owned(),
                (_, Err(_)) => self
                    .config
                    .channel(&row.channel)
                    .map(|c| c.describe())
                    .unwrap_or_default(),
            };
            // A reason may quote the service's answer, which may echo a token back: no secret
            // value reaches the store or the terminal.
            let outcome = match outcome {
                Outcome::Retry { after, reason } => Outcome::Retry {
                    after,
                    reason: self.config.scrub(&reason).into_owned(),
                },
                Outcome::Permanent { reason } => Outcome::Permanent {
                    reason: self.config.scrub(&reason).into_owned(),
                },
                delivered => delivered,
            };
            let attempt = match outcome {
                Outcome::Delivered => {
                    self.report.delivered.push(row.channel.clone());
                    Attempt::Delivered
                }
                Outcome::Retry { after, reason } => {
                    // Never sooner than a second: a `Retry-After: 0` must not turn this loop
                    // (which runs until nothing is due) into a hammer.
                    let wait = after
                        .unwrap_or_else(|| jittered_backoff(row.attempts, random_unit()))
                        .max(MIN_RETRY);
                    let at = now + wait;
                    if after.is_some() {
                        // The service named a time: the whole destination waits for it.
                        lane.paused_until = Some(instant_after(Instant::now(), wait));
                        self.pauses.push((row.channel.clone(), at));
                    }
                    self.report.failed.push(Failure {
                        row: row.id,
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: Some(at),
                    });
                    Attempt::Retry { at, reason }
                }
                Outcome::Permanent { reason } => {
                    self.report.failed.push(Failure {
                        row: row.id,
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: None,
                    });
                    Attempt::Permanent { reason }
                }
            };
            self.unrecorded.push((row.id, attempt, elapsed));
            self.unrecorded_since.get_or_insert_with(Instant::now);
        }
    }

    /// Writes the outcomes noted so far in one transaction, then gives back the rows queued
    /// for destinations that asked for a pause, due when the pause ends.
    fn flush(&mut self, store: &mut Store) -> Result<(), belfry_store::Error> {
        if !self.unrecorded.is_empty() {
            store.record_attempts(&self.unrecorded, Timestamp::now())?;
            for (id, _, _) in self.unrecorded.drain(..) {
                self.flying.remove(&id);
            }
        }
        self.unrecorded_since = None;
        for (channel, until) in std::mem::take(&mut self.pauses) {
            if let Some(lane) = self.lanes.get_mut(&channel) {
                let ids: Vec<i64> = lane.queue.drain(..).map(|c| c.id).collect();
                store.release_claims(self.owner, &ids, Some(until))?;
            }
        }
        Ok(())
    }
}

fn build_channel(config: &Config, name: &str) -> Result<Arc<dyn Channel>, Outcome> {
    match config.channel(name) {
        Some(c) => belfry_channels::parse(c.url())
            .map(Arc::from)
            .map_err(|e| Outcome::permanent(c.secrets().scrub(&e.to_string()))),
        // Perhaps this process lacks the configuration the recording one had
        // ($BELFRY_URLS, another file): keep the alert and retry until its deadline rather
        // than lose it.
        None => Err(Outcome::retry(format!(
            "channel {name:?} is not configured here (another config file, or \
             $BELFRY_URLS missing?)"
        ))),
    }
}

async fn send_one(
    config: &Config,
    row: Claimed,
    ch: Result<Arc<dyn Channel>, Outcome>,
    cx: &Context,
    left: Duration,
) -> Sent {
    let t = Instant::now();
    let ch = match ch {
        Ok(ch) => ch,
        Err(outcome) => return (row, outcome, Duration::ZERO),
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
    (row, outcome, t.elapsed())
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
