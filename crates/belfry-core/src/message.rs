use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::counts::DigestCount;
use crate::duration::{duration_from_secs_f64, format_duration};
use crate::{Decision, JobSnapshot, Reason, State, Timestamp};

/// The version of the [`Notification`] JSON schema. It changes only when a field changes
/// meaning or disappears; new fields may appear without a change.
pub const SCHEMA_VERSION: u32 = 1;

/// Something that happened to a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The job's name.
    pub job: String,
    /// Its new state.
    pub state: State,
    /// When it happened.
    pub at: Timestamp,
    /// What is known about it.
    pub details: Details,
}

/// What is known about an event; every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details {
    /// The run this event belongs to.
    pub run_id: Option<String>,
    /// When the run started.
    pub started_at: Option<Timestamp>,
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended the process.
    pub signal: Option<i32>,
    /// How long the run took.
    pub duration: Option<Duration>,
    /// The host it ran on.
    pub host: Option<String>,
    /// An error message (an `Err`'s text, or why a command could not start).
    pub error: Option<String>,
    /// The end of the run's output (and its first lines).
    pub output_tail: Option<String>,
    /// Where a panic happened: the backtrace, one frame per line.
    pub backtrace: Option<String>,
    /// Named values that came with the event (a `tracing` event's fields, its spans).
    pub fields: BTreeMap<String, String>,
    /// Set when this event stands for several: the events belfry folded into it.
    pub digest: Option<Digest>,
    /// Files sent with the notification (a summary's log).
    pub attachments: Vec<Attachment>,
}

/// What kind of message a notification is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A problem (first, changed to, threshold reached, or repeated).
    Problem,
    /// The end of an announced problem.
    Recovered,
    /// A first successful run, or a "still OK" heartbeat.
    Ok,
}

impl Kind {
    /// Apprise's notification type for this kind (`failure`, `success`, `info`).
    pub const fn apprise_type(self) -> &'static str {
        match self {
            Kind::Problem => "failure",
            Kind::Recovered => "success",
            Kind::Ok => "info",
        }
    }
}

/// One notification, as stored in the outbox and posted by the JSON webhook channel.
///
/// This is belfry's documented message schema (see `docs/webhook.md`). `title`, `message` and
/// `type` carry the same meaning as in Apprise's JSON payload, so a receiver written for
/// Apprise's `json://` reads belfry's posts too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// [`SCHEMA_VERSION`].
    pub version: u32,
    /// Unique id of this notification (the same for every channel it goes to).
    pub id: String,
    /// Problem, recovered, or OK.
    pub kind: Kind,
    /// The job's name.
    pub job: String,
    /// The state of the run that caused the notification.
    pub state: State,
    /// The job's state before that run (`null` on the first run).
    pub previous_state: Option<State>,
    /// Machine-readable reason ([`Reason::code`]).
    pub reason: String,
    /// The reason in words.
    pub reason_text: String,
    /// One-line title, e.g. `nightly-backup: Failed`.
    pub title: String,
    /// One-line summary, e.g. `exit code 1 after 2.3s on db1; first run of this job`.
    pub message: String,
    /// Apprise's type: `failure`, `success` or `info`.
    #[serde(rename = "type")]
    pub apprise_type: String,
    /// Exit code, if the run exited.
    pub exit_code: Option<i32>,
    /// Signal number, if the run was killed by one.
    pub signal: Option<i32>,
    /// Run time in seconds.
    pub duration_seconds: Option<f64>,
    /// Host name.
    pub host: Option<String>,
    /// The run's id.
    pub run_id: Option<String>,
    /// When the run started.
    pub started_at: Option<Timestamp>,
    /// When the event happened.
    pub time: Timestamp,
    /// Problems in a row, counting this one (0 when OK).
    pub consecutive_problems: u32,
    /// An error message, if any.
    pub error: Option<String>,
    /// The output's first lines and tail, if kept.
    pub output_tail: Option<String>,
    /// A panic's backtrace, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
    /// Named values from the event (a `tracing` event's fields and spans).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Set when this message stands for several events of the job: ones the library's queue
    /// collapsed or the rules held back, and notifications that waited for the same channel
    /// (an outage's backlog, a burst inside the digest window). It describes the latest, and
    /// this counts them all, exactly. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Files sent along (`belfry send --attach`), in Apprise's JSON form. Absent from the JSON
    /// when there are none. Channels that cannot carry files ignore them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// What a message that stands for several events counts. `count` is exact: over a job's
/// messages to a channel, the counts add up to its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// How many events the message covers, the one it describes included.
    pub count: u64,
    /// How many of them per state, in the order the states first appeared; empty when they
    /// all had the message's own state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<DigestCount>,
    /// When the first of them happened (the message's `time` is the last one's).
    pub first: Timestamp,
    /// The first one's error text, when it differs from the last one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// A file that travels with a notification. Serialised as Apprise's JSON webhook does:
/// `{"filename": …, "base64": …, "mimetype": …}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's name, without its directory.
    #[serde(rename = "filename")]
    pub name: String,
    /// Its MIME type, e.g. `text/plain`.
    #[serde(rename = "mimetype")]
    pub mime_type: String,
    /// Its content.
    #[serde(rename = "base64", with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Attachment {
    /// An attachment named `name` (its directory is dropped), with a MIME type guessed from its
    /// extension (`application/octet-stream` when unknown).
    pub fn new(name: &str, data: Vec<u8>) -> Self {
        let name = name.rsplit('/').next().unwrap_or(name).to_owned();
        let mime_type = mime_for(&name).to_owned();
        Attachment {
            name,
            mime_type,
            data,
        }
    }
}

/// The MIME type for a file name's extension; the common ones only.
fn mime_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "out" | "err" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "md" => "text/markdown",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// How a message sent by hand (`belfry send`) is meant, in Apprise's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// For information.
    Info,
    /// Something went well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed.
    Failure,
}

impl MessageType {
    /// Apprise's name: `info`, `success`, `warning`, `failure`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Info => "info",
            MessageType::Success => "success",
            MessageType::Warning => "warning",
            MessageType::Failure => "failure",
        }
    }
}

impl std::str::FromStr for MessageType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(MessageType::Info),
            "success" => Ok(MessageType::Success),
            "warning" => Ok(MessageType::Warning),
            "failure" => Ok(MessageType::Failure),
            _ => Err(format!(
                "unknown message type {s:?}; expected info, success, warning or failure"
            )),
        }
    }
}

/// A message written by hand rather than made by the alert rules (`belfry send`,
/// `belfry test`).
#[derive(Clone, Debug)]
pub struct Adhoc {
    /// The name it goes under (`job` in the notification).
    pub job: String,
    /// Its title (may be empty, as in Apprise).
    pub title: String,
    /// Its body.
    pub body: String,
    /// How it is meant.
    pub message_type: MessageType,
    /// The host it is sent from.
    pub host: Option<String>,
    /// `reason` in the notification (`sent`, `test`).
    pub reason: &'static str,
    /// `reason_text` in the notification.
    pub reason_text: String,
    /// Files to send along.
    pub attachments: Vec<Attachment>,
}

impl Notification {
    /// Builds the notification for `event`, given the snapshot before it and the decision.
    /// `id` must be unique.
    pub fn new(
        id: String,
        event: &Event,
        previous: Option<&JobSnapshot>,
        decision: &Decision,
    ) -> Self {
        Self::with_digest(id, event, event.details.digest.as_ref(), previous, decision)
    }

    /// [`Notification::new`] with `digest` in place of the event's own: the rule step's count
    /// of the runs held back, which the event itself does not carry.
    pub(crate) fn with_digest(
        id: String,
        event: &Event,
        digest: Option<&Digest>,
        previous: Option<&JobSnapshot>,
        decision: &Decision,
    ) -> Self {
        let kind = if matches!(decision.reason, Reason::Recovered { .. }) {
            Kind::Recovered
        } else if event.state.is_problem() {
            Kind::Problem
        } else {
            Kind::Ok
        };
        let d = &event.details;
        let label = if kind == Kind::Recovered {
            "Recovered"
        } else {
            event.state.label()
        };
        let title = format!("{}: {label}", event.job);
        let consecutive_problems = if event.state.is_problem() {
            previous
                .map_or(0, |p| p.consecutive_problems)
                .saturating_add(1)
        } else {
            0
        };
        let mut n = Notification {
            version: SCHEMA_VERSION,
            id,
            kind,
            job: event.job.clone(),
            state: event.state,
            previous_state: previous.map(|p| p.state),
            reason: decision.reason.code().to_owned(),
            reason_text: decision.reason.to_string(),
            title,
            message: String::new(),
            apprise_type: kind.apprise_type().to_owned(),
            exit_code: d.exit_code,
            signal: d.signal,
            duration_seconds: d.duration.map(|x| x.as_secs_f64()),
            host: d.host.clone(),
            run_id: d.run_id.clone(),
            started_at: d.started_at,
            time: event.at,
            consecutive_problems,
            error: d.error.clone(),
            output_tail: d.output_tail.clone(),
            backtrace: d.backtrace.clone(),
            fields: d.fields.clone(),
            digest: digest.filter(|g| g.count > 1).cloned(),
            attachments: d.attachments.clone(),
        };
        n.message = n.summary();
        n
    }

    /// Makes this notification (the latest) stand for `carried` too: notifications of the
    /// same job that waited for the same channel. It keeps its own title (the current truth);
    /// its digest counts every event of all of them (each one's own digest included), by
    /// state, and its message says so.
    pub fn fold(&mut self, carried: &[Notification]) {
        let mut count = 0;
        let mut states: Vec<DigestCount> = Vec::new();
        // The earliest start, and its error; on a tie (the same millisecond) the one listed
        // first, as the carried notifications are older than this one.
        let mut first: Option<(Timestamp, Option<String>)> = None;
        let mut add = |state: State, n: u64| DigestCount::add(&mut states, state, n);
        for n in carried.iter().chain(std::iter::once(&*self)) {
            match &n.digest {
                Some(g) if !g.states.is_empty() => {
                    g.states.iter().for_each(|c| add(c.state, c.count));
                }
                Some(g) => add(n.state, g.count),
                None => add(n.state, 1),
            }
            count = n
                .digest
                .as_ref()
                .map_or(1, |g| g.count)
                .saturating_add(count);
            let start = n.digest.as_ref().map_or(n.time, |g| g.first);
            if first.as_ref().is_none_or(|(t, _)| start < *t) {
                let error = n
                    .digest
                    .as_ref()
                    .and_then(|g| g.first_error.clone())
                    .or_else(|| n.error.clone());
                first = Some((start, error));
            }
        }
        let (first, first_error) = first.unwrap_or((self.time, None));
        self.digest = Some(Digest {
            count,
            states: DigestCount::finish(states),
            first,
            first_error: first_error.filter(|e| Some(e) != self.error.as_ref()),
        });
        self.message = self.summary();
    }

    /// A notification written by hand. A failure is a problem (`state` failed); a warning is
    /// a problem too (it asks for attention: services that page, page) but its `state` stays
    /// ok, since nothing ran and failed; info and success are OK. `type` keeps the exact
    /// word, for channels that tell the four apart.
    pub fn adhoc(id: String, m: Adhoc, at: Timestamp) -> Self {
        let (kind, state) = match m.message_type {
            MessageType::Failure => (Kind::Problem, State::Failed),
            MessageType::Warning => (Kind::Problem, State::Ok),
            MessageType::Info | MessageType::Success => (Kind::Ok, State::Ok),
        };
        Notification {
            version: SCHEMA_VERSION,
            id,
            kind,
            job: m.job,
            state,
            previous_state: None,
            reason: m.reason.to_owned(),
            reason_text: m.reason_text,
            title: m.title,
            message: m.body,
            apprise_type: m.message_type.name().to_owned(),
            exit_code: None,
            signal: None,
            duration_seconds: None,
            host: m.host,
            run_id: None,
            started_at: None,
            time: at,
            consecutive_problems: 0,
            error: None,
            output_tail: None,
            backtrace: None,
            fields: BTreeMap::new(),
            digest: None,
            attachments: m.attachments,
        }
    }

    /// A message that is not about a state change: a program's end-of-run summary. It goes
    /// out as written (`title`, `message`), with reason `summary` and kind `ok` (Apprise's
    /// `info`). `id` must be unique.
    pub fn summary_message(
        id: String,
        job: &str,
        title: String,
        body: String,
        at: Timestamp,
        attachments: Vec<Attachment>,
    ) -> Self {
        Notification::adhoc(
            id,
            Adhoc {
                job: job.to_owned(),
                title,
                body,
                message_type: MessageType::Info,
                host: None,
                reason: "summary",
                reason_text: "end-of-run summary".to_owned(),
                attachments,
            },
            at,
        )
    }

    /// What ended the run beyond its state, which the title already says: the exit code or
    /// the signal, then the error's first line (`exit code 3: connection refused`, `command
    /// not found: backup.sh`). `None` when the state says it all: an OK run of a Rust
    /// function, a run that timed out (belfry's own signal ended it).
    pub fn cause(&self) -> Option<String> {
        let code = match (self.state, self.exit_code, self.signal) {
            (State::TimedOut, _, _) | (_, None, None) => None,
            (_, _, Some(sig)) => Some(format!("killed by signal {sig}")),
            (_, Some(code), _) => Some(format!("exit code {code}")),
        };
        let error = self
            .error
            .as_deref()
            .map(first_line)
            .filter(|e| !e.trim().is_empty());
        match (code, error) {
            (Some(code), Some(e)) => Some(format!("{code}: {e}")),
            (code, e) => code.or_else(|| e.map(str::to_owned)),
        }
    }

    /// What ended the run, in a few words that stand on their own (the `outcome` of
    /// templates): `exit code 1`, `killed by signal 9`, `timed out`, `command not found: x`;
    /// the state's name when nothing more is known.
    pub fn outcome_phrase(&self) -> String {
        match (self.state, self.cause()) {
            (State::TimedOut, Some(cause)) => format!("timed out: {cause}"),
            (_, Some(cause)) => cause,
            (state, None) => state.label().to_lowercase(),
        }
    }

    /// The one-line summary used as `message`, saying what the title (`job: Failed`) does
    /// not, each thing once: the cause, duration, host and reason (`exit code 1 after 2.3s on
    /// db1; first run of this job`, `after 10m on db1; was OK, now a problem` for a run that
    /// timed out); for a digest, how many events it covers first (`532 times in 10.2s, the
    /// last: …`, or `3 alerts in 12s (Failed ×2, OK ×1), the last: …` when their states
    /// differ).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let cause = self.cause();
        if let Some(phrase) = self.digest_phrase() {
            s.push_str(&phrase);
            s.push_str(if cause.is_some() {
                ", the last: "
            } else {
                ", the last"
            });
        }
        if let Some(cause) = &cause {
            s.push_str(cause);
        }
        if let Some(first) = self.digest.as_ref().and_then(|g| g.first_error.as_deref()) {
            s.push_str(" (the first: ");
            s.push_str(first_line(first));
            s.push(')');
        }
        // Each part after the first is joined to what comes before it.
        let mut push = |sep: &str, part: &str| {
            if !s.is_empty() {
                s.push_str(sep);
            }
            s.push_str(part);
        };
        if let Some(secs) = self.duration_seconds {
            let took = format_duration(duration_from_secs_f64(secs));
            push(" ", &format!("after {took}"));
        }
        if let Some(h) = &self.host {
            push(" ", &format!("on {h}"));
        }
        // "2 times …; first run of this job" would contradict itself.
        let several = self.digest.as_ref().is_some_and(|g| g.count > 1);
        if several && self.reason == Reason::FirstRun.code() {
            push("; ", "first runs of this job");
        } else {
            push("; ", &self.reason_text);
        }
        s
    }

    /// What the digest covers, in words: `532 times in 10.2s`, or `3 alerts in 12s (Failed ×2,
    /// OK ×1)` when their states differ; `2 times at once` within one millisecond. `None`
    /// without a digest of more than one event.
    pub fn digest_phrase(&self) -> Option<String> {
        let g = self.digest.as_ref().filter(|g| g.count > 1)?;
        let span = self.time.since(g.first);
        let span = if span < Duration::from_millis(1) {
            "at once".to_owned()
        } else {
            format!("in {}", format_duration(span))
        };
        Some(if g.states.len() > 1 {
            let parts: Vec<String> = g
                .states
                .iter()
                .map(|c| format!("{} ×{}", c.state.label(), c.count))
                .collect();
            format!("{} alerts {span} ({})", g.count, parts.join(", "))
        } else {
            format!("{} times {span}", g.count)
        })
    }

    /// The last `n` lines of the output tail, if any.
    pub fn tail_lines(&self, n: usize) -> Option<String> {
        let t = self.output_tail.as_deref()?.trim_end();
        if t.is_empty() {
            return None;
        }
        let lines: Vec<&str> = t.lines().collect();
        Some(lines[lines.len().saturating_sub(n)..].join("\n"))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, decide};

    fn failed_event() -> Event {
        Event {
            job: "nightly-backup".into(),
            state: State::Failed,
            at: Timestamp::from_millis(1_800_000_000_000),
            details: Details {
                run_id: Some("r1".into()),
                exit_code: Some(3),
                duration: Some(Duration::from_millis(2345)),
                host: Some("db1".into()),
                output_tail: Some("a\nb\nc\n".into()),
                ..Details::default()
            },
        }
    }

    #[test]
    fn a_duration_or_time_too_large_to_write_is_written_as_the_largest_not_a_panic() {
        let mut ev = failed_event();
        ev.details.duration = Some(Duration::MAX);
        ev.at = Timestamp::from_millis(i64::MAX);
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let mut n = Notification::new("n1".into(), &ev, None, &d);
        for secs in [n.duration_seconds.unwrap(), 1e300, f64::MAX] {
            n.duration_seconds = Some(secs);
            assert!(n.summary().contains("after 36525d 0h"), "{}", n.summary());
            let style = crate::render::TextStyle {
                markup: crate::render::Markup::Html,
                title: true,
                details: true,
                tail_lines: 5,
                limit: crate::render::Limit::chars(1000),
            };
            assert!(crate::render::render_text(&n, &style).contains("36525d"));
            let _ = crate::email::render(&n);
            let _ = crate::sms::render(&n);
            assert_eq!(
                crate::placeholders::value(&n, "duration").as_deref(),
                Some("36525d 0h")
            );
            assert!(serde_json::to_string(&n).unwrap().contains("9999-12-31"));
        }
    }

    #[test]
    fn a_first_failure_reads_well_and_serialises_to_the_documented_fields() {
        let ev = failed_event();
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let n = Notification::new("n1".into(), &ev, None, &d);
        assert_eq!(n.title, "nightly-backup: Failed");
        assert_eq!(
            n.message,
            "exit code 3 after 2.3s on db1; first run of this job"
        );
        let v: serde_json::Value = serde_json::to_value(&n).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["state"], "failed");
        assert_eq!(v["previous_state"], serde_json::Value::Null);
        assert_eq!(v["reason"], "first_run");
        assert_eq!(v["type"], "failure");
        assert_eq!(v["kind"], "problem");
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["time"], "2027-01-15T08:00:00.000Z");
        assert!(v.get("digest").is_none(), "absent unless folded");
        assert!(v.get("attachments").is_none(), "no attachments, no field");
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
        assert_eq!(n.tail_lines(2).as_deref(), Some("b\nc"));
    }

    /// `title — message`, as the console prints it.
    fn line(state: State, reason: Reason, details: Details) -> String {
        let n = crate::fixtures::notification(state, reason, details);
        format!("{} — {}", n.title, n.message)
    }

    /// Every word of the title's state said once in `line`, and one duration.
    fn says_each_thing_once(line: &str, label: &str) {
        let words: Vec<String> = line
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        for w in label.to_lowercase().split(' ') {
            let n = words.iter().filter(|x| *x == w).count();
            assert_eq!(n, 1, "{w:?} {n} times in {line:?}");
        }
        assert!(
            words.iter().filter(|w| *w == "after").count() <= 1,
            "{line}"
        );
        assert!(words.windows(2).all(|p| p[0] != p[1]), "{line}");
    }

    #[test]
    fn every_state_and_reason_reads_naturally_and_says_each_thing_once() {
        let secs = Duration::from_secs;
        let at = |exit_code, signal, error: Option<&str>, ms: Option<u64>| Details {
            exit_code,
            signal,
            error: error.map(str::to_owned),
            duration: ms.map(Duration::from_millis),
            host: ms.map(|_| "db1".to_owned()),
            ..Details::default()
        };
        let exited = |c| at(Some(c), None, None, Some(2300));
        let gone = "outcome unknown: the belfry process watching it (pid 42) is gone";
        let digest = |count, span_ms: i64, d: Details| Details {
            digest: Some(Digest {
                count,
                states: Vec::new(),
                first: Timestamp::from_millis(1_800_000_000_000 - span_ms),
                first_error: None,
            }),
            ..d
        };
        let repeated = |count| Reason::Repeated {
            count,
            since_last: secs(90),
        };
        let failed = "nightly-backup: Failed — ";
        let table = [
            (
                State::Failed,
                Reason::FirstRun,
                exited(3),
                format!("{failed}exit code 3 after 2.3s on db1; first run of this job"),
            ),
            (
                State::Failed,
                Reason::Problem,
                at(None, None, Some("command not found: backup.sh"), Some(0)),
                format!(
                    "{failed}command not found: backup.sh after 0ms on db1; was OK, now a problem"
                ),
            ),
            (
                State::Failed,
                Reason::ThresholdReached { count: 3 },
                at(None, None, Some("provider unreachable\nat main.rs:3"), None),
                format!("{failed}provider unreachable; 3 problems in a row"),
            ),
            (
                State::Failed,
                repeated(4),
                exited(3),
                format!(
                    "{failed}exit code 3 after 2.3s on db1; still a problem (4 in a row); last \
                     message 1m 30s ago"
                ),
            ),
            (
                State::Failed,
                repeated(5),
                digest(5, 240_000, exited(3)),
                format!(
                    "{failed}5 times in 4m 0s, the last: exit code 3 after 2.3s on db1; still a \
                     problem (5 in a row); last message 1m 30s ago"
                ),
            ),
            (
                State::TimedOut,
                Reason::FirstRun,
                at(None, Some(15), None, Some(600_000)),
                "nightly-backup: Timed out — after 10m 0s on db1; first run of this job".into(),
            ),
            (
                State::Crashed,
                Reason::Problem,
                at(None, Some(11), None, Some(2300)),
                "nightly-backup: Crashed — killed by signal 11 after 2.3s on db1; was OK, now a \
                 problem"
                    .into(),
            ),
            (
                State::Crashed,
                Reason::FirstRun,
                at(None, None, Some(gone), Some(5000)),
                format!("nightly-backup: Crashed — {gone} after 5s on db1; first run of this job"),
            ),
            (
                State::Late,
                Reason::Problem,
                Details::default(),
                "nightly-backup: Late — was OK, now a problem".into(),
            ),
            (
                State::Ok,
                Reason::FirstRun,
                exited(0),
                "nightly-backup: OK — exit code 0 after 2.3s on db1; first run of this job".into(),
            ),
            (
                State::Ok,
                Reason::FirstRun,
                at(None, None, None, Some(3)),
                "nightly-backup: OK — after 3ms on db1; first run of this job".into(),
            ),
            (
                State::Ok,
                Reason::FirstRun,
                digest(2, 0, at(None, None, None, Some(3))),
                "nightly-backup: OK — 2 times at once, the last after 3ms on db1; first runs of \
                 this job"
                    .into(),
            ),
            (
                State::Ok,
                Reason::Recovered { after: 2 },
                exited(0),
                "nightly-backup: Recovered — exit code 0 after 2.3s on db1; was a problem for 2 \
                 runs"
                    .into(),
            ),
            (
                State::Ok,
                Reason::Heartbeat {
                    since_last: Some(secs(3540)),
                },
                exited(0),
                "nightly-backup: OK — exit code 0 after 2.3s on db1; unchanged since the last \
                 message 59m 0s ago"
                    .into(),
            ),
            (
                State::Ok,
                Reason::Heartbeat { since_last: None },
                at(None, None, None, None),
                "nightly-backup: OK — the first message about this job".into(),
            ),
        ];
        for (state, reason, details, expected) in table {
            let label = match reason {
                Reason::Recovered { .. } => "Recovered",
                _ => state.label(),
            };
            let got = line(state, reason, details);
            assert_eq!(got, expected);
            says_each_thing_once(&got, label);
        }
        // And every combination the rules can make, whatever is known about the run.
        let known = [
            exited(2),
            at(None, Some(9), None, Some(10)),
            at(Some(1), None, Some("disk full"), Some(10)),
            at(None, None, Some("failed: disk full"), None),
            Details::default(),
            digest(3, 5000, exited(2)),
        ];
        let problems = [
            Reason::FirstRun,
            Reason::Problem,
            Reason::ThresholdReached { count: 3 },
            repeated(3),
        ];
        let oks = [
            Reason::FirstRun,
            Reason::Recovered { after: 1 },
            Reason::Heartbeat {
                since_last: Some(secs(3600)),
            },
            Reason::Heartbeat { since_last: None },
        ];
        for state in [
            State::Ok,
            State::Failed,
            State::TimedOut,
            State::Crashed,
            State::Late,
        ] {
            let reasons = if state.is_problem() { &problems } else { &oks };
            for reason in reasons {
                for details in &known {
                    let label = match reason {
                        Reason::Recovered { .. } => "Recovered",
                        _ => state.label(),
                    };
                    let got = line(state, reason.clone(), details.clone());
                    // An error text of the user's own may say "failed": only belfry's words
                    // are checked.
                    if details.error.as_deref() != Some("failed: disk full") {
                        says_each_thing_once(&got, label);
                    }
                    assert!(!got.contains("; ;") && !got.ends_with(' '), "{got}");
                }
            }
        }
    }

    #[test]
    fn an_adhoc_message_keeps_its_words_and_carries_attachments_as_apprise_does() {
        let m = Adhoc {
            job: "send".into(),
            title: "Disk".into(),
            body: "90% full".into(),
            message_type: "WARNING".parse().unwrap(),
            host: Some("db1".into()),
            reason: "sent",
            reason_text: "sent with belfry send".into(),
            attachments: vec![Attachment::new("/var/log/df.txt", b"hello".to_vec())],
        };
        let n = Notification::adhoc("n3".into(), m, Timestamp::from_millis(0));
        assert_eq!((n.kind, n.state), (Kind::Problem, State::Ok));
        assert_eq!((n.title.as_str(), n.message.as_str()), ("Disk", "90% full"));
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["type"], "warning");
        assert_eq!(
            v["attachments"],
            serde_json::json!([{"filename": "df.txt", "mimetype": "text/plain", "base64": "aGVsbG8="}])
        );
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back.attachments[0].data, b"hello");
        assert!(
            !format!("{:?}", back.attachments[0]).contains("104"),
            "no bytes in Debug"
        );
        assert_eq!(
            Attachment::new("x.BIN", vec![]).mime_type,
            "application/octet-stream"
        );
        assert!("loud".parse::<MessageType>().is_err());
    }

    #[test]
    fn a_recovery_is_titled_recovered() {
        let mut ev = failed_event();
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let snap = crate::advance(None, &ev.state, ev.at, &d);
        ev.state = State::Ok;
        ev.details.exit_code = Some(0);
        let d2 = decide(
            snap.as_ref(),
            &ev.state,
            ev.at.add_millis(5),
            &Policy::default(),
        );
        let n = Notification::new("n2".into(), &ev, snap.as_ref(), &d2);
        assert_eq!(n.kind, Kind::Recovered);
        assert_eq!(n.title, "nightly-backup: Recovered");
        assert_eq!(n.previous_state, Some(State::Failed));
        assert_eq!(n.apprise_type, "success");
    }

    #[test]
    fn a_folded_notification_keeps_its_title_and_counts_every_event() {
        let ev = failed_event();
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let at = |ms: i64, state: State| {
            let mut e = failed_event();
            e.state = state;
            e.at = ev.at.add_millis(ms);
            Notification::new(format!("c{ms}"), &e, None, &d)
        };
        let mut burst = at(-9_000, State::Failed);
        burst.digest = Some(Digest {
            count: 40,
            states: Vec::new(),
            first: ev.at.add_millis(-10_000),
            first_error: None,
        });
        let carried = [burst, at(-5_000, State::Ok), at(-2_000, State::Failed)];
        let mut n = Notification::new("n1".into(), &ev, None, &d);
        n.fold(&carried);
        assert_eq!(n.title, "nightly-backup: Failed");
        assert!(
            n.message
                .starts_with("43 alerts in 10s (Failed ×42, OK ×1), the last: exit code 3"),
            "{}",
            n.message
        );
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["digest"]["count"], 43);
        assert_eq!(v["digest"]["states"][1]["state"], "ok");
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn a_fold_within_one_millisecond_keeps_the_older_error_as_the_first() {
        let mut failed = failed_event();
        failed.details.error = Some("no file for day 1".into());
        let d = decide(None, &failed.state, failed.at, &Policy::default());
        let carried = [Notification::new("c1".into(), &failed, None, &d)];
        let snap = crate::advance(None, &failed.state, failed.at, &d);
        let mut ok = failed_event();
        ok.state = State::Ok;
        ok.details = Details::default();
        let d2 = decide(snap.as_ref(), &ok.state, ok.at, &Policy::default());
        let mut n = Notification::new("n1".into(), &ok, snap.as_ref(), &d2);
        assert_eq!(n.time, carried[0].time);
        n.fold(&carried);
        let g = n.digest.as_ref().unwrap();
        assert_eq!(g.first_error.as_deref(), Some("no file for day 1"));
        assert_eq!(g.count, 2);
    }

    #[test]
    fn a_digest_says_how_many_events_it_covers_and_round_trips() {
        let mut ev = failed_event();
        ev.details.error = Some("connection refused".into());
        ev.details.digest = Some(Digest {
            states: Vec::new(),
            count: 532,
            first: ev.at.add_millis(-10_200),
            first_error: Some("timed out\nmore".into()),
        });
        ev.details.fields.insert("table".into(), "users".into());
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let n = Notification::new("n3".into(), &ev, None, &d);
        assert!(
            n.message.starts_with(
                "532 times in 10.2s, the last: exit code 3: connection refused (the first: timed out)"
            ),
            "{}",
            n.message
        );
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["digest"]["count"], 532);
        assert_eq!(v["fields"]["table"], "users");
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn a_single_event_is_no_digest_and_new_fields_stay_out_of_the_json() {
        let mut ev = failed_event();
        ev.details.digest = Some(Digest {
            states: Vec::new(),
            count: 1,
            first: ev.at,
            first_error: None,
        });
        let d = decide(None, &ev.state, ev.at, &Policy::default());
        let n = Notification::new("n4".into(), &ev, None, &d);
        assert_eq!(n.digest, None);
        let v = serde_json::to_value(&n).unwrap();
        for absent in ["digest", "fields", "attachments", "backtrace"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }

    #[test]
    fn attachments_travel_as_base64_with_apprise_field_names() {
        let a = Attachment {
            name: "run.log.gz".into(),
            mime_type: "application/gzip".into(),
            data: vec![0x1f, 0x8b, 0, 255],
        };
        let n = Notification::summary_message(
            "n5".into(),
            "nightly",
            "Nightly: done".into(),
            "3 files".into(),
            Timestamp::from_millis(0),
            vec![a.clone()],
        );
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["attachments"][0]["base64"], "H4sA/w==");
        assert_eq!(v["attachments"][0]["filename"], "run.log.gz");
        assert_eq!(v["reason"], "summary");
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back.attachments, [a]);
        assert!(!format!("{:?}", back.attachments[0]).contains("255"));
    }
}
