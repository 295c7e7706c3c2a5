//! A pass's way to the store: its claims, records, renewals and releases, made at once on the
//! dispatcher's thread, or, once the pass has a backlog to send on SQLite, handed in order to
//! a thread of their own, so that SQLite's stepping and commits run on another core while this
//! thread goes on sending.
//!
//! Asks are carried out in the order they are made, on either path, so a record asked before
//! a claim is written before that claim reads the outbox. Only a claim answers (with its rows);
//! the other asks answer only if they fail, and the pass then ends with that error. The store
//! is still called only from plain threads, never inside the dispatcher's runtime (the calls
//! are `outbox.rs`'s, with its check).

use std::collections::VecDeque;
use std::thread::Scope;
use std::time::Duration;

use belfry_core::Timestamp;
use belfry_store::{Attempt, Claim, Claimed, Error, Store};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::outbox;

/// One thing a pass asks of the store.
pub(crate) enum Ask {
    /// Claim due rows (answered with [`Answer::Claimed`]).
    Claim,
    /// Write these outcomes.
    Record(Vec<(i64, Attempt, Duration)>),
    /// Renew the leases on these rows.
    Renew(Vec<i64>),
    /// Give these rows back, due at this time (or as they were).
    Release(Vec<i64>, Option<Timestamp>),
}

/// What comes back.
pub(crate) enum Answer {
    /// The rows a claim took (empty: nothing due).
    Claimed(Vec<Claimed>),
    /// An ask failed; the pass ends with this error.
    Failed(Error),
}

/// What every claim of the pass says, owned so that the store's thread can keep a copy.
#[derive(Clone)]
pub(crate) struct ClaimArgs<'p> {
    pub owner: String,
    pub lease: Duration,
    pub digest_window: Duration,
    pub window_exempt: Vec<String>,
    pub in_order: Vec<String>,
    pub ids: Option<&'p [i64]>,
    pub limit: u32,
}

impl ClaimArgs<'_> {
    /// Carries out `ask`: `Some` rows for a claim.
    fn carry_out(&self, store: &mut Store, ask: Ask) -> Result<Option<Vec<Claimed>>, Error> {
        match ask {
            Ask::Claim => outbox::claim(
                store,
                &Claim {
                    owner: &self.owner,
                    lease: self.lease,
                    digest_window: self.digest_window,
                    window_exempt: &self.window_exempt,
                    in_order: &self.in_order,
                    ids: self.ids,
                    limit: self.limit,
                },
            )
            .map(Some),
            Ask::Record(outcomes) => outbox::record(store, &outcomes).map(|()| None),
            Ask::Renew(ids) => outbox::renew(store, &self.owner, &ids, self.lease).map(|()| None),
            Ask::Release(ids, due) => outbox::release(store, &self.owner, &ids, due).map(|()| None),
        }
    }
}

/// The store, as a pass reaches it.
pub(crate) struct Link<'s, 'p> {
    args: ClaimArgs<'p>,
    /// The store, while its calls are made on this thread.
    store: Option<&'s mut Store>,
    /// Answers of calls made on this thread, not yet taken.
    answers: VecDeque<Answer>,
    /// Whether the calls may move to a thread of their own: SQLite only (see
    /// [`Link::go_threaded`]).
    threadable: bool,
    /// The way to the store's thread, once it runs.
    asks: Option<std::sync::mpsc::Sender<Ask>>,
    from_thread: Option<UnboundedReceiver<Answer>>,
}

impl<'s, 'p> Link<'s, 'p> {
    pub fn new(store: &'s mut Store, args: ClaimArgs<'p>) -> Self {
        let threadable = matches!(store.location(), belfry_store::Location::Sqlite(_));
        Link {
            args,
            threadable,
            store: Some(store),
            answers: VecDeque::new(),
            asks: None,
            from_thread: None,
        }
    }

    /// Whether the store's calls are made on a thread of their own.
    pub fn is_threaded(&self) -> bool {
        self.asks.is_some()
    }

    /// Asks `ask` of the store: at once on this thread (an error is returned here), or in turn
    /// on the store's thread (an error comes back as [`Answer::Failed`]).
    pub fn ask(&mut self, ask: Ask) -> Result<(), Error> {
        if let Some(store) = self.store.as_deref_mut() {
            if let Some(rows) = self.args.carry_out(store, ask)? {
                self.answers.push_back(Answer::Claimed(rows));
            }
        } else if let Some(asks) = &self.asks {
            // If the thread has stopped, it stopped on an error, which is waiting among its
            // answers.
            let _ = asks.send(ask);
        }
        Ok(())
    }

    /// An answer that has come, if any, without waiting.
    pub fn try_answer(&mut self) -> Option<Answer> {
        if let Some(a) = self.answers.pop_front() {
            return Some(a);
        }
        self.from_thread.as_mut()?.try_recv().ok()
    }

    /// Waits for the store's thread's next answer; never ready without that thread (answers
    /// made on this thread are taken with [`Link::try_answer`] before any wait).
    pub async fn next_answer(&mut self) -> Option<Answer> {
        match self.from_thread.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// From now on, makes the store's calls on a thread of `scope`, in the order asked. Does
    /// nothing if that thread runs already, the machine has one core, or the store is
    /// PostgreSQL: there each call is a round trip to a server on the same cores, and the
    /// thread measured slower (two rounds each of `scripts/bench-throughput.sh`: 5,078 and
    /// 3,633/s with it, 5,537 and 5,368/s without).
    pub fn go_threaded<'scope>(&mut self, scope: &'scope Scope<'scope, '_>)
    where
        's: 'scope,
        'p: 'scope,
    {
        if !self.threadable
            || self.is_threaded()
            || std::thread::available_parallelism().map_or(1, usize::from) < 2
        {
            return;
        }
        // The store goes to the thread once it runs: if it cannot be started, the calls stay
        // on this one.
        let (hand, handed) = std::sync::mpsc::channel::<&'s mut Store>();
        let (asks, asked) = std::sync::mpsc::channel::<Ask>();
        let (answer, answers) = unbounded_channel::<Answer>();
        let args = self.args.clone();
        let spawned = std::thread::Builder::new()
            .name("belfry-store".to_owned())
            .spawn_scoped(scope, move || {
                if let Ok(store) = handed.recv() {
                    serve(store, &args, &asked, &answer);
                }
            });
        if spawned.is_ok()
            && let Some(store) = self.store.take()
        {
            if let Err(back) = hand.send(store) {
                self.store = Some(back.0);
                return;
            }
            self.asks = Some(asks);
            self.from_thread = Some(answers);
        }
    }

    /// Ends the store's thread after it has carried out every ask, and returns the first
    /// error it met. (A pass waits for its last claim before it closes, so no claimed row is
    /// left among the answers.)
    pub fn close(mut self) -> Result<(), Error> {
        drop(self.asks.take());
        let mut failed = None;
        let mut keep = |a: Answer| {
            if let Answer::Failed(e) = a {
                failed.get_or_insert(e);
            }
        };
        while let Some(a) = self.try_answer() {
            keep(a);
        }
        if let Some(mut rx) = self.from_thread.take() {
            // Outside the runtime: this thread may block.
            while let Some(a) = rx.blocking_recv() {
                keep(a);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The store's thread: carries out the asks in order until they end or one fails.
fn serve(
    store: &mut Store,
    args: &ClaimArgs<'_>,
    asked: &std::sync::mpsc::Receiver<Ask>,
    answer: &UnboundedSender<Answer>,
) {
    while let Ok(ask) = asked.recv() {
        match args.carry_out(store, ask) {
            Ok(Some(rows)) => {
                let _ = answer.send(Answer::Claimed(rows));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = answer.send(Answer::Failed(e));
                return;
            }
        }
    }
}
