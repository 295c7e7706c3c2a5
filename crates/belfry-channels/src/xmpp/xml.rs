//! The little XML an XMPP client needs: escaping what it writes, and cutting the server's
//! stream into its top-level elements (stream features, SASL answers, stanzas), each read into
//! a small tree. No I/O here; no DTDs, no namespaces beyond dropping prefixes from names.

/// `s` escaped for text or an attribute value.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            // Characters XML 1.0 does not allow: a server would close the stream.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// An element: its name without prefix, its attributes (names without prefix), its children
/// and its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child's name: a SASL failure's or a stanza error's condition.
    pub fn condition(&self) -> String {
        let inner = self.child("error").unwrap_or(self);
        inner
            .children
            .iter()
            .map(|c| c.name.as_str())
            .find(|n| *n != "text")
            .unwrap_or("unknown")
            .to_owned()
    }
}

/// What the server's stream holds next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// `<stream:stream …>`.
    Open,
    /// `</stream:stream>`.
    Close,
    Element(Element),
}

/// The server's bytes, cut into [`Event`]s as they arrive.
#[derive(Default)]
pub(super) struct Reader {
    buf: Vec<u8>,
}

/// The most an element may take before the server is judged broken.
const ELEMENT_MAX: usize = 1 << 20;

enum Token {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    End,
    Text(String),
    Skip,
}

impl Reader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes wait that no event has taken yet.
    pub fn is_empty(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }

    /// The next event, `Ok(None)` until its bytes have all arrived.
    pub fn next(&mut self) -> Result<Option<Event>, String> {
        let mut at = 0;
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let Some((token, end)) = token(&self.buf, at)? else {
                if self.buf.len() > ELEMENT_MAX {
                    return Err("an element of more than 1 MB".into());
                }
                return Ok(None);
            };
            at = end;
            match token {
                Token::Skip => {}
                Token::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t);
                    }
                }
                Token::Start { name, attrs, empty } => {
                    if stack.is_empty() && name == "stream" && !empty {
                        self.buf.drain(..at);
                        return Ok(Some(Event::Open));
                    }
                    let el = Element {
                        name,
                        attrs,
                        ..Element::default()
                    };
                    if empty {
                        match stack.last_mut() {
                            Some(top) => top.children.push(el),
                            None => {
                                self.buf.drain(..at);
                                return Ok(Some(Event::Element(el)));
                            }
                        }
                    } else {
                        stack.push(el);
                    }
                }
                Token::End => match stack.pop() {
                    None => {
                        self.buf.drain(..at);
                        return Ok(Some(Event::Close));
                    }
                    Some(done) => match stack.last_mut() {
                        Some(top) => top.children.push(done),
                        None => {
                            self.buf.drain(..at);
                            return Ok(Some(Event::Element(done)));
                        }
                    },
                },
            }
        }
    }
}

/// The token starting at `at`, and where it ends; `None` if it has not all arrived.
fn token(buf: &[u8], at: usize) -> Result<Option<(Token, usize)>, String> {
    let rest = &buf[at..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] != b'<' {
        let end = rest.iter().position(|&b| b == b'<');
        return Ok(end.map(|n| (Token::Text(unescape(&rest[..n])), at + n)));
    }
    for (open, close) in [(&b"<?"[..], &b"?>"[..]), (b"<!--", b"-->")] {
        if rest.starts_with(open) {
            return Ok(find(rest, close).map(|n| (Token::Skip, at + n + close.len())));
        }
        if open.starts_with(rest) {
            return Ok(None);
        }
    }
    // The tag's end: the first `>` outside quotes.
    let mut quote = None;
    let mut end = None;
    for (i, &b) in rest.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(end) = end else {
        return Ok(None);
    };
    let inner = String::from_utf8_lossy(&rest[1..end]);
    if inner.starts_with('!') {
        return Err("the server sent a declaration XMPP does not allow".into());
    }
    if inner.starts_with('/') {
        return Ok(Some((Token::End, at + end + 1)));
    }
    let empty = inner.ends_with('/');
    let inner = inner.trim_end_matches('/');
    let (name, mut attrs_text) = inner
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((inner, ""));
    let mut attrs = Vec::new();
    while let Some(eq) = attrs_text.find('=') {
        let key = attrs_text[..eq].trim();
        let after = attrs_text[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return Err(format!("an attribute without quotes in <{name}>"));
        };
        let Some(close) = after[1..].find(q) else {
            return Err(format!("an unterminated attribute in <{name}>"));
        };
        attrs.push((local(key), unescape(&after.as_bytes()[1..1 + close])));
        attrs_text = &after[close + 2..];
    }
    Ok(Some((
        Token::Start {
            name: local(name),
            attrs,
            empty,
        },
        at + end + 1,
    )))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A name without its prefix (`stream:features` is `features`).
fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_owned()
}

/// Text with XML's five entities and character references read.
fn unescape(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if !s.contains('&') {
        return s.into_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_ref();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';') else {
            break;
        };
        let entity = &rest[1..semi];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            e => e
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| e.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<Event> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for c in chunks {
            r.push(c.as_bytes());
            while let Some(e) = r.next().unwrap() {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn a_stream_is_cut_into_its_elements_however_the_bytes_arrive() {
        let whole = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams' id='a>b' version='1.0'>\
                     <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
                     </starttls><mechanisms><mechanism>SCRAM-SHA-1</mechanism>\
                     <mechanism>PLAIN</mechanism></mechanisms></stream:features> \
                     <message from='a@b' type='error'><body>x &amp; y&#33;</body><error type='cancel'>\
                     <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>\
                     <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:stream>";
        let one = events(&[whole]);
        // Byte by byte: the same events.
        let bytes: Vec<String> = whole.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(events(&refs), one);
        assert_eq!(one.len(), 5, "{one:?}");
        assert_eq!(one[0], Event::Open);
        let Event::Element(features) = &one[1] else {
            panic!("{one:?}")
        };
        assert_eq!(features.name, "features");
        assert!(
            features
                .child("starttls")
                .unwrap()
                .child("required")
                .is_some()
        );
        let mechs: Vec<&str> = features
            .child("mechanisms")
            .unwrap()
            .children
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(mechs, ["SCRAM-SHA-1", "PLAIN"]);
        let Event::Element(msg) = &one[2] else {
            panic!()
        };
        assert_eq!(
            (msg.attr("type"), msg.condition().as_str()),
            (Some("error"), "service-unavailable")
        );
        assert_eq!(msg.child("body").unwrap().text, "x & y!");
        assert!(matches!(&one[3], Event::Element(e) if e.name == "success"));
        assert_eq!(one[4], Event::Close);
    }

    #[test]
    fn what_belfry_writes_is_escaped() {
        assert_eq!(
            escape("a<b & 'c' \"d\">\u{7}"),
            "a&lt;b &amp; &apos;c&apos; &quot;d&quot;&gt;\u{fffd}"
        );
        assert_eq!(unescape(escape("x&y <z>").as_bytes()), "x&y <z>");
    }
}
