//! Users of the console, their regions, visitor assignments, and the audit log.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use anxin_domain::access::{self, Principal, Region, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub regions: Vec<String>,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// For visitors: their kind (民政办, 网格员, 志愿者, …), once set.
    pub visitor_kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub elder_id: Option<i64>,
    pub detail: Option<String>,
}

/// How many hex digits of a token's hash name it in lists and revocations.
pub const TOKEN_ID_LEN: usize = 12;

/// A token's name: the start of its hash (the token itself is never kept).
fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// An API token as `anxin tokens list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A password hash compared against when the user does not exist, so a
/// wrong name costs as much time as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| access::hash_password(&access::one_time_password()).unwrap_or_default());

/// Argon2 takes tens of milliseconds of a core by design: it runs on
/// tokio's blocking pool, at most this many at once, so a flood of sign-ins
/// slows sign-ins and never the async workers that carry the broker and
/// ingest.
const PASSWORD_WORK_AT_ONCE: usize = 2;
static PASSWORD_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PASSWORD_WORK_AT_ONCE);

/// Runs `work` (hashing or checking a password) off the async workers.
pub(crate) async fn password_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let _turn = PASSWORD_WORK.acquire().await.expect("the semaphore is never closed");
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// [`access::verify_password`] through [`password_work`].
pub(crate) async fn password_matches(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    password_work(move || access::verify_password(&password, &hash)).await
}

/// [`access::hash_password`] through [`password_work`].
pub(crate) async fn password_hash(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    password_work(move || access::hash_password(&password)).await.map_err(|e| StoreError::Invalid(e.to_string()))
}

impl Store {
    /// Adds a user with a password they must change at first sign-in (by
    /// the command line).
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        regions: &[Region],
        password: &str,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        self.add_user_as("anxin", name, role, regions, password, now).await
    }

    /// [`Store::add_user`], audited as `by` (an admin on the console).
    pub async fn add_user_as(
        &self,
        by: &str,
        name: &str,
        role: Role,
        regions: &[Region],
        password: &str,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        let name = access::user_name(name).map_err(|e| StoreError::Invalid(e.to_string()))?;
        regions_fit(role, regions)?;
        let hash = password_hash(password).await?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let taken = sqlx::query("SELECT id FROM users WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *transaction)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Invalid(format!("there is already a user called {name}")));
        }
        let row = sqlx::query(
            "INSERT INTO users (name, role, password_hash, must_change_password, created_at)
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
        )
        .bind(name.as_str())
        .bind(role.as_str())
        .bind(hash)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        let id: i64 = row.try_get("id")?;
        insert_regions(&mut transaction, id, regions).await?;
        audit(&mut transaction, now, by, "user added", None, Some(&format!("{name} ({})", role.as_str()))).await?;
        transaction.commit().await?;
        Ok(UserRecord {
            id,
            name,
            role: role.as_str().into(),
            regions: regions.iter().map(ToString::to_string).collect(),
            must_change_password: true,
            disabled: false,
            created_at: now,
            visitor_kind: None,
        })
    }

    /// On a fresh database, creates `admin` with `password`, or with a
    /// one-time password returned to be printed once. `None` when there are
    /// users already.
    pub async fn ensure_first_admin(&self, password: Option<&str>, now: i64) -> Result<Option<String>, StoreError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await?.try_get("n")?;
        if count > 0 {
            return Ok(None);
        }
        let password = password.map_or_else(access::one_time_password, str::to_string);
        self.add_user("admin", Role::Admin, &[], &password, now).await?;
        Ok(Some(password))
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, must_change_password, disabled, created_at, visitor_kind FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            users.push(UserRecord {
                id,
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                regions: self.regions_of(id).await?.iter().map(ToString::to_string).collect(),
                must_change_password: row.try_get::<i64, _>("must_change_password")? == 1,
                disabled: row.try_get::<i64, _>("disabled")? == 1,
                created_at: row.try_get("created_at")?,
                visitor_kind: row.try_get("visitor_kind")?,
            });
        }
        Ok(users)
    }

    /// Sets a visitor's kind; audited as `by`.
    pub async fn set_visitor_kind(
        &self,
        name: &str,
        kind: anxin_domain::visits::VisitorKind,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let updated = sqlx::query("UPDATE users SET visitor_kind = $1 WHERE name = $2 AND role = 'visitor'")
            .bind(kind.code())
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("there is no visitor named {name}")));
        }
        let detail = format!("user={name} kind={}", kind.code());
        audit(&mut transaction, now, by, "visitor kind set", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn regions_of(&self, user_id: i64) -> Result<Vec<Region>, StoreError> {
        let rows = sqlx::query("SELECT county, township, village FROM user_regions WHERE user_id = $1 ORDER BY county")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(Region {
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The signed-in principal for `name` and `password`, or `None` — the
    /// same answer, after the same work, whether the user is missing,
    /// disabled or the password wrong.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT id, name, role, password_hash, disabled FROM users WHERE name = $1")
            .bind(name.trim())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            let _ = password_matches(password, &DUMMY_HASH).await;
            return Ok(None);
        };
        let hash: String = row.try_get("password_hash")?;
        let matches = password_matches(password, &hash).await;
        if !matches || row.try_get::<i64, _>("disabled")? == 1 {
            return Ok(None);
        }
        self.principal(row.try_get("id")?).await
    }

    /// Who a user is and what they cover.
    pub async fn principal(&self, user_id: i64) -> Result<Option<Principal>, StoreError> {
        let Some(row) = sqlx::query("SELECT id, name, role FROM users WHERE id = $1 AND disabled = 0")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let role_text: String = row.try_get("role")?;
        let role = Role::parse(&role_text).ok_or_else(|| StoreError::Invalid(format!("unknown role {role_text}")))?;
        let assigned = sqlx::query("SELECT elder_id FROM visitor_assignments WHERE user_id = $1 ORDER BY elder_id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("elder_id"))
            .collect::<Result<_, _>>()?;
        Ok(Some(Principal {
            user_id,
            name: row.try_get("name")?,
            role,
            regions: self.regions_of(user_id).await?,
            assigned_elders: assigned,
        }))
    }

    /// Issues a bearer token for the JSON API to `user`, valid until
    /// `expires_at`; the token is returned once, only its SHA-256 is kept.
    /// The user must be enabled and have set their own password.
    pub async fn issue_token(&self, user: &str, expires_at: i64, now: i64) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT id, disabled, must_change_password FROM users WHERE name = $1")
            .bind(user.trim())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no user called {}", user.trim())))?;
        if row.try_get::<i64, _>("disabled")? == 1 {
            return Err(StoreError::Invalid(format!("{} is disabled", user.trim())));
        }
        if row.try_get::<i64, _>("must_change_password")? == 1 {
            return Err(StoreError::Invalid(format!(
                "{} has not set their own password yet: a token would stand for the one-time password",
                user.trim()
            )));
        }
        if expires_at <= now {
            return Err(StoreError::Invalid("a token must expire in the future".into()));
        }
        let user_id: i64 = row.try_get("id")?;
        let token = access::new_token();
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        sqlx::query("INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(access::token_hash(&token))
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *transaction)
            .await?;
        let detail = format!("{} {}", user.trim(), token_id(&access::token_hash(&token)));
        audit(&mut transaction, now, "anxin", "token issued", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(token)
    }

    /// The principal a bearer token stands for, if it is valid: not
    /// revoked, not expired, its user enabled and past the one-time password.
    pub async fn principal_for_token(&self, token: &str, now: i64) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "UPDATE api_tokens SET last_used_at = $2
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
               AND user_id IN (SELECT id FROM users WHERE disabled = 0 AND must_change_password = 0)
             RETURNING user_id",
        )
        .bind(access::token_hash(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => self.principal(row.try_get("user_id")?).await,
            None => Ok(None),
        }
    }

    /// Whether a token still stands, without recording a use (the open
    /// alert stream's periodic check).
    pub async fn token_live(&self, token: &str, now: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)
               AND u.disabled = 0 AND u.must_change_password = 0",
        )
        .bind(access::token_hash(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Every token, newest first (of one user, if named).
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.token_hash, u.name, t.created_at, t.last_used_at, t.expires_at, t.revoked_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE ($1 IS NULL OR u.name = $1) ORDER BY t.created_at DESC",
        )
        .bind(user.map(str::trim))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRecord {
                    id: token_id(&row.try_get::<String, _>("token_hash")?),
                    user: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes the token whose id (as `tokens` lists it) is `id`.
    pub async fn revoke_token(&self, id: &str, by: &str, now: i64) -> Result<(), StoreError> {
        let id = id.trim();
        if id.len() != TOKEN_ID_LEN || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!(
                "a token id is {TOKEN_ID_LEN} hex digits, as `tokens list` shows"
            )));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE substr(token_hash, 1, 12) = $1 AND revoked_at IS NULL",
        )
        .bind(id.to_ascii_lowercase())
        .bind(now)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if revoked == 0 {
            return Err(StoreError::NotFound(format!("there is no live token {id}")));
        }
        audit(&mut transaction, now, by, "token revoked", None, Some(id)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Disables or enables a user. Disabled, their sessions end at once and
    /// their tokens stop working (they come back if the user is enabled
    /// again, unless revoked or expired).
    pub async fn set_user_disabled(&self, user: &str, disabled: bool, by: &str, now: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1 RETURNING id")
            .bind(user.trim())
            .bind(i64::from(disabled))
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no user called {}", user.trim())))?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut *transaction)
                .await?;
        }
        let action = if disabled { "user disabled" } else { "user enabled" };
        audit(&mut transaction, now, by, action, None, Some(user.trim())).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Sets a user's role and the regions they cover; takes effect at their
    /// next request.
    pub async fn set_user_access(
        &self,
        user: &str,
        role: Role,
        regions: &[Region],
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        regions_fit(role, regions)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query("UPDATE users SET role = $2 WHERE name = $1 RETURNING id")
            .bind(user.trim())
            .bind(role.as_str())
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no user called {}", user.trim())))?;
        let id: i64 = row.try_get("id")?;
        sqlx::query("DELETE FROM user_regions WHERE user_id = $1").bind(id).execute(&mut *transaction).await?;
        insert_regions(&mut transaction, id, regions).await?;
        let detail = format!("{} ({}, {} regions)", user.trim(), role.as_str(), regions.len());
        audit(&mut transaction, now, by, "user access changed", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Gives a user a new one-time password (returned once) that they must
    /// change at their next sign-in; their sessions end.
    pub async fn reset_password(&self, user: &str, by: &str, now: i64) -> Result<String, StoreError> {
        let password = access::one_time_password();
        let hash = password_hash(&password).await?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row =
            sqlx::query("UPDATE users SET password_hash = $2, must_change_password = 1 WHERE name = $1 RETURNING id")
                .bind(user.trim())
                .bind(hash)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("there is no user called {}", user.trim())))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(row.try_get::<i64, _>("id")?)
            .execute(&mut *transaction)
            .await?;
        audit(&mut transaction, now, by, "password reset", None, Some(user.trim())).await?;
        transaction.commit().await?;
        Ok(password)
    }

    /// The visitors responsible for an elder (探访责任人), by name.
    pub async fn visitors_of(&self, elder_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.name FROM visitor_assignments v JOIN users u ON u.id = v.user_id WHERE v.elder_id = $1 ORDER BY u.name",
        )
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| row.try_get("name")).collect::<Result<_, _>>()?)
    }

    /// Names `visitor` as the visitor responsible for an elder (探访责任人).
    pub async fn assign_visitor(&self, elder_id: i64, visitor: &str, by: &str, now: i64) -> Result<(), StoreError> {
        if self.elder(elder_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("there is no elder with id {elder_id}")));
        }
        let row = sqlx::query("SELECT id, role FROM users WHERE name = $1")
            .bind(visitor.trim())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no user called {}", visitor.trim())))?;
        if row.try_get::<String, _>("role")? != Role::Visitor.as_str() {
            return Err(StoreError::Invalid(format!("{} is not a visitor", visitor.trim())));
        }
        let user_id: i64 = row.try_get("id")?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO visitor_assignments (elder_id, user_id, assigned_at) VALUES ($1, $2, $3)
             ON CONFLICT (elder_id, user_id) DO NOTHING",
        )
        .bind(elder_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        audit(&mut transaction, now, by, "visitor assigned", Some(elder_id), Some(visitor.trim())).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Elders with no visitor responsible for them.
    pub async fn elders_without_visitor(&self) -> Result<Vec<i64>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM elders WHERE id NOT IN (SELECT elder_id FROM visitor_assignments) ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        elder_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        audit(&mut transaction, at, actor, action, elder_id, detail).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The newest audit entries first, optionally about one elder.
    pub async fn audit_entries(&self, elder_id: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, elder_id, detail FROM audit_log
             WHERE ($1 IS NULL OR elder_id = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(elder_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    elder_id: row.try_get("elder_id")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

pub(super) use crate::audit::audit;

/// On-call staff and officials cover at least one region.
fn regions_fit(role: Role, regions: &[Region]) -> Result<(), StoreError> {
    if role.needs_region() && regions.is_empty() {
        return Err(StoreError::Invalid(access::AccessError::RegionNeeded(role.as_str()).to_string()));
    }
    Ok(())
}

/// The regions user `id` covers, in `transaction`.
async fn insert_regions(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    regions: &[Region],
) -> Result<(), StoreError> {
    for region in regions {
        sqlx::query("INSERT INTO user_regions (user_id, county, township, village) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(region.county.as_str())
            .bind(region.township.as_deref())
            .bind(region.village.as_deref())
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}
