//! `history`, `check`, `outbox` and `deliver`: looking at the store and draining it
//! (`status` is in its own module).

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use belfry::Config;
use belfry::core::{Class, Timestamp, format_duration};
use belfry::store::{OutboxRow, RunRow, Store};
use serde_json::{Value, json};

/// Nagios's UNKNOWN.
pub const UNKNOWN: u8 = 3;

/// Opens the store, and records as crashed the runs whose belfry is gone (their alerts wait
/// in the outbox for the next `belfry run` or `belfry deliver`).
pub(crate) fn open_store(config: &Config) -> anyhow::Result<Store> {
    let home = belfry::home_dir()?;
    let mut store = Store::open(&belfry::store_path(&home))?;
    if let Err(e) = belfry::reap_crashed(&mut store, config) {
        crate::warn(&format!("could not check for crashed runs: {e}"));
    }
    Ok(store)
}

pub(crate) fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ago", format_duration(now.since(t)))
}

pub(crate) fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

fn out() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// `belfry deliver`.
pub fn deliver(config: &Config, wait: Duration) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let report = belfry::deliver(config, &mut store, None, wait)?;
    crate::run::report_failures(&report, false);
    let counts = store.outbox_counts()?;
    // Rows waiting for a retry or for a digest window to pass: say when, so that a pass that
    // sent nothing explains itself.
    let next = match store.next_due()? {
        Some(t) if counts.pending + counts.sending > 0 => {
            let now = Timestamp::now();
            if t > now {
                format!(", the next due in {}", format_duration(t.since(now)))
            } else {
                ", the next due now".to_owned()
            }
        }
        _ => String::new(),
    };
    writeln!(
        out(),
        "delivered {}, failed {}; outbox: {} pending{next}, {} dead",
        report.delivered.len(),
        report.failed.len(),
        counts.pending + counts.sending,
        counts.dead
    )?;
    Ok(if report.all_delivered() { 0 } else { 1 })
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

fn run_json(r: &RunRow) -> Value {
    json!({
        "id": r.id,
        "job": r.job,
        "state": r.state.name(),
        "started": r.started,
        "ended": r.ended,
        "duration_seconds": secs(r.duration),
        "exit_code": r.exit_code,
        "signal": r.signal,
        "host": r.host,
        "error": r.error,
        "reason": r.reason,
        "reason_text": r.reason_text,
        "notified": r.notified,
        "output_bytes": r.output_bytes,
        "output": r.output,
    })
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

/// `belfry check NAME`: a Nagios plugin. Prints one line and returns the plugin's code.
#[allow(clippy::print_stdout)]
pub fn check(
    config: &Config,
    name: &str,
    max_age: Option<Duration>,
    warn_age: Option<Duration>,
) -> u8 {
    let (code, line) = check_line(config, name, max_age, warn_age);
    println!("{line}");
    code
}

fn check_line(
    config: &Config,
    name: &str,
    max_age: Option<Duration>,
    warn_age: Option<Duration>,
) -> (u8, String) {
    let unknown = |why: String| (UNKNOWN, format!("BELFRY UNKNOWN - {why}"));
    let store = match open_store(config) {
        Ok(s) => s,
        Err(e) => return unknown(format!("cannot read belfry's store: {e:#}")),
    };
    let job = match store.job(name) {
        Ok(Some(j)) => j,
        Ok(None) => return unknown(format!("no job named {name:?}")),
        Err(e) => return unknown(format!("cannot read belfry's store: {e}")),
    };
    let now = Timestamp::now();
    let Some(last) = &job.last_run else {
        return unknown(format!("{name} has not finished a run yet"));
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
    let label = ["OK", "WARNING", "CRITICAL"][code as usize];
    let mut line = format!(
        "BELFRY {label} - {name}: last run {state_word} {} ago",
        format_duration(age)
    );
    if let Some(d) = last.duration {
        line.push_str(&format!(", took {}", format_duration(d)));
    }
    for w in &why {
        line.push_str(", ");
        line.push_str(w);
    }
    let thr = |d: Option<Duration>| d.map_or(String::new(), |d| d.as_secs().to_string());
    line.push_str(&format!(
        " | duration={:.3}s;;;0 age={}s;{};{};0",
        last.duration.unwrap_or_default().as_secs_f64(),
        age.as_secs(),
        thr(warn_age),
        thr(max_age)
    ));
    (code, line)
}

fn outbox_json(config: &Config, r: &OutboxRow) -> Value {
    json!({
        "id": r.id,
        "job": r.job,
        "state": r.state.name(),
        "kind": r.kind,
        "reason": r.reason,
        "channel": r.channel,
        "destination": config.channel(&r.channel).map(|c| c.describe()),
        "status": r.status,
        "attempts": r.attempts,
        "created": r.created,
        "next_attempt": (r.status == "pending").then_some(r.next_attempt),
        "deadline": r.deadline,
        "lease_until": r.lease_until,
        "last_reason": r.last_reason.as_deref().map(|t| config.scrub(t)),
        "delivered": r.delivered,
        "folded_into": r.folded_into,
        "possible_duplicates": r.reclaims,
    })
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

/// `belfry outbox retry`.
pub fn outbox_retry(config: &Config, ids: Option<&[i64]>) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let n = store.retry_outbox(ids, Timestamp::now(), config.delivery.give_up_after)?;
    writeln!(out(), "{n} row(s) due now; `belfry deliver` sends them")?;
    Ok(if ids.is_some_and(|ids| n < ids.len()) {
        1
    } else {
        0
    })
}

/// `belfry outbox purge`.
pub fn outbox_purge(config: &Config, dead: bool, older_than: Duration) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    let before =
        Timestamp::from_millis(Timestamp::now().as_millis() - older_than.as_millis() as i64);
    let n = store.purge_outbox(dead, before)?;
    writeln!(
        out(),
        "purged {n} {} row(s)",
        if dead { "dead" } else { "delivered" }
    )?;
    Ok(0)
}
