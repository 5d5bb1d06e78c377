-- Readers follow alert events by position, COALESCE(seq, id). PostgreSQL
-- (its 0024) gives each event its position at COMMIT, several processes
-- writing at once. SQLite has one writer at a time, so ids are taken in the
-- order of the commits: seq stays empty and an event's position is its id.
-- (PostgreSQL's other half, notifying other processes, has nothing to do
-- here: one process writes the file and wakes its feed itself.)
ALTER TABLE alert_events ADD COLUMN seq INTEGER;
