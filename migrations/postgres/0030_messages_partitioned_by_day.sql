-- `messages` partitioned by range of `at` (the device's time, epoch ms).
-- Every step here takes its locks for a moment only: the key swap uses the
-- index built in 0029, the attach is proved safe by the check of 0027, and
-- the default partition is created empty. Day partitions are created a week
-- ahead by the upkeep (`Store::prepare_message_partitions`) and dropped
-- whole by retention; the table of before keeps `at` = 0, and ingest looks
-- a redelivery of one of its rows up there until retention has emptied it.
ALTER TABLE messages DROP CONSTRAINT messages_pkey,
    ADD CONSTRAINT messages_before_partitioning_pkey PRIMARY KEY USING INDEX messages_before_partitioning_key;
ALTER TABLE messages RENAME TO messages_before_partitioning;
ALTER INDEX messages_received RENAME TO messages_before_partitioning_received;
ALTER INDEX messages_device_received RENAME TO messages_before_partitioning_device_received;

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
    -- The day partition's key: device_boots.started_at + up.
    at          BIGINT NOT NULL,
    PRIMARY KEY (device_id, boot, seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_device_received ON messages (device_id, received_at);
COMMENT ON INDEX messages_device_received IS 'one device''s messages in time order: anxin messages tail --device';

ALTER TABLE messages ATTACH PARTITION messages_before_partitioning FOR VALUES FROM (MINVALUE) TO (1);
-- Whatever no day partition takes (a device clock far off, a day not yet
-- created): kept small, moved into its day when that day is created.
CREATE TABLE messages_default PARTITION OF messages DEFAULT;
