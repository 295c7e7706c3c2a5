//! SQLite's upkeep while the server runs: the writer leaves the checkpoints to a thread of
//! their own, which copies what the pings wrote into the database.

use std::time::{Duration, Instant};

use crate::support::TestServer;

#[test]
fn the_pings_pages_reach_the_database_while_the_server_runs() {
    let mut server = TestServer::start("[server]\nping_key = \"k\"\n");
    let db = server.home().join("belfry.db");
    let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
    // What starting wrote (the schema) is copied first.
    std::thread::sleep(Duration::from_millis(600));
    let before = size();
    // About 1.2 MB of output (about 0.7 MB compressed), in 150 pings: far below the writer's
    // own checkpoint, and below the 1,000 pages at which another handle's commit would
    // copy the log itself. No other handle is opened here (opening one trims the log).
    let mut rng = belfry_testkit::Lcg(3);
    for i in 0..150 {
        let body: Vec<u8> = (0..8000).map(|_| b'a' + rng.below(26) as u8).collect();
        let job = format!("job-{}", i % 5);
        let answer = server.request("POST", &format!("/ping/k/{job}?create=1"), &body);
        assert!(answer.status == 200 || answer.status == 201, "{answer:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while size() < before + 500_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        size() >= before + 500_000,
        "the pings' pages were copied into the database: {before} -> {} bytes",
        size()
    );
    // The checkpointer stops with the server.
    server.stop();
}
