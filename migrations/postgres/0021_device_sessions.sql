-- A visitor's phone keeps its session for a working week (issue 18); the
-- desktop console keeps its 30 minutes idle. Each session says what it is
-- on (a short description from the browser) so that its user and an admin
-- can tell them apart and revoke one: a revoked session is kept until the
-- browser's next contact, which is answered with Clear-Site-Data (the
-- app's pages and the visits kept on the phone are wiped), then removed.
ALTER TABLE sessions ADD COLUMN device TEXT;
ALTER TABLE sessions ADD COLUMN phone BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN revoked_at BIGINT;
ALTER TABLE sessions ADD COLUMN revoked_by TEXT;
