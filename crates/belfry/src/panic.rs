//! Panics: a hook that records `Crashed` before the previous hook runs.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use belfry_core::{Details, State, Timestamp};

use crate::client::{Belfry, SyncError, record_directly, say_direct, with_current};
use crate::item::{Item, Record};
use crate::threads::on_belfry_thread;

/// How long a panicking thread waits for belfry's worker to write the crash to the store.
pub const PANIC_RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// The text of a panic's payload (`panic!("…")` gives a `&str` or a `String`).
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// What belfry's hook saw of the last panic on this thread, for `#[watch]` to use when the
/// unwinding reaches it.
#[derive(Debug)]
pub(crate) struct SeenPanic {
    pub location: String,
    pub backtrace: Option<String>,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<SeenPanic>> = const { RefCell::new(None) };
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// How many watched functions' bodies are running on this thread.
    static WATCHED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as a watched function's body: a panic in it is the function's to record (under
/// its job, as `Crashed`), and the hook only notes where it happened. With `panic = "abort"`
/// nothing unwinds to the function, so the hook records it as any other.
pub(crate) fn watched<T>(f: impl FnOnce() -> T) -> T {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            WATCHED.with(|w| w.set(w.get().saturating_sub(1)));
        }
    }
    WATCHED.with(|w| w.set(w.get() + 1));
    let _leave = Leave;
    f()
}

/// Whether belfry's panic hook is installed.
pub(crate) fn hook_installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

pub(crate) fn take_last_panic() -> Option<SeenPanic> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
static HOOK_JOB: Mutex<Option<String>> = Mutex::new(None);

/// The job a panic is recorded under when nothing names one: the program's file name.
pub(crate) fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "program".to_owned())
}

/// Installs a panic hook that records every panic as `Crashed` (its message, where it
/// happened, the thread and a backtrace) under the job named after the program, then calls the
/// hook that was installed before (which prints the usual message). A panic that unwinds out
/// of a `#[watch]`ed function is recorded once, under that function's job (with the same
/// details, and as surely: before the unwinding goes on), not under the program's too; one
/// caught inside the function's body is not recorded.
///
/// The crash is written to the store and its outbox before the hook returns, through the
/// current client's worker (so that the events queued before it are recorded first), waiting
/// at most [`PANIC_RECORD_TIMEOUT`]; without a client, or on belfry's own threads, the hook
/// opens the store itself. It does no network I/O: the notification is delivered by the
/// client's delivery thread if the program goes on (a panic caught, or in another thread), by
/// the guard's flush, or by the next belfry process. Installing it twice changes nothing.
pub fn install_panic_hook() {
    install_for(&program_name());
}

/// Installs the hook (once) and names the job it records under.
pub(crate) fn install_for(job: &str) {
    *HOOK_JOB.lock().unwrap_or_else(PoisonError::into_inner) = Some(job.to_owned());
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic inside belfry's own recording must not recurse into it.
        if !IN_HOOK.with(|h| h.replace(true)) {
            record(info);
            IN_HOOK.with(|h| h.set(false));
        }
        previous(info);
    }));
}

fn record(info: &PanicHookInfo<'_>) {
    let message = payload_text(info.payload());
    let location = info.location().map_or_else(
        || "an unknown place".to_owned(),
        |l| format!("{}:{}:{}", l.file(), l.line(), l.column()),
    );
    let backtrace = Backtrace::force_capture().to_string();
    LAST_PANIC.with(|p| {
        *p.borrow_mut() = Some(SeenPanic {
            location: location.clone(),
            backtrace: Some(backtrace.clone()),
        });
    });
    if cfg!(panic = "unwind") && WATCHED.with(Cell::get) > 0 {
        return;
    }
    let job = HOOK_JOB
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(program_name);
    let thread = std::thread::current();
    let mut details = Details {
        error: Some(format!("panicked at {location}: {message}")),
        backtrace: Some(backtrace),
        ..Details::default()
    };
    details.fields.insert(
        "thread".into(),
        thread.name().unwrap_or("unnamed").to_owned(),
    );
    let record = Record {
        job: job.into(),
        state: State::Crashed,
        at: Timestamp::now(),
        duration: None,
        details: Some(Box::new(details)),
        traced: None,
        opts: None,
        count: 1,
        count_only: false,
    };
    record_now(record);
}

/// Records `record` before returning: through the current client's worker, or directly.
pub(crate) fn record_now(record: Record) {
    enum Next {
        Done,
        Direct(Option<Belfry>, &'static str, Record),
        Late(Belfry),
    }
    let next = with_current(|c| match c {
        Some(c) if !on_belfry_thread() => {
            match c.record_sync(Item::Event(record), PANIC_RECORD_TIMEOUT) {
                Ok(()) => Next::Done,
                Err(SyncError::NotSent(Item::Event(r))) => {
                    Next::Direct(Some(c.clone()), "belfry's worker has stopped", r)
                }
                Err(SyncError::NotSent(_)) => Next::Done,
                Err(SyncError::TimedOut) => Next::Late(c.clone()),
            }
        }
        Some(c) => Next::Direct(Some(c.clone()), "on belfry's own thread", record),
        None => Next::Direct(None, "no client", record),
    });
    match next {
        Next::Done => {}
        Next::Late(c) => say_direct(
            Some(&c),
            "a crash is queued but was not written within 5s; it may be lost if the program \
             ends now",
        ),
        Next::Direct(client, why, record) => {
            if let Err(e) = record_directly(client.as_ref(), &record) {
                say_direct(
                    client.as_ref(),
                    &format!("could not record the crash of {} ({why}): {e}", record.job),
                );
            }
        }
    }
}
