-- Issue 20: messages partitioned by day (0027–0030). A message's partition
-- must be the same for every copy of it, so that the primary key inside the
-- partition finds a redelivery: not the receipt time (a resend after a lost
-- PUBACK may come after midnight) but the device's own time, `at` = the
-- moment its boot began (kept here, written once) + the message's `up`.
CREATE TABLE device_boots (
    device_id  TEXT NOT NULL,
    boot       BIGINT NOT NULL,
    -- The receipt of the first message of this boot heard, minus its `up`.
    started_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, boot)
);
-- The table of today becomes the first partition, holding `at` < 1. A
-- constant default is kept in the catalogue: no row is rewritten. The
-- check, added without a scan here and validated in 0028 without blocking
-- writes, lets ATTACH PARTITION (0030) skip its scan.
ALTER TABLE messages ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD CONSTRAINT messages_before_partitioning_at CHECK (at < 1) NOT VALID;
