//! IRC lines (RFC 1459 / 2812): reading the few a sender needs to understand, and cutting a
//! message into `PRIVMSG`s that fit the protocol's 512 bytes. No I/O here.

/// The longest line IRC carries, its CR LF included.
pub(super) const LINE_MAX: usize = 512;

/// What a server may put in front of a line it relays (`:NICK!USER@HOST `): the user name
/// and host are the server's to choose, so this is kept free for them.
const RELAY_PREFIX: usize = 1 + 10 + 1 + 63 + 1;

/// A line from the server: `[:PREFIX] COMMAND PARAM… [:TRAILING]`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Incoming<'a> {
    /// The sender's nick (a user's prefix up to `!`), or the server's name.
    pub source: &'a str,
    /// Uppercase for words; a numeric reply as its three digits.
    pub command: String,
    /// The middle parameters, then the trailing one, if any.
    pub params: Vec<&'a str>,
}

impl Incoming<'_> {
    /// The last parameter: the human text of a reply, a `JOIN`'s channel, a `PING`'s token.
    pub fn last(&self) -> &str {
        self.params.last().copied().unwrap_or("")
    }

    /// The numeric reply, if this is one.
    pub fn numeric(&self) -> Option<u16> {
        (self.command.len() == 3)
            .then(|| self.command.parse().ok())
            .flatten()
    }
}

/// Reads one line (without its CR LF); `None` for an empty one.
pub(super) fn parse(line: &str) -> Option<Incoming<'_>> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let mut source = "";
    if let Some(after) = rest.strip_prefix(':') {
        let (prefix, tail) = after.split_once(' ').unwrap_or((after, ""));
        source = prefix.split('!').next().unwrap_or(prefix);
        rest = tail;
    }
    // IRCv3 tags (`@time=… `) come first when a server sends them unasked.
    if rest.starts_with('@') {
        rest = rest.split_once(' ').map_or("", |(_, t)| t);
    }
    let (middle, trailing) = match rest.split_once(" :") {
        Some((m, t)) => (m, Some(t)),
        None => (rest, None),
    };
    let mut words = middle.split(' ').filter(|w| !w.is_empty());
    let command = words.next()?.to_ascii_uppercase();
    let mut params: Vec<&str> = words.collect();
    params.extend(trailing);
    Some(Incoming {
        source,
        command,
        params,
    })
}

/// The `PRIVMSG`s that say `text` to `target`, one per line of the text (blank lines left
/// out), each line cut (at a space where there is one, never inside a character) so that the
/// line as the server relays it, with `nick`'s prefix in front, stays within [`LINE_MAX`].
pub(super) fn privmsgs(target: &str, nick: &str, text: &str) -> Vec<String> {
    let head = format!("PRIVMSG {target} :");
    let room = LINE_MAX
        .saturating_sub(2 + head.len() + RELAY_PREFIX + nick.len())
        .max(16);
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
    {
        let mut rest = line;
        while !rest.is_empty() {
            let piece = cut(rest, room);
            out.push(format!("{head}{}\r\n", piece.trim_end()));
            rest = rest[piece.len()..].trim_start();
        }
    }
    out
}

/// The longest start of `s` of at most `max` bytes, ending at a space when one falls in the
/// second half, else at a character's end.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    match s[..end].rfind(' ') {
        Some(space) if space >= max / 2 => &s[..space],
        _ => &s[..end],
    }
}

/// Whether `s` may travel as one parameter of a line: no line break, no NUL.
pub(super) fn is_clean(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_are_read_with_prefix_tags_and_trailing_text() {
        let m = parse(":irc.example.net 001 belfry :Welcome to the network\r\n").unwrap();
        assert_eq!(m.source, "irc.example.net");
        assert_eq!(m.numeric(), Some(1));
        assert_eq!(m.params, ["belfry", "Welcome to the network"]);
        let m = parse(":belfry!~b@host JOIN #ops").unwrap();
        assert_eq!(
            (m.source, m.command.as_str(), m.last()),
            ("belfry", "JOIN", "#ops")
        );
        let m = parse("@time=2026-01-01T00:00:00Z PING :tok 1").unwrap();
        assert_eq!((m.command.as_str(), m.last()), ("PING", "tok 1"));
        assert_eq!(parse("  \r\n"), None);
        assert_eq!(parse("ERROR :Closing link").unwrap().numeric(), None);
    }

    #[test]
    fn every_privmsg_fits_the_line_limit_as_the_server_relays_it() {
        let nick = "belfry123";
        let long = "é".repeat(400) + " tail words " + &"x".repeat(700);
        let lines = privmsgs("#ops", nick, &format!("first\n\n{long}\nlast"));
        assert_eq!(lines[0], "PRIVMSG #ops :first\r\n");
        assert_eq!(lines.last().unwrap(), "PRIVMSG #ops :last\r\n");
        assert!(lines.len() > 4, "{lines:?}");
        for l in &lines {
            assert!(
                l.len() + RELAY_PREFIX + nick.len() <= LINE_MAX,
                "{}",
                l.len()
            );
            assert!(l.ends_with("\r\n") && !l[..l.len() - 2].contains(['\r', '\n']));
        }
        // Nothing is lost but the spaces where lines were cut.
        let said: String = lines
            .iter()
            .map(|l| l.trim_start_matches("PRIVMSG #ops :").trim_end())
            .collect();
        assert_eq!(
            said.replace(' ', ""),
            format!("first{long}last").replace(' ', "")
        );
    }

    #[test]
    fn a_line_is_cut_at_a_space_when_there_is_one() {
        assert_eq!(cut("alpha beta gamma", 12), "alpha beta");
        assert_eq!(cut("abcdefghijkl", 5), "abcde");
        assert_eq!(cut("ééé", 3), "é");
    }
}
