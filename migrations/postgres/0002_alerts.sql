-- The alert engine: per-home watch state with its next deadline, alerts with
-- their history and delivery cursors, absences, heightened watch, the day
-- tallies behind remote check-ins, and visits.

-- Categories (comma-separated: living_alone, empty_nest, left_behind,
-- dependent, severely_disabled, bereaved_family) set the inactivity threshold;
-- inactivity_hours overrides it for one elder.
ALTER TABLE elders ADD COLUMN categories TEXT NOT NULL DEFAULT '';
ALTER TABLE elders ADD COLUMN inactivity_hours BIGINT;

-- One row per watched home: the rules' state (JSON) and the earliest moment a
-- rule must look at it again. The timer loop scans next_due_at.
CREATE TABLE home_watch (
    elder_id    BIGINT PRIMARY KEY REFERENCES elders (id),
    state       TEXT NOT NULL,
    next_due_at BIGINT,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX home_watch_due ON home_watch (next_due_at);

CREATE TABLE alerts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    elder_id         BIGINT NOT NULL REFERENCES elders (id),
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    county           TEXT NOT NULL,
    township         TEXT NOT NULL,
    village          TEXT NOT NULL,
    device_id        TEXT,
    detail           TEXT NOT NULL,
    repeats          BIGINT NOT NULL DEFAULT 0,
    level            BIGINT NOT NULL DEFAULT 0,
    reminders        BIGINT NOT NULL DEFAULT 0,
    opened_at        BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    next_reminder_at BIGINT,
    acknowledged_at  BIGINT,
    acknowledged_by  TEXT,
    ack_ms           BIGINT,
    resolved_at      BIGINT,
    resolved_by      TEXT,
    outcome          TEXT,
    note             TEXT
);
-- One open (not yet resolved) alert per home and kind.
CREATE UNIQUE INDEX alerts_one_open ON alerts (elder_id, kind) WHERE status <> 'resolved';
CREATE INDEX alerts_reminder ON alerts (next_reminder_at);
CREATE INDEX alerts_status ON alerts (status, opened_at);
CREATE INDEX alerts_elder ON alerts (elder_id, opened_at);
CREATE INDEX alerts_region ON alerts (county, opened_at);

-- Every change of every alert, in order: the feed for the console (SSE
-- replay), MQTT and the webhook.
CREATE TABLE alert_events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts (id),
    at       BIGINT NOT NULL,
    action   TEXT NOT NULL,
    actor    TEXT,
    detail   TEXT
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- Where each delivery sink (mqtt, webhook) has got to in alert_events, and
-- which gateway holds it (a lease, so two gateways do not both deliver).
CREATE TABLE alert_sinks (
    sink              TEXT PRIMARY KEY,
    delivered_through BIGINT NOT NULL,
    holder            TEXT,
    lease_until       BIGINT NOT NULL DEFAULT 0
);

-- Deliveries that failed once, retried with backoff apart from the rest.
CREATE TABLE alert_retries (
    event_id   BIGINT NOT NULL REFERENCES alert_events (id),
    sink       TEXT NOT NULL,
    due_at     BIGINT NOT NULL,
    attempts   BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (event_id, sink)
);
CREATE INDEX alert_retries_due ON alert_retries (sink, due_at);

-- An elder away from home (hospital, staying with family): alerts other than
-- smoke and help are paused until ends_at, and the return is expected.
CREATE TABLE absences (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    elder_id     BIGINT NOT NULL REFERENCES elders (id),
    reason       TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,
    ends_at      BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX absences_elder ON absences (elder_id, ends_at);

-- Heightened watch (extreme weather, festivals) over a region; township and
-- village NULL mean the whole county / township.
CREATE TABLE heightened_watches (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    county     TEXT NOT NULL,
    township   TEXT,
    village    TEXT,
    reason     TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Each home's local day, closed at midnight: the evidence a remote check-in
-- is judged on, and why a day did or did not count.
CREATE TABLE elder_days (
    elder_id          BIGINT NOT NULL REFERENCES elders (id),
    day               TEXT NOT NULL,
    first_activity_at BIGINT,
    last_activity_at  BIGINT,
    wake_at           BIGINT,
    active_hours      BIGINT NOT NULL,
    reported_hours    BIGINT NOT NULL,
    door_opens        BIGINT NOT NULL,
    motion            BIGINT NOT NULL,
    temp_min          BIGINT,
    temp_max          BIGINT,
    counted           BIGINT NOT NULL,
    reason            TEXT NOT NULL,
    PRIMARY KEY (elder_id, day)
);

-- Visits of every mode: home, phone, video, remote, other. The gateway
-- records at most one remote visit per elder per day.
CREATE TABLE visits (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    elder_id   BIGINT NOT NULL REFERENCES elders (id),
    day        TEXT NOT NULL,
    mode       TEXT NOT NULL,
    visited_at BIGINT NOT NULL,
    visitor    TEXT NOT NULL,
    summary    TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX visits_one_remote_per_day ON visits (elder_id, day) WHERE mode = 'remote';
CREATE INDEX visits_elder ON visits (elder_id, day);
