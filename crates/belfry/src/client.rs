//! The library's client: [`init`], [`Belfry`] and its [`Builder`], and the [`Guard`] that
//! flushes at exit.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use belfry_core::Policy;

use crate::config::{Config, ConfigError, Sources};
use crate::home::{NoHome, home_dir};
use crate::item::{Item, Record};
use crate::queue::Queue;
use crate::worker::{self, Control, Counters, Delivery, Shared};

/// How many items the ring between the program and belfry's worker holds by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;

/// Why belfry could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The configuration is wrong (the message names the file, line and key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No state directory could be found.
    #[error(transparent)]
    NoHome(#[from] NoHome),
    /// `init` was called before; the first client stays the global one.
    #[error("belfry is already initialised in this process")]
    AlreadyInitialised,
    /// belfry's threads could not be started.
    #[error("cannot start belfry's worker thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Why a synchronous record did not happen.
#[derive(Debug)]
pub(crate) enum SyncError {
    /// The worker is gone; here is the item back.
    NotSent(Item),
    /// The worker did not answer in time (the item may still be recorded).
    TimedOut,
}

/// What a client has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events belfry's worker has taken from the queue (collapsed ones counted one by one).
    pub received: u64,
    /// Of those, events that were collapsed into another of their job while the queue was
    /// full (their count is kept exactly).
    pub collapsed: u64,
    /// Events recorded in the store.
    pub recorded: u64,
    /// Notifications made.
    pub notifications: u64,
    /// Events lost (the overflow was full, or the store failed); reported, never silent.
    pub lost: u64,
}

/// The part every clone shares; when the last clone goes, the worker finishes what is queued
/// and stops.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shared.control.send(Control::Shutdown);
        self.shared.queue.wake();
    }
}

/// A belfry client: a queue to one worker thread that owns the store, and a delivery thread.
/// Cheap to clone. [`init`] makes one from the configuration and installs it for the whole
/// process; [`Belfry::builder`] makes one from code.
#[derive(Clone)]
pub struct Belfry {
    handle: Arc<Handle>,
}

impl fmt::Debug for Belfry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Belfry")
            .field("home", &self.shared().home)
            .field("channels", &self.shared().config.channels)
            .finish()
    }
}

static GLOBAL: OnceLock<Belfry> = OnceLock::new();

thread_local! {
    static SCOPED: RefCell<Vec<Belfry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the client that events on this thread go to: the innermost
/// [`Belfry::in_scope`], else the global one. No reference count is touched.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Belfry>) -> R) -> R {
    SCOPED.with(|s| match s.try_borrow() {
        Ok(s) => match s.last() {
            Some(b) => f(Some(b)),
            None => f(GLOBAL.get()),
        },
        Err(_) => f(GLOBAL.get()),
    })
}

/// Queues an item for the current client. Without one, the event is counted and the first
/// such event is reported on standard error.
#[inline]
pub(crate) fn dispatch(item: Item) {
    with_current(|c| match c {
        Some(c) => c.shared().queue.push(item),
        None => no_client(item.job()),
    });
}

static UNRECORDED: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

#[cold]
#[allow(clippy::print_stderr)]
pub(crate) fn no_client(job: &str) {
    UNRECORDED.fetch_add(1, Ordering::Relaxed);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "belfry: an event of {job:?} was not recorded: belfry::init() has not been called \
             (events without a client are counted: belfry::unrecorded_events())"
        );
    }
}

/// Events that found no client (before [`init`], or outside any [`Belfry::in_scope`]).
pub fn unrecorded_events() -> u64 {
    UNRECORDED.load(Ordering::Relaxed)
}

/// Records `record` by opening the store on this thread, with the configuration of `client`
/// (or, without one, the configuration and state directory `init` would find): the panic
/// hook's way when no worker can take the crash (none, it has stopped, or the panic is on
/// belfry's own thread). The crash must reach the store before the program may end.
pub(crate) fn record_directly(client: Option<&Belfry>, record: &Record) -> Result<(), String> {
    let loaded;
    let (config, home) = match client {
        Some(c) => (c.config(), c.home().to_owned()),
        None => {
            loaded = Config::load(&Sources::from_env(None)).map_err(|e| e.to_string())?;
            (&loaded, home_dir().map_err(|e| e.to_string())?)
        }
    };
    let mut store =
        belfry_store::Store::open(config.store_location(&home)).map_err(|e| e.to_string())?;
    let event = record.to_event(&crate::host::host_name());
    crate::runs::record_event(&mut store, config, &event).map_err(|e| e.to_string())
}

/// Says something on standard error (once per kind with a client; always without one).
#[allow(clippy::print_stderr)]
pub(crate) fn say_direct(client: Option<&Belfry>, msg: &str) {
    match client {
        Some(c) => c.shared().say_once("direct", msg),
        None => eprintln!("belfry: {msg}"),
    }
}

impl Belfry {
    /// A builder for a client configured in code rather than by `belfry.toml`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The global client, if [`init`] has run.
    pub fn global() -> Option<Belfry> {
        GLOBAL.get().cloned()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Queues an item for this client.
    pub(crate) fn push(&self, item: Item) {
        self.shared().queue.push(item);
    }

    /// Hands `item` to the worker and waits until it is recorded (after everything queued
    /// before it), at most `timeout`.
    pub(crate) fn record_sync(&self, item: Item, timeout: Duration) -> Result<(), SyncError> {
        let (tx, rx) = mpsc::channel();
        if let Err(mpsc::SendError(c)) = self.shared().control.send(Control::Sync(item, tx)) {
            return match c {
                Control::Sync(item, _) => Err(SyncError::NotSent(item)),
                _ => Err(SyncError::TimedOut),
            };
        }
        self.shared().queue.wake();
        rx.recv_timeout(timeout).map_err(|_| SyncError::TimedOut)
    }

    /// Runs `f` with this client as the current one on this thread: `#[watch]`ed functions,
    /// [`layer()`](crate::layer()), tasks and supervisors called inside it record here rather than
    /// to the global client. Scopes nest.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                SCOPED.with(|s| s.borrow_mut().pop());
            }
        }
        SCOPED.with(|s| s.borrow_mut().push(self.clone()));
        let _pop = Pop;
        f()
    }

    /// Queues one event of `job` for this client and returns: the way in for bindings that
    /// name their jobs at run time (the Python package's decorator and logging handler).
    /// `error` is the failure's text (with its traceback), `duration` how long the work took.
    pub fn record(
        &self,
        job: impl Into<String>,
        state: belfry_core::State,
        error: Option<String>,
        duration: Option<Duration>,
    ) {
        let mut r = Record::new(
            std::borrow::Cow::Owned(job.into()),
            state,
            belfry_core::Timestamp::now(),
        );
        r.duration = duration;
        if let Some(error) = error {
            r.details = Some(Box::new(belfry_core::Details {
                error: Some(error),
                ..belfry_core::Details::default()
            }));
        }
        self.push(Item::Event(r));
    }

    /// Queues an end-of-run summary of `job` for this client's channels, as
    /// [`Supervisor::notify`](crate::Supervisor::notify) does for the current client.
    pub fn notify(&self, job: &str, message: crate::summary::Message) {
        let n = belfry_core::Notification::summary_message(
            belfry_store::new_id(),
            job,
            message.subject,
            message.body,
            belfry_core::Timestamp::now(),
            message.attachments.into_iter().map(|a| a.0).collect(),
        );
        self.push(Item::Message(Box::new(n)));
    }

    /// The state directory this client records into.
    pub fn home(&self) -> &Path {
        &self.shared().home
    }

    /// The configuration this client uses.
    pub fn config(&self) -> &Config {
        &self.shared().config
    }

    /// What the client has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared().counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            collapsed: c.collapsed.load(Ordering::Relaxed),
            recorded: c.recorded.load(Ordering::Relaxed),
            notifications: c.notifications.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
        }
    }

    /// Records everything queued so far, sends the last count of the events the rules held
    /// back (so that over a job's messages the counts add up), and delivers this client's
    /// notifications, for at most `timeout`. Returns what is left; it stays in the outbox.
    ///
    /// Called by the [`Guard`] when it is dropped. Blocks the calling thread, which is the
    /// point: it is meant for a program's exit.
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        let started = Instant::now();
        let deadline = belfry_core::instant_after(started, timeout);
        let shared = self.shared();
        let mut report = FlushReport {
            store: shared.store_location().to_string(),
            timeout,
            ..FlushReport::default()
        };
        let (tx, rx) = mpsc::channel();
        if shared.control.send(Control::Flush(tx)).is_ok() {
            shared.queue.wake();
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(outcome) => {
                report.store_error = outcome.store_error;
                report.unrecorded = outcome.unrecorded;
            }
            Err(_) => {
                report.unrecorded = shared.queue.waiting().max(1);
                report.store_error = Some(format!(
                    "the worker did not record the queued events within {}",
                    belfry_core::format_duration(timeout)
                ));
            }
        }
        let outcome = shared.delivery.flush(deadline);
        report.delivered = outcome.delivered;
        report.pending = outcome.pending;
        report.dead = outcome.dead;
        report.dead_reasons = outcome.dead_reasons;
        if report.store_error.is_none() {
            report.store_error = outcome.error;
        }
        report.lost = shared.counters.lost.load(Ordering::Relaxed);
        report.init_error = shared.init_error.clone();
        report
    }
}

/// What [`Belfry::flush`] achieved, and what is left.
#[derive(Clone, Debug, Default)]
pub struct FlushReport {
    /// Where the notifications are kept: the store's file, or its database's URL without a
    /// password.
    pub store: String,
    /// The time the flush was given.
    pub timeout: Duration,
    /// Notifications of this client delivered (over its whole life).
    pub delivered: u64,
    /// This client's notifications still waiting in the outbox (a channel was down or slow):
    /// `belfry deliver`, or any later belfry process, sends them.
    pub pending: usize,
    /// This client's notifications given up (a permanent failure, or their deadline passed).
    pub dead: usize,
    /// Why, for the dead ones (redacted).
    pub dead_reasons: Vec<String>,
    /// Events lost over the client's life (the overflow was full, or the store failed).
    pub lost: u64,
    /// Events still in memory, not recorded, when the time was up.
    pub unrecorded: u64,
    /// What went wrong with the store, if anything.
    pub store_error: Option<String>,
    /// Why [`init`] fell back to the console, if it did.
    pub init_error: Option<String>,
}

impl FlushReport {
    /// Whether everything was recorded and delivered.
    pub fn is_complete(&self) -> bool {
        self.pending == 0
            && self.dead == 0
            && self.lost == 0
            && self.unrecorded == 0
            && self.store_error.is_none()
            && self.init_error.is_none()
    }
}

impl fmt::Display for FlushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = &self.init_error {
            parts.push(format!(
                "the configuration was not used ({e}); alerts went to the console"
            ));
        }
        if let Some(e) = &self.store_error {
            parts.push(e.clone());
        }
        if self.unrecorded > 0 {
            parts.push(format!(
                "{} events were not recorded in time",
                self.unrecorded
            ));
        }
        if self.lost > 0 {
            parts.push(format!(
                "{} events were lost (belfry's queue and overflow were full, or the store failed)",
                self.lost
            ));
        }
        if self.pending > 0 {
            parts.push(format!(
                "{} notification{} not delivered by the flush (it may take {}; {} next try \
                 comes later); kept in the outbox ({}); `belfry deliver` or the next belfry \
                 process sends {}",
                self.pending,
                if self.pending == 1 { "" } else { "s" },
                belfry_core::format_duration(self.timeout),
                if self.pending == 1 { "its" } else { "their" },
                self.store,
                if self.pending == 1 { "it" } else { "them" }
            ));
        }
        if self.dead > 0 {
            let why = self
                .dead_reasons
                .first()
                .map_or(String::new(), |r| format!(": {r}"));
            parts.push(format!("{} notifications given up{why}", self.dead));
        }
        if parts.is_empty() {
            return write!(f, "everything recorded and delivered");
        }
        f.write_str(&parts.join("; "))
    }
}

/// Flushes the client when dropped: records what is queued and delivers, for at most the
/// flush timeout (`[delivery] wait`, 10 s by default), then says on standard error what is
/// left, if anything. What is left stays in the outbox.
///
/// Keep it alive for the life of the program (`let _guard = belfry::init();` in `main`):
/// `let _ = belfry::init();` drops it at once.
#[must_use = "dropping the guard flushes at once; keep it (`let _guard = belfry::init();`) until the program ends"]
pub struct Guard {
    client: Belfry,
    timeout: Duration,
    flushed: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Guard {
    /// The client this guard flushes.
    pub fn client(&self) -> &Belfry {
        &self.client
    }

    /// Flushes now and returns the report instead of printing it.
    pub fn finish(mut self) -> FlushReport {
        self.flushed = true;
        self.client.flush(self.timeout)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.flushed {
            return;
        }
        let report = self.client.flush(self.timeout);
        if !report.is_complete() {
            let shared = self.client.shared();
            if !shared.quiet {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("belfry: {report}");
                }
            }
        }
    }
}

/// Starts belfry for this process from the same configuration as the `belfry` command
/// (`$BELFRY_CONFIG`, `./belfry.toml`, `~/.config/belfry/belfry.toml`, `$BELFRY_URLS`; with
/// nothing, the console) and state directory (`$BELFRY_HOME`, …), and installs it as the
/// global client that [`macro@watch`](crate::watch), [`layer()`](crate::layer()), tasks and
/// the panic hook use.
///
/// A configuration that cannot be read is reported on standard error and belfry runs with
/// the console channel only (an application should not stop over its alerting; but the
/// alerts must still be seen somewhere); [`try_init`] returns the error instead. Calling it
/// again returns a guard for the client that is already installed.
pub fn init() -> Guard {
    match try_init() {
        Ok(g) => g,
        Err(InitError::AlreadyInitialised) => {
            let client = GLOBAL.get().cloned().expect("initialised");
            let timeout = client.shared().flush_timeout;
            Guard {
                client,
                timeout,
                flushed: false,
            }
        }
        Err(e) => {
            let why = e.to_string();
            #[allow(clippy::print_stderr)]
            {
                eprintln!("belfry: {why}; alerts go to the console only");
            }
            // With no state directory either, a temporary one keeps the alerts visible for
            // this run at least.
            let home = home_dir().unwrap_or_else(|_| std::env::temp_dir().join("belfry"));
            let b = Builder {
                init_error: Some(why),
                ..Builder::default()
            }
            .home(home);
            match b.init() {
                Ok(g) => g,
                Err(e) => panic!("belfry cannot start even with the console alone: {e}"),
            }
        }
    }
}

/// Like [`init`], but returns what went wrong instead of falling back to the console.
pub fn try_init() -> Result<Guard, InitError> {
    if GLOBAL.get().is_some() {
        return Err(InitError::AlreadyInitialised);
    }
    let config = Config::load(&Sources::from_env(None))?;
    let home = home_dir()?;
    Builder::default().config(config).home(home).init()
}

/// Configures a client in code: channels, policy, state directory, queue size.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("belfry-builder-doc-{}", std::process::id()));
/// use std::time::Duration;
///
/// let guard = belfry::Belfry::builder()
///     .channel("console", "console://")
///     .repeat_failures_after(Duration::from_secs(60))
///     .home(&dir)
///     .build()
///     .expect("a valid configuration");
/// assert_eq!(guard.client().config().channels[0].name, "console");
/// # drop(guard);
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    config: Option<Config>,
    channels: Vec<(String, String)>,
    policy: Option<Policy>,
    repeat_failures_after: Option<Duration>,
    ok_heartbeat_after: Option<Option<Duration>>,
    home: Option<PathBuf>,
    capacity: Option<usize>,
    flush_timeout: Option<Duration>,
    quiet: bool,
    init_error: Option<String>,
}

impl Builder {
    /// Starts from this configuration (e.g. [`Config::load`] or [`Config::parse`]) instead of
    /// an empty one.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds a channel: a name and a URL in Apprise's syntax (`json://host/path`,
    /// `slack://…`, `console://`). With no channel at all, alerts go to the console.
    pub fn channel(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.channels.push((name.into(), url.into()));
        self
    }

    /// The alert rules' settings for every job.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// While a job keeps failing, repeat the alert (a digest with the count) once the last one
    /// is this old. Default 1 s.
    pub fn repeat_failures_after(mut self, d: Duration) -> Self {
        self.repeat_failures_after = Some(d);
        self
    }

    /// While a job keeps succeeding, say "still OK" once the last message is this old; `None`
    /// for never. Default 59 min 24 s.
    pub fn ok_heartbeat_after(mut self, d: Option<Duration>) -> Self {
        self.ok_heartbeat_after = Some(d);
        self
    }

    /// The state directory (default: `$BELFRY_HOME`, else `$XDG_STATE_HOME/belfry`, else
    /// `~/.local/state/belfry`).
    pub fn home(mut self, dir: impl AsRef<Path>) -> Self {
        self.home = Some(dir.as_ref().to_owned());
        self
    }

    /// How many items the queue to the worker holds before events collapse per job
    /// (default [`DEFAULT_QUEUE_CAPACITY`]).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n);
        self
    }

    /// How long the guard's flush may take (default `[delivery] wait`, 10 s).
    pub fn flush_timeout(mut self, d: Duration) -> Self {
        self.flush_timeout = Some(d);
        self
    }

    /// Print nothing of belfry's own on standard error (the guard's report, store errors).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    fn finish_config(&mut self) -> Result<Config, InitError> {
        let mut config = match self.config.take() {
            Some(c) => c,
            None if self.channels.is_empty() => Config::default(),
            None => Config::parse("", "the builder")?,
        };
        for (name, url) in self.channels.drain(..) {
            config.add_channel(&name, &url)?;
        }
        if let Some(p) = self.policy.take() {
            config.policy = p;
        }
        if let Some(d) = self.repeat_failures_after {
            config.policy.repeat_failures_after = d;
        }
        if let Some(h) = self.ok_heartbeat_after {
            config.policy.ok_heartbeat_after = h;
        }
        Ok(config)
    }

    /// Starts the client without installing it globally: it records what is called inside
    /// [`Belfry::in_scope`], through [`Belfry::layer`], or through handles taken from the
    /// guard.
    pub fn build(mut self) -> Result<Guard, InitError> {
        let config = self.finish_config()?;
        let home = match self.home.take() {
            Some(h) => h,
            None => home_dir()?,
        };
        let timeout = self.flush_timeout.unwrap_or(config.delivery.wait);
        let (control, control_rx) = mpsc::channel();
        let delivery = Arc::new(Delivery::default());
        let shared = Arc::new(Shared {
            queue: Queue::new(self.capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY)),
            control,
            config,
            home,
            quiet: self.quiet,
            flush_timeout: timeout,
            counters: Counters::default(),
            delivery,
            init_error: self.init_error.take(),
            said: Mutex::new(Vec::new()),
            samplers: thread_local::ThreadLocal::new(),
        });
        worker::start(shared.clone(), control_rx)?;
        Ok(Guard {
            client: Belfry {
                handle: Arc::new(Handle { shared }),
            },
            timeout,
            flushed: false,
        })
    }

    /// Starts the client and installs it as the process's global client.
    pub fn init(self) -> Result<Guard, InitError> {
        if GLOBAL.get().is_some() {
            return Err(InitError::AlreadyInitialised);
        }
        let guard = self.build()?;
        GLOBAL
            .set(guard.client.clone())
            .map_err(|_| InitError::AlreadyInitialised)?;
        Ok(guard)
    }
}
