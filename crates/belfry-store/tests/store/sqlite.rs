//! What only the SQLite backend promises: a file that is not a store is left alone, the
//! schema of a file is versioned from the first release and migrated in place, the WAL stays
//! small, and `status` finds running runs by index.

use std::time::Duration;

use belfry_core::{Policy, State, Timestamp};
use belfry_store::RunEnd;

use crate::support::*;

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let junk = b"this is not a database, it is somebody's notes\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    assert!(err.to_string().contains("b.db"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn a_store_from_a_newer_belfry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    drop(Store::open(&path).unwrap());
    {
        let conn = rusqlite_raw(&path);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("version 99") && err.contains("newer"), "{err}");
}

#[test]
fn the_schema_is_versioned_from_the_first_release() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("b.db")).unwrap();
    assert_eq!(s.schema_version().unwrap(), 11);
}

#[test]
fn a_first_release_store_is_migrated_with_its_outbox_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    {
        // What version 1 wrote: one notification waiting for channel "a".
        let conn = rusqlite_raw(&path);
        conn.execute_batch(include_str!("../v1.sql")).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 11);
    // Every job from before checks got a uuid of its own (version 4), and no schedule.
    let jobs = s.jobs().unwrap();
    assert!(!jobs.is_empty());
    let mut uuids = Vec::new();
    for j in &jobs {
        let c = s
            .check(belfry_store::JobRef::Name(&j.name))
            .unwrap()
            .unwrap();
        assert_eq!(c.uuid.get_version_num(), 4);
        assert_eq!((c.expect, c.late_at), (None, None));
        uuids.push(c.uuid);
    }
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), jobs.len());
    // The dump's times are those of the day it was made: claim at the row's own due time (2 s
    // after it was recorded, well inside its delivery deadline) rather than at today's date.
    let recorded = Timestamp::from_millis(V1_ROW_RECORDED_MS);
    let claimed = s
        .claim_due(
            recorded.add_millis(2_000),
            Duration::from_secs(30),
            "p",
            None,
            10,
        )
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].notification.job, "old-job");
    assert_eq!(s.outbox_rows(true, 10).unwrap()[0].job, "old-job");
    // The job's row learnt its last notification from the log.
    let job = s.job("old-job").unwrap().unwrap();
    let last = job.last_notification.unwrap();
    assert_eq!((last.reason.as_str(), last.at), ("first_run", recorded));
}

/// When `tests/v1.sql`'s pending row was written (`outbox.created_ms`); its delivery deadline
/// is a day later.
const V1_ROW_RECORDED_MS: i64 = 1_795_310_878_445;

fn rusqlite_raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn many_short_lived_processes_do_not_grow_the_wal() {
    // Each `belfry run` of a short job opens the store, writes once (the job was over before
    // the store was open, so there is no start to record), and closes it. A WAL that is never
    // reset grows with every run and makes every later open slower: it must stay small.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    for i in 0..300 {
        let mut s = Store::open(&path).unwrap();
        let id = format!("r{i}");
        let ev = event("j", &id, State::Ok, t0.add_millis(i * 1000 + 10), 0);
        s.finish_run(
            &RunEnd {
                event: &ev,
                output: Some("some output\n"),
                output_bytes: 12,
            },
            &Policy::default(),
            to(&["c"]),
        )
        .unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("b.db-wal")).map_or(0, |m| m.len());
    assert!(
        wal < belfry_store::WAL_TRIM_BYTES + 128 * 1024,
        "the WAL grew to {wal} bytes"
    );
}

#[test]
fn runs_held_back_before_an_upgrade_are_counted_by_the_first_message_after_it() {
    // A first-release store whose job failed (announced), then failed twice more inside the
    // repeat window: the recovery after the upgrade counts all three.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let t = V1_ROW_RECORDED_MS;
    {
        let conn = rusqlite_raw(&path);
        conn.execute_batch(include_str!("../v1.sql")).unwrap();
        for (i, ended) in [(1, t + 300), (2, t + 600)] {
            conn.execute(
                "INSERT INTO runs (id, job, state, started_ms, ended_ms, exit_code, reason,
                    notified)
                 VALUES (?1, 'old-job', 'failed', ?2, ?3, 1, 'within_repeat_window', 0)",
                rusqlite::params![format!("held-{i}"), ended - 2, ended],
            )
            .unwrap();
        }
        conn.execute(
            "UPDATE jobs SET consecutive_problems = 3 WHERE name = 'old-job'",
            [],
        )
        .unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    let ev = event(
        "old-job",
        "after",
        State::Ok,
        Timestamp::from_millis(t + 900),
        0,
    );
    let n = finish(&mut s, &ev, &["a"])
        .notification
        .expect("a recovery");
    assert_eq!(n.reason, "recovered");
    assert_eq!(problems_told(&n), 2, "{:?}", n.digest);
    assert_eq!(n.digest.as_ref().map(|d| d.count), Some(3));
}

#[test]
fn a_jobs_oldest_running_run_is_found_without_reading_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    drop(Store::open(&path).unwrap());
    // The index `status` needs: running runs by job, so that a job's finished runs are never
    // read to find its running ones.
    let conn = rusqlite_raw(&path);
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT MIN(started_ms) FROM runs
             WHERE job = 'j' AND state = 'running'",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("runs_running (job=?)")),
        "{plan:?}"
    );
}

#[test]
fn held_back_ok_runs_and_a_streak_before_an_upgrade_are_counted_as_before_it() {
    // Two more first-release jobs: "steady" was OK, told at t, then OK twice inside the
    // heartbeat window; "flaky" was OK (told at t, then once more quietly), then failed twice,
    // below a threshold of 3.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let t = V1_ROW_RECORDED_MS;
    {
        let conn = rusqlite_raw(&path);
        conn.execute_batch(include_str!("../v1.sql")).unwrap();
        for (job, state, since, problems) in
            [("steady", "ok", t, 0), ("flaky", "failed", t + 200, 2)]
        {
            conn.execute(
                "INSERT INTO jobs (name, state, since_ms, consecutive_problems, problem_notified,
                    last_notified_ms, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?5)",
                rusqlite::params![job, state, since, problems, t],
            )
            .unwrap();
        }
        let runs = [
            ("steady", "ok", 0, 1),
            ("steady", "ok", 100, 0),
            ("steady", "ok", 200, 0),
            ("flaky", "ok", 0, 1),
            ("flaky", "ok", 100, 0),
            ("flaky", "failed", 200, 0),
            ("flaky", "failed", 300, 0),
        ];
        for (i, (job, state, after, notified)) in runs.into_iter().enumerate() {
            conn.execute(
                "INSERT INTO runs (id, job, state, started_ms, ended_ms, reason, notified)
                 VALUES (?1, ?2, ?3, ?4, ?4, 'x', ?5)",
                rusqlite::params![format!("v1-{i}"), job, state, t + after, notified],
            )
            .unwrap();
        }
    }
    let mut s = Store::open(&path).unwrap();
    let hour = 3_600_000;
    let beat = event(
        "steady",
        "b",
        State::Ok,
        Timestamp::from_millis(t + hour),
        0,
    );
    let n = finish(&mut s, &beat, &["a"])
        .notification
        .expect("a heartbeat");
    assert_eq!(n.reason, "heartbeat");
    let d = n.digest.expect("the OK runs held back");
    assert_eq!((d.count, d.first), (3, Timestamp::from_millis(t + 100)));
    // The streak's problems count from its first; the OK runs before it do not.
    let threshold = Policy {
        fail_threshold: 3,
        ..Policy::default()
    };
    let third = event(
        "flaky",
        "f",
        State::Failed,
        Timestamp::from_millis(t + 400),
        1,
    );
    let rec = s
        .finish_run(
            &RunEnd {
                event: &third,
                output: None,
                output_bytes: 0,
            },
            &threshold,
            to(&["a"]),
        )
        .unwrap();
    let n = rec.notification.expect("the threshold reached");
    assert_eq!(n.reason, "threshold_reached");
    let d = n.digest.expect("the streak");
    assert_eq!((d.count, d.first), (3, Timestamp::from_millis(t + 200)));
    assert!(d.states.is_empty(), "only failures: {d:?}");
}

#[test]
fn a_files_clock_is_this_hosts_and_nothing_wakes_a_wait_for_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("b.db")).unwrap();
    let before = Timestamp::now();
    let now = s.now().unwrap();
    assert!(before <= now && now <= Timestamp::now());
    // A commit by another handle tells no one: the wait is a pause, and says it was not woken.
    finish(
        &mut Store::open(&dir.path().join("b.db")).unwrap(),
        &event("j", "r1", State::Failed, now, 1),
        &["a"],
    );
    assert!(!s.wait_for_work(Duration::from_millis(5)).unwrap());
}

/// WAL bytes after `runs` commits of a run with about 6 KB of output each, written by a
/// handle that left the upkeep to another (`leave`) or not.
fn wal_after_writes(leave: bool, runs: i64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let mut s = Store::open(&path).unwrap();
    if leave {
        s.leave_upkeep().unwrap();
    }
    let t0 = Timestamp::now() - std::time::Duration::from_secs(3600);
    let mut rng = belfry_testkit::Lcg(7);
    for i in 0..runs {
        // Output that does not compress, so that each commit writes pages.
        let output: String = (0..6000)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        let ev = event("j", &format!("r{i}"), State::Ok, t0.add_millis(i * 10), 0);
        let end = RunEnd {
            event: &ev,
            output: Some(&output),
            output_bytes: output.len() as u64,
        };
        s.finish_run(&end, &Policy::default(), to(&["c"])).unwrap();
    }
    std::fs::metadata(dir.path().join("b.db-wal")).map_or(0, |m| m.len())
}

#[test]
fn a_handle_that_leaves_the_upkeep_checkpoints_rarely_and_another_does_it() {
    let page = 4096 + 24;
    // SQLite's own bound: a checkpoint every 1,000 pages keeps the log near that.
    assert!(wal_after_writes(false, 800) < 1300 * page);
    // Left to another handle: the log holds what was written, up to 100,000 pages.
    assert!(wal_after_writes(true, 800) > 1300 * page);
    // Another handle's upkeep copies the log into the database: a writer starts it over.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let mut writer = Store::open(&path).unwrap();
    writer.leave_upkeep().unwrap();
    // Opened before the writes: opening checkpoints a long log itself.
    let mut other = Store::open(&path).unwrap();
    let t0 = Timestamp::now() - std::time::Duration::from_secs(3600);
    let long: String = {
        let mut rng = belfry_testkit::Lcg(9);
        (0..5000)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect()
    };
    let write = |s: &mut Store, i: i64| {
        let ev = event("j", &format!("r{i}"), State::Ok, t0.add_millis(i), 0);
        let end = RunEnd {
            event: &ev,
            output: Some(&long),
            output_bytes: 5000,
        };
        s.finish_run(&end, &Policy::default(), to(&["c"])).unwrap();
    };
    for i in 0..50 {
        write(&mut writer, i);
    }
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    other.upkeep().unwrap();
    assert!(
        size() > before + 50 * 4096,
        "the runs' pages were copied into the database: {before} -> {}",
        size()
    );
}

#[test]
fn a_call_waits_at_the_fork_gate_until_it_opens() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = Store::open(&path).unwrap();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    belfry_store::close_for_fork();
    let call = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            store.jobs().unwrap();
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let waited = !done.load(Ordering::SeqCst);
    belfry_store::open_after_fork();
    call.join().unwrap();
    assert!(waited, "a store call went through a closed gate");
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn the_sweep_prunes_busy_jobs_across_the_store_and_keeps_every_jobs_newest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let mut s = Store::open(&path).unwrap();
    s.set_retention(belfry_store::Retention {
        runs_per_job: 5,
        notifications_per_job: 5,
    });
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    // The oldest rows: a run still going, and a job that ran three times and never again.
    s.start_run(&belfry_store::RunStart {
        id: "going".into(),
        job: "busy-0".into(),
        started: t0,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    for i in 0..3 {
        finish(
            &mut s,
            &event("rare", &format!("rare-{i}"), State::Ok, t0, 0),
            &[],
        );
    }
    // Then thirty jobs, forty runs each, taking turns.
    for round in 0..40 {
        for job in 0..30 {
            let at = t0.add_millis(1 + round * 30 + job);
            let ev = event(
                &format!("busy-{job}"),
                &format!("b{job}-{round}"),
                State::Ok,
                at,
                0,
            );
            finish(&mut s, &ev, &[]);
        }
    }
    drop(s);
    let conn = rusqlite_raw(&path);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    for job in 0..30 {
        let newest: Vec<String> = (35..40).map(|r| format!("'b{job}-{r}'")).collect();
        let kept = count(&format!(
            "SELECT COUNT(*) FROM runs WHERE id IN ({})",
            newest.join(",")
        ));
        assert_eq!(kept, 5, "the newest runs of busy-{job}");
    }
    assert_eq!(count("SELECT COUNT(*) FROM runs WHERE job = 'rare'"), 3);
    assert_eq!(count("SELECT COUNT(*) FROM runs WHERE id = 'going'"), 1);
    // What the busy jobs keep, and at most the rows written since the sweep's last step (one
    // step in 64 new rows; this store is smaller than a step, so each step sees all of it).
    let busy = count("SELECT COUNT(*) FROM runs WHERE job LIKE 'busy-%' AND state <> 'running'");
    assert!(
        (150..150 + 64).contains(&busy),
        "{busy} runs of busy jobs kept"
    );
    // Each finished run has its number among its job's, and the job its count.
    assert_eq!(count("SELECT n_runs FROM jobs WHERE name = 'busy-7'"), 40);
    assert_eq!(count("SELECT MAX(seq) FROM runs WHERE job = 'busy-7'"), 40);
    assert_eq!(count("SELECT COUNT(*) FROM runs WHERE seq IS NULL"), 1);
}
