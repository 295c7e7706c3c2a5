//! `belfry status`: one line per job, printed as the store reads it. Nothing holds every job at
//! once, so the time and memory it takes grow with one job, not with the store: problems
//! first (the store's two ordered walks), then the others.

use std::io::Write;

use belfry::Config;
use belfry::core::{Timestamp, format_duration};
use belfry::store::JobRow;
use serde_json::{Value, json};

use crate::views::{ago, open_store, secs};

/// How many rows the table reads before it fixes its column widths: every table of up to this
/// many jobs is aligned as a whole. The job column is always as wide as the longest name (the
/// store says which); a later cell wider than its column pushes the rest of its own line.
const WIDTH_ROWS: usize = 256;

/// `belfry status [--problems] [--json]`. Returns 1 with `--problems` when a job is in a
/// problem state, 0 otherwise.
pub fn status(config: &Config, as_json: bool, only_problems: bool) -> anyhow::Result<u8> {
    let store = open_store(config)?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let shown = if as_json {
        let mut list = JsonList::default();
        store.each_job(only_problems, |j| list.push(&mut out, &job_json(&j)))?;
        list.end(&mut out)?
    } else {
        let name_width = store.longest_job_name(only_problems)?;
        let mut table = Table::new(name_width);
        let now = Timestamp::now();
        store.each_job(only_problems, |j| table.push(&mut out, row(&j, now)))?;
        let shown = table.end(&mut out)?;
        if shown == 0 {
            if only_problems {
                writeln!(out, "no job is in a problem state")?;
            } else {
                writeln!(out, "no jobs yet (try: belfry run -- your-command)")?;
            }
        }
        shown
    };
    out.flush()?;
    Ok(u8::from(only_problems && shown > 0))
}

pub(crate) fn job_json(j: &JobRow) -> Value {
    json!({
        "name": j.name,
        "state": j.state.map(|s| s.name()),
        "since": j.since,
        "running_since": j.running_since,
        "consecutive_problems": j.consecutive_problems,
        "last_run": j.last_run.as_ref().map(|r| json!({
            "id": r.id,
            "state": r.state.name(),
            "started": r.started,
            "ended": r.ended,
            "duration_seconds": secs(r.duration),
            "exit_code": r.exit_code,
        })),
        "last_notification": j.last_notification.as_ref().map(|n| json!({
            "at": n.at,
            "kind": n.kind,
            "reason": n.reason,
        })),
    })
}

/// One job's cells: JOB, STATE, SINCE, LAST RUN, DURATION, LAST NOTIFICATION.
fn row(j: &JobRow, now: Timestamp) -> [String; 6] {
    let mut state = j.state.map_or("-".to_owned(), |s| s.name().to_owned());
    if let Some(started) = j.running_since {
        let running = format!("running for {}", format_duration(now.since(started)));
        state = if j.state.is_some() {
            format!("{state}, {running}")
        } else {
            running
        };
    }
    let since = j.since.map_or("-".into(), |t| ago(t, now));
    let last = j.last_run.as_ref().map_or("-".into(), |r| {
        let how = match (r.state.name(), r.exit_code) {
            ("ok", _) => String::new(),
            (s, Some(c)) => format!(" ({s}, exit {c})"),
            (s, None) => format!(" ({s})"),
        };
        format!("{}{how}", ago(r.ended, now))
    });
    let dur = j
        .last_run
        .as_ref()
        .and_then(|r| r.duration)
        .map_or("-".into(), format_duration);
    let note = j.last_notification.as_ref().map_or("-".into(), |n| {
        let kind = serde_json::to_value(n.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if kind == n.reason {
            format!("{} ({kind})", ago(n.at, now))
        } else {
            format!("{} ({kind}: {})", ago(n.at, now), n.reason)
        }
    });
    [j.name.clone(), state, since, last, dur, note]
}

/// A table printed as its rows come: the first [`WIDTH_ROWS`] are held to fix the widths.
struct Table {
    widths: Option<[usize; 6]>,
    name_width: usize,
    held: Vec<[String; 6]>,
    shown: usize,
}

impl Table {
    fn new(name_width: usize) -> Table {
        Table {
            widths: None,
            name_width,
            held: Vec::new(),
            shown: 0,
        }
    }

    fn push(&mut self, out: &mut impl Write, cells: [String; 6]) -> anyhow::Result<()> {
        self.shown += 1;
        match self.widths {
            Some(w) => line(out, &cells, w)?,
            None => {
                self.held.push(cells);
                if self.held.len() == WIDTH_ROWS {
                    self.release(out)?;
                }
            }
        }
        Ok(())
    }

    /// Fixes the widths from the rows held, and prints the header and those rows.
    fn release(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let header = [
            "JOB",
            "STATE",
            "SINCE",
            "LAST RUN",
            "DURATION",
            "LAST NOTIFICATION",
        ]
        .map(str::to_owned);
        let mut w = [0usize; 6];
        w[0] = self.name_width;
        for r in std::iter::once(&header).chain(&self.held) {
            for (w, c) in w.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        self.widths = Some(w);
        line(out, &header, w)?;
        for r in std::mem::take(&mut self.held) {
            line(out, &r, w)?;
        }
        Ok(())
    }

    /// Prints what is still held; returns how many rows there were.
    fn end(mut self, out: &mut impl Write) -> std::io::Result<usize> {
        if self.widths.is_none() && !self.held.is_empty() {
            self.release(out)?;
        }
        Ok(self.shown)
    }
}

fn line(out: &mut impl Write, cells: &[String; 6], widths: [usize; 6]) -> std::io::Result<()> {
    let mut s = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            s.push_str(c);
        } else {
            s.push_str(&format!("{c:<w$}  "));
        }
    }
    writeln!(out, "{}", s.trim_end())
}

/// A JSON array written one element at a time, laid out as `serde_json`'s pretty printer lays
/// out a whole array.
#[derive(Default)]
struct JsonList {
    buf: Vec<u8>,
    shown: usize,
}

impl JsonList {
    fn push(&mut self, out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
        out.write_all(if self.shown == 0 { b"[\n  " } else { b",\n  " })?;
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, v)?;
        for (i, part) in self.buf.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.write_all(b"\n  ")?;
            }
            out.write_all(part)?;
        }
        self.shown += 1;
        Ok(())
    }

    fn end(self, out: &mut impl Write) -> std::io::Result<usize> {
        out.write_all(if self.shown == 0 { b"[]\n" } else { b"\n]\n" })?;
        Ok(self.shown)
    }
}
