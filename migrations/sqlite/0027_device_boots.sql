-- Issue 20 (see postgres/0027–0030): when each device's boot began, and a
-- message's `at` (that moment + its `up`), kept here as on PostgreSQL so
-- that one ingest path writes both. SQLite's messages are not partitioned.
CREATE TABLE device_boots (
    device_id  TEXT NOT NULL,
    boot       INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, boot)
);
ALTER TABLE messages ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
