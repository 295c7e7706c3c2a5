//! `belfry run`: run a command under watch.
//!
//! The child runs directly (no shell) in its own process group. Its output is copied through
//! live and kept in a bounded [`Capture`]. SIGINT, SIGTERM and SIGHUP are passed on to the
//! child's group. The run is recorded in the store before and after, and the notification the
//! rules make is delivered before belfry exits, within a deadline. Whatever belfry fails to do
//! after the job ran, the job's exit code is what belfry exits with.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use belfry::core::{Details, Event, State, Timestamp, derive_job_name, format_duration};
use belfry::store::{RunEnd, RunStart, Store};
use belfry::{Config, DeliveryReport};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::capture::Capture;
use crate::{Usage, say, warn};

/// Exit code when the job ran past `--timeout`.
pub const EXIT_TIMEOUT: u8 = 124;
/// Exit code when the command exists but cannot be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit code when the command is not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// What `belfry run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    pub name: Option<String>,
    pub timeout: Option<Duration>,
    pub kill_after: Option<Duration>,
    pub ok_codes: Option<Vec<i32>>,
    pub quiet: bool,
    pub tail_bytes: Option<usize>,
    pub head_lines: Option<usize>,
    pub command: Vec<OsString>,
}

enum Msg {
    Exited(std::io::Result<ExitStatus>),
    Signal(i32),
    OutputClosed,
}

/// Runs the command and returns belfry's exit code.
pub fn run(
    opts: RunOptions,
    config: &Config,
    home: Option<std::path::PathBuf>,
) -> anyhow::Result<u8> {
    let argv: Vec<String> = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let job = match &opts.name {
        Some(n) => {
            belfry::core::validate_job_name(n).map_err(|e| Usage(format!("--name: {e}")))?;
            n.clone()
        }
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
            derive_job_name(&argv, &cwd)
        }
    };
    let job_cfg = config.jobs.get(&job);
    let timeout = opts.timeout.or(job_cfg.and_then(|j| j.timeout));
    let kill_after = opts.kill_after.unwrap_or(config.run.kill_after);
    let ok_codes = opts
        .ok_codes
        .clone()
        .or_else(|| job_cfg.and_then(|j| j.ok_codes.clone()))
        .unwrap_or_else(|| vec![0]);
    let capture = Arc::new(Mutex::new(Capture::new(
        opts.head_lines.unwrap_or(config.run.head_lines),
        opts.tail_bytes.unwrap_or(config.run.tail_bytes),
    )));

    let run_id = belfry::store::new_id();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let started_at = Timestamp::now();
    let clock = Instant::now();

    // Catch the signals before the child exists, so that none can kill belfry and orphan it.
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let sig_handle = signals.handle();
    {
        let tx = tx.clone();
        thread::Builder::new()
            .name("belfry-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Msg::Signal(sig)).is_err() {
                        break;
                    }
                }
            })?;
    }

    let mut cmd = Command::new(&opts.command[0]);
    cmd.args(&opts.command[1..])
        .env("BELFRY_JOB", &job)
        .env("BELFRY_RUN_ID", &run_id)
        .process_group(0)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = cmd.spawn();

    // Record the start beside the job, not before it: the job never waits for belfry.
    let store_home = home.clone();
    let start = RunStart {
        id: run_id.clone(),
        job: job.clone(),
        started: started_at,
        host: Some(host.clone()),
        pid: Some(std::process::id()),
        boot_id: boot_id(),
    };
    let opener = thread::Builder::new().name("belfry-store".into()).spawn(
        move || -> Result<Store, String> {
            let home = store_home.ok_or_else(|| belfry::NoHome.to_string())?;
            let mut store = Store::open(&belfry::store_path(&home)).map_err(|e| e.to_string())?;
            store.start_run(&start).map_err(|e| e.to_string())?;
            Ok(store)
        },
    )?;

    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            sig_handle.close();
            let (code, what) = match e.kind() {
                std::io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "command not found"),
                std::io::ErrorKind::PermissionDenied => (EXIT_CANNOT_RUN, "permission denied"),
                _ => (EXIT_CANNOT_RUN, "cannot run the command"),
            };
            warn(&format!("{what}: {} ({e})", argv[0]));
            let details = Details {
                error: Some(format!("{what}: {}", argv[0])),
                ..Details::default()
            };
            finish(
                config,
                &opts,
                opener,
                &job,
                &run_id,
                &host,
                started_at,
                clock,
                State::Failed,
                details,
                None,
                0,
            );
            return Ok(code);
        }
    };
    let pid = child.id() as i32;

    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        spawn_copier(
            "belfry-stdout",
            out,
            std::io::stdout(),
            capture.clone(),
            tx.clone(),
        )?;
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_copier(
            "belfry-stderr",
            err,
            std::io::stderr(),
            capture.clone(),
            tx.clone(),
        )?;
        readers += 1;
    }
    {
        let tx = tx.clone();
        thread::Builder::new()
            .name("belfry-wait".into())
            .spawn(move || {
                let _ = tx.send(Msg::Exited(child.wait()));
            })?;
    }
    drop(tx);

    let mut timeout_at = timeout.map(|t| clock + t);
    let mut kill_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut forwarded: Option<i32> = None;
    let mut readers_open = readers;
    let status = loop {
        let next = [timeout_at, kill_at].into_iter().flatten().min();
        let msg = match next {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("lost track of the child process")
                }
            },
            None => Some(
                rx.recv()
                    .map_err(|_| anyhow::anyhow!("lost track of the child"))?,
            ),
        };
        match msg {
            Some(Msg::Exited(status)) => break status?,
            Some(Msg::Signal(sig)) => {
                forwarded = Some(sig);
                signal_group(pid, sig);
            }
            Some(Msg::OutputClosed) => readers_open -= 1,
            None if !timed_out => {
                timed_out = true;
                timeout_at = None;
                say(
                    opts.quiet,
                    &format!(
                        "{job} ran past its {} time limit: sending TERM, KILL in {}",
                        format_duration(timeout.unwrap_or_default()),
                        format_duration(kill_after)
                    ),
                );
                signal_group(pid, SIGTERM);
                kill_at = Some(Instant::now() + kill_after);
            }
            None => {
                kill_at = None;
                signal_group(pid, signal_hook::consts::SIGKILL);
            }
        }
    };
    let ended = clock.elapsed();
    // What the child wrote just before exiting is still in the pipes: let the copiers drain
    // them. A grandchild that keeps the pipes open is not waited for long.
    let drain_until = Instant::now() + Duration::from_millis(500);
    while readers_open > 0 {
        match rx.recv_timeout(drain_until.saturating_duration_since(Instant::now())) {
            Ok(Msg::OutputClosed) => readers_open -= 1,
            Ok(Msg::Signal(sig)) => signal_group(pid, sig),
            Ok(Msg::Exited(_)) => {}
            Err(_) => break,
        }
    }
    sig_handle.close();

    let (state, exit_code, signal, code) = judge(status, timed_out, forwarded, &ok_codes);
    let (tail, total) = {
        let c = capture.lock().unwrap_or_else(|p| p.into_inner());
        (c.render(), c.total())
    };
    let details = Details {
        exit_code,
        signal,
        duration: Some(ended),
        ..Details::default()
    };
    finish(
        config,
        &opts,
        opener,
        &job,
        &run_id,
        &host,
        started_at,
        clock,
        state,
        details,
        Some(tail),
        total,
    );
    Ok(code)
}

/// The run's state and belfry's exit code from how the child ended.
fn judge(
    status: ExitStatus,
    timed_out: bool,
    forwarded: Option<i32>,
    ok_codes: &[i32],
) -> (State, Option<i32>, Option<i32>, u8) {
    let code = status.code();
    let sig = status.signal();
    if timed_out {
        return (State::TimedOut, code, sig, EXIT_TIMEOUT);
    }
    match (code, sig) {
        (Some(c), _) => {
            let state = if ok_codes.contains(&c) {
                State::Ok
            } else if forwarded.is_some() {
                State::Cancelled
            } else {
                State::Failed
            };
            (state, Some(c), None, (c & 0xff) as u8)
        }
        (None, Some(s)) => {
            // Killed by a signal belfry passed on (an operator's Ctrl-C, a shutdown): stopped
            // on purpose. Any other fatal signal (SEGV, ABRT, an outside KILL) is a crash.
            let state = if forwarded.is_some() && [SIGINT, SIGTERM, SIGHUP].contains(&s) {
                State::Cancelled
            } else {
                State::Crashed
            };
            (state, None, Some(s), (128 + s).clamp(0, 255) as u8)
        }
        (None, None) => (State::Crashed, None, None, 1),
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    config: &Config,
    opts: &RunOptions,
    opener: thread::JoinHandle<Result<Store, String>>,
    job: &str,
    run_id: &str,
    host: &str,
    started_at: Timestamp,
    clock: Instant,
    state: State,
    mut details: Details,
    output: Option<String>,
    output_bytes: u64,
) {
    details.run_id = Some(run_id.to_owned());
    details.started_at = Some(started_at);
    details.host = Some(host.to_owned());
    details.output_tail = output.clone().filter(|o| !o.is_empty());
    if details.duration.is_none() {
        details.duration = Some(clock.elapsed());
    }
    let event = Event {
        job: job.to_owned(),
        state,
        at: started_at + details.duration.unwrap_or_default(),
        details,
    };
    let store = match opener.join() {
        Ok(Ok(s)) => Ok(s),
        // The store was unavailable at the start; it may be back. One more try.
        Ok(Err(_)) | Err(_) => home_store(),
    };
    let mut store = match store {
        Ok(s) => s,
        Err(e) => {
            warn(&format!(
                "could not record the run of {job} ({}): {e}",
                state.name()
            ));
            return;
        }
    };
    let end = RunEnd {
        event: &event,
        output: output.as_deref(),
        output_bytes,
    };
    let rec = match belfry::record_run(&mut store, config, &end, opts.quiet) {
        Ok(r) => r,
        Err(e) => {
            warn(&format!(
                "could not record the run of {job} ({}): {e}",
                state.name()
            ));
            return;
        }
    };
    if rec.outbox_ids.is_empty() {
        return;
    }
    match belfry::deliver(
        config,
        &mut store,
        Some(&rec.outbox_ids),
        config.delivery.wait,
    ) {
        Ok(report) => report_failures(&report),
        Err(e) => warn(&format!(
            "the notification for {job} is saved but could not be sent now ({e}); \
             `belfry deliver` will send it"
        )),
    }
}

fn home_store() -> Result<Store, String> {
    let home = belfry::home_dir().map_err(|e| e.to_string())?;
    Store::open(&belfry::store_path(&home)).map_err(|e| e.to_string())
}

/// Says once, on standard error, what could not be delivered.
pub fn report_failures(report: &DeliveryReport) {
    for f in &report.failed {
        let what = match f.retry_at {
            Some(_) => "kept in the outbox; `belfry deliver` will retry it",
            None => "given up (permanent failure)",
        };
        warn(&format!(
            "could not notify {} ({}): {}; {what}",
            f.channel, f.destination, f.reason
        ));
    }
}

fn spawn_copier(
    name: &str,
    mut from: impl Read + Send + 'static,
    to: impl Write + Send + 'static,
    capture: Arc<Mutex<Capture>>,
    tx: mpsc::Sender<Msg>,
) -> std::io::Result<()> {
    thread::Builder::new().name(name.into()).spawn(move || {
        let mut to = to;
        let mut buf = vec![0u8; 16 * 1024];
        let mut sink_ok = true;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            // Pass through first: the job's output is live even if keeping it is slow. A
            // closed stdout of our own must not stop the job: keep reading, stop writing.
            if sink_ok {
                sink_ok = to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok();
            }
            capture
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&buf[..n]);
        }
        let _ = tx.send(Msg::OutputClosed);
    })?;
    Ok(())
}

fn signal_group(pid: i32, sig: i32) {
    let (Some(pgid), Some(sig)) = (
        rustix::process::Pid::from_raw(pid),
        rustix::process::Signal::from_named_raw(sig),
    ) else {
        return;
    };
    // ESRCH: the group is already gone, which is what we wanted.
    let _ = rustix::process::kill_process_group(pgid, sig);
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(sig: i32) -> ExitStatus {
        ExitStatus::from_raw(sig)
    }

    #[test]
    fn exit_codes_and_states_follow_the_table() {
        assert_eq!(
            judge(exited(0), false, None, &[0]),
            (State::Ok, Some(0), None, 0)
        );
        assert_eq!(
            judge(exited(3), false, None, &[0]),
            (State::Failed, Some(3), None, 3)
        );
        assert_eq!(judge(exited(1), false, None, &[0, 1]).0, State::Ok);
        assert_eq!(judge(exited(0), true, None, &[0]).3, EXIT_TIMEOUT);
        assert_eq!(judge(killed(9), true, None, &[0]).0, State::TimedOut);
        assert_eq!(
            judge(killed(11), false, None, &[0]),
            (State::Crashed, None, Some(11), 139)
        );
        assert_eq!(
            judge(killed(SIGTERM), false, Some(SIGTERM), &[0]),
            (State::Cancelled, None, Some(SIGTERM), 143)
        );
        // A job that handles the TERM it was passed and exits non-zero was cancelled too.
        assert_eq!(
            judge(exited(1), false, Some(SIGTERM), &[0]).0,
            State::Cancelled
        );
        // An outside KILL is a crash even if belfry had passed on a TERM before.
        assert_eq!(
            judge(killed(9), false, Some(SIGTERM), &[0]).0,
            State::Crashed
        );
    }
}
