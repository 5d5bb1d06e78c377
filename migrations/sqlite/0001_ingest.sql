-- Elders, devices, messages, quarantine and hourly activity rollups.
-- Times are UTC epoch milliseconds (INTEGER); booleans are 0/1 INTEGER:
-- sqlx's Any driver decodes only INTEGER/REAL/TEXT/BLOB columns on SQLite.

CREATE TABLE elders (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    county            TEXT NOT NULL,
    township          TEXT NOT NULL,
    village           TEXT NOT NULL,
    address           TEXT NOT NULL,
    phone             TEXT,
    emergency_contact TEXT,
    emergency_phone   TEXT,
    created_at        INTEGER NOT NULL
);

-- Every device ever heard from. elder_id NULL: unclaimed, waiting to be paired.
CREATE TABLE devices (
    device_id          TEXT PRIMARY KEY,
    elder_id           INTEGER REFERENCES elders (id),
    paired_at          INTEGER,
    first_seen         INTEGER NOT NULL,
    last_seen          INTEGER NOT NULL,
    message_count      INTEGER NOT NULL DEFAULT 0,
    online             INTEGER NOT NULL DEFAULT 0,
    status_changed_at  INTEGER NOT NULL,
    offline_reason     TEXT,
    boot               INTEGER,
    firmware           TEXT,
    summary_interval_s INTEGER,
    last_summary_at    INTEGER,
    battery            INTEGER,
    rssi               INTEGER,
    temp_dc            INTEGER
);
CREATE INDEX devices_elder ON devices (elder_id);

-- Events and summaries. (device_id, boot, seq) makes a redelivery a no-op.
CREATE TABLE messages (
    device_id   TEXT NOT NULL,
    boot        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    kind        TEXT,
    state       TEXT,
    up          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    elder_id    INTEGER,
    payload     TEXT NOT NULL,
    PRIMARY KEY (device_id, boot, seq)
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_device_received ON messages (device_id, received_at);

-- Bad input, kept small and bounded for staff to look at.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BLOB,
    payload_len INTEGER NOT NULL
);

-- Per device and UTC hour: what the summaries said. Kept after raw messages expire.
CREATE TABLE activity_hourly (
    device_id  TEXT NOT NULL,
    hour_start INTEGER NOT NULL,
    summaries  INTEGER NOT NULL,
    motion     INTEGER NOT NULL,
    door_opens INTEGER NOT NULL,
    temp_min   INTEGER,
    temp_max   INTEGER,
    PRIMARY KEY (device_id, hour_start)
);
