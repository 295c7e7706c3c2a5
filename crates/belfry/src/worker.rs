//! belfry's two threads in a program: the worker, which alone owns the store and records
//! what the queue brings, and the delivery thread, which sends the notifications the worker
//! made; and [`Shared`], what the client and both threads hold in common. `Shared` lives here
//! rather than in the client so that the threads need nothing of the client: the client starts
//! them and uses them, never the other way round.
//!
//! The worker wakes when the queue is full, when asked (a flush, a panic), and every
//! [`TICK`] otherwise; it takes what is queued, collapses consecutive events of a job in one
//! state into one record with an exact count, and applies the alert rules in the store. It
//! remembers, per job, how many events the rules held back since the last message (inside
//! `repeat_failures_after`), and tells that count in the next message about the job, or in a
//! digest of its own once the window has passed, or at the flush: over a job's messages, the
//! counts add up to its events. It remembers at most [`JOB_MEMORY`] jobs (see
//! `Worker::make_room`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use belfry_core::{
    Decision, Digest, Event, JobSnapshot, Notification, Policy, Reason, Route, State, Timestamp,
    instant_after,
};
use belfry_store::{RunEnd, Store};

use crate::config::Config;
use crate::dispatch::{Dispatcher, Waker};
use crate::item::{Item, JobOptions, Record};
use crate::queue::{Batch, Queue, Unit};
use crate::sampler::Sampler;
use crate::threads::mark_belfry_thread;

/// How long the worker sleeps when nothing wakes it.
pub const TICK: Duration = Duration::from_millis(100);

/// The most items the worker takes from the ring in one go.
const TAKE: usize = 4096;

/// The most jobs the worker remembers (see [`Worker::make_room`]): a program that names a job
/// per customer or per file must not grow without bound.
const JOB_MEMORY: usize = 4096;

/// How often the worker tries to open a store it could not open.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// A request to the worker.
pub(crate) enum Control {
    /// Record everything queued, send the held-back counts, and answer.
    Flush(mpsc::Sender<RecordOutcome>),
    /// Record everything queued, then this item, and answer.
    Sync(Item, mpsc::Sender<()>),
    /// The last handle is gone: record what is queued and stop.
    Shutdown,
}

/// What the worker answers to a flush.
#[derive(Debug, Default)]
pub(crate) struct RecordOutcome {
    pub store_error: Option<String>,
    /// Events still in memory (the store could not be opened).
    pub unrecorded: u64,
}

/// Everything the client and its threads share.
pub(crate) struct Shared {
    pub queue: Queue,
    pub control: mpsc::Sender<Control>,
    pub config: Config,
    pub home: PathBuf,
    pub quiet: bool,
    pub flush_timeout: Duration,
    pub counters: Counters,
    pub delivery: Arc<Delivery>,
    /// Why `init` fell back to the console, if it did.
    pub init_error: Option<String>,
    /// Whether a problem has been printed already (one line per kind of problem).
    pub said: Mutex<Vec<&'static str>>,
    /// The tracing layer's per-thread counts of storm events it did not format.
    pub samplers: thread_local::ThreadLocal<Mutex<Sampler>>,
}

impl Shared {
    /// Says something on standard error once per `kind`, unless the client is quiet. belfry's
    /// own problems (an alert that may be lost) must reach a person, and the program's logs
    /// may be the thing being watched, so belfry does not log them through `tracing`.
    #[allow(clippy::print_stderr)]
    pub fn say_once(&self, kind: &'static str, msg: &str) {
        if self.quiet {
            return;
        }
        let mut said = self.said.lock().unwrap_or_else(PoisonError::into_inner);
        if said.contains(&kind) {
            return;
        }
        said.push(kind);
        eprintln!("belfry: {msg}");
    }

    /// Where this client's store is (`[store] url`, or the state directory's file).
    pub fn store_location(&self) -> belfry_store::Location {
        self.config.store_location(&self.home)
    }
}

/// The counters every client keeps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Events the worker took (collapsed ones counted one by one).
    pub received: AtomicU64,
    /// Events that arrived folded into another one because the queue was full.
    pub collapsed: AtomicU64,
    /// Events recorded in the store (alert rules applied).
    pub recorded: AtomicU64,
    /// Notifications made (each goes to one or more channels).
    pub notifications: AtomicU64,
    /// Events lost: the overflow was full, or the store refused them.
    pub lost: AtomicU64,
    /// The last store error, for reports.
    pub store_error: Mutex<Option<String>>,
}

/// Starts the worker and the delivery thread.
pub(crate) fn start(shared: Arc<Shared>, control: mpsc::Receiver<Control>) -> std::io::Result<()> {
    let for_delivery = shared.clone();
    std::thread::Builder::new()
        .name("belfry-delivery".into())
        .spawn(move || deliver_loop(&for_delivery))?;
    let for_worker = shared.clone();
    let t = std::thread::Builder::new()
        .name("belfry-worker".into())
        .spawn(move || {
            mark_belfry_thread();
            Worker::new(for_worker).run(&control);
        })?;
    shared.queue.set_worker(t.thread().clone());
    Ok(())
}

/// What the worker remembers about a job.
#[derive(Debug, Default)]
struct JobMemory {
    /// Events recorded since the last message that no message has counted yet.
    pending: u64,
    /// Whether those are problems (else OK).
    pending_problem: bool,
    /// The first of them: when, and its error.
    first_at: Option<Timestamp>,
    first_error: Option<String>,
    /// The last of them, for a digest of its own, and the job's snapshot before it.
    last: Option<Event>,
    last_previous: Option<JobSnapshot>,
    /// The rules' memory after the last record (problem announced, last message time).
    snapshot: Option<JobSnapshot>,
    /// The details of the job's last formatted event, for count-only records.
    template: Option<belfry_core::Details>,
    /// The policy and channel list last used for the job.
    policy: Policy,
    opts: Option<&'static JobOptions>,
    /// When the worker last touched it (its own count), to forget the least recent first.
    seen: u64,
}

impl JobMemory {
    fn forget_pending(&mut self) {
        self.pending = 0;
        self.first_at = None;
        self.first_error = None;
        self.last = None;
        self.last_previous = None;
    }
}

struct Worker {
    shared: Arc<Shared>,
    store: Option<Store>,
    last_open_try: Option<Instant>,
    jobs: HashMap<String, JobMemory>,
    /// At most this many entries in `jobs` ([`JOB_MEMORY`]; smaller in tests).
    job_memory: usize,
    /// Counts touches of `jobs`, for [`JobMemory::seen`].
    touches: u64,
    host: String,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        Worker {
            shared,
            store: None,
            last_open_try: None,
            jobs: HashMap::new(),
            job_memory: JOB_MEMORY,
            touches: 0,
            host: crate::host::host_name(),
        }
    }

    fn run(mut self, control: &mpsc::Receiver<Control>) {
        self.open_store();
        loop {
            self.shared.queue.clear_kick();
            let mut stop = false;
            while let Ok(c) = control.try_recv() {
                match c {
                    Control::Flush(reply) => {
                        self.drain_all();
                        self.sweep();
                        self.send_held_back(true);
                        let _ = reply.send(RecordOutcome {
                            store_error: self.store_error(),
                            unrecorded: if self.store.is_some() {
                                0
                            } else {
                                self.shared.queue.waiting()
                            },
                        });
                    }
                    Control::Sync(item, reply) => {
                        self.drain_all();
                        let mut batch = Batch::default();
                        batch.push_item(item);
                        self.apply(batch);
                        let _ = reply.send(());
                    }
                    Control::Shutdown => stop = true,
                }
            }
            if stop {
                self.drain_all();
                self.sweep();
                self.send_held_back(true);
                self.shared.delivery.stop();
                return;
            }
            self.drain_once();
            // The sampler's counts follow the formatted events they continue: only once the
            // queue is empty.
            if !self.shared.queue.has_work() {
                self.sweep();
            }
            self.send_held_back(false);
            if !self.shared.queue.has_work() {
                std::thread::park_timeout(TICK);
            }
        }
    }

    fn store_error(&self) -> Option<String> {
        if self.store.is_some() {
            return None;
        }
        self.shared
            .counters
            .store_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn note_error(&self, kind: &'static str, msg: String) {
        self.shared.say_once(kind, &msg);
        *self
            .shared
            .counters
            .store_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(msg);
    }

    fn open_store(&mut self) -> bool {
        if self.store.is_some() {
            return true;
        }
        if self
            .last_open_try
            .is_some_and(|t| t.elapsed() < REOPEN_EVERY)
        {
            return false;
        }
        self.last_open_try = Some(Instant::now());
        match Store::open(self.shared.store_location()) {
            Ok(mut store) => {
                // As every belfry process does when it opens the store: runs whose watcher
                // is gone are recorded as crashed.
                if let Ok(recs) = crate::runs::reap_crashed(&mut store, &self.shared.config) {
                    let ids: Vec<i64> = recs.into_iter().flat_map(|r| r.outbox_ids).collect();
                    self.shared.delivery.add(ids);
                }
                self.store = Some(store);
                *self
                    .shared
                    .counters
                    .store_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                true
            }
            Err(e) => {
                self.note_error(
                    "open",
                    format!(
                        "cannot open the store ({e}); events wait in memory (collapsed per job) \
                         and belfry retries every second"
                    ),
                );
                false
            }
        }
    }

    /// Takes one batch from the queue and records it. Returns whether there was anything.
    fn drain_once(&mut self) -> bool {
        // Without a store the events stay queued (and collapse when the ring is full).
        if !self.open_store() {
            return false;
        }
        let mut batch = Batch::default();
        let (n, overflow) = self.shared.queue.take(&mut batch, TAKE);
        if let Some((collapsed, lost)) = overflow {
            let c = &self.shared.counters;
            c.collapsed.fetch_add(collapsed, Ordering::Relaxed);
            c.lost.fetch_add(lost, Ordering::Relaxed);
            if lost > 0 {
                self.shared.say_once(
                    "lost",
                    &format!(
                        "{lost} events lost: belfry's queue and overflow were full (the count \
                         is kept and reported when the program ends)"
                    ),
                );
            }
        }
        if n == 0 && batch.is_empty() {
            return false;
        }
        self.apply(batch);
        true
    }

    /// Records everything queued now (a storm that goes on while this runs is left for the
    /// next round: the loop ends after a bounded number of batches).
    fn drain_all(&mut self) {
        for _ in 0..256 {
            if !self.drain_once() && !self.shared.queue.has_work() {
                return;
            }
        }
    }

    /// Collects the events the tracing layer counted without formatting.
    fn sweep(&mut self) {
        if self.store.is_none() {
            return;
        }
        let mut counted = Vec::new();
        for s in self.shared.samplers.iter() {
            s.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(&mut counted);
        }
        if counted.is_empty() {
            return;
        }
        let mut batch = Batch::default();
        for r in counted {
            batch.push_item(Item::Event(r));
        }
        self.apply(batch);
    }

    fn apply(&mut self, batch: Batch) {
        for (job, units) in batch.jobs {
            for unit in units {
                match unit {
                    Unit::Events {
                        first,
                        last,
                        count,
                        until,
                    } => {
                        self.shared
                            .counters
                            .received
                            .fetch_add(count, Ordering::Relaxed);
                        self.apply_events(&job, first, last, count, until);
                    }
                    Unit::Other(item) => self.apply_other(item),
                }
            }
        }
    }

    fn policy_for(&self, job: &str, opts: Option<&'static JobOptions>) -> Policy {
        let mut p = self.shared.config.policy_for(job);
        if let Some(o) = opts {
            if let Some(d) = o.repeat_failures_after {
                p.repeat_failures_after = d;
            }
            if let Some(h) = o.ok_heartbeat_after {
                p.ok_heartbeat_after = h;
            }
        }
        p
    }

    /// The event for a record: a count-only record (events a storm's sampler did not
    /// format) takes the details of the job's last formatted event.
    fn event_for(&self, job: &str, record: &Record, at: Timestamp) -> Event {
        let mut event = record.to_event(&self.host);
        event.at = at;
        if record.count_only
            && let Some(t) = self.jobs.get(job).and_then(|m| m.template.as_ref())
        {
            event.details.error.clone_from(&t.error);
            event.details.fields.clone_from(&t.fields);
        }
        event
    }

    /// `count` consecutive events of `job` in one state, the last at `until`: recorded as
    /// one (or, under a `fail_threshold`, as many as the threshold needs), with the count
    /// told in the message.
    fn apply_events(
        &mut self,
        job: &str,
        first: Record,
        last: Option<Box<Record>>,
        count: u64,
        until: Timestamp,
    ) {
        let state = first.state;
        let opts = first.opts;
        let policy = self.policy_for(job, opts);
        let problem = state.is_problem();
        {
            let mem = self.memory(job);
            mem.policy = policy.clone();
            mem.opts = opts;
        }
        // Problems held back and now followed by an OK: their count goes out first, so that
        // it is not lost in the recovery.
        let switching = self
            .jobs
            .get(job)
            .is_some_and(|m| m.pending > 0 && m.pending_problem != problem);
        if switching {
            self.send_digest(job);
            if let Some(m) = self.jobs.get_mut(job) {
                m.forget_pending();
            }
        }
        let newest = last.as_deref().unwrap_or(&first);
        if !problem && state != State::Ok {
            // Neutral or in progress: nothing for the rules to count.
            let event = self.event_for(job, newest, until);
            self.record_one(job, event, &policy, opts, count);
            return;
        }
        // Under a threshold of N problems in a row, the rules must see N of them.
        let steps = if problem {
            count.min(u64::from(policy.fail_threshold.max(1)))
        } else {
            1
        };
        let first_error = self.event_for(job, &first, first.at).details.error;
        let first_at = first.at;
        for step in 1..=steps {
            let covers = if step < steps { 1 } else { count - (steps - 1) };
            let mut event = if step == steps {
                self.event_for(job, newest, until)
            } else {
                self.event_for(job, &first, first.at)
            };
            let mem = self.memory(job);
            if !(step == steps && newest.count_only) {
                mem.template = Some(event.details.clone());
            }
            let total = mem.pending + covers;
            if total > 1 {
                let from = mem.first_error.clone().or_else(|| first_error.clone());
                event.details.digest = Some(Digest {
                    count: total,
                    states: Vec::new(),
                    first: mem.first_at.unwrap_or(first_at),
                    first_error: from.filter(|f| Some(f) != event.details.error.as_ref()),
                });
            }
            self.record_one(job, event, &policy, opts, covers);
        }
    }

    /// Records one event that stands for `covers` events, and updates the job's memory.
    fn record_one(
        &mut self,
        job: &str,
        event: Event,
        policy: &Policy,
        opts: Option<&'static JobOptions>,
        covers: u64,
    ) {
        let Some(store) = self.store.as_mut() else {
            self.shared
                .counters
                .lost
                .fetch_add(covers, Ordering::Relaxed);
            return;
        };
        let shared = &self.shared;
        let n = u32::try_from(covers).unwrap_or(u32::MAX);
        let result = store.record_events(
            &event,
            n,
            policy,
            |st, rec| route(&shared.config, shared, job, st, rec, opts),
            &shared.config.limits(),
        );
        match result {
            Ok(rec) => {
                let shared = self.shared.clone();
                let c = &shared.counters;
                c.recorded.fetch_add(covers, Ordering::Relaxed);
                let mem = self.memory(job);
                mem.snapshot = rec.next;
                if rec.decision.notify {
                    c.notifications.fetch_add(1, Ordering::Relaxed);
                    mem.forget_pending();
                    shared.delivery.add(rec.outbox_ids);
                } else if matches!(event.state.class(), belfry_core::Class::Ok)
                    || event.state.is_problem()
                {
                    if mem.pending == 0 {
                        mem.first_at =
                            Some(event.details.digest.as_ref().map_or(event.at, |g| g.first));
                        mem.first_error = event
                            .details
                            .digest
                            .as_ref()
                            .and_then(|g| g.first_error.clone())
                            .or_else(|| event.details.error.clone());
                    }
                    mem.pending += covers;
                    mem.pending_problem = event.state.is_problem();
                    mem.last = Some(event);
                    mem.last_previous = rec.previous;
                }
            }
            Err(e) => {
                self.shared
                    .counters
                    .lost
                    .fetch_add(covers, Ordering::Relaxed);
                self.note_error(
                    "record",
                    format!("could not record an event of {job}: {e} (counted as lost)"),
                );
            }
        }
    }

    /// The job's memory, made if new (room is made first when the worker is full).
    fn memory(&mut self, job: &str) -> &mut JobMemory {
        if !self.jobs.contains_key(job) {
            if self.jobs.len() >= self.job_memory {
                self.make_room();
            }
            self.jobs.insert(job.to_owned(), JobMemory::default());
        }
        self.touches += 1;
        let mem = self.jobs.get_mut(job).expect("inserted above");
        mem.seen = self.touches;
        mem
    }

    /// Keeps the worker's memory bounded. Announced problems held back are sent now as their
    /// digests (early rather than never); then jobs with nothing held back are forgotten: the
    /// store keeps their rules' state, and their next event makes them anew. If that leaves
    /// more than half the room taken, the least recently seen are forgotten too, and what
    /// they held back (OK events not yet told, problems still under `fail_threshold`) is no
    /// longer counted in their next message; the events themselves were recorded.
    fn make_room(&mut self) {
        self.send_held_back(true);
        self.jobs.retain(|_, m| m.pending > 0);
        let keep = self.job_memory / 2;
        if self.jobs.len() > keep {
            let mut seen: Vec<u64> = self.jobs.values().map(|m| m.seen).collect();
            let cut = seen.len() - keep;
            let (_, &mut oldest_kept, _) = seen.select_nth_unstable(cut);
            self.jobs.retain(|_, m| m.seen >= oldest_kept);
        }
    }

    /// Sends the count of problems held back since the last message, as a digest: for every
    /// job whose window has passed, or (`all`) every job, as a program's end requires.
    fn send_held_back(&mut self, all: bool) {
        let now = Timestamp::now();
        let due: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, m)| m.pending > 0 && m.pending_problem)
            .filter(|(_, m)| {
                // Only problems already announced: one held back under `fail_threshold` is
                // not an alert yet.
                m.snapshot.as_ref().is_some_and(|s| s.problem_notified)
            })
            .filter(|(_, m)| {
                all || m
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.last_notified_at)
                    .is_none_or(|t| now.since(t) >= m.policy.repeat_failures_after)
            })
            .map(|(j, _)| j.clone())
            .collect();
        for job in due {
            self.send_digest(&job);
        }
    }

    /// Sends the job's held-back problems as one message, outside the rules (they have said
    /// yes already: it is the count of an announced problem).
    fn send_digest(&mut self, job: &str) {
        let Some(mem) = self.jobs.get_mut(job) else {
            return;
        };
        if mem.pending == 0 || !mem.pending_problem {
            return;
        }
        let Some(mut event) = mem.last.take() else {
            return;
        };
        if !mem.snapshot.as_ref().is_some_and(|s| s.problem_notified) {
            // Not announced: under the threshold; nothing to tell.
            mem.forget_pending();
            return;
        }
        event.details.digest = Some(Digest {
            count: mem.pending,
            states: Vec::new(),
            first: mem.first_at.unwrap_or(event.at),
            first_error: mem
                .first_error
                .clone()
                .filter(|f| Some(f) != event.details.error.as_ref()),
        });
        let covers = mem.pending;
        let snapshot = mem.snapshot.clone();
        let before = mem.last_previous.clone();
        let opts = mem.opts;
        mem.forget_pending();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let since_last = snapshot
            .as_ref()
            .and_then(|s| s.last_notified_at)
            .map_or(Duration::ZERO, |t| event.at.since(t));
        let decision = Decision {
            notify: true,
            reason: Reason::Repeated {
                count: snapshot.as_ref().map_or(1, |s| s.consecutive_problems),
                since_last,
            },
        };
        // The message describes the last event held back: the state before it is the one
        // its snapshot had, and the problems in a row are those counted after it.
        let mut n = Notification::new(belfry_store::new_id(), &event, before.as_ref(), &decision);
        if let Some(s) = &snapshot {
            n.consecutive_problems = s.consecutive_problems;
        }
        let channels = route(
            &self.shared.config,
            &self.shared,
            job,
            &event.state,
            false,
            opts,
        );
        match store.record_notification(&n, channels, true, &self.shared.config.limits()) {
            Ok(ids) => {
                self.shared
                    .counters
                    .notifications
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(m) = self.jobs.get_mut(job)
                    && let Some(s) = m.snapshot.as_mut()
                {
                    s.last_notified_at = Some(s.last_notified_at.map_or(n.time, |t| t.max(n.time)));
                }
                self.shared.delivery.add(ids);
            }
            Err(e) => {
                self.shared
                    .counters
                    .lost
                    .fetch_add(covers, Ordering::Relaxed);
                self.note_error(
                    "record",
                    format!("could not record the digest of {job}: {e} ({covers} events lost)"),
                );
            }
        }
    }

    fn apply_other(&mut self, item: Item) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let shared = self.shared.clone();
        let result = match item {
            Item::Event(_) => unreachable!("events come as units"),
            Item::RunStart(start) => store.start_run(&start).map(|()| Vec::new()),
            Item::RunEnd(event) => {
                let end = RunEnd {
                    event: &event,
                    output: None,
                    output_bytes: 0,
                };
                crate::runs::record_run(store, &shared.config, &end, false).map(|rec| {
                    shared.counters.recorded.fetch_add(1, Ordering::Relaxed);
                    if rec.decision.notify {
                        shared
                            .counters
                            .notifications
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    rec.outbox_ids
                })
            }
            Item::Message(n) => {
                let channels = shared.config.route(&n.job, &n.state, false);
                let limits = shared.config.limits();
                store
                    .record_notification(&n, channels, false, &limits)
                    .inspect(|_| {
                        shared
                            .counters
                            .notifications
                            .fetch_add(1, Ordering::Relaxed);
                    })
            }
        };
        match result {
            Ok(ids) => shared.delivery.add(ids),
            Err(e) => {
                shared.counters.lost.fetch_add(1, Ordering::Relaxed);
                self.note_error("record", format!("could not record: {e} (counted as lost)"));
            }
        }
    }
}

/// The channels for a notification about `job`: as configured, or only those a watched
/// function named (unknown names are reported once, and if none is known the configured
/// routing applies, so that a typo does not silence the job).
fn route(
    config: &Config,
    shared: &Shared,
    job: &str,
    state: &State,
    recovered: bool,
    opts: Option<&'static JobOptions>,
) -> Vec<String> {
    let names = opts.map_or(&[][..], |o| o.channels);
    let (chosen, only) = route_with(config, shared, job, state, recovered, names);
    // An alert no channel takes would go nowhere in silence: say why, once.
    if chosen.is_empty() {
        let msg = config.no_channel_message(job, state, recovered, only.as_deref());
        shared.say_once("no-channel", &msg);
    }
    chosen
}

/// [`route`]'s choice, and the channel list that replaced the job's own, if any.
fn route_with(
    config: &Config,
    shared: &Shared,
    job: &str,
    state: &State,
    recovered: bool,
    names: &[&str],
) -> (Vec<String>, Option<Vec<String>>) {
    if names.is_empty() {
        return (config.route(job, state, recovered), None);
    }
    let known: Vec<String> = names
        .iter()
        .filter(|n| config.channel(n).is_some())
        .map(|n| (*n).to_owned())
        .collect();
    if known.len() < names.len() {
        let unknown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| config.channel(n).is_none())
            .collect();
        shared.say_once(
            "unknown-channel",
            &format!(
                "{job} names channels that are not configured: {} (configured: {}){}",
                unknown.join(", "),
                config
                    .channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if known.is_empty() {
                    "; its alerts go to the configured channels"
                } else {
                    ""
                }
            ),
        );
    }
    if known.is_empty() {
        return (config.route(job, state, recovered), None);
    }
    let chosen = Route::select(
        config.channels.iter().map(|c| &c.route),
        job,
        state,
        recovered,
        Some(&known),
    )
    .into_iter()
    .map(str::to_owned)
    .collect();
    (chosen, Some(known))
}

// ---- delivery ----

/// The delivery thread's inbox.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    state: Mutex<DeliveryState>,
    wake: Condvar,
    answered: Condvar,
    /// Wakes the dispatcher when it sleeps inside a flush (waiting for a retry to fall due),
    /// so that rows added meanwhile go out without waiting for that retry.
    dispatcher: Waker,
}

#[derive(Debug, Default)]
struct DeliveryState {
    /// Outbox rows the worker made since the thread last looked.
    new_rows: Vec<i64>,
    /// A flush waiting for an answer: until when.
    flush: Option<Instant>,
    /// Flushes asked for so far, and the number of the last one answered: two threads
    /// flushing at once both get an answer.
    asked: u64,
    answered: u64,
    /// The last answer.
    answer: Option<DeliveryOutcome>,
    stop: bool,
}

/// What the delivery thread answers to a flush.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeliveryOutcome {
    pub delivered: u64,
    pub pending: usize,
    pub dead: usize,
    pub dead_reasons: Vec<String>,
    pub error: Option<String>,
}

impl Delivery {
    fn lock(&self) -> std::sync::MutexGuard<'_, DeliveryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands new outbox rows to the delivery thread.
    pub fn add(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        self.lock().new_rows.extend(ids);
        self.wake.notify_all();
        self.dispatcher.wake();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }

    /// Asks the delivery thread to deliver this client's rows until they are all delivered
    /// or dead, or until `deadline`, and waits for its answer.
    pub fn flush(&self, deadline: Instant) -> DeliveryOutcome {
        let mut st = self.lock();
        st.asked += 1;
        let mine = st.asked;
        st.flush = Some(st.flush.map_or(deadline, |d| d.max(deadline)));
        self.wake.notify_all();
        // A little grace past the deadline for the thread to count and answer.
        let until = instant_after(deadline, Duration::from_millis(500));
        loop {
            if st.answered >= mine
                && let Some(a) = &st.answer
            {
                return a.clone();
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return DeliveryOutcome {
                    error: Some("the delivery thread did not answer in time".into()),
                    pending: st.new_rows.len(),
                    ..DeliveryOutcome::default()
                };
            }
            st = self
                .answered
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The delivery thread: sends this client's outbox rows through the [`Dispatcher`], as
/// `belfry deliver` does (leases, retries with backoff, `Retry-After`), with its own
/// connection to the store. Rows other processes made are theirs to send (`belfry deliver`,
/// the background drain).
fn deliver_loop(shared: &Shared) {
    mark_belfry_thread();
    let delivery = &shared.delivery;
    let config = &shared.config;
    let mut dispatcher = Dispatcher::with_waker(config, delivery.dispatcher.clone());
    let mut store: Option<Store> = None;
    let mut ours: Vec<i64> = Vec::new();
    let mut outcome = DeliveryOutcome::default();
    let mut next_look: Option<Instant> = None;
    loop {
        let (flush, stop) = {
            let mut st = delivery.lock();
            loop {
                if st.stop || st.flush.is_some() || !st.new_rows.is_empty() {
                    break;
                }
                if next_look.is_some_and(|t| t <= Instant::now()) {
                    break;
                }
                let wait = next_look.map_or(Duration::from_secs(3600), |t| {
                    t.saturating_duration_since(Instant::now())
                });
                st = delivery
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            ours.append(&mut st.new_rows);
            (st.flush.map(|d| (d, st.asked)), st.stop)
        };
        if stop && flush.is_none() {
            return;
        }
        if ours.is_empty() && flush.is_none() {
            next_look = None;
            continue;
        }
        if store.is_none() {
            match Store::open(shared.store_location()) {
                Ok(s) => store = Some(s),
                Err(e) => outcome.error = Some(format!("cannot open the store to deliver: {e}")),
            }
        }
        let Some(st) = store.as_mut() else {
            next_look = Some(instant_after(Instant::now(), REOPEN_EVERY));
            if let Some((_, asked)) = flush {
                answer(delivery, &outcome, ours.len(), asked);
            }
            continue;
        };
        outcome.error = None;
        let until = flush.map_or_else(
            || instant_after(Instant::now(), config.delivery.wait),
            |(d, _)| d,
        );
        if flush.is_some() {
            // A flush sends at once what the digest window would hold: it is asked for when
            // more events are not coming (the program's end), so there is nothing left to
            // fold in. Rows held by the window wait no more (their hold was written when a
            // pass met them; the window here is zero so that none is held again).
            dispatcher.set_digest_window(Duration::ZERO);
            if let Err(e) = dispatcher.expedite(st, &ours) {
                outcome.error = Some(format!("delivery failed: {e}"));
            }
        } else {
            dispatcher.set_digest_window(config.delivery.digest_window);
        }
        loop {
            send_due(&mut dispatcher, st, &mut ours, &mut outcome, until);
            if flush.is_none() || ours.is_empty() {
                break;
            }
            // A flush waits for retries that fall due before its deadline.
            let due = st.next_due().ok().flatten();
            let wait = due.map_or(Duration::from_millis(200), |t| {
                t.since(Timestamp::now()).max(crate::dispatch::MIN_POLL)
            });
            if instant_after(Instant::now(), wait) >= until {
                break;
            }
            dispatcher.sleep(wait);
            ours.append(&mut delivery.lock().new_rows);
        }
        next_look = if ours.is_empty() {
            None
        } else {
            let due = st.next_due().ok().flatten();
            Some(
                Instant::now()
                    + due.map_or(crate::drain::DRAIN_TICK, |t| {
                        t.since(Timestamp::now())
                            .clamp(Duration::from_millis(50), crate::drain::DRAIN_TICK)
                    }),
            )
        };
        if let Some((_, asked)) = flush {
            answer(delivery, &outcome, ours.len(), asked);
        }
    }
}

/// Answers the flushes asked for up to `asked`.
fn answer(delivery: &Delivery, outcome: &DeliveryOutcome, pending: usize, asked: u64) {
    let mut st = delivery.lock();
    if st.asked == asked {
        st.flush = None;
    }
    st.answered = asked;
    st.answer = Some(DeliveryOutcome {
        pending,
        ..outcome.clone()
    });
    delivery.answered.notify_all();
}

/// One pass: sends the due rows among `ours`, then forgets the rows that are delivered or
/// dead, counting them.
fn send_due(
    dispatcher: &mut Dispatcher<'_>,
    store: &mut Store,
    ours: &mut Vec<i64>,
    outcome: &mut DeliveryOutcome,
    until: Instant,
) {
    while !ours.is_empty() {
        if Instant::now() >= until {
            break;
        }
        match dispatcher.pass(store, Some(ours), until) {
            Ok(report) if report.delivered.is_empty() && report.failed.is_empty() => break,
            Ok(_) => {}
            Err(e) => {
                outcome.error = Some(format!("delivery failed: {e}"));
                break;
            }
        }
        let before = ours.len();
        forget_finished(store, ours, outcome);
        if ours.len() == before {
            // Claimed rows that failed and wait for their retry.
            break;
        }
    }
    forget_finished(store, ours, outcome);
}

fn forget_finished(store: &Store, ours: &mut Vec<i64>, outcome: &mut DeliveryOutcome) {
    ours.retain(|id| match store.outbox_row_status(*id) {
        Ok(Some((status, reason, _))) => match status.as_str() {
            "delivered" => {
                outcome.delivered += 1;
                false
            }
            "dead" => {
                outcome.dead += 1;
                if let Some(r) = reason
                    && outcome.dead_reasons.len() < 8
                {
                    outcome.dead_reasons.push(r);
                }
                false
            }
            _ => true,
        },
        // Purged by someone: nothing more to do for it.
        Ok(None) => false,
        Err(_) => true,
    });
}

#[cfg(test)]
mod tests;
