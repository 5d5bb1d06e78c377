-- Elders, devices, messages, quarantine and hourly activity rollups.
-- Times are UTC epoch milliseconds (BIGINT); booleans are 0/1 BIGINT, so the
-- same queries and decoders serve SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE elders (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT NOT NULL,
    county            TEXT NOT NULL,
    township          TEXT NOT NULL,
    village           TEXT NOT NULL,
    address           TEXT NOT NULL,
    phone             TEXT,
    emergency_contact TEXT,
    emergency_phone   TEXT,
    created_at        BIGINT NOT NULL
);

-- Every device ever heard from. elder_id NULL: unclaimed, waiting to be paired.
CREATE TABLE devices (
    device_id          TEXT PRIMARY KEY,
    elder_id           BIGINT REFERENCES elders (id),
    paired_at          BIGINT,
    first_seen         BIGINT NOT NULL,
    last_seen          BIGINT NOT NULL,
    message_count      BIGINT NOT NULL DEFAULT 0,
    online             BIGINT NOT NULL DEFAULT 0,
    status_changed_at  BIGINT NOT NULL,
    offline_reason     TEXT,
    boot               BIGINT,
    firmware           TEXT,
    summary_interval_s BIGINT,
    last_summary_at    BIGINT,
    battery            BIGINT,
    rssi               BIGINT,
    temp_dc            BIGINT
);
CREATE INDEX devices_elder ON devices (elder_id);

-- Events and summaries. (device_id, boot, seq) makes a redelivery a no-op.
CREATE TABLE messages (
    device_id   TEXT NOT NULL,
    boot        BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    kind        TEXT,
    state       TEXT,
    up          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    elder_id    BIGINT,
    payload     TEXT NOT NULL,
    PRIMARY KEY (device_id, boot, seq)
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_device_received ON messages (device_id, received_at);

-- Bad input, kept small and bounded for staff to look at.
CREATE TABLE quarantine (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BYTEA,
    payload_len BIGINT NOT NULL
);

-- Per device and UTC hour: what the summaries said. Kept after raw messages expire.
CREATE TABLE activity_hourly (
    device_id  TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    summaries  BIGINT NOT NULL,
    motion     BIGINT NOT NULL,
    door_opens BIGINT NOT NULL,
    temp_min   BIGINT,
    temp_max   BIGINT,
    PRIMARY KEY (device_id, hour_start)
);
