//! One XMPP session per notification (RFC 6120): the stream, STARTTLS or TLS from the start,
//! SASL PLAIN, a bound resource, group chats joined (XEP-0045), the messages, the stream
//! closed; and what each answer of the server means for the notification's outcome.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text, truncate};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::config::{Security, Xmpp};
use super::xml::{Element, Event, Reader, escape};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// How long the server is given, after the stream is closed, to bounce a message.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The longest message body sent: far below what servers take (often 64 KB a stanza).
const BODY_MAX: usize = 16 * 1024;

/// A connection to the server, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection and what has been read from it.
struct Conn<S> {
    io: S,
    reader: Reader,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn write(&mut self, x: &Xmpp, text: &str) -> Result<(), Outcome> {
        self.io
            .write_all(text.as_bytes())
            .await
            .map_err(|e| x.retry(format!("could not write: {e}")))
    }

    /// The next event of the server's stream; `None` when the connection ended.
    async fn next(&mut self, x: &Xmpp) -> Result<Option<Event>, Outcome> {
        loop {
            if let Some(e) = self.reader.next().map_err(|e| x.retry(e))? {
                return Ok(Some(e));
            }
            let mut buf = [0u8; 4096];
            let n = self
                .io
                .read(&mut buf)
                .await
                .map_err(|e| x.retry(format!("could not read: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            self.reader.push(&buf[..n]);
        }
    }

    /// The next element; a closed stream or connection, or a stream error, is retried.
    async fn element(&mut self, x: &Xmpp, waiting_for: &str) -> Result<Element, Outcome> {
        loop {
            match self.next(x).await? {
                Some(Event::Element(e)) if e.name == "error" && e.attr("type").is_none() => {
                    return Err(x.retry(format!(
                        "the server ended the stream ({}) while belfry waited for {waiting_for}",
                        e.condition()
                    )));
                }
                Some(Event::Element(e)) => return Ok(e),
                Some(Event::Open) => continue,
                Some(Event::Close) | None => {
                    return Err(x.retry(format!(
                        "the server closed the connection while belfry waited for {waiting_for}"
                    )));
                }
            }
        }
    }

    /// Opens a stream to the account's domain and reads the server's features.
    async fn open(&mut self, x: &Xmpp) -> Result<Element, Outcome> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>",
            escape(&x.domain)
        );
        self.write(x, &header).await?;
        let features = self.element(x, "the stream's features").await?;
        if features.name != "features" {
            return Err(x.retry(format!(
                "expected the stream's features, got <{}>",
                features.name
            )));
        }
        Ok(features)
    }
}

impl Xmpp {
    /// The message: with `subject=yes`, the headline as the subject and the rest as the body.
    fn message(&self, n: &Notification) -> (Option<String>, String) {
        let body = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: !self.subject,
                details: true,
                tail_lines: 20,
                limit: Limit::bytes(BODY_MAX),
            },
        );
        let subject = self
            .subject
            .then(|| truncate(&n.headline(), Limit::chars(250)));
        (subject, body)
    }

    async fn exchange(&self, subject: Option<&str>, body: &str) -> Result<(), Outcome> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.retry(format!("could not connect: {e}")))?;
        let mut conn: Conn<Box<dyn Stream>> = match self.security {
            Security::Tls => Conn {
                io: Box::new(self.tls(tcp).await?),
                reader: Reader::default(),
            },
            Security::None => Conn {
                io: Box::new(tcp),
                reader: Reader::default(),
            },
            Security::StartTls => {
                let mut plain = Conn {
                    io: tcp,
                    reader: Reader::default(),
                };
                let features = plain.open(self).await?;
                if features.child("starttls").is_none() {
                    return Err(self.permanent(
                        "the server offers no STARTTLS (use mode=tls for TLS from the start, or \
                         xmpp:// to send in the clear)",
                    ));
                }
                plain
                    .write(self, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                    .await?;
                let answer = plain.element(self, "STARTTLS's answer").await?;
                if answer.name != "proceed" || !plain.reader.is_empty() {
                    return Err(
                        self.retry(format!("the server refused STARTTLS (<{}>)", answer.name))
                    );
                }
                Conn {
                    io: Box::new(self.tls(plain.io).await?),
                    reader: Reader::default(),
                }
            }
        };
        let features = conn.open(self).await?;
        self.sign_in(&mut conn, &features).await?;
        conn.reader = Reader::default();
        let features = conn.open(self).await?;
        self.bind(&mut conn, &features).await?;
        let mut out = String::new();
        for (target, room) in &self.targets {
            if *room {
                self.join(&mut conn, target).await?;
            }
        }
        let own = format!("{}@{}", self.local, self.domain);
        let targets: Vec<(&str, bool)> = if self.targets.is_empty() {
            vec![(own.as_str(), false)]
        } else {
            self.targets.iter().map(|(t, r)| (t.as_str(), *r)).collect()
        };
        for (i, (target, room)) in targets.iter().enumerate() {
            out.push_str(&format!(
                "<message to='{}' type='{}' id='belfry-{i}'>",
                escape(target),
                if *room { "groupchat" } else { "chat" },
            ));
            if let Some(s) = subject {
                out.push_str(&format!("<subject>{}</subject>", escape(s)));
            }
            out.push_str(&format!("<body>{}</body></message>", escape(body)));
        }
        out.push_str("</stream:stream>");
        conn.write(self, &out).await?;
        self.after_close(&mut conn).await
    }

    async fn tls(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Outcome> {
        // The certificate names the account's domain (RFC 6120, 13.7.2), whatever the host.
        crate::tls::connect(tcp, &self.domain, self.verify_tls)
            .await
            .map_err(|e| self.retry(e))
    }

    /// SASL PLAIN, the only mechanism belfry speaks: refused by the server, or not offered,
    /// is permanent.
    async fn sign_in<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<S>,
        features: &Element,
    ) -> Result<(), Outcome> {
        let offered: Vec<&str> = features
            .child("mechanisms")
            .map(|m| m.children.iter().map(|c| c.text.trim()).collect())
            .unwrap_or_default();
        if !offered.contains(&"PLAIN") {
            return Err(self.permanent(format!(
                "the server offers no PLAIN sign-in (it offers {}); belfry speaks only PLAIN, \
                 over TLS",
                if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                }
            )));
        }
        let token = STANDARD.encode(format!("\0{}\0{}", self.local, self.password));
        conn.write(
            self,
            &format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
            ),
        )
        .await?;
        let answer = conn.element(self, "the sign-in's answer").await?;
        match answer.name.as_str() {
            "success" => Ok(()),
            "failure" => Err(self.permanent(format!(
                "the server refused the sign-in ({})",
                answer.condition()
            ))),
            other => Err(self.retry(format!("unexpected <{other}> after the sign-in"))),
        }
    }

    /// Binds a resource (and opens the old session, where a server still asks for it). The
    /// server stamps the full JID it gives on what belfry sends.
    async fn bind<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<S>,
        features: &Element,
    ) -> Result<(), Outcome> {
        conn.write(
            self,
            "<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>belfry</resource></bind></iq>",
        )
        .await?;
        self.result(conn, "bind-1").await?;
        if features
            .child("session")
            .is_some_and(|s| s.child("optional").is_none())
        {
            conn.write(
                self,
                "<iq type='set' id='session-1'><session \
                 xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
            )
            .await?;
            self.result(conn, "session-1").await?;
        }
        Ok(())
    }

    /// The answer to the `iq` with `id`; an error answer is retried with its condition.
    async fn result<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<S>,
        id: &str,
    ) -> Result<Element, Outcome> {
        loop {
            let e = conn.element(self, "the server's answer").await?;
            if e.name != "iq" || e.attr("id") != Some(id) {
                continue;
            }
            if e.attr("type") == Some("error") {
                return Err(self.retry(format!("{id} failed ({})", e.condition())));
            }
            return Ok(e);
        }
    }

    /// Enters the group chat `room` as [`Xmpp::nick`] and waits for the room's welcome; the
    /// room's refusal (not a member, a password, banned) is permanent.
    async fn join<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<S>,
        room: &str,
    ) -> Result<(), Outcome> {
        let me = format!("{room}/{}", self.nick);
        conn.write(
            self,
            &format!(
                "<presence to='{}'><x xmlns='http://jabber.org/protocol/muc'>\
                 <history maxstanzas='0'/></x></presence>",
                escape(&me)
            ),
        )
        .await?;
        loop {
            let e = conn.element(self, "the group chat's welcome").await?;
            // From the room itself or one of its occupants (`room/nick`).
            let from_room = e.attr("from").is_some_and(|f| {
                let bare = f.split('/').next().unwrap_or(f);
                bare.eq_ignore_ascii_case(room)
            });
            if e.name != "presence" || !from_room {
                continue;
            }
            if e.attr("type") == Some("error") {
                return Err(self.permanent(format!(
                    "cannot join the group chat {room} ({})",
                    e.condition()
                )));
            }
            // The room's presence for belfry itself: its nick, or status 110 where the room
            // gave belfry another nick.
            let own_status = e.child("x").is_some_and(|x| {
                x.children
                    .iter()
                    .any(|c| c.name == "status" && c.attr("code") == Some("110"))
            });
            if own_status || e.attr("from").is_some_and(|f| f.eq_ignore_ascii_case(&me)) {
                return Ok(());
            }
        }
    }

    /// After the stream's end: a message the server bounces (no such user, not allowed) is a
    /// permanent failure, if it comes before the server closes or within [`CLOSE_GRACE`].
    async fn after_close<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<S>,
    ) -> Result<(), Outcome> {
        // Everything is sent: the connection ending in any way (a TLS peer that does not say
        // goodbye included) is the end of the session, not a failure.
        let watch = async {
            while let Ok(Some(event)) = conn.next(self).await {
                if let Event::Element(e) = event
                    && e.name == "message"
                    && e.attr("type") == Some("error")
                {
                    return Err(self.permanent(format!(
                        "the server bounced the message to {} ({})",
                        e.attr("from").unwrap_or("a target"),
                        e.condition()
                    )));
                }
            }
            Ok(())
        };
        tokio::time::timeout(CLOSE_GRACE, watch)
            .await
            .unwrap_or(Ok(()))
    }

    fn retry(&self, why: impl std::fmt::Display) -> Outcome {
        Outcome::retry(format!("{}: {why}", self.describe))
    }

    fn permanent(&self, why: impl std::fmt::Display) -> Outcome {
        Outcome::permanent(format!("{}: {why}", self.describe))
    }
}

impl Channel for Xmpp {
    fn scheme(&self) -> &'static str {
        if self.security == Security::None {
            "xmpp"
        } else {
            "xmpps"
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let (subject, body) = self.message(msg.notification);
            let o =
                match tokio::time::timeout(cx.timeout(), self.exchange(subject.as_deref(), &body))
                    .await
                {
                    Ok(Ok(())) => Outcome::Delivered,
                    Ok(Err(o)) => o,
                    Err(_) => self.retry("timed out"),
                };
            self.secrets.scrub_outcome(o)
        })
    }
}
