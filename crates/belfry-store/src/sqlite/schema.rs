//! Versioned schema migrations. The store's `PRAGMA user_version` is the number of migrations
//! applied; each migration runs once, in order, inside the transaction that bumps the version.
//! Never edit a released migration: add a new one. A migration that needs more than SQL (a
//! count only Rust can make) does the rest in [`after`].

use belfry_core::{Class, Held, State, Timestamp};
use rusqlite::{Transaction, params};

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    r#"
    CREATE TABLE jobs (
        name                  TEXT PRIMARY KEY,
        -- the rules' memory (belfry_core::JobSnapshot); state is NULL until a run counts
        state                 TEXT,
        since_ms              INTEGER,
        consecutive_problems  INTEGER NOT NULL DEFAULT 0,
        problem_notified      INTEGER NOT NULL DEFAULT 0,
        last_notified_ms      INTEGER,
        -- the last finished run, whatever its state
        last_run_id           TEXT,
        last_run_state        TEXT,
        last_run_started_ms   INTEGER,
        last_run_ended_ms     INTEGER,
        last_duration_ms      INTEGER,
        last_exit_code        INTEGER,
        created_ms            INTEGER NOT NULL,
        updated_ms            INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        job           TEXT NOT NULL,
        state         TEXT NOT NULL,
        started_ms    INTEGER NOT NULL,
        ended_ms      INTEGER,
        duration_ms   INTEGER,
        exit_code     INTEGER,
        signal        INTEGER,
        host          TEXT,
        pid           INTEGER,
        boot_id       TEXT,
        error         TEXT,
        reason        TEXT,
        reason_text   TEXT,
        notified      INTEGER NOT NULL DEFAULT 0,
        output        BLOB,      -- first lines and tail: UTF-8 text, deflated when long
        output_bytes  INTEGER    -- everything the run wrote, kept or not
    ) STRICT;
    CREATE INDEX runs_by_job ON runs (job, started_ms DESC);
    CREATE INDEX runs_running ON runs (state) WHERE state = 'running';

    CREATE TABLE notifications (
        id          TEXT PRIMARY KEY,
        job         TEXT NOT NULL,
        run_id      TEXT,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        payload     BLOB NOT NULL  -- JSON of belfry_core::Notification, deflated when long
    ) STRICT;
    CREATE INDEX notifications_by_job ON notifications (job, created_ms DESC);

    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        notification_id  TEXT NOT NULL REFERENCES notifications (id),
        channel          TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL UNIQUE,
        status           TEXT NOT NULL
                         CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        created_ms       INTEGER NOT NULL,
        next_attempt_ms  INTEGER NOT NULL,
        deadline_ms      INTEGER NOT NULL,
        lease_until_ms   INTEGER,
        lease_owner      TEXT,
        last_reason      TEXT,
        delivered_ms     INTEGER
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);

    CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY,
        outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
        at_ms       INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'permanent')),
        reason      TEXT,
        elapsed_ms  INTEGER
    ) STRICT;
    CREATE INDEX attempts_by_row ON attempts (outbox_id);
    "#,
    // 2: the delivery engine. Rows know their job, so that unsent rows for one (job, channel)
    // can be folded into one message; they count the sends a crashed process may have made.
    r#"
    ALTER TABLE outbox ADD COLUMN job TEXT NOT NULL DEFAULT '';
    UPDATE outbox SET job = (SELECT n.job FROM notifications n WHERE n.id = notification_id);
    -- the row whose message carried this one (a digest); this row then follows its fate
    ALTER TABLE outbox ADD COLUMN folded_into INTEGER;
    -- how often a lease ran out with a send unrecorded: each may have been a duplicate
    ALTER TABLE outbox ADD COLUMN reclaims INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_by_job ON outbox (job, channel, status);
    CREATE INDEX outbox_folded ON outbox (folded_into) WHERE folded_into IS NOT NULL;
    -- finding rows past their deadline without reading every pending row
    CREATE INDEX outbox_deadline ON outbox (status, deadline_ms);
    "#,
    // 3: held-back runs counted in commit order. Each event the rules apply to a job takes the
    // job's next number (`jobs.seq`), inside its write transaction; a finished run keeps its
    // number, and the job remembers the numbers of its last message and of the event that
    // began its current spell. A message counts the held-back runs numbered after those, so
    // runs that end in one order and commit in another are counted once (end times are
    // taken before the write lock, and under concurrency they commit out of order).
    r#"
    ALTER TABLE runs ADD COLUMN seq INTEGER;
    ALTER TABLE jobs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN notified_seq INTEGER;
    ALTER TABLE jobs ADD COLUMN since_seq INTEGER;
    CREATE INDEX runs_by_seq ON runs (job, seq) WHERE seq IS NOT NULL;
    -- The runs already finished, numbered in the order of their ends, which is how earlier
    -- versions counted; the marks where those times put them.
    UPDATE runs SET seq = o.n FROM (
        SELECT rowid AS r, ROW_NUMBER() OVER (PARTITION BY job ORDER BY ended_ms, rowid) AS n
        FROM runs WHERE ended_ms IS NOT NULL) o
    WHERE runs.rowid = o.r;
    UPDATE jobs SET seq = COALESCE((SELECT MAX(seq) FROM runs WHERE job = jobs.name), 0);
    UPDATE jobs SET
        notified_seq = CASE WHEN last_notified_ms IS NOT NULL THEN COALESCE((
            SELECT MAX(seq) FROM runs WHERE job = jobs.name AND ended_ms <= jobs.last_notified_ms
        ), 0) END,
        since_seq = CASE WHEN state IS NOT NULL THEN COALESCE((
            SELECT MIN(seq) FROM runs WHERE job = jobs.name AND ended_ms >= jobs.since_ms
        ), seq + 1) END;
    "#,
    // 4: costs that do not grow with the store. `status` reads one row per job: the job's
    // last notification is kept in its row (written with each notification), and its running
    // runs come from the partial index, now by job (it was on `state` alone, so SQLite read
    // every kept run of a job through `runs_by_job` to find its running ones). Pruning a job's
    // old notifications finds their outbox rows by notification.
    r#"
    ALTER TABLE jobs ADD COLUMN last_notification_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN last_notification_kind TEXT;
    ALTER TABLE jobs ADD COLUMN last_notification_reason TEXT;
    UPDATE jobs SET (last_notification_ms, last_notification_kind, last_notification_reason) = (
        SELECT created_ms, kind, reason FROM notifications n WHERE n.job = jobs.name
        ORDER BY created_ms DESC, rowid DESC LIMIT 1);
    DROP INDEX runs_running;
    CREATE INDEX runs_running ON runs (job, started_ms) WHERE state = 'running';
    CREATE INDEX outbox_by_notification ON outbox (notification_id);
    "#,
    // 5: the jobs with a problem, by name, so that `status` lists them first without reading
    // every job (a job has a problem exactly when it has problems in a row).
    r#"
    CREATE INDEX jobs_problems ON jobs (name) WHERE consecutive_problems > 0;
    "#,
    // 6: the runs the rules held back since a job's last message are kept in the job's row
    // (`held`: JSON of belfry_core::Held, written by the rule step), so that a message counts
    // them without reading the run history. `after` fills it from the history, counting what
    // the numbers of migration 3 counted.
    r#"
    ALTER TABLE jobs ADD COLUMN held TEXT;
    "#,
    // 7: the numbers are no longer read. `runs.seq` stays, unwritten: dropping a column
    // rewrites its table, and the runs table holds every kept run's output.
    r#"
    DROP INDEX runs_by_seq;
    ALTER TABLE jobs DROP COLUMN seq;
    ALTER TABLE jobs DROP COLUMN notified_seq;
    ALTER TABLE jobs DROP COLUMN since_seq;
    "#,
    // 8: checks (`belfry serve`). Every job gets a random uuid (version 4) when its row is
    // first written, whichever path writes it: a trigger, so that no insert can forget it;
    // existing jobs get theirs here. A job may be expected on a schedule (`expect`: JSON of
    // belfry_core::Expect, set when `expect_set_ms`); `late_at_ms` is when its silence becomes
    // a problem, kept current by every write that counts as a report (`last_report_ms`).
    // `pings` keeps the newest pings of each job.
    r#"
    ALTER TABLE jobs ADD COLUMN uuid TEXT;
    ALTER TABLE jobs ADD COLUMN expect TEXT;
    ALTER TABLE jobs ADD COLUMN expect_set_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN late_at_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN last_report_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET last_report_ms = MAX(updated_ms, COALESCE(last_run_ended_ms, updated_ms));
    CREATE TRIGGER jobs_uuid AFTER INSERT ON jobs WHEN NEW.uuid IS NULL BEGIN
        UPDATE jobs SET uuid = (
            lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
            substr(lower(hex(randomblob(2))), 2) || '-' ||
            substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2)
            || '-' || lower(hex(randomblob(6))))
        WHERE rowid = NEW.rowid;
    END;
    UPDATE jobs SET uuid = (
            lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
            substr(lower(hex(randomblob(2))), 2) || '-' ||
            substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2)
            || '-' || lower(hex(randomblob(6))))
        WHERE uuid IS NULL;
    CREATE UNIQUE INDEX jobs_by_uuid ON jobs (uuid);
    -- the sweep: the jobs due to be late, earliest first, without reading the others
    CREATE INDEX jobs_late ON jobs (late_at_ms) WHERE late_at_ms IS NOT NULL AND paused = 0;

    CREATE TABLE pings (
        id           INTEGER PRIMARY KEY,
        job          TEXT NOT NULL,
        at_ms        INTEGER NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('start', 'success', 'fail', 'log', 'exit')),
        exit_status  INTEGER,
        rid          TEXT,
        body         BLOB,      -- UTF-8 text (lossy), packed like a run's output
        remote       TEXT,
        method       TEXT NOT NULL,
        user_agent   TEXT
    ) STRICT;
    CREATE INDEX pings_by_job ON pings (job, id DESC);
    "#,
    // 9: the management API. A job's title, tags and description (`meta`: JSON of
    // CheckMeta), its count of pings (`n_pings`) and each ping's number among its job's (`n`,
    // numbered here in the order kept), and its changes of state between OK and problem
    // (`flips`, the newest of each job kept).
    r#"
    ALTER TABLE jobs ADD COLUMN meta TEXT;
    ALTER TABLE jobs ADD COLUMN n_pings INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pings ADD COLUMN n INTEGER;
    UPDATE pings SET n = o.n FROM (
        SELECT id AS i, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id) AS n FROM pings) o
    WHERE pings.id = o.i;
    UPDATE jobs SET n_pings = (SELECT COUNT(*) FROM pings WHERE job = jobs.name);

    CREATE TABLE flips (
        id          INTEGER PRIMARY KEY,
        job         TEXT NOT NULL,
        at_ms       INTEGER NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX flips_by_job ON flips (job, id DESC);
    "#,
    // 10: the dashboard. Silences (a job or a tag whose alerts are recorded, not sent, until
    // `until_ms`; `ended_ms` when ended early), a job's acknowledgement of its problem
    // (`acked_ms`, `acked_by`: no reminders until it recovers), why a notification was not
    // sent (`hushed`: JSON of belfry_core::Hush), and the server's settings that replicas
    // share (the key that signs sessions).
    r#"
    CREATE TABLE silences (
        id          INTEGER PRIMARY KEY,
        job         TEXT,
        tag         TEXT,
        until_ms    INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        ended_ms    INTEGER,
        CHECK ((job IS NULL) <> (tag IS NULL))
    ) STRICT;
    CREATE INDEX silences_open ON silences (until_ms) WHERE ended_ms IS NULL;
    ALTER TABLE jobs ADD COLUMN acked_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN acked_by TEXT;
    ALTER TABLE notifications ADD COLUMN hushed TEXT;
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    ) STRICT;
    "#,
    // 11: pruning in row order (`retention::sweep`). Each finished run takes its job's next
    // number (`runs.seq`, unwritten since 7; `jobs.n_runs` counts them), as each ping has had
    // since 9, so a run is past its job's history exactly when its number is at least
    // `runs_per_job` below the job's count. The runs kept are numbered here by their start.
    r#"
    ALTER TABLE jobs ADD COLUMN n_runs INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET seq = NULL;
    UPDATE runs SET seq = o.n FROM (
        SELECT rowid AS r, ROW_NUMBER() OVER (PARTITION BY job ORDER BY started_ms, rowid) AS n
        FROM runs WHERE state <> 'running') o
    WHERE runs.rowid = o.r;
    UPDATE jobs SET n_runs = COALESCE((SELECT MAX(seq) FROM runs WHERE job = jobs.name), 0);
    "#,
];

/// What a migration needs besides its SQL, run right after it in the same transaction:
/// `version` is the schema version the SQL brought the store to.
pub(crate) fn after(version: usize, tx: &Transaction<'_>) -> rusqlite::Result<()> {
    match version {
        6 => fill_held(tx),
        _ => Ok(()),
    }
}

/// Fills `jobs.held` from the run history for a store from before it: each job's runs that did
/// not notify and are numbered after its last message (OK runs), and for a job in a streak of
/// problems also not before the streak began (problem runs), as the messages of schemas 3 to 5
/// counted them. Runs whose state this build does not know are in no message's count.
fn fill_held(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let jobs: Vec<(String, String, Option<i64>, Option<i64>)> = tx
        .prepare("SELECT name, state, notified_seq, since_seq FROM jobs WHERE state IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut runs = tx.prepare(
        "SELECT seq, state, ended_ms, error FROM runs
         WHERE job = ?1 AND seq > ?2 AND notified = 0 ORDER BY seq",
    )?;
    let mut write = tx.prepare("UPDATE jobs SET held = ?2 WHERE name = ?1")?;
    for (job, state, notified, since) in jobs {
        let Ok(state) = state.parse::<State>() else {
            continue;
        };
        let ok_after = notified.unwrap_or(0);
        // The streak began with the event numbered `since`: its runs count from that one on.
        let problems_after = state
            .is_problem()
            .then(|| ok_after.max(since.unwrap_or(0).saturating_sub(1)));
        let mut held = Held::default();
        // Problem runs are counted from at least as late as OK runs.
        let mut rows = runs.query(params![job, ok_after])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let Ok(run_state) = r.get::<_, String>(1)?.parse::<State>() else {
                continue;
            };
            let ended = Timestamp::from_millis(r.get::<_, Option<i64>>(2)?.unwrap_or(i64::MAX));
            let error: Option<String> = r.get(3)?;
            let tally = match run_state.class() {
                Class::Problem if problems_after.is_some_and(|a| seq > a) => &mut held.problems,
                Class::Ok if seq > ok_after => &mut held.ok,
                _ => continue,
            };
            tally.add(run_state, ended, error.as_deref(), 1);
        }
        if !held.is_empty() {
            let json = serde_json::to_string(&held).expect("held runs serialise");
            write.execute(params![job, json])?;
        }
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;
