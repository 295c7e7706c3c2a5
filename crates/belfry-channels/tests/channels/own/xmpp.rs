//! XMPP against a small XMPP server written here, on loopback: it follows a script of what to
//! wait for and what to answer (STARTTLS included, with a certificate made for the test), and
//! records what belfry sent before and after TLS.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine as _;
use belfry_channels::{Outcome, parse};

use super::support::{Conn, tls_server};
use crate::{problem, send};

/// What the server does once it has read what it waits for.
enum Then {
    Say(&'static str),
    /// Say this, then speak TLS.
    SayAndStartTls(&'static str),
    /// Say this, then hang up.
    SayAndClose(&'static str),
}

/// The server's stream header.
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='chat.test' version='1.0'>";

/// The end of belfry's stream header.
const OPENED: &str = "etherx.jabber.org/streams'>";

struct Server {
    port: u16,
    /// What belfry sent, and whether it came over TLS.
    heard: Arc<Mutex<Vec<(bool, String)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(script: Vec<(&'static str, Then)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        let thread = std::thread::spawn(move || {
            let tls = tls_server();
            let mut conn = Conn::Plain(listener.accept().unwrap().0);
            let mut secure = false;
            let mut pending = String::new();
            for (wait_for, then) in script {
                while !pending.contains(wait_for) {
                    let mut buf = [0u8; 4096];
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.push_str(&String::from_utf8_lossy(&buf[..n])),
                    }
                }
                let end = pending.find(wait_for).unwrap() + wait_for.len();
                log.lock()
                    .unwrap()
                    .push((secure, pending[..end].to_owned()));
                pending.drain(..end);
                let (say, next) = match then {
                    Then::Say(s) => (s, 0),
                    Then::SayAndStartTls(s) => (s, 1),
                    Then::SayAndClose(s) => (s, 2),
                };
                conn.write_all(say.replace("HEADER", HEADER).as_bytes())
                    .unwrap();
                conn.flush().unwrap();
                match next {
                    1 => {
                        conn = conn.into_tls(&tls);
                        secure = true;
                    }
                    2 => {
                        conn.close();
                        return;
                    }
                    _ => {}
                }
            }
        });
        Server {
            port,
            heard,
            thread: Some(thread),
        }
    }

    fn heard(mut self) -> Vec<(bool, String)> {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.heard.lock().unwrap().clone()
    }
}

#[test]
fn xmpp_upgrades_with_starttls_signs_in_binds_joins_the_room_and_sends_each_message() {
    let server = Server::start(vec![
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
                 <required/></starttls></stream:features>",
            ),
        ),
        (
            "xmpp-tls'/>",
            Then::SayAndStartTls("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        ),
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                 <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
                 </stream:features>",
            ),
        ),
        (
            "</auth>",
            Then::Say("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        ),
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
                 <session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>",
            ),
        ),
        (
            "</iq>",
            Then::Say(
                "<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <jid>belfry@chat.test/belfry-1</jid></bind></iq>",
            ),
        ),
        ("</iq>", Then::Say("<iq type='result' id='session-1'/>")),
        (
            "</presence>",
            Then::Say(
                // The room renamed belfry: its own presence is known by status 110.
                "<presence from='ops@rooms.chat.test/someone'/>\
                 <presence from='ops@rooms.chat.test/Bot_renamed'><x \
                 xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>",
            ),
        ),
        ("</stream:stream>", Then::SayAndClose("</stream:stream>")),
    ]);
    let url = format!(
        "xmpps://belfry%40chat.test:pa55word@127.0.0.1:{}/alice@chat.test/%23ops@rooms.chat.test\
         ?verify=no&subject=yes&name=Bot",
        server.port
    );
    let ch = parse(&url).unwrap();
    assert_eq!(ch.scheme(), "xmpps");
    assert!(!format!("{ch:?} {}", ch.describe()).contains("pa55word"));
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let heard = server.heard();
    let plain: String = heard
        .iter()
        .filter(|(tls, _)| !tls)
        .map(|(_, s)| s.as_str())
        .collect();
    let secure: String = heard
        .iter()
        .filter(|(tls, _)| *tls)
        .map(|(_, s)| s.as_str())
        .collect();
    assert!(
        plain.contains("to='chat.test'") && plain.contains("<starttls"),
        "{plain}"
    );
    assert!(
        !plain.contains("<auth"),
        "nothing secret before TLS: {plain}"
    );
    let token = base64::engine::general_purpose::STANDARD.encode("\0belfry\0pa55word");
    assert!(
        secure.contains(&format!("mechanism='PLAIN'>{token}</auth>")),
        "{secure}"
    );
    assert!(secure.contains("<resource>belfry</resource>"), "{secure}");
    assert!(
        secure.contains("<presence to='ops@rooms.chat.test/Bot'>"),
        "{secure}"
    );
    let chat = secure
        .split("<message ")
        .find(|m| m.contains("to='alice@chat.test'"))
        .unwrap_or_else(|| panic!("{secure}"));
    assert!(
        chat.contains("type='chat'") && chat.contains("<subject>"),
        "{chat}"
    );
    assert!(chat.contains("nightly-backup"), "{chat}");
    let room = secure
        .split("<message ")
        .find(|m| m.contains("to='ops@rooms.chat.test'"))
        .unwrap_or_else(|| panic!("{secure}"));
    assert!(room.contains("type='groupchat'"), "{room}");
    // The output's `<b>disk</b> full & sad` arrives escaped, not as markup.
    assert!(
        chat.contains("&lt;b&gt;disk&lt;/b&gt; full &amp; sad"),
        "{chat}"
    );
    assert!(secure.ends_with("</stream:stream>"), "{secure}");
}

#[test]
fn a_refused_sign_in_or_a_server_without_starttls_is_permanent() {
    let server = Server::start(vec![
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                 <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
            ),
        ),
        (
            "</auth>",
            Then::SayAndClose(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
                 <text>pa55word is wrong</text></failure>",
            ),
        ),
    ]);
    let ch = parse(&format!(
        "xmpp://me:pa55word@127.0.0.1:{}/alice",
        server.port
    ))
    .unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => {
            assert!(
                reason.contains("refused the sign-in (not-authorized)"),
                "{reason}"
            );
            assert!(!reason.contains("pa55word"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    drop(server);

    let server = Server::start(vec![(
        OPENED,
        Then::Say(
            "HEADER<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        ),
    )]);
    let ch = parse(&format!(
        "xmpps://me:pa55word@127.0.0.1:{}/alice",
        server.port
    ))
    .unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => assert!(reason.contains("no STARTTLS"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let heard = server.heard();
    assert!(!heard.iter().any(|(_, s)| s.contains("auth")), "{heard:?}");
}

#[test]
fn a_bounced_message_is_permanent_and_a_closed_connection_is_retried() {
    let server = Server::start(vec![
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                 <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
            ),
        ),
        (
            "</auth>",
            Then::Say("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        ),
        (
            OPENED,
            Then::Say(
                "HEADER<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
                 </stream:features>",
            ),
        ),
        ("</iq>", Then::Say("<iq type='result' id='bind-1'/>")),
        (
            "</message>",
            Then::SayAndClose(
                "<message from='nobody@127.0.0.1' type='error'><error type='cancel'>\
                 <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
            ),
        ),
    ]);
    let ch = parse(&format!("xmpp://me:pw@127.0.0.1:{}/nobody", server.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => {
            assert!(
                reason.contains("bounced") && reason.contains("item-not-found"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let heard = server.heard();
    assert!(
        heard
            .iter()
            .any(|(_, s)| s.contains("<message to='nobody@127.0.0.1' type='chat'")),
        "{heard:?}"
    );

    let server = Server::start(vec![(OPENED, Then::SayAndClose(""))]);
    let ch = parse(&format!("xmpp://me:pw@127.0.0.1:{}/a", server.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Retry { reason, .. } => {
            assert!(reason.contains("closed the connection"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
