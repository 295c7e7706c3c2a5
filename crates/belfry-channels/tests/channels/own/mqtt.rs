//! MQTT against the Mosquitto broker on 127.0.0.1:1883, watched by `mosquitto_sub`, a client
//! of its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use belfry_channels::{Outcome, parse};

use super::support::TestCa;
use crate::{problem, recovery, send};

/// `mosquitto_sub` subscribed (at QoS 2) to `topics`, printing `count` messages as JSON.
struct Subscriber {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Subscriber {
    fn start(topics: &[&str], count: usize) -> Subscriber {
        // Line-buffered: mosquitto_sub's "Subscribed" must arrive when it is printed, not when
        // the program exits.
        let mut cmd = Command::new("stdbuf");
        cmd.args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "2",
            "-d",
            "-F",
            "%j",
        ])
        .args(["-C", &count.to_string(), "-W", "20"]);
        for t in topics {
            cmd.args(["-t", t]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("stdbuf and mosquitto_sub run (the MQTT tests need the mosquitto clients)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Wait for the subscription to be in place.
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "mosquitto_sub ended before subscribing"
            );
            if line.starts_with("Subscribed") {
                break;
            }
        }
        Subscriber { child, out }
    }

    /// The next message received, as mosquitto_sub's JSON.
    fn next(&mut self) -> serde_json::Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "no message arrived"
            );
            if line.starts_with('{') {
                return serde_json::from_str(&line).unwrap();
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("belfry-test/{}/{nanos}/{name}", std::process::id())
}

#[test]
fn mqtt_publishes_each_notification_to_every_topic_at_its_qos() {
    for qos in [0u8, 1, 2] {
        let (a, b) = (
            unique(&format!("alerts-{qos}")),
            unique(&format!("ops-{qos}")),
        );
        let mut sub = Subscriber::start(&[&a, &b], 3);
        let ch = parse(&format!("mqtt://127.0.0.1:1883/{a},{b}?qos={qos}")).unwrap();
        assert_eq!(ch.scheme(), "mqtt");
        assert_eq!(
            send(ch.as_ref(), &problem()),
            Outcome::Delivered,
            "qos {qos}"
        );
        let mut got = [sub.next(), sub.next()];
        got.sort_by_key(|m| m["topic"].as_str().unwrap().to_owned());
        let mut want = [a.clone(), b.clone()];
        want.sort();
        for (m, topic) in got.iter().zip(&want) {
            assert_eq!(m["topic"], topic.as_str());
            assert_eq!(m["qos"], qos, "{m}");
            assert_eq!(m["retain"], 0);
            let payload = m["payload"].as_str().unwrap();
            assert!(
                payload.starts_with("🔴 nightly-backup: Failed"),
                "{payload}"
            );
            assert!(payload.contains("<b>disk</b> full & sad"), "{payload}");
        }
        // The same channel again: a new connection, the next message.
        assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);
        assert!(
            sub.next()["payload"]
                .as_str()
                .unwrap()
                .contains("nightly-backup")
        );
    }
}

#[test]
fn mqtt_retained_messages_wait_on_the_topic_for_the_next_subscriber() {
    let t = unique("retained");
    let ch = parse(&format!(
        "mqtt://127.0.0.1/{t}?retain=yes&version=v5.0&client_id=belfry-ret"
    ))
    .unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let mut sub = Subscriber::start(&[&t], 1);
    let m = sub.next();
    assert_eq!(m["retain"], 1);
    assert!(
        m["payload"]
            .as_str()
            .unwrap()
            .contains("nightly-backup: Failed")
    );
    // Clear the retained message: an empty retained PUBLISH (through the broker's own client).
    let _ = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-t", &t, "-r", "-n"])
        .status();
}

#[test]
fn mqtt_without_a_broker_is_retried() {
    let port = belfry_testkit::closed_port();
    let ch = parse(&format!("mqtt://u:S3CRETpw@127.0.0.1:{port}/t")).unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("could not connect") && !reason.contains("S3CRETpw")),
        "{o:?}"
    );
}

/// A TLS front for the broker: a Python server with the test CA's certificate for 127.0.0.1
/// that passes each connection's bytes on to 127.0.0.1:1883 and back.
struct TlsFront {
    child: Child,
    port: u16,
    _ca: TestCa,
}

const FRONT: &str = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
print("PORT", srv.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (OSError, ssl.SSLError):
        conn.close()
        return
    broker = socket.create_connection(("127.0.0.1", 1883))
    threading.Thread(target=pump, args=(tls, broker), daemon=True).start()
    pump(broker, tls)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

impl TlsFront {
    fn start() -> TlsFront {
        let ca = TestCa::new();
        let dir: &Path = ca.dir.path();
        let mut child = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg("-c")
            .arg(FRONT)
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
        TlsFront {
            child,
            port,
            _ca: ca,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mqtts_publishes_over_tls_and_checks_the_certificate_unless_told_not_to() {
    let front = TlsFront::start();
    let t = unique("tls");
    let mut sub = Subscriber::start(&[&t], 1);
    let ch = parse(&format!(
        "mqtts://127.0.0.1:{}/{t}?qos=1&verify=no",
        front.port
    ))
    .unwrap();
    assert_eq!(ch.scheme(), "mqtts");
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let m = sub.next();
    assert_eq!(m["topic"], t.as_str());
    assert_eq!(m["qos"], 1);
    assert!(
        m["payload"]
            .as_str()
            .unwrap()
            .contains("nightly-backup: Failed")
    );

    // The test CA is in no trust store: with the certificate checked, the handshake fails.
    let ch = parse(&format!("mqtts://127.0.0.1:{}/{t}", front.port)).unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("TLS handshake failed")),
        "{o:?}"
    );
}
