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
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    through_id INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    at         INTEGER NOT NULL
);

CREATE TRIGGER audit_log_chained BEFORE INSERT ON audit_log
WHEN NEW.hash IS NULL
BEGIN
    SELECT RAISE(ABORT, 'an audit entry is written with its place in the chain');
END;

CREATE TRIGGER audit_log_sealed BEFORE UPDATE ON audit_log
WHEN OLD.hash IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: a sealed entry cannot change');
END;

CREATE TRIGGER audit_log_kept BEFORE DELETE ON audit_log
WHEN OLD.id > COALESCE((SELECT MAX(through_id) FROM audit_checkpoints), 0)
  OR OLD.at > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 15552000000
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries go only by checkpoint, after 180 days');
END;

CREATE TRIGGER audit_checkpoint_true BEFORE INSERT ON audit_checkpoints
WHEN NOT EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.through_id AND hash = NEW.hash)
BEGIN
    SELECT RAISE(ABORT, 'a checkpoint must name an entry of the log and its hash');
END;

CREATE TRIGGER audit_checkpoints_fixed_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints cannot change');
END;

CREATE TRIGGER audit_checkpoints_fixed_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints cannot change');
END;
