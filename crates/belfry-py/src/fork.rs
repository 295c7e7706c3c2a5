//! SQLite's process-wide ("static") mutexes across `fork`.
//!
//! A forked child has only the thread that forked; a mutex another thread held at that
//! moment stays locked in the child for ever. belfry's worker and delivery threads call into
//! SQLite, whose allocator and VFS take static mutexes, so a child whose new worker opens the
//! store could hang on one (seen: the allocator's mutex, held by the parent's worker while it
//! opened the store). As glibc does for malloc, the forking thread takes them all before the
//! fork and lets go of them after it, in the parent and in the child.
//!
//! The order is SQLite's own nesting (outer first): the main mutex, then the open, random
//! number, application and VFS mutexes, then the page cache's, and the allocator's last (it
//! is innermost: nothing is taken while it is held). The forking thread holds the GIL, and
//! belfry's threads never take it, so waiting here cannot deadlock with them.

// The static mutexes, outer first.
const ORDER: [i32; 11] = [
    libsqlite3_sys::SQLITE_MUTEX_STATIC_MAIN,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_OPEN,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_PRNG,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_APP1,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_APP2,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_APP3,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_VFS1,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_VFS2,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_VFS3,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_LRU,
    libsqlite3_sys::SQLITE_MUTEX_STATIC_PMEM,
];

fn each(
    order: impl Iterator<Item = i32>,
    f: unsafe extern "C" fn(*mut libsqlite3_sys::sqlite3_mutex),
) {
    for id in order {
        // SAFETY: a static mutex id; sqlite3_mutex_alloc returns the process's one (it is
        // never freed), or null when SQLite's mutexes are off, which is skipped.
        unsafe {
            let m = libsqlite3_sys::sqlite3_mutex_alloc(id);
            if !m.is_null() {
                f(m);
            }
        }
    }
}

/// Takes every static mutex, in order (the allocator's last).
pub fn hold_sqlite() {
    each(
        ORDER
            .into_iter()
            .chain([libsqlite3_sys::SQLITE_MUTEX_STATIC_MEM]),
        libsqlite3_sys::sqlite3_mutex_enter,
    );
}

/// Lets go of what [`hold_sqlite`] took, in reverse order.
pub fn release_sqlite() {
    each(
        [libsqlite3_sys::SQLITE_MUTEX_STATIC_MEM]
            .into_iter()
            .chain(ORDER.into_iter().rev()),
        libsqlite3_sys::sqlite3_mutex_leave,
    );
}
