//! Console sessions, kept server-side: the browser holds only a random id in
//! a cookie; the database holds its SHA-256, the user and the CSRF token.

use sqlx::Row;

use super::{Store, StoreError};
use anxin_domain::access::{self, Principal};

/// How long a session lives: `idle_ms` without a request, `absolute_ms` in
/// all; a visitor's phone (the app), `phone_ms` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_ms: i64,
    pub absolute_ms: i64,
    pub phone_ms: i64,
}

impl Default for SessionLimits {
    /// 30 minutes idle; 13 hours in all, a night shift and its handover. A
    /// visitor's phone: a working week (seven days, so a Monday sign-in
    /// lasts to the next Monday).
    fn default() -> Self {
        SessionLimits { idle_ms: 30 * 60_000, absolute_ms: 13 * 3_600_000, phone_ms: 7 * 24 * 3_600_000 }
    }
}

/// Where a session is held: the desktop console (the 30-minute rule), or a
/// visitor's own phone (the app, a working week). `device` describes the
/// browser, for its user and an admin to tell sessions apart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionPlace {
    pub phone: bool,
    pub device: Option<String>,
}

/// A live session, as its user and an admin see it (never its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Names the session for revoking: the first characters of its id's hash.
    pub handle: String,
    pub device: Option<String>,
    pub phone: bool,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Characters of the id's hash that name a session.
const HANDLE_LEN: usize = 16;

/// A session is live when not revoked and within its limits (`$1` idle
/// cut-off, `$2` absolute cut-off, `$3` a phone's cut-off).
const LIVE: &str = "s.revoked_at IS NULL AND ((s.phone = 0 AND s.last_seen_at >= $1 AND s.created_at >= $2) \
                    OR (s.phone = 1 AND s.created_at >= $3))";

impl SessionLimits {
    /// The cut-offs of [`LIVE`] at `now`.
    fn cut_offs(self, now: i64) -> (i64, i64, i64) {
        (now - self.idle_ms, now - self.absolute_ms, now - self.phone_ms)
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
        self.start_session_at(user_id, &SessionPlace::default(), limits, now).await
    }

    /// [`Store::start_session`] on a described browser, a phone or not.
    pub async fn start_session_at(
        &self,
        user_id: i64,
        place: &SessionPlace,
        limits: SessionLimits,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = access::new_token();
        let csrf = access::new_token();
        let (idle, absolute, phone) = limits.cut_offs(now);
        let device = place.device.as_deref().map(|d| d.chars().take(120).collect::<String>());
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        // Run out (not revoked: a revoked one waits for its browser's next contact).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM sessions WHERE user_id = $4 AND id_hash IN
               (SELECT s.id_hash FROM sessions s WHERE s.user_id = $4 AND s.revoked_at IS NULL AND NOT ({LIVE}))"
        )))
        .bind(idle)
        .bind(absolute)
        .bind(phone)
        .bind(user_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, device, phone)
             VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(access::token_hash(&id))
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(device)
        .bind(i64::from(place.phone))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// Whether the session behind a cookie value was revoked (and not yet
    /// told to its browser).
    pub async fn session_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM sessions WHERE id_hash = $1 AND revoked_at IS NOT NULL")
            .bind(access::token_hash(id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A user's live sessions, the latest used first.
    pub async fn sessions_of(
        &self,
        user_id: i64,
        limits: SessionLimits,
        now: i64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let (idle, absolute, phone) = limits.cut_offs(now);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id_hash, s.device, s.phone, s.created_at, s.last_seen_at FROM sessions s
             WHERE s.user_id = $4 AND {LIVE} ORDER BY s.last_seen_at DESC"
        )))
        .bind(idle)
        .bind(absolute)
        .bind(phone)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let hash: String = row.try_get("id_hash")?;
                Ok(SessionInfo {
                    handle: hash.chars().take(HANDLE_LEN).collect(),
                    device: row.try_get("device")?,
                    phone: row.try_get::<i64, _>("phone")? == 1,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                })
            })
            .collect()
    }

    /// The handle of the session behind a cookie value.
    pub fn session_handle(id: &str) -> String {
        access::token_hash(id).chars().take(HANDLE_LEN).collect()
    }

    /// Revokes one of a user's sessions by its handle; audited as `by`.
    /// `false`: no such live session.
    pub async fn revoke_session(&self, user_id: i64, handle: &str, by: &str, now: i64) -> Result<bool, StoreError> {
        if handle.len() != HANDLE_LEN || !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_by = $4
             WHERE user_id = $1 AND substr(id_hash, 1, 16) = $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(handle)
        .bind(now)
        .bind(by)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if revoked == 0 {
            return Ok(false);
        }
        let user: String = sqlx::query("SELECT name FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *transaction)
            .await?
            .try_get("name")?;
        let detail = format!("{user}'s session {handle}");
        super::users::audit(&mut transaction, now, by, "session revoked", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// The session behind a cookie value, if it is still alive.
    pub async fn session(&self, id: &str, limits: SessionLimits, now: i64) -> Result<Option<Session>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.phone, s.revoked_at, u.must_change_password
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
        )
        .bind(access::token_hash(id))
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            // Kept until its browser is told (see [`Store::session_revoked`]).
            return Ok(None);
        }
        let created_at: i64 = row.try_get("created_at")?;
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        let over = if row.try_get::<i64, _>("phone")? == 1 {
            now - created_at > limits.phone_ms
        } else {
            now - last_seen_at > limits.idle_ms || now - created_at > limits.absolute_ms
        };
        if over {
            self.end_session(id).await?;
            return Ok(None);
        }
        if now - last_seen_at > TOUCH_EVERY_MS {
            let _turn = self.write_turn().await;
            let touched = sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(access::token_hash(id))
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(StoreError::from);
            match touched {
                // Design: a full disk must not sign everyone out — the
                // console is how staff learn that it is full. The session
                // stays valid; its idle clock is only not moved on.
                Err(error) if error.is_storage_full() => {
                    tracing::warn!("the session's last use is not recorded: the database has no room to write");
                }
                touched => {
                    touched?;
                }
            }
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
        let (idle, absolute, phone) = limits.cut_offs(now);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $4 AND u.disabled = 0 AND {LIVE}"
        )))
        .bind(idle)
        .bind(absolute)
        .bind(phone)
        .bind(access::token_hash(id))
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
        let (idle, absolute, phone) = limits.cut_offs(now);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.user_id, COUNT(*) AS open FROM sessions s WHERE {LIVE} GROUP BY s.user_id"
        )))
        .bind(idle)
        .bind(absolute)
        .bind(phone)
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
