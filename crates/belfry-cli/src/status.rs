//! `belfry status`: one line per job, printed as the store reads it. Nothing holds every job at
//! once, so the time and memory it takes grow with one job, not with the store: problems
//! first (the store's two ordered walks), then the others.

use std::fmt::Write as _;
use std::io::Write;

use belfry::Config;
use belfry::core::{Kind, Timestamp, push_duration};
use belfry_store::JobRow;
use serde_json::Value;

use crate::open::open_store;

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
        let mut buf = Vec::new();
        let mut shown = 0;
        store.each_job(only_problems, |j| {
            buf.clear();
            buf.extend_from_slice(if shown == 0 { b"[\n  " } else { b",\n  " });
            write_job_json(&mut buf, j);
            shown += 1;
            out.write_all(&buf).map_err(anyhow::Error::from)
        })?;
        out.write_all(if shown == 0 { b"[]\n" } else { b"\n]\n" })?;
        shown
    } else {
        let name_width = store.longest_job_name(only_problems)?;
        let mut table = Table::new(name_width);
        let now = Timestamp::now();
        let mut cells: [String; 6] = Default::default();
        store.each_job(only_problems, |j| {
            fill_row(&mut cells, j, now);
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

/// One job as `check --json` shows it in its `job`: what `status --json` writes for it.
pub(crate) fn job_json(j: &JobRow) -> Value {
    let borrowed = JobRow {
        name: j.name.as_str(),
        state: j.state,
        since: j.since,
        consecutive_problems: j.consecutive_problems,
        last_run: j.last_run.as_ref().map(|r| belfry_store::LastRun {
            id: r.id.as_str(),
            state: r.state,
            started: r.started,
            ended: r.ended,
            duration: r.duration,
            exit_code: r.exit_code,
        }),
        running_since: j.running_since,
        last_notification: j
            .last_notification
            .as_ref()
            .map(|n| belfry_store::LastNotification {
                at: n.at,
                kind: n.kind,
                reason: n.reason.as_str(),
            }),
        uuid: j.uuid.as_deref(),
    };
    let mut buf = Vec::new();
    write_job_json(&mut buf, &borrowed);
    serde_json::from_slice(&buf).expect("status writes valid JSON")
}

/// Writes one job of `status --json`, as an element of the array (one level in), laid out as
/// `serde_json`'s pretty printer lays out the same object: keys in order of name (the order of
/// a `Value`'s map, which the output was first built as), two spaces a level. Written by hand
/// because it is written 100,000 times for 100,000 jobs: the keys need no escaping, and the
/// times are formatted once each without an allocation.
fn write_job_json(b: &mut Vec<u8>, j: &JobRow<&str>) {
    b.extend_from_slice(b"{\n    \"consecutive_problems\": ");
    push_int(b, i64::from(j.consecutive_problems));
    b.extend_from_slice(b",\n    \"last_notification\": ");
    match &j.last_notification {
        Some(n) => {
            b.extend_from_slice(b"{\n      \"at\": ");
            push_time(b, n.at);
            b.extend_from_slice(b",\n      \"kind\": \"");
            b.extend_from_slice(kind_name(n.kind).as_bytes());
            b.extend_from_slice(b"\",\n      \"reason\": ");
            push_str(b, n.reason);
            b.extend_from_slice(b"\n    }");
        }
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(b",\n    \"last_run\": ");
    match &j.last_run {
        Some(r) => {
            b.extend_from_slice(b"{\n      \"duration_seconds\": ");
            match r.duration {
                Some(d) => {
                    serde_json::to_writer(&mut *b, &d.as_secs_f64()).expect("writes to a Vec")
                }
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\n      \"ended\": ");
            push_time(b, r.ended);
            b.extend_from_slice(b",\n      \"exit_code\": ");
            match r.exit_code {
                Some(c) => push_int(b, i64::from(c)),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\n      \"id\": ");
            push_str(b, r.id);
            b.extend_from_slice(b",\n      \"started\": ");
            push_time(b, r.started);
            b.extend_from_slice(b",\n      \"state\": \"");
            b.extend_from_slice(r.state.name().as_bytes());
            b.extend_from_slice(b"\"\n    }");
        }
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(b",\n    \"name\": ");
    push_str(b, j.name);
    b.extend_from_slice(b",\n    \"running_since\": ");
    push_opt_time(b, j.running_since);
    b.extend_from_slice(b",\n    \"since\": ");
    push_opt_time(b, j.since);
    b.extend_from_slice(b",\n    \"state\": ");
    match j.state {
        Some(s) => {
            b.push(b'"');
            b.extend_from_slice(s.name().as_bytes());
            b.push(b'"');
        }
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(b",\n    \"uuid\": ");
    match j.uuid {
        Some(u) => push_str(b, u),
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(b"\n  }");
}

/// Appends `n` in decimal (as `serde_json` writes an integer: it uses the same crate).
fn push_int(b: &mut Vec<u8>, n: i64) {
    b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string as `serde_json` writes it; most need no escape and are copied as they are.
fn push_str(b: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        b.push(b'"');
        b.extend_from_slice(s.as_bytes());
        b.push(b'"');
    } else {
        serde_json::to_writer(&mut *b, s).expect("writes to a Vec");
    }
}

fn push_time(b: &mut Vec<u8>, t: Timestamp) {
    b.push(b'"');
    b.extend_from_slice(t.rfc3339().as_bytes());
    b.push(b'"');
}

fn push_opt_time(b: &mut Vec<u8>, t: Option<Timestamp>) {
    match t {
        Some(t) => push_time(b, t),
        None => b.extend_from_slice(b"null"),
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
fn fill_row(c: &mut [String; 6], j: &JobRow<&str>, now: Timestamp) {
    for s in c.iter_mut() {
        s.clear();
    }
    c[0].push_str(j.name);
    match (j.state, j.running_since) {
        (Some(st), None) => c[1].push_str(st.name()),
        (st, Some(t)) => {
            if let Some(st) = st {
                c[1].push_str(st.name());
                c[1].push_str(", ");
            }
            c[1].push_str("running for ");
            push_duration(&mut c[1], now.since(t));
        }
        (None, None) => c[1].push('-'),
    }
    match j.since {
        Some(t) => push_ago(&mut c[2], t, now),
        None => c[2].push('-'),
    }
    match &j.last_run {
        Some(r) => {
            push_ago(&mut c[3], r.ended, now);
            match (r.state.name(), r.exit_code) {
                ("ok", _) => {}
                (s, code) => {
                    c[3].push_str(" (");
                    c[3].push_str(s);
                    if let Some(code) = code {
                        let _ = write!(c[3], ", exit {code}");
                    }
                    c[3].push(')');
                }
            }
        }
        None => c[3].push('-'),
    }
    match j.last_run.as_ref().and_then(|r| r.duration) {
        Some(d) => push_duration(&mut c[4], d),
        None => c[4].push('-'),
    }
    match &j.last_notification {
        Some(n) => {
            let kind = kind_name(n.kind);
            push_ago(&mut c[5], n.at, now);
            c[5].push_str(" (");
            c[5].push_str(kind);
            if kind != n.reason {
                c[5].push_str(": ");
                c[5].push_str(n.reason);
            }
            c[5].push(')');
        }
        None => c[5].push('-'),
    }
}

/// `<how long> ago`, from `t` to `now`.
fn push_ago(out: &mut String, t: Timestamp, now: Timestamp) {
    push_duration(out, now.since(t));
    out.push_str(" ago");
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
                *w = (*w).max(width(c));
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

/// How many characters `s` holds (most cells are ASCII: their length).
fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
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
            pad = w.saturating_sub(width(c)) + 2;
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use belfry::core::State;
    use belfry_store::{LastNotification, LastRun};
    use serde_json::json;

    use super::*;

    /// What `status --json` printed when it built each job as a `Value` and let `serde_json`
    /// lay it out, as an element of the array.
    fn as_serde_lays_it_out(j: &JobRow<&str>) -> String {
        let v = json!({
            "consecutive_problems": j.consecutive_problems,
            "last_notification": j.last_notification.as_ref().map(|n| json!({
                "at": n.at, "kind": n.kind, "reason": n.reason,
            })),
            "last_run": j.last_run.as_ref().map(|r| json!({
                "duration_seconds": r.duration.map(|d| d.as_secs_f64()),
                "ended": r.ended,
                "exit_code": r.exit_code,
                "id": r.id,
                "started": r.started,
                "state": r.state.name(),
            })),
            "name": j.name,
            "running_since": j.running_since,
            "since": j.since,
            "state": j.state.map(|s| s.name()),
            "uuid": j.uuid,
        });
        serde_json::to_string_pretty(&v)
            .unwrap()
            .replace('\n', "\n  ")
    }

    #[test]
    fn a_job_is_written_byte_for_byte_as_serde_json_writes_it() {
        let t = Timestamp::from_millis(1_764_806_400_123);
        let full = JobRow {
            name: "nightly \"backup\" \\ tab\t nul\u{0} del\u{7f} é 🦀",
            state: Some(State::Failed),
            since: Some(t),
            consecutive_problems: 3,
            last_run: Some(LastRun {
                id: "r-1\n2",
                state: State::Failed,
                started: Timestamp::from_millis(0),
                ended: Timestamp::from_millis(i64::MAX),
                duration: Some(Duration::from_millis(1_234_567)),
                exit_code: Some(-2),
            }),
            running_since: Some(t),
            last_notification: Some(LastNotification {
                at: t,
                kind: Kind::Problem,
                reason: "first_run\u{1f}",
            }),
            uuid: Some("0b5c1a52-3f0e-4d8e-9a55-2f6c0e9d7b11"),
        };
        let bare = JobRow {
            name: "plain",
            state: None,
            since: None,
            consecutive_problems: 0,
            last_run: Some(LastRun {
                id: "r",
                state: State::Ok,
                started: t,
                ended: t,
                duration: None,
                exit_code: None,
            }),
            running_since: None,
            last_notification: None,
            uuid: None,
        };
        let none = JobRow {
            last_run: None,
            ..bare.clone()
        };
        for j in [full, bare, none] {
            let mut b = Vec::new();
            write_job_json(&mut b, &j);
            assert_eq!(String::from_utf8(b).unwrap(), as_serde_lays_it_out(&j));
        }
    }
}
