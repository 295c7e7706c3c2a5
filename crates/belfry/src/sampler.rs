//! Storms of one error, for the tracing layer: formatting each of a million identical events
//! is most of what they would cost the program. Per thread, per call site and job, the layer
//! formats the first [`FORMATTED_PER_MS`] events of each millisecond and only counts the
//! rest. The layer reads the time for this from the coarse clock, which moves a tick at a time
//! (4 ms on most Linux systems), so a window lasts a tick. A count is never lost: it rides on
//! the next formatted event of that call site, or the worker collects it (every tick, and at a
//! flush) as a count-only record, which takes the job's last formatted details. A digest's
//! text is therefore that of an event formatted at most a clock tick before its last one; its
//! count is exact.

use std::borrow::Cow;

use belfry_core::{State, Timestamp};

use crate::item::Record;

/// Events formatted per call site and job in each millisecond before the rest are only
/// counted: below 8,000 a second, every event is formatted.
pub(crate) const FORMATTED_PER_MS: u32 = 8;

/// Call sites and jobs remembered per thread; the least recent one makes room.
const ENTRIES: usize = 32;

/// One thread's counts.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    callsite: usize,
    job: Cow<'static, str>,
    state: State,
    window_ms: i64,
    formatted: u32,
    /// Counted, not formatted, not yet handed on.
    pending: u64,
    last_at: Timestamp,
}

impl Entry {
    fn take(&mut self) -> Option<Record> {
        if self.pending == 0 {
            return None;
        }
        let mut r = Record::new(self.job.clone(), self.state, self.last_at);
        r.count = std::mem::take(&mut self.pending);
        r.count_only = true;
        Some(r)
    }
}

/// What the layer does with an event.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Counted: nothing more to do.
    Counted,
    /// Format it; it stands for itself and `carried` earlier events. `evicted` holds the
    /// counts of a call site that had to make room, to be queued as they are.
    Format {
        carried: u64,
        evicted: Option<Record>,
    },
}

impl Sampler {
    /// Decides for an event of `job` in `state` from `callsite` at `now`.
    // A `Cow`, so that a job named by its target (a `&'static str`) is kept without copying.
    #[allow(clippy::ptr_arg)]
    pub fn check(
        &mut self,
        callsite: usize,
        job: &Cow<'static, str>,
        state: State,
        now: Timestamp,
    ) -> Verdict {
        let ms = now.as_millis();
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.callsite == callsite && e.job == *job && e.state == state)
        {
            if e.window_ms != ms {
                e.window_ms = ms;
                e.formatted = 0;
            }
            if e.formatted >= FORMATTED_PER_MS {
                e.pending += 1;
                e.last_at = now;
                return Verdict::Counted;
            }
            e.formatted += 1;
            return Verdict::Format {
                carried: std::mem::take(&mut e.pending),
                evicted: None,
            };
        }
        let mut evicted = None;
        if self.entries.len() >= ENTRIES
            && let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.window_ms)
                .map(|(i, _)| i)
        {
            evicted = self.entries.swap_remove(oldest).take();
        }
        self.entries.push(Entry {
            callsite,
            job: job.clone(),
            state,
            window_ms: ms,
            formatted: 1,
            pending: 0,
            last_at: now,
        });
        Verdict::Format {
            carried: 0,
            evicted,
        }
    }

    /// Hands the counted events over as count-only records.
    pub fn drain(&mut self, out: &mut Vec<Record>) {
        out.extend(self.entries.iter_mut().filter_map(Entry::take));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_formatted_a_few_times_a_millisecond_and_every_event_is_counted() {
        let mut s = Sampler::default();
        let job: Cow<'static, str> = Cow::Borrowed("cache");
        let mut formatted = 0;
        let mut carried = 0;
        // 10 milliseconds of 1,000 events each.
        for ms in 0..10 {
            for _ in 0..1000 {
                match s.check(1, &job, State::Failed, Timestamp::from_millis(ms)) {
                    Verdict::Counted => {}
                    Verdict::Format {
                        carried: c,
                        evicted,
                    } => {
                        assert!(evicted.is_none());
                        formatted += 1;
                        carried += c;
                    }
                }
            }
        }
        assert_eq!(formatted, 10 * u64::from(FORMATTED_PER_MS));
        let mut rest = Vec::new();
        s.drain(&mut rest);
        let left: u64 = rest.iter().map(|r| r.count).sum();
        assert!(
            rest.iter()
                .all(|r| r.count_only && r.at == Timestamp::from_millis(9))
        );
        assert_eq!(formatted + carried + left, 10_000);
        // Drained: nothing twice.
        let mut again = Vec::new();
        s.drain(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn call_sites_and_jobs_are_counted_apart_and_an_evicted_count_is_handed_on() {
        let mut s = Sampler::default();
        let t = Timestamp::from_millis(5);
        let a: Cow<'static, str> = Cow::Borrowed("a");
        let b: Cow<'static, str> = Cow::Owned("b".into());
        for _ in 0..20 {
            s.check(1, &a, State::Failed, t);
            s.check(1, &b, State::Failed, t);
        }
        let mut rest = Vec::new();
        s.drain(&mut rest);
        let counts: Vec<(String, u64)> =
            rest.iter().map(|r| (r.job.to_string(), r.count)).collect();
        assert_eq!(counts, [("a".into(), 12), ("b".into(), 12)]);
        // 20 more of `a`, all counted (its 8 of this millisecond are spent). Then fill the
        // table: the next new call site evicts the least recent, `a`, with its count.
        for _ in 0..20 {
            s.check(1, &a, State::Failed, t);
        }
        for site in 2..ENTRIES {
            s.check(site, &a, State::Failed, Timestamp::from_millis(6));
        }
        match s.check(99, &a, State::Failed, Timestamp::from_millis(7)) {
            Verdict::Format {
                evicted: Some(r), ..
            } => assert_eq!((r.job.as_ref(), r.count, r.count_only), ("a", 20, true)),
            other => panic!("{other:?}"),
        }
    }
}
