//! The dashboard: pages rendered on the server (minijinja templates in `templates/`, assets
//! in `assets/`, both compiled into the binary), a login, and forms for what people do
//! (silence, acknowledge, pause, retry, send a test). Live updates are a small script that
//! fetches a page's live part again every few seconds; without it every page still works.
//!
//! Like the API, handlers never call the store: they hand closures to the API's thread.

// A handler's early answer (the login page, an error page) is a `Response` in `Err`: it ends
// the request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod auth;
mod view;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use belfry::config::Config;
use belfry_core::{Scope, Timestamp};
use belfry_store::{JobRef, Store};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};

use crate::actions::{self, ActionError};
use crate::api::Worker;
use crate::limits::BODY_TIMEOUT;
use auth::{Auth, Who};
pub use auth::{BadHash, hash_password, random_token};

/// Seconds between two fetches of a page's live part.
const LIVE_EVERY_S: u32 = 5;

/// The largest form read.
const MAX_FORM: usize = 16 * 1024;

/// Rows of the outbox page.
const OUTBOX_ROWS: u32 = 200;

/// What the dashboard's handlers share.
pub(crate) struct Web {
    config: Arc<Config>,
    worker: Worker,
    auth: Auth,
    env: Environment<'static>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("jobs.html", include_str!("../../templates/jobs.html")),
    (
        "jobs_live.html",
        include_str!("../../templates/jobs_live.html"),
    ),
    ("job.html", include_str!("../../templates/job.html")),
    (
        "job_live.html",
        include_str!("../../templates/job_live.html"),
    ),
    (
        "silences.html",
        include_str!("../../templates/silences.html"),
    ),
    ("outbox.html", include_str!("../../templates/outbox.html")),
    (
        "channels.html",
        include_str!("../../templates/channels.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
];

impl Web {
    /// The dashboard of `config`; `secret` signs its sessions (kept in the store, so that
    /// replicas share it).
    pub(crate) fn new(config: Arc<Config>, worker: Worker, secret: &str) -> Result<Web, BadHash> {
        let mut env = Environment::new();
        env.add_filter("urlencode", |s: String| {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        });
        for (name, source) in TEMPLATES {
            // The templates are part of the binary and tested; one that does not parse is a
            // bug of this build, found by every test that starts a server.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        Ok(Web {
            auth: Auth::new(&config, secret)?,
            config,
            worker,
            env,
        })
    }

    fn render(&self, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => page(StatusCode::OK, html),
            Err(e) => {
                crate::log::warn(&format!("dashboard: rendering {name}: {e}"));
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>error</title><p>This page could not be made; the \
                     server's log says why.</p>"
                        .into(),
                )
            }
        }
    }

    fn error(&self, status: StatusCode, who: Option<&Who>, message: &str) -> Response {
        let mut r = self.render(
            "error.html",
            context! { title => "Not done", message, who => who.map(who_value), nav => "" },
        );
        *r.status_mut() = status;
        r
    }

    /// Runs `f` on the API's thread; a page that says why when the store fails.
    async fn store<R: Send + 'static>(
        &self,
        who: &Who,
        f: impl FnOnce(&mut Store) -> Result<R, belfry_store::Error> + Send + 'static,
    ) -> Result<R, Response> {
        match self.worker.call(f).await {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(who),
                &format!("the store: {}", self.config.scrub(&e.to_string())),
            )),
            None => Err(self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(who),
                "the server is stopping",
            )),
        }
    }
}

fn who_value(w: &Who) -> Value {
    context! { name => w.name.clone(), read_only => w.read_only }
}

/// A page, with the headers every page has: no caching, no framing, scripts and styles from
/// this server only.
fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

fn redirect(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(r.headers_mut());
    r
}

/// A path of this site to go back to (never another site's: `//host` and schemes are not).
fn local_path(back: &str) -> &str {
    if back.starts_with('/') && !back.starts_with("//") && !back.contains(['\\', '\r', '\n']) {
        back
    } else {
        "/"
    }
}

/// `back` with a notice for the page to show.
fn with_notice(back: &str, notice: &str) -> String {
    let back = local_path(back);
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "notice" {
            q.append_pair(&k, &v);
        }
    }
    q.append_pair("notice", notice);
    format!("{path}?{}", q.finish())
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Who is asking, from a bearer token or a session cookie.
fn who(web: &Web, headers: &HeaderMap) -> Option<Who> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return auth::bearer(&web.config, h);
    }
    web.auth
        .session(cookie(headers, auth::COOKIE)?, Timestamp::now())
}

/// The request's path and query, for coming back after a login.
fn here(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map_or("/".into(), |p| p.as_str().to_owned())
}

/// Who is asking, or the answer for someone who is not logged in: the login page for a page,
/// 401 for a page's live part (the script then stops).
fn require(web: &Web, req: &Request) -> Result<Who, Response> {
    match who(web, req.headers()) {
        Some(w) => Ok(w),
        None if live(req) => Err((StatusCode::UNAUTHORIZED, "log in again").into_response()),
        None if req.headers().contains_key(header::AUTHORIZATION) => {
            Err((StatusCode::UNAUTHORIZED, "wrong bearer token").into_response())
        }
        None => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("next", &here(req));
            Err(redirect(&format!("/login?{}", q.finish())))
        }
    }
}

fn live(req: &Request) -> bool {
    req.headers().contains_key("x-belfry-live")
}

/// The context every page has.
fn base(web: &Web, who: &Who, req: &Request, title: &str, nav: &str) -> Value {
    context! {
        title,
        nav,
        who => who_value(who),
        csrf => web.auth.form_token(who),
        here => here(req),
        notice => req.uri().query().and_then(|q| query_param(q, "notice")),
        live_every => LIVE_EVERY_S,
    }
}

fn job_href(name: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("name", name);
    format!("/job?{}", q.finish())
}

// ---------------------------------------------------------------------------------------
// Pages.

/// `/`: every job, problems first.
pub(crate) async fn jobs(web: Arc<Web>, req: Request) -> Response {
    let who = match require(&web, &req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let filter = view::Filter::parse(&query);
    let f = filter.clone();
    let data = web
        .store(&who, move |store| {
            let now = Timestamp::now();
            let checks = store.checks()?;
            let silences = store.silences(now)?;
            let mut page = view::jobs_page(&checks, &silences, &f, now);
            for line in &mut page.lines {
                line.strip = view::strip(&store.runs(&line.name, view::STRIP, false)?);
            }
            Ok(page)
        })
        .await;
    let page = match data {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut live_q = filter.query(filter.page);
    if !live_q.is_empty() {
        live_q.insert(0, '?');
    }
    let ctx = context! {
        page => Value::from(Serde(&page)),
        filter => Value::from(Serde(&filter)),
        live_url => format!("/{live_q}"),
        states => ["problem", "due", "running", "ok", "paused", "new"],
        ..base(&web, &who, &req, "Jobs", "jobs")
    };
    web.render(
        if live(&req) {
            "jobs_live.html"
        } else {
            "jobs.html"
        },
        ctx,
    )
}

/// `/job?name=…`: one job, everything known of it.
pub(crate) async fn job(web: Arc<Web>, req: Request) -> Response {
    let who = match require(&web, &req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(name) = req.uri().query().and_then(|q| query_param(q, "name")) else {
        return web.error(StatusCode::BAD_REQUEST, Some(&who), "which job? (?name=…)");
    };
    let config = Arc::clone(&web.config);
    let n = name.clone();
    let data = web
        .store(&who, move |store| {
            let now = Timestamp::now();
            let Some(c) = store.check(JobRef::Name(&n))? else {
                return Ok(None);
            };
            let silences = store.silences(now)?;
            let scrub = |s: &str| config.scrub(s).into_owned();
            let line = view::job_line(&c, &silences, now);
            let covering: Vec<SilenceView> = silences
                .iter()
                .filter(|s| s.holds(&c.name, &c.meta.tags, now))
                .map(|s| silence_view(s, now))
                .collect();
            Ok(Some(JobData {
                job: line,
                uuid: c.uuid.to_string(),
                desc: c.meta.desc.clone(),
                paused: c.paused,
                problem: c.state.is_some_and(|s| s.is_problem()),
                acked: c.acked.is_some(),
                n_pings: c.n_pings,
                next_times: view::next_times(&c, now),
                silences: covering,
                runs: store
                    .runs(&c.name, 50, true)?
                    .iter()
                    .map(|r| view::run_view(r, now))
                    .collect(),
                pings: store
                    .pings(&c.name, 50)?
                    .iter()
                    .map(|p| view::ping_view(p, now))
                    .collect(),
                flips: store
                    .flips(&c.name, 50)?
                    .iter()
                    .map(|f| view::flip_view(f, now))
                    .collect(),
                notifications: store
                    .notifications(&c.name, 50)?
                    .iter()
                    .map(|x| view::notification_view(x, now, &scrub))
                    .collect(),
            }))
        })
        .await;
    let data = match data {
        Ok(Some(d)) => d,
        Ok(None) => {
            return web.error(
                StatusCode::NOT_FOUND,
                Some(&who),
                &format!("no job is named {name:?}"),
            );
        }
        Err(r) => return r,
    };
    let ctx = context! {
        d => Value::from(Serde(&data)),
        live_url => job_href(&name),
        ..base(&web, &who, &req, &name, "jobs")
    };
    let ctx = context! { name, ..ctx };
    web.render(
        if live(&req) {
            "job_live.html"
        } else {
            "job.html"
        },
        ctx,
    )
}

/// What a job's page shows.
#[derive(serde::Serialize)]
struct JobData {
    job: view::JobLine,
    uuid: String,
    desc: String,
    paused: bool,
    problem: bool,
    acked: bool,
    n_pings: u64,
    next_times: Vec<String>,
    silences: Vec<SilenceView>,
    runs: Vec<view::RunView>,
    pings: Vec<view::PingView>,
    flips: Vec<view::FlipView>,
    notifications: Vec<view::NotificationView>,
}

/// A silence as the pages show it.
#[derive(serde::Serialize)]
struct SilenceView {
    id: i64,
    kind: &'static str,
    target: String,
    href: Option<String>,
    until: view::When,
    reason: String,
    by: String,
    created: view::When,
}

fn silence_view(s: &belfry_core::Silence, now: Timestamp) -> SilenceView {
    let (kind, target) = match &s.scope {
        Scope::Job(j) => ("job", j.as_str()),
        Scope::Tag(t) => ("tag", t.as_str()),
    };
    SilenceView {
        id: s.id,
        kind,
        target: target.to_owned(),
        href: (kind == "job").then(|| job_href(target)),
        until: view::when(s.until, now),
        reason: s.reason.clone(),
        by: s.by.clone(),
        created: view::when(s.created, now),
    }
}

/// `/silences`: the silences in force, and a form to silence a tag.
pub(crate) async fn silences(web: Arc<Web>, req: Request) -> Response {
    let who = match require(&web, &req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let data = web
        .store(&who, |store| {
            let now = Timestamp::now();
            let tags: std::collections::BTreeSet<String> = store
                .checks()?
                .into_iter()
                .flat_map(|c| c.meta.tags)
                .collect();
            let list: Vec<SilenceView> = store
                .silences(now)?
                .iter()
                .map(|s| silence_view(s, now))
                .collect();
            Ok((list, tags))
        })
        .await;
    let (list, tags) = match data {
        Ok(d) => d,
        Err(r) => return r,
    };
    let ctx = context! {
        silences => Value::from(Serde(&list)),
        tags => Value::from(Serde(&tags)),
        ..base(&web, &who, &req, "Silences", "silences")
    };
    web.render("silences.html", ctx)
}

/// `/outbox`: what is waiting or was given up, with a retry for each.
pub(crate) async fn outbox(web: Arc<Web>, req: Request) -> Response {
    let who = match require(&web, &req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let config = Arc::clone(&web.config);
    let data = web
        .store(&who, move |store| {
            let now = Timestamp::now();
            let scrub = |s: &str| config.scrub(s).into_owned();
            let counts = store.outbox_counts()?;
            let rows: Vec<view::OutboxView> = store
                .outbox_rows(false, OUTBOX_ROWS)?
                .iter()
                .map(|r| view::outbox_view(r, now, &scrub))
                .collect();
            Ok((counts, rows))
        })
        .await;
    let (counts, rows) = match data {
        Ok(d) => d,
        Err(r) => return r,
    };
    let ctx = context! {
        rows => Value::from(Serde(&rows)),
        counts => context! {
            pending => counts.pending, sending => counts.sending,
            delivered => counts.delivered, dead => counts.dead,
        },
        ..base(&web, &who, &req, "Outbox", "outbox")
    };
    web.render("outbox.html", ctx)
}

/// `/channels`: the configured channels, each with a test message.
pub(crate) async fn channels(web: Arc<Web>, req: Request) -> Response {
    let who = match require(&web, &req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let list: Vec<Value> = web
        .config
        .channels
        .iter()
        .map(|c| context! { name => c.name.clone(), kind => c.kind() })
        .collect();
    let ctx = context! { channels => list, ..base(&web, &who, &req, "Channels", "channels") };
    web.render("channels.html", ctx)
}

// ---------------------------------------------------------------------------------------
// Logging in and out.

fn login_context(next: &str, error: Option<&str>, form: &str, no_users: bool) -> Value {
    context! {
        title => "Log in",
        nav => "",
        next => local_path(next),
        error,
        form,
        no_users,
    }
}

fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie_flags(web: &Web) -> &'static str {
    if web.config.server.cookie_secure {
        "Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    }
}

/// The login page, with a new login cookie whose value the form carries back.
fn login_form(web: &Web, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let form = auth::random_token();
    let mut r = web.render(
        "login.html",
        login_context(next, error, &form, !web.auth.has_users()),
    );
    *r.status_mut() = status;
    set_cookie(
        &mut r,
        &format!(
            "{}={form}; Max-Age=3600; {}",
            auth::LOGIN_COOKIE,
            cookie_flags(web)
        ),
    );
    r
}

/// `GET /login`.
pub(crate) async fn login_page(web: Arc<Web>, req: Request) -> Response {
    let next = req
        .uri()
        .query()
        .and_then(|q| query_param(q, "next"))
        .unwrap_or_else(|| "/".into());
    login_form(&web, StatusCode::OK, &next, None)
}

/// Reads a form body (url-encoded) into its fields.
async fn form(body: Body) -> Result<Vec<(String, String)>, StatusCode> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_FORM)).await {
        Ok(Ok(b)) => Ok(url::form_urlencoded::parse(&b)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()),
        Ok(Err(_)) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
    }
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /login`.
pub(crate) async fn login(web: Arc<Web>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let fields = match form(body).await {
        Ok(f) => f,
        Err(s) => return web.error(s, None, "the form could not be read"),
    };
    let next = field(&fields, "next").unwrap_or("/").to_owned();
    let token = field(&fields, "form").unwrap_or("");
    if token.is_empty() || cookie(&parts.headers, auth::LOGIN_COOKIE) != Some(token) {
        return login_form(
            &web,
            StatusCode::FORBIDDEN,
            &next,
            Some("This form has expired or did not come from this page; please try again."),
        );
    }
    if !web.auth.may_try() {
        return login_form(
            &web,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some("Too many failed logins lately; wait a minute."),
        );
    }
    let user = field(&fields, "user").unwrap_or("").trim().to_owned();
    let password = field(&fields, "password").unwrap_or("").to_owned();
    let w = Arc::clone(&web);
    let session =
        tokio::task::spawn_blocking(move || w.auth.login(&user, &password, Timestamp::now()))
            .await
            .ok()
            .flatten();
    match session {
        Some(s) => {
            let mut r = redirect(local_path(&next));
            set_cookie(
                &mut r,
                &format!(
                    "{}={s}; Max-Age={}; {}",
                    auth::COOKIE,
                    auth::SESSION.as_secs(),
                    cookie_flags(&web)
                ),
            );
            set_cookie(
                &mut r,
                &format!("{}=; Max-Age=0; {}", auth::LOGIN_COOKIE, cookie_flags(&web)),
            );
            r
        }
        None => {
            web.auth.failed();
            login_form(
                &web,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That user name and password do not match."),
            )
        }
    }
}

/// `POST /logout`.
pub(crate) async fn logout(web: Arc<Web>, req: Request) -> Response {
    let who = who(&web, req.headers());
    let (_, body) = req.into_parts();
    let fields = form(body).await.unwrap_or_default();
    if let Some(w) = &who
        && !web.auth.form_ok(w, field(&fields, "csrf").unwrap_or(""))
    {
        return web.error(
            StatusCode::FORBIDDEN,
            Some(w),
            "this form did not come from this site",
        );
    }
    let mut r = redirect("/login");
    set_cookie(
        &mut r,
        &format!("{}=; Max-Age=0; {}", auth::COOKIE, cookie_flags(&web)),
    );
    r
}

// ---------------------------------------------------------------------------------------
// Acting.

/// `POST /actions/{action}`: silence, end-silence, ack, pause, resume, retry, test.
pub(crate) async fn act(web: Arc<Web>, action: String, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let who = match who(&web, &parts.headers) {
        Some(w) => w,
        None => {
            return web.error(
                StatusCode::UNAUTHORIZED,
                None,
                "log in first: your session has ended",
            );
        }
    };
    // A browser says where a form came from; another site's page is refused even before the
    // token is read.
    if let (Some(origin), Some(host)) = (
        parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    ) && origin.split_once("://").map(|(_, h)| h) != Some(host)
    {
        return web.error(
            StatusCode::FORBIDDEN,
            Some(&who),
            "this form did not come from this site",
        );
    }
    let fields = match form(body).await {
        Ok(f) => f,
        Err(s) => return web.error(s, Some(&who), "the form could not be read"),
    };
    if !web.auth.form_ok(&who, field(&fields, "csrf").unwrap_or("")) {
        return web.error(
            StatusCode::FORBIDDEN,
            Some(&who),
            "this form did not come from this site, or your session changed: reload the page",
        );
    }
    if who.read_only {
        return web.error(
            StatusCode::FORBIDDEN,
            Some(&who),
            "your login is read-only: it may look, not act",
        );
    }
    let back = field(&fields, "back").unwrap_or("/").to_owned();
    let get = |k: &str| field(&fields, k).map(str::to_owned);
    let (name, tag, id, channel) = (get("name"), get("tag"), get("id"), get("channel"));
    let (for_, until, reason) = (get("for"), get("until"), get("reason").unwrap_or_default());
    let config = Arc::clone(&web.config);
    let by = who.name.clone();
    let result = web
        .worker
        .call(move |store| -> Result<String, ActionError> {
            let now = Timestamp::now();
            let number = |id: Option<String>| {
                id.as_deref()
                    .and_then(|i| i.trim().parse::<i64>().ok())
                    .ok_or_else(|| ActionError::Refused("id: not a number".into()))
            };
            let job = |name: &Option<String>| {
                name.clone()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ActionError::Refused("which job? (name)".into()))
            };
            match action.as_str() {
                "silence" => {
                    let scope = actions::scope(store, name.as_deref(), tag.as_deref())?;
                    let until = actions::silence_end(for_.as_deref(), until.as_deref(), now)?;
                    let s = actions::silence(store, &scope, until, &reason, &by, now)?;
                    Ok(format!(
                        "{} silenced until {}",
                        s.scope,
                        view::time(s.until)
                    ))
                }
                "end-silence" => {
                    let id = number(id)?;
                    actions::end_silence(store, id, now)?;
                    Ok(format!("silence {id} ended"))
                }
                "ack" => {
                    let job = job(&name)?;
                    actions::acknowledge(store, &job, &by, now)?;
                    Ok(format!(
                        "{job}: acknowledged; no reminders until it recovers"
                    ))
                }
                "pause" | "resume" => {
                    let job = job(&name)?;
                    let pause = action == "pause";
                    if store.set_paused(&job, pause, now)? {
                        Ok(format!(
                            "{job}: {}",
                            if pause { "paused" } else { "resumed" }
                        ))
                    } else {
                        Err(ActionError::NotFound(format!("no job is named {job:?}")))
                    }
                }
                "retry" => {
                    let id = number(id)?;
                    let revived =
                        store.retry_outbox(Some(&[id]), now, config.delivery.give_up_after)?;
                    if revived.contains(&id) {
                        Ok(format!("outbox row {id} will be sent again now"))
                    } else {
                        Err(ActionError::Refused(format!(
                            "outbox row {id} is not pending or dead"
                        )))
                    }
                }
                "test" => {
                    let ch = channel.unwrap_or_default();
                    let row = actions::test_message(store, &config, &ch, &by, now)?;
                    Ok(format!(
                        "a test message to {ch} is queued (outbox row {row})"
                    ))
                }
                other => Err(ActionError::NotFound(format!(
                    "no action is called {other:?}"
                ))),
            }
        })
        .await;
    match result {
        Some(Ok(notice)) => redirect(&with_notice(&back, &notice)),
        Some(Err(ActionError::Refused(m))) => web.error(StatusCode::BAD_REQUEST, Some(&who), &m),
        Some(Err(ActionError::NotFound(m))) => web.error(StatusCode::NOT_FOUND, Some(&who), &m),
        Some(Err(ActionError::Store(e))) => web.error(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&who),
            &format!("the store: {}", web.config.scrub(&e.to_string())),
        ),
        None => web.error(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&who),
            "the server is stopping",
        ),
    }
}

/// `/static/…`: the stylesheet and the script.
pub(crate) async fn asset(file: String) -> Response {
    let (body, kind) = match file.as_str() {
        "belfry.css" => (
            include_str!("../../assets/belfry.css"),
            "text/css; charset=utf-8",
        ),
        "belfry.js" => (
            include_str!("../../assets/belfry.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_goes_back_to_a_page_of_this_site_only() {
        assert_eq!(
            with_notice("/job?name=a%20b", "done"),
            "/job?name=a+b&notice=done"
        );
        assert_eq!(with_notice("//evil.example/x", "hi"), "/?notice=hi");
        assert_eq!(with_notice("https://evil.example/", "hi"), "/?notice=hi");
        assert_eq!(with_notice("/?notice=old&q=x", "new"), "/?q=x&notice=new");
    }

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        env.add_filter("urlencode", |s: String| {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
