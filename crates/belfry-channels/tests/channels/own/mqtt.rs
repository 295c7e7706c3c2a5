//! MQTT against the Mosquitto broker on 127.0.0.1:1883, watched by `mosquitto_sub`, a client
//! of its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use belfry_channels::{Outcome, parse};

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
