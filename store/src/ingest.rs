//! Writing received messages: the rows of one batch, a few statements each.
//!
//! Every function here takes the rows of a whole batch and writes them with
//! multi-row statements (`INSERT … VALUES (…), (…) … ON CONFLICT`), in chunks
//! of a few fixed shapes ([`super::chunk_sizes`]) so the statements stay
//! prepared. Plain persistence: what the rows mean — which message is new,
//! how a device's notes add up — is the pipeline's.

use std::collections::HashMap;

use anxin_protocol::{Status, StatusState};
use sqlx::Row;

use super::{Params, StoreError, Write, chunk_sizes};

/// How many quarantined messages are kept; older ones make room.
pub const QUARANTINE_CAP: i64 = 10_000;
/// Quarantined payloads larger than this keep only their length.
pub const QUARANTINE_PAYLOAD_MAX: usize = 4_096;

/// Rows per statement: well under SQLite's 32,766 and PostgreSQL's 65,535
/// bound values for the widest row (12 columns).
const ROWS_PER_STATEMENT: usize = 256;

/// One event or summary for the `messages` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow<'a> {
    pub device_id: &'a str,
    pub boot: u32,
    pub seq: u32,
    pub channel: &'static str,
    pub kind: Option<&'static str>,
    pub state: Option<&'static str>,
    pub up: u64,
    pub received_at: i64,
    /// The home the device belongs to at receive time, if paired.
    pub elder_id: Option<i64>,
    /// The payload as received.
    pub payload: &'a str,
}

/// What a batch's new messages say about one device, added up in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNote<'a> {
    pub device_id: &'a str,
    pub messages: i64,
    pub first_at: i64,
    pub last_at: i64,
    /// Of the last message.
    pub boot: u32,
    /// Of the last summary, if any.
    pub summary_interval_s: Option<u32>,
    pub last_summary_at: Option<i64>,
    /// The last reading of each, if any summary carried one.
    pub battery: Option<u8>,
    pub rssi: Option<i16>,
    pub temp_dc: Option<i16>,
}

/// A message refused at the boundary, kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow<'a> {
    pub topic: &'a str,
    /// A stable reason name, e.g. `not_json`.
    pub reason: &'a str,
    /// What exactly was wrong.
    pub detail: &'a str,
    pub payload: &'a [u8],
    pub received_at: i64,
}

/// One device's summaries in one hour (by receive time), added up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourRollup<'a> {
    pub device_id: &'a str,
    pub hour_start: i64,
    pub summaries: i64,
    pub motion: i64,
    pub door_opens: i64,
    pub temp_min: Option<i16>,
    pub temp_max: Option<i16>,
}

impl Write {
    /// The home of each paired device among `devices`.
    pub async fn device_homes(&mut self, devices: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        let mut homes = HashMap::new();
        let mut rest = devices;
        for size in chunk_sizes(devices.len(), ROWS_PER_STATEMENT * 2) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT device_id, elder_id FROM devices WHERE device_id IN ({}) AND elder_id IS NOT NULL",
                Params::new(self.backend()).list(size)
            )));
            for device in chunk {
                query = query.bind(*device);
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                homes.insert(row.try_get::<String, _>("device_id")?, row.try_get::<i64, _>("elder_id")?);
            }
        }
        Ok(homes)
    }

    /// Inserts `rows` (whose keys must differ from each other); returns, row
    /// by row, whether it was new — `false` for a `(device, boot, seq)` that
    /// was already stored.
    pub async fn insert_messages(&mut self, rows: &[MessageRow<'_>]) -> Result<Vec<bool>, StoreError> {
        let index: HashMap<(&str, i64, i64), usize> = rows
            .iter()
            .enumerate()
            .map(|(at, row)| ((row.device_id, i64::from(row.boot), i64::from(row.seq)), at))
            .collect();
        let mut new = vec![false; rows.len()];
        let mut rest = rows;
        for size in chunk_sizes(rows.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO messages (device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload)
                 VALUES {} ON CONFLICT (device_id, boot, seq) DO NOTHING RETURNING device_id, boot, seq",
                Params::new(self.backend()).rows(size, 10)
            )));
            for row in chunk {
                query = query
                    .bind(row.device_id)
                    .bind(i64::from(row.boot))
                    .bind(i64::from(row.seq))
                    .bind(row.channel)
                    .bind(row.kind)
                    .bind(row.state)
                    .bind(i64::try_from(row.up).unwrap_or(i64::MAX))
                    .bind(row.received_at)
                    .bind(row.elder_id)
                    .bind(row.payload);
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                let device: String = row.try_get("device_id")?;
                let key = (device.as_str(), row.try_get::<i64, _>("boot")?, row.try_get::<i64, _>("seq")?);
                if let Some(&at) = index.get(&key) {
                    new[at] = true;
                }
            }
        }
        Ok(new)
    }

    /// The devices were heard from: creates each (unclaimed) or updates what
    /// is known of it — online, last seen, counts, the latest readings.
    pub async fn note_devices(&mut self, notes: &[DeviceNote<'_>]) -> Result<(), StoreError> {
        // In key order, like every lock a write takes: two writers on
        // PostgreSQL then wait for each other, never on each other.
        let mut sorted: Vec<&DeviceNote<'_>> = notes.iter().collect();
        sorted.sort_by_key(|note| note.device_id);
        let notes = sorted.as_slice();
        let mut rest = notes;
        for size in chunk_sizes(notes.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            // status_changed_at: the moment a device that was offline was heard again.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO devices (device_id, first_seen, status_changed_at, last_seen, message_count, online, boot,
                                      summary_interval_s, last_summary_at, battery, rssi, temp_dc)
                 VALUES {}
                 ON CONFLICT (device_id) DO UPDATE SET
                     last_seen = excluded.last_seen,
                     message_count = devices.message_count + excluded.message_count,
                     status_changed_at = CASE WHEN devices.online = 0 THEN excluded.status_changed_at
                                              ELSE devices.status_changed_at END,
                     online = 1,
                     offline_reason = NULL,
                     boot = excluded.boot,
                     summary_interval_s = COALESCE(excluded.summary_interval_s, devices.summary_interval_s),
                     last_summary_at = COALESCE(excluded.last_summary_at, devices.last_summary_at),
                     battery = COALESCE(excluded.battery, devices.battery),
                     rssi = COALESCE(excluded.rssi, devices.rssi),
                     temp_dc = COALESCE(excluded.temp_dc, devices.temp_dc)",
                Params::new(self.backend()).rows(size, 12)
            )));
            for note in chunk {
                query = query
                    .bind(note.device_id)
                    .bind(note.first_at)
                    .bind(note.first_at)
                    .bind(note.last_at)
                    .bind(note.messages)
                    .bind(1_i64)
                    .bind(i64::from(note.boot))
                    .bind(note.summary_interval_s.map(i64::from))
                    .bind(note.last_summary_at)
                    .bind(note.battery.map(i64::from))
                    .bind(note.rssi.map(i64::from))
                    .bind(note.temp_dc.map(i64::from));
            }
            query.execute(&mut *self.transaction).await?;
        }
        Ok(())
    }

    /// Online/offline from the status channel (the Last Will included).
    pub async fn apply_status(&mut self, device_id: &str, status: &Status, at: i64) -> Result<(), StoreError> {
        let online = status.state == StatusState::Online;
        sqlx::query(
            "INSERT INTO devices (device_id, first_seen, last_seen, message_count, online, status_changed_at, offline_reason, boot, firmware)
             VALUES ($1, $2, $2, 1, $3, $2, $4, $5, $6)
             ON CONFLICT (device_id) DO UPDATE SET
                 last_seen = CASE WHEN excluded.online = 1 THEN excluded.last_seen ELSE devices.last_seen END,
                 message_count = devices.message_count + 1,
                 status_changed_at = CASE WHEN devices.online = excluded.online THEN devices.status_changed_at ELSE excluded.status_changed_at END,
                 online = excluded.online,
                 offline_reason = excluded.offline_reason,
                 boot = COALESCE(excluded.boot, devices.boot),
                 firmware = COALESCE(excluded.firmware, devices.firmware)",
        )
        .bind(device_id)
        .bind(at)
        .bind(i64::from(online))
        .bind(if online { None } else { Some("last_will") })
        .bind(status.boot.map(i64::from))
        .bind(status.fw.as_ref().map(|fw| fw.as_str()))
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// Adds summaries to their devices' hourly rollups.
    pub async fn add_to_rollups(&mut self, rollups: &[HourRollup<'_>]) -> Result<(), StoreError> {
        let mut rest = rollups;
        for size in chunk_sizes(rollups.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO activity_hourly (device_id, hour_start, summaries, motion, door_opens, temp_min, temp_max)
                 VALUES {}
                 ON CONFLICT (device_id, hour_start) DO UPDATE SET
                     summaries = activity_hourly.summaries + excluded.summaries,
                     motion = activity_hourly.motion + excluded.motion,
                     door_opens = activity_hourly.door_opens + excluded.door_opens,
                     temp_min = CASE WHEN excluded.temp_min IS NULL THEN activity_hourly.temp_min
                                     WHEN activity_hourly.temp_min IS NULL OR excluded.temp_min < activity_hourly.temp_min THEN excluded.temp_min
                                     ELSE activity_hourly.temp_min END,
                     temp_max = CASE WHEN excluded.temp_max IS NULL THEN activity_hourly.temp_max
                                     WHEN activity_hourly.temp_max IS NULL OR excluded.temp_max > activity_hourly.temp_max THEN excluded.temp_max
                                     ELSE activity_hourly.temp_max END",
                Params::new(self.backend()).rows(size, 7)
            )));
            for rollup in chunk {
                query = query
                    .bind(rollup.device_id)
                    .bind(rollup.hour_start)
                    .bind(rollup.summaries)
                    .bind(rollup.motion)
                    .bind(rollup.door_opens)
                    .bind(rollup.temp_min.map(i64::from))
                    .bind(rollup.temp_max.map(i64::from));
            }
            query.execute(&mut *self.transaction).await?;
        }
        Ok(())
    }

    /// Keeps refused messages (each with its receive time) for inspection, in
    /// a bounded table: a device spewing garbage cannot fill the disk.
    pub async fn quarantine(&mut self, rejected: &[QuarantineRow<'_>]) -> Result<(), StoreError> {
        if rejected.is_empty() {
            return Ok(());
        }
        let mut rest = rejected;
        for size in chunk_sizes(rejected.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO quarantine (received_at, topic, reason, detail, payload, payload_len) VALUES {}",
                Params::new(self.backend()).rows(size, 6)
            )));
            for rejected in chunk {
                let payload = (rejected.payload.len() <= QUARANTINE_PAYLOAD_MAX).then(|| rejected.payload.to_vec());
                query = query
                    .bind(rejected.received_at)
                    .bind(rejected.topic)
                    .bind(rejected.reason)
                    .bind(rejected.detail)
                    .bind(payload)
                    .bind(i64::try_from(rejected.payload.len()).unwrap_or(i64::MAX));
            }
            query.execute(&mut *self.transaction).await?;
        }
        sqlx::query("DELETE FROM quarantine WHERE id <= (SELECT MAX(id) FROM quarantine) - $1")
            .bind(QUARANTINE_CAP)
            .execute(&mut *self.transaction)
            .await?;
        Ok(())
    }
}
