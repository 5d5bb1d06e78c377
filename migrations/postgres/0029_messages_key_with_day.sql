-- no-transaction
-- The partitioned table's primary key must hold the partition key: the
-- table of today gets that key beside its own, built CONCURRENTLY (writers
-- go on), so that attaching it in 0030 builds nothing.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS messages_before_partitioning_key ON messages (device_id, boot, seq, at);
