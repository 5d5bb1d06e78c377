//! Console sessions, kept server-side: the browser holds only a random id in
//! a cookie; the database holds its SHA-256, the user and the CSRF token.

use sqlx::Row;

use super::{Store, StoreError};
use anxin_domain::access::{self, Principal};

/// How long a session lives: `idle_ms` without a request, `absolute_ms` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl Default for SessionLimits {
    /// 30 minutes idle; 13 hours in all, a night shift and its handover.
    fn default() -> Self {
        SessionLimits { idle_ms: 30 * 60_000, absolute_ms: 13 * 3_600_000 }
    }
}

/// A live session: who, the token every state change must carry, and
/// whether they must change their password before anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
    pub must_change_password: bool,
}

/// A session only touches `last_seen_at` when it is this much older, so a
/// page that polls does not write on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// Starts a session for `user_id`: returns the cookie value, which is
    /// shown once and kept only as its hash. Sessions of the user that have
    /// run out are removed on the way.
    pub async fn start_session(&self, user_id: i64, limits: SessionLimits, now: i64) -> Result<String, StoreError> {
        let id = access::new_token();
        let csrf = access::new_token();
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND (last_seen_at < $2 OR created_at < $3)")
            .bind(user_id)
            .bind(now - limits.idle_ms)
            .bind(now - limits.absolute_ms)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(access::token_hash(&id))
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// The session behind a cookie value, if it is still alive.
    pub async fn session(&self, id: &str, limits: SessionLimits, now: i64) -> Result<Option<Session>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, u.must_change_password
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
        )
        .bind(access::token_hash(id))
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let created_at: i64 = row.try_get("created_at")?;
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        if now - last_seen_at > limits.idle_ms || now - created_at > limits.absolute_ms {
            self.end_session(id).await?;
            return Ok(None);
        }
        if now - last_seen_at > TOUCH_EVERY_MS {
            let _turn = self.write_turn().await;
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(access::token_hash(id))
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        let Some(principal) = self.principal(row.try_get("user_id")?).await? else {
            return Ok(None);
        };
        Ok(Some(Session {
            principal,
            csrf_token: row.try_get("csrf_token")?,
            must_change_password: row.try_get::<i64, _>("must_change_password")? == 1,
        }))
    }

    /// Logout.
    /// Whether a session still stands (not ended, not idle or too old, its
    /// user enabled), without touching it: an open alert stream asks this
    /// every few seconds and must not keep an idle session alive.
    pub async fn session_live(&self, id: &str, limits: SessionLimits, now: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND u.disabled = 0 AND s.last_seen_at >= $2 AND s.created_at >= $3",
        )
        .bind(access::token_hash(id))
        .bind(now - limits.idle_ms)
        .bind(now - limits.absolute_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// How many sessions each user has open now (by user id).
    pub async fn open_sessions(
        &self,
        limits: SessionLimits,
        now: i64,
    ) -> Result<std::collections::HashMap<i64, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, COUNT(*) AS open FROM sessions WHERE last_seen_at >= $1 AND created_at >= $2 GROUP BY user_id",
        )
        .bind(now - limits.idle_ms)
        .bind(now - limits.absolute_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("user_id")?, row.try_get("open")?))).collect()
    }

    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(access::token_hash(id)).execute(&self.pool).await?;
        Ok(())
    }

    /// Sets a new password (at least 12 characters) after checking the
    /// current one; ends every other session of the user. `false`: the
    /// current password was wrong.
    pub async fn change_password(
        &self,
        user_id: i64,
        current: &str,
        new: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(row) = sqlx::query("SELECT name, password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(false);
        };
        let hash: String = row.try_get("password_hash")?;
        if !crate::users::password_matches(current, &hash).await {
            return Ok(false);
        }
        if current == new {
            return Err(StoreError::Invalid("the new password must differ from the current one".into()));
        }
        let new_hash = crate::users::password_hash(new).await?;
        let name: String = row.try_get("name")?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        sqlx::query("UPDATE users SET password_hash = $2, must_change_password = 0 WHERE id = $1")
            .bind(user_id)
            .bind(new_hash)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(access::token_hash(keep_session))
            .execute(&mut *transaction)
            .await?;
        super::users::audit(&mut transaction, now, &name, "password changed", None, None).await?;
        transaction.commit().await?;
        Ok(true)
    }
}
