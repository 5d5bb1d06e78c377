-- no-transaction
-- The retention job finds hourly activity past its time by the hour. The
-- table is large (every home, every hour): the index is built CONCURRENTLY,
-- so ingest goes on writing meanwhile (ARCHITECTURE.md: no migration holds
-- a large table locked).
CREATE INDEX CONCURRENTLY IF NOT EXISTS activity_hourly_hour ON activity_hourly (hour_start);
