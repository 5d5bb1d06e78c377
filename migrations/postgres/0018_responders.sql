-- The responder chain (issue 17).
--
-- Who is on call in a county and when (值班表): the chain's on-call step
-- reaches whoever's shift covers the moment, and the board shows them.
CREATE TABLE duty_shifts (
    id           BIGSERIAL PRIMARY KEY,
    county       TEXT NOT NULL,
    person       TEXT NOT NULL,
    phone        TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,
    ends_at      BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX duty_shifts_county ON duty_shifts (county, ends_at);

-- Each alert's chain: the step reached (0-based, of `steps`), its state
-- (calling, accepted, arrived, no_responder, closed) and when it next moves.
CREATE TABLE responder_chains (
    alert_id          BIGINT PRIMARY KEY REFERENCES alerts (id),
    step              BIGINT NOT NULL,
    steps             BIGINT NOT NULL,
    state             TEXT NOT NULL,
    due_at            BIGINT,
    started_at        BIGINT NOT NULL,
    first_accepted_at BIGINT,
    arrived_at        BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX responder_chains_due ON responder_chains (due_at);

-- Every message of a chain, planned at its start (who was to be tried is
-- part of the record): the outbox (status planned, queued, sent, failed,
-- cancelled; due_at and attempts for the retries) and the answer given
-- through its link. The contact is copied: the call list may change later.
CREATE TABLE responder_messages (
    id           BIGSERIAL PRIMARY KEY,
    alert_id     BIGINT NOT NULL REFERENCES alerts (id),
    step         BIGINT NOT NULL,
    purpose      TEXT NOT NULL,
    contact_id   BIGINT,
    name         TEXT NOT NULL,
    relation     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_at       BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    provider_ref TEXT,
    queued_at    BIGINT,
    sent_at      BIGINT,
    accepted_at  BIGINT,
    arrived_at   BIGINT,
    declined_at  BIGINT
);
CREATE INDEX responder_messages_alert ON responder_messages (alert_id, id);
CREATE INDEX responder_messages_due ON responder_messages (status, due_at);

-- The key answer links are signed with (base64), made once by whichever
-- process needs it first.
CREATE TABLE link_keys (
    id         BIGINT PRIMARY KEY,
    key        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
