-- The retention job finds hourly activity past its time by the hour.
-- (PostgreSQL builds this index CONCURRENTLY, without blocking ingest's
-- writes; SQLite builds it at start, before ingest opens.)
CREATE INDEX activity_hourly_hour ON activity_hourly (hour_start);
