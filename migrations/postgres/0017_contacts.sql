-- An elder's call list (呼叫顺序): who is reached when an alert opens, in
-- order, with the hours they can be reached (HH:MM, local; NULL: any time),
-- the alert kinds they get (comma-separated codes; empty: each kind's
-- default) and how they agreed to be called.
CREATE TABLE contacts (
    id                  BIGSERIAL PRIMARY KEY,
    elder_id            BIGINT NOT NULL REFERENCES elders (id),
    position            BIGINT NOT NULL,
    name                TEXT NOT NULL,
    -- family, neighbour, village_committee, grid_worker, visitor, oncall
    relation            TEXT NOT NULL,
    phone               TEXT NOT NULL,
    available_from      TEXT,
    available_to        TEXT,
    kinds               TEXT NOT NULL DEFAULT '',
    consent             TEXT NOT NULL,
    consent_recorded_by TEXT NOT NULL,
    consent_recorded_at BIGINT NOT NULL
);
CREATE INDEX contacts_elder ON contacts (elder_id, position);
