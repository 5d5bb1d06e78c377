-- Alert events between processes (a province's store writers and console).
--
-- 1. Their order. Ids are taken at INSERT, so two writers can commit them out
--    of order; a reader's cursor of ids (the console's feed, the webhook, the
--    responder chain) would pass over the lower one while it is uncommitted,
--    and never read it. Each event is given its position at COMMIT instead
--    (a deferred trigger), from one counter: the committing transaction holds
--    the counter's row lock to its end, so positions are committed in
--    increasing order. Readers follow COALESCE(seq, id): events from before
--    this migration keep their id as their position; the counter starts
--    above them.
ALTER TABLE alert_events ADD COLUMN seq BIGINT;

CREATE TABLE alert_event_order (
    one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last BIGINT NOT NULL
);
INSERT INTO alert_event_order (last) SELECT COALESCE(MAX(id), 0) FROM alert_events;

CREATE FUNCTION anxin_order_alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH next AS (UPDATE alert_event_order SET last = last + 1 RETURNING last)
    UPDATE alert_events SET seq = next.last FROM next WHERE alert_events.id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER alert_events_order AFTER INSERT ON alert_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION anxin_order_alert_event();

-- 2. Their news. Each committed alert event wakes every process's feed and
--    delivery sinks at once (LISTEN anxin_alert_events, in the store) instead
--    of at their once-a-second look. PostgreSQL sends a notification at
--    COMMIT, never for a rolled-back event; the payload is the statement's
--    newest event id.
CREATE FUNCTION anxin_notify_alert_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anxin_alert_events', (SELECT MAX(id)::text FROM inserted));
    RETURN NULL;
END
$$;

CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION anxin_notify_alert_events();
