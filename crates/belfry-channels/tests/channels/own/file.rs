//! The file channel: JSON lines in the documented schema, never interleaved.

use std::os::unix::fs::PermissionsExt;

use belfry_channels::{Outcome, parse};
use belfry_core::{Notification, Reason, State};

use crate::{notification, send};

#[test]
fn each_notification_is_one_json_line_in_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let ch = parse(&format!("file://{}", path.display())).unwrap();
    let sent = [
        notification(State::Failed, Reason::FirstRun),
        notification(State::Ok, Reason::Recovered { after: 1 }),
    ];
    for n in &sent {
        assert_eq!(send(ch.as_ref(), n), Outcome::Delivered);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(text.ends_with('\n'));
    for (line, n) in lines.iter().zip(&sent) {
        let back: Notification = serde_json::from_str(line).unwrap();
        assert_eq!(&back, n);
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["version"], 1);
        assert!(v.get("type").is_some() && v.get("reason_text").is_some());
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn concurrent_writers_never_interleave_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let url = format!("file://{}", path.display());
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let ch = parse(&url).unwrap();
                for i in 0..15 {
                    let mut n = notification(State::Failed, Reason::FirstRun);
                    n.id = format!("w{w}-{i}");
                    // Ten times what a pipe writes atomically.
                    n.output_tail = Some(format!("{w}").repeat(40_000));
                    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| {
            let n: Notification = serde_json::from_str(l).expect("every line is whole");
            let tail = n.output_tail.unwrap();
            assert!(tail.chars().all(|c| n.id.starts_with(&format!("w{c}"))));
            n.id
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 90);
}

#[test]
fn a_missing_directory_is_retried_with_the_path_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir/alerts.jsonl");
    let ch = parse(&format!("file://{}", path.display())).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("no-such-dir/alerts.jsonl")),
        "{o:?}"
    );
}
