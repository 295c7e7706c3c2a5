//! A `tracing` layer: ERROR events become notifications.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use belfry_core::{State, Timestamp};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::client::Belfry;
use crate::item::{Item, Record, Traced};
use crate::sampler::Verdict;

/// A [`tracing_subscriber::Layer`] that turns events at ERROR (or the level set with
/// [`Layer::with_level`]) into belfry events: `Failed` for the job named by the event's `job`
/// field, or else its target (the module path). The notification carries the event's message
/// as the error, its other fields, where it was emitted, and its span context (the spans it
/// happened in, with their fields).
///
/// The alert rules apply as to any job: the first error notifies, the same job's errors
/// within `repeat_failures_after` (1 s by default) are counted, not sent, and the next
/// message (or a digest once the window has passed, or at the program's end) says how many
/// there were. An error storm is a handful of messages with exact counts.
///
/// The calling thread only formats the event and queues it (a few hundred nanoseconds). In a
/// storm it formats even less: past 8 events per tick of the coarse clock (1 to 10 ms, the
/// kernel's; 4 ms on most Linux systems) from one call site for one job, the others are only
/// counted (see [`Layer::with_storm_sampling`]).
///
/// Events from belfry's own crates (targets `belfry`, `belfry_*`) and from belfry's threads
/// (where its HTTP client and store run) are ignored, so belfry never alerts about itself in
/// a loop.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(belfry::layer());
/// tracing::subscriber::with_default(subscriber, || {
///     // Recorded for the job "billing" (if belfry::init() has run).
///     tracing::error!(job = "billing", invoice = 42, "payment provider unreachable");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Layer {
    client: Option<Belfry>,
    level: Level,
    span_fields: bool,
    sample: bool,
}

/// A layer for the current client (the global one from [`init`](crate::init), or the
/// innermost [`Belfry::in_scope`]).
pub fn layer() -> Layer {
    Layer {
        client: None,
        level: Level::ERROR,
        span_fields: true,
        sample: true,
    }
}

impl Belfry {
    /// A layer that records into this client, whatever the current one is.
    pub fn layer(&self) -> Layer {
        Layer {
            client: Some(self.clone()),
            ..layer()
        }
    }
}

impl Layer {
    /// Events at this level and more severe become notifications (default ERROR; WARN
    /// includes warnings).
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Whether to count, rather than format, most events of a storm (default yes): past 8
    /// events per tick of the coarse clock (a few milliseconds) from one call site for one
    /// job, the others are counted and the next formatted event (or the worker) carries their
    /// count. Counts stay exact; a digest's text is that of an event formatted at most a tick
    /// before its last.
    /// Without it every event is formatted (a few hundred nanoseconds each).
    pub fn with_storm_sampling(mut self, sample: bool) -> Self {
        self.sample = sample;
        self
    }

    /// Whether to keep each span's fields for the span context (default yes). Keeping them
    /// costs a little on every span created, errors or not; without them the context lists
    /// the spans' names only.
    pub fn with_span_fields(mut self, keep: bool) -> Self {
        self.span_fields = keep;
        self
    }
}

/// A span's fields, formatted once when it is created (`a=1 b="x"`).
struct SpanFields(String);

/// Formats fields as `name=value` pairs.
struct FieldWriter<'a>(&'a mut String);

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{}={value:?}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{}={value:?}", field.name());
    }
}

/// Collects an event's fields: the message, the job, the rest.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    job: Option<String>,
    error_chain: Option<String>,
    fields: Vec<(&'static str, String)>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "job" => self.job = Some(value.to_owned()),
            "message" => self.message = Some(value.to_owned()),
            name => self.fields.push((name, value.to_owned())),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), value.to_string()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut cause = value.source();
        while let Some(c) = cause {
            text.push_str("\ncaused by: ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        self.fields.push((field.name(), value.to_string()));
        self.error_chain = Some(text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            // The message is `format_args!`: its Debug is its text.
            "message" => self.message = Some(format!("{value:?}")),
            "job" => {
                let text = format!("{value:?}");
                // `job = ?name` quotes it; `job = %name` does not.
                let unquoted = text
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .map_or(text.clone(), str::to_owned);
                self.job = Some(unquoted);
            }
            name => self.fields.push((name, format!("{value:?}"))),
        }
    }
}

/// Whether a target belongs to belfry itself.
fn is_belfry_target(target: &str) -> bool {
    target == "belfry" || target.starts_with("belfry::") || target.starts_with("belfry_")
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.span_fields || attrs.fields().is_empty() {
            return;
        }
        let mut text = String::new();
        attrs.record(&mut FieldWriter(&mut text));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(text));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        if !self.span_fields {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(fields) => values.record(&mut FieldWriter(&mut fields.0)),
            None => {
                let mut text = String::new();
                values.record(&mut FieldWriter(&mut text));
                ext.insert(SpanFields(text));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // More verbose levels compare greater: ERROR is the least.
        if *meta.level() > self.level {
            return;
        }
        if is_belfry_target(meta.target()) || crate::threads::on_belfry_thread() {
            return;
        }
        match &self.client {
            Some(c) => emit(c, event, &ctx, self.sample),
            None => crate::client::with_current(|c| match c {
                Some(c) => emit(c, event, &ctx, self.sample),
                None => crate::client::no_client(meta.target()),
            }),
        }
    }
}

/// The time from the coarse real-time clock (resolution: the kernel's tick, 1 to 10 ms).
fn coarse_now() -> Timestamp {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    Timestamp::from_millis(
        t.tv_sec
            .saturating_mul(1000)
            .saturating_add(t.tv_nsec / 1_000_000),
    )
}

/// Finds a `job` field without formatting anything else.
struct JobOnly(Option<String>);

impl Visit for JobOnly {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "job" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "job" {
            let text = format!("{value:?}");
            self.0 = Some(
                text.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .map_or(text.clone(), str::to_owned),
            );
        }
    }
}

/// Queues one event for `client`: counted by the storm sampler, or formatted.
fn emit<S>(client: &Belfry, event: &Event<'_>, ctx: &Context<'_, S>, sample: bool)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    let job_from_field = meta.fields().field("job").is_some();
    let job: Cow<'static, str> = if job_from_field {
        let mut j = JobOnly(None);
        event.record(&mut j);
        j.0.map_or(Cow::Borrowed(meta.target()), Cow::Owned)
    } else {
        Cow::Borrowed(meta.target())
    };
    let carried = if sample {
        let callsite = std::ptr::from_ref(meta) as usize;
        // The sampler's millisecond windows need no more than the coarse clock (the kernel's
        // tick, read without a system call at a fraction of the precise clock's cost): in a
        // storm it is read for every event, the precise one only for those formatted.
        let at = coarse_now();
        let verdict = client
            .shared()
            .samplers
            .get_or_default()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(callsite, &job, State::Failed, at);
        match verdict {
            Verdict::Counted => return,
            Verdict::Format { carried, evicted } => {
                if let Some(r) = evicted {
                    client.push(Item::Event(r));
                }
                carried
            }
        }
    } else {
        0
    };
    let at = Timestamp::now();
    let mut f = EventFields::default();
    event.record(&mut f);
    let error = match (f.message, f.error_chain) {
        (Some(m), Some(chain)) => format!("{m}: {chain}"),
        (Some(m), None) => m,
        (None, Some(chain)) => chain,
        (None, None) => format!("{} event", meta.level()),
    };
    let spans = ctx.event_scope(event).map(|scope| {
        let mut spans = String::new();
        for span in scope.from_root() {
            if !spans.is_empty() {
                spans.push_str(" > ");
            }
            spans.push_str(span.name());
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                let _ = write!(spans, "{{{}}}", fields.0);
            }
        }
        spans
    });
    let mut record = Record::new(job, State::Failed, at);
    record.count = carried + 1;
    record.traced = Some(Box::new(Traced {
        meta,
        error,
        job_from_field,
        fields: f.fields,
        spans: spans.filter(|s| !s.is_empty()),
    }));
    client.push(Item::Event(record));
}
