//! Versioned schema migrations for PostgreSQL. `belfry_schema_version` holds the number of
//! migrations applied; each one runs once, in order, in the transaction that bumps it, under
//! an advisory lock so that processes opening a new store at once migrate it once.
//! Never edit a released migration: add a new one.
//!
//! The tables mirror SQLite's (times in milliseconds since the epoch, `BIGINT`), so that both
//! backends answer the same queries the same way. `n` columns stand for SQLite's row ids:
//! insertion order, for ties and for the pruning cadence. `outbox_lanes` has one row per
//! (job, channel): the row a claimer locks to be the lane's only sender.

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first PostgreSQL release, at the level of SQLite's version 7.
    r#"
    CREATE TABLE jobs (
        name                      TEXT PRIMARY KEY,
        state                     TEXT,
        since_ms                  BIGINT,
        consecutive_problems      BIGINT NOT NULL DEFAULT 0,
        problem_notified          BOOLEAN NOT NULL DEFAULT FALSE,
        last_notified_ms          BIGINT,
        last_run_id               TEXT,
        last_run_state            TEXT,
        last_run_started_ms       BIGINT,
        last_run_ended_ms         BIGINT,
        last_duration_ms          BIGINT,
        last_exit_code            INTEGER,
        created_ms                BIGINT NOT NULL,
        updated_ms                BIGINT NOT NULL,
        -- JSON of belfry_core::Held: the runs the rules held back since the last message
        held                      TEXT,
        last_notification_ms      BIGINT,
        last_notification_kind    TEXT,
        last_notification_reason  TEXT
    );
    -- the jobs with a problem, in the byte order `status` lists them in
    CREATE INDEX jobs_problems ON jobs (name COLLATE "C") WHERE consecutive_problems > 0;

    CREATE TABLE runs (
        n             BIGSERIAL UNIQUE,
        id            TEXT PRIMARY KEY,
        job           TEXT NOT NULL,
        state         TEXT NOT NULL,
        started_ms    BIGINT NOT NULL,
        ended_ms      BIGINT,
        duration_ms   BIGINT,
        exit_code     INTEGER,
        signal        INTEGER,
        host          TEXT,
        pid           BIGINT,
        boot_id       TEXT,
        error         TEXT,
        reason        TEXT,
        reason_text   TEXT,
        notified      BOOLEAN NOT NULL DEFAULT FALSE,
        output        BYTEA,
        output_bytes  BIGINT
    );
    CREATE INDEX runs_by_job ON runs (job, started_ms DESC);
    CREATE INDEX runs_running ON runs (job, started_ms) WHERE state = 'running';

    CREATE TABLE notifications (
        n           BIGSERIAL UNIQUE,
        id          TEXT PRIMARY KEY,
        job         TEXT NOT NULL,
        run_id      TEXT,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        created_ms  BIGINT NOT NULL,
        payload     BYTEA NOT NULL
    );
    CREATE INDEX notifications_by_job ON notifications (job, created_ms DESC);

    CREATE TABLE outbox (
        id               BIGSERIAL PRIMARY KEY,
        notification_id  TEXT NOT NULL REFERENCES notifications (id),
        job              TEXT NOT NULL,
        channel          TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL UNIQUE,
        status           TEXT NOT NULL
                         CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        created_ms       BIGINT NOT NULL,
        next_attempt_ms  BIGINT NOT NULL,
        deadline_ms      BIGINT NOT NULL,
        lease_until_ms   BIGINT,
        lease_owner      TEXT,
        last_reason      TEXT,
        delivered_ms     BIGINT,
        folded_into      BIGINT,
        reclaims         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
    CREATE INDEX outbox_by_job ON outbox (job, channel, status);
    CREATE INDEX outbox_folded ON outbox (folded_into) WHERE folded_into IS NOT NULL;
    CREATE INDEX outbox_deadline ON outbox (status, deadline_ms);
    CREATE INDEX outbox_by_notification ON outbox (notification_id);
    -- one message per lane at a time: what the lane lock makes true, the database enforces
    CREATE UNIQUE INDEX outbox_one_sending_per_lane ON outbox (job, channel)
        WHERE status = 'sending' AND folded_into IS NULL;

    CREATE TABLE outbox_lanes (
        job      TEXT NOT NULL,
        channel  TEXT NOT NULL,
        PRIMARY KEY (job, channel)
    );

    CREATE TABLE attempts (
        id          BIGSERIAL PRIMARY KEY,
        outbox_id   BIGINT NOT NULL REFERENCES outbox (id),
        at_ms       BIGINT NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'permanent')),
        reason      TEXT,
        elapsed_ms  BIGINT
    );
    CREATE INDEX attempts_by_row ON attempts (outbox_id);
    "#,
    // 2: checks (`belfry serve`), as SQLite's version 8. A volatile default fills every
    // existing row with its own uuid, and every row inserted later by any path.
    r#"
    ALTER TABLE jobs ADD COLUMN uuid TEXT NOT NULL DEFAULT gen_random_uuid()::text;
    ALTER TABLE jobs ADD COLUMN expect TEXT;
    ALTER TABLE jobs ADD COLUMN expect_set_ms BIGINT;
    ALTER TABLE jobs ADD COLUMN late_at_ms BIGINT;
    ALTER TABLE jobs ADD COLUMN last_report_ms BIGINT;
    ALTER TABLE jobs ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
    UPDATE jobs SET last_report_ms = GREATEST(updated_ms, COALESCE(last_run_ended_ms, updated_ms));
    CREATE UNIQUE INDEX jobs_by_uuid ON jobs (uuid);
    CREATE INDEX jobs_late ON jobs (late_at_ms) WHERE late_at_ms IS NOT NULL AND NOT paused;

    CREATE TABLE pings (
        id           BIGSERIAL PRIMARY KEY,
        job          TEXT NOT NULL,
        at_ms        BIGINT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('start', 'success', 'fail', 'log', 'exit')),
        exit_status  INTEGER,
        rid          TEXT,
        body         BYTEA,
        remote       TEXT,
        method       TEXT NOT NULL,
        user_agent   TEXT
    );
    CREATE INDEX pings_by_job ON pings (job, id DESC);
    "#,
    // 3: the management API, as SQLite's version 9.
    r#"
    ALTER TABLE jobs ADD COLUMN meta TEXT;
    ALTER TABLE jobs ADD COLUMN n_pings BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE pings ADD COLUMN n BIGINT;
    UPDATE pings SET n = o.n FROM (
        SELECT id AS i, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id) AS n FROM pings) o
    WHERE pings.id = o.i;
    UPDATE jobs SET n_pings = (SELECT COUNT(*) FROM pings WHERE job = jobs.name);

    CREATE TABLE flips (
        id          BIGSERIAL PRIMARY KEY,
        job         TEXT NOT NULL,
        at_ms       BIGINT NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL
    );
    CREATE INDEX flips_by_job ON flips (job, id DESC);
    "#,
    // 4: the dashboard, as SQLite's version 10.
    r#"
    CREATE TABLE silences (
        id          BIGSERIAL PRIMARY KEY,
        job         TEXT,
        tag         TEXT,
        until_ms    BIGINT NOT NULL,
        reason      TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        created_ms  BIGINT NOT NULL,
        ended_ms    BIGINT,
        CHECK ((job IS NULL) <> (tag IS NULL))
    );
    CREATE INDEX silences_open ON silences (until_ms) WHERE ended_ms IS NULL;
    ALTER TABLE jobs ADD COLUMN acked_ms BIGINT;
    ALTER TABLE jobs ADD COLUMN acked_by TEXT;
    ALTER TABLE notifications ADD COLUMN hushed TEXT;
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    "#,
];

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// The key of the session-wide advisory lock that serialises migrations (any schema: they are
/// rare, and one key keeps `CREATE SCHEMA IF NOT EXISTS` from racing too). Lanes are locked by
/// their rows, not by advisory locks, so no other key is in use.
pub(crate) const MIGRATION_LOCK: i64 = 0x6265_6c66_7279_0001;
