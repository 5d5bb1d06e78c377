-- API tokens end: each has an expiry (NULL for those issued before this,
-- which `anxin tokens revoke` can end). Revoked and expired tokens stay as
-- rows, for the audit trail.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
