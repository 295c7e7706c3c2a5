//! A fleet on one PostgreSQL schema loses nothing: many handles (each one a process's
//! connection) record and deliver at once, and holders that are cut off or stop mid-send
//! leave their rows to the others. The helpers take a `Db` and handle counts, so that a test
//! with real dispatcher processes can drive the same checks.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use belfry_core::{Details, Event, Policy, State, Timestamp};
use belfry_store::{Attempt, Claim, OutboxCounts, RunEnd, RunStart};

use crate::support::*;

/// Jobs × alerts each: 5,000 alerts over 500 jobs, as the issue asks.
const JOBS: usize = 500;
const ALERTS_PER_JOB: usize = 10;

/// What the claimers saw, checked once they are done.
#[derive(Default)]
struct Tally {
    /// Messages sent: one per claimed row.
    messages: AtomicUsize,
    /// Alerts those messages stood for (a digest stands for every row folded into it).
    alerts: AtomicUsize,
    /// Times a claimer got a row of a lane another claimer was still sending.
    lane_overlaps: AtomicUsize,
}

/// Claims and delivers what is due through its own handle until `producing` is over and
/// nothing is left, checking that no lane is ever sent by two claimers at once.
fn claimer(
    db: &Db,
    owner: &str,
    producing: &AtomicBool,
    sending: &Mutex<HashSet<(String, String)>>,
    tally: &Tally,
) {
    let mut s = db.open();
    loop {
        let now = s.now().unwrap();
        let claim = Claim {
            owner,
            lease: Duration::from_secs(600),
            ids: None,
            limit: 25,
            digest_window: Duration::ZERO,
            window_exempt: &[],
            in_order: &[],
        };
        let claimed = match belfry_store::Store::claim_due(&mut s, now, &claim) {
            Ok(c) => c,
            // A busy database is a reason to try again, never to lose a row.
            Err(e) if e.is_retryable() => continue,
            Err(e) => panic!("{owner}: {e}"),
        };
        if claimed.is_empty() {
            let c = s.outbox_counts().unwrap();
            if !producing.load(Ordering::SeqCst) && c.pending == 0 && c.sending == 0 {
                return;
            }
            s.wait_for_work(Duration::from_millis(100)).unwrap();
            continue;
        }
        let lanes: Vec<(String, String)> = claimed
            .iter()
            .map(|c| (c.notification.job.clone(), c.channel.clone()))
            .collect();
        {
            let mut held = sending.lock().unwrap();
            for lane in &lanes {
                if !held.insert(lane.clone()) {
                    tally.lane_overlaps.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let mut attempts = Vec::new();
        for c in &claimed {
            tally.messages.fetch_add(1, Ordering::SeqCst);
            let stands_for = c.notification.digest.as_ref().map_or(1, |d| d.count);
            tally
                .alerts
                .fetch_add(usize::try_from(stands_for).unwrap(), Ordering::SeqCst);
            attempts.push((c.id, Attempt::Delivered, Duration::ZERO));
        }
        // The lanes are free once recorded; they leave the set first, so that a claimer that
        // takes one the moment it is free is never counted as an overlap.
        {
            let mut held = sending.lock().unwrap();
            for lane in &lanes {
                held.remove(lane);
            }
        }
        let now = s.now().unwrap();
        s.record_attempts(&attempts, now).unwrap();
    }
}

/// Every row delivered, none dead or left, and no row sent twice.
fn assert_all_delivered_once(db: &Db, expected_rows: u64) {
    let c = db.open().outbox_counts().unwrap();
    assert_eq!(
        c,
        OutboxCounts {
            delivered: expected_rows,
            ..OutboxCounts::default()
        }
    );
    // A row that went out itself was recorded once; one that went in a digest never.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM outbox o WHERE (SELECT COUNT(*) FROM attempts a
                 WHERE a.outbox_id = o.id) <> CASE WHEN o.folded_into IS NULL THEN 1 ELSE 0 END"
        ),
        0
    );
}

#[test]
fn a_fleet_delivers_each_of_5000_alerts_over_500_jobs_exactly_once() {
    let db = Db::postgres();
    let t0 = db.open().now().unwrap().add_millis(-3_600_000);
    let producing = AtomicBool::new(true);
    let producers_left = AtomicUsize::new(4);
    let sending = Mutex::new(HashSet::new());
    let tally = Tally::default();
    std::thread::scope(|scope| {
        for p in 0..4 {
            let (db, producing, producers_left) = (&db, &producing, &producers_left);
            scope.spawn(move || {
                let mut s = db.open();
                // Each producer its jobs; alerts alternate failed and OK, so each one notifies.
                for i in 0..ALERTS_PER_JOB {
                    for job in (p..JOBS).step_by(4) {
                        let state = if i % 2 == 0 { State::Failed } else { State::Ok };
                        let ev = Event {
                            job: format!("job-{job}"),
                            state,
                            at: t0.add_millis((i * JOBS + job) as i64),
                            details: Details::default(),
                        };
                        let rec = s
                            .record_event(&ev, &Policy::default(), to(&["hook"]))
                            .unwrap();
                        assert_eq!(rec.outbox_ids.len(), 1, "{rec:?}");
                    }
                }
                if producers_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                    producing.store(false, Ordering::SeqCst);
                }
            });
        }
        let claimers: Vec<_> = (0..4)
            .map(|k| {
                let (db, producing, sending, tally) = (&db, &producing, &sending, &tally);
                scope.spawn(move || claimer(db, &format!("claimer-{k}"), producing, sending, tally))
            })
            .collect();
        // What the database says while they work: never two rows of a lane being sent.
        let mut watch = db.sql();
        let mut samples = 0;
        while !claimers.iter().all(|c| c.is_finished()) {
            let doubled: i64 = watch
                .query_one(
                    "SELECT COUNT(*) FROM (SELECT job, channel FROM outbox
                     WHERE status = 'sending' GROUP BY job, channel HAVING COUNT(*) > 1) d",
                    &[],
                )
                .unwrap()
                .get(0);
            assert_eq!(doubled, 0, "a lane with two rows being sent");
            samples += 1;
            // A sample now and then; the claimers' own check sees every claim.
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(samples > 0);
    });
    let alerts = (JOBS * ALERTS_PER_JOB) as u64;
    assert_eq!(tally.lane_overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(tally.alerts.load(Ordering::SeqCst) as u64, alerts);
    assert_all_delivered_once(&db, alerts);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM attempts") as usize,
        tally.messages.load(Ordering::SeqCst)
    );
}

/// Twenty alerts, one per job, due at `t0`.
fn twenty_alerts(db: &Db, t0: Timestamp) {
    let mut s = db.open();
    for j in 0..20 {
        finish(
            &mut s,
            &event(&format!("job-{j}"), &format!("r{j}"), State::Failed, t0, 1),
            &["hook"],
        );
    }
}

/// Claims everything due at `now` through `s` as `owner`: the rows' ids.
fn claim_all(s: &mut Store, owner: &str, now: Timestamp) -> Vec<i64> {
    s.claim_due(now, Duration::from_secs(30), owner, None, 100)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

/// After the holder of `held` is gone: a rescuer, once the leases ran out, claims them all
/// again (each a possible duplicate) and delivers them.
fn rescue(db: &Db, held: &[i64], after_lease: Timestamp) {
    let mut rescuer = db.open();
    let mut taken = claim_all(&mut rescuer, "rescuer", after_lease);
    taken.sort_unstable();
    assert_eq!(taken, held);
    let delivered: Vec<_> = taken
        .iter()
        .map(|&id| (id, Attempt::Delivered, Duration::ZERO))
        .collect();
    rescuer.record_attempts(&delivered, after_lease).unwrap();
    let c = rescuer.outbox_counts().unwrap();
    assert_eq!((c.delivered, c.pending, c.sending, c.dead), (20, 0, 0, 0));
    assert_eq!(
        c.possible_duplicates, 20,
        "each reclaimed row may have gone out twice"
    );
}

#[test]
fn a_holder_whose_connection_is_cut_mid_send_loses_nothing() {
    let db = Db::postgres();
    let name = format!("holder_{}", std::process::id());
    let mut holder = Store::at(&db.location_with(&format!("application_name={name}"))).unwrap();
    let t0 = holder.now().unwrap();
    twenty_alerts(&db, t0);
    let mut held = claim_all(&mut holder, "holder", t0);
    held.sort_unstable();
    assert_eq!(held.len(), 20);
    // The network fails while it sends: it can record nothing.
    assert_eq!(db.cut_connections(&name), 1);
    let sent: Vec<_> = held
        .iter()
        .map(|&id| (id, Attempt::Delivered, Duration::ZERO))
        .collect();
    let err = holder.record_attempts(&sent, t0).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    drop(holder);
    rescue(&db, &held, t0.add_millis(30_001));
}

#[test]
fn a_holder_that_stops_mid_send_loses_nothing_once_its_lease_runs_out() {
    let db = Db::postgres();
    let mut holder = db.open();
    let t0 = holder.now().unwrap();
    twenty_alerts(&db, t0);
    let mut held = claim_all(&mut holder, "holder", t0);
    held.sort_unstable();
    // Killed between sending and recording: its handle goes, its leases stay.
    drop(holder);
    let mut early = db.open();
    assert!(claim_all(&mut early, "early", t0.add_millis(29_999)).is_empty());
    rescue(&db, &held, t0.add_millis(30_001));
}

#[test]
fn runs_of_one_job_finished_through_many_handles_keep_one_history_and_count_every_problem() {
    let db = Db::postgres();
    let (handles, runs_each) = (6, 20);
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    std::thread::scope(|scope| {
        for h in 0..handles {
            let db = &db;
            scope.spawn(move || {
                let mut s = db.open();
                for r in 0..runs_each {
                    let id = format!("h{h}-r{r}");
                    let at = t0.add_millis((r * handles + h) as i64 * 10);
                    s.start_run(&RunStart {
                        id: id.clone(),
                        job: "shared".into(),
                        started: at.add_millis(-5),
                        host: Some(format!("host-{h}")),
                        pid: Some(h as u32),
                        boot_id: None,
                    })
                    .unwrap();
                    let ev = event("shared", &id, State::Failed, at, 1);
                    s.finish_run(
                        &RunEnd {
                            event: &ev,
                            output: None,
                            output_bytes: 0,
                        },
                        &Policy::default(),
                        to(&["hook"]),
                    )
                    .unwrap();
                }
            });
        }
    });
    let total = (handles * runs_each) as i64;
    let s = db.open();
    assert_eq!(s.runs("shared", 1000, false).unwrap().len() as i64, total);
    assert!(s.running_runs().unwrap().is_empty());
    // Every problem counted once, across handles: none decided from a state another had
    // already moved on from.
    assert_eq!(
        s.snapshot("shared").unwrap().unwrap().consecutive_problems as i64,
        total
    );
    // Each message is a run that notified: none lost, none made twice.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM runs WHERE job = 'shared' AND notified"),
        db.count("SELECT COUNT(*) FROM notifications WHERE job = 'shared'")
    );
    // One first alert, however many handles saw the job new at once.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM notifications WHERE reason = 'first_run'"),
        1
    );
}
