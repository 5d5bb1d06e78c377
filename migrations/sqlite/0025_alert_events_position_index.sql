-- Readers follow alert events by position (0024).
CREATE INDEX alert_events_position ON alert_events (COALESCE(seq, id));
