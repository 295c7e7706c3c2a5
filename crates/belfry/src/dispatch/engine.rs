//! One pass of the dispatcher: claim due rows into lanes, start what each lane's pace
//! allows, note outcomes as sends finish, write them in groups, renew the leases held, and
//! give back what was not tried when the time is up.
//!
//! The loop lives in plain sync code and enters the runtime only to wait for the next
//! finished send, answer of the store or timer; the store is asked between those waits,
//! through a [`Link`] (`link.rs`): at once, or on the store's own thread once there is a
//! backlog (SQLite only).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use belfry_channels::{BoxFuture, Channel, Context, Message, Outcome, Pace};
use belfry_core::{Timestamp, instant_after};
use belfry_store::{Attempt, Claimed, Store};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::lane::{self, Lane};
use super::link::{Answer, Ask, ClaimArgs, Link};
use super::report::{DeliveryReport, Failure};
use crate::config::Config;

/// Rows claimed in one go, and the number queued in lanes below which more are claimed:
/// large claims keep the store's share of a delivery small, and the lanes stay fed while
/// the claimed rows are sent.
const CLAIM_BATCH: u32 = 1024;
const CLAIM_LOW: usize = 256;

/// Outcomes written in one transaction at most.
const RECORD_BATCH: usize = 1024;

/// The longest an outcome waits to be written with others.
const RECORD_DELAY: Duration = Duration::from_millis(10);

/// What a send future gives back: the row, its outcome, and how long it took.
type Sent = (Claimed, Outcome, Duration);

/// What lasts from one pass to the next: who this dispatcher is to the store, its claim
/// settings, and its lanes (their token buckets and pauses, and their channels, built once).
pub(crate) struct Core<'a> {
    pub config: &'a Config,
    pub owner: String,
    pub lease: Duration,
    pub digest_window: Duration,
    pub window_exempt: Vec<String>,
    /// Channels whose rows go in order (`Claim::in_order`): the pinger.
    pub in_order: Vec<String>,
    pub lanes: HashMap<String, Lane>,
}

/// One pass's own state.
struct Pass {
    deadline: Instant,
    report: DeliveryReport,
    /// The last claim found nothing due.
    drained: bool,
    /// A claim was asked and has not answered yet.
    claiming: bool,
    /// Rows being sent, or sent and not yet recorded: the rows whose leases to renew.
    flying: HashSet<i64>,
    /// Outcomes not yet written.
    unrecorded: Vec<(i64, Attempt, Duration)>,
    /// When the oldest of them came.
    unrecorded_since: Option<Instant>,
    /// Destinations that asked for a pause, and until when.
    pauses: Vec<(String, Timestamp)>,
}

impl<'a> Core<'a> {
    /// Sends due rows (only `ids`, if given) until none is due or `deadline`; see
    /// [`super::Dispatcher::pass`].
    pub fn pass(
        &mut self,
        rt: &tokio::runtime::Runtime,
        cx: &Context,
        store: &mut Store,
        ids: Option<&[i64]>,
        deadline: Instant,
    ) -> Result<DeliveryReport, belfry_store::Error> {
        let args = ClaimArgs {
            owner: self.owner.clone(),
            lease: self.lease,
            digest_window: self.digest_window,
            window_exempt: self.window_exempt.clone(),
            in_order: self.in_order.clone(),
            ids,
            limit: CLAIM_BATCH,
        };
        // The store's thread, if the pass starts one, lives in this scope: it borrows the store.
        std::thread::scope(|scope| {
            let mut link = Link::new(store, args);
            let mut p = Pass {
                deadline,
                report: DeliveryReport::default(),
                drained: false,
                claiming: false,
                flying: HashSet::new(),
                unrecorded: Vec::new(),
                unrecorded_since: None,
                pauses: Vec::new(),
            };
            self.run_pass(rt, cx, &mut link, &mut p, scope)?;
            link.close()?;
            Ok(p.report)
        })
    }

    fn run_pass<'s, 'p, 'scope>(
        &mut self,
        rt: &tokio::runtime::Runtime,
        cx: &Context,
        link: &mut Link<'s, 'p>,
        p: &mut Pass,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Result<(), belfry_store::Error>
    where
        's: 'scope,
        'p: 'scope,
    {
        let config = self.config;
        // Futures borrow only the configuration and the context, never `self`, so the lanes
        // can be updated while they run.
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Sent>> = FuturesUnordered::new();
        let renew_every = self.lease / 3;
        let mut next_renewal = instant_after(Instant::now(), renew_every);
        loop {
            while let Some(answer) = link.try_answer() {
                self.take_answer(answer, p, link, scope)?;
            }
            let now = Instant::now();
            if now >= p.deadline {
                break;
            }
            if !p.drained && !p.claiming && self.queued() < CLAIM_LOW {
                p.claiming = true;
                link.ask(Ask::Claim)?;
                if !link.is_threaded() {
                    continue;
                }
            }
            let wake = self.start_sends(&mut in_flight, p, config, cx, now);
            if in_flight.is_empty() && self.queued() == 0 && p.drained && !p.claiming {
                break;
            }
            let mut wake = wake.unwrap_or(p.deadline).min(p.deadline).min(next_renewal);
            if let Some(t) = p.unrecorded_since {
                wake = wake.min(t + RECORD_DELAY);
            }
            // The only place the runtime is entered while the pass runs: wait for sends to
            // finish (all those finished by then), for the store's thread to answer, or for
            // the next timer.
            let woke = rt.block_on(async {
                tokio::select! {
                    Some(first) = in_flight.next() => {
                        let mut batch = vec![first];
                        while let Some(Some(more)) = in_flight.next().now_or_never() {
                            batch.push(more);
                        }
                        Woke::Sent(batch)
                    }
                    Some(answer) = link.next_answer() => Woke::Answer(answer),
                    () = tokio::time::sleep_until(wake.into()) => Woke::Timer,
                }
            });
            match woke {
                Woke::Sent(done) => {
                    self.finish(p, done);
                    // A lane freed up, or rows of the same job and channel are now claimable.
                    p.drained = false;
                }
                Woke::Answer(answer) => self.take_answer(answer, p, link, scope)?,
                Woke::Timer => {}
            }
            // Outcomes are written in groups: when enough have gathered, when the oldest has
            // waited a few milliseconds, or when nothing else is being sent.
            if p.unrecorded.len() >= RECORD_BATCH
                || in_flight.is_empty()
                || p.unrecorded_since
                    .is_some_and(|t| t.elapsed() >= RECORD_DELAY)
            {
                self.flush(link, p)?;
            }
            if Instant::now() >= next_renewal {
                let held = self.held_ids(p);
                link.ask(Ask::Renew(held))?;
                next_renewal = instant_after(Instant::now(), renew_every);
            }
        }
        // Time is up. A claim still being made is waited for, so that its rows go back with
        // the others not tried. Requests still running end now too (each is bounded by the
        // same deadline) and are recorded as failed tries.
        while p.claiming {
            let answer = match link.try_answer() {
                Some(a) => a,
                None => match rt.block_on(link.next_answer()) {
                    Some(a) => a,
                    None => break,
                },
            };
            self.take_answer(answer, p, link, scope)?;
        }
        let untried: Vec<i64> = self
            .lanes
            .values_mut()
            .flat_map(|l| l.queue.drain(..))
            .map(|c| c.id)
            .collect();
        link.ask(Ask::Release(untried, None))?;
        let last: Vec<Sent> = rt.block_on(in_flight.collect());
        self.finish(p, last);
        self.flush(link, p)
    }

    /// Takes in what the store answered: claimed rows go to their lanes. A first claim with a
    /// backlog (at least [`CLAIM_LOW`] rows) moves the store's calls to a thread of their own
    /// for the rest of the pass (on SQLite); a pass of a few rows (a `belfry run`) starts no
    /// thread.
    fn take_answer<'s, 'p, 'scope>(
        &mut self,
        answer: Answer,
        p: &mut Pass,
        link: &mut Link<'s, 'p>,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Result<(), belfry_store::Error>
    where
        's: 'scope,
        'p: 'scope,
    {
        let claimed = match answer {
            Answer::Claimed(rows) => rows,
            Answer::Failed(e) => return Err(e),
        };
        p.claiming = false;
        p.drained = claimed.is_empty();
        if claimed.len() >= CLAIM_LOW {
            link.go_threaded(scope);
        }
        let config = self.config;
        for row in claimed {
            let lane = match self.lanes.get_mut(&row.channel) {
                Some(lane) => lane,
                None => self
                    .lanes
                    .entry(row.channel.clone())
                    .or_insert_with(|| new_lane(config, &row.channel)),
            };
            lane.queue.push_back(row);
        }
        Ok(())
    }

    fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }

    /// Every row this dispatcher holds: waiting in a lane, or being sent.
    fn held_ids(&self, p: &Pass) -> Vec<i64> {
        self.lanes
            .values()
            .flat_map(|l| l.queue.iter().map(|c| c.id))
            .chain(p.flying.iter().copied())
            .collect()
    }

    /// Starts every send the lanes allow now; returns when a waiting lane can go next.
    fn start_sends<'f>(
        &mut self,
        in_flight: &mut FuturesUnordered<BoxFuture<'f, Sent>>,
        p: &mut Pass,
        config: &'f Config,
        cx: &'f Context,
        now: Instant,
    ) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        for lane in self.lanes.values_mut() {
            while !lane.queue.is_empty() && lane.has_room() {
                if let Err(at) = lane.take(now) {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                    break;
                }
                let Some(row) = lane.queue.pop_front() else {
                    break;
                };
                lane.in_flight += 1;
                p.flying.insert(row.id);
                let channel = lane.channel.clone();
                let left = p.deadline.saturating_duration_since(now);
                in_flight.push(Box::pin(send_row(config, row, channel, cx, left)));
            }
        }
        wake
    }

    /// Takes note of finished sends: frees their lanes' slots, pauses lanes whose service
    /// named a time to wait, and keeps the outcomes for [`Core::flush`].
    fn finish(&mut self, p: &mut Pass, batch: Vec<Sent>) {
        let now = Timestamp::now();
        let config = self.config;
        for (row, outcome, elapsed) in batch {
            let Some(lane) = self.lanes.get_mut(&row.channel) else {
                continue;
            };
            lane.in_flight = lane.in_flight.saturating_sub(1);
            // Only a failure names its destination: no description is built per delivery.
            let destination = match (&outcome, &lane.channel) {
                (Outcome::Delivered, _) => String::new(),
                (_, Ok(ch)) => config.scrub(&ch.describe()).into_owned(),
                (_, Err(_)) => config
                    .channel(&row.channel)
                    .map(|c| c.describe())
                    .unwrap_or_default(),
            };
            // No secret value reaches the store or the terminal.
            let attempt = match lane::scrubbed(outcome, &config.secrets) {
                Outcome::Delivered => {
                    p.report.delivered.push(row.channel.clone());
                    Attempt::Delivered
                }
                Outcome::Retry { after, reason } => {
                    // A pass runs until nothing is due: the floor of the wait keeps a
                    // `Retry-After: 0` from making it a hammer.
                    let wait = lane::retry_wait(after, row.attempts);
                    let at = now + wait;
                    if after.is_some() {
                        // The service named a time: the whole destination waits for it.
                        lane.paused_until = Some(instant_after(Instant::now(), wait));
                        p.pauses.push((row.channel.clone(), at));
                    }
                    p.report.failed.push(Failure {
                        row: row.id,
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: Some(at),
                    });
                    Attempt::Retry { at, reason }
                }
                Outcome::Permanent { reason } => {
                    p.report.failed.push(Failure {
                        row: row.id,
                        channel: row.channel.clone(),
                        destination,
                        reason: reason.clone(),
                        retry_at: None,
                    });
                    Attempt::Permanent { reason }
                }
            };
            p.unrecorded.push((row.id, attempt, elapsed));
            p.unrecorded_since.get_or_insert_with(Instant::now);
        }
    }

    /// Writes the outcomes noted so far in one transaction, then gives back the rows queued
    /// for destinations that asked for a pause, due when the pause ends. (Asked in turn of
    /// the store: the rows count as settled here once asked, since later asks come after.)
    fn flush(&mut self, link: &mut Link<'_, '_>, p: &mut Pass) -> Result<(), belfry_store::Error> {
        if !p.unrecorded.is_empty() {
            let outcomes = std::mem::take(&mut p.unrecorded);
            for (id, _, _) in &outcomes {
                p.flying.remove(id);
            }
            link.ask(Ask::Record(outcomes))?;
        }
        p.unrecorded_since = None;
        for (channel, until) in std::mem::take(&mut p.pauses) {
            if let Some(lane) = self.lanes.get_mut(&channel) {
                let ids: Vec<i64> = lane.queue.drain(..).map(|c| c.id).collect();
                link.ask(Ask::Release(ids, Some(until)))?;
            }
        }
        Ok(())
    }
}

/// What ended a wait of the pass.
enum Woke {
    Sent(Vec<Sent>),
    Answer(Answer),
    Timer,
}

/// A lane for the channel named `name`: its pace as the channel says, with the
/// configuration's overrides.
fn new_lane(config: &Config, name: &str) -> Lane {
    let channel = build_channel(config, name);
    let pace = channel.as_ref().map_or(Pace::default(), |c| c.pace());
    let pace = match config.channel(name) {
        Some(c) => c.pace.apply(pace),
        None => pace,
    };
    Lane::new(channel, pace)
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

async fn send_row(
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
    let outcome = lane::attempt(&*ch, &msg, cx, left, "; left for a later attempt").await;
    (row, outcome, t.elapsed())
}
