//! `belfry silence`, `belfry ack`, `belfry pause`/`resume` and `belfry hash-password`: what
//! the dashboard's forms do, from a shell, on the configured store (the same actions,
//! `belfry_server::actions`).

use std::io::{BufRead, Write};

use belfry::Config;
use belfry_core::Timestamp;
use belfry_server::actions::{self, ActionError};
use serde_json::json;

use crate::open::open_store;
use crate::tell::Usage;

/// Who the command acts for: the login name, as the dashboard names its user.
fn by() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("{u} (cli)"))
}

/// A refusal is a usage error (exit 2); a store failure is itself.
fn usage(e: ActionError) -> anyhow::Error {
    match e {
        ActionError::Store(e) => e.into(),
        other => anyhow::Error::new(Usage(other.to_string())),
    }
}

/// What `belfry silence` was asked.
pub struct SilenceArgs {
    pub job: Option<String>,
    pub tag: Option<String>,
    pub for_: Option<String>,
    pub until: Option<String>,
    pub reason: String,
    pub end: Option<i64>,
    pub json: bool,
}

/// `belfry silence`: make one, end one (`--end`), or list those in force.
pub fn silence(config: &Config, a: SilenceArgs) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let now = Timestamp::now();
    let mut out = std::io::stdout().lock();
    if let Some(id) = a.end {
        actions::end_silence(&mut store, id, now).map_err(usage)?;
        writeln!(out, "silence {id} ended")?;
        return Ok(0);
    }
    if a.job.is_none() && a.tag.is_none() {
        let list = store.silences(now)?;
        if a.json {
            let rows: Vec<_> = list.iter().map(belfry_server::api::silence_json).collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        } else if list.is_empty() {
            writeln!(out, "no silence is in force")?;
        } else {
            for s in &list {
                write!(
                    out,
                    "{:>4}  {}  until {}  by {}",
                    s.id, s.scope, s.until, s.by
                )?;
                if !s.reason.is_empty() {
                    write!(out, ": {}", s.reason)?;
                }
                writeln!(out)?;
            }
        }
        return Ok(0);
    }
    let scope = actions::scope(&store, a.job.as_deref(), a.tag.as_deref()).map_err(usage)?;
    let until = actions::silence_end(a.for_.as_deref(), a.until.as_deref(), now).map_err(usage)?;
    let s = actions::silence(&mut store, &scope, until, &a.reason, &by(), now).map_err(usage)?;
    if a.json {
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "id": s.id, "until": s.until.to_rfc3339(), "by": s.by }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} silenced until {} (silence {}; end it early with `belfry silence --end {}`)",
            s.scope, s.until, s.id, s.id
        )?;
    }
    Ok(0)
}

/// `belfry ack JOB`.
pub fn ack(config: &Config, job: &str) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    actions::acknowledge(&mut store, job, &by(), Timestamp::now()).map_err(usage)?;
    writeln!(
        std::io::stdout().lock(),
        "{job}: acknowledged; no reminders until it recovers"
    )?;
    Ok(0)
}

/// `belfry pause JOB` / `belfry resume JOB`: a paused job is never late; resuming counts its
/// silence from now.
pub fn pause(config: &Config, job: &str, pause: bool) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    if !store.set_paused(job, pause, Timestamp::now())? {
        return Err(anyhow::Error::new(Usage(format!(
            "no job is named {job:?}"
        ))));
    }
    let done = if pause {
        "paused: never late until it reports again or is resumed"
    } else {
        "resumed: its silence counts from now"
    };
    writeln!(std::io::stdout().lock(), "{job}: {done}")?;
    Ok(0)
}

/// `belfry hash-password`: reads one line (the password) from standard input and prints its
/// Argon2id hash.
pub fn hash_password() -> anyhow::Result<u8> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(anyhow::Error::new(Usage(
            "no password on standard input (printf '%s' \"$PASSWORD\" | belfry hash-password)"
                .into(),
        )));
    }
    let hash = belfry_server::hash_password(password).map_err(anyhow::Error::msg)?;
    writeln!(std::io::stdout().lock(), "{hash}")?;
    Ok(0)
}
