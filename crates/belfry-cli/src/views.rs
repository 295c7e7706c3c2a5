//! `history`, `check`, `outbox` and `deliver`: looking at the store and draining it
//! (`status` is in its own module).

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use belfry::Config;
use belfry::core::{Class, Timestamp, format_duration};
pub(crate) use belfry::internal::views::secs;
use belfry::internal::views::{outbox_json, run_json};
use belfry_store::{JobRow, OutboxRow};
use serde_json::{Value, json};

use crate::open::{open_and_reap, open_store};

/// Nagios's UNKNOWN.
pub const UNKNOWN: u8 = 3;

pub(crate) fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ago", format_duration(now.since(t)))
}

fn out() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// `belfry deliver`: sends what is due, and what comes due, for at most `wait`. Exits 1 when a
/// row it tried is still not delivered or a row died during it, naming each on standard error.
pub fn deliver(config: &Config, wait: Duration, as_json: bool) -> anyhow::Result<u8> {
    // The alerts of crashed runs found now go out with this pass.
    let (mut store, _) = open_and_reap(config)?;
    let dead_before: HashSet<i64> = store.dead_ids()?.into_iter().collect();
    // A row due again (a retry, a digest window ending, a lease running out) before the time
    // is up is waited for: `--wait` is how long this command may take.
    let report = belfry::internal::Dispatcher::new(config).settle(
        &mut store,
        None,
        Instant::now() + wait,
    )?;
    let delivered = report.delivered.len();
    let mut tried: BTreeSet<i64> = report.failed.iter().map(|f| f.row).collect();
    let died = store
        .dead_ids()?
        .into_iter()
        .filter(|id| !dead_before.contains(id));
    tried.extend(died);
    let ids: Vec<i64> = tried.into_iter().collect();
    let failed: Vec<OutboxRow> = store
        .outbox_rows_by_id(&ids)?
        .into_iter()
        .filter(|r| r.status != "delivered")
        .collect();
    let now = Timestamp::now();
    for r in &failed {
        let reason = config.scrub(r.last_reason.as_deref().unwrap_or("no reason recorded"));
        let row = format!("outbox row {} ({} to {})", r.id, r.job, r.channel);
        crate::tell::warn(&match r.status.as_str() {
            "dead" => format!(
                "{row} is dead: {reason}; `belfry outbox retry {}` revives it",
                r.id
            ),
            "pending" if r.next_attempt > now => format!(
                "{row} not delivered: {reason}; tried again in {}",
                format_duration(r.next_attempt.since(now))
            ),
            _ => format!("{row} not delivered: {reason}; kept in the outbox"),
        });
    }
    let counts = store.outbox_counts()?;
    let waiting = counts.pending + counts.sending;
    let next_due = if waiting > 0 { store.next_due()? } else { None };
    let mut out = out();
    if as_json {
        let v = json!({
            "delivered": delivered,
            "failed": failed.iter().map(|r| outbox_json(config, r)).collect::<Vec<_>>(),
            "outbox": {
                "pending": waiting,
                "dead": counts.dead,
                "next_due": next_due,
            },
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        // Rows waiting for a retry or for a digest window to pass: say when, so that a pass
        // that sent nothing explains itself.
        let next = match next_due {
            Some(t) if t > now => format!(", the next due in {}", format_duration(t.since(now))),
            Some(_) => ", the next due now".to_owned(),
            None => String::new(),
        };
        writeln!(
            out,
            "delivered {delivered}, failed {}; outbox: {waiting} pending{next}, {} dead",
            failed.len(),
            counts.dead
        )?;
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

pub(crate) fn print_table<const N: usize>(
    out: &mut impl Write,
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `belfry history NAME`.
pub fn history(
    config: &Config,
    name: &str,
    limit: u32,
    with_output: bool,
    as_json: bool,
) -> anyhow::Result<u8> {
    let store = open_store(config)?;
    if store.job(name)?.is_none() {
        anyhow::bail!("no job named {name:?} (see `belfry status`)");
    }
    let runs = store
        .runs(name, limit, with_output)
        .with_context(|| format!("reading the history of {name}"))?;
    let mut out = out();
    if as_json {
        let v: Vec<Value> = runs.iter().map(run_json).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(0);
    }
    let now = Timestamp::now();
    let mut rows = vec![[
        "STARTED".to_owned(),
        "STATE".into(),
        "EXIT".into(),
        "DURATION".into(),
        "NOTIFIED".into(),
        "RUN".into(),
    ]];
    let mut outputs = Vec::new();
    for r in &runs {
        let exit = match (r.exit_code, r.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("signal {s}"),
            _ => "-".into(),
        };
        let notified = match (&r.reason, r.notified) {
            (Some(reason), true) => format!("yes ({reason})"),
            (Some(reason), false) => format!("no ({reason})"),
            (None, _) => "-".into(),
        };
        rows.push([
            format!("{} ({})", r.started, ago(r.started, now)),
            r.state.name().into(),
            exit,
            r.duration.map_or("-".into(), format_duration),
            notified,
            r.id.clone(),
        ]);
        outputs.push((r.id.clone(), r.output.clone()));
    }
    print_table(&mut out, &rows)?;
    if with_output {
        for (id, output) in outputs {
            writeln!(out, "\n--- output of run {id} ---")?;
            match output {
                Some(o) if !o.is_empty() => {
                    write!(out, "{o}")?;
                    if !o.ends_with('\n') {
                        writeln!(out)?;
                    }
                }
                _ => writeln!(out, "(none)")?,
            }
        }
    }
    Ok(0)
}

/// `belfry check NAME`: a Nagios plugin. Prints one line (or, with `as_json`, an object) and
/// returns the plugin's code.
pub fn check(
    config: &Config,
    name: &str,
    max_age: Option<Duration>,
    warn_age: Option<Duration>,
    as_json: bool,
) -> u8 {
    let v = verdict(config, name, max_age, warn_age);
    let label = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][usize::from(v.code.min(UNKNOWN))];
    let mut out = out();
    // A reader that went away does not change the verdict.
    let _ = if as_json {
        let j = json!({
            "name": name,
            "status": label,
            "code": v.code,
            "message": v.message,
            "age_seconds": secs(v.age),
            "job": v.job.as_ref().map(crate::status::job_json),
        });
        serde_json::to_writer_pretty(&mut out, &j)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        writeln!(out, "BELFRY {label} - {}{}", v.message, v.perfdata)
    };
    v.code
}

/// What `belfry check` found.
struct Verdict {
    /// The plugin's code.
    code: u8,
    /// The status line's text, after `BELFRY OK - `.
    message: String,
    /// ` | duration=…` when there was a run.
    perfdata: String,
    /// How long ago the last run ended.
    age: Option<Duration>,
    /// The job, if there is one.
    job: Option<JobRow>,
}

fn verdict(
    config: &Config,
    name: &str,
    max_age: Option<Duration>,
    warn_age: Option<Duration>,
) -> Verdict {
    let unknown = |message: String, job: Option<JobRow>| Verdict {
        code: UNKNOWN,
        message,
        perfdata: String::new(),
        age: None,
        job,
    };
    let store = match open_store(config) {
        Ok(s) => s,
        Err(e) => return unknown(format!("cannot read belfry's store: {e:#}"), None),
    };
    let job = match store.job(name) {
        Ok(Some(j)) => j,
        Ok(None) => return unknown(format!("no job named {name:?}"), None),
        Err(e) => return unknown(format!("cannot read belfry's store: {e}"), None),
    };
    let now = Timestamp::now();
    let Some(last) = job.last_run.clone() else {
        return unknown(format!("{name} has not finished a run yet"), Some(job));
    };
    let age = now.since(last.ended);
    let mut code = 0u8;
    let mut why = Vec::new();
    let state_word = match (last.state.name(), last.exit_code) {
        ("ok", _) => "ok".to_owned(),
        (s, Some(c)) => format!("{s} (exit {c})"),
        (s, None) => s.to_owned(),
    };
    let failing = job.state.is_some_and(|s| s.class() == Class::Problem);
    if failing {
        code = 2;
        if job.consecutive_problems > 1 {
            why.push(format!("{} problems in a row", job.consecutive_problems));
        }
    } else if last.state.class() == Class::Neutral {
        code = 1;
    }
    if let Some(max) = max_age
        && age > max
    {
        code = 2;
        why.push(format!("no run within {}", format_duration(max)));
    } else if let Some(w) = warn_age
        && age > w
    {
        code = code.max(1);
        why.push(format!("no run within {}", format_duration(w)));
    }
    let mut message = format!("{name}: last run {state_word} {} ago", format_duration(age));
    if let Some(d) = last.duration {
        message.push_str(&format!(", took {}", format_duration(d)));
    }
    for w in &why {
        message.push_str(", ");
        message.push_str(w);
    }
    let thr = |d: Option<Duration>| d.map_or(String::new(), |d| d.as_secs().to_string());
    let perfdata = format!(
        " | duration={:.3}s;;;0 age={}s;{};{};0",
        last.duration.unwrap_or_default().as_secs_f64(),
        age.as_secs(),
        thr(warn_age),
        thr(max_age)
    );
    Verdict {
        code,
        message,
        perfdata,
        age: Some(age),
        job: Some(job),
    }
}

/// `belfry outbox`.
pub fn outbox(config: &Config, all: bool, limit: u32, as_json: bool) -> anyhow::Result<u8> {
    let store = open_store(config)?;
    let rows = store.outbox_rows(all, limit)?;
    let mut out = out();
    if as_json {
        let v: Vec<Value> = rows.iter().map(|r| outbox_json(config, r)).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(0);
    }
    if rows.is_empty() {
        writeln!(out, "the outbox is empty")?;
        return Ok(0);
    }
    let dups: u32 = rows.iter().map(|r| r.reclaims).sum();
    let now = Timestamp::now();
    let mut table = vec![[
        "ID".to_owned(),
        "JOB".into(),
        "STATE".into(),
        "CHANNEL".into(),
        "STATUS".into(),
        "ATTEMPTS".into(),
        "WHEN".into(),
        "LAST REASON".into(),
    ]];
    for r in &rows {
        let when = match r.status.as_str() {
            "pending" if r.next_attempt <= now => "due now".to_owned(),
            "pending" => format!("in {}", format_duration(r.next_attempt.since(now))),
            "delivered" => r.delivered.map_or("-".into(), |t| ago(t, now)),
            _ => ago(r.created, now),
        };
        let mut reason = r.last_reason.clone().unwrap_or_default();
        if r.reclaims > 0 {
            reason = format!("(sent maybe {}× more) {reason}", r.reclaims);
        }
        table.push([
            r.id.to_string(),
            r.job.clone(),
            r.state.name().into(),
            r.channel.clone(),
            r.status.clone(),
            r.attempts.to_string(),
            when,
            config.scrub(&reason).into_owned(),
        ]);
    }
    print_table(&mut out, &table)?;
    if dups > 0 {
        writeln!(
            out,
            "{dups} send(s) may have reached their channel twice: a sender died between \
             sending and recording"
        )?;
    }
    Ok(0)
}

/// `belfry outbox retry`. Each id asked for that could not be revived is named, with why, and
/// makes the exit code 1.
pub fn outbox_retry(config: &Config, ids: Option<&[i64]>) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let revived = store.retry_outbox(ids, Timestamp::now(), config.delivery.give_up_after)?;
    let mut code = 0;
    for &id in ids.unwrap_or_default() {
        if revived.contains(&id) {
            continue;
        }
        code = 1;
        crate::tell::warn(&match store.outbox_row_status(id)? {
            None => format!("there is no outbox row {id} (see `belfry outbox --all`)"),
            Some((status, ..)) if status == "delivered" => {
                format!("outbox row {id} was delivered; there is nothing to retry")
            }
            Some((status, ..)) => format!("outbox row {id} is {status}; it was left alone"),
        });
    }
    // The rows made due need a sender: the background one, or `belfry deliver` by hand.
    let then = if revived.is_empty() {
        ""
    } else if crate::background::enabled(config) {
        crate::background::spawn_drainer(config);
        "; the background delivery sends them"
    } else {
        "; `belfry deliver` sends them"
    };
    writeln!(out(), "{} row(s) due now{then}", revived.len())?;
    Ok(code)
}

/// `belfry outbox purge`.
pub fn outbox_purge(config: &Config, dead: bool, older_than: Duration) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let before = Timestamp::now() - older_than;
    let n = store.purge_outbox(dead, before)?;
    writeln!(
        out(),
        "purged {n} {} row(s)",
        if dead { "dead" } else { "delivered" }
    )?;
    Ok(0)
}
