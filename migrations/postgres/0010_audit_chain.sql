-- The audit log becomes a hash chain (domain/src/audit.rs): each row holds
-- the hash of the row before it and its own. Rows written before this are
-- sealed into the chain once, when the store opens (their hash is NULL until
-- then). Nothing may change a sealed row; rows may be deleted only up to a
-- checkpoint (the retention job's `anxin audit prune`), and only once they
-- are older than the 180 days MLPS 2.0 asks logs be kept; the checkpoint keeps
-- the hash the rest of the chain follows.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

CREATE TABLE audit_checkpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    through_id BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL
);

CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.hash IS NULL THEN
            RAISE EXCEPTION 'an audit entry is written with its place in the chain';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.hash IS NOT NULL THEN
            RAISE EXCEPTION 'the audit log is append-only: a sealed entry cannot change';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.id > COALESCE((SELECT MAX(through_id) FROM audit_checkpoints), 0)
       OR OLD.at > (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 15552000000 THEN
        RAISE EXCEPTION 'the audit log is append-only: entries go only by checkpoint, after 180 days';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER audit_log_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_guard();

CREATE FUNCTION audit_checkpoint_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.through_id AND hash = NEW.hash) THEN
            RAISE EXCEPTION 'a checkpoint must name an entry of the log and its hash';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit checkpoints cannot change';
END $$;

CREATE TRIGGER audit_checkpoint_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_guard();
