//! The hot path: a bounded lock-free ring from the program's threads to belfry's worker, and,
//! when the ring is full, an overflow that collapses events per job instead of dropping them.
//!
//! Pushing never blocks on I/O and never waits for the worker. While the ring has room a push
//! is one lock-free write. When it is full, the event goes to the overflow under a short lock
//! (no I/O is ever done under it): consecutive events of one job in one state become one
//! entry with an exact count, so a storm costs memory per job, not per event. Only when the
//! overflow itself holds [`OVERFLOW_UNITS`] entries is an event lost, and then it is counted.
//!
//! Order: the events of one thread reach the worker in the order they were pushed. While the
//! overflow is in use, every push goes to it (a flag says so), and the worker empties the ring
//! before it takes the overflow, so an overflowed event never overtakes an older one from the
//! ring.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;

use belfry_core::Timestamp;
use crossbeam_queue::ArrayQueue;

use crate::item::{Item, Record};

/// The most entries (collapsed runs of events, or other items) the overflow holds; past that,
/// events are counted as lost.
pub(crate) const OVERFLOW_UNITS: usize = 16 * 1024;

/// Consecutive events of one job, or another item, in the order they happened.
#[derive(Debug)]
pub(crate) enum Unit {
    /// `count` events in the same state: the first record and (if there were more) the last
    /// one with details, and when the last event happened.
    Events {
        first: Record,
        /// Boxed, and reused as later events replace it, so that a storm allocates nothing
        /// per event here. Never a count-only record.
        last: Option<Box<Record>>,
        count: u64,
        until: Timestamp,
    },
    /// Anything else, kept as it is.
    Other(Item),
}

impl Unit {
    pub fn of(item: Item) -> Unit {
        match item {
            Item::Event(r) => Unit::Events {
                count: r.count,
                until: r.at,
                first: r,
                last: None,
            },
            other => Unit::Other(other),
        }
    }

    /// Folds `next` into this unit if it continues it (same state, same options); gives it
    /// back otherwise.
    // Giving the unit back, by value, is the point: it is moved on, never copied twice.
    #[allow(clippy::result_large_err)]
    pub fn absorb(&mut self, next: Unit) -> Result<(), Unit> {
        match (self, next) {
            (
                Unit::Events {
                    first,
                    last,
                    count,
                    until,
                },
                Unit::Events {
                    first: n_first,
                    last: n_last,
                    count: n_count,
                    until: n_until,
                },
            ) if first.collapses_with(&n_first) => {
                *count += n_count;
                *until = (*until).max(n_until);
                let newest = match n_last {
                    Some(l) => Some(l),
                    None if n_first.count_only => None,
                    None => match last.as_mut() {
                        Some(slot) => {
                            **slot = n_first;
                            return Ok(());
                        }
                        None => Some(Box::new(n_first)),
                    },
                };
                if newest.is_some() {
                    *last = newest;
                }
                Ok(())
            }
            (_, next) => Err(next),
        }
    }
}

/// Units per job, each job's in order. Jobs are independent of each other, so their relative
/// order does not matter.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub jobs: HashMap<Cow<'static, str>, Vec<Unit>>,
    /// Entries in all jobs' lists.
    pub units: usize,
}

impl Batch {
    /// Appends `unit` to its job's list, folding it into the last entry when it continues it.
    /// With `limit`, refuses a new entry once `units` reaches it (and gives the unit back).
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, job: Cow<'static, str>, unit: Unit, limit: usize) -> Result<(), Unit> {
        if let Some(list) = self.jobs.get_mut(job.as_ref()) {
            let unit = match list.last_mut() {
                Some(last) => match last.absorb(unit) {
                    Ok(()) => return Ok(()),
                    Err(unit) => unit,
                },
                None => unit,
            };
            if self.units >= limit {
                return Err(unit);
            }
            list.push(unit);
        } else {
            if self.units >= limit {
                return Err(unit);
            }
            self.jobs.insert(job, vec![unit]);
        }
        self.units += 1;
        Ok(())
    }

    /// Appends an item.
    pub fn push_item(&mut self, item: Item) {
        let job = match &item {
            Item::Event(r) => r.job.clone(),
            other => Cow::Owned(other.job().to_owned()),
        };
        // No limit: the worker's own batches are bounded by what it takes from the ring.
        let _ = self.push(job, Unit::of(item), usize::MAX);
    }

    /// Appends another batch after this one (per job).
    pub fn append(&mut self, other: Batch) {
        for (job, units) in other.jobs {
            for u in units {
                let _ = self.push(job.clone(), u, usize::MAX);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.units == 0
    }
}

/// The overflow's contents and what it could not hold.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    pub batch: Batch,
    /// Events folded into an earlier entry.
    pub collapsed: u64,
    /// Events that found the overflow full.
    pub lost: u64,
}

impl Overflow {
    fn add(&mut self, item: Item) {
        let before = self.batch.units;
        let counted = match &item {
            Item::Event(r) => r.count,
            _ => 0,
        };
        let job = match &item {
            Item::Event(r) => r.job.clone(),
            other => Cow::Owned(other.job().to_owned()),
        };
        match self.batch.push(job, Unit::of(item), OVERFLOW_UNITS) {
            Ok(()) if self.batch.units == before => self.collapsed += counted,
            Ok(()) => {}
            Err(_) => self.lost += counted.max(1),
        }
    }
}

/// The queue shared by the program's threads and the worker.
pub(crate) struct Queue {
    ring: ArrayQueue<Item>,
    overflowing: AtomicBool,
    overflow: Mutex<Overflow>,
    /// Set by the first push that finds the ring full; cleared by the worker when it
    /// wakes. Keeps a storm from unparking the worker on every push.
    kicked: AtomicBool,
    worker: OnceLock<Thread>,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            ring: ArrayQueue::new(capacity.max(2)),
            overflowing: AtomicBool::new(false),
            overflow: Mutex::new(Overflow::default()),
            kicked: AtomicBool::new(false),
            worker: OnceLock::new(),
        }
    }

    /// Tells the queue which thread to wake.
    pub fn set_worker(&self, t: Thread) {
        let _ = self.worker.set(t);
    }

    fn lock(&self) -> MutexGuard<'_, Overflow> {
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` without waiting for anything but, when the ring is full, a short lock.
    pub fn push(&self, mut item: Item) {
        loop {
            if !self.overflowing.load(Ordering::Acquire) {
                match self.ring.push(item) {
                    // The worker looks every tick; a full ring wakes it at once (below).
                    Ok(()) => return,
                    Err(back) => {
                        let mut o = self.lock();
                        self.overflowing.store(true, Ordering::Release);
                        o.add(back);
                        drop(o);
                        self.kick();
                        return;
                    }
                }
            }
            let mut o = self.lock();
            // Checked again under the lock: the worker clears the flag while holding it.
            if self.overflowing.load(Ordering::Acquire) {
                o.add(item);
                return;
            }
            drop(o);
            // The worker has just emptied the overflow: the ring has room again.
            item = match self.ring.push(item) {
                Ok(()) => return,
                Err(back) => back,
            };
        }
    }

    /// Wakes the worker, once per wake-up.
    pub fn kick(&self) {
        // A load first: while the worker has not woken yet, a storm only reads the flag.
        if !self.kicked.load(Ordering::Acquire)
            && !self.kicked.swap(true, Ordering::AcqRel)
            && let Some(t) = self.worker.get()
        {
            t.unpark();
        }
    }

    /// Wakes the worker whether or not it was kicked already (control messages).
    pub fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// Called by the worker when it wakes up.
    pub fn clear_kick(&self) {
        self.kicked.store(false, Ordering::Release);
    }

    /// Takes up to `max` items from the ring into `batch`, then the overflow if it is in use
    /// and the ring is empty. Returns how many items came from the ring, and the overflow's
    /// counts.
    pub fn take(&self, batch: &mut Batch, max: usize) -> (usize, Option<(u64, u64)>) {
        let mut n = 0;
        while n < max {
            match self.ring.pop() {
                Some(item) => {
                    batch.push_item(item);
                    n += 1;
                }
                None => break,
            }
        }
        if n == max || !self.overflowing.load(Ordering::Acquire) {
            return (n, None);
        }
        let mut o = self.lock();
        // Whatever reached the ring after the flag was set came from a thread that had not
        // seen it yet: concurrent with the overflowed events, so either order is right. Take
        // it first, then the overflow, which holds only newer events of each thread.
        while let Some(item) = self.ring.pop() {
            batch.push_item(item);
            n += 1;
        }
        let taken = std::mem::take(&mut *o);
        self.overflowing.store(false, Ordering::Release);
        drop(o);
        let counts = (taken.collapsed, taken.lost);
        batch.append(taken.batch);
        (n, Some(counts))
    }

    /// Whether anything waits in the ring or the overflow.
    pub fn has_work(&self) -> bool {
        !self.ring.is_empty() || self.overflowing.load(Ordering::Acquire)
    }

    /// Events waiting (the ring's items and the overflow's counted events), for reports.
    pub fn waiting(&self) -> u64 {
        let o = self.lock();
        let in_overflow: u64 = o
            .batch
            .jobs
            .values()
            .flatten()
            .map(|u| match u {
                Unit::Events { count, .. } => *count,
                Unit::Other(_) => 1,
            })
            .sum();
        self.ring.len() as u64 + in_overflow
    }
}

#[cfg(test)]
mod tests {
    use belfry_core::State;

    use super::*;

    fn ev(job: &'static str, state: State, n: i64) -> Item {
        Item::Event(Record::new(
            Cow::Borrowed(job),
            state,
            Timestamp::from_millis(n),
        ))
    }

    fn units(batch: &Batch, job: &str) -> Vec<(State, u64, i64, i64)> {
        batch.jobs[job]
            .iter()
            .map(|u| match u {
                Unit::Events {
                    first,
                    count,
                    until,
                    ..
                } => (first.state, *count, first.at.as_millis(), until.as_millis()),
                Unit::Other(_) => (State::Running, 0, 0, 0),
            })
            .collect()
    }

    #[test]
    fn a_full_ring_collapses_per_job_and_state_with_exact_counts_and_order() {
        let q = Queue::new(4);
        let mut n = 0;
        let mut push = |job, st| {
            n += 1;
            q.push(ev(job, st, n));
        };
        for _ in 0..4 {
            push("a", State::Ok);
        }
        // The ring is full from here on.
        for _ in 0..1000 {
            push("a", State::Failed);
        }
        push("b", State::Failed);
        push("a", State::Ok);
        for _ in 0..10 {
            push("a", State::Failed);
        }
        let mut batch = Batch::default();
        let (from_ring, counts) = q.take(&mut batch, 100);
        assert_eq!(from_ring, 4);
        let (collapsed, lost) = counts.expect("the overflow was in use");
        assert_eq!(lost, 0);
        // a: 1000 + 10 failures in two entries, b: one.
        assert_eq!(collapsed, 999 + 9);
        assert_eq!(
            units(&batch, "a"),
            [
                (State::Ok, 4, 1, 4),
                (State::Failed, 1000, 5, 1004),
                (State::Ok, 1, 1006, 1006),
                (State::Failed, 10, 1007, 1016),
            ]
        );
        assert_eq!(units(&batch, "b"), [(State::Failed, 1, 1005, 1005)]);
        // The overflow is released: the next push goes to the ring again.
        q.push(ev("a", State::Ok, 2000));
        let mut next = Batch::default();
        assert_eq!(q.take(&mut next, 100), (1, None));
    }

    #[test]
    fn a_full_overflow_counts_what_it_loses() {
        let q = Queue::new(2);
        q.push(ev("x", State::Ok, 0));
        q.push(ev("x", State::Ok, 0));
        // Alternating states make a new entry each time.
        let total = OVERFLOW_UNITS + 50;
        for i in 0..total {
            let st = if i % 2 == 0 { State::Failed } else { State::Ok };
            q.push(ev("x", st, 1));
        }
        let mut batch = Batch::default();
        let (_, counts) = q.take(&mut batch, 10);
        // The ring had 2; take stops at the ring's end, then takes the overflow.
        let (collapsed, lost) = counts.expect("overflow");
        // Past the limit, an event that continues the last entry still folds into it; the
        // others are lost, and counted.
        assert_eq!((collapsed, lost), (25, 25));
        assert_eq!(batch.units, 1 + OVERFLOW_UNITS);
    }

    #[test]
    fn many_threads_lose_nothing_and_keep_their_own_order() {
        let q = std::sync::Arc::new(Queue::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let job: &'static str = ["t0", "t1", "t2", "t3"][t];
                    for i in 0..20_000 {
                        // A state change every 1000 events, so that order shows.
                        let st = if (i / 1000) % 2 == 0 {
                            State::Failed
                        } else {
                            State::Ok
                        };
                        q.push(ev(job, st, i));
                    }
                })
            })
            .collect();
        let mut seen: HashMap<String, Vec<(State, u64, i64, i64)>> = HashMap::new();
        let mut done = false;
        while !done {
            done = threads.iter().all(|t| t.is_finished());
            loop {
                let mut batch = Batch::default();
                let (n, counts) = q.take(&mut batch, 32);
                if n == 0 && counts.is_none() {
                    break;
                }
                assert_eq!(counts.map_or(0, |c| c.1), 0, "nothing lost");
                for job in ["t0", "t1", "t2", "t3"] {
                    if batch.jobs.contains_key(job) {
                        seen.entry(job.to_owned())
                            .or_default()
                            .extend(units(&batch, job));
                    }
                }
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        for (job, list) in seen {
            let total: u64 = list.iter().map(|u| u.1).sum();
            assert_eq!(total, 20_000, "{job}");
            // Each entry starts where the previous ended: nothing overtook anything.
            let mut next = 0;
            for (_, count, first, last) in &list {
                assert_eq!(*first, next, "{job}: {list:?}");
                assert_eq!(*count as i64, last - first + 1, "{job}: {list:?}");
                next = *last + 1;
            }
            assert_eq!(next, 20_000);
        }
    }
}
