//! `belfry status`: one line per job, printed as the store reads it. Nothing holds every job at
//! once, so the time and memory it takes grow with one job, not with the store: problems
//! first (the store's two ordered walks), then the others.

use std::fmt::Write as _;
use std::io::Write;

use belfry::Config;
use belfry::core::{Kind, Timestamp, format_duration};
use belfry::store::JobRow;
use serde::Serialize;

use crate::views::open_store;

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
        let mut cells: [String; 6] = Default::default();
        store.each_job(only_problems, |j| {
            fill_row(&mut cells, &j, now);
            table.push(&mut out, &cells)
        })?;
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

/// One job in `status --json`. The fields are in the order `serde_json` gave them when the
/// output was built as a `Value` (by name): the layout is unchanged.
#[derive(Serialize)]
pub(crate) struct JobJson<'a> {
    consecutive_problems: u32,
    last_notification: Option<NotificationJson<'a>>,
    last_run: Option<RunJson<'a>>,
    name: &'a str,
    running_since: Option<Timestamp>,
    since: Option<Timestamp>,
    state: Option<&'static str>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    duration_seconds: Option<f64>,
    ended: Timestamp,
    exit_code: Option<i32>,
    id: &'a str,
    started: Timestamp,
    state: &'static str,
}

#[derive(Serialize)]
struct NotificationJson<'a> {
    at: Timestamp,
    kind: Kind,
    reason: &'a str,
}

/// One job as `status --json` shows it (and `check --json` in its `job`).
pub(crate) fn job_json(j: &JobRow) -> JobJson<'_> {
    JobJson {
        consecutive_problems: j.consecutive_problems,
        last_notification: j.last_notification.as_ref().map(|n| NotificationJson {
            at: n.at,
            kind: n.kind,
            reason: &n.reason,
        }),
        last_run: j.last_run.as_ref().map(|r| RunJson {
            duration_seconds: r.duration.map(|d| d.as_secs_f64()),
            ended: r.ended,
            exit_code: r.exit_code,
            id: &r.id,
            started: r.started,
            state: r.state.name(),
        }),
        name: &j.name,
        running_since: j.running_since,
        since: j.since,
        state: j.state.map(|s| s.name()),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Problem => "problem",
        Kind::Recovered => "recovered",
        Kind::Ok => "ok",
    }
}

/// Writes one job's cells into `c`: JOB, STATE, SINCE, LAST RUN, DURATION, LAST NOTIFICATION.
/// The strings are reused from row to row.
fn fill_row(c: &mut [String; 6], j: &JobRow, now: Timestamp) {
    for s in c.iter_mut() {
        s.clear();
    }
    c[0].push_str(&j.name);
    match (j.state, j.running_since) {
        (Some(st), None) => c[1].push_str(st.name()),
        (Some(st), Some(t)) => {
            let _ = write!(c[1], "{}, running for {}", st.name(), since(t, now));
        }
        (None, Some(t)) => {
            let _ = write!(c[1], "running for {}", since(t, now));
        }
        (None, None) => c[1].push('-'),
    }
    match j.since {
        Some(t) => {
            let _ = write!(c[2], "{} ago", since(t, now));
        }
        None => c[2].push('-'),
    }
    match &j.last_run {
        Some(r) => {
            let _ = write!(c[3], "{} ago", since(r.ended, now));
            match (r.state.name(), r.exit_code) {
                ("ok", _) => {}
                (s, Some(code)) => {
                    let _ = write!(c[3], " ({s}, exit {code})");
                }
                (s, None) => {
                    let _ = write!(c[3], " ({s})");
                }
            }
        }
        None => c[3].push('-'),
    }
    match j.last_run.as_ref().and_then(|r| r.duration) {
        Some(d) => c[4].push_str(&format_duration(d)),
        None => c[4].push('-'),
    }
    match &j.last_notification {
        Some(n) => {
            let kind = kind_name(n.kind);
            let _ = write!(c[5], "{} ago ({kind}", since(n.at, now));
            if kind != n.reason {
                let _ = write!(c[5], ": {}", n.reason);
            }
            c[5].push(')');
        }
        None => c[5].push('-'),
    }
}

fn since(t: Timestamp, now: Timestamp) -> String {
    format_duration(now.since(t))
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

    fn push(&mut self, out: &mut impl Write, cells: &[String; 6]) -> anyhow::Result<()> {
        self.shown += 1;
        match self.widths {
            Some(w) => line(out, cells, w)?,
            None => {
                self.held.push(cells.clone());
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

/// Writes one line of cells, each padded to its column's width (the last one is not), without
/// trailing blanks.
fn line(out: &mut impl Write, cells: &[String; 6], widths: [usize; 6]) -> std::io::Result<()> {
    const SPACES: &[u8] = &[b' '; 256];
    let mut pad = 0;
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if c.is_empty() {
            pad += w + 2;
            continue;
        }
        while pad > 0 {
            let n = pad.min(SPACES.len());
            out.write_all(&SPACES[..n])?;
            pad -= n;
        }
        out.write_all(c.as_bytes())?;
        if i + 1 < cells.len() {
            pad = w.saturating_sub(c.chars().count()) + 2;
        }
    }
    out.write_all(b"\n")
}

/// A JSON array written one element at a time, laid out as `serde_json`'s pretty printer lays
/// out a whole array.
#[derive(Default)]
struct JsonList {
    buf: Vec<u8>,
    shown: usize,
}

impl JsonList {
    fn push(&mut self, out: &mut impl Write, v: &impl Serialize) -> anyhow::Result<()> {
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
