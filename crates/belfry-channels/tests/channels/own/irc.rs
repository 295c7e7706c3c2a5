//! IRC against a small IRC server written here, on loopback: it answers each line as a test
//! says, and records every line belfry sent.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use belfry_channels::{Outcome, parse};

use super::support::{Conn, tls_server};
use crate::{problem, send};

/// What the server says back to one line from belfry; `None` closes the connection.
type Script = fn(&str) -> Option<Vec<String>>;

/// An IRC server for one connection.
struct Peer {
    port: u16,
    heard: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    fn start(script: Script) -> Peer {
        Peer::serve(script, false)
    }

    /// The same server, speaking TLS from the first byte.
    fn start_tls(script: Script) -> Peer {
        Peer::serve(script, true)
    }

    fn serve(script: Script, tls: bool) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        let thread = std::thread::spawn(move || {
            let mut conn = Conn::Plain(listener.accept().unwrap().0);
            if tls {
                conn = conn.into_tls(&tls_server());
            }
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else {
                    let mut buf = [0u8; 4096];
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    continue;
                };
                let line: Vec<u8> = pending.drain(..end + 2).collect();
                assert!(line.len() <= 512, "a line within 512 bytes: {}", line.len());
                let text = String::from_utf8(line).unwrap().trim_end().to_owned();
                assert!(!text.contains(['\r', '\n']), "one line: {text:?}");
                log.lock().unwrap().push(text.clone());
                match script(&text) {
                    Some(replies) => {
                        for r in replies {
                            conn.write_all(format!("{r}\r\n").as_bytes()).unwrap();
                        }
                        conn.flush().unwrap();
                    }
                    None => {
                        conn.close();
                        return;
                    }
                }
            }
        });
        Peer {
            port,
            heard,
            thread: Some(thread),
        }
    }

    /// Every line heard, once the connection is over.
    fn heard(mut self) -> Vec<String> {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.heard.lock().unwrap().clone()
    }
}

/// A server that welcomes, confirms joins (one by echo, one by the end of the names list),
/// pings once, and closes after QUIT.
fn friendly(line: &str) -> Option<Vec<String>> {
    let r = |s: &str| Some(vec![s.to_owned()]);
    match line.split(' ').next().unwrap_or("") {
        "USER" => Some(vec![
            "PING :tok-1".into(),
            ":irc.test NOTICE * :*** Looking up your hostname".into(),
        ]),
        "PONG" => r(":irc.test 001 bot :Welcome to the test network bot"),
        "JOIN" if line.starts_with("JOIN #ops") => r(":bot!~bot@127.0.0.1 JOIN :#ops"),
        "JOIN" => r(":irc.test 366 bot #keyed :End of /NAMES list."),
        "QUIT" => None,
        _ => Some(vec![]),
    }
}

#[test]
fn irc_registers_joins_says_each_line_to_every_target_and_quits() {
    let peer = Peer::start(friendly);
    let url = format!(
        "irc://bot:pa55word@127.0.0.1:{}/#ops/%23keyed:k3y/@alice?name=Belfry%20Bot",
        peer.port
    );
    let ch = parse(&url).unwrap();
    assert_eq!(ch.scheme(), "irc");
    assert_eq!(
        ch.describe(),
        format!("irc://bot:***@127.0.0.1:{}/#ops,#keyed,@alice", peer.port)
    );
    assert!(!format!("{ch:?}").contains("pa55word"));
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let heard = peer.heard();
    assert_eq!(
        heard[..6],
        [
            "PASS pa55word",
            "NICK bot",
            "USER bot 0 * :Belfry Bot",
            "PONG :tok-1",
            "JOIN #ops",
            "JOIN #keyed k3y",
        ]
    );
    assert_eq!(heard.last().unwrap(), "QUIT :belfry");
    let said = |target: &str| -> Vec<&str> {
        heard
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("PRIVMSG {target} :")))
            .collect()
    };
    for target in ["#ops", "#keyed", "alice"] {
        let lines = said(target);
        assert!(lines.len() >= 2, "{target}: {heard:?}");
        assert!(lines[0].contains("nightly-backup"), "{target}: {lines:?}");
        assert_eq!(lines, said("#ops"), "every target hears the same");
    }
    // Messages are sent once registered and joined, before QUIT.
    let first_msg = heard.iter().position(|l| l.starts_with("PRIVMSG")).unwrap();
    assert!(first_msg > 5);
}

#[test]
fn a_taken_nick_is_replaced_until_the_server_welcomes_one() {
    let peer = Peer::start(|line| match line {
        "NICK watcher" => Some(vec![
            ":irc.test 433 * watcher :Nickname is already in use".into(),
        ]),
        l if l.starts_with("NICK ") => {
            let nick = l.trim_start_matches("NICK ").to_owned();
            Some(vec![format!(":irc.test 001 {nick} :Welcome")])
        }
        "QUIT :belfry" => None,
        _ => Some(vec![]),
    });
    let url = format!("irc://127.0.0.1:{}/@alice?nick=watcher", peer.port);
    let ch = parse(&url).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let heard = peer.heard();
    assert_eq!(heard[0], "NICK watcher");
    assert_eq!(heard[1], "USER watcher 0 * :belfry");
    assert_eq!(heard[2], "NICK watcher1");
    assert!(
        heard.iter().any(|l| l.starts_with("PRIVMSG alice :")),
        "{heard:?}"
    );
    assert!(
        !heard.iter().any(|l| l.starts_with("PASS")),
        "no password, no PASS"
    );
}

#[test]
fn a_refused_password_is_permanent_and_not_quoted() {
    let peer = Peer::start(|line| {
        if line.starts_with("USER") {
            Some(vec![
                ":irc.test 464 * :Password incorrect for pa55word".into(),
            ])
        } else {
            Some(vec![])
        }
    });
    let url = format!("irc://bot:pa55word@127.0.0.1:{}/#ops", peer.port);
    let ch = parse(&url).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => {
            assert!(reason.contains("refused the password"), "{reason}");
            assert!(!reason.contains("pa55word"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_channel_that_cannot_be_joined_or_spoken_in_is_permanent_and_a_closed_link_is_retried() {
    let peer = Peer::start(|line| match line.split(' ').next() {
        Some("USER") => Some(vec![":irc.test 001 bot :Hi".into()]),
        Some("JOIN") => Some(vec![
            ":irc.test 475 bot #ops :Cannot join channel (+k)".into(),
        ]),
        _ => Some(vec![]),
    });
    let ch = parse(&format!("irc://bot@127.0.0.1:{}/#ops", peer.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => {
            assert!(
                reason.contains("cannot join #ops") && reason.contains("(+k)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(peer);

    let peer = Peer::start(|line| match line.split(' ').next() {
        Some("USER") => Some(vec![":irc.test 001 bot :Hi".into()]),
        Some("PRIVMSG") => Some(vec![
            // About something else: not the message's fate.
            ":irc.test 401 bot NickServ :No such nick/channel".into(),
            ":irc.test 404 bot #ops :Cannot send to channel".into(),
        ]),
        Some("QUIT") => None,
        _ => Some(vec![]),
    });
    let ch = parse(&format!("irc://bot@127.0.0.1:{}/#ops?join=no", peer.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Permanent { reason } => {
            assert!(
                reason.contains("404") && reason.contains("#ops"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let heard = peer.heard();
    assert!(
        !heard.iter().any(|l| l.starts_with("JOIN")),
        "join=no: {heard:?}"
    );

    let peer = Peer::start(|line| (!line.starts_with("USER")).then(Vec::new));
    let ch = parse(&format!("irc://bot@127.0.0.1:{}/#ops", peer.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Retry { reason, .. } => assert!(reason.contains("before welcoming"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ircs_speaks_tls_from_the_first_byte() {
    let peer = Peer::start_tls(friendly);
    let url = format!("ircs://bot@127.0.0.1:{}/#ops?verify=no&nick=bot", peer.port);
    let ch = parse(&url).unwrap();
    assert_eq!(ch.scheme(), "ircs");
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let heard = peer.heard();
    assert_eq!(heard[..2], ["NICK bot", "USER bot 0 * :belfry"]);
    assert!(
        heard.iter().any(|l| l.starts_with("PRIVMSG #ops :")),
        "{heard:?}"
    );

    // Checked against the system's trust store, the test's certificate is refused: retried.
    let peer = Peer::start_tls(friendly);
    let ch = parse(&format!("ircs://bot@127.0.0.1:{}/#ops", peer.port)).unwrap();
    match send(ch.as_ref(), &problem()) {
        Outcome::Retry { reason, .. } => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
