-- SQLite drops messages_device_received in its 0006, where no query used it.
-- PostgreSQL keeps it: planning with the bound values, it reads one device's
-- messages through it (anxin messages tail --device).
COMMENT ON INDEX messages_device_received IS 'one device''s messages in time order: anxin messages tail --device';
