//! Starting and stopping the server: its threads, and the accept loop with its limits.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use belfry::config::Config;
use belfry::internal::{Dispatcher, Waker};
use belfry_core::Timestamp;
use belfry_store::{CheckChange, Store};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, mpsc};
use tower_service::Service;

use crate::http::{App, Peer};
use crate::metrics::Metrics;
use crate::sweeper::Stop;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may take to finish once the server is told to stop.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The threads that record pings on PostgreSQL (on SQLite, one).
const PG_WRITERS: usize = 4;

/// The HTTP runtime's worker threads.
const WORKERS: usize = 2;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or prepared.
    #[error("the store: {0}")]
    Store(String),
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread or the runtime could not be started.
    #[error("cannot start: {0}")]
    Start(std::io::Error),
    /// The configuration cannot be served as it is (a dashboard user's password hash).
    #[error("{0}")]
    Config(String),
}

/// `belfry serve`: the ping API on an HTTP listener, a writer thread that records pings in
/// groups, a sweeper that marks silent jobs late, and the dispatcher that sends the alerts.
#[derive(Debug)]
pub struct Server;

/// A running server: its address, and [`Running::stop`].
#[derive(Debug)]
#[must_use = "a server that is dropped keeps running until the process ends; call stop()"]
pub struct Running {
    addr: SocketAddr,
    shutdown: Arc<Notify>,
    http: Option<JoinHandle<()>>,
    writers: Vec<JoinHandle<()>>,
    sweeper: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
    api: Option<JoinHandle<()>>,
    /// Stops the sweeper and the checkpointer.
    sweeper_stop: Arc<Stop>,
    waker: Waker,
    metrics: Arc<Metrics>,
}

impl Server {
    /// Opens the configured store (in the state directory `home` unless `[store] url` says
    /// otherwise), sets every configured job's schedule, listens on `listen` (port 0: any
    /// free port, see [`Running::addr`]) and starts the threads. Call it from a plain thread,
    /// not from inside an async runtime: it opens the store, which may block.
    pub fn start(config: Config, home: &Path, listen: SocketAddr) -> Result<Running, StartError> {
        let config = Arc::new(config);
        let location = config.store_location(home);
        let open = || {
            Store::open(location.clone())
                .map_err(|e| StartError::Store(config.scrub(&e.to_string()).into_owned()))
        };
        let mut writer_store = open()?;
        set_schedules(&mut writer_store, &config)?;
        // The key that signs dashboard sessions: in the store, so that replicas share it.
        let session_key = writer_store
            .setting("session_key", &crate::web::random_token())
            .map_err(|e| StartError::Store(config.scrub(&e.to_string()).into_owned()))?;
        let sweeper_store = open()?;
        let dispatcher_store = open()?;
        let (worker, api_thread) = crate::api::Worker::spawn(open()?).map_err(StartError::Start)?;
        let listener = TcpListener::bind(listen).map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
        listener.set_nonblocking(true).map_err(StartError::Start)?;

        let metrics = Arc::new(Metrics::default());
        let waker = Waker::default();
        let (tx, rx) = mpsc::channel(crate::writer::QUEUE);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(StartError::Start)
        };

        let dispatcher = {
            let config = Arc::clone(&config);
            let waker = waker.clone();
            let mut store = dispatcher_store;
            spawn(
                "belfry-dispatch",
                Box::new(move || {
                    let mut d = Dispatcher::with_waker(&config, waker);
                    // A store that fails now and then (a locked file, a lost connection)
                    // must not end delivery: say so and go on after a pause.
                    while let Err(e) = d.run(&mut store) {
                        crate::log::warn(&format!("delivery: {}", config.scrub(&e.to_string())));
                        if d.waker().is_stopped() {
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }),
            )?
        };
        // SQLite takes one writer at a time: one thread. PostgreSQL takes many, each
        // transaction waiting only for the jobs another holds: several threads, each with its
        // own connection, take groups from the one queue.
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut stores = vec![writer_store];
        if matches!(location, belfry_store::Location::Postgres(_)) {
            for _ in 1..PG_WRITERS {
                stores.push(open()?);
            }
        }
        let mut writers = Vec::with_capacity(stores.len());
        for store in stores {
            let config = Arc::clone(&config);
            let metrics = Arc::clone(&metrics);
            let waker = waker.clone();
            let rx = Arc::clone(&rx);
            writers.push(spawn(
                "belfry-writer",
                Box::new(move || crate::writer::run(store, config, rx, metrics, waker)),
            )?);
        }
        let sweeper_stop = Arc::new(Stop::default());
        // SQLite: the writer leaves its checkpoints to a thread of their own.
        let checkpointer = match location {
            belfry_store::Location::Postgres(_) => None,
            belfry_store::Location::Sqlite(_) => {
                let store = open()?;
                let config = Arc::clone(&config);
                let stop = Arc::clone(&sweeper_stop);
                Some(spawn(
                    "belfry-checkpoint",
                    Box::new(move || crate::checkpointer::run(store, config, stop)),
                )?)
            }
        };
        let sweeper = {
            let config = Arc::clone(&config);
            let metrics = Arc::clone(&metrics);
            let waker = waker.clone();
            let stop = Arc::clone(&sweeper_stop);
            spawn(
                "belfry-sweeper",
                Box::new(move || crate::sweeper::run(sweeper_store, config, stop, metrics, waker)),
            )?
        };

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("belfry-http")
            .enable_all()
            .build()
            .map_err(StartError::Start)?;
        let shutdown = Arc::new(Notify::new());
        let web = crate::web::Web::new(Arc::clone(&config), worker.clone(), &session_key)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let app = crate::http::app(Arc::new(App {
            web: Arc::new(web),
            config: Arc::clone(&config),
            tx,
            metrics: Arc::clone(&metrics),
            api: Arc::new(crate::api::Api {
                config: Arc::clone(&config),
                worker,
                limiter: crate::api::Limiter::new(config.server.api_rate_limit),
                addr,
            }),
        }));
        let http = {
            let shutdown = Arc::clone(&shutdown);
            spawn(
                "belfry-serve",
                Box::new(move || {
                    rt.block_on(accept_loop(listener, app, shutdown));
                    // Handlers still running past the drain time are dropped with the
                    // runtime; their pings, if queued, are still recorded by the writer.
                    rt.shutdown_timeout(Duration::from_secs(1));
                }),
            )?
        };
        Ok(Running {
            addr,
            shutdown,
            http: Some(http),
            writers,
            sweeper: Some(sweeper),
            checkpointer,
            dispatcher: Some(dispatcher),
            api: Some(api_thread),
            sweeper_stop,
            waker,
            metrics,
        })
    }
}

/// Sets the schedule and the tags of every job belfry.toml gives them, in one transaction
/// (tags replace the API's; a title or description stays). Only a schedule that changed is
/// set: setting one restarts the job's watch (silence counts from then), so a
/// restart, or another replica starting, would otherwise put off the alert of a job that is
/// already late.
fn set_schedules(store: &mut Store, config: &Config) -> Result<(), StartError> {
    let failed = |e: belfry_store::Error| {
        StartError::Store(format!(
            "setting the jobs' schedules: {}",
            config.scrub(&e.to_string())
        ))
    };
    let stored: HashMap<String, belfry_store::CheckRow> = store
        .checks()
        .map_err(failed)?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    // A job's tags from belfry.toml replace the API's; its title and description stay.
    let metas: HashMap<&str, belfry_store::CheckMeta> = config
        .jobs
        .iter()
        .filter_map(|(name, job)| {
            let tags = job.tags.as_ref()?;
            let mut meta = stored.get(name).map(|c| c.meta.clone()).unwrap_or_default();
            (meta.tags != *tags).then(|| {
                meta.tags = tags.clone();
                (name.as_str(), meta)
            })
        })
        .collect();
    let changes: Vec<(&str, CheckChange<'_>)> = config
        .jobs
        .iter()
        .filter_map(|(name, job)| {
            let expect = job.expect.as_ref().filter(|e| {
                stored
                    .get(name)
                    .is_none_or(|c| c.expect.as_ref() != Some(*e))
            });
            let meta = metas.get(name.as_str());
            (expect.is_some() || meta.is_some()).then_some((
                name.as_str(),
                CheckChange {
                    expect: expect.map(Some),
                    meta,
                },
            ))
        })
        .collect();
    store
        .save_checks(&changes, Timestamp::now())
        .map_err(failed)?;
    Ok(())
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `/metrics`' text, as the server would answer it now.
    pub fn metrics(&self) -> String {
        self.metrics.render()
    }

    /// Stops: no new connections, requests in flight finish (for at most
    /// [`DRAIN_TIMEOUT`]), the pings they queued are recorded, the sweeper stops, and the
    /// dispatcher ends its pass and gives back the rows it held. Returns when all have.
    pub fn stop(mut self) {
        self.shutdown.notify_one();
        join(self.http.take());
        // Every sender of the writer's and the API's channels went with the HTTP runtime:
        // they finish what is queued and return.
        for w in self.writers.drain(..) {
            join(Some(w));
        }
        join(self.api.take());
        self.sweeper_stop.stop();
        join(self.sweeper.take());
        join(self.checkpointer.take());
        self.waker.stop();
        join(self.dispatcher.take());
    }
}

fn join(h: Option<JoinHandle<()>>) {
    if let Some(h) = h
        && h.join().is_err()
    {
        crate::log::warn("a server thread panicked");
    }
}

/// Accepts connections until `shutdown`, each served by hyper with a time limit on its
/// headers, then waits (at most [`DRAIN_TIMEOUT`]) for the requests in flight.
async fn accept_loop(listener: TcpListener, app: axum::Router, shutdown: Arc<Notify>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::log::warn(&format!("cannot listen: {e}"));
            return;
        }
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most often: wait a little rather than spin.
                    crate::log::warn(&format!("accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.notified() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            });
        let conn = http1::Builder::new()
            // A client that closes its side after the request (`printf … | nc -N`) still
            // gets its answer.
            .half_close(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away mid-request is its own business.
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}
