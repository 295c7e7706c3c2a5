//! The intent to run: what `belfry run` writes before it starts a job, so that a run is never
//! lost, whenever belfry is killed.
//!
//! `belfry run` starts the job before the store is open (the job never waits for belfry), so
//! for a few milliseconds the store does not know the run exists. A belfry killed then would
//! leave a job that ran and no trace of it. Before the job is spawned, the run is written as
//! one small file in the state directory, `intent-<pid>-<run id>` (its id, job, start, host,
//! the wrapper's pid and the boot id): a file create and one write, no fsync, no lock. Once the
//! run's start (or its end) is in the store, the file is removed.
//!
//! Every belfry process that opens the store looks at the intents ([`crate::runs::reap_crashed`]
//! calls [`adopt`]): an intent whose wrapper is gone (its pid no longer exists, or the machine
//! restarted) becomes a `running` row, inserted only if the run is not in the store already,
//! and the file is removed; the row is then recorded as `crashed` like any run whose wrapper
//! died, once, however many processes notice it at the same time.
//!
//! The file's name holds the wrapper's pid, so that a record that is torn or empty (belfry was
//! killed while writing it) can still be judged: the job is spawned only after the whole
//! record is written, so a torn record whose writer is gone means no job ran, and it is
//! removed.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use belfry_core::Timestamp;
use belfry_store::{RunStart, Store};
use serde::{Deserialize, Serialize};

/// A torn record older than this cannot be one that its writer is still writing (the write
/// follows the create at once): it is removed even if a process with its pid exists.
pub const TORN_AFTER: Duration = Duration::from_secs(60);

/// How the name of every intent file in the state directory starts.
pub const PREFIX: &str = "intent-";

/// The record of a run that is about to start, on disk until the store knows the run.
#[derive(Debug)]
pub struct Intent {
    path: PathBuf,
    removed: AtomicBool,
}

/// The record as it is written: one line of JSON.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    job: Cow<'a, str>,
    started_ms: i64,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    pid: Option<u32>,
    #[serde(borrow)]
    boot_id: Option<Cow<'a, str>>,
}

impl Intent {
    /// Writes the intent of `run` in `home`, creating the directory if needed. Call it before
    /// the job is spawned: a belfry killed before this returns has started nothing.
    ///
    /// The file is named after the process that watches the run (`run.pid`, else this
    /// process).
    pub fn write(home: &Path, run: &RunStart) -> std::io::Result<Intent> {
        let pid = run.pid.unwrap_or_else(std::process::id);
        let path = home.join(format!("{PREFIX}{pid}-{}", run.id));
        let mut line = serde_json::to_vec(&Record {
            id: Cow::Borrowed(&run.id),
            job: Cow::Borrowed(&run.job),
            started_ms: run.started.as_millis(),
            host: run.host.as_deref().map(Cow::Borrowed),
            pid: Some(pid),
            boot_id: run.boot_id.as_deref().map(Cow::Borrowed),
        })?;
        line.push(b'\n');
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        };
        // The state directory exists after the first run; creating it only when it is
        // missing spares every run a system call. Private, as the store makes it.
        let mut file = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(home)?;
                create()?
            }
            other => other?,
        };
        // No fsync: a killed process loses nothing it has written (the page cache is the
        // kernel's); only a power cut could, and it stops the job too (docs/decisions.md).
        if let Err(e) = file.write_all(&line) {
            // A partial record (a full disk) would be taken for one that was never finished,
            // whose job never started: remove it.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(Intent {
            path,
            removed: AtomicBool::new(false),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the record, once the store holds the run (its start or its end). Only the first
    /// call does anything. A failure leaves the file to the next process that adopts intents,
    /// which finds the run in the store and removes it.
    pub fn remove(&self) {
        if !self.removed.swap(true, Ordering::AcqRel) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What [`adopt`] did with the intents it found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Runs whose wrapper is gone, now in the store as `running` (or already there).
    pub runs: Vec<String>,
    /// Torn records whose writer is gone (no job was started for them), removed.
    pub torn: usize,
    /// Intents left for later: their wrapper is alive, or they belong to another host.
    pub left: usize,
}

/// Turns the intents in the state directory whose wrapper is gone into `running` rows of
/// `store`, and removes them. A run already in the store (finished, or its start recorded) is
/// left as it is there. `host` and `boot_id` are this machine's.
pub fn adopt(
    store: &mut Store,
    host: &str,
    boot_id: Option<&str>,
) -> belfry_store::Result<Adopted> {
    let mut out = Adopted::default();
    // Intent files sit in the state directory: beside a SQLite store, or, for a store
    // elsewhere (PostgreSQL), in this process's $BELFRY_HOME, where `belfry run` wrote them.
    let home = match store.location() {
        belfry_store::Location::Sqlite(path) => path.parent().map(Path::to_owned),
        _ => crate::home_dir().ok(),
    };
    let Some(home) = home else {
        return Ok(out);
    };
    let dir = if home.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &home
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Only names this module writes: the store's files and anything else are not intents.
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            // Removed meanwhile by its wrapper or another process: nothing to do.
            Err(_) => continue,
        };
        match parse(&text) {
            Some(run) => {
                if run.host.as_deref() != Some(host) {
                    out.left += 1;
                    continue;
                }
                let rebooted = matches!((run.boot_id.as_deref(), boot_id),
                    (Some(then), Some(now)) if then != now);
                if !rebooted && crate::host::process_alive(pid) {
                    out.left += 1;
                    continue;
                }
                // Inserted only if absent, in one transaction: a run that its wrapper recorded
                // before dying, or that another process adopted first, stays as it is.
                store.start_run(&run)?;
                // The row is committed: the file may go now, not before.
                let _ = std::fs::remove_file(&path);
                out.runs.push(run.id);
            }
            None => {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > TORN_AFTER);
                if old || !crate::host::process_alive(pid) {
                    let _ = std::fs::remove_file(&path);
                    out.torn += 1;
                } else {
                    // Its writer may be between the create and the write.
                    out.left += 1;
                }
            }
        }
    }
    Ok(out)
}

/// A whole record, or `None` for a torn or foreign one. A record is whole when it is one line
/// of JSON ending in a newline, the last byte written.
fn parse(text: &[u8]) -> Option<RunStart> {
    let line = text.strip_suffix(b"\n")?;
    let r: Record<'_> = serde_json::from_slice(line).ok()?;
    Some(RunStart {
        id: r.id.into_owned(),
        job: r.job.into_owned(),
        started: Timestamp::from_millis(r.started_ms),
        host: r.host.map(Cow::into_owned),
        pid: r.pid,
        boot_id: r.boot_id.map(Cow::into_owned),
    })
}
