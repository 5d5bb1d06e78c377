-- no-transaction
-- Readers follow alert events by position (0024). Built CONCURRENTLY: the
-- table grows with every alert, and writers go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS alert_events_position ON alert_events ((COALESCE(seq, id)));
