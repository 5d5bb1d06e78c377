//! Writing received messages: the rows of one batch, a few statements each.
//!
//! Every function here takes the rows of a whole batch and writes them with
//! multi-row statements (`INSERT … VALUES (…), (…) … ON CONFLICT`), in chunks
//! of a few fixed shapes ([`super::chunk_sizes`]) so the statements stay
//! prepared. Plain persistence: what the rows mean — which message is new,
//! how a device's notes add up — is the pipeline's.

use std::collections::{BTreeMap, HashMap};

use anxin_protocol::{Status, StatusState};
use sqlx::Row;

use super::{Backend, Params, StoreError, Write, chunk_sizes};

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

/// A message's time by the device's clock, the key of its day partition:
/// when its boot began + its `up`, at least 1 (the rows stored before
/// partitioning hold 0). The same for every copy of the message.
pub fn device_time(boot_started_at: i64, up: i64) -> i64 {
    boot_started_at.saturating_add(up).max(1)
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
    ///
    /// Each row's `at`, the key of its day partition on PostgreSQL, is the
    /// device's own time: when its boot began ([`Write::boot_starts`]) plus
    /// its `up`. Every copy of a message gets the same `at`, so the primary
    /// key `(device_id, boot, seq, at)` inside one partition finds a copy
    /// received after midnight. The rows stored before partitioning (`at` =
    /// 0, in `messages_before_partitioning`) are looked up by
    /// `(device_id, boot, seq)` as well, until retention has emptied them.
    pub async fn insert_messages(&mut self, rows: &[MessageRow<'_>]) -> Result<Vec<bool>, StoreError> {
        let index: HashMap<(&str, i64, i64), usize> = rows
            .iter()
            .enumerate()
            .map(|(at, row)| ((row.device_id, i64::from(row.boot), i64::from(row.seq)), at))
            .collect();
        let starts = self.boot_starts(rows).await?;
        let mut new = vec![false; rows.len()];
        let mut rest = rows;
        for size in chunk_sizes(rows.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let values = Params::new(self.backend()).rows(size, 11);
            let statement = match self.backend() {
                Backend::Sqlite => format!(
                    "INSERT INTO messages (device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload, at)
                     VALUES {values} ON CONFLICT DO NOTHING RETURNING device_id, boot, seq"
                ),
                Backend::Postgres => format!(
                    "INSERT INTO messages (device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload, at)
                     SELECT * FROM (VALUES {values})
                         AS v (device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload, at)
                     WHERE NOT EXISTS (SELECT 1 FROM messages_before_partitioning b
                                       WHERE b.device_id = v.device_id AND b.boot = v.boot AND b.seq = v.seq)
                     ON CONFLICT DO NOTHING RETURNING device_id, boot, seq"
                ),
            };
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
            for row in chunk {
                let up = i64::try_from(row.up).unwrap_or(i64::MAX);
                let started_at = starts.get(&(row.device_id, row.boot)).copied().unwrap_or(row.received_at - up);
                query = query
                    .bind(row.device_id)
                    .bind(i64::from(row.boot))
                    .bind(i64::from(row.seq))
                    .bind(row.channel)
                    .bind(row.kind)
                    .bind(row.state)
                    .bind(up)
                    .bind(row.received_at)
                    .bind(row.elder_id)
                    .bind(row.payload)
                    .bind(device_time(started_at, up));
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

    /// When each boot among `rows` began, by `(device, boot)`: as committed
    /// (kept by this process, else read), or (a boot not heard of before)
    /// its first row's receipt minus its `up`, stored now. Written once (`ON
    /// CONFLICT DO NOTHING`) and read back after: of two writers meeting a
    /// new boot at once, the second waits for the first's commit and then
    /// reads its moment, so both agree.
    pub async fn boot_starts<'r>(
        &mut self,
        rows: &[MessageRow<'r>],
    ) -> Result<HashMap<(&'r str, u32), i64>, StoreError> {
        let mut starts = HashMap::new();
        let mut first: BTreeMap<(&'r str, u32), i64> = BTreeMap::new();
        {
            let kept = self.boot_starts.kept();
            for row in rows {
                match kept.get(row.device_id) {
                    Some(&(boot, started_at)) if boot == row.boot => {
                        starts.insert((row.device_id, row.boot), started_at);
                    }
                    _ => {
                        let up = i64::try_from(row.up).unwrap_or(i64::MAX);
                        first.entry((row.device_id, row.boot)).or_insert(row.received_at.saturating_sub(up));
                    }
                }
            }
        }
        if first.is_empty() {
            return Ok(starts);
        }
        let boots: Vec<(&'r str, u32)> = first.keys().copied().collect();
        let stored = self.stored_boot_starts(&boots).await?;
        self.learn(&stored);
        starts.extend(stored);
        // In key order, like every lock a write takes.
        let unknown: Vec<((&'r str, u32), i64)> =
            first.into_iter().filter(|(boot, _)| !starts.contains_key(boot)).collect();
        if unknown.is_empty() {
            return Ok(starts);
        }
        let mut rest = unknown.as_slice();
        for size in chunk_sizes(unknown.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO device_boots (device_id, boot, started_at) VALUES {} ON CONFLICT (device_id, boot) DO NOTHING",
                Params::new(self.backend()).rows(size, 3)
            )));
            for ((device, boot), started_at) in chunk {
                query = query.bind(*device).bind(i64::from(*boot)).bind(*started_at);
            }
            query.execute(&mut *self.transaction).await?;
        }
        let unknown: Vec<(&'r str, u32)> = unknown.into_iter().map(|(boot, _)| boot).collect();
        let stored = self.stored_boot_starts(&unknown).await?;
        self.learn(&stored);
        starts.extend(stored);
        Ok(starts)
    }

    /// Boot starts to keep once this transaction commits.
    fn learn(&mut self, stored: &HashMap<(&str, u32), i64>) {
        self.learned.extend(stored.iter().map(|(&(device, boot), &started_at)| (device.to_string(), boot, started_at)));
    }

    async fn stored_boot_starts<'r>(
        &mut self,
        boots: &[(&'r str, u32)],
    ) -> Result<HashMap<(&'r str, u32), i64>, StoreError> {
        let wanted: HashMap<(&str, i64), (&'r str, u32)> =
            boots.iter().map(|&(device, boot)| ((device, i64::from(boot)), (device, boot))).collect();
        let mut starts = HashMap::new();
        let mut rest = boots;
        for size in chunk_sizes(boots.len(), ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                // A join with the list, not `(device_id, boot) IN (…)`:
                // PostgreSQL plans a list of row values as hundreds of ORs,
                // 30 ms a statement (a third of a writer's time in `anxin
                // bench cluster`).
                "SELECT b.device_id, b.boot, b.started_at FROM device_boots b
                 JOIN (VALUES {}) AS wanted ON b.device_id = wanted.column1 AND b.boot = wanted.column2",
                Params::new(self.backend()).rows(size, 2)
            )));
            for (device, boot) in chunk {
                query = query.bind(*device).bind(i64::from(*boot));
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                let device: String = row.try_get("device_id")?;
                if let Some(&key) = wanted.get(&(device.as_str(), row.try_get::<i64, _>("boot")?)) {
                    starts.insert(key, row.try_get::<i64, _>("started_at")?);
                }
            }
        }
        Ok(starts)
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
