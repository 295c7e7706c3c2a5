//! Draining the outbox without a daemon: one process per state directory delivers until only
//! delivered or dead rows remain, then exits.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use belfry_core::instant_after;
use belfry_store::Store;

use crate::config::Config;
use crate::dispatch::Dispatcher;

/// The longest a drainer sleeps between looks at the outbox: the dispatcher's poll.
pub use crate::dispatch::DRAIN_TICK;

/// Holds `deliver.lock` in a state directory: one drainer per directory. Released when
/// dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct DrainLock {
    _file: File,
}

impl DrainLock {
    /// Takes the lock if no other process holds it.
    pub fn try_acquire(home: &Path) -> std::io::Result<Option<DrainLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.join("deliver.lock"))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DrainLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Why a drain stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The lock file could not be used.
    #[error("cannot use {path}/deliver.lock: {source}")]
    Lock {
        /// The state directory.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] belfry_store::Error),
}

/// Delivers what the outbox holds until only delivered or dead rows remain, sleeping until the
/// next row is due (at most [`DRAIN_TICK`]), then returns. Returns at once if another process
/// already drains this state directory. Between passes of its [`Dispatcher`] it looks for
/// crashed runs, whose alerts then go out too.
pub fn drain(config: &Config, home: &Path) -> Result<(), DrainError> {
    let lock_err = |source| DrainError::Lock {
        path: home.display().to_string(),
        source,
    };
    let pass = config.delivery.wait.max(Duration::from_secs(60));
    let mut dispatcher = Dispatcher::new(config);
    loop {
        let Some(lock) = DrainLock::try_acquire(home).map_err(lock_err)? else {
            return Ok(());
        };
        let location = config.store_location(home);
        let mut store = Store::open(location.clone())?;
        loop {
            crate::runs::reap_crashed(&mut store, config)?;
            dispatcher.pass(&mut store, None, instant_after(Instant::now(), pass))?;
            // Someone removed the state directory (a test's temporary one, an uninstall):
            // there is nothing left to drain for.
            if let belfry_store::Location::Sqlite(path) = &location
                && !path.exists()
            {
                return Ok(());
            }
            if !dispatcher.wait_for_due(&mut store, DRAIN_TICK)? {
                break;
            }
        }
        drop(lock);
        // A process that added a row while this one was finishing saw the lock still held and
        // left the row to this drainer: look once more after letting go of the lock.
        if store.next_due()?.is_none() {
            return Ok(());
        }
    }
}
