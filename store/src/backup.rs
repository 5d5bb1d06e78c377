//! Backups of a SQLite store (`VACUUM INTO`: a consistent copy taken while
//! `serve` runs, in one read transaction, with writers going on), their
//! check before a restore, and the schema version a database is at.
//! PostgreSQL is backed up with its own tools (`pg_dump`, base backups).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{Backend, Store, StoreError};

/// What a backup file holds, read without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The newest migration applied in it.
    pub schema_version: i64,
    pub elders: i64,
    pub messages: i64,
    pub alerts: i64,
    pub visits: i64,
    pub users: i64,
    pub bytes: u64,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "schema {}; {} elders, {} messages, {} alerts, {} visits, {} users; {:.1} MB; integrity ok",
            self.schema_version,
            self.elders,
            self.messages,
            self.alerts,
            self.visits,
            self.users,
            self.bytes as f64 / 1_048_576.0
        )
    }
}

/// The newest schema version this build knows (its last migration).
pub fn newest_schema() -> i64 {
    super::SQLITE_MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `path` as a SQL string literal.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// Copies the SQLite database behind `pool` into `target` (which must not
/// exist), consistently, while others write.
pub(crate) async fn vacuum_into(pool: &sqlx::AnyPool, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Invalid(format!("{} exists already: a backup never overwrites", target.display())));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO {}", quoted(target)))).execute(pool).await?;
    Ok(())
}

/// The newest migration applied in the database behind `pool`, if any.
pub(crate) async fn applied_schema(pool: &sqlx::AnyPool) -> Result<Option<i64>, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
        .fetch_optional(pool)
        .await?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let row = sqlx::query("SELECT MAX(version) AS version FROM _sqlx_migrations WHERE success").fetch_one(pool).await?;
    Ok(row.try_get("version")?)
}

/// Where the copy taken before migrating `database` from `from` to `to` goes.
pub(crate) fn before_migration_path(
    database: &Path,
    from: i64,
    to: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> PathBuf {
    let folder = database.parent().map_or_else(|| PathBuf::from("backups"), |f| f.join("backups"));
    folder.join(format!("before-schema-{to}-from-{from}-{}.sqlite3", now.format("%Y%m%dT%H%M%SZ")))
}

impl Store {
    /// The newest migration applied to this database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT MAX(version) AS version FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("version")?.unwrap_or(0))
    }

    /// Writes a consistent copy of the database to `target` while the store
    /// is in use (SQLite's `VACUUM INTO`). PostgreSQL: refused, with the way.
    pub async fn backup_into(&self, target: &Path) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Invalid(
                "a PostgreSQL database is backed up with its own tools: pg_dump (or base backups with WAL \
                 archiving); see the README"
                    .into(),
            ));
        }
        if let Some(folder) = target.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|source| StoreError::DataFolder { path: folder.to_path_buf(), source })?;
        }
        vacuum_into(&self.pool, target).await
    }
}

/// Reads a backup file without changing it: its integrity (SQLite's
/// `integrity_check`), its schema version and what it holds. Refused when
/// it is not an Anxin database or was made by a newer Anxin.
pub async fn check_backup(path: &Path) -> Result<BackupSummary, StoreError> {
    sqlx::any::install_default_drivers();
    let bytes = std::fs::metadata(path)
        .map_err(|source| StoreError::Invalid(format!("cannot read {}: {source}", path.display())))?
        .len();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let open_error = |source| StoreError::Open { what: format!("SQLite {}", path.display()), source };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(&url).map_err(open_error)?)
        .await
        .map_err(open_error)?;
    let summary = async {
        let not_ours = |why: String| StoreError::Invalid(format!("{} is not an Anxin database: {why}", path.display()));
        let verdict: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .map_err(|e| not_ours(e.to_string()))?
            .try_get(0)?;
        if verdict != "ok" {
            return Err(StoreError::Invalid(format!("{} is damaged: {verdict}", path.display())));
        }
        let schema_version =
            applied_schema(&pool).await?.ok_or_else(|| not_ours("it has no schema migrations".into()))?;
        if schema_version > newest_schema() {
            return Err(StoreError::Invalid(format!(
                "{} is at schema {schema_version}, newer than this Anxin knows ({}): restore it with that version",
                path.display(),
                newest_schema()
            )));
        }
        let count = |table: &'static str| {
            let pool = pool.clone();
            async move {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| StoreError::Invalid(format!("{table}: {e}")))?;
                Ok::<i64, StoreError>(row.try_get("n")?)
            }
        };
        Ok(BackupSummary {
            schema_version,
            elders: count("elders").await?,
            messages: count("messages").await?,
            alerts: count("alerts").await?,
            visits: count("visits").await?,
            users: count("users").await?,
            bytes,
        })
    }
    .await;
    pool.close().await;
    summary
}
