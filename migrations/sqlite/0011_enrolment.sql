-- Enrolment (在册) and exit (退出): an elder's periods in the programme.
-- An elder counts in a month's visit rate when a period overlaps the month
-- (see store/src/rate.rs and ARCHITECTURE.md, "The monthly visit rate").
-- `enrolled_at` is the start (epoch ms); `exited_on` the exit's effective
-- date (local, `YYYY-MM-DD`, the last day in the programme), NULL while
-- enrolled. Periods never overlap; a re-entry starts a new one.
CREATE TABLE enrolments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    elder_id         INTEGER NOT NULL REFERENCES elders (id),
    enrolled_at      INTEGER NOT NULL,
    enrolled_by      TEXT NOT NULL,
    exited_on        TEXT,
    -- died, moved, institution, ineligible, declined
    exit_reason      TEXT,
    exit_recorded_by TEXT,
    exit_recorded_at INTEGER
);
CREATE INDEX enrolments_elder ON enrolments (elder_id, enrolled_at);
-- At most one open period per elder.
CREATE UNIQUE INDEX enrolments_one_open ON enrolments (elder_id) WHERE exited_on IS NULL;

-- Every elder registered so far has been enrolled since registration.
INSERT INTO enrolments (elder_id, enrolled_at, enrolled_by)
SELECT id, created_at, 'registration' FROM elders;

-- The current period's exit, kept beside the elder so every query that
-- must leave departed elders out (the watched homes, pairing, the visitor's
-- round) reads one column. Written with `enrolments`, in one transaction.
ALTER TABLE elders ADD COLUMN left_on TEXT;
ALTER TABLE elders ADD COLUMN exit_reason TEXT;
