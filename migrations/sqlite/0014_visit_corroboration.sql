-- A home visit's start time (epoch ms) and whether the home's sensors
-- corroborate it: corroborated, no_presence or no_sensors (the last two are
-- marked for spot-check). NULL for other modes and for visits recorded
-- before this.
ALTER TABLE visits ADD COLUMN started_at INTEGER;
ALTER TABLE visits ADD COLUMN corroboration TEXT;
