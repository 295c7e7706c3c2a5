//! The HTTP side: the router ([`app`]) and its handlers. Handlers never call the store: a
//! ping goes to the writer thread over a channel and the handler waits for its answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use belfry::config::Config;
use belfry_core::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::limits::{BODY_TIMEOUT, MAX_BODY};
use crate::metrics::Metrics;
use crate::ping::{self, Refusal, Target};
use crate::web;
use crate::writer::{Answer, Job, Who};

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub config: Arc<Config>,
    pub tx: mpsc::Sender<Job>,
    pub metrics: Arc<Metrics>,
    /// What the management API's handlers share.
    pub api: Arc<crate::api::Api>,
    /// What the dashboard's handlers share.
    pub web: Arc<crate::web::Web>,
}

/// The peer's address, put in each request's extensions by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

/// The router: `/ping/…`, `/api/…`, `/healthz`, `/metrics`, and the dashboard's pages
/// (`/`, `/job`, `/silences`, `/outbox`, `/channels`, `/login`, `/actions/…`, `/static/…`);
/// anything else is 404.
pub(crate) fn app(state: Arc<App>) -> Router {
    Router::new()
        .route("/ping", any(ping))
        .route("/ping/", any(ping))
        .route("/ping/{*rest}", any(ping))
        .route(
            "/api/{*rest}",
            any(|State(app): State<Arc<App>>, req: Request| {
                crate::api::handle(Arc::clone(&app.api), req)
            }),
        )
        .route(
            "/",
            get(|State(app): State<Arc<App>>, req: Request| web::jobs(app.web.clone(), req)),
        )
        .route(
            "/job",
            get(|State(app): State<Arc<App>>, req: Request| web::job(app.web.clone(), req)),
        )
        .route(
            "/silences",
            get(|State(app): State<Arc<App>>, req: Request| web::silences(app.web.clone(), req)),
        )
        .route(
            "/outbox",
            get(|State(app): State<Arc<App>>, req: Request| web::outbox(app.web.clone(), req)),
        )
        .route(
            "/channels",
            get(|State(app): State<Arc<App>>, req: Request| web::channels(app.web.clone(), req)),
        )
        .route(
            "/login",
            get(|State(app): State<Arc<App>>, req: Request| web::login_page(app.web.clone(), req))
                .post(|State(app): State<Arc<App>>, req: Request| web::login(app.web.clone(), req)),
        )
        .route(
            "/logout",
            post(|State(app): State<Arc<App>>, req: Request| web::logout(app.web.clone(), req)),
        )
        .route(
            "/actions/{action}",
            post(
                |State(app): State<Arc<App>>, Path(action): Path<String>, req: Request| {
                    web::act(app.web.clone(), action, req)
                },
            ),
        )
        .route(
            "/static/{file}",
            get(|Path(file): Path<String>| web::asset(file)),
        )
        .route("/healthz", get(|| async { text(StatusCode::OK, "OK") }))
        .route("/metrics", get(metrics))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
}

/// A plain-text answer, readable from a browser's script (CORS), as healthchecks.io gives.
fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn ping(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = handle_ping(&app, req).await;
    if r.status().is_client_error() || r.status().is_server_error() {
        app.metrics.refused.fetch_add(1, Relaxed);
    }
    r
}

async fn handle_ping(app: &App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = match parts.method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        // A browser's CORS preflight asks whether it may ping; it is not a ping.
        Method::OPTIONS => return preflight(),
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    };
    let path = parts.uri.path().strip_prefix("/ping/").unwrap_or("");
    let p = match ping::parse(path, parts.uri.query()) {
        Ok(p) => p,
        Err(r) => return refusal(r),
    };
    let who = match p.target {
        Target::Uuid(u) => Who::Uuid(u),
        Target::Slug { key, name } => match &app.config.server.ping_key {
            Some(k) if k.matches(&key) => Who::Name(name),
            _ => return refusal(Refusal::NotFound),
        },
    };
    let too_long = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY as u64);
    if too_long {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or cut off",
            );
        }
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
    };
    let limit = app.config.server.ping_body_limit;
    let body = body.slice(..body.len().min(limit));
    let (reply, answer) = oneshot::channel();
    let job = Job {
        who,
        kind: p.kind,
        rid: p.rid,
        at: Timestamp::now(),
        body,
        create: p.create,
        remote: parts.extensions.get::<Peer>().map(|p| p.0.ip().to_string()),
        method,
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        reply,
    };
    if app.tx.send(job).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let mut r = match answer.await {
        Ok(Answer::Ok) => text(StatusCode::OK, "OK"),
        Ok(Answer::Created) => text(StatusCode::CREATED, "Created"),
        Ok(Answer::NotFound) => return refusal(Refusal::NotFound),
        Ok(Answer::Failed) | Err(_) => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "could not record the ping");
        }
    };
    r.headers_mut()
        .insert("ping-body-limit", HeaderValue::from(limit));
    r
}

fn refusal(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, r.text())
}

fn preflight() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    crate::cors::Allow {
        methods: "GET, POST, HEAD",
        headers: "content-type",
        max_age: "86400",
    }
    .apply(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    /// A writer that knows one job, `known`, and creates others when asked.
    fn fake_writer(mut rx: mpsc::Receiver<Job>) {
        std::thread::spawn(move || {
            while let Some(job) = rx.blocking_recv() {
                let answer = match (&job.who, job.create) {
                    (Who::Name(n), _) if n == "known" => Answer::Ok,
                    (Who::Name(_), true) => Answer::Created,
                    _ => Answer::NotFound,
                };
                let _ = job.reply.send(answer);
            }
        });
    }

    async fn call(
        app: &mut Router,
        method: &str,
        uri: &str,
        body: &'static [u8],
    ) -> (u16, String, Response) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body))
            .unwrap();
        let r = app.call(req).await.unwrap();
        let status = r.status().as_u16();
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let r = Response::from_parts(parts, Body::empty());
        (status, String::from_utf8_lossy(&bytes).into_owned(), r)
    }

    #[tokio::test]
    async fn answers_with_healthchecks_texts_and_headers() {
        let config =
            Config::parse("[server]\nping_key = \"pk\"\nping_body_limit = 3\n", "t").unwrap();
        let (tx, rx) = mpsc::channel(16);
        fake_writer(rx);
        let metrics = Arc::new(Metrics::default());
        let dir = tempfile::tempdir().unwrap();
        let store = belfry_store::Store::open(dir.path().join("belfry.db")).unwrap();
        let (worker, _thread) = crate::api::Worker::spawn(store).unwrap();
        let config = Arc::new(config);
        let web = crate::web::Web::new(Arc::clone(&config), worker.clone(), "k").unwrap();
        let api = Arc::new(crate::api::Api {
            config: Arc::clone(&config),
            worker,
            limiter: crate::api::Limiter::new(100),
            addr: "127.0.0.1:8000".parse().unwrap(),
        });
        let mut app = app(Arc::new(App {
            config,
            tx,
            metrics: Arc::clone(&metrics),
            api,
            web: Arc::new(web),
        }));
        let (s, t, r) = call(&mut app, "POST", "/ping/pk/known", b"abcdef").await;
        assert_eq!((s, t.as_str()), (200, "OK"));
        assert_eq!(r.headers()["ping-body-limit"], "3");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            (call(&mut app, "GET", "/ping/pk/new?create=1", b"").await.0),
            201
        );
        assert_eq!(
            call(&mut app, "GET", "/ping/pk/new", b"").await.1,
            "not found"
        );
        assert_eq!(call(&mut app, "GET", "/ping/wrong/known", b"").await.0, 404);
        assert_eq!(
            call(&mut app, "GET", "/ping/pk/known/300", b"").await.1,
            "invalid url format"
        );
        assert_eq!(
            call(&mut app, "GET", "/ping/pk/known?rid=1", b"").await.1,
            "invalid uuid format"
        );
        assert_eq!(call(&mut app, "PUT", "/ping/pk/known", b"").await.0, 405);
        let (s, _, r) = call(&mut app, "OPTIONS", "/ping/pk/known", b"").await;
        assert_eq!(s, 204);
        assert_eq!(
            r.headers()["access-control-allow-methods"],
            "GET, POST, HEAD"
        );
        assert_eq!(call(&mut app, "GET", "/healthz", b"").await.1, "OK");
        let text = call(&mut app, "GET", "/metrics", b"").await.1;
        assert!(text.contains("belfry_ping_refusals_total 5\n"), "{text}");
    }
}
