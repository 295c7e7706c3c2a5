//! Rendering that every channel shares, free of any one service: the colour family and emoji
//! of a notification, the facts it carries, escaping for each kind of markup, and fitting text
//! into a service's length limit without cutting a character in two.
//!
//! Channels choose a [`TextStyle`] (their markup and limit) and get text that fits: the limit is
//! measured on the rendered text, escaping included, and the output tail is what gives way
//! first (its beginning is cut, its end kept, since the end of a log is where the error is).
//!
//! ```
//! use belfry_core::render::{Limit, Markup, TextStyle, render_text};
//! # use belfry_core::{Decision, Details, Event, Notification, Reason, State, Timestamp};
//! # let ev = Event { job: "backup".into(), state: State::Failed,
//! #     at: Timestamp::from_millis(0), details: Details {
//! #     exit_code: Some(1), output_tail: Some("x <y> & z\n".repeat(500)), ..Details::default() } };
//! # let n = Notification::new("n1".into(), &ev, None,
//! #     &Decision { notify: true, reason: Reason::FirstRun });
//! let style = TextStyle { markup: Markup::Html, title: true, details: true, tail_lines: 50,
//!     limit: Limit::chars(1000) };
//! let text = render_text(&n, &style);
//! assert!(text.starts_with("<b>🔴 backup: Failed</b>\nexit code 1"));
//! assert!(text.chars().count() <= 1000);
//! assert!(text.ends_with("x &lt;y&gt; &amp; z</pre>"));
//! ```

use crate::duration::{duration_from_secs_f64, format_duration};
use crate::{Kind, Notification, State};

/// The colour family of a notification, which channels turn into their own colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A problem (failed, timed out, crashed).
    Critical,
    /// A problem that may sort itself out: a late job.
    Warning,
    /// A recovery.
    Good,
    /// A first successful run, or a "still OK".
    Info,
}

impl Tone {
    /// The colour as `#RRGGBB`.
    pub const fn hex(self) -> &'static str {
        match self {
            Tone::Critical => "#D50200",
            Tone::Warning => "#E8A317",
            Tone::Good => "#2EB886",
            Tone::Info => "#439FE0",
        }
    }

    /// The colour as a number (`0xRRGGBB`), as Discord takes it.
    pub const fn rgb(self) -> u32 {
        match self {
            Tone::Critical => 0xD5_0200,
            Tone::Warning => 0xE8_A317,
            Tone::Good => 0x2E_B886,
            Tone::Info => 0x43_9FE0,
        }
    }
}

/// One labelled detail of a notification (`Exit code`: `2`), for channels that show details
/// as fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The label.
    pub label: &'static str,
    /// The value, as text.
    pub value: String,
}

impl Notification {
    /// The notification's colour family. A message sent by hand keeps its Apprise type: a
    /// warning is amber, a success green.
    pub fn tone(&self) -> Tone {
        match (self.kind, self.apprise_type.as_str()) {
            (Kind::Problem, "warning") => Tone::Warning,
            (Kind::Problem, _) if self.state == State::Late => Tone::Warning,
            (Kind::Problem, _) => Tone::Critical,
            (Kind::Recovered, _) | (Kind::Ok, "success") => Tone::Good,
            (Kind::Ok, _) => Tone::Info,
        }
    }

    /// An emoji for the state: `🔴` failed, `⏱️` timed out, `💥` crashed, `⏰` late, `⚠️` a
    /// warning sent by hand, `✅` recovered (or a success sent by hand), `🟢` OK, `⚪` anything
    /// else.
    pub fn emoji(&self) -> &'static str {
        match (self.kind, self.state, self.apprise_type.as_str()) {
            (Kind::Problem, _, "warning") => "⚠️",
            (Kind::Recovered, _, _) | (Kind::Ok, _, "success") => "✅",
            (Kind::Problem, State::TimedOut, _) => "⏱️",
            (Kind::Problem, State::Crashed, _) => "💥",
            (Kind::Problem, State::Late, _) => "⏰",
            (Kind::Problem, _, _) => "🔴",
            (Kind::Ok, State::Ok, _) => "🟢",
            (Kind::Ok, _, _) => "⚪",
        }
    }

    /// The title with the state's emoji in front: `🔴 nightly-backup: Failed`; empty when the
    /// title is (a message sent by hand may have none, as in Apprise).
    pub fn headline(&self) -> String {
        if self.title.trim().is_empty() {
            return String::new();
        }
        format!("{} {}", self.emoji(), self.title)
    }

    /// The details that are known, labelled, in a fixed order: state, exit code, signal,
    /// duration, host, run, problems in a row.
    pub fn facts(&self) -> Vec<Fact> {
        let mut facts = vec![Fact {
            label: "State",
            value: self.state.label().to_owned(),
        }];
        let mut add = |label, value: Option<String>| {
            if let Some(value) = value {
                facts.push(Fact { label, value });
            }
        };
        add("Exit code", self.exit_code.map(|c| c.to_string()));
        add("Signal", self.signal.map(|s| s.to_string()));
        add(
            "Duration",
            self.duration_seconds
                .map(|s| format_duration(duration_from_secs_f64(s))),
        );
        add("Host", self.host.clone());
        add("Run", self.run_id.clone());
        add(
            "Problems in a row",
            (self.consecutive_problems > 1).then(|| self.consecutive_problems.to_string()),
        );
        facts
    }
}

/// The markup a service reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Markup {
    /// Text as it is.
    Plain,
    /// CommonMark as chat services read it (Discord, Mattermost, Rocket.Chat, Zulip): special
    /// characters are escaped with a backslash.
    Markdown,
    /// Slack's mrkdwn: `&`, `<` and `>` are escaped as entities, bold is `*…*`.
    SlackMrkdwn,
    /// The HTML subset of Telegram: `&`, `<` and `>` are escaped, bold is `<b>`, code `<pre>`.
    Html,
    /// The formatting of Google Chat and Rocket.Chat: bold is `*…*`, code blocks are fenced,
    /// and there are no escapes.
    Basic,
}

impl Markup {
    /// `s` escaped so that the service shows it as written.
    pub fn escape(self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            self.push_escaped(c, &mut out);
        }
        out
    }

    fn push_escaped(self, c: char, out: &mut String) {
        match (self, c) {
            (
                Markup::Markdown,
                '\\' | '`' | '*' | '_' | '~' | '|' | '[' | ']' | '<' | '>' | '#',
            ) => {
                out.push('\\');
                out.push(c);
            }
            (Markup::SlackMrkdwn | Markup::Html, '&') => out.push_str("&amp;"),
            (Markup::SlackMrkdwn | Markup::Html, '<') => out.push_str("&lt;"),
            (Markup::SlackMrkdwn | Markup::Html, '>') => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }

    /// Escaping inside a code block, where only what could end the block matters.
    fn push_escaped_code(self, c: char, out: &mut String) {
        match self {
            Markup::SlackMrkdwn | Markup::Html => self.push_escaped(c, out),
            Markup::Plain | Markup::Markdown | Markup::Basic => out.push(c),
        }
    }

    /// Already escaped text, in bold.
    pub fn bold(self, escaped: &str) -> String {
        match self {
            Markup::Plain => escaped.to_owned(),
            Markup::Markdown => format!("**{escaped}**"),
            Markup::SlackMrkdwn | Markup::Basic => format!("*{escaped}*"),
            Markup::Html => format!("<b>{escaped}</b>"),
        }
    }

    /// What opens and closes a code block.
    fn code_fence(self) -> (&'static str, &'static str) {
        match self {
            Markup::Plain => ("", ""),
            Markup::Markdown => ("```\n", "\n```"),
            Markup::SlackMrkdwn | Markup::Basic => ("```", "```"),
            Markup::Html => ("<pre>", "</pre>"),
        }
    }
}

/// What a length limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Unicode characters (scalar values).
    Chars,
    /// UTF-8 bytes.
    Bytes,
}

/// A service's length limit for one piece of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The most units allowed.
    pub max: usize,
    /// What is counted.
    pub unit: Unit,
}

impl Limit {
    /// At most `max` characters.
    pub const fn chars(max: usize) -> Self {
        Limit {
            max,
            unit: Unit::Chars,
        }
    }

    /// At most `max` UTF-8 bytes.
    pub const fn bytes(max: usize) -> Self {
        Limit {
            max,
            unit: Unit::Bytes,
        }
    }

    /// The size of `s` in this limit's unit.
    pub fn measure(&self, s: &str) -> usize {
        measure(self.unit, s)
    }

    /// The same unit with another maximum.
    pub const fn with_max(self, max: usize) -> Self {
        Limit {
            max,
            unit: self.unit,
        }
    }
}

fn measure(unit: Unit, s: &str) -> usize {
    match unit {
        Unit::Chars => s.chars().count(),
        Unit::Bytes => s.len(),
    }
}

const ELLIPSIS: &str = "…";

/// `s` cut to fit `limit`, keeping its beginning and ending with `…` when cut. Never cuts
/// inside a character.
pub fn truncate(s: &str, limit: Limit) -> String {
    fit(s, limit, Markup::Plain, false, true)
}

/// `s` cut to fit `limit`, keeping its end and starting with `…` when cut. Never cuts inside a
/// character.
pub fn keep_end(s: &str, limit: Limit) -> String {
    fit(s, limit, Markup::Plain, false, false)
}

/// `raw` escaped for `markup` (as code-block content if `code`), cut so that the escaped text
/// fits `limit`. Cuts fall between characters, so never inside a character or an escape.
fn fit(raw: &str, limit: Limit, markup: Markup, code: bool, keep_start: bool) -> String {
    let push = |c: char, out: &mut String| {
        if code {
            markup.push_escaped_code(c, out);
        } else {
            markup.push_escaped(c, out);
        }
    };
    let mut whole = String::with_capacity(raw.len());
    for c in raw.chars() {
        push(c, &mut whole);
    }
    if limit.measure(&whole) <= limit.max {
        return whole;
    }
    let room = match limit.max.checked_sub(limit.measure(ELLIPSIS)) {
        Some(room) => room,
        None => return String::new(),
    };
    let mut pieces: Vec<String> = Vec::new();
    let mut used = 0;
    let mut take = |c: char| {
        let mut piece = String::new();
        push(c, &mut piece);
        let size = limit.measure(&piece);
        if used + size > room {
            return false;
        }
        used += size;
        pieces.push(piece);
        true
    };
    if keep_start {
        for c in raw.chars() {
            if !take(c) {
                break;
            }
        }
        let mut out = pieces.concat();
        out.push_str(ELLIPSIS);
        out
    } else {
        for c in raw.chars().rev() {
            if !take(c) {
                break;
            }
        }
        pieces.reverse();
        format!("{ELLIPSIS}{}", pieces.concat())
    }
}

/// Breaks every run of three backticks with a zero-width space, so that a log cannot close the
/// code block it is shown in.
fn defuse_fences(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            if run == 2 {
                out.push('\u{200B}');
                run = 0;
            }
            run += 1;
        } else {
            run = 0;
        }
        out.push(c);
    }
    out
}

/// How a channel wants a notification's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextStyle {
    /// The service's markup.
    pub markup: Markup,
    /// Start with the headline (emoji and title) in bold; off for services that show the title
    /// apart.
    pub title: bool,
    /// Add the run id and the number of problems in a row.
    pub details: bool,
    /// For a problem, end with this many last lines of the output in a code block (0: none).
    pub tail_lines: usize,
    /// The most the whole text may measure.
    pub limit: Limit,
}

/// The longest headline shown, and the longest summary when output follows; what is left goes
/// to the output.
const HEADLINE_MAX: usize = 256;
const SUMMARY_MAX: usize = 1000;
/// Below this much room the output is left out rather than shown as a few characters.
const TAIL_MIN: usize = 40;

/// A notification's text in `style`: the headline, the summary, the details, and for a problem
/// the end of the output, fitted to the limit after rendering (escapes and markup count).
pub fn render_text(n: &Notification, style: &TextStyle) -> String {
    let markup = style.markup;
    let limit = style.limit;
    let mut lines: Vec<String> = Vec::new();
    let mut left = limit.max;
    let sep = 1; // "\n", one unit in both counts
    let mut push = |line: String, left: &mut usize| {
        let cost = limit.measure(&line) + if lines.is_empty() { 0 } else { sep };
        *left = left.saturating_sub(cost);
        lines.push(line);
    };
    if style.title {
        let wrap = limit.measure(&markup.bold(""));
        let room = left.saturating_sub(wrap).min(HEADLINE_MAX);
        let head = fit(&n.headline(), limit.with_max(room), markup, false, true);
        if !head.is_empty() {
            push(markup.bold(&head), &mut left);
        }
    }
    let shows_tail = n.kind == Kind::Problem
        && style.tail_lines > 0
        && n.output_tail
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty());
    // The summary is one line for an alert; a message sent by hand is all body, and takes
    // whatever room there is.
    let room = left.saturating_sub(sep);
    let room = if shows_tail {
        room.min(SUMMARY_MAX)
    } else {
        room
    };
    let summary = fit(&n.message, limit.with_max(room), markup, false, true);
    if !summary.is_empty() {
        push(summary, &mut left);
    }
    if style.details {
        let mut extra = Vec::new();
        if let Some(run) = &n.run_id {
            extra.push(format!("run {run}"));
        }
        if n.consecutive_problems > 1 {
            extra.push(format!("{} problems in a row", n.consecutive_problems));
        }
        if !extra.is_empty() {
            let line = extra.join(" · ");
            let room = left.saturating_sub(sep);
            if limit.measure(&markup.escape(&line)) <= room {
                push(markup.escape(&line), &mut left);
            }
        }
    }
    if n.kind == Kind::Problem
        && style.tail_lines > 0
        && let Some(tail) = n.tail_lines(style.tail_lines)
    {
        let label = markup.escape("Output (end):");
        let (open, close) = markup.code_fence();
        let overhead = 2 * sep + limit.measure(&label) + limit.measure(open) + limit.measure(close);
        let room = left.saturating_sub(overhead);
        if room >= TAIL_MIN {
            let body = fit(
                &defuse_fences(&tail),
                limit.with_max(room),
                markup,
                true,
                false,
            );
            push(label, &mut left);
            push(format!("{open}{body}{close}"), &mut left);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Details, Event, Reason, Timestamp};

    fn failed(tail: &str) -> Notification {
        let ev = Event {
            job: "nightly_backup".into(),
            state: State::Failed,
            at: Timestamp::from_millis(1_800_000_000_000),
            details: Details {
                run_id: Some("r1".into()),
                exit_code: Some(2),
                duration: Some(std::time::Duration::from_millis(1500)),
                host: Some("db1".into()),
                output_tail: Some(tail.into()),
                ..Details::default()
            },
        };
        Notification::new(
            "n".into(),
            &ev,
            None,
            &Decision {
                notify: true,
                reason: Reason::FirstRun,
            },
        )
    }

    fn style(markup: Markup, limit: Limit) -> TextStyle {
        TextStyle {
            markup,
            title: true,
            details: true,
            tail_lines: 20,
            limit,
        }
    }

    #[test]
    fn each_markup_escapes_what_it_must() {
        assert_eq!(Markup::Plain.escape("a_b <c>"), "a_b <c>");
        assert_eq!(Markup::Markdown.escape("a_b *c*"), r"a\_b \*c\*");
        assert_eq!(Markup::SlackMrkdwn.escape("<a & b>"), "&lt;a &amp; b&gt;");
        assert_eq!(Markup::Html.escape("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(Markup::Basic.escape("*x*"), "*x*");
    }

    #[test]
    fn a_markdown_text_escapes_the_job_name_and_fences_the_output() {
        let n = failed("line 1\nbad ``` fence\nlast line\n");
        let text = render_text(&n, &style(Markup::Markdown, Limit::chars(4000)));
        assert!(
            text.starts_with(r"**🔴 nightly\_backup: Failed**"),
            "{text}"
        );
        assert!(text.contains("run r1"), "{text}");
        // The log's own fence is broken, so exactly two fences remain: ours.
        assert_eq!(text.matches("```").count(), 2, "{text}");
        assert!(text.ends_with("last line\n```"), "{text}");
    }

    #[test]
    fn the_output_gives_way_first_and_its_end_is_kept() {
        let tail: String = (0..400).map(|i| format!("line {i} <&>\n")).collect();
        let n = failed(&tail);
        for limit in [Limit::chars(300), Limit::chars(1000), Limit::bytes(700)] {
            let mut style = style(Markup::Html, limit);
            style.tail_lines = 1000;
            let text = render_text(&n, &style);
            assert!(limit.measure(&text) <= limit.max, "{limit:?}: {text}");
            assert!(text.starts_with("<b>🔴 nightly_backup: Failed</b>"));
            assert!(text.ends_with("line 399 &lt;&amp;&gt;</pre>"), "{text}");
            assert!(text.contains("<pre>…"), "the cut is marked: {text}");
            // No escape is cut in half.
            let inside = &text[text.find("<pre>").unwrap()..];
            assert!(
                !inside.contains("&l…") && !inside.contains("…t;"),
                "{inside}"
            );
        }
    }

    #[test]
    fn a_tiny_limit_drops_the_output_but_still_fits() {
        let n = failed(&"é".repeat(5000));
        for max in [0, 1, 5, 30, 60, 100] {
            for unit_limit in [Limit::chars(max), Limit::bytes(max)] {
                let text = render_text(&n, &style(Markup::Markdown, unit_limit));
                assert!(unit_limit.measure(&text) <= max, "{max}: {text:?}");
            }
        }
    }

    #[test]
    fn cuts_never_fall_inside_a_character() {
        let s = "🦀é".repeat(100);
        for max in 0..40 {
            let t = truncate(&s, Limit::bytes(max));
            assert!(t.len() <= max, "{max}");
            let e = keep_end(&s, Limit::bytes(max));
            assert!(e.len() <= max, "{max}");
            // Slicing succeeded, so both are valid UTF-8 by construction; check the marks.
            if !t.is_empty() {
                assert!(t.ends_with('…'));
                assert!(e.starts_with('…'));
            }
        }
        assert_eq!(truncate("short", Limit::chars(5)), "short");
        assert_eq!(truncate("longer", Limit::chars(5)), "long…");
        assert_eq!(keep_end("longer", Limit::chars(5)), "…nger");
    }

    #[test]
    fn recoveries_and_ok_runs_carry_no_output() {
        let mut n = failed("boom\n");
        n.kind = Kind::Recovered;
        n.state = State::Ok;
        let text = render_text(&n, &style(Markup::Plain, Limit::chars(4000)));
        assert!(text.starts_with("✅ nightly_backup: Failed"), "{text}");
        assert!(!text.contains("boom"), "{text}");
        assert_eq!(n.tone(), Tone::Good);
    }

    #[test]
    fn tones_and_emoji_follow_the_state() {
        let mut n = failed("");
        assert_eq!((n.tone(), n.emoji()), (Tone::Critical, "🔴"));
        n.state = State::Late;
        assert_eq!((n.tone(), n.emoji()), (Tone::Warning, "⏰"));
        n.state = State::TimedOut;
        assert_eq!(n.emoji(), "⏱️");
        n.kind = Kind::Ok;
        n.state = State::Ok;
        assert_eq!((n.tone(), n.emoji()), (Tone::Info, "🟢"));
        assert_eq!(Tone::Critical.rgb(), 0xD50200);
        assert_eq!(Tone::Critical.hex(), "#D50200");
    }

    #[test]
    fn a_message_sent_by_hand_keeps_its_type_and_its_whole_body() {
        use crate::{Adhoc, MessageType};
        let adhoc = |t: MessageType, title: &str, body: &str| {
            Notification::adhoc(
                "a".into(),
                Adhoc {
                    job: "send".into(),
                    title: title.into(),
                    body: body.into(),
                    message_type: t,
                    host: None,
                    reason: "sent",
                    reason_text: "sent by hand".into(),
                    attachments: Vec::new(),
                },
                Timestamp::from_millis(0),
            )
        };
        let w = adhoc(MessageType::Warning, "Disk", "85% full");
        assert_eq!(
            (w.tone(), w.emoji(), w.headline().as_str()),
            (Tone::Warning, "⚠️", "⚠️ Disk")
        );
        let ok = adhoc(MessageType::Success, "Deployed", "v2");
        assert_eq!((ok.tone(), ok.emoji()), (Tone::Good, "✅"));
        let f = adhoc(MessageType::Failure, "", "no title");
        assert_eq!(f.headline(), "");
        let text = render_text(&f, &style(Markup::Html, Limit::chars(100)));
        assert_eq!(text, "no title", "no empty bold line");
        let long = adhoc(MessageType::Info, "Report", &"word ".repeat(1000));
        let text = render_text(&long, &style(Markup::Plain, Limit::chars(3000)));
        assert!(
            text.chars().count() > 2900,
            "the body takes the room: {}",
            text.len()
        );
        assert!(text.chars().count() <= 3000);
    }

    #[test]
    fn facts_list_what_is_known() {
        let n = failed("");
        let facts: Vec<(&str, String)> =
            n.facts().into_iter().map(|f| (f.label, f.value)).collect();
        let want = [
            ("State", "Failed"),
            ("Exit code", "2"),
            ("Duration", "1.5s"),
            ("Host", "db1"),
            ("Run", "r1"),
        ];
        assert_eq!(facts.len(), want.len());
        for ((label, value), (wl, wv)) in facts.iter().zip(want) {
            assert_eq!((*label, value.as_str()), (wl, wv));
        }
    }
}
