//! The audit log as a hash chain ([`anxin_domain::audit`]): every entry is
//! written with the hash of the one before it; entries written before the
//! chain are sealed into it when the store opens; `verify` walks the chain
//! from the latest checkpoint; `prune` removes entries older than the
//! retention up to a checkpoint that keeps the hash the chain goes on from.
//! The database's triggers (migration 0010) refuse any other change.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use anxin_domain::audit::{Entry, GENESIS, link};

/// The shortest time an audit entry is kept (MLPS 2.0 asks six months).
pub const AUDIT_RETENTION_MS: i64 = 180 * 24 * 3_600_000;

/// Serializes chain writes on PostgreSQL (SQLite writes take turns already).
const CHAIN_LOCK: i64 = 0x616e_7869_6e61;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerdict {
    /// Entries checked.
    pub entries: u64,
    /// The checkpoint the walk started from (the last entry it stands for).
    pub from_checkpoint: Option<i64>,
    /// The first broken entry and why.
    pub broken: Option<(i64, String)>,
    /// The newest entry and its hash, when the chain holds: written down
    /// outside the database (the county's records), it shows later that
    /// nothing up to it was rewritten, even by someone who recomputed the
    /// hashes.
    pub head: Option<(i64, String)>,
}

async fn lock_chain(transaction: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    if transaction.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHAIN_LOCK).execute(&mut **transaction).await?;
    }
    Ok(())
}

/// The hash the next entry follows: the newest entry's, else the newest
/// checkpoint's, else the genesis.
async fn chain_head(transaction: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<String, StoreError> {
    let newest = sqlx::query("SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut **transaction)
        .await?;
    if let Some(row) = newest {
        return Ok(row.try_get("hash")?);
    }
    let checkpoint = sqlx::query("SELECT hash FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut **transaction)
        .await?;
    Ok(match checkpoint {
        Some(row) => row.try_get("hash")?,
        None => GENESIS.to_string(),
    })
}

/// Appends an entry to the chain, in `transaction`.
pub(crate) async fn audit(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    at: i64,
    actor: &str,
    action: &str,
    elder_id: Option<i64>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    lock_chain(transaction).await?;
    let previous = chain_head(transaction).await?;
    let hash = link(&previous, &Entry { at, actor, action, elder_id, detail });
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, elder_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(elder_id)
    .bind(detail)
    .bind(previous)
    .bind(hash)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// One entry as stored, for the walk.
struct Stored {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    elder_id: Option<i64>,
    detail: Option<String>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl Stored {
    fn of(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
        Ok(Stored {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            elder_id: row.try_get("elder_id")?,
            detail: row.try_get("detail")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    fn entry(&self) -> Entry<'_> {
        Entry {
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            elder_id: self.elder_id,
            detail: self.detail.as_deref(),
        }
    }
}

const STORED_COLUMNS: &str = "id, at, actor, action, elder_id, detail, prev_hash, hash";

impl Store {
    /// Seals entries written before the chain existed into it, oldest
    /// first (once, after migration 0010).
    pub(crate) async fn seal_audit_log(&self) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        lock_chain(&mut transaction).await?;
        // Only before the chain has begun: an entry slipped in unsealed later
        // is for `verify` to report, not to be taken into the chain.
        let begun = sqlx::query("SELECT 1 FROM audit_log WHERE hash IS NOT NULL LIMIT 1")
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
        if begun {
            return Ok(());
        }
        let unsealed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORED_COLUMNS} FROM audit_log WHERE hash IS NULL ORDER BY id"
        )))
        .fetch_all(&mut *transaction)
        .await?;
        for row in &unsealed {
            let entry = Stored::of(row)?;
            let previous =
                sqlx::query("SELECT hash FROM audit_log WHERE id < $1 AND hash IS NOT NULL ORDER BY id DESC LIMIT 1")
                    .bind(entry.id)
                    .fetch_optional(&mut *transaction)
                    .await?
                    .map(|row| row.try_get::<String, _>("hash"))
                    .transpose()?
                    .unwrap_or_else(|| GENESIS.to_string());
            let hash = link(&previous, &entry.entry());
            sqlx::query("UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1")
                .bind(entry.id)
                .bind(previous)
                .bind(hash)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Walks the chain from the latest checkpoint and reports the first
    /// entry whose link does not hold.
    pub async fn verify_audit_log(&self) -> Result<AuditVerdict, StoreError> {
        let checkpoint = sqlx::query("SELECT through_id, hash FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        let (mut after, mut expected) = match &checkpoint {
            Some(row) => (row.try_get::<i64, _>("through_id")?, row.try_get::<String, _>("hash")?),
            None => (0, GENESIS.to_string()),
        };
        let mut verdict =
            AuditVerdict { entries: 0, from_checkpoint: checkpoint.as_ref().map(|_| after), broken: None, head: None };
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {STORED_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT 1000"
            )))
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(verdict);
            }
            for row in &rows {
                let entry = Stored::of(row)?;
                after = entry.id;
                let why = match (&entry.prev_hash, &entry.hash) {
                    (None, _) | (_, None) => Some("it is not sealed into the chain".to_string()),
                    (Some(previous), _) if *previous != expected => {
                        Some("it does not follow the entry before it (one was removed, added or changed)".into())
                    }
                    (Some(previous), Some(hash)) if *hash != link(previous, &entry.entry()) => {
                        Some("its content does not match its hash (it was changed)".into())
                    }
                    _ => None,
                };
                if let Some(why) = why {
                    verdict.broken = Some((entry.id, why));
                    return Ok(verdict);
                }
                expected = entry.hash.clone().unwrap_or_default();
                verdict.entries += 1;
                verdict.head = Some((entry.id, expected.clone()));
            }
        }
    }

    /// Removes the entries older than `cutoff` (at least
    /// [`AUDIT_RETENTION_MS`] before `now`), after a checkpoint that keeps
    /// the hash of the last one removed. Returns how many went.
    pub async fn prune_audit_log(&self, cutoff: i64, now: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let done = self.prune_audit_batch(cutoff, now, 10_000).await?;
            removed += done;
            if done < 10_000 {
                return Ok(removed);
            }
        }
    }

    /// [`Store::prune_audit_log`] of at most `limit` of the oldest entries,
    /// in one transaction.
    pub(crate) async fn prune_audit_batch(&self, cutoff: i64, now: i64, limit: i64) -> Result<u64, StoreError> {
        if cutoff > now - AUDIT_RETENTION_MS {
            return Err(StoreError::Invalid("audit entries are kept at least 180 days".into()));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        lock_chain(&mut transaction).await?;
        // Only a run of the oldest: everything before the first entry that is still kept.
        let first_kept = sqlx::query("SELECT MIN(id) AS id FROM audit_log WHERE at >= $1")
            .bind(cutoff)
            .fetch_one(&mut *transaction)
            .await?
            .try_get::<Option<i64>, _>("id")?;
        let through = sqlx::query(
            "SELECT id, hash FROM audit_log WHERE ($1 IS NULL OR id < $1)
             AND id < (SELECT MIN(id) FROM audit_log) + $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(first_kept)
        .bind(limit)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(through) = through else { return Ok(0) };
        let (through_id, hash): (i64, String) = (through.try_get("id")?, through.try_get("hash")?);
        sqlx::query("INSERT INTO audit_checkpoints (through_id, hash, at) VALUES ($1, $2, $3)")
            .bind(through_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        let removed = sqlx::query("DELETE FROM audit_log WHERE id <= $1")
            .bind(through_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        audit(&mut transaction, now, "anxin", "audit log pruned", None, Some(&format!("through entry {through_id}")))
            .await?;
        transaction.commit().await?;
        Ok(removed)
    }
}
