//! Rendering a [`Notification`] for people, per kind of channel: a one-segment SMS, an e-mail
//! subject with plain-text and HTML bodies, and the named values that command templates use.
//!
//! Everything here is pure: channels call it and do the sending.

use std::time::Duration;

use crate::Notification;
use crate::duration::format_duration;
use crate::message::Kind;

// ---------------------------------------------------------------------------------------------
// SMS

/// How an SMS is encoded on the air, which sets how much fits in one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 03.38 alphabet: 160 septets per single segment (`€`, `[`, `{` … take two).
    Gsm7,
    /// Anything else: UCS-2, 70 UTF-16 code units per single segment.
    Ucs2,
}

impl SmsEncoding {
    /// What fits in a message sent as one segment.
    pub const fn single_segment(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => 160,
            SmsEncoding::Ucs2 => 70,
        }
    }
}

/// The GSM 03.38 basic alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table (an escape plus the character: two septets each).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// The septets `c` takes in GSM-7, or `None` if GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding a phone network would use for `text`.
pub fn sms_encoding(text: &str) -> SmsEncoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// The length of `text` in `encoding`'s units: septets, or UTF-16 code units (a character
/// outside the Basic Multilingual Plane, such as most emoji, takes two).
pub fn sms_units(text: &str, encoding: SmsEncoding) -> usize {
    text.chars()
        .map(|c| match encoding {
            SmsEncoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
            SmsEncoding::Ucs2 => c.len_utf16(),
        })
        .sum()
}

/// Typographic characters with a GSM-7 stand-in: using them would switch a whole message to
/// UCS-2 and cut what fits in one segment from 160 to 70.
fn gsm7_friendly(c: char) -> Option<&'static str> {
    Some(match c {
        '—' | '–' | '‐' | '−' => "-",
        '…' => "...",
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' => "\"",
        '\u{a0}' | '\t' => " ",
        '·' | '•' => "*",
        _ => return None,
    })
}

/// A character that belongs to the one before it (a combining accent, a joiner, a variation
/// selector, a skin tone): cutting just before it would split what a reader sees as one
/// character.
fn continues_previous(c: char) -> bool {
    matches!(c,
        '\u{300}'..='\u{36f}'
        | '\u{1ab0}'..='\u{1aff}'
        | '\u{1dc0}'..='\u{1dff}'
        | '\u{200c}'..='\u{200d}'
        | '\u{20d0}'..='\u{20ff}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{fe20}'..='\u{fe2f}'
        | '\u{1f3fb}'..='\u{1f3ff}'
        | '\u{e0020}'..='\u{e007f}')
}

/// `text` made to fit one SMS segment: typographic punctuation replaced by GSM-7 stand-ins,
/// then, if still too long, cut with an ellipsis (`...` in GSM-7, `…` in UCS-2). The cut is
/// always between characters, and never separates a character from the accents, joiners or
/// modifiers that follow it.
pub fn fit_sms(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match gsm7_friendly(c) {
            Some(r) => s.push_str(r),
            None => s.push(c),
        }
    }
    let enc = sms_encoding(&s);
    let limit = enc.single_segment();
    if sms_units(&s, enc) <= limit {
        return s;
    }
    let ellipsis = match enc {
        SmsEncoding::Gsm7 => "...",
        SmsEncoding::Ucs2 => "…",
    };
    let budget = limit - sms_units(ellipsis, enc);
    let mut used = 0;
    let mut cut = 0;
    for (i, c) in s.char_indices() {
        let u = match enc {
            SmsEncoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
            SmsEncoding::Ucs2 => c.len_utf16(),
        };
        if used + u > budget {
            break;
        }
        used += u;
        cut = i + c.len_utf8();
    }
    // Back up while the first character left out belongs to the last one kept, or the last
    // one kept is a joiner waiting for its next.
    while cut > 0
        && (s[cut..].chars().next().is_some_and(continues_previous)
            || s[..cut].ends_with('\u{200d}'))
    {
        cut = s[..cut].char_indices().next_back().map_or(0, |(i, _)| i);
    }
    let mut out = s[..cut].trim_end().to_owned();
    out.push_str(ellipsis);
    out
}

/// The SMS for a notification, one segment long: state, job, host and the one-line reason,
/// most important first, e.g. `FAILED nightly-backup on db1: exit code 3; first run of this
/// job`.
pub fn sms(n: &Notification) -> String {
    let state = match n.kind {
        Kind::Recovered => "RECOVERED".to_owned(),
        _ => n.state.label().to_uppercase(),
    };
    let mut s = format!("{state} {}", one_line(&shorten_chars(&n.job, 60)));
    if let Some(h) = &n.host {
        s.push_str(" on ");
        s.push_str(&one_line(h));
    }
    s.push_str(": ");
    match n.kind {
        Kind::Problem => {
            s.push_str(&one_line(&n.outcome_phrase()));
            s.push_str("; ");
            s.push_str(&n.reason_text);
        }
        Kind::Recovered | Kind::Ok => s.push_str(&n.reason_text),
    }
    fit_sms(&s)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}...", &s[..i]),
    }
}

// ---------------------------------------------------------------------------------------------
// E-mail

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
pub fn email_subject(n: &Notification) -> String {
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
        rows.push(("Duration", format_duration(secs(d))));
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

fn secs(d: f64) -> Duration {
    Duration::try_from_secs_f64(d.max(0.0)).unwrap_or(Duration::MAX)
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
pub fn email(n: &Notification) -> Email {
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
        subject: email_subject(n),
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

// ---------------------------------------------------------------------------------------------
// Named values, for command templates

/// The names a template may use, each the value of [`variable`].
pub const VARIABLES: &[&str] = &[
    "id",
    "kind",
    "type",
    "job",
    "state",
    "state_label",
    "previous_state",
    "reason",
    "reason_text",
    "title",
    "message",
    "body",
    "exit_code",
    "signal",
    "duration",
    "duration_seconds",
    "host",
    "run_id",
    "started_at",
    "time",
    "consecutive_problems",
    "error",
    "output_tail",
    "sms",
    "text",
];

/// The value of the named variable for `n`, as text; `Some("")` for a value this notification
/// does not have (no exit code after a signal), `None` for a name that is not in
/// [`VARIABLES`].
///
/// `body` is the one-line `message` (Apprise's body), `sms` the one-segment SMS text, and
/// `text` the whole plain-text e-mail body.
pub fn variable(n: &Notification, name: &str) -> Option<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    Some(match name {
        "id" => n.id.clone(),
        "kind" => kind_name(n.kind).to_owned(),
        "type" => n.apprise_type.clone(),
        "job" => n.job.clone(),
        "state" => n.state.name().to_owned(),
        "state_label" => n.state.label().to_owned(),
        "previous_state" => opt(n.previous_state.map(|s| s.name().to_owned())),
        "reason" => n.reason.clone(),
        "reason_text" => n.reason_text.clone(),
        "title" => n.title.clone(),
        "message" | "body" => n.message.clone(),
        "exit_code" => opt(n.exit_code.map(|c| c.to_string())),
        "signal" => opt(n.signal.map(|s| s.to_string())),
        "duration" => opt(n.duration_seconds.map(|d| format_duration(secs(d)))),
        "duration_seconds" => opt(n.duration_seconds.map(|d| format!("{d:.3}"))),
        "host" => opt(n.host.clone()),
        "run_id" => opt(n.run_id.clone()),
        "started_at" => opt(n.started_at.map(|t| t.to_rfc3339())),
        "time" => n.time.to_rfc3339(),
        "consecutive_problems" => n.consecutive_problems.to_string(),
        "error" => opt(n.error.clone()),
        "output_tail" => opt(n.output_tail.clone()),
        "sms" => sms(n),
        "text" => email(n).text,
        _ => return None,
    })
}

const fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Problem => "problem",
        Kind::Recovered => "recovered",
        Kind::Ok => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Details, Event, Reason, State, Timestamp};

    fn notification(state: State, reason: Reason, details: Details) -> Notification {
        let ev = Event {
            job: "nightly-backup".into(),
            state,
            at: Timestamp::from_millis(1_800_000_000_000),
            details,
        };
        Notification::new(
            "n-1".into(),
            &ev,
            None,
            &Decision {
                notify: true,
                reason,
            },
        )
    }

    fn failed() -> Notification {
        notification(
            State::Failed,
            Reason::FirstRun,
            Details {
                run_id: Some("r-9".into()),
                exit_code: Some(3),
                duration: Some(Duration::from_millis(41_200)),
                host: Some("db1".into()),
                error: Some("pg_dump: connection refused\n  at dump()\n  at main()".into()),
                output_tail: Some("dumping…\n<b>oops</b> & more\n".into()),
                ..Details::default()
            },
        )
    }

    #[test]
    fn gsm7_and_ucs2_are_told_apart_and_counted_in_their_units() {
        assert_eq!(sms_encoding("Hello @ £5 é"), SmsEncoding::Gsm7);
        assert_eq!(sms_units("a€[", SmsEncoding::Gsm7), 5);
        assert_eq!(sms_encoding("backup ✓"), SmsEncoding::Ucs2);
        assert_eq!(sms_units("a😀", SmsEncoding::Ucs2), 3);
    }

    #[test]
    fn an_sms_states_the_state_job_host_and_reason_in_one_segment() {
        let s = sms(&failed());
        assert_eq!(
            s,
            "FAILED nightly-backup on db1: exit code 3: pg_dump: connection refused; first run \
             of this job"
        );
        assert_eq!(sms_encoding(&s), SmsEncoding::Gsm7);
        let rec = notification(
            State::Ok,
            Reason::Recovered { after: 2 },
            Details::default(),
        );
        assert_eq!(
            sms(&rec),
            "RECOVERED nightly-backup: recovered after 2 problem runs"
        );
    }

    #[test]
    fn typographic_punctuation_keeps_an_sms_in_gsm7() {
        assert_eq!(fit_sms("a — b… “c”"), "a - b... \"c\"");
    }

    #[test]
    fn a_long_gsm7_sms_is_cut_to_160_septets_with_an_ellipsis() {
        let long = "x".repeat(300);
        let s = fit_sms(&long);
        assert_eq!(sms_units(&s, SmsEncoding::Gsm7), 160);
        assert!(s.ends_with("..."));
        // Extension characters count twice: 100 of them are 200 septets.
        let s = fit_sms(&"€".repeat(100));
        assert_eq!(sms_encoding(&s), SmsEncoding::Gsm7);
        assert!(sms_units(&s, SmsEncoding::Gsm7) <= 160, "{s}");
        assert_eq!(s, format!("{}...", "€".repeat(78)));
    }

    #[test]
    fn a_ucs2_sms_is_cut_to_70_units_never_inside_a_character() {
        // Emoji outside the BMP take two UTF-16 units each: 69 units of budget hold 34.
        let s = fit_sms(&"😀".repeat(100));
        assert_eq!(sms_units(&s, SmsEncoding::Ucs2), 69);
        assert_eq!(s, format!("{}…", "😀".repeat(34)));
        // A base letter and its combining accent stay together or go together.
        let text = format!("{}e\u{301}tude", "б".repeat(68));
        let s = fit_sms(&text);
        assert!(sms_units(&s, SmsEncoding::Ucs2) <= 70);
        assert_eq!(s, format!("{}…", "б".repeat(68)));
        // A family joined by zero-width joiners is one character to a reader: kept whole or
        // left out whole.
        let fam = "👩\u{200d}👩\u{200d}👧";
        let s = fit_sms(&format!("{}{fam}", "ж".repeat(64)));
        assert_eq!(s, format!("{}…", "ж".repeat(64)));
    }

    #[test]
    fn the_email_has_every_detail_in_both_bodies() {
        let e = email(&failed());
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
        let e = email(&n);
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

    #[test]
    fn variables_cover_the_documented_names_and_nothing_else() {
        let n = failed();
        for name in VARIABLES {
            assert!(variable(&n, name).is_some(), "{name}");
        }
        assert_eq!(variable(&n, "job").as_deref(), Some("nightly-backup"));
        assert_eq!(variable(&n, "exit_code").as_deref(), Some("3"));
        assert_eq!(variable(&n, "signal").as_deref(), Some(""));
        assert_eq!(variable(&n, "state").as_deref(), Some("failed"));
        assert_eq!(variable(&n, "kind").as_deref(), Some("problem"));
        assert_eq!(variable(&n, "nope"), None);
    }
}
