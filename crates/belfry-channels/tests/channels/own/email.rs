//! E-mail into a real SMTP server on loopback: plain, STARTTLS and implicit TLS with a CA made
//! for the test, authentication, text and HTML parts, the gzipped output attachment, and how
//! the server's answers are classified.

use std::io::Read;
use std::time::Duration;

use belfry_channels::{Channel, Context, Message, Outcome, parse};
use belfry_core::Notification;
use belfry_core::{Reason, State};

use super::support::{Mode, Sink, SinkOptions, TestCa, attached, part_bytes, parts};
use crate::{notification, send};

const PASSWORD: &str = "pw-S3CRET-xyz";

fn text_of(msg: &serde_json::Value, content_type: &str) -> String {
    let p: Vec<_> = parts(msg, content_type)
        .into_iter()
        .filter(|p| p["disposition"] != "attachment")
        .collect();
    assert_eq!(p.len(), 1, "one {content_type} body in {msg}");
    String::from_utf8(part_bytes(p[0])).unwrap()
}

/// Checks RFC 5322 §2.1.1 on a message as it came over the wire: every line ends in CRLF (no
/// bare CR or LF anywhere), none is longer than 998 octets, and every byte is 7-bit (no NUL),
/// so that any server takes it.
fn assert_every_line_is_crlf_and_short(raw: &[u8]) {
    assert!(raw.ends_with(b"\r\n"), "the message ends in CRLF");
    let mut start = 0;
    let mut n = 0;
    while start < raw.len() {
        let end = raw[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| start + i)
            .expect("every line ends in CRLF");
        let line = &raw[start..end];
        n += 1;
        assert!(
            line.len() <= 998,
            "line {n} has {} octets: {:?}…",
            line.len(),
            String::from_utf8_lossy(&line[..60])
        );
        if let Some(b) = line
            .iter()
            .find(|b| matches!(b, b'\r' | b'\n' | 0) || !b.is_ascii())
        {
            panic!(
                "line {n} holds byte {b:#04x}: {:?}",
                String::from_utf8_lossy(line)
            );
        }
        start = end + 2;
    }
}

#[test]
fn plain_smtp_with_auth_delivers_text_and_html_with_every_detail() {
    let sink = Sink::start(
        Mode::Plain,
        SinkOptions {
            auth: Some(&format!("bob:{PASSWORD}")),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailto://bob:{PASSWORD}@127.0.0.1:{}/ops@example.org?mode=insecure\
         &from=Nightly%20%3Cbelfry@example.com%3E&cc=lead@example.org&bcc=audit@example.org\
         &+X-Team=storage",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["tls"], false);
    assert_eq!(m["login"], "bob");
    assert_eq!(m["mail_from"], "belfry@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.org", "lead@example.org", "audit@example.org"])
    );
    let h = &m["headers"];
    assert_eq!(h["subject"], "[belfry] nightly-backup: Failed");
    assert_eq!(h["from"], "Nightly <belfry@example.com>");
    assert_eq!(h["to"], "ops@example.org");
    assert_eq!(h["cc"], "lead@example.org");
    assert!(
        h.get("bcc").is_none(),
        "Bcc must not be in the message: {h}"
    );
    assert_eq!(h["x-team"], "storage");
    assert_eq!(h["x-belfry-job"], "nightly-backup");
    assert_eq!(h["x-belfry-state"], "failed");
    assert_eq!(h["message-id"], "<n-1.ops.belfry@example.com>");
    assert!(
        h["content-type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/alternative")
    );

    let text = text_of(m, "text/plain");
    for needle in [
        "nightly-backup: Failed",
        "Exit code",
        "1.5s",
        "db1",
        "run-7",
        "first run of this job",
        "<b>disk</b> full & sad",
    ] {
        assert!(text.contains(needle), "the text lacks {needle:?}:\n{text}");
    }
    let html = text_of(m, "text/html");
    assert!(
        html.contains("&lt;b&gt;disk&lt;/b&gt; full &amp; sad"),
        "{html}"
    );
    assert!(html.contains("run-7") && html.contains("db1"));
    assert!(!html.contains("<b>disk"), "output must be escaped in HTML");
    assert!(!sink.raw(0).contains(PASSWORD));
}

#[test]
fn starttls_with_a_private_ca_is_trusted_through_cafile() {
    let ca = TestCa::new();
    let sink = Sink::start(
        Mode::StartTls,
        SinkOptions {
            tls: Some(&ca),
            auth: Some(&format!("bob:{PASSWORD}")),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailtos://bob:{PASSWORD}@127.0.0.1:{}?to=ops@example.org&from=belfry@example.com&cafile={}",
        sink.port,
        ca.ca_file().display()
    );
    let ch = parse(&url).unwrap();
    assert!(ch.describe().contains("(STARTTLS)"), "{}", ch.describe());
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let m = &sink.messages()[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "bob");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@example.org"]));
}

#[test]
fn implicit_tls_with_a_private_ca_is_trusted_through_cafile() {
    let ca = TestCa::new();
    let sink = Sink::start(
        Mode::ImplicitTls,
        SinkOptions {
            tls: Some(&ca),
            auth: Some(&format!("bob:{PASSWORD}")),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailtos://bob:{PASSWORD}@127.0.0.1:{}/ops@example.org?mode=ssl&from=belfry@example.com&cafile={}",
        sink.port,
        ca.ca_file().display()
    );
    let ch = parse(&url).unwrap();
    let n = notification(State::Ok, Reason::Recovered { after: 2 });
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let m = &sink.messages()[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "bob");
    assert_eq!(
        m["headers"]["subject"],
        "[belfry] nightly-backup: Recovered"
    );
}

#[test]
fn mailto_upgrades_with_starttls_when_the_server_offers_it_and_sends_plain_when_not() {
    let ca = TestCa::new();
    let tls_sink = Sink::start(
        Mode::StartTls,
        SinkOptions {
            tls: Some(&ca),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com&cafile={}",
        tls_sink.port,
        ca.ca_file().display()
    );
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);
    assert_eq!(tls_sink.messages()[0]["tls"], true);

    let plain_sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        plain_sink.port
    );
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);
    assert_eq!(plain_sink.messages()[0]["tls"], false);
}

#[test]
fn mailtos_never_falls_back_to_plain_text() {
    let sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailtos://bob:{PASSWORD}@127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Permanent { reason } = &o else {
        panic!("a server without STARTTLS must be refused for mailtos://, got {o:?}")
    };
    assert!(reason.contains("STARTTLS"), "{reason}");
    assert!(!reason.contains(PASSWORD));
    assert!(sink.messages().is_empty());
}

#[test]
fn an_untrusted_certificate_is_retried_with_a_hint_and_nothing_is_sent() {
    let ca = TestCa::new();
    let sink = Sink::start(
        Mode::StartTls,
        SinkOptions {
            tls: Some(&ca),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailtos://bob:{PASSWORD}@127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Retry { reason, .. } = &o else {
        panic!("expected a retry, got {o:?}")
    };
    assert!(
        reason.contains("TLS") && reason.contains("cafile="),
        "{reason}"
    );
    assert!(!reason.contains(PASSWORD));
    assert!(sink.messages().is_empty());
}

#[test]
fn a_long_output_is_attached_whole_and_gzipped() {
    let sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let mut n = notification(State::Failed, Reason::FirstRun);
    let output: String = (0..5000).map(|i| format!("step {i}: ok\n")).collect();
    n.output_tail = Some(output.clone());
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);

    let m = &sink.messages()[0];
    assert!(
        m["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/mixed")
    );
    let gz = parts(m, "application/gzip");
    assert_eq!(gz.len(), 1, "{m}");
    assert_eq!(gz[0]["filename"], "nightly-backup-output.txt.gz");
    assert_eq!(gz[0]["disposition"], "attachment");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&part_bytes(gz[0])[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, output);
    let text = text_of(m, "text/plain");
    assert!(text.contains("step 4999: ok"), "the body shows the end");
    assert!(!text.contains("step 10: ok\n"), "but not all of it");
    assert!(text.contains("attached as nightly-backup-output.txt.gz"));
    assert_eq!(parts(m, "text/html").len(), 1);
}

#[test]
fn the_notifications_own_files_are_attached_as_given() {
    let sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.attachments = vec![belfry_core::Attachment::new(
        "/var/log/df.txt",
        b"/dev/sda1 99%\n".to_vec(),
    )];
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);
    let m = &sink.messages()[0];
    let files = parts(m, "text/plain")
        .into_iter()
        .filter(|p| p["disposition"] == "attachment")
        .collect::<Vec<_>>();
    assert_eq!(files.len(), 1, "{m}");
    assert_eq!(files[0]["filename"], "df.txt");
    assert_eq!(part_bytes(files[0]), b"/dev/sda1 99%\n");
}

#[test]
fn a_wrong_password_is_permanent_and_never_quoted() {
    let sink = Sink::start(
        Mode::Plain,
        SinkOptions {
            auth: Some("bob:right-password"),
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailto://bob:{PASSWORD}@127.0.0.1:{}?mode=insecure&to=ops@example.org",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Permanent { reason } = &o else {
        panic!("expected a permanent failure, got {o:?}")
    };
    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains(PASSWORD), "{reason}");
    assert!(!format!("{ch:?}").contains(PASSWORD));
    assert!(!ch.describe().contains(PASSWORD));
}

#[test]
fn smtp_4xx_answers_retry_and_5xx_answers_are_permanent() {
    let n = notification(State::Failed, Reason::FirstRun);
    for (reply, transient) in [
        ("451 4.3.0 Mail server temporarily rejected message", true),
        ("554 5.6.0 Message rejected", false),
    ] {
        let sink = Sink::start(
            Mode::Plain,
            SinkOptions {
                data_reply: Some(reply),
                ..SinkOptions::default()
            },
        );
        let url = format!(
            "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
            sink.port
        );
        let o = send(parse(&url).unwrap().as_ref(), &n);
        let code = &reply[..3];
        match (&o, transient) {
            (Outcome::Retry { reason, .. }, true) | (Outcome::Permanent { reason }, false) => {
                assert!(reason.contains(code), "{reason}")
            }
            _ => panic!("{reply}: got {o:?}"),
        }
    }
}

#[test]
fn a_refused_connection_is_retried() {
    let port = belfry_testkit::closed_port();
    let url = format!(
        "mailtos://bob:{PASSWORD}@127.0.0.1:{port}?to=ops@example.org&from=belfry@example.com"
    );
    let ch = parse(&url).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Retry { reason, .. } = &o else {
        panic!("expected a retry, got {o:?}")
    };
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert!(!reason.contains(PASSWORD));
}

#[test]
fn the_message_id_is_the_same_for_every_attempt() {
    let sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    for _ in 0..2 {
        assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    }
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        msgs[0]["headers"]["message-id"],
        msgs[1]["headers"]["message-id"]
    );
}

#[test]
fn every_line_on_the_wire_is_crlf_and_at_most_998_octets_whatever_the_attachments_hold() {
    let sink = Sink::start(Mode::Plain, SinkOptions::default());
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    // A megabyte of 5,000-character lines; a short log with bare LF line endings (the one a
    // strict server refused as one line too long); a file without any newline; one already
    // in CRLF lines; bytes that are no text at all (NUL, bare CR and LF, 8-bit); a progress
    // bar's bare CRs; and an empty file.
    let long_line: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut big = Vec::new();
    while big.len() < 1 << 20 {
        big.extend_from_slice(long_line.as_bytes());
        big.push(b'\n');
    }
    let log: String = (0..2000).map(|i| format!("step {i}: ok\n")).collect();
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("long-lines.txt", big),
        ("run.log", log.into_bytes()),
        (
            "no-newline.txt",
            b"one line and no newline at its end".to_vec(),
        ),
        ("crlf.txt", b"first\r\nsecond\r\n".to_vec()),
        ("data.bin", binary),
        ("progress.log", b"10%\r20%\r100%\n\0done".to_vec()),
        ("empty.txt", Vec::new()),
    ];
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.attachments = files
        .iter()
        .map(|(name, data)| belfry_core::Attachment::new(name, data.clone()))
        .collect();
    // The bodies show the output's end: long lines, and a progress bar's carriage returns.
    n.output_tail = Some(format!(
        "{long_line}\nfetching 10%\rfetching 100%\n{long_line}\n"
    ));
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);

    let m = &sink.messages()[0];
    for (name, data) in &files {
        assert!(
            attached(m, name) == *data,
            "{name} does not come back byte for byte"
        );
    }
    let text = text_of(m, "text/plain");
    assert!(
        text.contains(&long_line),
        "the text shows the long line whole"
    );
    assert!(text.contains("fetching 10%\rfetching 100%"));
    assert!(text_of(m, "text/html").contains(&long_line));
    assert_every_line_is_crlf_and_short(&sink.raw_bytes(0));

    // Short lines of ASCII go as they are, unless a bare CR or a NUL is among them.
    let mut n = notification(State::Failed, Reason::FirstRun);
    n.output_tail = Some("fetching 10%\rfetching 100%\nstray \0 byte\n".into());
    assert_eq!(send(parse(&url).unwrap().as_ref(), &n), Outcome::Delivered);
    let m = &sink.messages()[1];
    assert!(text_of(m, "text/plain").contains("fetching 10%\rfetching 100%\r\nstray \0 byte"));
    assert_every_line_is_crlf_and_short(&sink.raw_bytes(1));
}

/// Sends each of `mails` in turn through one context, as a delivery pass does, then closes it.
fn send_in_one_pass(mails: &[(&dyn Channel, &Notification)]) -> Vec<Outcome> {
    let cx = Context::new(Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for (i, (ch, n)) in mails.iter().enumerate() {
            let key = format!("n-{i}:ops");
            let msg = Message {
                notification: n,
                idempotency_key: &key,
            };
            out.push(ch.send(&msg, &cx).await);
        }
        cx.close().await;
        out
    })
}

#[test]
fn mails_to_one_server_and_login_share_one_connection() {
    let sink = Sink::start(
        Mode::Plain,
        SinkOptions {
            auth: Some(&format!("bob:{PASSWORD}")),
            ..SinkOptions::default()
        },
    );
    let url = |to: &str| {
        format!(
            "mailto://bob:{PASSWORD}@127.0.0.1:{}/{to}?mode=insecure&from=belfry@example.com",
            sink.port
        )
    };
    // Two channels (other recipients) on the same server with the same login.
    let ops = parse(&url("ops@example.org")).unwrap();
    let lead = parse(&url("lead@example.org")).unwrap();
    let failed = notification(State::Failed, Reason::FirstRun);
    let ok = notification(State::Ok, Reason::Recovered { after: 1 });
    let outcomes = send_in_one_pass(&[
        (ops.as_ref(), &failed),
        (lead.as_ref(), &failed),
        (ops.as_ref(), &ok),
    ]);
    assert_eq!(outcomes, vec![Outcome::Delivered; 3]);

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["rcpt_tos"], serde_json::json!(["lead@example.org"]));
    assert_eq!(msgs[2]["headers"]["x-belfry-state"], "ok");
    let peers: Vec<&serde_json::Value> = msgs.iter().map(|m| &m["peer"]).collect();
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "every mail over the first connection: {peers:?}"
    );
    assert!(msgs.iter().all(|m| m["login"] == "bob"));
}

#[test]
fn a_kept_connection_the_server_has_closed_is_replaced_and_no_mail_is_lost() {
    let sink = Sink::start(
        Mode::Plain,
        SinkOptions {
            hangup: true,
            ..SinkOptions::default()
        },
    );
    let url = format!(
        "mailto://127.0.0.1:{}?to=ops@example.org&from=belfry@example.com",
        sink.port
    );
    let ch = parse(&url).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    let outcomes = send_in_one_pass(&[(ch.as_ref(), &n), (ch.as_ref(), &n), (ch.as_ref(), &n)]);
    assert_eq!(outcomes, vec![Outcome::Delivered; 3]);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 3, "each mail once");
    assert_ne!(msgs[0]["peer"], msgs[1]["peer"]);
    assert_ne!(msgs[1]["peer"], msgs[2]["peer"]);
}
