//! The dispatcher: the one place where outbox rows are sent, whatever asks for it (a run's
//! finish, `belfry deliver`, the background drain, the library's delivery thread, and later
//! the server).
//!
//! Rows are claimed with a lease (so two processes never send the same row at once) and the
//! lease is renewed while this process works; rows of one job and channel are folded into
//! one message by the claim. Each destination has a lane with its pace ([`Pace`]: a token
//! bucket and a limit on requests in flight) and a pause when it answers with a time to
//! wait, so a slow or rate-limited channel never holds up the others. Every outcome is
//! recorded with the channel's verdict, in groups; a row that fails stays in the outbox for
//! a later attempt, with a backoff.
//!
//! Modes: [`Dispatcher::pass`] sends until nothing is due or a deadline (what a short
//! process needs), [`Dispatcher::settle`] also waits for rows falling due before the
//! deadline (`belfry deliver --wait`), and [`Dispatcher::run`] goes on until told to stop
//! through its [`Waker`], sleeping until the next due row or a wake-up (the drain, a
//! server).
//!
//! The store is only ever called from plain sync code, never inside the dispatcher's
//! runtime (a store backend may block, and PostgreSQL's client refuses to run there); all
//! its calls are in `outbox.rs`. A pass with a backlog on SQLite makes them on a thread of their own
//! (`link.rs`), so that it goes on sending while the store works.
//!
//! [`Pace`]: belfry_channels::Pace

mod engine;
mod lane;
mod link;
mod outbox;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use belfry_channels::Context;
use belfry_core::instant_after;
use belfry_store::Store;

use crate::config::Config;

pub use lane::{MIN_RETRY, backoff, jittered_backoff};
pub(crate) use lane::{attempt, retry_wait, scrubbed};
pub use report::{DeliveryReport, Failure};

/// A handle through which other threads wake an idle [`Dispatcher`] ("new rows") or stop
/// [`Dispatcher::run`]. Cheap to clone. A wake-up given while the dispatcher is busy is
/// kept for its next wait, so none is lost.
#[derive(Clone, Debug, Default)]
pub struct Waker {
    inner: Arc<Wake>,
}

#[derive(Debug, Default)]
struct Wake {
    notify: tokio::sync::Notify,
    stop: AtomicBool,
}

impl Waker {
    /// New rows may be due: look now rather than at the next poll.
    pub fn wake(&self) {
        self.inner.notify.notify_one();
    }

    /// Asks [`Dispatcher::run`] to return after its current pass.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.notify.notify_one();
    }

    /// Whether [`Waker::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }
}

/// Sends what the outbox holds, the one way belfry does: claims due rows with a renewed
/// lease (the claim folds a job's unsent rows for a channel into one message), paces each
/// channel in its own lane (token bucket, requests in flight, `Retry-After` pauses), records
/// outcomes in groups and reschedules failures with backoff. Bounded ([`Dispatcher::pass`],
/// [`Dispatcher::settle`]) or endless ([`Dispatcher::run`], woken or stopped through its
/// [`Waker`]). One per thread that sends; it keeps its runtime, its connections and its lanes
/// from one pass to the next. The store is never called inside its runtime.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::{Duration, Instant};
///
/// let config = belfry::Config::default();
/// let home = belfry::home_dir()?;
/// let mut store = belfry::store::Store::open(belfry::store_path(&home))?;
/// let mut dispatcher = belfry::internal::Dispatcher::new(&config);
/// // Send what is due, and what falls due within ten seconds.
/// let report = dispatcher.settle(&mut store, None, Instant::now() + Duration::from_secs(10))?;
/// println!("{} delivered, {} failed", report.delivered.len(), report.failed.len());
/// # Ok(())
/// # }
/// ```
pub struct Dispatcher<'a> {
    core: engine::Core<'a>,
    cx: Context,
    rt: tokio::runtime::Runtime,
    waker: Waker,
}

impl std::fmt::Debug for Dispatcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.core.owner)
            .field("lanes", &self.core.lanes.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Dispatcher<'a> {
    /// A dispatcher for `config`'s channels and `[delivery]` settings.
    pub fn new(config: &'a Config) -> Dispatcher<'a> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        Dispatcher {
            core: engine::Core {
                config,
                owner: format!("pid-{}-{}", std::process::id(), belfry_store::new_id()),
                lease: config.delivery.lease.max(Duration::from_secs(1)),
                digest_window: config.delivery.digest_window,
                // The console, and the pinger: a run's finish must not wait behind its start.
                window_exempt: config
                    .channels
                    .iter()
                    .filter(|c| c.is_console())
                    .chain(config.ping.as_ref())
                    .map(|c| c.name.clone())
                    .collect(),
                in_order: config.ping.iter().map(|c| c.name.clone()).collect(),
                lanes: Default::default(),
            },
            cx: Context::new(config.delivery.request_timeout),
            rt,
            waker: Waker::default(),
        }
    }

    /// A dispatcher that `waker` wakes: for a thread that owns its handle before the
    /// dispatcher exists (the library's delivery thread, a server's listener).
    pub fn with_waker(config: &'a Config, waker: Waker) -> Dispatcher<'a> {
        let mut d = Dispatcher::new(config);
        d.waker = waker;
        d
    }

    /// The handle that wakes this dispatcher or stops [`Dispatcher::run`].
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Overrides the digest window (`[delivery] digest_window`): a flush at a program's end
    /// sends at once what the window would hold, since no more events are coming to fold in.
    pub fn set_digest_window(&mut self, window: Duration) {
        self.core.digest_window = window;
    }

    /// The bounded mode: claims and sends due rows (only those of `ids`, if given) until
    /// nothing due is left or `deadline`, recording every outcome. Rows not yet tried by the
    /// deadline are given back; requests still running then are recorded as retries.
    pub fn pass(
        &mut self,
        store: &mut Store,
        ids: Option<&[i64]>,
        deadline: Instant,
    ) -> Result<DeliveryReport, belfry_store::Error> {
        self.core.pass(&self.rt, &self.cx, store, ids, deadline)
    }

    /// The bounded mode that waits: passes until no row (of any process) falls due before
    /// `deadline`, sleeping in between until the next one is due or a wake-up. What
    /// `belfry deliver --wait` does.
    pub fn settle(
        &mut self,
        store: &mut Store,
        ids: Option<&[i64]>,
        deadline: Instant,
    ) -> Result<DeliveryReport, belfry_store::Error> {
        let mut report = DeliveryReport::default();
        loop {
            report.extend(self.pass(store, ids, deadline)?);
            let Some(due_in) = outbox::next_due(store)? else {
                break;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if due_in >= left {
                break;
            }
            self.idle(store, due_in.max(MIN_POLL).min(left))?;
        }
        Ok(report)
    }

    /// The endless mode: sends what falls due, from any process, until [`Waker::stop`];
    /// between passes it sleeps until the next due row or a wake-up, and looks again at least
    /// every [`DRAIN_TICK`] for rows other processes added.
    pub fn run(&mut self, store: &mut Store) -> Result<(), belfry_store::Error> {
        let pass = self.core.config.delivery.wait.max(Duration::from_secs(60));
        while !self.waker.is_stopped() {
            self.pass(store, None, instant_after(Instant::now(), pass))?;
            if !self.wait_for_due(store, DRAIN_TICK)? {
                self.idle(store, DRAIN_TICK)?;
            }
        }
        Ok(())
    }

    /// Waits until the next row is due (at least [`MIN_POLL`] from now, at most `max`) or a
    /// wake-up. Returns at once with `false` when no row waits.
    pub fn wait_for_due(
        &mut self,
        store: &mut Store,
        max: Duration,
    ) -> Result<bool, belfry_store::Error> {
        let Some(due_in) = outbox::next_due(store)? else {
            return Ok(false);
        };
        self.idle(store, due_in.clamp(MIN_POLL, max.max(MIN_POLL)))?;
        Ok(true)
    }

    /// Waits `wait` between passes. A store that can tell when rows become due
    /// (PostgreSQL's `LISTEN/NOTIFY`: another host's run made an alert) ends the wait early
    /// itself; otherwise the dispatcher sleeps, or until a [`Waker`] wakes it.
    fn idle(&mut self, store: &mut Store, wait: Duration) -> Result<(), belfry_store::Error> {
        if outbox::can_wake(store) {
            outbox::wait_for_work(store, wait).map(drop)
        } else {
            self.sleep(wait);
            Ok(())
        }
    }

    /// Sleeps for `wait` or until a wake-up.
    pub fn sleep(&mut self, wait: Duration) {
        let wake = &self.waker.inner.notify;
        self.rt.block_on(async {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        });
    }

    /// Marks `ids` due now, whatever the digest window held them for (with
    /// [`Dispatcher::set_digest_window`] at zero, none is held again).
    pub fn expedite(&mut self, store: &mut Store, ids: &[i64]) -> Result<(), belfry_store::Error> {
        outbox::expedite(store, ids)
    }
}

impl Drop for Dispatcher<'_> {
    fn drop(&mut self) {
        // QUIT to the mail servers whose connections were kept for a next mail.
        self.rt.block_on(self.cx.close());
    }
}

/// The longest an idle dispatcher (or the drain) sleeps between looks at the outbox, so that
/// rows added by other processes without a wake-up are not left waiting long.
pub const DRAIN_TICK: Duration = Duration::from_secs(5);

/// The shortest sleep between looks at the outbox: a row due "now" that another process
/// holds must not make a dispatcher spin.
pub const MIN_POLL: Duration = Duration::from_millis(20);

/// One bounded pass of a [`Dispatcher`] made for it: claims and sends due outbox rows (only
/// those of `ids`, if given) for at most `wait`, and returns when nothing due is left or the
/// time is up. See [`Dispatcher::pass`].
pub fn deliver(
    config: &Config,
    store: &mut Store,
    ids: Option<&[i64]>,
    wait: Duration,
) -> Result<DeliveryReport, belfry_store::Error> {
    Dispatcher::new(config).pass(store, ids, instant_after(Instant::now(), wait))
}
