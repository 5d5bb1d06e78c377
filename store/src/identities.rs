//! Broker identities: devices, bridges, alert consumers and gateways with
//! their `$7$` secret hashes (see [`anxin_domain::identity`]).

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// Names per statement of [`Store::broker_identities_named`].
pub const NAMES_PER_STATEMENT: usize = 256;
use anxin_domain::identity::{ExportedIdentity, Grant, IdentityKind};

/// An identity to create: its name and kind, its secret's hash, and for a
/// bridge the devices it carries.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub name: String,
    pub kind: IdentityKind,
    pub secret_hash: String,
    pub rate_per_s: Option<i64>,
    pub devices: Vec<String>,
}

impl NewIdentity {
    /// New identities of `kind` named `names`, each with a new secret:
    /// the identities to store (hashes only) and the secrets to show once.
    /// Names are checked first (the device id alphabet); hashing runs on the
    /// calling thread, so an async caller hands this to a blocking thread.
    pub fn issue(
        kind: IdentityKind,
        names: &[String],
        devices: &[String],
        rate_per_s: Option<i64>,
    ) -> Result<(Vec<NewIdentity>, std::collections::BTreeMap<String, String>), StoreError> {
        for name in names.iter().chain(devices) {
            anxin_domain::identity::check_name(name).map_err(|error| StoreError::Invalid(error.to_string()))?;
        }
        let secrets: std::collections::BTreeMap<String, String> =
            names.iter().map(|name| (name.clone(), anxin_domain::identity::new_secret())).collect();
        if secrets.len() != names.len() {
            return Err(StoreError::Invalid("a name is given twice".into()));
        }
        let identities = secrets
            .iter()
            .map(|(name, secret)| NewIdentity {
                name: name.clone(),
                kind,
                secret_hash: anxin_domain::identity::hash_secret(secret),
                rate_per_s,
                devices: devices.to_vec(),
            })
            .collect();
        Ok((identities, secrets))
    }
}

/// An identity as the broker checks it.
#[derive(Debug, Clone)]
pub struct StoredIdentity {
    pub grant: Grant,
    pub secret_hash: String,
    pub rate_per_s: Option<i64>,
    /// When its current secret was issued.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An identity as `anxin devices|bridges|consumers list` shows it (never its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRecord {
    pub name: String,
    pub kind: IdentityKind,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub rate_per_s: Option<i64>,
    /// A bridge's devices.
    pub devices: Vec<String>,
}

fn kind_of(row: &AnyRow) -> Result<IdentityKind, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    IdentityKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown identity kind {kind:?}").into()))
}

impl Store {
    /// Creates identities, all or none: a name already held by an identity
    /// that is not revoked is refused (the error names every such name), a
    /// revoked one is issued its new secret. A device identity registers the
    /// device (unclaimed until paired); so do a bridge's devices.
    pub async fn create_identities(&self, identities: &[NewIdentity], actor: &str, now: i64) -> Result<(), StoreError> {
        self.write_identities(identities, false, actor, now).await
    }

    /// Like [`Store::create_identities`], but an identity of the same kind
    /// that is not revoked is issued the new secret too (its old one stops
    /// working): the simulator's own devices, provisioned afresh each run.
    pub async fn reissue_identities(
        &self,
        identities: &[NewIdentity],
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_identities(identities, true, actor, now).await
    }

    async fn write_identities(
        &self,
        identities: &[NewIdentity],
        reissue: bool,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let transaction = &mut write.transaction;
        let mut taken = Vec::new();
        for identity in identities {
            let existing = sqlx::query("SELECT kind, revoked_at FROM broker_identities WHERE name = $1")
                .bind(&identity.name)
                .fetch_optional(&mut **transaction)
                .await?;
            if let Some(row) = existing {
                let kind = kind_of(&row)?;
                let revoked: Option<i64> = row.try_get("revoked_at")?;
                if kind != identity.kind || (revoked.is_none() && !reissue) {
                    taken.push(format!(
                        "{} (a {kind}{})",
                        identity.name,
                        if revoked.is_some() { ", revoked" } else { "" }
                    ));
                }
            }
        }
        if !taken.is_empty() {
            return Err(StoreError::Invalid(format!(
                "already on the broker: {}; revoke first to issue a new secret",
                taken.join(", ")
            )));
        }
        for identity in identities {
            sqlx::query(
                "INSERT INTO broker_identities (name, kind, secret_hash, rate_per_s, created_at, revoked_at, changed_at)
                 VALUES ($1, $2, $3, $4, $5, NULL, $5)
                 ON CONFLICT (name) DO UPDATE SET secret_hash = excluded.secret_hash, rate_per_s = excluded.rate_per_s,
                     created_at = excluded.created_at, revoked_at = NULL, changed_at = excluded.changed_at",
            )
            .bind(&identity.name)
            .bind(identity.kind.as_str())
            .bind(&identity.secret_hash)
            .bind(identity.rate_per_s)
            .bind(now)
            .execute(&mut **transaction)
            .await?;
            sqlx::query("DELETE FROM bridge_devices WHERE bridge = $1")
                .bind(&identity.name)
                .execute(&mut **transaction)
                .await?;
            let registered: Vec<&str> = match identity.kind {
                IdentityKind::Device => vec![identity.name.as_str()],
                IdentityKind::Bridge => identity.devices.iter().map(String::as_str).collect(),
                IdentityKind::Consumer | IdentityKind::Gateway => Vec::new(),
            };
            for device in registered {
                if identity.kind == IdentityKind::Bridge {
                    sqlx::query("INSERT INTO bridge_devices (bridge, device_id) VALUES ($1, $2)")
                        .bind(&identity.name)
                        .bind(device)
                        .execute(&mut **transaction)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO devices (device_id, first_seen, last_seen, online, status_changed_at)
                     VALUES ($1, $2, $2, 0, $2) ON CONFLICT (device_id) DO NOTHING",
                )
                .bind(device)
                .bind(now)
                .execute(&mut **transaction)
                .await?;
            }
            let action = format!("{} added to the broker", identity.kind);
            super::users::audit(transaction, now, actor, &action, None, Some(&identity.name)).await?;
        }
        write.commit().await?;
        Ok(())
    }

    /// Revokes an identity of `kind`: it can no longer connect, and a
    /// connected client's next publish is refused.
    pub async fn revoke_identity(
        &self,
        name: &str,
        kind: IdentityKind,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let transaction = &mut write.transaction;
        let updated = sqlx::query(
            "UPDATE broker_identities SET revoked_at = $1, changed_at = $1
             WHERE name = $2 AND kind = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .bind(kind.as_str())
        .execute(&mut **transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("there is no {kind} {name:?} on the broker that is not revoked")));
        }
        super::users::audit(transaction, now, actor, &format!("{kind} revoked on the broker"), None, Some(name))
            .await?;
        write.commit().await?;
        Ok(())
    }

    /// One identity, revoked or not, with what it may do.
    pub async fn broker_identity(&self, name: &str) -> Result<Option<StoredIdentity>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT name, kind, secret_hash, rate_per_s, created_at, revoked_at FROM broker_identities WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.stored_identity(&row).await?))
    }

    /// The identities among `names` that exist, revoked or not, in a few
    /// statements of at most [`NAMES_PER_STATEMENT`] names: an edge taking many devices at
    /// once (after it restarted) reads them together.
    pub async fn broker_identities_named(
        &self,
        names: &[&str],
    ) -> Result<std::collections::HashMap<String, StoredIdentity>, StoreError> {
        let mut found = std::collections::HashMap::with_capacity(names.len());
        let mut rest = names;
        for size in super::chunk_sizes(names.len(), NAMES_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name, kind, secret_hash, rate_per_s, created_at, revoked_at FROM broker_identities
                 WHERE name IN ({})",
                super::Params::new(self.backend()).list(chunk.len())
            )));
            for name in chunk {
                query = query.bind(*name);
            }
            for row in query.fetch_all(&self.pool).await? {
                let identity = self.stored_identity(&row).await?;
                found.insert(identity.grant.name.clone(), identity);
            }
        }
        Ok(found)
    }

    async fn stored_identity(&self, row: &AnyRow) -> Result<StoredIdentity, StoreError> {
        let kind = kind_of(row)?;
        let name: String = row.try_get("name")?;
        let devices = if kind == IdentityKind::Bridge { self.bridge_devices(&name).await? } else { BTreeSet::new() };
        Ok(StoredIdentity {
            grant: Grant { name, kind, devices },
            secret_hash: row.try_get("secret_hash")?,
            rate_per_s: row.try_get("rate_per_s")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }

    async fn bridge_devices(&self, bridge: &str) -> Result<BTreeSet<String>, StoreError> {
        let rows = sqlx::query("SELECT device_id FROM bridge_devices WHERE bridge = $1")
            .bind(bridge)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| row.try_get("device_id")).collect::<Result<_, _>>()?)
    }

    /// Identities of one kind (or all), by name.
    pub async fn broker_identities(&self, kind: Option<IdentityKind>) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, kind, created_at, revoked_at, rate_per_s FROM broker_identities
             WHERE ($1 IS NULL OR kind = $1) ORDER BY name",
        )
        .bind(kind.map(IdentityKind::as_str))
        .fetch_all(&self.pool)
        .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind = kind_of(row)?;
            let name: String = row.try_get("name")?;
            let devices = if kind == IdentityKind::Bridge {
                self.bridge_devices(&name).await?.into_iter().collect()
            } else {
                vec![]
            };
            records.push(IdentityRecord {
                name,
                kind,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
                rate_per_s: row.try_get("rate_per_s")?,
                devices,
            });
        }
        Ok(records)
    }

    /// Every identity that is not revoked, with its hash: for `anxin devices
    /// export --mosquitto`.
    pub async fn identities_to_export(&self) -> Result<Vec<ExportedIdentity>, StoreError> {
        let rows = sqlx::query("SELECT name FROM broker_identities WHERE revoked_at IS NULL ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut exported = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name")?;
            if let Some(identity) = self.broker_identity(&name).await? {
                exported.push(ExportedIdentity { grant: identity.grant, secret_hash: identity.secret_hash });
            }
        }
        Ok(exported)
    }

    /// Names of identities changed after `since` (ms), with the newest change
    /// time: how a running broker learns of revocations.
    pub async fn identities_changed_since(&self, since: i64) -> Result<(Vec<String>, i64), StoreError> {
        let rows = sqlx::query("SELECT name, changed_at FROM broker_identities WHERE changed_at > $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let mut newest = since;
        let mut names = Vec::with_capacity(rows.len());
        for row in &rows {
            newest = newest.max(row.try_get("changed_at")?);
            names.push(row.try_get("name")?);
        }
        Ok((names, newest))
    }
}
