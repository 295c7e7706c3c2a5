//! Remote syslog against a real UDP socket on loopback.

use std::net::UdpSocket;
use std::time::Duration;

use belfry_channels::{Outcome, parse};

use crate::{problem, recovery, send};

fn receive(sock: &UdpSocket) -> String {
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("a datagram arrives");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn rsyslog_sends_one_rfc5424_datagram_per_notification() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let ch = parse(&format!("rsyslog://127.0.0.1:{port}/local3")).unwrap();
    assert_eq!(ch.describe(), format!("rsyslog://127.0.0.1:{port}/local3"));
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let line = receive(&sock);
    // local3 (19) * 8 + crit (2) = 154.
    let pid = std::process::id();
    let n = problem();
    let head = format!("<154>1 {} db1 belfry {pid} - - ", n.time.to_rfc3339());
    assert!(line.starts_with(&head), "{line}");
    let text = &line[head.len()..];
    assert!(text.contains("nightly-backup: Failed"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);
    let line = receive(&sock);
    // local3 * 8 + notice (5) = 157 for a success.
    assert!(line.starts_with("<157>1 "), "{line}");

    let ch = parse(&format!("rsyslog://localhost:{port}?logpid=no")).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let line = receive(&sock);
    assert!(line.starts_with("<10>1 "), "user (1) * 8 + crit: {line}");
    assert!(line.contains(" db1 belfry - - - "), "no pid: {line}");
}

#[test]
fn rsyslog_to_a_name_that_does_not_resolve_is_retried() {
    let ch = parse("rsyslog://no-such-host.invalid:514").unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("no-such-host.invalid")),
        "{o:?}"
    );
}
