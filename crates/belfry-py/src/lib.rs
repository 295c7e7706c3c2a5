//! The native part of the `belfry` Python package (`belfry._belfry`): one belfry client per
//! process, and the few calls the Python layer (`python/belfry`) makes into it.
//!
//! Everything Python-facing (the decorator, the logging handler, the supervisor, tasks) is
//! written in Python and calls only these functions, on the caller's thread: no Python code
//! ever runs on one of belfry's threads.
//!
//! Fork safety: the client lives behind a mutex that is only ever taken with the GIL held and
//! never across a call that releases it, so when Python forks (with the GIL held) no other
//! thread holds it. In the child, `_after_fork` forgets the parent's client (its threads do not
//! exist there) and starts a new one from the same settings.

mod fork;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use belfry::core::State;
use belfry::send::{SendSettings, Target};
use belfry::{Attachment, Belfry, Builder, Config, Guard, Message, Sources};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;

/// What `init` was given, kept to start the same client again in a forked child.
#[derive(Clone, Debug, Default)]
struct Settings {
    config: Option<PathBuf>,
    urls: Vec<String>,
    home: Option<PathBuf>,
    flush_timeout: Option<Duration>,
    quiet: bool,
}

struct Current {
    guard: Guard,
    settings: Settings,
}

/// Taken only with the GIL held, and never held across `allow_threads` (see the crate docs).
static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<Current>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

fn start(s: &Settings) -> PyResult<Guard> {
    let config = match (&s.config, s.urls.is_empty()) {
        // Only the URLs given: no console channel added by the search for a configuration.
        (None, false) => Config::parse("", "belfry.init(urls=…)"),
        _ => Config::load(&Sources::from_env(s.config.clone())),
    }
    .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut b = Builder::default().config(config).quiet(s.quiet);
    for (i, url) in s.urls.iter().enumerate() {
        b = b.channel(format!("url-{}", i + 1), url.clone());
    }
    if let Some(h) = &s.home {
        b = b.home(h);
    }
    if let Some(t) = s.flush_timeout {
        b = b.flush_timeout(t);
    }
    b.build().map_err(|e| match e {
        belfry::InitError::Spawn(e) => PyOSError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    })
}

fn seconds(what: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!("{what} must be a number of seconds ≥ 0, not {s}"))
    })
}

/// Starts belfry for this process (again: a second call replaces the client, after flushing
/// the first).
#[pyfunction]
#[pyo3(signature = (config=None, urls=Vec::new(), home=None, flush_timeout=None, quiet=false))]
fn init(
    py: Python<'_>,
    config: Option<PathBuf>,
    urls: Vec<String>,
    home: Option<PathBuf>,
    flush_timeout: Option<f64>,
    quiet: bool,
) -> PyResult<String> {
    let settings = Settings {
        config,
        urls,
        home,
        flush_timeout: flush_timeout
            .map(|t| seconds("flush_timeout", t))
            .transpose()?,
        quiet,
    };
    let guard = start(&settings)?;
    // Waits until the worker has opened the store (nothing of this client is pending yet, so
    // the flush ends there): a fork in the first moments would otherwise catch the parent's
    // worker inside the store's first transaction, which a child cannot get past.
    let client = guard.client().clone();
    py.detach(move || client.flush(Duration::from_secs(5)));
    let home = guard.client().home().display().to_string();
    let old = lock().replace(Current { guard, settings });
    if let Some(old) = old {
        py.detach(move || drop(old.guard));
    }
    Ok(home)
}

fn client() -> Option<Belfry> {
    lock().as_ref().map(|c| c.guard.client().clone())
}

fn state_named(name: &str) -> PyResult<State> {
    Ok(match name {
        "ok" => State::Ok,
        "failed" => State::Failed,
        "crashed" => State::Crashed,
        "timed_out" => State::TimedOut,
        "cancelled" => State::Cancelled,
        "skipped" => State::Skipped,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown state {other:?}: use ok, failed, crashed, timed_out, cancelled or skipped"
            )));
        }
    })
}

/// Queues one event and returns at once. False when belfry has not been started.
#[pyfunction]
#[pyo3(signature = (job, state, error=None, duration=None))]
fn record(
    py: Python<'_>,
    job: &str,
    state: &str,
    error: Option<String>,
    duration: Option<f64>,
) -> PyResult<bool> {
    let state = state_named(state)?;
    let duration = duration.and_then(|d| Duration::try_from_secs_f64(d).ok());
    let guard = lock();
    match guard.as_ref() {
        Some(c) => {
            c.guard.client().record(job, state, error, duration);
            Ok(true)
        }
        None => {
            drop(guard);
            if !WARNED.swap(true, Ordering::Relaxed) {
                let msg = format!(
                    "belfry: an event of {job:?} was not recorded: belfry.init() has not been called"
                );
                let msg = std::ffi::CString::new(msg).unwrap_or_default();
                PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1)?;
            }
            Ok(false)
        }
    }
}

/// Whether the warning for an event recorded before `init` has been given.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Turns `(path)` or `(filename, bytes)` items into attachments, gzipped if asked.
fn attachments(items: Vec<Bound<'_, PyAny>>, gzip: bool) -> PyResult<Vec<Attachment>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Ok((name, data)) = item.extract::<(String, Vec<u8>)>() {
            out.push(if gzip {
                Attachment::gzipped(name, &data)
            } else {
                Attachment::bytes(name, "application/octet-stream", data)
            });
            continue;
        }
        let path: PathBuf = item.extract().map_err(|_| {
            PyValueError::new_err("an attachment is a path or a (filename, bytes) pair".to_owned())
        })?;
        let a = if gzip {
            Attachment::gzipped_file(&path)
        } else {
            Attachment::file(&path)
        };
        out.push(a.map_err(|e| PyOSError::new_err(e.to_string()))?);
    }
    Ok(out)
}

/// Queues a summary message for `job` to the configured channels.
#[pyfunction]
#[pyo3(signature = (job, subject, body, attachments=Vec::new(), gzip=true))]
fn notify(
    job: &str,
    subject: String,
    body: String,
    attachments: Vec<Bound<'_, PyAny>>,
    gzip: bool,
) -> PyResult<bool> {
    let attachments = self::attachments(attachments, gzip)?;
    let Some(c) = client() else { return Ok(false) };
    c.notify(
        job,
        Message {
            subject,
            body,
            attachments,
        },
    );
    Ok(true)
}

/// Sends one message to the URLs given, now, and waits for the answers (the GIL released).
/// Returns `(label, destination, delivered, reason)` per URL.
#[pyfunction]
#[pyo3(signature = (title, body, urls, attach=Vec::new(), timeout=10.0))]
fn send_now(
    py: Python<'_>,
    title: String,
    body: String,
    urls: Vec<String>,
    attach: Vec<Bound<'_, PyAny>>,
    timeout: f64,
) -> PyResult<Vec<(String, String, bool, String)>> {
    let attachments = attachments(attach, false)?;
    let timeout = seconds("timeout", timeout)?;
    let mut targets = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let t = Target::from_url(&format!("url {}", i + 1), url, None)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        targets.push(t);
    }
    let n = belfry::core::Notification::summary_message(
        belfry::store::new_id(),
        "belfry.send",
        title,
        body,
        belfry::core::Timestamp::now(),
        attachments
            .iter()
            .map(|a| belfry::core::Attachment {
                name: a.filename().to_owned(),
                mime_type: a.mime_type().to_owned(),
                data: a.data().to_vec(),
            })
            .collect(),
    );
    let settings = SendSettings {
        request_timeout: timeout,
        attempt_timeout: timeout,
        retry_for: Duration::ZERO,
    };
    let sent = py.detach(|| belfry::send::send(&targets, &n, &settings));
    Ok(sent
        .into_iter()
        .map(|s| {
            let (ok, reason) = match s.outcome {
                belfry::channels::Outcome::Delivered => (true, String::new()),
                belfry::channels::Outcome::Retry { reason, .. }
                | belfry::channels::Outcome::Permanent { reason } => (false, reason),
            };
            (s.label, s.destination, ok, reason)
        })
        .collect())
}

/// Records what is queued and delivers it, for at most `timeout` seconds (the GIL released).
/// Returns `(complete, report)`; what is left stays in the outbox.
#[pyfunction]
#[pyo3(signature = (timeout=None))]
fn flush(py: Python<'_>, timeout: Option<f64>) -> PyResult<(bool, String)> {
    let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
    let Some(c) = client() else {
        return Ok((true, "belfry was not started".to_owned()));
    };
    let timeout = match timeout {
        Some(t) => t,
        None => lock()
            .as_ref()
            .and_then(|c| c.settings.flush_timeout)
            .unwrap_or(c.config().delivery.wait),
    };
    let report = py.detach(move || c.flush(timeout));
    Ok((report.is_complete(), report.to_string()))
}

/// What the client has done: received, collapsed, recorded, notifications, lost.
#[pyfunction]
fn stats() -> Option<(u64, u64, u64, u64, u64)> {
    client().map(|c| {
        let s = c.stats();
        (s.received, s.collapsed, s.recorded, s.notifications, s.lost)
    })
}

/// Before `os.fork`: waits until no belfry thread is inside a store call and keeps them out
/// (a child forked mid-transaction inherits SQLite's bookkeeping of locks it does not hold,
/// and could not write), then takes SQLite's process-wide mutexes, so that no belfry thread
/// holds one at the moment of the fork (a child would inherit it locked, and its new worker
/// wait on it forever). The GIL is held: belfry's threads never take it, so they finish their
/// call and wait at the gate.
#[pyfunction]
fn _before_fork() {
    belfry_store::close_for_fork();
    fork::hold_sqlite();
}

/// After `os.fork`, in the parent: lets go of SQLite's mutexes and the store's gate.
#[pyfunction]
fn _after_fork_in_parent() {
    fork::release_sqlite();
    belfry_store::open_after_fork();
}

/// In a forked child: lets go of SQLite's mutexes; the parent's client has no threads here,
/// so a new one starts.
#[pyfunction]
fn _after_fork() -> PyResult<()> {
    fork::release_sqlite();
    belfry_store::open_after_fork();
    let mut current = lock();
    if let Some(old) = current.take() {
        let settings = old.settings.clone();
        // Dropping it would ask threads that do not exist in this process to flush.
        std::mem::forget(old);
        let guard = start(&settings).map_err(|e| {
            PyRuntimeError::new_err(format!("belfry could not restart after fork: {e}"))
        })?;
        *current = Some(Current { guard, settings });
    }
    Ok(())
}

/// The module `belfry._belfry`.
#[pymodule]
fn _belfry(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(record, m)?)?;
    m.add_function(wrap_pyfunction!(notify, m)?)?;
    m.add_function(wrap_pyfunction!(send_now, m)?)?;
    m.add_function(wrap_pyfunction!(flush, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(_before_fork, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_parent, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork, m)?)?;
    Ok(())
}
