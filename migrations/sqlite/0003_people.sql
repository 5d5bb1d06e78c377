-- People who use the console, what each may see, and the audit log.

-- Roles: admin, oncall (on-call staff), visitor (探访人员), official.
CREATE TABLE users (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL UNIQUE,
    role                  TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    must_change_password  INTEGER NOT NULL DEFAULT 1,
    disabled              INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL
);

-- The regions an oncall or official user covers; township and village NULL
-- mean the whole county / township.
CREATE TABLE user_regions (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    county   TEXT NOT NULL,
    township TEXT,
    village  TEXT
);
CREATE INDEX user_regions_user ON user_regions (user_id);

-- 探访责任人: the visitor responsible for an elder.
CREATE TABLE visitor_assignments (
    elder_id    INTEGER NOT NULL REFERENCES elders (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    assigned_at INTEGER NOT NULL,
    PRIMARY KEY (elder_id, user_id)
);
CREATE INDEX visitor_assignments_user ON visitor_assignments (user_id);

-- Append-only: who did or read what, about which elder, when.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    elder_id INTEGER,
    detail   TEXT
);
CREATE INDEX audit_log_elder ON audit_log (elder_id, at);

-- Bearer tokens for the JSON API (`anxin tokens issue USER`); only their
-- SHA-256 is kept.
CREATE TABLE api_tokens (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
