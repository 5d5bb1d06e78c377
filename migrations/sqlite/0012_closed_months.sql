-- Closing a month (关账): a county's official freezes its visit rate for a
-- month. What the rate is computed from (each elder counted, with their
-- visits of the month) is kept as it stood; every reader of a closed month
-- computes from these rows. Reopening keeps them as history.
CREATE TABLE closed_months (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    county      TEXT NOT NULL,
    -- YYYY-MM
    month       TEXT NOT NULL,
    closed_by   TEXT NOT NULL,
    closed_at   INTEGER NOT NULL,
    reopened_by TEXT,
    reopened_at INTEGER
);
CREATE UNIQUE INDEX closed_months_one_closed ON closed_months (county, month) WHERE reopened_at IS NULL;

CREATE TABLE closed_month_elders (
    closed_month_id INTEGER NOT NULL REFERENCES closed_months (id),
    elder_id        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    county          TEXT NOT NULL,
    township        TEXT NOT NULL,
    village         TEXT NOT NULL,
    visits          INTEGER NOT NULL,
    last_visit      TEXT,
    left_on         TEXT,
    PRIMARY KEY (closed_month_id, elder_id)
);

-- 补录: a visit recorded for a day of a month its county had closed. It
-- changes the closed figure only once the month is reopened.
ALTER TABLE visits ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
