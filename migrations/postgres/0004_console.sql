-- The console: signed-in sessions, and the rest of the record form's part 1
-- on the elder (citizen ID, disability certificate, living at the registered
-- address).

ALTER TABLE elders ADD COLUMN citizen_id TEXT;
ALTER TABLE elders ADD COLUMN disability_cert TEXT;
ALTER TABLE elders ADD COLUMN lives_at_registered BIGINT NOT NULL DEFAULT 1;
ALTER TABLE elders ADD COLUMN updated_at BIGINT;

-- Server-side sessions: only the SHA-256 of the cookie's value is kept. A
-- session ends at logout, after idle_timeout without a request, or at its
-- absolute timeout, whichever comes first.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
