//! Reading stored events and summaries back.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    pub device_id: String,
    pub boot: i64,
    pub seq: i64,
    pub channel: String,
    pub kind: Option<String>,
    pub state: Option<String>,
    pub received_at: i64,
    pub elder_id: Option<i64>,
    pub payload: String,
}

fn message(row: &AnyRow) -> Result<MessageRecord, sqlx::Error> {
    Ok(MessageRecord {
        device_id: row.try_get("device_id")?,
        boot: row.try_get("boot")?,
        seq: row.try_get("seq")?,
        channel: row.try_get("channel")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        received_at: row.try_get("received_at")?,
        elder_id: row.try_get("elder_id")?,
        payload: row.try_get("payload")?,
    })
}

/// Where a reader of new messages has got to: `(received_at, device_id, boot, seq)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCursor {
    pub received_at: i64,
    pub device_id: String,
    pub boot: i64,
    pub seq: i64,
}

/// One hour of a home's activity, summed over its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HourActivity {
    pub hour_start: i64,
    pub summaries: i64,
    pub motion: i64,
    pub door_opens: i64,
}

impl Store {
    /// Messages after `cursor`, oldest first, at most `limit`, optionally of one device.
    pub async fn messages_after(
        &self,
        cursor: &MessageCursor,
        device_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, boot, seq, channel, kind, state, received_at, elder_id, payload FROM messages
             WHERE (received_at > $1
                    OR (received_at = $1 AND (device_id > $2
                        OR (device_id = $2 AND (boot > $3 OR (boot = $3 AND seq > $4))))))
               AND ($5 IS NULL OR device_id = $5)
             ORDER BY received_at, device_id, boot, seq
             LIMIT $6",
        )
        .bind(cursor.received_at)
        .bind(cursor.device_id.as_str())
        .bind(cursor.boot)
        .bind(cursor.seq)
        .bind(device_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message).collect::<Result<_, _>>()?)
    }

    /// The newest `limit` messages, oldest first (the start of a tail).
    pub async fn latest_messages(&self, device_id: Option<&str>, limit: i64) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, boot, seq, channel, kind, state, received_at, elder_id, payload FROM messages
             WHERE ($1 IS NULL OR device_id = $1)
             ORDER BY received_at DESC, device_id DESC, boot DESC, seq DESC
             LIMIT $2",
        )
        .bind(device_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut messages: Vec<MessageRecord> = rows.iter().map(message).collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// How many events and summaries are stored (for tests and checks).
    pub async fn message_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM messages").fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Every stored `(device_id, boot, seq)`, sorted: for durability checks.
    pub async fn message_keys(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT device_id, boot, seq FROM messages ORDER BY device_id, boot, seq")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("device_id")?, row.try_get("boot")?, row.try_get("seq")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Quarantined messages per reason.
    pub async fn quarantine_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT reason, COUNT(*) AS n FROM quarantine GROUP BY reason ORDER BY reason")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("reason")?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The hours from `since` in which any device of the elder reported,
    /// summed over the devices, oldest first.
    pub async fn elder_activity(&self, elder_id: i64, since: i64) -> Result<Vec<HourActivity>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.hour_start, CAST(SUM(a.summaries) AS BIGINT) AS summaries, CAST(SUM(a.motion) AS BIGINT) AS motion,
                    CAST(SUM(a.door_opens) AS BIGINT) AS door_opens
             FROM activity_hourly a JOIN devices d ON d.device_id = a.device_id
             WHERE d.elder_id = $1 AND a.hour_start >= $2
             GROUP BY a.hour_start ORDER BY a.hour_start",
        )
        .bind(elder_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(HourActivity {
                    hour_start: row.try_get("hour_start")?,
                    summaries: row.try_get("summaries")?,
                    motion: row.try_get("motion")?,
                    door_opens: row.try_get("door_opens")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The hourly rollup of one device: `(hour_start, summaries, motion, door_opens)`.
    pub async fn hourly_activity(&self, device_id: &str) -> Result<Vec<(i64, i64, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT hour_start, summaries, motion, door_opens FROM activity_hourly WHERE device_id = $1 ORDER BY hour_start",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("hour_start")?,
                    row.try_get("summaries")?,
                    row.try_get("motion")?,
                    row.try_get("door_opens")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
