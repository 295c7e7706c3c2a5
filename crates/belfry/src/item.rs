//! What the program's threads hand to belfry's worker: an event as the hot path builds it
//! ([`Record`]), the other things a worker is asked to record ([`Item`]), and the options a
//! `#[watch]`ed function carries ([`JobOptions`]). The queue, the worker, the tracing layer and
//! the panic hook all speak in these types, so they live below all of them and use none.

use std::borrow::Cow;
use std::time::Duration;

use belfry_core::{Details, Event, Notification, State, Timestamp};
use belfry_store::RunStart;

/// A watched function's name and its options, as the macro wrote them.
#[derive(Debug)]
pub struct JobOptions {
    /// `module::path::function`, or `name = "…"`.
    pub job: &'static str,
    /// `repeat_failures_after = "…"`.
    pub repeat_failures_after: Option<Duration>,
    /// `ok_heartbeat_after = "…"` (`Some(None)`: `"off"`).
    pub ok_heartbeat_after: Option<Option<Duration>>,
    /// `channels = […]`: only these channels (empty: as configured).
    pub channels: &'static [&'static str],
}

/// One event as the hot path builds it: no allocation for a plain OK.
#[derive(Debug)]
pub(crate) struct Record {
    pub job: Cow<'static, str>,
    pub state: State,
    pub at: Timestamp,
    pub duration: Option<Duration>,
    /// Everything else (error text, fields, backtrace), boxed so that a plain OK stays small.
    pub details: Option<Box<Details>>,
    /// What a `tracing` event brought, kept raw: formatting the static parts (location,
    /// level, target) is left to the worker.
    pub traced: Option<Box<Traced>>,
    /// Policy and routing overrides of a `#[watch]`ed function.
    pub opts: Option<&'static JobOptions>,
    /// How many events this record stands for: 1, or more when the layer's sampler counted
    /// events of a storm without formatting them.
    pub count: u64,
    /// Only a count (events the sampler did not format): the details are those of the last
    /// formatted event of the job.
    pub count_only: bool,
}

impl Record {
    /// A record of one event with nothing more than its state.
    pub fn new(job: Cow<'static, str>, state: State, at: Timestamp) -> Record {
        Record {
            job,
            state,
            at,
            duration: None,
            details: None,
            traced: None,
            opts: None,
            count: 1,
            count_only: false,
        }
    }

    pub(crate) fn collapses_with(&self, other: &Record) -> bool {
        self.state == other.state
            && match (self.opts, other.opts) {
                (None, None) => true,
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                _ => false,
            }
    }

    /// The event the store takes; the host is filled in if the record has none.
    pub fn to_event(&self, host: &str) -> Event {
        let mut details = self.details.as_deref().cloned().unwrap_or_default();
        if let Some(t) = &self.traced {
            details.error = Some(t.error.clone());
            for (k, v) in &t.fields {
                details.fields.insert((*k).to_owned(), v.clone());
            }
            if let (Some(file), Some(line)) = (t.meta.file(), t.meta.line()) {
                details
                    .fields
                    .insert("location".into(), format!("{file}:{line}"));
            }
            details
                .fields
                .insert("level".into(), t.meta.level().as_str().to_owned());
            if t.job_from_field {
                details
                    .fields
                    .insert("target".into(), t.meta.target().to_owned());
            }
            if let Some(spans) = &t.spans {
                details.fields.insert("spans".into(), spans.clone());
            }
        }
        if details.duration.is_none() {
            details.duration = self.duration;
        }
        if details.host.is_none() {
            details.host = Some(host.to_owned());
        }
        Event {
            job: self.job.clone().into_owned(),
            state: self.state,
            at: self.at,
            details,
        }
    }
}

/// A `tracing` event's contents, as the layer took them.
#[derive(Debug)]
pub(crate) struct Traced {
    pub meta: &'static tracing::Metadata<'static>,
    /// The message (and the `error` field's causes).
    pub error: String,
    /// Whether the job came from a `job` field (then the target is a field of its own).
    pub job_from_field: bool,
    /// The other fields.
    pub fields: Vec<(&'static str, String)>,
    /// The spans it happened in, outermost first, with their fields.
    pub spans: Option<String>,
}

/// What the worker is asked to do.
#[derive(Debug)]
pub(crate) enum Item {
    /// A job's new state (a watched call, a tracing event, a panic).
    Event(Record),
    /// A task's run has started.
    RunStart(Box<RunStart>),
    /// A task's run has ended; `details.run_id` names it.
    RunEnd(Box<Event>),
    /// A message that is not a state change (a supervisor's summary).
    Message(Box<Notification>),
}

impl Item {
    pub fn job(&self) -> &str {
        match self {
            Item::Event(r) => &r.job,
            Item::RunStart(s) => &s.job,
            Item::RunEnd(e) => &e.job,
            Item::Message(n) => &n.job,
        }
    }
}
