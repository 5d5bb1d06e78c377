-- Who may speak on the broker (gateway/src/identity.rs): devices, bridges,
-- alert consumers and gateways, each with a secret stored in Mosquitto's $7$
-- PBKDF2-SHA512 form. A revoked identity keeps its row (and its history).
CREATE TABLE broker_identities (
    name         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('device', 'bridge', 'consumer', 'gateway')),
    secret_hash  TEXT NOT NULL,
    -- Publishes a second this identity may make on average (NULL: its kind's default).
    rate_per_s   BIGINT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    -- Bumped by every change, so a running broker notices revocations.
    changed_at   BIGINT NOT NULL
);
CREATE INDEX broker_identities_changed ON broker_identities (changed_at);

-- The devices a bridge publishes for.
CREATE TABLE bridge_devices (
    bridge     TEXT NOT NULL REFERENCES broker_identities (name),
    device_id  TEXT NOT NULL,
    PRIMARY KEY (bridge, device_id)
);
