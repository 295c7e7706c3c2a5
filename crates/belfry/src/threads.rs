//! Which threads are belfry's own. The tracing layer ignores their events (a channel's HTTP
//! client logging an error must not become another alert), and the panic hook records a panic
//! on one of them without asking the worker, which may be the thread that panicked. A module of
//! its own because the worker, the layer and the panic hook all read it and none of them should
//! depend on another for a flag.

use std::cell::Cell;

thread_local! {
    static BELFRY_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one of belfry's own.
pub(crate) fn mark_belfry_thread() {
    BELFRY_THREAD.with(|b| b.set(true));
}

/// Whether this is one of belfry's threads.
#[inline]
pub(crate) fn on_belfry_thread() -> bool {
    BELFRY_THREAD.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_thread_is_belfrys() {
        let marked = std::thread::spawn(|| {
            mark_belfry_thread();
            on_belfry_thread()
        })
        .join()
        .unwrap();
        let other = std::thread::spawn(on_belfry_thread).join().unwrap();
        assert!(marked);
        assert!(!other);
    }
}
