//! The `belfry` command.

mod args;
mod background;
mod capture;
mod config_check;
mod migrate;
mod open;
mod ping;
mod quiet;
mod run;
mod send;
mod serve;
mod status;
mod tell;
mod unrouted;
mod views;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use belfry::{Config, Sources};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tell::{Usage, warn};

/// The exit codes, as the README's table has them: shown after every command's help, the
/// same block everywhere (see [`with_exit_codes`]).
const EXIT_CODES: &str = "\
Exit codes:
  belfry run         the command's own exit code, whatever happened to recording or
                     notifying (a failure there is reported once on standard error);
                     124 it ran past --timeout; 128+N it died of signal N, or belfry
                     was stopped by INT, TERM or HUP while it waited for a channel after
                     the job; 126 it cannot be run; 127 it was not found; 2 belfry's
                     usage error: a bad option or configuration (the job is not run)
  belfry check       0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios plugin codes; usage
                     errors are UNKNOWN)
  belfry config check  0 the configuration is valid; 1 with --job: no channel takes the
                     job's problem alerts; 2 a bad configuration or option
  belfry send, test  0 every channel took the message (or --dry-run); 1 a channel failed
                     (named on standard error); 2 usage error: a bad option,
                     configuration or URL, an unknown channel (nothing is sent)
  other commands     0 success, 1 failure, 2 usage error";

const SEND_HELP: &str = "\
Examples:
  belfry send -t 'Backup done' -b '41 GB in 3m'          # every configured channel
  df -h | belfry send -t 'Disk' --channel ops            # body from standard input
  belfry send -n failure -b 'db1 down' 'slack://${env:SLACK_A}/${env:SLACK_B}/${env:SLACK_C}'
  belfry send --dry-run -b hi json://127.0.0.1:8080/hook

The message is sent straight away, to every channel at once, not through the outbox: the exit
status says whether it arrived (below). --retry-for retries passing failures in place. Channels with title or body templates apply them; URLs given here have none.";

/// Watch jobs, remember their status, and tell people when they fail, recover, or are still
/// fine.
#[derive(Parser, Debug)]
#[command(name = "belfry", version)]
struct Cli {
    /// The configuration file (default: $BELFRY_CONFIG, ./belfry.toml, then
    /// $XDG_CONFIG_HOME/belfry/belfry.toml). Channels can also come from $BELFRY_URLS, and the
    /// store's URL from $BELFRY_STORE.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command, record how it went, and alert by the rules.
    ///
    /// The command runs directly (no shell) in its own process group; its output passes
    /// through unchanged and its first lines and last 64 KiB are kept with the run (on a
    /// terminal, it writes to a terminal of its own; under cron, to pipes).
    /// SIGINT, SIGTERM and SIGHUP are passed on to it. The child sees BELFRY_JOB and
    /// BELFRY_RUN_ID in its environment.
    ///
    /// With BELFRY_PING_URL (or `[ping] url`) set to a healthchecks-style ping base
    /// (`https://hc-ping.com/<ping-key>`, a belfry server's `http://host:8000/ping/<ping-key>`,
    /// or a check's `https://hc-ping.com/<uuid>`), it also pings `<base>/NAME/start?rid=<run
    /// id>` as the job starts and `<base>/NAME/<exit code>?rid=<run id>` with the output's end
    /// when it ends, as runitor does; a server that is down does not hold the job: the pings
    /// wait in the outbox.
    #[command(override_usage = "belfry run [OPTIONS] -- CMD [ARGS]...")]
    Run(run::RunOptions),
    /// Send a message now: to the URLs given, the --channel(s) named, or every configured
    /// channel.
    #[command(after_help = SEND_HELP)]
    Send(send::SendOptions),
    /// List the configured channels: name, address (redacted), what they receive, templates.
    Channels {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// List every scheme belfry reads instead (the service behind it, and whether it is
        /// Apprise's), whatever is configured.
        #[arg(long)]
        schemes: bool,
    },
    /// Send a test message to one channel: a configured channel's name, or a URL.
    Test {
        /// The channel's name (see `belfry channels`), or a channel URL.
        name: String,
    },
    /// Serve healthchecks.io's ping API, and alert when a job with a schedule goes silent.
    ///
    /// Pings: `/ping/<uuid>` and `/ping/<ping_key>/<job>`, each with `/start`, `/fail`, `/log`
    /// or `/<exit status>`, `?rid=<uuid>` and `?create=1` (by name), GET, POST or HEAD; the body
    /// (up to `[server] ping_body_limit` bytes) becomes the run's output. Also `/healthz` and
    /// `/metrics` (Prometheus). Jobs with `period` or `cron` in belfry.toml are marked late
    /// when silent past their slot plus grace; alerts go out through the outbox, delivered
    /// by this process. Uses the store belfry.toml names (`[store] url`; default belfry.db
    /// in the state directory); several servers may share one PostgreSQL store. Stops on
    /// TERM or INT: requests in flight finish, then it exits 0.
    Serve {
        /// The address to listen on [default: `[server] listen`, else 127.0.0.1:8000].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check the configuration: its channels, and with --job where a job's alerts go.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The store: where jobs, runs, notifications and the outbox are kept.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Send the notifications that are due (those that failed or were not finished before).
    ///
    /// Exits 1 when a notification it tried is still not delivered, or one was given up
    /// (dead) while it ran: each is named on standard error, with why.
    Deliver {
        /// How long this may take: what is due is sent, and what comes due within this time
        /// (a retry, the end of a digest window) is waited for and sent too.
        #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = args::parse_dur, default_value = "60s")]
        wait: Duration,
        /// As JSON: `delivered` (how many), `failed` (the rows, as `outbox --json` shows
        /// them) and `outbox` (`pending`, `dead`, `next_due`).
        #[arg(long, conflicts_with = "background")]
        json: bool,
        /// Keep going, quietly, until only delivered or dead notifications remain, sleeping
        /// until the next one is due; exit at once if another process already does this for
        /// the same state directory. Every belfry command that leaves notifications
        /// undelivered starts one, detached: `belfry run`, and `status`, `history`, `check`,
        /// `outbox` when they find a crashed run (unless $BELFRY_BACKGROUND=0 or `[delivery]
        /// background = false`: then they say so on standard error).
        #[arg(long)]
        background: bool,
    },
    /// The outbox: notifications waiting, being sent, or given up (delivered ones with
    /// --all). Channel addresses are shown redacted.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
        /// Include delivered notifications.
        #[arg(long)]
        all: bool,
        /// How many rows, newest first.
        #[arg(short = 'n', long, default_value_t = 100)]
        limit: u32,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// One line per job: state, since when, last run, duration, last notification.
    ///
    /// Jobs in a problem state (failed, timed_out, crashed, late) come first, then the
    /// others, each by name. A running job's state says for how long it has been running.
    Status {
        /// Only the jobs in a problem state; exit 1 if there is one, 0 if not (for
        /// monitoring scripts).
        #[arg(long)]
        problems: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// The recent runs of a job, newest first.
    History {
        /// The job's name.
        name: String,
        /// How many runs.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Show each run's kept output.
        #[arg(long)]
        output: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Silence a job or a tag: its alerts are recorded, not sent, until the silence ends.
    ///
    /// With neither a job nor --tag, list the silences in force; with --end ID, end one now.
    /// `belfry serve`'s dashboard and API show and make the same silences.
    Silence {
        /// The job to silence.
        job: Option<String>,
        /// Silence every job with this tag instead (jobs tagged later too).
        #[arg(long, value_name = "TAG", conflicts_with = "job")]
        tag: Option<String>,
        /// For how long: 30m, 2h, 1d (at most a year).
        #[arg(long = "for", value_name = "DUR")]
        for_: Option<String>,
        /// Until when: RFC 3339 (2026-12-24T18:00Z), or YYYY-MM-DDTHH:MM in UTC.
        #[arg(long, value_name = "TIME", conflicts_with = "for_")]
        until: Option<String>,
        /// Why: shown wherever the silence shows.
        #[arg(long, default_value = "")]
        reason: String,
        /// End silence ID now.
        #[arg(long, value_name = "ID", conflicts_with_all = ["job", "tag", "for_", "until"])]
        end: Option<i64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a job's problem: no reminders until it recovers (a recovery, or a change to
    /// another problem, is still sent).
    Ack {
        /// The job.
        job: String,
    },
    /// Pause a job: it is never late (`belfry serve`) until it reports again or is resumed.
    Pause {
        /// The job.
        job: String,
    },
    /// Resume a paused job: its silence counts from now.
    Resume {
        /// The job.
        job: String,
    },
    /// Print an Argon2id hash of the password on standard input, for a dashboard login:
    /// `[server.users.NAME] password_hash = "…"` in belfry.toml.
    HashPassword,
    /// A Nagios/Icinga plugin: is the job healthy?
    ///
    /// CRITICAL if the job is failing (a problem state) or has not finished a run within
    /// --max-age; WARNING if its last run was cancelled or skipped, or older than
    /// --warn-age; UNKNOWN if there is no such job; OK otherwise. One status line with
    /// perfdata (duration, age).
    Check {
        /// The job's name.
        name: String,
        /// CRITICAL if the last run ended longer ago than this.
        #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = args::parse_dur)]
        max_age: Option<Duration>,
        /// WARNING if the last run ended longer ago than this.
        #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = args::parse_dur)]
        warn_age: Option<Duration>,
        /// As JSON: `name`, `status` (OK, WARNING, CRITICAL, UNKNOWN), `code`, `message`,
        /// `age_seconds` and `job` (as `status --json` shows it, or null).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Load the configuration and check every channel (URL, templates, secret references,
    /// a `command` channel's program), then list the channels.
    ///
    /// Every command loads and checks the configuration the same way, and stops with exit
    /// code 2 on a bad one; this one only shows the result. With --job, a table of which
    /// channels take the job's problem alerts, recoveries and OK messages, and why the others
    /// do not.
    Check {
        /// The job whose alerts to follow.
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum StoreAction {
    /// Copy the store (the state directory's belfry.db, or `[store] url`) into another: every
    /// job with what the rules remember of it and its acknowledgement, every run with its
    /// output, every notification, outbox row (pending ones stay pending), delivery attempt,
    /// kept ping, state change and silence.
    ///
    /// Safe to run again: rows the target has already are left as they are there, so a second
    /// run copies only what was added since. Stop belfry's writers (cron, services) for the
    /// last run, then point them at the new store (`[store] url` or $BELFRY_STORE).
    Migrate {
        /// Where to copy to: a postgres://user:password@host/database URL (`?schema=NAME` for
        /// a schema of its own; `${env:VAR}` references are resolved), or a SQLite file's
        /// path.
        #[arg(long, value_name = "URL")]
        to: String,
        /// As JSON: `from`, `to` (without password), and the counts of what was copied.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxAction {
    /// Make rows due now: the given ids (pending or dead ones), or with --dead every dead
    /// row. The background delivery, started now, then sends them; with it turned off
    /// ($BELFRY_BACKGROUND=0 or `[delivery] background = false`), run `belfry deliver`.
    Retry {
        /// Row ids, as `belfry outbox` lists them.
        #[arg(required_unless_present = "dead")]
        ids: Vec<i64>,
        /// Every dead row.
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
    },
    /// Delete delivered (--delivered) or dead (--dead) rows; the notifications themselves stay
    /// in the log.
    #[command(
        group = clap::ArgGroup::new("which").args(["delivered", "dead"]).required(true),
        override_usage = "belfry outbox purge <--delivered|--dead> [--older-than DUR]"
    )]
    Purge {
        /// Delivered rows.
        #[arg(long)]
        delivered: bool,
        /// Dead rows.
        #[arg(long)]
        dead: bool,
        /// Only rows older than this.
        #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = args::parse_dur, default_value = "0s")]
        older_than: Duration,
    },
}

/// `cmd` and every subcommand in it, however deep, with the exit codes after their help
/// (after what they already had there), so that no command's help is without them.
fn with_exit_codes(cmd: clap::Command) -> clap::Command {
    let after = match cmd.get_after_help() {
        Some(own) => format!("{own}\n\n{EXIT_CODES}"),
        None => EXIT_CODES.to_owned(),
    };
    cmd.after_help(after).mut_subcommands(with_exit_codes)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `belfry check` speaks Nagios even about its usage errors (UNKNOWN), so the command is
    // found before clap parses: the first word that is neither an option nor the value of a
    // global `--config FILE` given before it.
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    let mut is_check = false;
    while let Some(a) = words.next() {
        if a == "--config" {
            words.next();
        } else if !a.starts_with('-') {
            is_check = a == "check";
            break;
        }
    }
    let cli = match with_exit_codes(Cli::command())
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ if is_check => views::UNKNOWN,
                _ => 2,
            });
        }
    };
    match real_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(u) = e.downcast_ref::<Usage>() {
                warn(&u.0);
                return ExitCode::from(if is_check { views::UNKNOWN } else { 2 });
            }
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            warn(&format!("{e:#}"));
            ExitCode::from(if is_check { views::UNKNOWN } else { 1 })
        }
    }
}

/// Whether the error is a reader that went away (`belfry outbox | head`): not an error, as in
/// ripgrep. serde_json hides the I/O error it wraps from the error chain, so it is asked too.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let kind = c
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| c.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn real_main(cli: Cli) -> anyhow::Result<u8> {
    let config = Config::load(&Sources::from_env(cli.config.clone()))
        .map_err(|e| anyhow::Error::new(Usage(e.to_string())))?;
    let home = belfry::home_dir().ok();
    match cli.command {
        Cmd::Run(opts) => run::run(opts, &config, home),
        Cmd::Send(opts) => send::send(opts, &config),
        Cmd::Channels {
            json,
            schemes: true,
        } => send::schemes(json),
        Cmd::Channels { json, .. } => send::channels(&config, json),
        Cmd::Test { name } => send::test(&config, &name),
        Cmd::Serve { listen } => serve::serve(&config, listen),
        Cmd::Config {
            action: ConfigAction::Check { job },
        } => config_check::check(&config, job.as_deref()),
        Cmd::Store {
            action: StoreAction::Migrate { to, json },
        } => migrate::migrate(&config, &to, json),
        Cmd::Deliver {
            background: true, ..
        } => {
            let home = home.ok_or(belfry::NoHome)?;
            belfry::internal::drain(&config, &home)?;
            Ok(0)
        }
        Cmd::Deliver { wait, json, .. } => views::deliver(&config, wait, json),
        Cmd::Outbox {
            action,
            all,
            limit,
            json,
        } => match action {
            None => views::outbox(&config, all, limit, json),
            Some(OutboxAction::Retry { ids, dead }) => {
                views::outbox_retry(&config, (!dead).then_some(ids.as_slice()))
            }
            Some(OutboxAction::Purge {
                delivered: _,
                dead,
                older_than,
            }) => views::outbox_purge(&config, dead, older_than),
        },
        Cmd::Status { problems, json } => status::status(&config, json, problems),
        Cmd::History {
            name,
            limit,
            output,
            json,
        } => views::history(&config, &name, limit, output, json),
        Cmd::Silence {
            job,
            tag,
            for_,
            until,
            reason,
            end,
            json,
        } => quiet::silence(
            &config,
            quiet::SilenceArgs {
                job,
                tag,
                for_,
                until,
                reason,
                end,
                json,
            },
        ),
        Cmd::Ack { job } => quiet::ack(&config, &job),
        Cmd::Pause { job } => quiet::pause(&config, &job, true),
        Cmd::Resume { job } => quiet::pause(&config, &job, false),
        Cmd::HashPassword => quiet::hash_password(),
        Cmd::Check {
            name,
            max_age,
            warn_age,
            json,
        } => Ok(views::check(&config, &name, max_age, warn_age, json)),
    }
}
