//! The management API: the part of healthchecks.io's API (v1, v2 and v3 paths, answered alike)
//! that clients use — list, get, create or update (upsert by `unique`), delete, pause and
//! resume checks; a check's pings, a ping's body, its flips; the channels — and belfry's own:
//! a check's runs, the outbox, retrying an outbox row, silences (of a check or a tag: listed,
//! made, ended), acknowledging a check's problem, and a test message to a channel.
//!
//! A belfry check is a job: its slug is the job's name, its name, tags and description are
//! kept beside it ([`CheckMeta`]), its `timeout`/`schedule` + `tz` + `grace` are its schedule.
//! Requests are read and answered here; the store is called only on the API's own thread
//! (`Worker`), as the ping handlers call it only through the writer.
//!
//! Pure parts — which call a path is ([`route`]), what a body asks ([`Spec::parse`]), the JSON
//! of a check ([`check_json`]) — are tested without a server.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use belfry::config::Config;
use belfry_core::{Class, Expect, Schedule, State, Timestamp};
use belfry_store::{CheckChange, CheckMeta, CheckRow, JobRef, PingKind, PingRow, Store};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::actions;
use crate::limits::BODY_TIMEOUT;

/// What the API's handlers share.
#[derive(Debug)]
pub(crate) struct Api {
    pub config: Arc<Config>,
    /// The thread that owns the API's store handle.
    pub worker: Worker,
    /// The limit per key.
    pub limiter: Limiter,
    /// The address listened on, for URLs when a request names no `Host`.
    pub addr: std::net::SocketAddr,
}

/// The largest API request body read.
const MAX_API_BODY: usize = 64 * 1024;

/// A check's grace when none is given, as healthchecks.io's (one hour).
const DEFAULT_GRACE: Duration = belfry::config::DEFAULT_GRACE;

/// The period of a check created with no schedule, as healthchecks.io's (one day).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The longest `timeout` or `grace` taken (a year, as healthchecks.io).
const LONGEST: Duration = Duration::from_secs(31_536_000);

/// The most runs or outbox rows one answer lists.
const MAX_LIST: u32 = 1000;

// ---------------------------------------------------------------------------------------
// The API's thread.

type Task = Box<dyn FnOnce(&mut Store) + Send>;

/// The thread that owns the API's store handle: handlers send it closures and await their
/// results, so that no store call blocks the HTTP runtime.
#[derive(Clone, Debug)]
pub(crate) struct Worker {
    tx: mpsc::Sender<Task>,
}

impl Worker {
    /// Starts the thread; it ends when every [`Worker`] is dropped.
    pub(crate) fn spawn(mut store: Store) -> std::io::Result<(Worker, JoinHandle<()>)> {
        let (tx, mut rx) = mpsc::channel::<Task>(256);
        let handle = std::thread::Builder::new()
            .name("belfry-api".into())
            .spawn(move || {
                while let Some(task) = rx.blocking_recv() {
                    task(&mut store);
                }
            })?;
        Ok((Worker { tx }, handle))
    }

    /// Runs `f` on the API's thread; `None` if the thread is gone (the server is stopping).
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        let task: Task = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.tx.send(task).await.ok()?;
        answer.await.ok()
    }
}

// ---------------------------------------------------------------------------------------
// The limit per key.

/// A token bucket per API key: each key may make `per_minute` requests a minute, in bursts of
/// as many. Per process: replicas each count their own.
#[derive(Debug)]
pub(crate) struct Limiter {
    per_minute: f64,
    buckets: std::sync::Mutex<[(f64, Option<std::time::Instant>); 2]>,
}

impl Limiter {
    pub(crate) fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Limiter {
            per_minute,
            buckets: std::sync::Mutex::new([(per_minute, None); 2]),
        }
    }

    /// Takes a request of `key` at `now`: `Err` is how long until one is allowed.
    fn take(&self, key: Access, now: std::time::Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut buckets[key as usize];
        if let Some(l) = *last {
            let refill = now.saturating_duration_since(l).as_secs_f64() * self.per_minute / 60.0;
            *tokens = (*tokens + refill).min(self.per_minute);
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - *tokens) * 60.0 / self.per_minute,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Answers.

/// A refused or failed request: its status and the `{"error": …}` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    fn validation(what: &str) -> Self {
        ApiError::bad(format!("json validation error: {what}"))
    }

    fn not_found() -> Self {
        ApiError::new(404, "not found")
    }
}

/// What a call answers.
enum Reply {
    Json(StatusCode, Value),
    Text(String),
}

type Answer = Result<Reply, ApiError>;

fn ok(v: Value) -> Answer {
    Ok(Reply::Json(StatusCode::OK, v))
}

fn cors(r: &mut Response, methods: &'static str) {
    // As healthchecks.io's API: its key's header, and a preflight held ten minutes.
    crate::cors::Allow {
        methods,
        headers: "X-Api-Key",
        max_age: "600",
    }
    .apply(r);
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn respond(answer: Answer) -> Response {
    match answer {
        Ok(Reply::Json(status, v)) => json_response(status, &v),
        Ok(Reply::Text(t)) => {
            let mut r = t.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            json_response(status, &json!({ "error": e.message }))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Routes.

/// How a check is named in a path: its uuid, or (read-only) its unique key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckId {
    /// The check's uuid.
    Uuid(Uuid),
    /// The SHA-1 key read-only answers give instead of the uuid.
    UniqueKey(String),
}

/// One call of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `GET checks/`.
    ListChecks,
    /// `POST checks/`.
    CreateCheck,
    /// `GET checks/<uuid|unique_key>`.
    GetCheck(CheckId),
    /// `POST checks/<uuid>`.
    UpdateCheck(Uuid),
    /// `DELETE checks/<uuid>`.
    DeleteCheck(Uuid),
    /// `POST checks/<uuid>/pause`.
    Pause(Uuid),
    /// `POST checks/<uuid>/resume`.
    Resume(Uuid),
    /// `GET checks/<uuid>/pings/`.
    Pings(Uuid),
    /// `GET checks/<uuid>/pings/<n>/body`.
    PingBody(Uuid, u64),
    /// `GET checks/<uuid|unique_key>/flips/`.
    Flips(CheckId),
    /// `GET checks/<uuid>/runs/` (belfry's own).
    Runs(Uuid),
    /// `GET channels/`.
    Channels,
    /// `GET outbox/` (belfry's own).
    Outbox,
    /// `POST outbox/<id>/retry` (belfry's own).
    RetryOutbox(i64),
    /// `POST checks/<uuid>/silence` (belfry's own): `{"for": "2h" | "until": "…", "reason"}`.
    Silence(Uuid),
    /// `POST checks/<uuid>/ack` (belfry's own): no reminders until it recovers.
    Ack(Uuid),
    /// `GET silences/` (belfry's own): the silences in force.
    Silences,
    /// `POST silences/` (belfry's own): `{"job" | "tag", "for" | "until", "reason"}`.
    CreateSilence,
    /// `DELETE silences/<id>` (belfry's own): ends it now.
    EndSilence(i64),
    /// `POST channels/<id>/test` (belfry's own): queues a test message.
    TestChannel(Uuid),
}

impl Call {
    /// Whether the read-only key may make it (healthchecks.io's: listing and reading checks and
    /// their flips; belfry's: reading runs and the outbox).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Call::ListChecks
                | Call::GetCheck(_)
                | Call::Flips(_)
                | Call::Runs(_)
                | Call::Outbox
                | Call::Silences
        )
    }

    /// Whether its body is JSON to read.
    fn takes_json(&self) -> bool {
        matches!(
            self,
            Call::CreateCheck | Call::UpdateCheck(_) | Call::Silence(_) | Call::CreateSilence
        )
    }
}

/// The methods a path answers, for CORS and 405.
fn methods_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["checks"] => "GET, POST, OPTIONS",
        ["checks", _] => "GET, POST, DELETE, OPTIONS",
        ["checks", _, "pause" | "resume" | "silence" | "ack"]
        | ["outbox", _, "retry"]
        | ["channels", _, "test"] => "POST, OPTIONS",
        ["silences"] => "GET, POST, OPTIONS",
        ["silences", _] => "DELETE, OPTIONS",
        ["checks", _, "pings" | "flips"] => "GET, POST, OPTIONS",
        _ => "GET, OPTIONS",
    }
}

/// Reads the path after `/api/` with its method: the API version (1 to 3) and the call.
/// `Err` is the answer: 404 for a path that is not the API's, 405 for a method it does not
/// take there.
pub fn route(method: &Method, path: &str) -> Result<(u8, Call), ApiError> {
    let Some((version, rest)) = path.split_once('/') else {
        return Err(ApiError::not_found());
    };
    let v = match version {
        "v1" => 1,
        "v2" => 2,
        "v3" => 3,
        _ => return Err(ApiError::not_found()),
    };
    // A list's trailing slash may be left out, as the `healthchecks` crate does.
    let segments: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
    let uuid = |s: &str| -> Result<Uuid, ApiError> {
        if s.len() != 36 {
            return Err(ApiError::not_found());
        }
        Uuid::try_parse(s).map_err(|_| ApiError::not_found())
    };
    let id = |s: &str| -> Result<CheckId, ApiError> {
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(CheckId::UniqueKey(s.to_ascii_lowercase()));
        }
        uuid(s).map(CheckId::Uuid)
    };
    let m = method.clone();
    let wrong = || ApiError::new(405, format!("{m} is not allowed here"));
    // Pings and flips are listed with GET, or with POST as the `healthchecks` crate does.
    let list = matches!(*method, Method::GET | Method::POST);
    let call = match (segments.as_slice(), method) {
        (["checks"], &Method::GET) => Call::ListChecks,
        (["checks"], &Method::POST) => Call::CreateCheck,
        (["checks", s], &Method::GET) => Call::GetCheck(id(s)?),
        (["checks", s], &Method::POST) => Call::UpdateCheck(uuid(s)?),
        (["checks", s], &Method::DELETE) => Call::DeleteCheck(uuid(s)?),
        (["checks", s, "pause"], &Method::POST) => Call::Pause(uuid(s)?),
        (["checks", s, "resume"], &Method::POST) => Call::Resume(uuid(s)?),
        (["checks", s, "pings"], _) if list => Call::Pings(uuid(s)?),
        (["checks", s, "pings", n, "body"], &Method::GET) => {
            Call::PingBody(uuid(s)?, n.parse().map_err(|_| ApiError::not_found())?)
        }
        (["checks", s, "flips"], _) if list => Call::Flips(id(s)?),
        (["checks", s, "runs"], &Method::GET) => Call::Runs(uuid(s)?),
        (["channels"], &Method::GET) => Call::Channels,
        (["outbox"], &Method::GET) => Call::Outbox,
        (["outbox", n, "retry"], &Method::POST) => {
            Call::RetryOutbox(n.parse().map_err(|_| ApiError::not_found())?)
        }
        (["checks", s, "silence"], &Method::POST) => Call::Silence(uuid(s)?),
        (["checks", s, "ack"], &Method::POST) => Call::Ack(uuid(s)?),
        (["silences"], &Method::GET) => Call::Silences,
        (["silences"], &Method::POST) => Call::CreateSilence,
        (["silences", n], &Method::DELETE) => {
            Call::EndSilence(n.parse().map_err(|_| ApiError::not_found())?)
        }
        (["channels", s, "test"], &Method::POST) => Call::TestChannel(uuid(s)?),
        (
            ["checks"]
            | ["checks", _]
            | [
                "checks",
                _,
                "pause" | "resume" | "pings" | "flips" | "runs" | "silence" | "ack",
            ]
            | ["checks", _, "pings", _, "body"]
            | ["channels" | "outbox" | "silences"]
            | ["outbox", _, "retry"]
            | ["silences", _]
            | ["channels", _, "test"],
            _,
        ) => return Err(wrong()),
        _ => return Err(ApiError::not_found()),
    };
    Ok((v, call))
}

// ---------------------------------------------------------------------------------------
// What a create or update asks.

/// A field `unique` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    /// `name`.
    Name,
    /// `slug`.
    Slug,
    /// `tags`.
    Tags,
    /// `timeout`.
    Timeout,
    /// `grace`.
    Grace,
}

/// The body of a create or update: each field given, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spec {
    /// `name`: the title.
    pub name: Option<String>,
    /// `slug`: the job's name.
    pub slug: Option<String>,
    /// `tags`, split at spaces.
    pub tags: Option<Vec<String>>,
    /// `desc`.
    pub desc: Option<String>,
    /// `timeout`: the period.
    pub timeout: Option<Duration>,
    /// `grace`.
    pub grace: Option<Duration>,
    /// `schedule`: a cron expression.
    pub schedule: Option<String>,
    /// `tz`.
    pub tz: Option<String>,
    /// `max_runtime` (belfry's own): seconds, 0 for none.
    pub max_runtime: Option<Option<Duration>>,
    /// `unique`.
    pub unique: Vec<Unique>,
}

impl Spec {
    /// Reads a request's JSON object, with healthchecks.io's messages for what it refuses.
    /// Fields belfry does not keep are taken at their defaults only (`manual_resume: false`,
    /// `methods: ""`, the keyword filters empty or off), and `channels` only as `"*"`, since
    /// belfry routes alerts by its configuration: anything else is refused, not ignored.
    pub fn parse(body: &Map<String, Value>) -> Result<Spec, ApiError> {
        let mut spec = Spec::default();
        for (k, v) in body {
            let text = || match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::validation(&format!("{k} is not a string"))),
            };
            let long = |s: String, max: usize| {
                if s.chars().count() > max {
                    Err(ApiError::validation(&format!("{k} is too long")))
                } else {
                    Ok(s)
                }
            };
            let seconds = |min: u64| -> Result<Duration, ApiError> {
                let n = match v {
                    Value::Number(n) if n.is_u64() || n.is_i64() => n.as_i64().unwrap_or(i64::MAX),
                    _ => return Err(ApiError::validation(&format!("{k} is not a number"))),
                };
                if n < min as i64 {
                    return Err(ApiError::validation(&format!("{k} is too small")));
                }
                let d = Duration::from_secs(n as u64);
                if d > LONGEST {
                    return Err(ApiError::validation(&format!("{k} is too large")));
                }
                Ok(d)
            };
            let flag = || match v {
                Value::Bool(b) => Ok(*b),
                _ => Err(ApiError::validation(&format!("{k} is not a boolean"))),
            };
            let unsupported = || {
                ApiError::validation(&format!(
                    "{k} is not supported by belfry (only its default is taken)"
                ))
            };
            match k.as_str() {
                "name" => spec.name = Some(long(text()?, 100)?),
                "slug" => spec.slug = Some(long(text()?, 100)?),
                "tags" => {
                    spec.tags = Some(text()?.split_whitespace().map(str::to_owned).collect());
                }
                "desc" => spec.desc = Some(text()?),
                "timeout" => spec.timeout = Some(seconds(1)?),
                "grace" => spec.grace = Some(seconds(1)?),
                "max_runtime" => {
                    let d = seconds(0)?;
                    spec.max_runtime = Some((!d.is_zero()).then_some(d));
                }
                "schedule" => spec.schedule = Some(long(text()?, 100)?),
                "tz" => spec.tz = Some(text()?),
                "unique" => {
                    let Value::Array(items) = v else {
                        return Err(ApiError::validation("unique is not an array"));
                    };
                    for item in items {
                        spec.unique.push(match item.as_str() {
                            Some("name") => Unique::Name,
                            Some("slug") => Unique::Slug,
                            Some("tags") => Unique::Tags,
                            Some("timeout") => Unique::Timeout,
                            Some("grace") => Unique::Grace,
                            _ => {
                                return Err(ApiError::validation(
                                    "an item in 'unique' has unexpected value",
                                ));
                            }
                        });
                    }
                }
                "channels" => ensure(
                    text()? == "*",
                    ApiError::validation(
                        "channels: belfry sends a job's alerts to the channels its \
                         configuration routes them to ([channels.NAME] and [jobs.NAME] \
                         channels); only \"*\" is taken here",
                    ),
                )?,
                "manual_resume"
                | "filter_subject"
                | "filter_body"
                | "filter_http_body"
                | "filter_default_fail" => ensure(!flag()?, unsupported())?,
                "methods" | "subject" | "subject_fail" | "start_kw" | "success_kw"
                | "failure_kw" => ensure(text()?.is_empty(), unsupported())?,
                // The key may come in the body; anything else is not read, as healthchecks.io.
                _ => {}
            }
        }
        if let Some(tz) = &spec.tz {
            belfry_core::time_zone(tz)
                .map_err(|_| ApiError::validation("tz is not a valid timezone"))?;
        }
        if let Some(s) = &spec.schedule {
            Schedule::cron(s, spec.tz.as_deref()).map_err(|_| {
                ApiError::validation(
                    "schedule is not a valid cron expression (belfry reads five-field cron, \
                     not OnCalendar)",
                )
            })?;
        }
        Ok(spec)
    }

    /// The job's name a new check gets: its slug, or one made from its name.
    fn new_job_name(&self) -> Result<String, ApiError> {
        let name = match (&self.slug, &self.name) {
            (Some(s), _) if !s.is_empty() => s.clone(),
            (_, Some(n)) => slugify(n),
            _ => String::new(),
        };
        if name.is_empty() {
            return Err(ApiError::validation(
                "a check needs a slug or a name (its slug is the job's name)",
            ));
        }
        check_job_name(&name)?;
        Ok(name)
    }

    /// The schedule this asks for, given the check's current one (`None`: a new check).
    /// `Ok(None)` inside: unchanged.
    fn expect(&self, current: Option<&Expect>, new: bool) -> Result<Option<Expect>, ApiError> {
        let asks = self.timeout.is_some()
            || self.schedule.is_some()
            || self.grace.is_some()
            || self.tz.is_some()
            || self.max_runtime.is_some();
        if !asks && !new {
            return Ok(None);
        }
        let schedule = match (&self.schedule, self.timeout, current) {
            (Some(expr), _, _) => Schedule::cron(expr, self.tz.as_deref()),
            (None, Some(t), _) => Schedule::period(t),
            // A new time zone for the cron expression the check has.
            (None, None, Some(e)) => match (&e.schedule, &self.tz) {
                (Schedule::Cron(c), Some(tz)) => Schedule::cron(c.expr(), Some(tz)),
                (s, _) => Ok(s.clone()),
            },
            (None, None, None) => Schedule::period(DEFAULT_TIMEOUT),
        }
        .map_err(|e| ApiError::validation(&e.to_string()))?;
        let grace = self
            .grace
            .or(current.map(|e| e.grace))
            .unwrap_or(DEFAULT_GRACE);
        let max_runtime = match self.max_runtime {
            Some(m) => m,
            None => current.and_then(|e| e.max_runtime),
        };
        Expect::new(schedule, grace, max_runtime)
            .map(Some)
            .map_err(|e| ApiError::validation(&e.to_string()))
    }

    /// The title, tags and description this asks for over `current`; `None`: unchanged.
    fn meta(&self, current: &CheckMeta) -> Option<CheckMeta> {
        if self.name.is_none() && self.tags.is_none() && self.desc.is_none() {
            return None;
        }
        Some(CheckMeta {
            title: self.name.clone().unwrap_or_else(|| current.title.clone()),
            tags: self.tags.clone().unwrap_or_else(|| current.tags.clone()),
            desc: self.desc.clone().unwrap_or_else(|| current.desc.clone()),
        })
    }

    /// Whether `c` is the check `unique` looks for (each field named must be given).
    fn matches(&self, c: &CheckRow) -> bool {
        !self.unique.is_empty()
            && self.unique.iter().all(|u| match u {
                Unique::Name => self.name.as_deref() == Some(display_name(c)),
                Unique::Slug => self.slug.as_deref() == Some(c.name.as_str()),
                Unique::Tags => self.tags.as_ref() == Some(&c.meta.tags),
                Unique::Timeout => {
                    self.timeout.is_some() && self.timeout == period_of(c.expect.as_ref())
                }
                Unique::Grace => {
                    self.grace.is_some() && self.grace == c.expect.as_ref().map(|e| e.grace)
                }
            })
    }
}

fn ensure(ok: bool, or: ApiError) -> Result<(), ApiError> {
    if ok { Ok(()) } else { Err(or) }
}

/// healthchecks.io's slug of a name: lowercase letters, digits, `-` and `_`, the rest as `-`.
fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.trim().chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_alphanumeric() || ch == '_' {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn check_job_name(name: &str) -> Result<(), ApiError> {
    belfry_core::validate_job_name(name)
        .map_err(|e| ApiError::validation(&format!("slug: {e}")))?;
    if name.contains('/') {
        return Err(ApiError::validation(
            "slug: a job's name in a ping URL cannot hold '/'",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What a check looks like.

/// What the JSON of a check needs besides the check.
#[derive(Clone, Debug)]
pub struct View {
    /// `http://host:port`, the start of the URLs it gives.
    pub root: String,
    /// The API version asked for.
    pub v: u8,
    /// Asked with the read-only key: no uuid or URLs, a `unique_key` instead.
    pub readonly: bool,
}

/// healthchecks.io's times: seconds, `+00:00`.
fn hc_time(t: Timestamp) -> String {
    let s = t.rfc3339();
    format!("{}+00:00", &s.as_str()[..19])
}

fn period_of(e: Option<&Expect>) -> Option<Duration> {
    match e.map(|e| &e.schedule) {
        Some(Schedule::Period { period }) => Some(*period),
        _ => None,
    }
}

/// The name a check shows: its title, or the job's name.
fn display_name(c: &CheckRow) -> &str {
    if c.meta.title.is_empty() {
        &c.name
    } else {
        &c.meta.title
    }
}

/// healthchecks.io's key for a check asked for with the read-only key.
pub fn unique_key(uuid: &Uuid) -> String {
    let hex = uuid.simple().to_string();
    sha1_smol::Sha1::from(&hex[..16]).digest().to_string()
}

/// When the next report is due (healthchecks' `next_ping`): the deadline less the grace.
pub(crate) fn due(c: &CheckRow) -> Option<Timestamp> {
    match (&c.expect, c.late_at, c.paused) {
        (Some(e), Some(late), false) => Some(late - e.grace),
        _ => None,
    }
}

/// healthchecks.io's status: `new` (no outcome yet), `up`, `grace` (due, within its grace),
/// `down` (a problem: failed, late, …), `paused`.
pub fn status(c: &CheckRow, now: Timestamp) -> &'static str {
    if c.paused {
        return "paused";
    }
    let Some(state) = c.state else {
        return "new";
    };
    if state.class() == Class::Problem {
        return "down";
    }
    match (c.late_at, due(c)) {
        (Some(late), _) if now >= late => "down",
        (_, Some(d)) if now >= d => "grace",
        _ => "up",
    }
}

/// A check as healthchecks.io's API shows it, plus belfry's `max_runtime` and `state`.
/// `channels`: the ids of the channels its problems go to.
pub fn check_json(c: &CheckRow, view: &View, channels: &str, now: Timestamp) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(display_name(c)));
    m.insert("slug".into(), json!(c.name));
    m.insert("tags".into(), json!(c.meta.tags.join(" ")));
    m.insert("desc".into(), json!(c.meta.desc));
    let grace = c.expect.as_ref().map_or(DEFAULT_GRACE, |e| e.grace);
    m.insert("grace".into(), json!(grace.as_secs()));
    m.insert("n_pings".into(), json!(c.n_pings));
    m.insert("status".into(), json!(status(c, now)));
    m.insert("started".into(), json!(c.running_since.is_some()));
    m.insert("last_ping".into(), json!(c.last_report.map(hc_time)));
    m.insert("next_ping".into(), json!(due(c).map(hc_time)));
    m.insert("manual_resume".into(), json!(false));
    m.insert("methods".into(), json!(""));
    for k in [
        "subject",
        "subject_fail",
        "start_kw",
        "success_kw",
        "failure_kw",
    ] {
        m.insert(k.into(), json!(""));
    }
    for k in [
        "filter_subject",
        "filter_body",
        "filter_http_body",
        "filter_default_fail",
    ] {
        m.insert(k.into(), json!(false));
    }
    if let Some(d) = c.last_duration {
        m.insert("last_duration".into(), json!(d.as_secs()));
    }
    if view.readonly {
        m.insert("unique_key".into(), json!(unique_key(&c.uuid)));
    } else {
        let update = format!("{}/api/v{}/checks/{}", view.root, view.v, c.uuid);
        m.insert("uuid".into(), json!(c.uuid.to_string()));
        m.insert(
            "ping_url".into(),
            json!(format!("{}/ping/{}", view.root, c.uuid)),
        );
        m.insert("pause_url".into(), json!(format!("{update}/pause")));
        m.insert("resume_url".into(), json!(format!("{update}/resume")));
        m.insert("update_url".into(), json!(update));
        m.insert("channels".into(), json!(channels));
    }
    match c.expect.as_ref().map(|e| &e.schedule) {
        Some(Schedule::Period { period }) => {
            m.insert("timeout".into(), json!(period.as_secs()));
        }
        Some(Schedule::Cron(cron)) => {
            m.insert("schedule".into(), json!(cron.expr()));
            m.insert("tz".into(), json!(cron.tz()));
        }
        None => {}
    }
    if let Some(max) = c.expect.as_ref().and_then(|e| e.max_runtime) {
        m.insert("max_runtime".into(), json!(max.as_secs()));
    }
    m.insert("state".into(), json!(c.state.map(|s| s.name())));
    Value::Object(m)
}

/// A channel's id: a UUID made from its name (version 5), the same on every replica and
/// across restarts.
pub fn channel_id(name: &str) -> Uuid {
    Uuid::new_v5(&CHANNEL_IDS, name.as_bytes())
}

/// The namespace of [`channel_id`].
const CHANNEL_IDS: Uuid = Uuid::from_u128(0x6265_6c66_7279_4a00_8000_6368_616e_6e6c);

/// The ids of the channels a problem of `job` goes to, comma-separated.
fn channels_of(config: &Config, job: &str) -> String {
    let names = config.route(job, &State::Failed, false);
    names
        .iter()
        .map(|n| channel_id(n).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn ping_type(k: PingKind) -> &'static str {
    match k {
        PingKind::Start => "start",
        PingKind::Success | PingKind::Exit(0) => "success",
        PingKind::Fail | PingKind::Exit(_) => "fail",
        PingKind::Log => "log",
    }
}

/// A check's pings as healthchecks.io lists them, newest first; a finish's `duration` is the
/// time since the start it pairs with (the same `rid`, or for one without, the start just
/// before it).
fn pings_json(pings: &[PingRow], view: &View, uuid: &Uuid) -> Value {
    let list: Vec<Value> = pings
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = Map::new();
            m.insert("type".into(), json!(ping_type(p.kind)));
            m.insert("date".into(), json!(p.at.to_rfc3339()));
            m.insert("n".into(), json!(p.n));
            m.insert("scheme".into(), json!("http"));
            m.insert(
                "remote_addr".into(),
                json!(p.remote.clone().unwrap_or_default()),
            );
            m.insert("method".into(), json!(p.method));
            m.insert("ua".into(), json!(p.user_agent.clone().unwrap_or_default()));
            m.insert("rid".into(), json!(p.rid.map(|r| r.to_string())));
            let body_url = (!p.body.is_empty()).then(|| {
                format!(
                    "{}/api/v{}/checks/{uuid}/pings/{}/body",
                    view.root, view.v, p.n
                )
            });
            m.insert("body_url".into(), json!(body_url));
            if let PingKind::Exit(code) = p.kind {
                m.insert("exitstatus".into(), json!(code));
            }
            let finish = matches!(
                p.kind,
                PingKind::Success | PingKind::Fail | PingKind::Exit(_)
            );
            let start = pings[i + 1..].iter().find(|o| match p.rid {
                Some(r) => o.rid == Some(r) && o.kind == PingKind::Start,
                None => o.kind != PingKind::Log,
            });
            if let Some(s) = start.filter(|s| finish && s.kind == PingKind::Start) {
                let secs = p.at.since(s.at).as_secs_f64();
                m.insert("duration".into(), json!((secs * 100.0).round() / 100.0));
            }
            Value::Object(m)
        })
        .collect();
    json!({ "pings": list })
}

// ---------------------------------------------------------------------------------------
// Handling a request.

/// Which key the request gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    ReadWrite = 0,
    ReadOnly = 1,
}

fn access(
    config: &Config,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Access, ApiError> {
    let s = &config.server;
    if s.api_key.is_none() && s.api_key_readonly.is_none() {
        return Err(ApiError::new(
            403,
            "the management API is off: set [server] api_key (and api_key_readonly) in \
             belfry.toml",
        ));
    }
    let given = match headers.get("x-api-key") {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        None => match body.get("api_key") {
            Some(Value::String(k)) => k.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        },
    };
    if given.is_empty() {
        return Err(ApiError::new(401, "missing api key"));
    }
    if s.api_key.as_ref().is_some_and(|k| k.matches(&given)) {
        return Ok(Access::ReadWrite);
    }
    if s.api_key_readonly
        .as_ref()
        .is_some_and(|k| k.matches(&given))
    {
        return Ok(Access::ReadOnly);
    }
    Err(ApiError::new(401, "wrong api key"))
}

/// `http://host`, from the request's `Host` (and `X-Forwarded-Proto`, behind a proxy).
fn root_of(headers: &HeaderMap, fallback: std::net::SocketAddr) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| fallback.to_string(), str::to_owned);
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// `/api/…`: the management API.
pub(crate) async fn handle(app: Arc<Api>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix("/api/").unwrap_or("");
    let methods = methods_of(path);
    let mut r = if parts.method == Method::OPTIONS {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else {
        respond(answer(&app, parts, body).await)
    };
    cors(&mut r, methods);
    r
}

async fn answer(app: &Api, parts: axum::http::request::Parts, body: Body) -> Answer {
    let path = parts.uri.path().strip_prefix("/api/").unwrap_or("");
    let (v, call) = route(&parts.method, path)?;
    let body =
        match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_API_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return Err(ApiError::new(413, "request body too large or cut off")),
            Err(_) => return Err(ApiError::new(408, "request body too slow")),
        };
    // A body is JSON where it is read (create, update); a pause or resume may send an empty
    // form.
    let json = if parts.method == Method::POST && !body.is_empty() && call.takes_json() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(ApiError::validation("value is not an object")),
            Err(_) => return Err(ApiError::bad("could not parse request body")),
        }
    } else {
        Map::new()
    };
    let access = access(&app.config, &parts.headers, &json)?;
    if let Err(wait) = app.limiter.take(access, std::time::Instant::now()) {
        return Err(ApiError {
            status: 429,
            message: format!(
                "rate limited: at most {} requests a minute with this key ([server] \
                 api_rate_limit); try again in {} s",
                app.config.server.api_rate_limit,
                wait.as_secs() + 1
            ),
        });
    }
    if access == Access::ReadOnly && !call.is_read() {
        return Err(ApiError::new(401, "wrong api key"));
    }
    let view = View {
        root: root_of(&parts.headers, app.addr),
        v,
        readonly: access == Access::ReadOnly,
    };
    let query = parts.uri.query().unwrap_or("").to_owned();
    let config = Arc::clone(&app.config);
    let spec = match call {
        Call::CreateCheck | Call::UpdateCheck(_) => Some(Spec::parse(&json)?),
        _ => None,
    };
    let hush = match call {
        Call::Silence(_) | Call::CreateSilence => Some(SilenceSpec::parse(&json)?),
        _ => None,
    };
    let scrub = Arc::clone(&app.config);
    match app
        .worker
        .call(move |store| run(store, &config, call, spec, hush, &view, &query))
        .await
    {
        Some(Ok(a)) => a,
        Some(Err(e)) => Err(ApiError::new(
            503,
            format!("the store: {}", scrub.scrub(&e.to_string())),
        )),
        None => Err(ApiError::new(503, "shutting down")),
    }
}

/// The store's part of a call, on the API's thread.
fn run(
    store: &mut Store,
    config: &Config,
    call: Call,
    spec: Option<Spec>,
    hush: Option<SilenceSpec>,
    view: &View,
    query: &str,
) -> belfry_store::Result<Answer> {
    let now = Timestamp::now();
    let show = |c: &CheckRow| check_json(c, view, &channels_of(config, &c.name), now);
    let find = |store: &Store, id: &CheckId| -> belfry_store::Result<Option<CheckRow>> {
        match id {
            CheckId::Uuid(u) => store.check(JobRef::Uuid(*u)),
            CheckId::UniqueKey(k) => Ok(store
                .checks()?
                .into_iter()
                .find(|c| unique_key(&c.uuid) == *k)),
        }
    };
    let params = query_params(query);
    Ok(match call {
        Call::ListChecks => {
            let tags: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k == "tag")
                .map(|(_, v)| v.as_str())
                .collect();
            let slug = params.iter().find(|(k, _)| k == "slug").map(|(_, v)| v);
            let checks: Vec<Value> = store
                .checks()?
                .iter()
                .filter(|c| tags.iter().all(|t| c.meta.tags.iter().any(|ct| ct == t)))
                .filter(|c| slug.is_none_or(|s| *s == c.name))
                .map(show)
                .collect();
            ok(json!({ "checks": checks }))
        }
        Call::GetCheck(id) => match find(store, &id)? {
            Some(c) => ok(show(&c)),
            None => Err(ApiError::not_found()),
        },
        Call::CreateCheck => {
            let spec = spec.unwrap_or_default();
            // No `unique`: nothing to look for; with the slug in it, one job to look at;
            // else every check is compared.
            let existing = if spec.unique.is_empty() {
                None
            } else if let (true, Some(slug)) = (spec.unique.contains(&Unique::Slug), &spec.slug) {
                store.check(JobRef::Name(slug))?.filter(|c| spec.matches(c))
            } else {
                store.checks()?.into_iter().find(|c| spec.matches(c))
            };
            match existing {
                Some(c) => save(store, config, &spec, c, now)?
                    .map(|c| Reply::Json(StatusCode::OK, show(&c))),
                None => create(store, config, &spec, now)?
                    .map(|c| Reply::Json(StatusCode::CREATED, show(&c))),
            }
        }
        Call::UpdateCheck(u) => match store.check(JobRef::Uuid(u))? {
            Some(c) => save(store, config, &spec.unwrap_or_default(), c, now)?
                .map(|c| Reply::Json(StatusCode::OK, show(&c))),
            None => Err(ApiError::not_found()),
        },
        Call::DeleteCheck(u) => match store.check(JobRef::Uuid(u))? {
            Some(c) if declared(config, &c.name) => Err(ApiError::new(
                409,
                format!(
                    "job {:?} is declared in belfry.toml ([jobs.{}]); remove it there",
                    c.name, c.name
                ),
            )),
            Some(c) => {
                store.delete_job(&c.name)?;
                ok(show(&c))
            }
            None => Err(ApiError::not_found()),
        },
        Call::Pause(u) | Call::Resume(u) => {
            let pause = matches!(call, Call::Pause(_));
            match store.check(JobRef::Uuid(u))? {
                None => Err(ApiError::not_found()),
                Some(c) if !pause && !c.paused => Err(ApiError::new(409, "check is not paused")),
                Some(c) => {
                    if c.paused != pause {
                        store.set_paused(&c.name, pause, now)?;
                    }
                    match store.check(JobRef::Uuid(u))? {
                        Some(c) => ok(show(&c)),
                        None => Err(ApiError::not_found()),
                    }
                }
            }
        }
        Call::Pings(u) => match store.check(JobRef::Uuid(u))? {
            Some(c) => ok(pings_json(
                &store.pings(&c.name, belfry_store::PINGS_PER_JOB)?,
                view,
                &u,
            )),
            None => Err(ApiError::not_found()),
        },
        Call::PingBody(u, n) => match store.check(JobRef::Uuid(u))? {
            Some(c) => match store
                .pings(&c.name, belfry_store::PINGS_PER_JOB)?
                .into_iter()
                .find(|p| p.n == n)
            {
                Some(p) if !p.body.is_empty() => Ok(Reply::Text(p.body)),
                _ => Err(ApiError::not_found()),
            },
            None => Err(ApiError::not_found()),
        },
        Call::Flips(id) => match find(store, &id)? {
            Some(c) => {
                let window = match flip_window(&params, now) {
                    Ok(w) => w,
                    Err(e) => return Ok(Err(e)),
                };
                let flips: Vec<Value> = store
                    .flips(&c.name, belfry_store::FLIPS_PER_JOB)?
                    .iter()
                    .filter(|f| window.0.is_none_or(|s| f.at >= s))
                    .filter(|f| window.1.is_none_or(|e| f.at < e))
                    .map(|f| json!({ "timestamp": hc_time(f.at), "up": u8::from(f.up()) }))
                    .collect();
                // A bare list, as healthchecks.io's documentation shows it.
                ok(Value::Array(flips))
            }
            None => Err(ApiError::not_found()),
        },
        Call::Runs(u) => match store.check(JobRef::Uuid(u))? {
            Some(c) => {
                let limit = match number_param(&params, "limit") {
                    Ok(l) => l.map_or(50, |l| l.min(u64::from(MAX_LIST)) as u32),
                    Err(e) => return Ok(Err(e)),
                };
                let with_output = params.iter().any(|(k, v)| k == "output" && v == "1");
                let runs: Vec<Value> = store
                    .runs(&c.name, limit, with_output)?
                    .iter()
                    .map(belfry::internal::views::run_json)
                    .collect();
                ok(json!({ "runs": runs }))
            }
            None => Err(ApiError::not_found()),
        },
        Call::Channels => {
            let channels: Vec<Value> = config
                .channels
                .iter()
                .map(|c| json!({ "id": channel_id(&c.name).to_string(), "name": c.name, "kind": c.kind() }))
                .collect();
            ok(json!({ "channels": channels }))
        }
        Call::Outbox => {
            let status = params
                .iter()
                .find(|(k, _)| k == "status")
                .map(|(_, v)| v.as_str());
            if let Some(s) = status
                && !matches!(s, "pending" | "sending" | "delivered" | "dead")
            {
                return Ok(Err(ApiError::bad(format!(
                    "status: {s:?} is not pending, sending, delivered or dead"
                ))));
            }
            let rows: Vec<Value> = store
                .outbox_rows(status == Some("delivered"), MAX_LIST)?
                .iter()
                .filter(|r| status.is_none_or(|s| r.status == s))
                .map(|r| belfry::internal::views::outbox_json(config, r))
                .collect();
            ok(json!({ "rows": rows }))
        }
        Call::Silence(u) => match store.check(JobRef::Uuid(u))? {
            None => Err(ApiError::not_found()),
            Some(c) => {
                let h = hush.unwrap_or_default();
                let scope = belfry_core::Scope::Job(c.name);
                acted(make_silence(store, &scope, &h, now))?
            }
        },
        Call::CreateSilence => {
            let h = hush.unwrap_or_default();
            match actions::scope(store, h.job.as_deref(), h.tag.as_deref()) {
                Ok(scope) => acted(make_silence(store, &scope, &h, now))?,
                Err(e) => acted(Err(e))?,
            }
        }
        Call::Silences => {
            let list: Vec<Value> = store.silences(now)?.iter().map(silence_json).collect();
            ok(json!({ "silences": list }))
        }
        Call::EndSilence(id) => acted(
            actions::end_silence(store, id, now)
                .map(|()| Reply::Json(StatusCode::OK, json!({ "ended": id }))),
        )?,
        Call::Ack(u) => match store.check(JobRef::Uuid(u))? {
            None => Err(ApiError::not_found()),
            Some(c) => match actions::acknowledge(store, &c.name, "api", now) {
                Ok(()) => match store.check(JobRef::Uuid(u))? {
                    Some(c) => ok(show(&c)),
                    None => Err(ApiError::not_found()),
                },
                Err(e) => acted(Err(e))?,
            },
        },
        Call::TestChannel(id) => match config.channels.iter().find(|c| channel_id(&c.name) == id) {
            None => Err(ApiError::not_found()),
            Some(ch) => acted(
                actions::test_message(store, config, &ch.name, "api", now)
                    .map(|row| Reply::Json(StatusCode::ACCEPTED, json!({ "outbox_id": row }))),
            )?,
        },
        Call::RetryOutbox(id) => {
            let revived = store.retry_outbox(Some(&[id]), now, config.delivery.give_up_after)?;
            if revived.contains(&id) {
                let rows = store.outbox_rows_by_id(&[id])?;
                ok(rows.first().map_or(Value::Null, |r| {
                    belfry::internal::views::outbox_json(config, r)
                }))
            } else {
                match store.outbox_row_status(id)? {
                    None => Err(ApiError::not_found()),
                    Some((status, _, _)) => Err(ApiError::new(
                        409,
                        format!(
                            "outbox row {id} is {status}: only a pending or dead row is retried"
                        ),
                    )),
                }
            }
        }
    })
}

/// A silence as the API shows it.
pub fn silence_json(s: &belfry_core::Silence) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    match &s.scope {
        belfry_core::Scope::Job(j) => m.insert("job".into(), json!(j)),
        belfry_core::Scope::Tag(t) => m.insert("tag".into(), json!(t)),
    };
    m.insert("until".into(), json!(s.until.to_rfc3339()));
    m.insert("reason".into(), json!(s.reason));
    m.insert("by".into(), json!(s.by));
    m.insert("created".into(), json!(s.created.to_rfc3339()));
    Value::Object(m)
}

/// Makes the silence a body asks for, answered with 201 and the silence.
fn make_silence(
    store: &mut Store,
    scope: &belfry_core::Scope,
    h: &SilenceSpec,
    now: Timestamp,
) -> Result<Reply, actions::ActionError> {
    let until = actions::silence_end(h.for_.as_deref(), h.until.as_deref(), now)?;
    let s = actions::silence(store, scope, until, &h.reason, "api", now)?;
    Ok(Reply::Json(StatusCode::CREATED, silence_json(&s)))
}

/// An action's outcome as an answer: what it refused is a 400, what it did not find a 404,
/// and a store failure the store's error.
fn acted(r: Result<Reply, actions::ActionError>) -> belfry_store::Result<Answer> {
    match r {
        Ok(reply) => Ok(Ok(reply)),
        Err(actions::ActionError::Refused(m)) => Ok(Err(ApiError::bad(m))),
        Err(actions::ActionError::NotFound(m)) => Ok(Err(ApiError::new(404, m))),
        Err(actions::ActionError::Store(e)) => Err(e),
    }
}

/// What a silence's body asks: `for` (a duration: `"2h"`, or seconds) or `until` (RFC 3339),
/// a `reason`, and for `POST silences/` a `job` or a `tag`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SilenceSpec {
    /// How long.
    pub for_: Option<String>,
    /// Until when.
    pub until: Option<String>,
    /// Why.
    pub reason: String,
    /// The job to silence.
    pub job: Option<String>,
    /// The tag to silence.
    pub tag: Option<String>,
}

impl SilenceSpec {
    /// Reads a silence's body; a field of the wrong type is a 400 that names it.
    pub fn parse(json: &Map<String, Value>) -> Result<SilenceSpec, ApiError> {
        let text = |k: &str| -> Result<Option<String>, ApiError> {
            match json.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::validation(&format!("{k} is not a string"))),
            }
        };
        let for_ = match json.get("for") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(secs) => Some(format!("{secs}s")),
                None => {
                    return Err(ApiError::validation("for is not a whole number of seconds"));
                }
            },
            _ => text("for")?,
        };
        Ok(SilenceSpec {
            for_,
            until: text("until")?,
            reason: text("reason")?.unwrap_or_default(),
            job: text("job")?,
            tag: text("tag")?,
        })
    }
}

/// Whether belfry.toml declares `job`'s schedule (the configuration then owns it).
fn declared(config: &Config, job: &str) -> bool {
    config.jobs.get(job).is_some_and(|j| j.expect.is_some())
}

/// Creates the check `spec` describes.
fn create(
    store: &mut Store,
    config: &Config,
    spec: &Spec,
    now: Timestamp,
) -> belfry_store::Result<Result<CheckRow, ApiError>> {
    let name = match spec.new_job_name() {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    if store.check(JobRef::Name(&name))?.is_some() {
        // belfry's job names are unique: a second check with the slug cannot be made.
        return Ok(Err(ApiError::new(
            409,
            format!(
                "a check with slug {name:?} exists already; update it, or name it in \"unique\""
            ),
        )));
    }
    if declared(config, &name) && (spec.timeout.is_some() || spec.schedule.is_some()) {
        return Ok(Err(owned_by_config(&name)));
    }
    let expect = match spec.expect(None, !declared(config, &name)) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    let meta = spec.meta(&CheckMeta::default());
    let change = CheckChange {
        expect: expect.as_ref().map(Some),
        meta: meta.as_ref(),
    };
    store.save_check(&name, &change, now)?;
    Ok(store
        .check(JobRef::Name(&name))?
        .ok_or_else(ApiError::not_found))
}

fn owned_by_config(name: &str) -> ApiError {
    ApiError::new(
        409,
        format!("job {name:?}'s schedule is set in belfry.toml ([jobs.{name}]); change it there"),
    )
}

/// Changes check `c` as `spec` asks.
fn save(
    store: &mut Store,
    config: &Config,
    spec: &Spec,
    c: CheckRow,
    now: Timestamp,
) -> belfry_store::Result<Result<CheckRow, ApiError>> {
    if let Some(slug) = &spec.slug
        && *slug != c.name
    {
        return Ok(Err(ApiError::validation(&format!(
            "slug: a check's slug is its job's name, which does not change (it is {:?})",
            c.name
        ))));
    }
    let expect = match spec.expect(c.expect.as_ref(), false) {
        Ok(e) => e.filter(|e| Some(e) != c.expect.as_ref()),
        Err(e) => return Ok(Err(e)),
    };
    if expect.is_some() && declared(config, &c.name) {
        return Ok(Err(owned_by_config(&c.name)));
    }
    let meta = spec.meta(&c.meta);
    let change = CheckChange {
        expect: expect.as_ref().map(Some),
        meta: meta.as_ref(),
    };
    if change.expect.is_some() || change.meta.is_some() {
        store.save_check(&c.name, &change, now)?;
    }
    Ok(store
        .check(JobRef::Name(&c.name))?
        .ok_or_else(ApiError::not_found))
}

/// The query's pairs, percent-decoded.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn number_param(params: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    match params.iter().rev().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("{name}: {v:?} is not a whole number"))),
    }
}

/// `?seconds=`, `?start=`, `?end=` (UNIX times) of a flips request: the window's start and
/// end.
fn flip_window(
    params: &[(String, String)],
    now: Timestamp,
) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let at = |s: u64| Timestamp::from_millis((s as i64).saturating_mul(1000));
    let mut start = number_param(params, "start")?.map(at);
    let end = number_param(params, "end")?.map(at);
    if let Some(s) = number_param(params, "seconds")? {
        let from = now - Duration::from_secs(s.min(LONGEST.as_secs() * 100));
        start = Some(start.map_or(from, |t| t.max(from)));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f0a5b5e-35cb-4f6e-9a3b-6d1a8c2f0b11";

    #[test]
    fn paths_and_methods_are_read_as_healthchecks_io_does() {
        let id = Uuid::parse_str(ID).unwrap();
        let get = |p: &str| route(&Method::GET, p);
        assert_eq!(get("v3/checks/"), Ok((3, Call::ListChecks)));
        assert_eq!(get("v1/checks/"), Ok((1, Call::ListChecks)));
        assert_eq!(
            route(&Method::POST, "v2/checks/"),
            Ok((2, Call::CreateCheck))
        );
        assert_eq!(
            get(&format!("v3/checks/{ID}")),
            Ok((3, Call::GetCheck(CheckId::Uuid(id))))
        );
        let key = unique_key(&id);
        assert_eq!(
            get(&format!("v3/checks/{key}/flips/")),
            Ok((3, Call::Flips(CheckId::UniqueKey(key.clone()))))
        );
        assert_eq!(
            route(&Method::DELETE, &format!("v3/checks/{ID}")),
            Ok((3, Call::DeleteCheck(id)))
        );
        assert_eq!(
            route(&Method::POST, &format!("v3/checks/{ID}/pause")),
            Ok((3, Call::Pause(id)))
        );
        assert_eq!(
            get(&format!("v3/checks/{ID}/pings/7/body")),
            Ok((3, Call::PingBody(id, 7)))
        );
        assert_eq!(
            route(&Method::POST, "v3/outbox/12/retry"),
            Ok((3, Call::RetryOutbox(12)))
        );
        assert_eq!(get("v4/checks/").unwrap_err().status, 404);
        assert_eq!(get("v3/checks/nope").unwrap_err().status, 404);
        assert_eq!(
            get("v3/checks"),
            Ok((3, Call::ListChecks)),
            "the slash may be left out"
        );
        assert_eq!(
            route(&Method::POST, &format!("v3/checks/{ID}/flips")),
            Ok((3, Call::Flips(CheckId::Uuid(id)))),
            "the healthchecks crate's form"
        );
        assert_eq!(get("v3/checks/x/y/z/w/v/u").unwrap_err().status, 404);
        assert_eq!(
            get(&format!("v3/checks/{ID}/pause")).unwrap_err().status,
            405
        );
        assert_eq!(route(&Method::PUT, "v3/checks/").unwrap_err().status, 405);
        assert_eq!(
            route(&Method::POST, &format!("v3/checks/{key}"))
                .unwrap_err()
                .status,
            404,
            "a unique key only reads"
        );
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn refused(v: Value) -> String {
        Spec::parse(&obj(v)).unwrap_err().message
    }

    #[test]
    fn a_body_is_checked_with_healthchecks_io_messages() {
        let s = Spec::parse(&obj(json!({
            "name": "Backup DB", "tags": "prod  db", "timeout": 3600, "grace": 60,
            "unique": ["name"], "api_key": "k", "channels": "*", "manual_resume": false
        })))
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("Backup DB"));
        assert_eq!(s.tags, Some(vec!["prod".to_owned(), "db".to_owned()]));
        assert_eq!(s.timeout, Some(Duration::from_secs(3600)));
        assert_eq!(s.unique, [Unique::Name]);
        assert_eq!(s.new_job_name().unwrap(), "backup-db");
        assert_eq!(
            refused(json!({"timeout": "1h"})),
            "json validation error: timeout is not a number"
        );
        assert_eq!(
            refused(json!({"timeout": 0})),
            "json validation error: timeout is too small"
        );
        assert_eq!(
            refused(json!({"grace": 31_536_001})),
            "json validation error: grace is too large"
        );
        assert_eq!(
            refused(json!({"name": null})),
            "json validation error: name is not a string"
        );
        assert_eq!(
            refused(json!({"unique": "name"})),
            "json validation error: unique is not an array"
        );
        assert_eq!(
            refused(json!({"unique": ["desc"]})),
            "json validation error: an item in 'unique' has unexpected value"
        );
        assert_eq!(
            refused(json!({"tz": "Mars/Olympus"})),
            "json validation error: tz is not a valid timezone"
        );
        assert!(refused(json!({"schedule": "*-*~1 12:00"})).contains("not a valid cron"));
        assert!(refused(json!({"manual_resume": true})).contains("not supported"));
        assert!(refused(json!({"channels": "ops"})).contains("routes them"));
        assert!(refused(json!({"name": "x".repeat(101)})).contains("name is too long"));
    }

    #[test]
    fn a_schedule_is_merged_with_the_one_a_check_has() {
        let spec = |v: Value| Spec::parse(&obj(v)).unwrap();
        let new = spec(json!({})).expect(None, true).unwrap().unwrap();
        assert_eq!(new.schedule, Schedule::period(DEFAULT_TIMEOUT).unwrap());
        assert_eq!(new.grace, DEFAULT_GRACE);
        let cron = spec(json!({"schedule": "0 3 * * *", "tz": "Europe/Riga", "grace": 120}))
            .expect(Some(&new), false)
            .unwrap()
            .unwrap();
        assert_eq!(cron.grace, Duration::from_secs(120));
        let moved = spec(json!({"tz": "Asia/Tokyo"}))
            .expect(Some(&cron), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            moved.schedule,
            Schedule::cron("0 3 * * *", Some("Asia/Tokyo")).unwrap()
        );
        assert_eq!(moved.grace, Duration::from_secs(120), "the grace stays");
        assert!(
            spec(json!({"name": "x"}))
                .expect(Some(&cron), false)
                .unwrap()
                .is_none()
        );
    }

    fn row(
        state: Option<State>,
        paused: bool,
        late_in_ms: Option<i64>,
        now: Timestamp,
    ) -> CheckRow {
        CheckRow {
            name: "backup".into(),
            uuid: Uuid::parse_str(ID).unwrap(),
            expect: Some(
                Expect::new(
                    Schedule::period(Duration::from_secs(600)).unwrap(),
                    Duration::from_secs(60),
                    None,
                )
                .unwrap(),
            ),
            expect_set: Some(now),
            paused,
            late_at: late_in_ms.map(|ms| now.add_millis(ms)),
            last_report: Some(now.add_millis(-1000)),
            created: now,
            state,
            running_since: None,
            meta: CheckMeta::default(),
            n_pings: 4,
            last_duration: Some(Duration::from_secs(3)),
            acked: None,
        }
    }

    #[test]
    fn status_follows_healthchecks_io() {
        let now = Timestamp::now();
        assert_eq!(status(&row(None, false, Some(60_000), now), now), "new");
        assert_eq!(
            status(&row(Some(State::Ok), false, Some(90_000), now), now),
            "up"
        );
        assert_eq!(
            status(&row(Some(State::Ok), false, Some(30_000), now), now),
            "grace",
            "due 30 s ago, within its minute of grace"
        );
        assert_eq!(
            status(&row(Some(State::Ok), false, Some(-1), now), now),
            "down"
        );
        assert_eq!(
            status(&row(Some(State::Late), false, None, now), now),
            "down"
        );
        assert_eq!(
            status(&row(Some(State::Failed), true, None, now), now),
            "paused"
        );
    }

    #[test]
    fn a_check_shows_its_urls_to_the_read_write_key_and_its_unique_key_to_the_read_only_one() {
        let now = Timestamp::now();
        let c = row(Some(State::Ok), false, Some(90_000), now);
        let view = View {
            root: "http://h:8000".into(),
            v: 3,
            readonly: false,
        };
        let j = check_json(&c, &view, "", now);
        assert_eq!(j["slug"], "backup");
        assert_eq!(j["name"], "backup", "no title: the job's name");
        assert_eq!(j["timeout"], 600);
        assert_eq!(j["grace"], 60);
        assert_eq!(j["n_pings"], 4);
        assert_eq!(j["last_duration"], 3);
        assert_eq!(j["ping_url"], format!("http://h:8000/ping/{ID}"));
        assert_eq!(
            j["pause_url"],
            format!("http://h:8000/api/v3/checks/{ID}/pause")
        );
        assert!(j.get("unique_key").is_none());
        let ro = check_json(
            &c,
            &View {
                readonly: true,
                ..view
            },
            "",
            now,
        );
        assert!(ro.get("uuid").is_none() && ro.get("ping_url").is_none());
        assert_eq!(ro["unique_key"].as_str().unwrap().len(), 40);
        let t = ro["next_ping"].as_str().unwrap();
        assert!(t.ends_with("+00:00") && t.len() == 25, "{t}");
    }

    #[test]
    fn each_key_has_its_own_bucket_which_refills_with_time() {
        let l = Limiter::new(60);
        let t0 = std::time::Instant::now();
        for _ in 0..60 {
            assert!(l.take(Access::ReadWrite, t0).is_ok());
        }
        let wait = l.take(Access::ReadWrite, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            l.take(Access::ReadOnly, t0).is_ok(),
            "the other key's bucket is full"
        );
        assert!(
            l.take(Access::ReadWrite, t0 + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            l.take(Access::ReadWrite, t0 + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn unique_keys_are_healthchecks_io_s() {
        // sha1 of the first 16 hex digits of the uuid, as healthchecks.io computes it.
        let id = Uuid::parse_str("00000000-0000-0000-0000-000000000000").unwrap();
        assert_eq!(
            unique_key(&id),
            sha1_smol::Sha1::from("0000000000000000")
                .digest()
                .to_string()
        );
        assert_ne!(unique_key(&Uuid::parse_str(ID).unwrap()), unique_key(&id));
    }
}
