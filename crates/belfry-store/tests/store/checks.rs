//! Checks (`belfry serve`): pings, schedules, pauses and the late sweep, on both backends.

use std::time::Duration;

use belfry_core::{Expect, Kind, Policy, Schedule, State, Timestamp};
use belfry_store::{
    CheckChange, CheckMeta, JobRef, Limits, PINGS_PER_JOB, Ping, PingKind, PingOutcome, RuleBook,
    RunEnd, RunStart, Uuid, ping_run_id,
};

use crate::support::*;

/// Every job alerts channel `ops`, with the default policy.
struct Book;

impl RuleBook for Book {
    fn policy(&self, _job: &str) -> Policy {
        Policy::default()
    }
    fn route(&self, _job: &str, _state: &State, _recovered: bool) -> Vec<String> {
        vec!["ops".into()]
    }
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

fn ping<'a>(job: JobRef<'a>, kind: PingKind, at: Timestamp) -> Ping<'a> {
    Ping {
        job,
        kind,
        rid: None,
        at,
        body: b"",
        create: false,
        remote: Some("127.0.0.1"),
        method: "POST",
        user_agent: Some("curl"),
    }
}

fn every(period_ms: u64, grace_ms: u64, max_runtime_ms: Option<u64>) -> Expect {
    Expect::new(
        Schedule::period(Duration::from_millis(period_ms)).unwrap(),
        Duration::from_millis(grace_ms),
        max_runtime_ms.map(Duration::from_millis),
    )
    .unwrap()
}

fn one(s: &mut Store, p: Ping<'_>) -> PingOutcome {
    s.record_pings(&[p], &Book).unwrap().pop().unwrap()
}

fn recorded(o: PingOutcome) -> Option<belfry_store::Recorded> {
    match o {
        PingOutcome::Recorded { recorded, .. } => recorded.map(|r| *r),
        PingOutcome::NotFound => panic!("not found"),
    }
}

fn a_job_is_late_at_its_last_report_plus_period_and_grace_and_a_ping_recovers_it(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    s.set_expect("backup", Some(&every(2000, 1000, None)), t0)
        .unwrap();
    // Never reported: counted from when the schedule was set.
    assert_eq!(s.next_late().unwrap(), Some(t0.add_millis(3000)));
    let t1 = t0.add_millis(10_000);
    let out = one(&mut s, ping(JobRef::Name("backup"), PingKind::Success, t1));
    assert!(
        recorded(out).is_some(),
        "a success is a run through the rules"
    );
    let c = s.check(JobRef::Name("backup")).unwrap().unwrap();
    assert_eq!(c.late_at, Some(t1.add_millis(3000)));
    assert_eq!(c.last_report, Some(t1));
    assert!(
        s.mark_late(t1.add_millis(2999), 100, &Book)
            .unwrap()
            .is_empty()
    );
    let late = s.mark_late(t1.add_millis(3000), 100, &Book).unwrap();
    assert_eq!(late.len(), 1);
    let n = late[0]
        .notification
        .as_ref()
        .expect("a late job is a problem told");
    assert_eq!(n.state, State::Late);
    assert_eq!(late[0].outbox_ids.len(), 1);
    let error = late[0].next.as_ref().map(|n| n.state);
    assert_eq!(error, Some(State::Late));
    let snap = s.snapshot("backup").unwrap().unwrap();
    assert_eq!(snap.state, State::Late);
    // Marked once; the next due time plus grace is the next deadline.
    assert!(
        s.mark_late(t1.add_millis(3000), 100, &Book)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_late().unwrap(), Some(t1.add_millis(5000)));
    let back = one(
        &mut s,
        ping(
            JobRef::Name("backup"),
            PingKind::Success,
            t1.add_millis(4000),
        ),
    );
    let rec = recorded(back).unwrap();
    let n = rec.notification.expect("a recovery is told");
    assert_eq!(n.kind, Kind::Recovered);
    assert_eq!(s.next_late().unwrap(), Some(t1.add_millis(7000)));
}

fn a_late_jobs_error_says_since_when_and_what_was_expected(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    s.set_expect("j", Some(&every(2000, 1000, None)), t0)
        .unwrap();
    one(
        &mut s,
        ping(JobRef::Name("j"), PingKind::Log, t0.add_millis(1)),
    );
    let late = s.mark_late(t0.add_millis(10_000), 10, &Book).unwrap();
    let n = late[0].notification.as_ref().unwrap();
    let err = n.error.as_deref().unwrap_or_default();
    assert!(
        err.contains(&t0.add_millis(1).to_string()) && err.contains("every 2s, grace 1s"),
        "{err}"
    );
}

fn a_paused_job_is_never_late_and_a_ping_resumes_it(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    s.set_expect("j", Some(&every(2000, 1000, None)), t0)
        .unwrap();
    assert!(s.set_paused("j", true, t0).unwrap());
    assert!(!s.set_paused("nobody", true, t0).unwrap());
    assert_eq!(s.next_late().unwrap(), None);
    assert!(
        s.mark_late(t0.add_millis(100_000), 10, &Book)
            .unwrap()
            .is_empty()
    );
    assert!(s.check(JobRef::Name("j")).unwrap().unwrap().paused);
    let t1 = t0.add_millis(200_000);
    one(&mut s, ping(JobRef::Name("j"), PingKind::Log, t1));
    let c = s.check(JobRef::Name("j")).unwrap().unwrap();
    assert!(!c.paused);
    assert_eq!(c.late_at, Some(t1.add_millis(3000)));
    // Resuming by hand counts the silence from then.
    s.set_paused("j", true, t1).unwrap();
    let t2 = t1.add_millis(50_000);
    s.set_paused("j", false, t2).unwrap();
    assert_eq!(s.next_late().unwrap(), Some(t2.add_millis(3000)));
}

fn two_jobs_whose_clients_use_one_rid_keep_a_run_each(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let rid = Uuid::now_v7();
    for (job, at) in [("a", 0), ("b", 1000)] {
        let mut p = ping(JobRef::Name(job), PingKind::Start, t0.add_millis(at));
        p.create = true;
        p.rid = Some(rid);
        one(&mut s, p);
    }
    assert_eq!(
        s.running_runs().unwrap().len(),
        2,
        "one running run per job"
    );
    for (job, at) in [("a", 4000), ("b", 9000)] {
        let mut fin = ping(JobRef::Name(job), PingKind::Success, t0.add_millis(at));
        fin.rid = Some(rid);
        one(&mut s, fin);
    }
    assert!(s.running_runs().unwrap().is_empty());
    for (job, secs) in [("a", 4), ("b", 8)] {
        let runs = s.runs(job, 10, false).unwrap();
        assert_eq!(runs.len(), 1, "{job}: {runs:?}");
        assert_eq!(runs[0].id, ping_run_id(job, rid));
        assert_eq!(runs[0].duration, Some(Duration::from_secs(secs)), "{job}");
    }
    // The pings keep the rid the client sent.
    assert_eq!(s.pings("b", 10).unwrap()[0].rid, Some(rid));
}

fn starts_and_finishes_pair_by_rid_and_rid_less_ones_by_the_latest_start(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let job = JobRef::Name("j");
    let mut p = ping(job, PingKind::Start, t0);
    p.create = true;
    p.rid = Some(a);
    assert!(matches!(
        one(&mut s, p),
        PingOutcome::Recorded { created: true, .. }
    ));
    p.rid = Some(b);
    p.at = t0.add_millis(1000);
    one(&mut s, p);
    let mut fin = ping(job, PingKind::Success, t0.add_millis(5000));
    fin.rid = Some(a);
    let ra = recorded(one(&mut s, fin)).unwrap();
    assert_eq!(ra.next.unwrap().state, State::Ok);
    let mut fin = ping(job, PingKind::Exit(3), t0.add_millis(7000));
    fin.rid = Some(b);
    fin.body = b"it broke\n";
    one(&mut s, fin);
    let runs = s.runs("j", 10, true).unwrap();
    let run_a = runs.iter().find(|r| r.id == ping_run_id("j", a)).unwrap();
    let run_b = runs.iter().find(|r| r.id == ping_run_id("j", b)).unwrap();
    assert_eq!(run_a.duration, Some(Duration::from_secs(5)));
    assert_eq!((run_b.state, run_b.exit_code), (State::Failed, Some(3)));
    assert_eq!(run_b.duration, Some(Duration::from_secs(6)));
    assert_eq!(run_b.output.as_deref(), Some("it broke\n"));

    // Without rid: a second start replaces the first, and the finish pairs with it.
    one(&mut s, ping(job, PingKind::Start, t0.add_millis(10_000)));
    one(&mut s, ping(job, PingKind::Start, t0.add_millis(11_000)));
    assert_eq!(s.running_runs().unwrap().len(), 1);
    one(&mut s, ping(job, PingKind::Success, t0.add_millis(14_000)));
    assert!(s.running_runs().unwrap().is_empty());
    let last = &s.runs("j", 1, false).unwrap()[0];
    assert_eq!(last.duration, Some(Duration::from_secs(3)));
    // A finish with no start is a run of no duration.
    one(&mut s, ping(job, PingKind::Fail, t0.add_millis(20_000)));
    let last = &s.runs("j", 1, false).unwrap()[0];
    assert_eq!(
        (last.state, last.duration),
        (State::Failed, Some(Duration::ZERO))
    );
    assert_eq!(s.runs("j", 100, false).unwrap().len(), 4);
}

fn a_log_ping_is_kept_and_changes_no_state(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let mut p = ping(JobRef::Name("j"), PingKind::Log, t0);
    p.create = true;
    p.body = b"hello \xff";
    assert!(recorded(one(&mut s, p)).is_none());
    assert_eq!(s.snapshot("j").unwrap(), None);
    assert!(s.runs("j", 10, false).unwrap().is_empty());
    let kept = s.pings("j", 10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, PingKind::Log);
    assert_eq!(kept[0].body, "hello \u{fffd}");
    assert_eq!(kept[0].method, "POST");
    assert_eq!(kept[0].remote.as_deref(), Some("127.0.0.1"));
    assert_eq!(kept[0].user_agent.as_deref(), Some("curl"));
    assert_eq!(kept[0].at, t0);
}

fn jobs_are_found_by_uuid_or_name_and_created_by_name_only_when_asked(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let p = ping(JobRef::Name("new"), PingKind::Success, t0);
    assert!(matches!(one(&mut s, p), PingOutcome::NotFound));
    assert!(s.check(JobRef::Name("new")).unwrap().is_none());
    let unknown = ping(JobRef::Uuid(Uuid::now_v7()), PingKind::Success, t0);
    assert!(matches!(one(&mut s, unknown), PingOutcome::NotFound));
    // A job first written by `belfry run` has a uuid too, and pings reach it by it.
    s.start_run(&RunStart {
        id: "r1".into(),
        job: "cli".into(),
        started: t0,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    let c = s.check(JobRef::Name("cli")).unwrap().unwrap();
    assert_eq!(c.uuid.get_version_num(), 4);
    assert_eq!(s.check(JobRef::Uuid(c.uuid)).unwrap().unwrap().name, "cli");
    let by_uuid = ping(JobRef::Uuid(c.uuid), PingKind::Log, t0.add_millis(1));
    assert!(matches!(
        one(&mut s, by_uuid),
        PingOutcome::Recorded { ref job, created: false, .. } if job == "cli"
    ));
    let mut p = ping(JobRef::Name("new"), PingKind::Success, t0);
    p.create = true;
    let out = s.record_pings(&[p, p], &Book).unwrap();
    assert!(matches!(
        out[0],
        PingOutcome::Recorded { created: true, .. }
    ));
    assert!(matches!(
        out[1],
        PingOutcome::Recorded { created: false, .. }
    ));
    let other = s.check(JobRef::Name("new")).unwrap().unwrap();
    assert_ne!(other.uuid, c.uuid);
}

fn a_job_keeps_its_newest_pings_only(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let n = PINGS_PER_JOB as i64 + 30;
    let pings: Vec<Ping<'_>> = (0..n)
        .map(|i| {
            let mut p = ping(JobRef::Name("j"), PingKind::Log, t0.add_millis(i));
            p.create = true;
            p
        })
        .collect();
    s.record_pings(&pings, &Book).unwrap();
    let kept = s.pings("j", 1000).unwrap();
    assert_eq!(kept.len(), PINGS_PER_JOB as usize);
    assert_eq!(kept[0].at, t0.add_millis(n - 1), "newest first");
    assert_eq!(kept.last().unwrap().at, t0.add_millis(30));
}

fn runs_recorded_by_belfry_run_keep_the_deadline_current_and_an_overdue_run_is_late(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    s.set_expect("j", Some(&every(60_000, 1000, Some(5000))), t0)
        .unwrap();
    assert_eq!(s.next_late().unwrap(), Some(t0.add_millis(61_000)));
    let t1 = t0.add_millis(1000);
    s.start_run(&RunStart {
        id: "r1".into(),
        job: "j".into(),
        started: t1,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    // The run must end within its longest run time.
    assert_eq!(s.next_late().unwrap(), Some(t1.add_millis(5000)));
    let ev = event("j", "r1", State::Ok, t1.add_millis(2000), 0);
    let end = RunEnd {
        event: &ev,
        output: None,
        output_bytes: 0,
    };
    s.finish_run(&end, &Policy::default(), to(&["ops"]))
        .unwrap();
    let t2 = t1.add_millis(2000);
    assert_eq!(s.next_late().unwrap(), Some(t2.add_millis(61_000)));
    // A run that does not end in time makes the job late, and says so.
    s.start_run(&RunStart {
        id: "r2".into(),
        job: "j".into(),
        started: t2,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    assert!(
        s.mark_late(t2.add_millis(4999), 10, &Book)
            .unwrap()
            .is_empty()
    );
    let late = s.mark_late(t2.add_millis(5000), 10, &Book).unwrap();
    assert_eq!(late.len(), 1);
    let err = late[0]
        .notification
        .as_ref()
        .unwrap()
        .error
        .clone()
        .unwrap();
    assert!(
        err.contains("r2") && err.contains("longest run time"),
        "{err}"
    );
    // An event recorded by the library counts as a report too.
    let t3 = t2.add_millis(6000);
    s.record_event(
        &event("j", "r3", State::Ok, t3, 0),
        &Policy::default(),
        to(&["ops"]),
    )
    .unwrap();
    assert_eq!(
        s.check(JobRef::Name("j")).unwrap().unwrap().last_report,
        Some(t3)
    );
    // r2 is still "running", and was alerted for: the report after it went overdue supersedes
    // it, so the next deadline is the job's silence, not r2 again (which would alert at once,
    // after every report).
    assert_eq!(s.next_late().unwrap(), Some(t3.add_millis(61_000)));
    assert!(s.mark_late(t3.add_millis(1), 10, &Book).unwrap().is_empty());
    // A run that starts after that report can be overdue in its turn.
    let t4 = t3.add_millis(1000);
    s.start_run(&RunStart {
        id: "r4".into(),
        job: "j".into(),
        started: t4,
        host: None,
        pid: None,
        boot_id: None,
    })
    .unwrap();
    assert_eq!(s.next_late().unwrap(), Some(t4.add_millis(5000)));
    // Clearing the schedule clears the deadline.
    s.set_expect("j", None, t3).unwrap();
    assert_eq!(s.next_late().unwrap(), None);
}

fn the_sweep_takes_the_earliest_due_jobs_up_to_its_limit(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    for i in 0..5u64 {
        s.set_expect(
            &format!("j{i}"),
            Some(&every(1000 + i * 1000, 1000, None)),
            t0,
        )
        .unwrap();
    }
    let late = s.mark_late(t0.add_millis(4500), 2, &Book).unwrap();
    let jobs: Vec<_> = late
        .iter()
        .map(|r| r.notification.as_ref().unwrap().job.clone())
        .collect();
    assert_eq!(jobs, ["j0", "j1"]);
    let late = s.mark_late(t0.add_millis(4500), 10, &Book).unwrap();
    assert_eq!(late.len(), 1, "j2 is due at 4s, j3 at 5s");
}

/// The sweep's query, as the backends write it (the plan checks below read its plan).
const SWEEP_SQL: &str = "SELECT name, expect, last_report_ms FROM jobs
     WHERE late_at_ms <= 1000 AND late_at_ms IS NOT NULL AND paused = 0
     ORDER BY late_at_ms LIMIT 100";

#[test]
fn a_sweep_over_100000_scheduled_jobs_reads_the_due_ones_through_the_index_sqlite() {
    let db = Db::sqlite();
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let expect = serde_json::to_string(&every(60_000, 1000, None)).unwrap();
    let (due, later) = (t0.as_millis(), t0.as_millis() + 86_400_000);
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO jobs (name, created_ms, updated_ms, expect, expect_set_ms, late_at_ms)
         SELECT 'job' || i, 0, 0, '{expect}', 0,
                CASE WHEN i % 10000 = 0 THEN {due} ELSE {later} END
         FROM n;
         ANALYZE;"
    ));
    let belfry_store::Location::Sqlite(path) = db.location() else {
        unreachable!()
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {SWEEP_SQL}"))
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join("; ");
    assert!(plan.contains("USING INDEX jobs_late"), "{plan}");
    assert!(!plan.contains("SCAN jobs"), "{plan}");
    let late = s.mark_late(t0, 100, &Book).unwrap();
    assert_eq!(late.len(), 10);
    assert!(s.mark_late(t0, 100, &Book).unwrap().is_empty());
    assert_eq!(db.count("SELECT COUNT(DISTINCT uuid) FROM jobs"), 100_000);
}

#[test]
fn a_sweep_over_100000_scheduled_jobs_reads_the_due_ones_through_the_index_postgres() {
    let db = Db::postgres();
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    let expect = serde_json::to_string(&every(60_000, 1000, None)).unwrap();
    let (due, later) = (t0.as_millis(), t0.as_millis() + 86_400_000);
    db.execute(&format!(
        "INSERT INTO jobs (name, created_ms, updated_ms, expect, expect_set_ms, late_at_ms)
         SELECT 'job' || i, 0, 0, '{expect}', 0,
                CASE WHEN i % 10000 = 0 THEN {due} ELSE {later} END
         FROM generate_series(1, 100000) i;
         ANALYZE jobs;
         CREATE FUNCTION sweep_plan() RETURNS text LANGUAGE plpgsql AS $$
         DECLARE line text; plan text := '';
         BEGIN
             FOR line IN EXPLAIN {sweep} LOOP plan := plan || line || E'\\n'; END LOOP;
             RETURN plan;
         END $$;",
        sweep = SWEEP_SQL.replace("paused = 0", "NOT paused"),
    ));
    let plan = db.text("SELECT sweep_plan()");
    assert!(plan.contains("jobs_late"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    let late = s.mark_late(t0, 100, &Book).unwrap();
    assert_eq!(late.len(), 10);
    assert!(s.mark_late(t0, 100, &Book).unwrap().is_empty());
    assert_eq!(db.count("SELECT COUNT(DISTINCT uuid) FROM jobs"), 100_000);
}

/// Several processes sweeping one PostgreSQL store at once mark each late job once.
#[test]
fn replicas_sweeping_at_once_alert_each_late_job_exactly_once() {
    const JOBS: usize = 300;
    let db = Db::postgres();
    let t0 = Timestamp::now() - Duration::from_secs(3600);
    {
        let mut s = db.open();
        for i in 0..JOBS {
            s.set_expect(&format!("job{i}"), Some(&every(60_000, 1000, None)), t0)
                .unwrap();
        }
    }
    let now = t0.add_millis(600_000);
    let marked = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut s = db.open();
                loop {
                    let late = match s.mark_late(now, 7, &Book) {
                        Ok(l) => l,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => panic!("{e}"),
                    };
                    let none = late.is_empty();
                    marked.lock().unwrap().extend(
                        late.into_iter()
                            .map(|r| r.notification.expect("a first late is told").job),
                    );
                    // Empty may mean the rest are locked by the others: done only when no
                    // job is due any more.
                    if none && s.next_late().unwrap().is_some_and(|t| t > now) {
                        return;
                    }
                }
            });
        }
    });
    let mut marked = marked.into_inner().unwrap();
    marked.sort();
    let before = marked.len();
    marked.dedup();
    assert_eq!(before, JOBS, "each late job marked once");
    assert_eq!(marked.len(), JOBS);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM notifications WHERE state = 'late'"),
        JOBS as i64
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox"), JOBS as i64);
}

fn a_checks_title_tags_and_description_are_saved_with_its_schedule_in_one_call(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(60);
    let meta = CheckMeta {
        title: "Nightly backup".into(),
        tags: vec!["prod".into(), "db".into()],
        desc: "dumps the main database".into(),
    };
    let expect = every(60_000, 5_000, None);
    let change = CheckChange {
        expect: Some(Some(&expect)),
        meta: Some(&meta),
    };
    assert!(s.save_check("backup", &change, t0).unwrap(), "created");
    let c = s.check(JobRef::Name("backup")).unwrap().unwrap();
    assert_eq!(c.meta, meta);
    assert_eq!(c.expect.as_ref(), Some(&expect));
    assert_eq!(c.late_at, Some(t0.add_millis(65_000)));
    // Only what the change gives is changed; the job is not created twice.
    let change = CheckChange {
        expect: None,
        meta: Some(&CheckMeta::default()),
    };
    assert!(!s.save_check("backup", &change, t0).unwrap());
    let c = s.check(JobRef::Name("backup")).unwrap().unwrap();
    assert_eq!(c.meta, CheckMeta::default());
    assert_eq!(c.expect.as_ref(), Some(&expect), "the schedule stays");
    let change = CheckChange {
        expect: Some(None),
        meta: None,
    };
    s.save_check("backup", &change, t0).unwrap();
    let c = s.check(JobRef::Name("backup")).unwrap().unwrap();
    assert_eq!((c.expect, c.late_at), (None, None));
    s.set_expect("another", None, t0).unwrap();
    let names: Vec<String> = s.checks().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["another", "backup"]);
}

fn pings_are_numbered_per_job_and_counted(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(60);
    s.set_expect("a", None, t0).unwrap();
    s.set_expect("b", None, t0).unwrap();
    for i in 0..3 {
        one(
            &mut s,
            ping(JobRef::Name("a"), PingKind::Log, t0.add_millis(i)),
        );
    }
    one(
        &mut s,
        ping(JobRef::Name("b"), PingKind::Log, t0.add_millis(9)),
    );
    let ns: Vec<u64> = s.pings("a", 10).unwrap().iter().map(|p| p.n).collect();
    assert_eq!(ns, [3, 2, 1], "newest first");
    assert_eq!(s.pings("b", 10).unwrap()[0].n, 1);
    assert_eq!(s.check(JobRef::Name("a")).unwrap().unwrap().n_pings, 3);
}

fn changes_between_ok_and_problem_are_kept_as_flips(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(60);
    s.set_expect("j", None, t0).unwrap();
    let kinds = [
        PingKind::Success,
        PingKind::Success,
        PingKind::Fail,
        PingKind::Exit(3),
        PingKind::Success,
    ];
    for (i, k) in kinds.into_iter().enumerate() {
        one(
            &mut s,
            ping(JobRef::Name("j"), k, t0.add_millis(i as i64 * 10)),
        );
    }
    let flips = s.flips("j", 100).unwrap();
    let seen: Vec<(Option<State>, State, bool, Timestamp)> =
        flips.iter().map(|f| (f.from, f.to, f.up(), f.at)).collect();
    assert_eq!(
        seen,
        [
            (Some(State::Failed), State::Ok, true, t0.add_millis(40)),
            (Some(State::Ok), State::Failed, false, t0.add_millis(20)),
            (None, State::Ok, true, t0),
        ]
    );
    assert_eq!(s.flips("j", 1).unwrap().len(), 1, "the limit holds");
}

fn deleting_a_job_removes_its_runs_pings_and_flips_but_not_its_alerts(db: &Db) {
    let mut s = db.open();
    let t0 = Timestamp::now() - Duration::from_secs(60);
    s.set_expect("gone", None, t0).unwrap();
    s.set_expect("kept", None, t0).unwrap();
    let rec = recorded(one(&mut s, ping(JobRef::Name("gone"), PingKind::Fail, t0))).unwrap();
    assert_eq!(rec.outbox_ids.len(), 1);
    one(&mut s, ping(JobRef::Name("kept"), PingKind::Fail, t0));
    assert!(s.delete_job("gone").unwrap());
    assert!(!s.delete_job("gone").unwrap(), "already gone");
    assert!(s.check(JobRef::Name("gone")).unwrap().is_none());
    assert!(s.pings("gone", 10).unwrap().is_empty());
    assert!(s.flips("gone", 10).unwrap().is_empty());
    assert!(s.runs("gone", 10, false).unwrap().is_empty());
    assert_eq!(
        s.outbox_rows_by_id(&rec.outbox_ids).unwrap().len(),
        1,
        "its alert is still delivered"
    );
    assert_eq!(s.pings("kept", 10).unwrap().len(), 1);
    assert_eq!(s.flips("kept", 10).unwrap().len(), 1);
}

on_both_backends!(
    a_job_is_late_at_its_last_report_plus_period_and_grace_and_a_ping_recovers_it,
    a_late_jobs_error_says_since_when_and_what_was_expected,
    a_paused_job_is_never_late_and_a_ping_resumes_it,
    starts_and_finishes_pair_by_rid_and_rid_less_ones_by_the_latest_start,
    two_jobs_whose_clients_use_one_rid_keep_a_run_each,
    a_log_ping_is_kept_and_changes_no_state,
    jobs_are_found_by_uuid_or_name_and_created_by_name_only_when_asked,
    a_job_keeps_its_newest_pings_only,
    runs_recorded_by_belfry_run_keep_the_deadline_current_and_an_overdue_run_is_late,
    the_sweep_takes_the_earliest_due_jobs_up_to_its_limit,
    a_checks_title_tags_and_description_are_saved_with_its_schedule_in_one_call,
    pings_are_numbered_per_job_and_counted,
    changes_between_ok_and_problem_are_kept_as_flips,
    deleting_a_job_removes_its_runs_pings_and_flips_but_not_its_alerts,
);
