-- Spot-checks (抽查): a county's official draws a reproducible sample of a
-- township's visits of a month (each visit ranked by SHA-256 of the seed and
-- its id; the seed is kept so anyone can draw the same sample again), phones
-- each elder and records whether the visit happened.
CREATE TABLE spot_checks (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    county    TEXT NOT NULL,
    township  TEXT NOT NULL,
    -- YYYY-MM
    month     TEXT NOT NULL,
    seed      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    drawn_by  TEXT NOT NULL,
    drawn_at  INTEGER NOT NULL
);

CREATE TABLE spot_check_items (
    spot_check_id INTEGER NOT NULL REFERENCES spot_checks (id),
    visit_id      INTEGER NOT NULL REFERENCES visits (id),
    -- confirmed (属实), not_confirmed (不属实), unreachable (联系不上); NULL until checked
    result        TEXT,
    note          TEXT,
    checked_by    TEXT,
    checked_at    INTEGER,
    PRIMARY KEY (spot_check_id, visit_id)
);

-- The latest spot-check result of a visit, kept on it: a 不属实 visit is
-- flagged on its record.
ALTER TABLE visits ADD COLUMN spot_check TEXT;
