//! Several `belfry serve` replicas on one PostgreSQL store: the late jobs are marked by
//! whichever sweeper gets there first, and each late alert is made and delivered once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use belfry_core::{Expect, Schedule, Timestamp};
use belfry_testkit::{PgSchema, Receiver};

use crate::support::TestServer;

const JOBS: usize = 200;

/// The late alerts `hook` received, per job: how many each message stands for, summed.
fn late_alerts_per_job(hook: &Receiver) -> BTreeMap<String, u64> {
    let mut per_job = BTreeMap::new();
    for r in hook.requests() {
        let v = r.json();
        if v["state"] == "late" {
            let n = v["digest"]["count"].as_u64().unwrap_or(1);
            *per_job
                .entry(v["job"].as_str().unwrap_or_default().to_owned())
                .or_default() += n;
        }
    }
    per_job
}

#[test]
fn two_replicas_on_one_postgres_schema_alert_each_late_job_once() {
    let schema = PgSchema::new("serve_replicas");
    let hook = Receiver::start(vec![]);
    let toml = format!(
        "[store]\nurl = \"{}\"\n[delivery]\ndigest_window = \"0s\"\n\
         [channels.hook]\nurl = \"json://{}/belfry\"\n",
        schema.url(),
        hook.addr()
    );
    // The jobs' schedules are set as if an hour ago: each is due (an hour's period) in about
    // two seconds, and then not again for an hour, so each late alert in this test is the
    // job's one.
    let config = belfry::Config::parse(&toml, "test.toml").unwrap();
    {
        let mut store =
            belfry_store::Store::open(config.store_location(std::path::Path::new("/nonexistent")))
                .unwrap();
        let expect = Expect::new(
            Schedule::period(Duration::from_secs(3600)).unwrap(),
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let set_at = Timestamp::now().add_millis(-3_600_000 + 2_000);
        for i in 0..JOBS {
            store
                .set_expect(&format!("r{i:03}"), Some(&expect), set_at)
                .unwrap();
        }
    }
    let a = TestServer::start(&toml);
    let b = TestServer::start(&toml);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut per_job = BTreeMap::new();
    while Instant::now() < deadline {
        per_job = late_alerts_per_job(&hook);
        if per_job.len() == JOBS {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        per_job.len(),
        JOBS,
        "late alerts for {} of {JOBS} jobs within 60 s",
        per_job.len()
    );
    // Let any second alert (a job marked by both replicas) arrive before counting.
    std::thread::sleep(Duration::from_secs(2));
    per_job = late_alerts_per_job(&hook);
    let twice: Vec<_> = per_job.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "jobs alerted late more than once: {twice:?}"
    );
    let marked = |s: &TestServer| {
        let text = s.running.as_ref().unwrap().metrics();
        text.lines()
            .find_map(|l| l.strip_prefix("belfry_late_checks_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        marked(&a) + marked(&b),
        JOBS as u64,
        "jobs marked late across the replicas"
    );
    drop(a);
    drop(b);
}
