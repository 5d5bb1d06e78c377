//! Devices: the registry that binds a device to an elder's home, and what is
//! known of each device's health.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// Why [`Store::pair_unclaimed`] did not pair a device.
#[derive(Debug, thiserror::Error)]
pub enum PairRefusal {
    #[error("no device {0} has been heard from")]
    NoDevice(String),
    #[error("device {0} is paired already")]
    AlreadyPaired(String),
    #[error("there is no elder {0}")]
    NoElder(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A device as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceRecord {
    pub device_id: String,
    /// `None`: unclaimed — heard from, not yet paired to an elder.
    pub elder_id: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub message_count: i64,
    pub online: bool,
    pub status_changed_at: i64,
    /// Why it is offline: `last_will` or `missed_summaries`.
    pub offline_reason: Option<String>,
    pub firmware: Option<String>,
    pub battery: Option<i64>,
    pub rssi: Option<i64>,
    pub temp_dc: Option<i64>,
    pub summary_interval_s: Option<i64>,
}

/// Devices online and offline, for the metrics gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStatusCounts {
    pub online: i64,
    pub offline: i64,
}

const DEVICE_COLUMNS: &str = "device_id, elder_id, first_seen, last_seen, message_count, online, status_changed_at,
    offline_reason, firmware, battery, rssi, temp_dc, summary_interval_s";

fn device(row: &AnyRow) -> Result<DeviceRecord, sqlx::Error> {
    Ok(DeviceRecord {
        device_id: row.try_get("device_id")?,
        elder_id: row.try_get("elder_id")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        message_count: row.try_get("message_count")?,
        online: row.try_get::<i64, _>("online")? == 1,
        status_changed_at: row.try_get("status_changed_at")?,
        offline_reason: row.try_get("offline_reason")?,
        firmware: row.try_get("firmware")?,
        battery: row.try_get("battery")?,
        rssi: row.try_get("rssi")?,
        temp_dc: row.try_get("temp_dc")?,
        summary_interval_s: row.try_get("summary_interval_s")?,
    })
}

/// A device paired ahead of its first message has this long to come online
/// before its home raises `device_offline`.
pub const PAIRING_GRACE_MS: i64 = 10 * 60_000;

impl Store {
    /// The devices paired to an elder, by id.
    pub async fn devices_of(&self, elder_id: i64) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE elder_id = $1 ORDER BY device_id"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(device).collect::<Result<_, _>>()?)
    }

    /// Every device, or only the unclaimed ones, by id.
    pub async fn devices(&self, unclaimed_only: bool) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = if unclaimed_only {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE elder_id IS NULL ORDER BY device_id"
            )))
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id")))
                .fetch_all(&self.pool)
                .await?
        };
        Ok(rows.iter().map(device).collect::<Result<_, _>>()?)
    }

    pub async fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = $1")))
                .bind(device_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(device).transpose()?)
    }

    /// Pairs a device heard from and not yet paired to an existing elder,
    /// and audits it: what the console's page and its API both do (the
    /// CLI's `devices pair` may also pair ahead of the first message).
    pub async fn pair_unclaimed(&self, device_id: &str, elder_id: i64, by: &str, now: i64) -> Result<(), PairRefusal> {
        let device = self.device(device_id).await?.ok_or_else(|| PairRefusal::NoDevice(device_id.to_string()))?;
        if device.elder_id.is_some() {
            return Err(PairRefusal::AlreadyPaired(device_id.to_string()));
        }
        self.elder(elder_id).await?.ok_or(PairRefusal::NoElder(elder_id))?;
        self.pair_device(device_id, elder_id, now).await?;
        self.audit(now, by, "device paired", Some(elder_id), Some(device_id)).await?;
        Ok(())
    }

    /// Binds a device to an elder's home. A device not heard from yet is
    /// registered ahead of its first message.
    pub async fn pair_device(&self, device_id: &str, elder_id: i64, now: i64) -> Result<(), StoreError> {
        match self.elder(elder_id).await? {
            None => return Err(StoreError::NotFound(format!("there is no elder with id {elder_id}"))),
            Some(elder) if elder.left_on.is_some() => {
                return Err(StoreError::Invalid(format!(
                    "elder {elder_id} has left the programme: re-enter them before pairing a device"
                )));
            }
            Some(_) => {}
        }
        sqlx::query(
            "INSERT INTO devices (device_id, elder_id, paired_at, first_seen, last_seen, online, status_changed_at)
             VALUES ($1, $2, $3, $3, $3, 0, $3)
             ON CONFLICT (device_id) DO UPDATE SET elder_id = excluded.elder_id, paired_at = excluded.paired_at",
        )
        .bind(device_id)
        .bind(elder_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        // Start watching the home (if not yet): an empty state is watched
        // from `updated_at`, and the timer loop looks at it after the
        // installation's grace period, even if the device stays silent.
        sqlx::query(
            "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at) VALUES ($1, '', $2, $3)
             ON CONFLICT (elder_id) DO NOTHING",
        )
        .bind(elder_id)
        .bind(now + PAIRING_GRACE_MS)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks offline every online device that has missed 3 summary intervals
    /// (5 minutes assumed before its first summary). Returns the devices it
    /// marked. Runs on any gateway; the update is idempotent.
    pub async fn mark_silent_devices_offline(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let rows = sqlx::query(
            "UPDATE devices SET online = 0, status_changed_at = $1, offline_reason = 'missed_summaries'
             WHERE online = 1
               AND COALESCE(last_summary_at, last_seen) + 3 * 1000 * COALESCE(summary_interval_s, 300) < $1
             RETURNING device_id",
        )
        .bind(now)
        .fetch_all(&mut *transaction)
        .await?;
        let silent: Vec<String> = rows.iter().map(|row| row.try_get("device_id")).collect::<Result<_, _>>()?;
        // Their homes are due now: the timer loop raises device_offline and
        // stops judging their silence.
        for chunk in silent.chunks(500) {
            let mut params = super::Params::new(self.backend());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE home_watch SET next_due_at = {}
                 WHERE elder_id IN (SELECT elder_id FROM devices WHERE device_id IN ({}))",
                params.one(),
                params.list(chunk.len())
            )));
            query = query.bind(now);
            for device in chunk {
                query = query.bind(device.as_str());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(silent)
    }

    pub async fn device_status_counts(&self) -> Result<DeviceStatusCounts, StoreError> {
        let row = sqlx::query(
            // COUNT, not SUM: PostgreSQL sums BIGINT into NUMERIC, which Any cannot decode.
            "SELECT COUNT(CASE WHEN online = 1 THEN 1 END) AS online, COUNT(CASE WHEN online = 0 THEN 1 END) AS offline
             FROM devices",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(DeviceStatusCounts { online: row.try_get("online")?, offline: row.try_get("offline")? })
    }
}

impl Store {
    /// Registers `homes` elders, each with one paired, online device
    /// `{prefix}-{index:06}` and a watched home whose state and deadline
    /// `home(index, device_id)` gives: the set-up of `anxin bench alerts`, in bulk.
    pub async fn populate_for_benchmark(
        &self,
        homes: usize,
        prefix: &str,
        now: i64,
        home: impl Fn(usize, &str) -> (String, i64),
    ) -> Result<Vec<i64>, StoreError> {
        let mut write = self.begin_write().await?;
        let transaction = &mut write.transaction;
        let mut elder_ids = Vec::with_capacity(homes);
        for chunk_start in (0..homes).step_by(200) {
            let chunk: Vec<usize> = (chunk_start..homes.min(chunk_start + 200)).collect();
            let values = (0..chunk.len()).map(|i| {
                format!("(${}, '振兴区', '站前街道', '锦山社区', '-', 'living_alone', ${})", 2 * i + 1, 2 * i + 2)
            });
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO elders (name, county, township, village, address, categories, created_at) VALUES {} RETURNING id",
                values.collect::<Vec<_>>().join(", ")
            )));
            for index in &chunk {
                query = query.bind(format!("{prefix} {index}")).bind(now);
            }
            let ids: Vec<i64> = query
                .fetch_all(&mut **transaction)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO enrolments (elder_id, enrolled_at, enrolled_by) VALUES {}",
                (0..chunk.len())
                    .map(|i| format!("(${}, ${}, 'benchmark')", 2 * i + 1, 2 * i + 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
            for id in &ids {
                query = query.bind(*id).bind(now);
            }
            query.execute(&mut **transaction).await?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO devices (device_id, elder_id, paired_at, first_seen, last_seen, message_count, online,
                                      status_changed_at, summary_interval_s, last_summary_at) VALUES {}",
                (0..chunk.len())
                    .map(|i| format!(
                        "(${}, ${}, ${}, ${}, ${}, 0, 1, ${}, 300, ${})",
                        7 * i + 1,
                        7 * i + 2,
                        7 * i + 3,
                        7 * i + 4,
                        7 * i + 5,
                        7 * i + 6,
                        7 * i + 7
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
            for (index, id) in chunk.iter().zip(&ids) {
                query = query
                    .bind(format!("{prefix}-{index:06}"))
                    .bind(*id)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut **transaction).await?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at) VALUES {}",
                super::Params::new(self.backend()).rows(chunk.len(), 4)
            )));
            for (index, id) in chunk.iter().zip(&ids) {
                let (state, due) = home(*index, &format!("{prefix}-{index:06}"));
                query = query.bind(*id).bind(state).bind(due).bind(now);
            }
            query.execute(&mut **transaction).await?;
            elder_ids.extend(ids);
        }
        write.commit().await?;
        Ok(elder_ids)
    }
}
