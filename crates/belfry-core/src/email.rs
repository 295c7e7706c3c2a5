//! A notification as an e-mail: subject, plain-text and HTML bodies with every detail, and the
//! whole output for attaching when the bodies show only its end.

use crate::Notification;
use crate::duration::{duration_from_secs_f64, format_duration};
use crate::message::Kind;
use crate::sms::one_line;

/// How much of the output an e-mail body shows before the rest goes into an attachment.
pub const EMAIL_OUTPUT_LINES: usize = 200;
/// The same, in bytes.
pub const EMAIL_OUTPUT_BYTES: usize = 16 * 1024;

/// A notification rendered as an e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// `[belfry] nightly-backup: Failed`.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (the same content).
    pub html: String,
    /// The whole kept output, when the bodies show only its end: channels attach it
    /// (gzipped) under [`Email::output_file_name`].
    pub full_output: Option<String>,
    /// A file name for the attached output, e.g. `nightly-backup-output.txt`.
    pub output_file_name: String,
}

/// The e-mail subject: `[belfry] ` and the title.
pub fn subject(n: &Notification) -> String {
    format!("[belfry] {}", one_line(&n.title))
}

/// The details of a notification as (label, value) rows, in reading order; rows without a
/// value are left out.
pub fn detail_rows(n: &Notification) -> Vec<(&'static str, String)> {
    let mut rows = vec![("Job", n.job.clone())];
    let mut state = n.state.label().to_owned();
    if let Some(p) = n.previous_state {
        state.push_str(&format!(" (was {})", p.label()));
    }
    rows.push(("State", state));
    rows.push(("Why you hear of it", n.reason_text.clone()));
    if let Some(c) = n.exit_code {
        rows.push(("Exit code", c.to_string()));
    }
    if let Some(s) = n.signal {
        rows.push(("Signal", s.to_string()));
    }
    if let Some(d) = n.duration_seconds {
        rows.push(("Duration", format_duration(duration_from_secs_f64(d))));
    }
    if let Some(h) = &n.host {
        rows.push(("Host", h.clone()));
    }
    if let Some(r) = &n.run_id {
        rows.push(("Run id", r.clone()));
    }
    if let Some(t) = n.started_at {
        rows.push(("Started", t.to_rfc3339()));
    }
    rows.push(("Finished", n.time.to_rfc3339()));
    if n.consecutive_problems > 0 {
        rows.push(("Problems in a row", n.consecutive_problems.to_string()));
    }
    rows.push(("Notification id", n.id.clone()));
    rows
}

/// The end of `output` that fits in `max_lines` lines and `max_bytes` bytes (cut on a
/// character boundary), and whether that is all of it.
pub fn output_tail(output: &str, max_lines: usize, max_bytes: usize) -> (&str, bool) {
    let trimmed = output.trim_end_matches(['\n', '\r']);
    let mut start = trimmed.len().saturating_sub(max_bytes);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    let mut tail = &trimmed[start..];
    if start > 0 {
        // Begin on a whole line when the byte limit cut one.
        if let Some(i) = tail.find('\n') {
            tail = &tail[i + 1..];
        }
    }
    let lines = tail.matches('\n').count() + 1;
    if lines > max_lines {
        let skip = lines - max_lines;
        let i = tail
            .match_indices('\n')
            .nth(skip - 1)
            .map_or(0, |(i, _)| i + 1);
        tail = &tail[i..];
    }
    let whole = tail.len() == trimmed.len();
    (tail, whole)
}

/// Renders `n` as an e-mail: every detail, the error in full, and the end of the output (the
/// whole output is returned for attaching when the bodies show only its end).
pub fn render(n: &Notification) -> Email {
    let output = n.output_tail.as_deref().filter(|o| !o.trim().is_empty());
    let (shown, whole) = match output {
        Some(o) => {
            let (t, whole) = output_tail(o, EMAIL_OUTPUT_LINES, EMAIL_OUTPUT_BYTES);
            (Some(t), whole)
        }
        None => (None, true),
    };
    let output_file_name = format!("{}-output.txt", file_safe(&n.job));
    let attached_note = (!whole).then(|| {
        format!(
            "The whole kept output ({} bytes) is attached as {output_file_name}.gz.",
            output.map_or(0, str::len)
        )
    });
    let rows = detail_rows(n);

    // Plain text.
    let mut text = format!("{}\n\n{}\n\n", n.title, n.message);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &rows {
        text.push_str(&format!("{k:<width$}  {v}\n"));
    }
    if let Some(e) = &n.error {
        text.push_str("\nError:\n");
        text.push_str(e.trim_end());
        text.push('\n');
    }
    if let Some(t) = shown {
        text.push_str(if whole {
            "\nOutput:\n"
        } else {
            "\nOutput (the end):\n"
        });
        text.push_str(t);
        text.push('\n');
    }
    if let Some(note) = &attached_note {
        text.push('\n');
        text.push_str(note);
        text.push('\n');
    }
    text.push_str("\n-- \nbelfry\n");

    // HTML, with the same content.
    let colour = kind_colour(n.kind);
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:sans-serif;font-size:14px;color:#222\">\n",
    );
    html.push_str(&format!(
        "<div style=\"border-left:6px solid {colour};padding:4px 12px\">\
         <h2 style=\"margin:4px 0;color:{colour}\">{}</h2><p style=\"margin:4px 0\">{}</p></div>\n",
        escape_html(&n.title),
        escape_html(&n.message)
    ));
    html.push_str("<table style=\"border-collapse:collapse;margin:12px 0\">\n");
    for (k, v) in &rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th>\
             <td style=\"padding:2px 0\">{}</td></tr>\n",
            escape_html(k),
            escape_html(v)
        ));
    }
    html.push_str("</table>\n");
    let pre = "<pre style=\"background:#f4f4f4;padding:8px;white-space:pre-wrap\">";
    if let Some(e) = &n.error {
        html.push_str(&format!(
            "<h3>Error</h3>\n{pre}{}</pre>\n",
            escape_html(e.trim_end())
        ));
    }
    if let Some(t) = shown {
        html.push_str(&format!(
            "<h3>{}</h3>\n{pre}{}</pre>\n",
            if whole { "Output" } else { "Output (the end)" },
            escape_html(t)
        ));
    }
    if let Some(note) = &attached_note {
        html.push_str(&format!("<p>{}</p>\n", escape_html(note)));
    }
    html.push_str("<p style=\"color:#888\">belfry</p>\n</body></html>\n");

    Email {
        subject: subject(n),
        text,
        html,
        full_output: (!whole).then(|| output.unwrap_or_default().to_owned()),
        output_file_name,
    }
}

/// The colour of a kind, as chat services and e-mail show it: red, green or blue.
pub const fn kind_colour(kind: Kind) -> &'static str {
    match kind {
        Kind::Problem => "#D50200",
        Kind::Recovered => "#2EB886",
        Kind::Ok => "#439FE0",
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A job name made safe for a file name: letters, digits, `.`, `_` and `-` kept, anything
/// else `_`.
fn file_safe(s: &str) -> String {
    let out: String = s
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('.');
    if out.is_empty() {
        "job".to_owned()
    } else {
        out.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::failed;

    #[test]
    fn the_email_has_every_detail_in_both_bodies() {
        let e = render(&failed());
        assert_eq!(e.subject, "[belfry] nightly-backup: Failed");
        for needle in [
            "Exit code",
            "3",
            "41.2s",
            "db1",
            "r-9",
            "first run of this job",
            "at main()",
            "dumping…",
        ] {
            assert!(e.text.contains(needle), "text lacks {needle}: {}", e.text);
        }
        assert!(e.text.contains("<b>oops</b> & more"));
        assert!(e.html.contains("&lt;b&gt;oops&lt;/b&gt; &amp; more"));
        assert!(!e.html.contains("<b>oops"));
        assert!(e.html.contains("r-9") && e.html.contains("41.2s") && e.html.contains("#D50200"));
        assert_eq!(e.full_output, None, "a short output fits in the body");
    }

    #[test]
    fn a_long_output_shows_its_end_and_is_attached_whole() {
        let mut n = failed();
        let out: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        n.output_tail = Some(out.clone());
        let e = render(&n);
        assert_eq!(e.full_output.as_deref(), Some(out.as_str()));
        assert_eq!(e.output_file_name, "nightly-backup-output.txt");
        assert!(e.text.contains("line 999\n"));
        assert!(e.text.contains("line 800\n"));
        assert!(!e.text.contains("line 799\n"));
        assert!(e.text.contains("attached as nightly-backup-output.txt.gz"));
    }

    #[test]
    fn output_tails_are_cut_on_lines_and_characters() {
        assert_eq!(output_tail("a\nb\nc\n", 2, 100), ("b\nc", false));
        assert_eq!(output_tail("a\nb\n", 5, 100), ("a\nb", true));
        let s = "ééé\nabc";
        assert_eq!(output_tail(s, 10, 4), ("abc", false));
    }
}
