use std::borrow::Cow;

use super::*;
use crate::client::{Belfry, Guard};

/// A worker of its own beside a client's (which stays idle: nothing is queued to it),
/// remembering at most `cap` jobs.
fn worker(dir: &std::path::Path, cap: usize) -> (Guard, Worker) {
    let guard = Belfry::builder()
        .home(dir)
        .quiet(true)
        .channel("log", format!("file://{}/alerts.jsonl", dir.display()))
        .build()
        .expect("a client");
    let mut w = Worker::new(guard.client().shared().clone());
    w.job_memory = cap;
    assert!(w.open_store());
    (guard, w)
}

fn fail(w: &mut Worker, job: &str) {
    let now = Timestamp::now();
    let r = Record::new(Cow::Owned(job.to_owned()), State::Failed, now);
    w.apply_events(job, r, None, 1, now);
}

#[test]
fn the_worker_remembers_a_bounded_number_of_jobs_and_loses_no_announced_count() {
    let dir = tempfile::tempdir().unwrap();
    let (guard, mut w) = worker(dir.path(), 16);
    // 40 jobs fail twice each inside the repeat window: the first failure is announced,
    // the second held back to be counted in the job's next message.
    for i in 0..40 {
        let job = format!("job-{i}");
        fail(&mut w, &job);
        fail(&mut w, &job);
        assert!(w.jobs.len() <= 16, "{} jobs remembered", w.jobs.len());
    }
    let sent = w.shared.counters.notifications.load(Ordering::Relaxed);
    let held: u64 = w.jobs.values().map(|m| m.pending).sum();
    // Every held-back failure is either still counted in memory or went out early as a
    // digest when room was made: 40 first alerts, and one digest per forgotten job.
    assert_eq!(sent - 40 + held, 40, "sent {sent}, held {held}");
    assert!(sent > 40, "room was made by sending digests");
    // The channel gets them all; the digests each count their one held-back failure.
    let report = guard.finish();
    assert_eq!(report.pending + report.dead, 0, "{report:?}");
    let lines = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
    let alerts: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Per job, what the channel was told (a message counts 1, or its digest's count:
    // delivery may fold a job's two messages into one) and what is still held back add
    // up to its two failures.
    for i in 0..40 {
        let job = format!("job-{i}");
        let told: u64 = alerts
            .iter()
            .filter(|a| a["job"] == job.as_str())
            .map(|a| a["digest"]["count"].as_u64().unwrap_or(1))
            .sum();
        let held = w.jobs.get(&job).map_or(0, |m| m.pending);
        assert_eq!(told + held, 2, "{job}: told {told}, held {held}");
    }
}
