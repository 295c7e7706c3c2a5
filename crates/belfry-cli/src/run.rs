//! `belfry run`: run a command under watch.
//!
//! The child runs directly (no shell) in its own process group. Its output is copied through
//! live and kept in a bounded [`Capture`]. SIGINT, SIGTERM and SIGHUP are passed on to the
//! child's group. Before the child is spawned, the run's intent is written to the state
//! directory (`belfry::internal::intent`), so that a belfry killed at any instant leaves a run that the
//! next belfry records as crashed; the store is opened beside the job, not before it. The run
//! is recorded in the store before and after, and the notification the rules make is delivered
//! before belfry exits, within a deadline. Whatever belfry fails to do after the job ran, the
//! job's exit code is what belfry exits with.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use belfry::Config;
use belfry::core::{
    Details, Event, State, Timestamp, derive_job_name, format_duration, instant_after,
};
use belfry_store::{RunEnd, RunStart, Store};
use rustix::event::{PollFd, PollFlags, Timespec};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGTERM};

use crate::capture::Capture;
use crate::tell::{Usage, say, warn};

/// Exit code when the job ran past `--timeout`.
pub const EXIT_TIMEOUT: u8 = 124;
/// Exit code when the command exists but cannot be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit code when the command is not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// What `belfry run` was asked to do (its command-line arguments).
#[derive(Debug, clap::Args)]
pub struct RunOptions {
    /// The job's name (default: derived from the command: its path with dots, plus a hash of
    /// its arguments).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Stop the command after this long (TERM to its process group, then KILL after
    /// --kill-after, or as soon as the command itself has exited) and record it as timed out.
    /// E.g. 30s, 10m, 1h30m; at most 100 years.
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = crate::args::parse_limit)]
    pub timeout: Option<Duration>,
    /// After the timeout's TERM, send KILL this much later [default: 10s].
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = crate::args::parse_dur)]
    pub kill_after: Option<Duration>,
    /// The exit codes that count as success, in place of the default 0 (list 0 too to keep it:
    /// 0,1).
    #[arg(
        long,
        value_name = "CODES",
        value_delimiter = ',',
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(0..=255)
    )]
    pub ok_codes: Option<Vec<i32>>,
    /// Print nothing of belfry's own (no console alerts); errors that mean an alert may be lost
    /// are still printed.
    #[arg(short, long)]
    pub quiet: bool,
    /// Bytes of the output's end to keep with the run [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub tail_bytes: Option<usize>,
    /// Lines of the output's start to keep with the run [default: 5].
    #[arg(long, value_name = "N")]
    pub head_lines: Option<usize>,
    /// The command and its arguments (put them after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Runs the command and returns belfry's exit code.
pub fn run(opts: RunOptions, config: &Config, home: Option<PathBuf>) -> anyhow::Result<u8> {
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
    let mut capture = Capture::new(
        opts.head_lines.unwrap_or(config.run.head_lines),
        opts.tail_bytes.unwrap_or(config.run.tail_bytes),
    );

    let run_id = belfry_store::new_id();
    let host = belfry::internal::host::host_name();
    let started_at = Timestamp::now();
    let clock = Instant::now();

    // Catch the signals before the child exists, so that none can kill belfry and orphan it.
    let signals = Signals::install()?;

    let start = RunStart {
        id: run_id.clone(),
        job: job.clone(),
        started: started_at,
        host: Some(host.clone()),
        pid: Some(std::process::id()),
        boot_id: belfry::internal::host::boot_id(),
    };
    // The run's intent is on disk before the job exists: if belfry is killed from here on,
    // the next belfry finds the run and records it as crashed (belfry::internal::intent). When it
    // cannot be written, the state directory is unusable and the store fails too, which the
    // finish reports (once), with the alert sent unrecorded.
    let intent = home
        .as_deref()
        .and_then(|h| belfry::internal::intent::Intent::write(h, &start).ok());
    let intent = Arc::new(intent);

    // Run by hand on a terminal, the job gets a terminal of its own for each stream that is
    // one (so that it keeps its colours and line-buffered output), read here like a pipe.
    // Under cron, pipes as ever.
    let [out_pty, err_pty] = [
        own_terminal(std::io::stdout()),
        own_terminal(std::io::stderr()),
    ];
    let (out_pty, out_stdio) = match out_pty {
        Some((ours, job_end)) => (Some(ours), Stdio::from(job_end)),
        None => (None, Stdio::piped()),
    };
    let (err_pty, err_stdio) = match err_pty {
        Some((ours, job_end)) => (Some(ours), Stdio::from(job_end)),
        None => (None, Stdio::piped()),
    };

    // The job starts first: it never waits for belfry.
    let mut cmd = Command::new(&opts.command[0]);
    cmd.args(&opts.command[1..])
        .env("BELFRY_JOB", &job)
        .env("BELFRY_RUN_ID", &run_id)
        .process_group(0)
        .stdin(Stdio::inherit())
        .stdout(out_stdio)
        .stderr(err_stdio);
    let spawned = cmd.spawn();
    // The command holds belfry's copies of the job's terminal ends: they would keep the job's
    // output open after it exits.
    drop(cmd);

    // Then the store is opened, and the start recorded, on another thread, beside the job.
    // (Started before the job, that thread took the CPU the job's start needed: the job
    // started about 0.6 ms later.)
    let exited = Arc::new(AtomicBool::new(false));
    let exited_seen = exited.clone();
    let reaper_config = config.clone();
    let recorded_intent = intent.clone();
    // The start ping's event, when there is a ping URL.
    let start_event = config.ping.is_some().then(|| Event {
        job: job.clone(),
        state: State::Running,
        at: started_at,
        details: Details {
            run_id: Some(run_id.clone()),
            started_at: Some(started_at),
            host: Some(host.clone()),
            ..Details::default()
        },
    });
    let opener = thread::Builder::new().name("belfry-store".into()).spawn(
        move || -> Result<Opened, String> {
            let home = home.ok_or_else(|| belfry::NoHome.to_string())?;
            let mut store =
                Store::open(reaper_config.store_location(&home)).map_err(|e| e.to_string())?;
            // A job that is already over needs no `running` row: the finish records it whole
            // (and removes the intent then). Nor a start ping: its finish says it all.
            let mut start_ping = None;
            if !exited_seen.load(Ordering::Acquire) {
                store.start_run(&start).map_err(|e| e.to_string())?;
                // The `running` row says all the intent said: it is the record from now on.
                if let Some(i) = recorded_intent.as_ref() {
                    i.remove();
                }
                if let Some(ev) = &start_event {
                    start_ping = crate::ping::record(&mut store, &reaper_config, ev);
                }
            }
            // Runs whose belfry was killed are noticed by the next belfry: this one.
            let reaped = belfry::internal::reap_crashed(&mut store, &reaper_config)
                .map(|recs| crate::unrouted::rows_of(&reaper_config, recs))
                .map_err(|e| warn(&format!("could not check for crashed runs: {e}")))
                .unwrap_or_default();
            // Compile the finish's statements now, beside the job, not after it. A failure
            // here shows again at the finish, which reports it.
            let _ = store.prepare_finish();
            // The start ping goes now, while the job runs. Not delivered within the wait (a
            // server that is down), it stays in the outbox: the finish's claim folds it into
            // the finish, so that a start never arrives after its finish.
            if let Some(id) = start_ping {
                let _ = belfry::internal::deliver(
                    &reaper_config,
                    &mut store,
                    Some(&[id]),
                    reaper_config.delivery.wait,
                );
            }
            Ok(Opened { store, reaped })
        },
    );
    // Without the thread (out of resources), the finish opens the store itself.
    let opener = opener.ok();

    let finished = |state, details, output: Option<String>, output_bytes| Finished {
        job: &job,
        run_id: &run_id,
        host: &host,
        started_at,
        state,
        details,
        output,
        output_bytes,
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            signals.job_over();
            let (code, what) = match e.kind() {
                // The file is there: what is missing is the interpreter its `#!` line names
                // (or its loader). Shells say 127 too.
                std::io::ErrorKind::NotFound
                    if Path::new(&argv[0]).components().count() > 1
                        && Path::new(&argv[0]).is_file() =>
                {
                    (
                        EXIT_NOT_FOUND,
                        "cannot run (its #! interpreter or loader was not found)",
                    )
                }
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
                finished(State::Failed, details, None, 0),
                intent.as_ref().as_ref(),
            );
            return Ok(code);
        }
    };
    let pid = child.id() as i32;

    // One loop on this thread watches everything: the two output pipes, the signals (through
    // a self-pipe, SIGCHLD included) and the timers.
    // A terminal's end reads like a pipe's, and fails (EIO) where a pipe ends.
    let mut pipes: [Option<Box<dyn ReadFd>>; 2] = [
        out_pty
            .map(|t| Box::new(t) as Box<dyn ReadFd>)
            .or_else(|| child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>)),
        err_pty
            .map(|t| Box::new(t) as Box<dyn ReadFd>)
            .or_else(|| child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>)),
    ];
    let mut sinks: [Box<dyn Write>; 2] = [Box::new(std::io::stdout()), Box::new(std::io::stderr())];
    let mut sinks_ok = [true, true];
    let mut buf = vec![0u8; 64 * 1024];
    let mut timeout_at = timeout.map(|t| instant_after(clock, t));
    let mut kill_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut forwarded: Option<i32> = None;
    let mut status: Option<ExitStatus> = None;
    let mut ended = Duration::ZERO;
    let mut drain_until: Option<Instant> = None;
    loop {
        if status.is_none()
            && let Some(st) = child.try_wait()?
        {
            ended = clock.elapsed();
            exited.store(true, Ordering::Release);
            status = Some(st);
            if timed_out {
                // The job's time is up and its main process is gone; what is left of its group
                // has had its TERM: it goes now, not at the KILL's time.
                signal_group(pid, SIGKILL);
            }
            // What the child wrote just before exiting is still in the pipes: drain them. A
            // grandchild that keeps them open is not waited for long.
            drain_until = Some(Instant::now() + OUTPUT_GRACE);
        }
        let now = Instant::now();
        if status.is_some() && (pipes.iter().all(Option::is_none) || drain_until <= Some(now)) {
            break;
        }
        if status.is_none() {
            if timeout_at.is_some_and(|t| t <= now) {
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
                kill_at = Some(instant_after(now, kill_after));
            } else if kill_at.is_some_and(|t| t <= now) {
                kill_at = None;
                signal_group(pid, SIGKILL);
            }
        }
        let wake_at = [timeout_at, kill_at, drain_until]
            .into_iter()
            .flatten()
            .min();
        let wait = wake_at.map(|t| t.saturating_duration_since(Instant::now()));
        let ready = signals.wait(&pipes, wait)?;
        for sig in signals.take_pending() {
            // Only while the job runs: a Ctrl-C after it failed does not make it cancelled.
            if status.is_none() {
                forwarded = Some(sig);
                signal_group(pid, sig);
            }
        }
        for (i, is_ready) in ready.into_iter().enumerate() {
            if !is_ready {
                continue;
            }
            let Some(pipe) = pipes[i].as_mut() else {
                continue;
            };
            match pipe.read(&mut buf) {
                Ok(0) => pipes[i] = None,
                Ok(n) => {
                    // Pass through first: the job's output is live even if keeping it is
                    // slow. A closed output of our own must not stop the job: keep reading,
                    // stop writing.
                    if sinks_ok[i] {
                        sinks_ok[i] = sinks[i]
                            .write_all(&buf[..n])
                            .and_then(|()| sinks[i].flush())
                            .is_ok();
                    }
                    capture.push(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => pipes[i] = None,
            }
        }
    }
    signals.job_over();
    let status = status.expect("the loop ends only once the child has exited");

    let (state, exit_code, signal, code) = judge(status, timed_out, forwarded, &ok_codes);
    let details = Details {
        exit_code,
        signal,
        duration: Some(ended),
        ..Details::default()
    };
    let run = finished(state, details, Some(capture.render()), capture.total());
    finish(config, &opts, opener, run, intent.as_ref().as_ref());
    Ok(code)
}

/// How long belfry keeps reading output after the job exited, for grandchildren that hold its
/// pipes open.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// A child's output pipe: readable, and pollable by its file descriptor.
trait ReadFd: Read + AsFd {}
impl<T: Read + AsFd> ReadFd for T {}

/// SIGINT, SIGTERM and SIGHUP, caught to be passed on, and SIGCHLD, all waking the loop
/// through one self-pipe.
///
/// The handlers stay for the rest of the process (signal-hook cannot give the default action
/// back): once [`Signals::job_over`] is called, INT, TERM and HUP make belfry exit at once with
/// 128+N, as if it had no handler, so that an operator can still stop a belfry that is waiting
/// for a slow channel. The alert is committed by then; the outbox keeps it.
struct Signals {
    wake: UnixStream,
    pending: [(i32, Arc<AtomicBool>); 3],
    over: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        let (wake, wake_w) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let pending = [SIGINT, SIGTERM, SIGHUP].map(|s| (s, Arc::new(AtomicBool::new(false))));
        let over = Arc::new(AtomicBool::new(false));
        for (sig, flag) in &pending {
            signal_hook::flag::register_conditional_shutdown(*sig, 128 + *sig, over.clone())?;
            // The flag before the wake-up, so that it is set when the loop wakes.
            signal_hook::flag::register(*sig, flag.clone())?;
        }
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGCHLD] {
            signal_hook::low_level::pipe::register(sig, wake_w.try_clone()?)?;
        }
        Ok(Signals {
            wake,
            pending,
            over,
        })
    }

    /// From now on INT, TERM and HUP end belfry instead of being passed on.
    fn job_over(&self) {
        self.over.store(true, Ordering::Release);
    }

    /// Waits until a pipe is readable, a signal arrives, or `wait` passes; says which pipes.
    fn wait(
        &self,
        pipes: &[Option<Box<dyn ReadFd>>; 2],
        wait: Option<Duration>,
    ) -> std::io::Result<[bool; 2]> {
        let mut fds = vec![PollFd::new(&self.wake, PollFlags::IN)];
        let mut slots = [None, None];
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                slots[i] = Some(fds.len());
                fds.push(PollFd::from_borrowed_fd(p.as_fd(), PollFlags::IN));
            }
        }
        let timeout = wait.map(|d| Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok([false, false]),
            Err(e) => return Err(e.into()),
        }
        let readable = |i: Option<usize>| {
            i.is_some_and(|i| {
                fds[i]
                    .revents()
                    .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
            })
        };
        let ready = [readable(slots[0]), readable(slots[1])];
        if readable(Some(0)) {
            // Empty the self-pipe; the flags say which signals came.
            let mut sink = [0u8; 64];
            while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        }
        Ok(ready)
    }

    /// The signals to pass on that arrived since the last call.
    fn take_pending(&self) -> Vec<i32> {
        self.pending
            .iter()
            .filter(|(_, flag)| flag.swap(false, Ordering::AcqRel))
            .map(|(sig, _)| *sig)
            .collect()
    }
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

/// The store, opened beside the job, and the outbox rows of crashed runs it found.
struct Opened {
    store: Store,
    reaped: Vec<i64>,
}

/// A run that is over, as `finish` records it.
struct Finished<'a> {
    job: &'a str,
    run_id: &'a str,
    host: &'a str,
    started_at: Timestamp,
    state: State,
    details: Details,
    output: Option<String>,
    output_bytes: u64,
}

/// Records the run and delivers its notification. Problems are reported once on standard
/// error and never change the exit code. The run's intent is removed once the run is
/// recorded, or, when the store cannot take it, once its alert has been sent unrecorded (a
/// later belfry must not take it for a crash).
fn finish(
    config: &Config,
    opts: &RunOptions,
    opener: Option<thread::JoinHandle<Result<Opened, String>>>,
    run: Finished<'_>,
    intent: Option<&belfry::internal::intent::Intent>,
) {
    let forget_intent = || {
        if let Some(i) = intent {
            i.remove();
        }
    };
    let Finished {
        job,
        run_id,
        host,
        started_at,
        state,
        mut details,
        output,
        output_bytes,
    } = run;
    details.run_id = Some(run_id.to_owned());
    details.started_at = Some(started_at);
    details.host = Some(host.to_owned());
    details.output_tail = output.clone().filter(|o| !o.is_empty());
    let event = Event {
        job: job.to_owned(),
        state,
        at: started_at + details.duration.unwrap_or_default(),
        details,
    };
    let opened = match opener.map(thread::JoinHandle::join) {
        Some(Ok(Ok(o))) => Ok(o),
        // The store was unavailable at the start; it may be back. One more try.
        Some(Ok(Err(_)) | Err(_)) | None => home_store(config).map(|store| Opened {
            store,
            reaped: Vec::new(),
        }),
    };
    let Opened {
        mut store,
        mut reaped,
    } = match opened {
        Ok(o) => o,
        Err(e) => {
            // The alert on the console says why itself; otherwise say it here.
            if !send_unrecorded(config, opts, &event, &e) {
                warn(&format!(
                    "could not record the run of {job} ({}): {e}",
                    state.name()
                ));
            }
            forget_intent();
            return;
        }
    };
    let end = RunEnd {
        event: &event,
        output: output.as_deref(),
        output_bytes,
    };
    let rec = match belfry::internal::record_run(&mut store, config, &end, opts.quiet) {
        Ok(r) => {
            forget_intent();
            r
        }
        Err(e) => {
            let what = "the alerts of runs found crashed";
            crate::background::leave_to_sender(config, reaped.len(), what);
            // The alert on the console says why itself; otherwise say it here.
            if !send_unrecorded(config, opts, &event, &e.to_string()) {
                warn(&format!(
                    "could not record the run of {job} ({}): {e}",
                    state.name()
                ));
            }
            forget_intent();
            return;
        }
    };
    crate::unrouted::report(config, std::slice::from_ref(&rec));
    let mut ids = rec.outbox_ids;
    ids.extend(crate::ping::record(&mut store, config, &event));
    let found = reaped.len();
    ids.append(&mut reaped);
    if ids.is_empty() {
        return;
    }
    let background = crate::background::enabled(config);
    let mut told = 0;
    let left_over =
        match belfry::internal::deliver(config, &mut store, Some(&ids), config.delivery.wait) {
            Ok(report) => {
                crate::background::report_failures(&report, background);
                told = report
                    .failed
                    .iter()
                    .filter(|f| f.retry_at.is_some())
                    .count();
                // Failed and due again later, or not tried at all: held by the digest window
                // (this job's last alert went out moments ago), the wait was too short, or being
                // sent by another process.
                ids.iter()
                    .filter(|&&id| {
                        matches!(store.outbox_row_status(id),
                        Ok(Some((status, _, _))) if status == "pending" || status == "sending")
                    })
                    .count()
            }
            Err(e) => {
                warn(&format!(
                    "the notification for {job} is saved but could not be sent now ({e})"
                ));
                ids.len()
            }
        };
    // Without a background sender, what the failures above did not mention is said once.
    let what = match found {
        0 => format!("the alert for {job}"),
        _ => format!("the alert for {job} and those of runs found crashed"),
    };
    let untold = if background {
        left_over
    } else {
        left_over.saturating_sub(told)
    };
    crate::background::leave_to_sender(config, untold, &what);
}

/// The store failed: a problem's alert goes straight to its channels, and what could not be
/// sent is said once. Returns whether the console showed the alert (which says why).
fn send_unrecorded(config: &Config, opts: &RunOptions, event: &Event, why: &str) -> bool {
    let mut told = false;
    for sent in belfry::internal::send_unrecorded(config, event, why, opts.quiet) {
        let console = config.channel(&sent.label).is_some_and(|c| c.is_console());
        told |= console && sent.outcome.is_delivered();
        if !sent.outcome.is_delivered() {
            warn(&format!(
                "could not send the unrecorded alert for {} to {} ({}): {}",
                event.job,
                sent.label,
                sent.destination,
                sent.outcome.reason().unwrap_or_default()
            ));
        }
    }
    told
}

fn home_store(config: &Config) -> Result<Store, String> {
    let home = belfry::home_dir().map_err(|e| e.to_string())?;
    Store::open(config.store_location(&home)).map_err(|e| e.to_string())
}

/// If `stream` is a terminal, a pseudo-terminal for the job's output to it: belfry's end
/// and the job's. The job's end passes bytes unchanged (no output processing: the terminal
/// belfry writes them to does that), and has the size of `stream`'s terminal. `None` when
/// `stream` is not a terminal (one `ioctl`), or no pseudo-terminal can be had: a pipe then.
fn own_terminal(stream: impl AsFd) -> Option<(std::fs::File, std::os::fd::OwnedFd)> {
    use rustix::pty::OpenptFlags;
    use rustix::termios;
    if !termios::isatty(&stream) {
        return None;
    }
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let open = || -> rustix::io::Result<_> {
        let ours = rustix::pty::openpt(flags)?;
        rustix::pty::grantpt(&ours)?;
        rustix::pty::unlockpt(&ours)?;
        let job_end = rustix::pty::ioctl_tiocgptpeer(&ours, flags)?;
        let mut modes = termios::tcgetattr(&job_end)?;
        modes.output_modes.remove(termios::OutputModes::OPOST);
        termios::tcsetattr(&job_end, termios::OptionalActions::Now, &modes)?;
        if let Ok(size) = termios::tcgetwinsize(&stream) {
            // Without it, the job formats for 0 columns; with a wrong one, only badly.
            let _ = termios::tcsetwinsize(&job_end, size);
        }
        Ok((std::fs::File::from(ours), job_end))
    };
    open().ok()
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
