//! The writer: a std thread that owns a store handle and records pings in groups (one such
//! thread on SQLite, several on PostgreSQL, sharing the queue). A request hands its ping over
//! a channel and waits for the answer; a writer takes everything queued (up to [`GROUP`]),
//! records it in one transaction (`Store::record_pings`), and only then answers each request:
//! a ping is committed before its `200 OK`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use belfry::config::Config;
use belfry::internal::Waker;
use belfry_core::Timestamp;
use belfry_store::{JobRef, Ping, PingKind, PingOutcome, Store};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::metrics::Metrics;

/// The most pings recorded in one transaction.
pub const GROUP: usize = 512;

/// Pings waiting for the writer, at most (a request waits for room beyond that).
pub(crate) const QUEUE: usize = 8192;

/// The job a ping names.
#[derive(Debug)]
pub(crate) enum Who {
    Uuid(Uuid),
    Name(String),
}

impl Who {
    /// What groups are ordered by: the job's name, or its uuid (a job named both ways in one
    /// group sorts twice; rare, and PostgreSQL then breaks the deadlock it may cause).
    fn key(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Who::Name(n) => std::borrow::Cow::Borrowed(n),
            Who::Uuid(u) => std::borrow::Cow::Owned(u.to_string()),
        }
    }
}

/// A ping on its way to the writer, with where to send the answer.
#[derive(Debug)]
pub(crate) struct Job {
    pub who: Who,
    pub kind: PingKind,
    pub rid: Option<Uuid>,
    pub at: Timestamp,
    pub body: Bytes,
    pub create: bool,
    pub remote: Option<String>,
    pub method: &'static str,
    pub user_agent: Option<String>,
    pub reply: oneshot::Sender<Answer>,
}

/// What became of a ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Recorded.
    Ok,
    /// Recorded; the job was created for it.
    Created,
    /// No such job.
    NotFound,
    /// The store failed: nothing was recorded.
    Failed,
}

/// Runs a writer until every sender is gone (the HTTP server stopped), then returns. Several
/// writers may share `rx`: each takes a group (what is queued, up to [`GROUP`]) and records
/// it while the next takes the following one.
pub(crate) fn run(
    mut store: Store,
    config: Arc<Config>,
    rx: Arc<std::sync::Mutex<mpsc::Receiver<Job>>>,
    metrics: Arc<Metrics>,
    waker: Waker,
) {
    // Checkpoints are the checkpointer thread's: a commit here then only appends to the log.
    if let Err(e) = store.leave_upkeep() {
        crate::log::warn(&format!("store upkeep: {}", config.scrub(&e.to_string())));
    }
    let mut group: Vec<Job> = Vec::with_capacity(GROUP);
    loop {
        {
            let mut rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            let Some(first) = rx.blocking_recv() else {
                return;
            };
            group.push(first);
            while group.len() < GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        // Jobs in one order in every group: writers working at once on PostgreSQL then lock
        // the jobs' rows in that order, and never wait for each other in a circle (a deadlock
        // costs a second before PostgreSQL breaks it). Stable: a job's pings keep their order.
        group.sort_by(|a, b| a.who.key().cmp(&b.who.key()));
        let pings: Vec<Ping<'_>> = group
            .iter()
            .map(|j| Ping {
                job: match &j.who {
                    Who::Uuid(u) => JobRef::Uuid(*u),
                    Who::Name(n) => JobRef::Name(n),
                },
                kind: j.kind,
                rid: j.rid,
                at: j.at,
                body: &j.body,
                create: j.create,
                remote: j.remote.as_deref(),
                method: j.method,
                user_agent: j.user_agent.as_deref(),
            })
            .collect();
        let answers: Vec<Answer> = match store.record_pings(&pings, &*config) {
            Ok(outcomes) => {
                let mut alerted = false;
                let answers = outcomes
                    .iter()
                    .zip(&group)
                    .map(|(o, j)| match o {
                        PingOutcome::Recorded {
                            created, recorded, ..
                        } => {
                            metrics.ping(&j.kind);
                            if recorded.as_ref().is_some_and(|r| r.notification.is_some()) {
                                metrics.alerts.fetch_add(1, Relaxed);
                                alerted = true;
                            }
                            if *created {
                                metrics.created.fetch_add(1, Relaxed);
                                Answer::Created
                            } else {
                                Answer::Ok
                            }
                        }
                        PingOutcome::NotFound => Answer::NotFound,
                    })
                    .collect();
                for o in &outcomes {
                    if let PingOutcome::Recorded {
                        recorded: Some(rec),
                        ..
                    } = o
                        && let Err(e) = belfry::internal::mark_unrouted(&mut store, &config, rec)
                    {
                        crate::log::warn(&format!(
                            "could not mark an alert as sent to no channel: {}",
                            config.scrub(&e.to_string())
                        ));
                    }
                }
                if alerted {
                    waker.wake();
                }
                answers
            }
            Err(e) => {
                metrics.store_errors.fetch_add(1, Relaxed);
                crate::log::warn(&format!(
                    "could not record {} ping(s): {}",
                    group.len(),
                    config.scrub(&e.to_string())
                ));
                vec![Answer::Failed; group.len()]
            }
        };
        drop(pings);
        for (job, answer) in group.drain(..).zip(answers) {
            // A client that hung up does not want its answer.
            let _ = job.reply.send(answer);
        }
    }
}
