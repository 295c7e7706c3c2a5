//! Secrets, and scrubbing them out of text in every form they travel in.
//!
//! A [`Secrets`] set holds values (a token, a password, a part of a channel URL) and scrubs
//! them out of any text belfry prints or stores about a channel: a failure reason that quotes
//! the service's answer, an error, a description. The service may quote the request back in
//! another form than the one belfry knows, so scrubbing looks for each value
//!
//! - as it is, and percent-decoded (a value written encoded in a URL is sent decoded);
//! - base64-encoded, as belfry sends credentials (`Authorization: Basic …` is
//!   `base64(user:pass)`, SMTP's `AUTH PLAIN` is `base64(\0user\0pass)`), whole, and inside a
//!   longer base64 text at any of the three alignments (see [`Secrets::scrub`] for the limit);
//! - in the text as it is and in the text decoded, up to two layers deep, from
//!   percent-encoding (with and without `+` for a space), JSON string escapes (`\"`, `\/`,
//!   `\u00e9`, …) and HTML character references (`&amp;`, `&#39;`, …), so that an error page
//!   that echoes the URL percent-encoded, or a JSON body that quotes a JSON body, hides nothing;
//! - cut short: where a reason was shortened (it ends in `…`) or the text ends, a tail that
//!   begins a secret form is hidden too.
//!
//! Each match is replaced by `***` in the original text.
//!
//! ```
//! use belfry_channels::Secrets;
//!
//! let s = Secrets::of_url("json://alice:hunter22@hooks.example.com/x/tok-0123456789");
//! // The receiver echoes the Authorization header and the path, percent-encoded, in JSON.
//! let echoed = r#"{"auth":"Basic YWxpY2U6aHVudGVyMjI=","path":"%2Fx%2Ftok%2D0123456789"}"#;
//! assert_eq!(s.scrub(echoed), r#"{"auth":"Basic ***","path":"%2Fx%2F***"}"#);
//! // The host the description shows stays.
//! assert_eq!(s.scrub("cannot reach hooks.example.com"), "cannot reach hooks.example.com");
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::Outcome;
use crate::url_parse::{decode, query_pairs, redact_url};

/// Values shorter than this are not scrubbed from text: replacing every `a` or `42` in every
/// message would mangle it, and a value that short protects nothing. (The URL redaction of
/// the channels still hides it where it is a password or a token.)
pub const MIN_SCRUBBED_LEN: usize = 3;

/// Parts of a channel URL that are not known to be secret (path segments, option values) are
/// scrubbed from this length up, so that short words (`hooks`, `api`, `ops`) stay readable.
const MIN_URL_PART_LEN: usize = 6;

/// A value's base64 seen at a shifted alignment, inside a longer base64 text, is scrubbed when
/// at least this many characters come from the value alone: shorter runs would match by
/// chance in ordinary text.
const MIN_SHIFTED_BASE64: usize = 6;

/// Where text was cut, a tail at least this long that begins a secret form is hidden.
const MIN_CUT_PREFIX: usize = 4;

/// Texts are searched form by form (`memmem`), without an automaton, until the lengths of the
/// texts so searched times the number of forms add up to this: about what building the
/// automaton costs. The few texts a process scrubs at start (a channel's description,
/// `belfry config check`'s table) stay below it (with ten channels, building automata had been
/// half of `config check`'s time); a process that scrubs many failure reasons builds the
/// automaton once and searches every later text in one pass.
const NAIVE_SEARCH_BUDGET: usize = 256 * 1024;

/// How many layers of encoding are taken off a text (JSON inside JSON, a percent-encoded
/// URL inside a JSON string).
const MAX_DECODE_DEPTH: usize = 2;

/// The mark [`crate::shorten`] leaves where it cut.
const CUT: &[u8] = "…".as_bytes();

/// Values to hide wherever text about a channel is printed or stored. Its `Debug` shows how
/// many forms it holds, never a value.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Every byte string to hide, sorted and without duplicates.
    forms: Vec<Vec<u8>>,
    /// Made on first use, dropped when a value is added.
    matcher: OnceLock<Arc<Matcher>>,
}

struct Matcher {
    /// Built once the texts searched form by form have used up [`NAIVE_SEARCH_BUDGET`]
    /// (`None`: it could not be).
    automaton: OnceLock<Option<AhoCorasick>>,
    /// What the searches form by form have cost so far, in text bytes times forms.
    naive_spent: AtomicUsize,
    /// Whether a form holds a `*`, so that a mask next to text could form it anew.
    has_star: bool,
    /// The forms longer than [`MIN_CUT_PREFIX`] by their first bytes, to find a form cut
    /// short without trying each.
    starts: HashMap<[u8; MIN_CUT_PREFIX], Vec<usize>>,
    /// The longest form's length.
    longest: usize,
}

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        self.forms == other.forms
    }
}

impl Eq for Secrets {}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} forms hidden)", self.forms.len())
    }
}

impl Secrets {
    /// The secrets of one channel URL (see [`Secrets::add_url`]).
    pub fn of_url(raw: &str) -> Secrets {
        let mut s = Secrets::default();
        s.add_url(raw);
        s
    }

    /// Adds a value known to be secret (a resolved `${env:…}`), and its percent-decoded form,
    /// if it has at least [`MIN_SCRUBBED_LEN`] characters.
    pub fn add(&mut self, value: &str) {
        self.add_min(value, MIN_SCRUBBED_LEN);
    }

    /// Adds what may be secret in a channel URL: its password (and the base64 of `user:pass`
    /// and `\0user\0pass`, as Basic authentication and SMTP send them); for every scheme but
    /// e-mail, also every other part of six characters or more (tokens in the host, the path
    /// or an option value) except the user and host names the channel's description shows.
    /// `cmd://`, `file://`, `console://` and `desktop://` URLs hold no secret of their own
    /// (a command's secret arguments come from references).
    pub fn add_url(&mut self, raw: &str) {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once("://") else {
            return;
        };
        let scheme = scheme.to_ascii_lowercase();
        if matches!(
            scheme.as_str(),
            "cmd" | "console" | "stderr" | "file" | "desktop"
        ) {
            return;
        }
        // The user information, as the URL's own redaction reads it.
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((user, pass)) = userinfo.split_once(':')
            && !pass.is_empty()
        {
            self.add(pass);
            let (user, pass) = (decode(user), decode(pass));
            for joined in [format!("{user}:{pass}"), format!("\0{user}\0{pass}")] {
                self.add_base64_forms(joined.as_bytes());
            }
            self.matcher = OnceLock::new();
        }
        if matches!(scheme.as_str(), "mailto" | "mailtos") {
            // Addresses and the server are not secret, and hiding them would hide what a
            // mail server's refusal is about.
            return;
        }
        // What the description shows (a user name, a server's name) is not secret.
        let describe = redact_url(raw);
        let shown = describe
            .split_once("://")
            .map_or("", |(_, r)| r)
            .trim_start_matches("***@");
        let (shown_user, shown) = shown.rsplit_once(":***@").unwrap_or(("", shown));
        let shown_host = shown.split(['/', '@']).next().unwrap_or("");
        let public = |s: &str| {
            (!shown_user.starts_with("***") && s == shown_user)
                || (!shown_host.starts_with("***")
                    && !shown_host.is_empty()
                    && (s == shown_host || shown_host.split(':').next() == Some(s)))
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parts: Vec<String> = Vec::new();
        // Whole tokens (a Telegram token is `id:secret`), then their parts.
        for part in location.split(['/', '@', ',']) {
            parts.push(part.trim_start_matches('#').to_owned());
            parts.extend(part.split(':').map(str::to_owned));
        }
        parts.extend(
            query_pairs(&format!("?{query}"))
                .into_iter()
                .map(|(_, v)| v),
        );
        for p in parts {
            if !public(&p) && !public(&decode(&p)) {
                self.add_min(&p, MIN_URL_PART_LEN);
            }
        }
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for f in &other.forms {
            self.insert(f.clone());
        }
        self.matcher = OnceLock::new();
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every secret replaced by `***`, in every form: as it is, percent-decoded,
    /// base64-encoded, and inside the text's JSON, percent and HTML escapes.
    ///
    /// The limit for base64: a value inside a longer base64 text is found at any alignment
    /// when at least six characters come from the value alone (values of five bytes or more;
    /// shorter ones only when they start the text); the character at either end that mixes
    /// the value's first or last byte with its neighbours stays, and with it up to four bits
    /// of that byte.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.forms.is_empty() {
            return Cow::Borrowed(text);
        }
        // Should the automaton fail to build or search, everything is hidden rather than
        // risk a secret.
        let m = self.matcher();
        let mut out = Cow::Borrowed(text);
        loop {
            let Some(ranges) = self.find(&m, &out) else {
                return Cow::Owned("***".into());
            };
            if ranges.is_empty() {
                return out;
            }
            out = Cow::Owned(mask(&out, ranges));
            // A mask next to text can only form a secret anew if a secret holds a `*`; each
            // round hides at least one other character, so this ends.
            if !m.has_star {
                return out;
            }
        }
    }

    /// An outcome whose reason is scrubbed.
    pub(crate) fn scrub_outcome(&self, o: Outcome) -> Outcome {
        match o {
            Outcome::Delivered => Outcome::Delivered,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.scrub(&reason).into_owned(),
            },
            Outcome::Permanent { reason } => Outcome::Permanent {
                reason: self.scrub(&reason).into_owned(),
            },
        }
    }

    fn add_min(&mut self, value: &str, min: usize) {
        let decoded = decode(value);
        for v in [value, decoded.as_str()] {
            if v.chars().count() >= min {
                self.insert(v.as_bytes().to_vec());
                self.add_base64_forms(v.as_bytes());
            }
        }
        self.matcher = OnceLock::new();
    }

    /// The base64 of `value` whole (with and without padding), and the characters that come
    /// from `value` alone when it sits at each of the three alignments in a longer text.
    fn add_base64_forms(&mut self, value: &[u8]) {
        if value.is_empty() {
            return;
        }
        self.insert(STANDARD.encode(value).into_bytes());
        self.insert(STANDARD_NO_PAD.encode(value).into_bytes());
        for offset in 0..3 {
            let mut shifted = vec![0; offset];
            shifted.extend_from_slice(value);
            let encoded = STANDARD_NO_PAD.encode(&shifted);
            let start = (8 * offset).div_ceil(6);
            let end = 8 * shifted.len() / 6;
            if end >= start + MIN_SHIFTED_BASE64 {
                self.insert(encoded.as_bytes()[start..end].to_vec());
            }
        }
    }

    fn insert(&mut self, form: Vec<u8>) {
        // A form of nothing but `*` is what a mask looks like: it cannot be told apart.
        if form.iter().all(|&b| b == b'*') {
            return;
        }
        if let Err(i) = self.forms.binary_search(&form) {
            self.forms.insert(i, form);
        }
    }

    /// What searches text for the forms, made on first use.
    fn matcher(&self) -> Arc<Matcher> {
        self.matcher
            .get_or_init(|| {
                Arc::new(Matcher {
                    automaton: OnceLock::new(),
                    naive_spent: AtomicUsize::new(0),
                    has_star: self.forms.iter().any(|f| f.contains(&b'*')),
                    starts: cut_starts(&self.forms),
                    longest: self.forms.iter().map(Vec::len).max().unwrap_or(0),
                })
            })
            .clone()
    }

    /// Where each form occurs in `hay`, overlapping occurrences included; `None` if the
    /// automaton could not be built or search.
    fn occurrences(&self, m: &Matcher, hay: &[u8]) -> Option<Vec<(usize, usize)>> {
        if self.naive(m, hay) {
            return Some(
                self.forms
                    .iter()
                    .flat_map(|f| overlapping(hay, f))
                    .collect(),
            );
        }
        // A contiguous NFA rather than a DFA: it is built several times faster, and the texts
        // scrubbed (failure reasons, a few hundred bytes) are searched in microseconds either way.
        let automaton = m
            .automaton
            .get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&self.forms)
                    .ok()
            })
            .as_ref()?;
        automaton
            .try_find_overlapping_iter(hay)
            .ok()
            .map(|hits| hits.map(|h| (h.start(), h.end())).collect())
    }

    /// Whether `hay` is searched form by form: while no automaton is built and such searches
    /// stay within [`NAIVE_SEARCH_BUDGET`] (`hay`'s included).
    fn naive(&self, m: &Matcher, hay: &[u8]) -> bool {
        if m.automaton.get().is_some() {
            return false;
        }
        let cost = hay.len().saturating_mul(self.forms.len());
        let before = m.naive_spent.fetch_add(cost, Ordering::Relaxed);
        before.saturating_add(cost) <= NAIVE_SEARCH_BUDGET
    }

    /// Byte ranges of `text` that hold a secret form, in any view of it; `None` if the
    /// matcher could not search.
    fn find(&self, m: &Matcher, text: &str) -> Option<Vec<(usize, usize)>> {
        let mut ranges = Vec::new();
        let mut views = vec![View {
            bytes: text.as_bytes().to_vec(),
            source: None,
            depth: 0,
        }];
        let mut i = 0;
        while i < views.len() {
            let v = &views[i];
            for (start, end) in self.occurrences(m, &v.bytes)? {
                ranges.push(v.span(start, end));
            }
            // Where the text was cut: the tail before the mark (or the end) may begin a form.
            // If the cut fell inside an escape (`%4`, `\u00`, `&#3`, or `\%` of one inside
            // another), the form may end before any escape's start close to the cut.
            let cuts = find_all(&v.bytes, CUT).chain(std::iter::once(v.bytes.len()));
            for at in cuts {
                let unfinished = (at.saturating_sub(12)..at)
                    .filter(|&j| matches!(v.bytes[j], b'%' | b'\\' | b'&'));
                for end in std::iter::once(at).chain(unfinished) {
                    if let Some(k) = self.longest_cut_form(m, &v.bytes[..end]) {
                        ranges.push(v.span(end - k, at));
                    }
                }
            }
            if v.depth < MAX_DECODE_DEPTH {
                let decoded: Vec<View> = DECODERS
                    .iter()
                    .filter_map(|d| d(&v.bytes))
                    .map(|(bytes, spans)| v.under(bytes, spans))
                    .collect();
                views.extend(decoded);
            }
            i += 1;
        }
        Some(ranges)
    }

    /// The length of the longest tail of `head` (at least [`MIN_CUT_PREFIX`]) that begins a
    /// form without completing it.
    fn longest_cut_form(&self, m: &Matcher, head: &[u8]) -> Option<usize> {
        let last = head.len().checked_sub(MIN_CUT_PREFIX)?;
        // From the longest tail down: the first that begins a form is the longest.
        (head.len().saturating_sub(m.longest)..=last).find_map(|start| {
            let key: [u8; MIN_CUT_PREFIX] = head[start..start + MIN_CUT_PREFIX].try_into().ok()?;
            let tail = &head[start..];
            m.starts.get(&key)?.iter().find_map(|&i| {
                let f = &self.forms[i];
                (tail.len() < f.len() && f.starts_with(tail)).then_some(tail.len())
            })
        })
    }
}

/// The forms longer than [`MIN_CUT_PREFIX`], by their first [`MIN_CUT_PREFIX`] bytes.
fn cut_starts(forms: &[Vec<u8>]) -> HashMap<[u8; MIN_CUT_PREFIX], Vec<usize>> {
    let mut starts: HashMap<[u8; MIN_CUT_PREFIX], Vec<usize>> = HashMap::new();
    for (i, f) in forms.iter().enumerate() {
        if f.len() > MIN_CUT_PREFIX
            && let Ok(key) = <[u8; MIN_CUT_PREFIX]>::try_from(&f[..MIN_CUT_PREFIX])
        {
            starts.entry(key).or_default().push(i);
        }
    }
    starts
}

/// Every occurrence of `form` in `hay` as a byte range, overlapping ones included (as the
/// automaton reports them: `aaa` twice in `aaaa`).
fn overlapping<'h>(hay: &'h [u8], form: &'h [u8]) -> impl Iterator<Item = (usize, usize)> + 'h {
    let finder = memchr::memmem::Finder::new(form);
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + finder.find(hay.get(from..)?)?;
        from = at + 1;
        Some((at, at + form.len()))
    })
}

/// Where each occurrence of `needle` in `hay` starts.
fn find_all<'h>(hay: &'h [u8], needle: &'h [u8]) -> impl Iterator<Item = usize> + 'h {
    hay.windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
}

/// A text, or the text decoded once or twice, with where each byte came from.
struct View {
    bytes: Vec<u8>,
    /// For each byte, its range in the original text; `None` for the original itself.
    source: Option<Vec<(usize, usize)>>,
    depth: usize,
}

impl View {
    /// The range of the original text that bytes `start..end` of this view came from.
    fn span(&self, start: usize, end: usize) -> (usize, usize) {
        match &self.source {
            None => (start, end),
            Some(s) => (s[start].0, s[end - 1].1),
        }
    }

    /// A decoding of this view: `spans` are ranges of this view's bytes.
    fn under(&self, bytes: Vec<u8>, spans: Vec<(usize, usize)>) -> View {
        let source = spans.into_iter().map(|(a, b)| self.span(a, b)).collect();
        View {
            bytes,
            source: Some(source),
            depth: self.depth + 1,
        }
    }
}

/// Decoded bytes, and for each the range of the input it came from.
type Decoded = (Vec<u8>, Vec<(usize, usize)>);

/// A decoder: `None` when it would change nothing.
type Decoder = fn(&[u8]) -> Option<Decoded>;

/// The encodings taken off a text.
const DECODERS: [Decoder; 4] = [
    |b| percent(b, false),
    |b| percent(b, true),
    json_string,
    html,
];

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// What one escape stands for: a byte (percent-encoding can spell half a character) or a
/// character.
enum Unescaped {
    Byte(u8),
    Char(char),
}

/// `b` with every escape that `at` reads (at an index: what it stands for and how many bytes
/// it takes) replaced by what it stands for, each output byte remembering the input span it
/// came from; `None` when nothing was replaced. The one walk of the three decoders below.
fn unescape(b: &[u8], at: impl Fn(&[u8], usize) -> Option<(Unescaped, usize)>) -> Option<Decoded> {
    let mut out: Decoded = (Vec::with_capacity(b.len()), Vec::with_capacity(b.len()));
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let Some((what, len)) = at(b, i) else {
            out.0.push(b[i]);
            out.1.push((i, i + 1));
            i += 1;
            continue;
        };
        let mut buf = [0; 4];
        let bytes: &[u8] = match what {
            Unescaped::Byte(byte) => {
                buf[0] = byte;
                &buf[..1]
            }
            Unescaped::Char(c) => c.encode_utf8(&mut buf).as_bytes(),
        };
        for &byte in bytes {
            out.0.push(byte);
            out.1.push((i, i + len));
        }
        i += len;
        changed = true;
    }
    changed.then_some(out)
}

/// `%XX` (either case) to its byte; `+` to a space if `plus` (form encoding).
fn percent(b: &[u8], plus: bool) -> Option<Decoded> {
    if !(b.contains(&b'%') || plus && b.contains(&b'+')) {
        return None;
    }
    unescape(b, |b, i| match b[i] {
        b'%' => {
            let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
            Some((Unescaped::Byte(h << 4 | l), 3))
        }
        b'+' if plus => Some((Unescaped::Byte(b' '), 1)),
        _ => None,
    })
}

/// The four hex digits of a `\uXXXX` escape starting at `i`.
fn u_escape(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i..i + 2)? != b"\\u" {
        return None;
    }
    let digits = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// JSON string escapes (`\"`, `\\`, `\/`, `\n`…, `\uXXXX` with surrogate pairs) to what
/// they stand for; anything else stays.
fn json_string(b: &[u8]) -> Option<Decoded> {
    if !b.contains(&b'\\') {
        return None;
    }
    unescape(b, |b, i| {
        if b[i] != b'\\' {
            return None;
        }
        let simple = match *b.get(i + 1)? {
            e @ (b'"' | b'\\' | b'/') => Some(e),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            return Some((Unescaped::Byte(c), 2));
        }
        let u = u_escape(b, i)?;
        let pair = (0xD800..0xDC00)
            .contains(&u)
            .then(|| u_escape(b, i + 6))
            .flatten()
            .filter(|lo| (0xDC00..0xE000).contains(lo));
        let (c, len) = match pair {
            Some(lo) => (
                char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)),
                12,
            ),
            None => (char::from_u32(u), 6),
        };
        Some((Unescaped::Char(c?), len))
    })
}

/// HTML character references (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#39;`,
/// `&#x27;`) to what they stand for; anything else stays.
fn html(b: &[u8]) -> Option<Decoded> {
    if !b.contains(&b'&') {
        return None;
    }
    unescape(b, |b, i| {
        if b[i] != b'&' {
            return None;
        }
        let len = b[i..].iter().take(12).position(|&c| c == b';')?;
        let c = match &b[i + 1..i + len] {
            b"amp" => '&',
            b"lt" => '<',
            b"gt" => '>',
            b"quot" => '"',
            b"apos" => '\'',
            [b'#', b'x' | b'X', hexits @ ..] => std::str::from_utf8(hexits)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)?,
            [b'#', digits @ ..] => std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .and_then(char::from_u32)?,
            _ => return None,
        };
        Some((Unescaped::Char(c), len + 1))
    })
}

/// `text` with each range (merged where they touch, widened to whole characters) replaced
/// by `***`.
fn mask(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut i = 0;
    while i < ranges.len() {
        let (mut start, mut end) = ranges[i];
        i += 1;
        while i < ranges.len() && ranges[i].0 <= end {
            end = end.max(ranges[i].1);
            i += 1;
        }
        start = start.max(done);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&text[done..start]);
        out.push_str("***");
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(raw: &str, want: &str) -> bool {
        Secrets::of_url(raw)
            .forms
            .iter()
            .any(|x| x == want.as_bytes())
    }

    #[test]
    fn secrets_are_collected_from_every_part_of_the_url() {
        let raw = "rocket://hookid1/hooktoken@chat.example.com/#general?avatar=no&token=abcdef123";
        for want in ["hookid1", "hooktoken", "general", "abcdef123"] {
            assert!(has(raw, want), "{want}");
        }
        assert!(!has(raw, "chat.example.com"));
        assert!(has(
            "tgram://123456789:AAH-token/-100200300",
            "123456789:AAH-token"
        ));
        let raw = "json://alice:hunter22@hooks.example.com:8080/path/secretpath";
        assert!(has(raw, "hunter22") && has(raw, "secretpath"));
        assert!(!has(raw, "hooks.example.com"));
        let s = Secrets::of_url(raw);
        assert_eq!(
            s.scrub("HTTP 400: bad token hunter22 for hooks.example.com"),
            "HTTP 400: bad token *** for hooks.example.com"
        );
        // A user name the description shows stays; one it hides does not.
        assert!(!has("json://belfry-bot:pw1@h.example/x", "belfry-bot"));
        let sid = "AC0123456789abcdef0123456789abcdef";
        assert!(has(
            &format!("twilio://{sid}:f00dfeed@+15551234567/+15557654321"),
            sid
        ));
        // A password too short to be a URL part is still a password; a command's URL holds
        // nothing of its own.
        assert!(has("json://bob:pw1@h.example/x", "pw1"));
        assert!(Secrets::of_url("cmd://notify-send?arg={title}").is_empty());
    }

    #[test]
    fn mail_urls_give_their_credentials_but_not_their_addresses() {
        let s = Secrets::of_url("mailtos://ops:hunter22@gmail.com/oncall@example.org");
        assert_eq!(
            s.scrub("550 no mailbox oncall@example.org at smtp.gmail.com; pass hunter22"),
            "550 no mailbox oncall@example.org at smtp.gmail.com; pass ***"
        );
        // AUTH PLAIN, as a server might quote it back.
        let plain = STANDARD.encode("\0ops\0hunter22");
        assert_eq!(s.scrub(&format!("535 bad {plain}")), "535 bad ***");
    }

    #[test]
    fn basic_credentials_are_hidden_in_base64_whole_and_inside_longer_base64() {
        let s = Secrets::of_url("json://user:pass@127.0.0.1:9/x");
        let basic = STANDARD.encode("user:pass");
        assert_eq!(s.scrub(&format!("echo: Basic {basic}")), "echo: Basic ***");
        for prefix in ["", "a", "ab", "abc"] {
            let blob = STANDARD.encode(format!("{prefix}user:pass and more"));
            let out = s.scrub(&blob);
            assert!(out.contains("***"), "{prefix:?}: {out}");
        }
    }

    #[test]
    fn encoded_echoes_are_hidden_where_they_stand() {
        let mut s = Secrets::default();
        s.add("p@ss\"wörd/1");
        for (text, want) in [
            ("a p%40ss%22w%C3%B6rd%2F1 b", "a *** b"),
            ("a p%40ss%22w%c3%b6rd%2f1 b", "a *** b"),
            (r#"{"x":"p@ss\"w\u00f6rd\/1"}"#, r#"{"x":"***"}"#),
            (
                r#"{"x":"{\"y\":\"p@ss\\\"wörd/1\"}"}"#,
                r#"{"x":"{\"y\":\"***\"}"}"#,
            ),
            ("<p>p@ss&quot;w&#246;rd/1</p>", "<p>***</p>"),
            ("cut: p@ss\"wö…", "cut: ***…"),
        ] {
            assert_eq!(s.scrub(text), want, "{text}");
        }
        // Text without a secret is returned as it is, not copied.
        assert!(matches!(s.scrub("nothing %41 here \\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_text_searched_form_by_form_and_one_searched_by_the_automaton_are_scrubbed_alike() {
        let built = |s: &Secrets| s.matcher().automaton.get().is_some();
        let s = Secrets::of_url("json://alice:hunter22@hooks.example.com/x/tok-0123456789");
        let text = r#"{"auth":"Basic YWxpY2U6aHVudGVyMjI=","p":"%2Fx%2Ftok%2D0123456789"} tok-01…"#;
        let short = s.scrub(text);
        assert!(!built(&s), "a short text is searched form by form");
        assert_eq!(short.matches("***").count(), 3, "{short}");
        let pad = "x".repeat(NAIVE_SEARCH_BUDGET);
        let long = format!("{pad}{text}");
        assert_eq!(&s.scrub(&long)[pad.len()..], short);
        assert!(built(&s), "past the budget, the automaton");
        assert_eq!(s.scrub(text), short, "and it serves every later text");
        // Overlapping occurrences are found both ways.
        let mut o = Secrets::default();
        o.add("abab");
        assert_eq!(o.scrub("x ababab y"), "x *** y");
        assert!(!built(&o));
        let long = format!("{}x ababab y", "-".repeat(NAIVE_SEARCH_BUDGET));
        assert!(o.scrub(&long).ends_with("x *** y"));
        assert!(built(&o));
    }

    #[test]
    fn short_values_and_shown_hosts_stay() {
        let mut s = Secrets::default();
        s.add("ab");
        assert!(s.is_empty());
        s.add("abc");
        s.add("abcdef");
        assert_eq!(s.scrub("abcdef abc ab"), "*** *** ab");
        assert!(!format!("{s:?}").contains("abc"));
        let mut t = Secrets::default();
        t.extend(&s);
        assert_eq!(t, s);
    }

    /// How a receiver may quote a value back: written here independently of the decoders.
    mod echo {
        pub(super) fn percent(s: &str, lower: bool, plus: bool) -> String {
            s.bytes()
                .map(|b| match b {
                    b' ' if plus => "+".to_owned(),
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ if lower => format!("%{b:02x}"),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        }

        /// serde_json's escaping, without the quotes.
        pub(super) fn json(s: &str) -> String {
            let q = serde_json::to_string(s).unwrap();
            q[1..q.len() - 1].to_owned()
        }

        /// Escaping as Python's `json.dumps` (ASCII only) and PHP's (`\/`) do.
        pub(super) fn json_ascii(s: &str) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' => out.push_str("\\/"),
                    ' '..='~' => out.push(c),
                    _ => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                }
            }
            out
        }

        pub(super) fn html(s: &str) -> String {
            s.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_owned(),
                    '<' => "&lt;".to_owned(),
                    '>' => "&gt;".to_owned(),
                    '"' => "&quot;".to_owned(),
                    '\'' => "&#39;".to_owned(),
                    c if c.is_ascii() => c.to_string(),
                    c => format!("&#{};", c as u32),
                })
                .collect()
        }

        /// Every way a value is quoted back that scrubbing must see through.
        pub(super) fn all(s: &str) -> Vec<(&'static str, String)> {
            vec![
                ("as it is", s.to_owned()),
                ("percent", percent(s, false, false)),
                ("percent, lower-case", percent(s, true, false)),
                ("form", percent(s, false, true)),
                ("JSON", json(s)),
                ("JSON, ASCII", json_ascii(s)),
                ("JSON in JSON", json(&json(s))),
                ("JSON, percent-encoded", percent(&json(s), false, false)),
                ("HTML", html(s)),
            ]
        }
    }

    fn secret() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let chars = prop::sample::select(vec![
            'a', 'Z', '0', '7', '-', '_', '.', '~', '%', '"', '\\', '/', '+', ' ', '&', '<', ';',
            '#', '*', '@', ':', '=', '\n', 'é', '€', '😀',
        ]);
        prop::collection::vec(chars, 3..16)
            .prop_map(|v| v.into_iter().collect::<String>())
            .prop_filter("a value of stars is a mask", |s| {
                s.chars().any(|c| c != '*')
            })
    }

    const AROUND: &str = "[a-zA-Z0-9 .:,!?(){}<>=/+%&;\"'-]{0,30}";

    proptest::proptest! {
        #[test]
        fn no_quoted_form_of_a_secret_survives_scrubbing(
            value in secret(),
            before in AROUND,
            after in AROUND,
        ) {
            let mut s = Secrets::default();
            s.add(&value);
            for (how, quoted) in echo::all(&value) {
                let text = format!("{before} {quoted} {after}");
                let out = s.scrub(&text);
                for (other, form) in echo::all(&value) {
                    proptest::prop_assert!(
                        !out.contains(&form),
                        "quoted {how}, {other} survives: {text:?} -> {out:?}"
                    );
                }
            }
        }

        #[test]
        fn a_secret_cut_short_leaves_no_four_bytes(
            value in secret(),
            before in AROUND,
            cut in 0usize..16,
            partial in 0usize..16,
        ) {
            let mut s = Secrets::default();
            s.add(&value);
            let chars: Vec<char> = value.chars().collect();
            // Cut after at least MIN_CUT_PREFIX bytes, before the last character.
            let shortest = (1..chars.len())
                .find(|&j| chars[..j].iter().map(|c| c.len_utf8()).sum::<usize>() >= MIN_CUT_PREFIX);
            proptest::prop_assume!(shortest.is_some());
            let shortest = shortest.unwrap_or_default();
            let j = shortest + cut % (chars.len() - shortest);
            let head: String = chars[..j].iter().collect();
            let next = chars[j].to_string();
            for ((how, quoted), (_, quoted_next)) in echo::all(&head).into_iter().zip(echo::all(&next)) {
                // Cut inside the next character's escape, as `shorten` may cut.
                let mut r = partial % (quoted_next.len() + 1);
                while !quoted_next.is_char_boundary(r) {
                    r -= 1;
                }
                let text = format!("{before} {quoted}{}…", &quoted_next[..r]);
                let out = s.scrub(&text);
                proptest::prop_assert!(
                    !out.contains(&quoted),
                    "cut {how}: {text:?} -> {out:?}"
                );
            }
        }

        #[test]
        fn base64_of_credentials_is_hidden_at_any_alignment(
            user in "[a-z]{1,5}",
            pass in secret(),
            before in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            after in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let s = Secrets::of_url(&format!(
                "json://{user}:{}@127.0.0.1:9/x",
                echo::percent(&pass, false, false)
            ));
            let creds = format!("{user}:{pass}");
            let whole = STANDARD.encode(&creds);
            let out = s.scrub(&format!("Authorization: Basic {whole}")).into_owned();
            proptest::prop_assert_eq!(out.as_str(), "Authorization: Basic ***");

            // Inside a longer base64 text: every character that comes from the credentials
            // alone is hidden (the limit documented on `scrub`).
            let mut blob = before.clone();
            blob.extend_from_slice(creds.as_bytes());
            blob.extend_from_slice(&after);
            let encoded = STANDARD.encode(&blob);
            let out = s.scrub(&encoded);
            let first = (8 * before.len()).div_ceil(6);
            let last = 8 * (before.len() + creds.len()) / 6;
            let own = &encoded[first..last];
            proptest::prop_assert!(!out.contains(own), "{encoded} -> {out}");
            // Around the mask, only characters that hold some of the neighbours' bits stay.
            let left = out.split_once("***").map_or("", |(l, _)| l);
            let right = out.rsplit_once("***").map_or("", |(_, r)| r);
            proptest::prop_assert!(encoded.starts_with(left) && left.len() <= first, "{out}");
            proptest::prop_assert!(
                encoded.ends_with(right) && encoded.len() - right.len() >= last,
                "{out}"
            );
        }
    }
}
