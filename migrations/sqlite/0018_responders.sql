-- The responder chain (issue 17).
--
-- Who is on call in a county and when (值班表): the chain's on-call step
-- reaches whoever's shift covers the moment, and the board shows them.
CREATE TABLE duty_shifts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    county       TEXT NOT NULL,
    person       TEXT NOT NULL,
    phone        TEXT NOT NULL,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    cancelled_at INTEGER
);
CREATE INDEX duty_shifts_county ON duty_shifts (county, ends_at);

-- Each alert's chain: the step reached (0-based, of `steps`), its state
-- (calling, accepted, arrived, no_responder, closed) and when it next moves.
CREATE TABLE responder_chains (
    alert_id          INTEGER PRIMARY KEY REFERENCES alerts (id),
    step              INTEGER NOT NULL,
    steps             INTEGER NOT NULL,
    state             TEXT NOT NULL,
    due_at            INTEGER,
    started_at        INTEGER NOT NULL,
    first_accepted_at INTEGER,
    arrived_at        INTEGER,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX responder_chains_due ON responder_chains (due_at);

-- Every message of a chain, planned at its start (who was to be tried is
-- part of the record): the outbox (status planned, queued, sent, failed,
-- cancelled; due_at and attempts for the retries) and the answer given
-- through its link. The contact is copied: the call list may change later.
CREATE TABLE responder_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id     INTEGER NOT NULL REFERENCES alerts (id),
    step         INTEGER NOT NULL,
    purpose      TEXT NOT NULL,
    contact_id   INTEGER,
    name         TEXT NOT NULL,
    relation     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_at       INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    provider_ref TEXT,
    queued_at    INTEGER,
    sent_at      INTEGER,
    accepted_at  INTEGER,
    arrived_at   INTEGER,
    declined_at  INTEGER
);
CREATE INDEX responder_messages_alert ON responder_messages (alert_id, id);
CREATE INDEX responder_messages_due ON responder_messages (status, due_at);

-- The key answer links are signed with (base64), made once by whichever
-- process needs it first.
CREATE TABLE link_keys (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
