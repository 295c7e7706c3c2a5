//! A notification as an SMS: one segment, most important first, never cut inside a
//! character.

use crate::Notification;
use crate::message::Kind;

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
pub fn encoding(text: &str) -> SmsEncoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// The length of `text` in `encoding`'s units: septets, or UTF-16 code units (a character
/// outside the Basic Multilingual Plane, such as most emoji, takes two).
pub fn units(text: &str, encoding: SmsEncoding) -> usize {
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
pub fn fit(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match gsm7_friendly(c) {
            Some(r) => s.push_str(r),
            None => s.push(c),
        }
    }
    let enc = encoding(&s);
    let limit = enc.single_segment();
    if units(&s, enc) <= limit {
        return s;
    }
    let ellipsis = match enc {
        SmsEncoding::Gsm7 => "...",
        SmsEncoding::Ucs2 => "…",
    };
    let budget = limit - units(ellipsis, enc);
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
pub fn render(n: &Notification) -> String {
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
        // The state leads: the cause, if there is more to say, then the reason.
        Kind::Problem => {
            if let Some(cause) = n.cause() {
                s.push_str(&one_line(&cause));
                s.push_str("; ");
            }
            s.push_str(&n.reason_text);
        }
        Kind::Recovered | Kind::Ok => s.push_str(&n.reason_text),
    }
    fit(&s)
}

/// `s` on one line: white space runs, new lines included, become one space.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}...", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{failed, notification};
    use crate::{Details, Reason, State};

    #[test]
    fn gsm7_and_ucs2_are_told_apart_and_counted_in_their_units() {
        assert_eq!(encoding("Hello @ £5 é"), SmsEncoding::Gsm7);
        assert_eq!(units("a€[", SmsEncoding::Gsm7), 5);
        assert_eq!(encoding("backup ✓"), SmsEncoding::Ucs2);
        assert_eq!(units("a😀", SmsEncoding::Ucs2), 3);
    }

    #[test]
    fn an_sms_states_the_state_job_host_and_reason_in_one_segment() {
        let s = render(&failed());
        assert_eq!(
            s,
            "FAILED nightly-backup on db1: exit code 3: pg_dump: connection refused; first run \
             of this job"
        );
        assert_eq!(encoding(&s), SmsEncoding::Gsm7);
        let rec = notification(
            State::Ok,
            Reason::Recovered { after: 2 },
            Details::default(),
        );
        assert_eq!(
            render(&rec),
            "RECOVERED nightly-backup: was a problem for 2 runs"
        );
    }

    #[test]
    fn typographic_punctuation_keeps_an_sms_in_gsm7() {
        assert_eq!(fit("a — b… “c”"), "a - b... \"c\"");
    }

    #[test]
    fn a_long_gsm7_sms_is_cut_to_160_septets_with_an_ellipsis() {
        let long = "x".repeat(300);
        let s = fit(&long);
        assert_eq!(units(&s, SmsEncoding::Gsm7), 160);
        assert!(s.ends_with("..."));
        // Extension characters count twice: 100 of them are 200 septets.
        let s = fit(&"€".repeat(100));
        assert_eq!(encoding(&s), SmsEncoding::Gsm7);
        assert!(units(&s, SmsEncoding::Gsm7) <= 160, "{s}");
        assert_eq!(s, format!("{}...", "€".repeat(78)));
    }

    #[test]
    fn a_ucs2_sms_is_cut_to_70_units_never_inside_a_character() {
        // Emoji outside the BMP take two UTF-16 units each: 69 units of budget hold 34.
        let s = fit(&"😀".repeat(100));
        assert_eq!(units(&s, SmsEncoding::Ucs2), 69);
        assert_eq!(s, format!("{}…", "😀".repeat(34)));
        // A base letter and its combining accent stay together or go together.
        let text = format!("{}e\u{301}tude", "б".repeat(68));
        let s = fit(&text);
        assert!(units(&s, SmsEncoding::Ucs2) <= 70);
        assert_eq!(s, format!("{}…", "б".repeat(68)));
        // A family joined by zero-width joiners is one character to a reader: kept whole or
        // left out whole.
        let fam = "👩\u{200d}👩\u{200d}👧";
        let s = fit(&format!("{}{fam}", "ж".repeat(64)));
        assert_eq!(s, format!("{}…", "ж".repeat(64)));
    }
}
