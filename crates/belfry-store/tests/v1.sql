-- A store as belfry 0.1 (schema version 1) left it: `belfry run --name old-job -- false`
-- with one unreachable webhook, so one notification waits in the outbox.
PRAGMA foreign_keys = OFF;
BEGIN TRANSACTION;
CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY,
        outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
        at_ms       INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'permanent')),
        reason      TEXT,
        elapsed_ms  INTEGER
    ) STRICT;
INSERT INTO "attempts" VALUES(1,1,1795310878452,'retry','could not connect to json://127.0.0.1:1/…: Connection refused (os error 111)',0);
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
INSERT INTO "jobs" VALUES('old-job','failed',1795310878445,1,1,1795310878445,'01a200dd-feeb-752f-932b-4862a6bdb7c0','failed',1795310878443,1795310878445,2,1,1795310878443,1795310878445);
CREATE TABLE notifications (
        id          TEXT PRIMARY KEY,
        job         TEXT NOT NULL,
        run_id      TEXT,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        payload     BLOB NOT NULL  -- deflate-compressed JSON of belfry_core::Notification
    ) STRICT;
INSERT INTO "notifications" VALUES('01a200dd-feee-765f-8507-1f4308d7639c','old-job','01a200dd-feeb-752f-932b-4862a6bdb7c0','problem','failed','first_run',1795310878445,X'6D51CB6EC32010FC15C4D954183FE3DEFB053DF582B05927B4B6B1606DA5AAFAEF5DE2E4D4DC606798991D7EF80E213ABFF02ECFB8B3BCE332374A4A6BC50800A2A9AB51B4956C443E96856C6D5317A78167FCCB2D96D86BF0FD04330D3E7D4F773F59914E198F681068321A378125C21A60777E8BFA8E2CDB34653C8089C99E8F2E44D4615B887A0C35C2159342421821CC8F0C2F2EB2C3011D4E40F8DDB3636F0FAB196234E784C1D5211BBC059633332204A6E6C8FCC2F6F995DD2C9F097FAFE96D4ABE05A03C494527955B4DD19D1733F1EE58C06EC12035A8230C7EB19177F2454AA59ABACEA9D38B8F69873D55442BE87F1DF7A2A9D4284E85EA45D9D6CAD4BDED9B41922D151510AC36494149558B3C174ABDCBBC534D57B52F65597C100FDD9CF23E67548931F885E26DE876D0EBF1651494E241083E3C56F11BAE1B6AA41A8FD1EF1F');
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
INSERT INTO "outbox" VALUES(1,'01a200dd-feee-765f-8507-1f4308d7639c','urls-79064c24','01a200dd-feee-765f-8507-1f4308d7639c:urls-79064c24','pending',1,1795310878445,1795310879452,1795397278445,NULL,NULL,'could not connect to json://127.0.0.1:1/…: Connection refused (os error 111)',NULL);
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
        output        BLOB,      -- deflate-compressed UTF-8: first lines and tail
        output_bytes  INTEGER    -- everything the run wrote, kept or not
    ) STRICT;
INSERT INTO "runs" VALUES('01a200dd-feeb-752f-932b-4862a6bdb7c0','old-job','failed',1795310878443,1795310878445,2,1,NULL,'vm',NULL,NULL,NULL,'first_run','first run of this job',1,NULL,0);
CREATE INDEX runs_by_job ON runs (job, started_ms DESC);
CREATE INDEX runs_running ON runs (state) WHERE state = 'running';
CREATE INDEX notifications_by_job ON notifications (job, created_ms DESC);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE INDEX attempts_by_row ON attempts (outbox_id);
COMMIT;
PRAGMA user_version = 1;
