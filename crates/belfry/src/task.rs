//! Tasks with retries, a timeout and state handlers, as Prefect's tasks have them.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::time::{Duration, Instant};

use belfry_core::{Details, Event, State, StateFilter, Timestamp, format_duration};
use belfry_store::RunStart;

use crate::client::dispatch;
use crate::item::{Item, Record};
use crate::panic::payload_text;
use crate::watch::CatchUnwind;

/// What a state handler returns: `Ok(None)` keeps the new state, `Ok(Some(s))` replaces it
/// with `s`, `Err` is a failure of the handler (recorded; see [`Task::handler_errors_fail`]).
pub type HandlerResult = Result<Option<State>, Box<dyn Error + Send + Sync>>;

/// What a handler's closure may return: nothing, a replacement state, or a `Result` of
/// either.
pub trait IntoHandlerResult {
    /// The result as a [`HandlerResult`].
    fn into_handler_result(self) -> HandlerResult;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> HandlerResult {
        Ok(None)
    }
}

impl IntoHandlerResult for Option<State> {
    fn into_handler_result(self) -> HandlerResult {
        Ok(self)
    }
}

impl IntoHandlerResult for State {
    fn into_handler_result(self) -> HandlerResult {
        Ok(Some(self))
    }
}

impl<E: Into<Box<dyn Error + Send + Sync>>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map(|()| None).map_err(Into::into)
    }
}

impl<E: Into<Box<dyn Error + Send + Sync>>> IntoHandlerResult for Result<Option<State>, E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map_err(Into::into)
    }
}

impl<E: Into<Box<dyn Error + Send + Sync>>> IntoHandlerResult for Result<State, E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map(Some).map_err(Into::into)
    }
}

/// Called on every state change of a task with `(job, old, new)`; may replace `new`. Any
/// `Fn(&str, &State, &State) -> R` where `R` is `()`, `Option<State>`, `State` or a `Result`
/// of those is one.
pub trait StateHandler: Send + Sync {
    /// Handles one change.
    fn on_change(&self, job: &str, old: &State, new: &State) -> HandlerResult;
}

impl<F, R> StateHandler for F
where
    F: Fn(&str, &State, &State) -> R + Send + Sync,
    R: IntoHandlerResult,
{
    fn on_change(&self, job: &str, old: &State, new: &State) -> HandlerResult {
        self(job, old, new).into_handler_result()
    }
}

/// Decides whether a handler's action runs for a change.
pub trait Check: Send + Sync {
    /// Whether to act on `old` → `new` of `job`.
    fn check(&self, job: &str, old: &State, new: &State) -> bool;
}

impl<F> Check for F
where
    F: Fn(&str, &State, &State) -> bool + Send + Sync,
{
    fn check(&self, job: &str, old: &State, new: &State) -> bool {
        self(job, old, new)
    }
}

/// A check on the new state's name: see [`only_states`] and [`ignore_states`].
#[derive(Clone, Debug)]
pub struct StateSet {
    filters: Vec<StateFilter>,
    keep: bool,
}

impl Check for StateSet {
    fn check(&self, _job: &str, _old: &State, new: &State) -> bool {
        self.filters.iter().any(|f| f.matches(new, false)) == self.keep
    }
}

fn state_set<I, S>(names: I, keep: bool) -> StateSet
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let filters = names
        .into_iter()
        .map(|n| match StateFilter::from_str(n.as_ref()) {
            Ok(f) => f,
            Err(e) => panic!("belfry::only_states / ignore_states: {e}"),
        })
        .collect();
    StateSet { filters, keep }
}

/// A check that passes when the new state is one of `names` (`"failed"`, `"retrying"`,
/// `"timed_out"`, …, or `"problem"` for any problem state).
///
/// # Panics
///
/// On a name that is not a state (the message lists the names): it is a mistake in the
/// program's text, like a bad regular expression.
pub fn only_states<I, S>(names: I) -> StateSet
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    state_set(names, true)
}

/// A check that passes when the new state is none of `names`.
///
/// # Panics
///
/// As [`only_states`].
pub fn ignore_states<I, S>(names: I) -> StateSet
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    state_set(names, false)
}

/// A handler built from a check and an action, as Prefect composes them: the action runs
/// only for the changes the check passes.
pub struct Handler<C, A> {
    check: C,
    action: A,
}

impl<C, A> fmt::Debug for Handler<C, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

impl<C: Check, A: StateHandler> StateHandler for Handler<C, A> {
    fn on_change(&self, job: &str, old: &State, new: &State) -> HandlerResult {
        if self.check.check(job, old, new) {
            self.action.on_change(job, old, new)
        } else {
            Ok(None)
        }
    }
}

/// Builds a handler from a check (a closure `(job, old, new) -> bool`, or [`only_states`],
/// [`ignore_states`]) and an action (any [`StateHandler`]).
///
/// ```
/// use belfry::{State, Task, handler, only_states};
///
/// let task = Task::new("load").on_state_change(handler(
///     only_states(["retrying"]),
///     |job: &str, _old: &State, new: &State| println!("{job} will retry: {new:?}"),
/// ));
/// # let _ = task;
/// ```
pub fn handler<C: Check, A: StateHandler>(check: C, action: A) -> Handler<C, A> {
    Handler { check, action }
}

/// A unit of work with retries, a time limit and state handlers. Each run is recorded as a
/// run of the job (visible in `belfry history`), and alerts by the rules.
///
/// States go `Running` → (`Retrying { attempt, next_at }` → `Running`)* → `Ok`, `Failed`,
/// `TimedOut` or `Crashed` (a panic, which is not retried and keeps unwinding). At every
/// change the handlers run in order, each with `(job, old, new)` where `new` is what the
/// previous handlers left; a handler may replace it. The final state is what belfry records.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("belfry-task-doc-{}", std::process::id()));
/// # let guard = belfry::Belfry::builder().home(&dir).quiet(true).build().unwrap();
/// # guard.client().in_scope(|| {
/// use std::time::Duration;
/// use belfry::{State, Task};
///
/// let mut calls = 0;
/// let rows = Task::new("load")
///     .retries(3)
///     .retry_delay(Duration::from_millis(10))
///     .run(|| {
///         calls += 1;
///         if calls < 3 { Err("database busy") } else { Ok(42) }
///     })
///     .unwrap();
/// assert_eq!((rows, calls), (42, 3));
/// # });
/// # drop(guard);
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
pub struct Task {
    job: String,
    retries: u32,
    retry_delay: Duration,
    timeout: Option<Duration>,
    handlers: Vec<Box<dyn StateHandler>>,
    handler_errors_fail: bool,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("job", &self.job)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("timeout", &self.timeout)
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

/// How a task ended when it did not end `Ok` with a value.
pub struct TaskError<E> {
    job: String,
    state: State,
    attempts: u32,
    error: Option<E>,
    handler_errors: Vec<String>,
}

impl<E> TaskError<E> {
    /// The final state (after the handlers).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// How many attempts ran.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last attempt's error, if it returned one.
    pub fn error(&self) -> Option<&E> {
        self.error.as_ref()
    }

    /// The last attempt's error, if it returned one.
    pub fn into_error(self) -> Option<E> {
        self.error
    }

    /// What went wrong in state handlers (each is also recorded for the job `JOB.handlers`).
    pub fn handler_errors(&self) -> &[String] {
        &self.handler_errors
    }
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} ended {} after {} attempt{}",
            self.job,
            self.state.label(),
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )?;
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("job", &self.job)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("error", &self.error)
            .field("handler_errors", &self.handler_errors)
            .finish()
    }
}

impl<E: Error + 'static> Error for TaskError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}

/// One attempt's result, before the handlers.
enum Attempt<T, E> {
    Value(T),
    Error(E, String),
    TooLate(Duration),
}

/// A run in progress: its record and the state machine.
struct Run<'t> {
    task: &'t Task,
    id: String,
    started: Timestamp,
    clock: Instant,
    state: State,
    handler_errors: Vec<String>,
}

/// What to do after an attempt.
enum Next {
    Retry(Duration),
    End(State),
}

impl Task {
    /// A task recorded under the job `job`.
    pub fn new(job: impl Into<String>) -> Task {
        Task {
            job: job.into(),
            retries: 0,
            retry_delay: Duration::ZERO,
            timeout: None,
            handlers: Vec::new(),
            handler_errors_fail: false,
        }
    }

    /// Tries again after a failure (or a time-out) up to `n` more times.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Waits this long before each retry.
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    /// An attempt that takes longer than `d` is `TimedOut` (and retried if retries are left).
    /// [`Task::run_async`] stops the attempt at the limit. [`Task::run`] cannot stop a
    /// thread safely: it judges the attempt when it returns, and discards its result.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Adds a handler, called on every state change after those added before.
    pub fn on_state_change(mut self, h: impl StateHandler + 'static) -> Self {
        self.handlers.push(Box::new(h));
        self
    }

    /// Adds a handler called when the task enters a problem state (`Failed`, `TimedOut`,
    /// `Crashed`) with `(job, new)`; it may return a replacement state too.
    pub fn on_failure<F, R>(self, f: F) -> Self
    where
        F: Fn(&str, &State) -> R + Send + Sync + 'static,
        R: IntoHandlerResult,
    {
        self.on_state_change(handler(
            |_: &str, _: &State, new: &State| new.is_problem(),
            move |job: &str, _: &State, new: &State| f(job, new),
        ))
    }

    /// Whether a handler that fails or panics makes the task `Failed` (default: no, it is
    /// recorded for the job `JOB.handlers` and the task's outcome stands).
    pub fn handler_errors_fail(mut self, yes: bool) -> Self {
        self.handler_errors_fail = yes;
        self
    }

    /// Runs `f` on this thread, with retries, and records the run.
    pub fn run<T, E, F>(&self, mut f: F) -> Result<T, TaskError<E>>
    where
        F: FnMut() -> Result<T, E>,
        E: fmt::Display,
    {
        let mut run = self.begin();
        let mut attempt = 1;
        loop {
            let t0 = Instant::now();
            let result = match catch_unwind(AssertUnwindSafe(&mut f)) {
                Ok(r) => r,
                Err(payload) => run.crashed(payload, attempt),
            };
            let outcome = match (result, self.timeout) {
                (_, Some(limit)) if t0.elapsed() > limit => Attempt::TooLate(limit),
                (Ok(v), _) => Attempt::Value(v),
                (Err(e), _) => {
                    let text = e.to_string();
                    Attempt::Error(e, text)
                }
            };
            match run.after(attempt, outcome) {
                Ok(done) => return done,
                Err(delay) => {
                    std::thread::sleep(delay);
                    run.restart();
                    attempt += 1;
                }
            }
        }
    }

    /// Runs the future `f()` makes, with retries, and records the run. The time limit stops
    /// an attempt (the future is dropped); retries wait with `tokio::time::sleep`, so this
    /// needs a Tokio runtime with its timer when a timeout or a retry delay is set.
    pub async fn run_async<T, E, F, Fut>(&self, mut f: F) -> Result<T, TaskError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let mut run = self.begin();
        let mut attempt = 1;
        loop {
            let attempt_fut = CatchUnwind::new(f());
            let caught = match self.timeout {
                Some(limit) => match tokio::time::timeout(limit, attempt_fut).await {
                    Ok(r) => Ok(r),
                    Err(_) => Err(limit),
                },
                None => Ok(attempt_fut.await),
            };
            let outcome = match caught {
                Err(limit) => Attempt::TooLate(limit),
                Ok(Err(payload)) => run.crashed(payload, attempt),
                Ok(Ok(Ok(v))) => Attempt::Value(v),
                Ok(Ok(Err(e))) => {
                    let text = e.to_string();
                    Attempt::Error(e, text)
                }
            };
            match run.after(attempt, outcome) {
                Ok(done) => return done,
                Err(delay) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    run.restart();
                    attempt += 1;
                }
            }
        }
    }

    fn begin(&self) -> Run<'_> {
        let run = Run {
            task: self,
            id: belfry_store::new_id(),
            started: Timestamp::now(),
            clock: Instant::now(),
            state: State::Running,
            handler_errors: Vec::new(),
        };
        dispatch(Item::RunStart(Box::new(RunStart {
            id: run.id.clone(),
            job: self.job.clone(),
            started: run.started,
            host: Some(crate::host::host_name()),
            pid: Some(std::process::id()),
            boot_id: crate::host::boot_id(),
        })));
        run
    }
}

impl Run<'_> {
    /// Moves to `proposed` through the handlers; returns the state they leave.
    fn change(&mut self, proposed: State, is_final: bool) -> State {
        let old = self.state;
        let mut new = proposed;
        let mut failed = false;
        for (i, h) in self.task.handlers.iter().enumerate() {
            let verdict =
                catch_unwind(AssertUnwindSafe(|| h.on_change(&self.task.job, &old, &new)));
            let problem = match verdict {
                Ok(Ok(Some(replacement))) => {
                    new = replacement;
                    None
                }
                Ok(Ok(None)) => None,
                Ok(Err(e)) => Some(format!(
                    "state handler {} failed on {} → {}: {e}",
                    i + 1,
                    old.name(),
                    new.name()
                )),
                Err(payload) => Some(format!(
                    "state handler {} panicked on {} → {}: {}",
                    i + 1,
                    old.name(),
                    new.name(),
                    payload_text(&*payload)
                )),
            };
            if let Some(text) = problem {
                failed = true;
                self.record_handler_error(text);
            }
        }
        if failed && is_final && self.task.handler_errors_fail && !new.is_problem() {
            new = State::Failed;
        }
        self.state = new;
        new
    }

    fn record_handler_error(&mut self, text: String) {
        let details = Details {
            error: Some(text.clone()),
            run_id: Some(self.id.clone()),
            ..Details::default()
        };
        dispatch(Item::Event(Record {
            job: Cow::Owned(format!("{}.handlers", self.task.job)),
            state: State::Failed,
            at: Timestamp::now(),
            duration: None,
            details: Some(Box::new(details)),
            traced: None,
            opts: None,
            count: 1,
            count_only: false,
        }));
        self.handler_errors.push(text);
    }

    /// `Retrying` → `Running` before the next attempt.
    fn restart(&mut self) {
        self.change(State::Running, false);
    }

    /// A panic in an attempt: recorded as `Crashed` (handlers run), and the unwinding goes
    /// on.
    fn crashed<A>(&mut self, payload: Box<dyn std::any::Any + Send>, attempt: u32) -> A {
        let message = payload_text(&*payload);
        let state = self.change(State::Crashed, true);
        let error = match crate::panic::take_last_panic() {
            Some(seen) => format!("panicked at {}: {message}", seen.location),
            None => format!("panicked: {message}"),
        };
        self.end(state, Some(error), attempt);
        std::panic::resume_unwind(payload)
    }

    /// Decides after an attempt: the final result, or the wait before the next attempt.
    fn after<T, E>(
        &mut self,
        attempt: u32,
        outcome: Attempt<T, E>,
    ) -> Result<Result<T, TaskError<E>>, Duration> {
        let (proposed, text) = match &outcome {
            Attempt::Value(_) => (State::Ok, None),
            Attempt::Error(_, text) => (State::Failed, Some(text.clone())),
            Attempt::TooLate(limit) => (
                State::TimedOut,
                Some(format!(
                    "attempt {attempt} ran longer than its time limit of {}",
                    format_duration(*limit)
                )),
            ),
        };
        let retries_left = attempt <= self.task.retries;
        let next = if proposed != State::Ok && retries_left {
            let next_at = Timestamp::now() + self.task.retry_delay;
            match self.change(
                State::Retrying {
                    attempt: attempt + 1,
                    next_at,
                },
                false,
            ) {
                State::Retrying { next_at, .. } => Next::Retry(next_at.since(Timestamp::now())),
                // A handler decided against the retry: its state is the end.
                other => Next::End(other),
            }
        } else {
            match self.change(proposed, true) {
                // No retries left: a handler cannot ask for one.
                State::Retrying { .. } => Next::End(proposed),
                other => Next::End(other),
            }
        };
        match next {
            Next::Retry(wait) => Err(wait),
            Next::End(state) => {
                self.end(state, text, attempt);
                let error = match outcome {
                    Attempt::Value(v) if state == State::Ok => return Ok(Ok(v)),
                    Attempt::Value(_) | Attempt::TooLate(_) => None,
                    Attempt::Error(e, _) => Some(e),
                };
                Ok(Err(TaskError {
                    job: self.task.job.clone(),
                    state,
                    attempts: attempt,
                    error,
                    handler_errors: std::mem::take(&mut self.handler_errors),
                }))
            }
        }
    }

    /// Records the run's end.
    fn end(&mut self, state: State, error: Option<String>, attempts: u32) {
        let mut details = Details {
            run_id: Some(self.id.clone()),
            started_at: Some(self.started),
            duration: Some(self.clock.elapsed()),
            host: Some(crate::host::host_name()),
            error,
            ..Details::default()
        };
        details
            .fields
            .insert("attempts".into(), attempts.to_string());
        dispatch(Item::RunEnd(Box::new(Event {
            job: self.task.job.clone(),
            state,
            at: Timestamp::now(),
            details,
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRYING: State = State::Retrying {
        attempt: 2,
        next_at: Timestamp::from_millis(0),
    };

    #[test]
    fn state_sets_match_by_name_and_by_group() {
        let only = only_states(["retrying", "timed_out"]);
        assert!(only.check("j", &State::Running, &RETRYING));
        assert!(only.check("j", &State::Running, &State::TimedOut));
        assert!(!only.check("j", &State::Running, &State::Failed));
        let ignore = ignore_states(["problem"]);
        assert!(ignore.check("j", &State::Running, &State::Ok));
        assert!(ignore.check("j", &State::Running, &RETRYING));
        assert!(!ignore.check("j", &State::Running, &State::Crashed));
    }

    #[test]
    #[should_panic(expected = "unknown state \"fialed\"")]
    fn an_unknown_state_name_is_a_mistake_in_the_program() {
        let _ = only_states(["fialed"]);
    }

    #[test]
    fn a_composed_handler_acts_only_when_its_check_passes() {
        let h = handler(only_states(["failed"]), |_: &str, _: &State, _: &State| {
            State::Skipped
        });
        assert_eq!(
            h.on_change("j", &State::Running, &State::Failed).unwrap(),
            Some(State::Skipped)
        );
        assert_eq!(h.on_change("j", &State::Running, &State::Ok).unwrap(), None);
    }
}
