//! One IRC session per notification: connect, register, join, say, quit; and what each answer
//! of the server means for the notification's outcome.

use std::time::Duration;

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::config::{Irc, Mode};
use super::line::{self, Incoming};
use crate::{BoxFuture, Channel, Context, Message, Outcome, Pace};

/// How many other nicks are tried when the server says a nick is taken (Apprise's three).
const NICK_TRIES: u32 = 3;

/// How long the server is given, after `QUIT`, to refuse a message before the session counts
/// as delivered (servers answer at once; most close the connection sooner).
const QUIT_GRACE: Duration = Duration::from_secs(2);

/// The longest line read from a server; a longer one is cut (it is only looked at).
const READ_MAX: usize = 8 * 1024;

/// A connection to the server, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A session's connection, read line by line.
struct Session<'a> {
    irc: &'a Irc,
    io: BufReader<Box<dyn Stream>>,
    /// The nick the server accepted (or is being asked for).
    nick: String,
}

impl Irc {
    /// The text said: the headline, the summary, the details and the output's last lines,
    /// kept short, since every line is a message and servers disconnect a flood.
    fn text(n: &Notification) -> String {
        render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 3,
                limit: Limit::bytes(1024),
            },
        )
    }

    async fn exchange(&self, text: &str) -> Result<(), Outcome> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.retry(format!("could not connect: {e}")))?;
        let stream: Box<dyn Stream> = if self.tls {
            Box::new(
                crate::tls::connect(tcp, &self.host, self.verify_tls)
                    .await
                    .map_err(|e| self.retry(e))?,
            )
        } else {
            Box::new(tcp)
        };
        let mut s = Session {
            irc: self,
            io: BufReader::new(stream),
            nick: self.nick.clone().unwrap_or_else(|| own_nick(0)),
        };
        s.register().await?;
        for (channel, key) in &self.channels {
            if self.join || key.is_some() {
                s.join(channel, key.as_deref()).await?;
            }
        }
        let mut lines = Vec::new();
        for target in self
            .channels
            .iter()
            .map(|(c, _)| c.as_str())
            .chain(self.users.iter().map(String::as_str))
        {
            lines.extend(line::privmsgs(target, &s.nick, text));
        }
        s.write(&lines.concat()).await?;
        s.write("QUIT :belfry\r\n").await?;
        s.after_quit().await
    }

    fn retry(&self, why: impl std::fmt::Display) -> Outcome {
        Outcome::retry(format!("{}: {why}", self.describe))
    }

    fn permanent(&self, why: impl std::fmt::Display) -> Outcome {
        Outcome::permanent(format!("{}: {why}", self.describe))
    }
}

impl Session<'_> {
    async fn write(&mut self, text: &str) -> Result<(), Outcome> {
        self.io
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .map_err(|e| self.irc.retry(format!("could not write: {e}")))
    }

    /// The next line, with `PING`s answered on the way; `None` when the server closed.
    async fn next(&mut self) -> Result<Option<String>, Outcome> {
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.io)
                .take(READ_MAX as u64)
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|e| self.irc.retry(format!("could not read: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some(m) = line::parse(&text) else {
                continue;
            };
            if m.command == "PING" {
                let token = m.last().to_owned();
                self.write(&format!("PONG :{token}\r\n")).await?;
                continue;
            }
            return Ok(Some(text));
        }
    }

    /// `PASS`, `NICK` and `USER`, then reading until the welcome (`001`), trying other nicks
    /// while the server says a nick is taken or not allowed; then NickServ's `IDENTIFY`.
    async fn register(&mut self) -> Result<(), Outcome> {
        let irc = self.irc;
        let mut hello = String::new();
        match (irc.mode, &irc.password) {
            (Mode::Server, Some(pw)) => hello.push_str(&format!("PASS {pw}\r\n")),
            (Mode::Znc, Some(pw)) => {
                let user = irc.user.as_deref().unwrap_or_default();
                hello.push_str(&format!("PASS {user}:{pw}\r\n"));
            }
            _ => {}
        }
        let user_name = irc.user.clone().unwrap_or_else(|| self.nick.clone());
        hello.push_str(&format!(
            "NICK {}\r\nUSER {user_name} 0 * :{}\r\n",
            self.nick, irc.real_name
        ));
        self.write(&hello).await?;
        let mut tries = 0;
        loop {
            let Some(text) = self.next().await? else {
                return Err(irc.retry("the server closed the connection before welcoming belfry"));
            };
            let Some(m) = line::parse(&text) else {
                continue;
            };
            match m.numeric() {
                Some(1) => {
                    if let Some(nick) = m.params.first() {
                        self.nick = (*nick).to_owned();
                    }
                    break;
                }
                // Erroneous nick, nick in use, nick collision, nick unavailable.
                Some(432 | 433 | 436 | 437) => {
                    tries += 1;
                    if tries > NICK_TRIES {
                        return Err(irc.retry(format!(
                            "the server took none of the nicks tried ({})",
                            said(&m)
                        )));
                    }
                    self.nick = match &irc.nick {
                        Some(n) => format!("{}{tries}", n.chars().take(8).collect::<String>()),
                        None => own_nick(tries),
                    };
                    let again = format!("NICK {}\r\n", self.nick);
                    self.write(&again).await?;
                }
                Some(464) => {
                    return Err(
                        irc.permanent(format!("the server refused the password ({})", said(&m)))
                    );
                }
                Some(465) => {
                    return Err(irc.permanent(format!("the server bans belfry ({})", said(&m))));
                }
                _ if m.command == "ERROR" => {
                    return Err(irc.retry(format!("the server closed the link ({})", said(&m))));
                }
                _ => {}
            }
        }
        if let (Mode::NickServ, Some(pw)) = (irc.mode, &irc.password) {
            self.write(&format!("PRIVMSG NickServ :IDENTIFY {pw}\r\n"))
                .await?;
        }
        Ok(())
    }

    /// `JOIN`, then reading until the server confirms it (belfry's own `JOIN` echoed, or the
    /// end of the channel's names) or says why not.
    async fn join(&mut self, channel: &str, key: Option<&str>) -> Result<(), Outcome> {
        let irc = self.irc;
        let command = match key {
            Some(k) => format!("JOIN {channel} {k}\r\n"),
            None => format!("JOIN {channel}\r\n"),
        };
        self.write(&command).await?;
        loop {
            let Some(text) = self.next().await? else {
                return Err(irc.retry(format!(
                    "the server closed the connection on JOIN {channel}"
                )));
            };
            let Some(m) = line::parse(&text) else {
                continue;
            };
            let about_it = m.params.iter().any(|p| p.eq_ignore_ascii_case(channel));
            if m.command == "JOIN" && m.source.eq_ignore_ascii_case(&self.nick) && about_it {
                return Ok(());
            }
            match m.numeric() {
                Some(366) if about_it => return Ok(()),
                // Channel full: it may not be later.
                Some(471) if about_it => {
                    return Err(irc.retry(format!("cannot join {channel}: {}", said(&m))));
                }
                Some(403 | 405 | 473 | 474 | 475 | 476 | 477) if about_it => {
                    return Err(irc.permanent(format!("cannot join {channel}: {}", said(&m))));
                }
                _ if m.command == "ERROR" => {
                    return Err(irc.retry(format!("the server closed the link ({})", said(&m))));
                }
                _ => {}
            }
        }
    }

    /// After `QUIT`: the server's refusal of a message (no such nick, cannot send to the
    /// channel), if it sends one before closing or within [`QUIT_GRACE`].
    async fn after_quit(&mut self) -> Result<(), Outcome> {
        let irc = self.irc;
        let ours = |target: &str| {
            irc.channels
                .iter()
                .map(|(c, _)| c.as_str())
                .chain(irc.users.iter().map(String::as_str))
                .any(|t| t.eq_ignore_ascii_case(target))
        };
        // Everything is sent: the connection ending in any way is the end of the session.
        let watch = async {
            while let Ok(Some(text)) = self.next().await {
                // An error about one of the targets (not, say, about a NickServ the network
                // does not have).
                if let Some(m) = line::parse(&text)
                    && let Some(code @ 400..=599) = m.numeric()
                    && m.params.get(1).is_some_and(|t| ours(t))
                {
                    return Err(irc.permanent(format!(
                        "the server refused a message ({code}: {})",
                        said(&m)
                    )));
                }
            }
            Ok(())
        };
        tokio::time::timeout(QUIT_GRACE, watch)
            .await
            .unwrap_or(Ok(()))
    }
}

/// What a server's line says, for a reason: its parameters after belfry's nick.
fn said(m: &Incoming<'_>) -> String {
    let skip = usize::from(m.numeric().is_some() && m.params.len() > 1);
    crate::outcome::shorten(&m.params[skip..].join(" "), 200)
}

/// belfry's own nick: `belfry` and three characters from the process id and `n`, within the
/// nine characters every network takes.
fn own_nick(n: u32) -> String {
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = std::process::id()
        .wrapping_mul(31)
        .wrapping_add(n.wrapping_mul(7919));
    let mut tail = String::new();
    for _ in 0..3 {
        tail.push(char::from(DIGITS[(v % 36) as usize]));
        v /= 36;
    }
    format!("belfry{tail}")
}

impl Channel for Irc {
    fn scheme(&self) -> &'static str {
        if self.tls { "ircs" } else { "irc" }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    /// A connection every five seconds at most (three at once after a quiet spell): networks
    /// refuse a client that reconnects faster ("Throttled: reconnecting too fast").
    fn pace(&self) -> Pace {
        Pace::limited(0.2, 3)
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let text = Irc::text(msg.notification);
            let o = match tokio::time::timeout(cx.timeout(), self.exchange(&text)).await {
                Ok(Ok(())) => Outcome::Delivered,
                Ok(Err(o)) => o,
                Err(_) => self.retry("timed out"),
            };
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn belfrys_own_nicks_fit_nine_characters_and_differ_between_tries() {
        let nicks: Vec<String> = (0..4).map(own_nick).collect();
        for n in &nicks {
            assert!(n.len() == 9 && n.starts_with("belfry"), "{n}");
        }
        let mut unique = nicks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), nicks.len(), "{nicks:?}");
    }
}
