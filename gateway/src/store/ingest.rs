//! Writing a batch of received messages in one transaction.

use anxin_protocol::{Payload, StatusState};
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, placeholders};
use crate::alerts::engine::{self, HomeInput};
use crate::ingest::check::{Accepted, Checked, Rejected};

/// How many quarantined messages are kept; older ones make room.
pub const QUARANTINE_CAP: i64 = 10_000;
/// Quarantined payloads larger than this keep only their length.
pub const QUARANTINE_PAYLOAD_MAX: usize = 4_096;

const HOUR_MS: i64 = 3_600_000;

/// What a committed batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events and summaries stored for the first time.
    pub stored: Vec<StoredMessage>,
    /// Events and summaries already stored (redeliveries).
    pub duplicates: u64,
    /// Status messages applied to devices.
    pub statuses: u64,
    pub rejected: u64,
    /// Alert events the batch's messages caused.
    pub alert_events: Vec<i64>,
}

/// A message that was new and is now durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub device_id: String,
    pub received_at: i64,
    pub payload: Payload,
}

impl Store {
    /// Commits `batch` (each with its receive time) in one transaction.
    /// Either all of it is durable when this returns `Ok`, or none of it is.
    pub async fn commit_batch(&self, batch: &[(Checked, i64)]) -> Result<BatchOutcome, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.pool.begin().await?;
        let mut outcome = BatchOutcome::default();
        let mut rejected_any = false;
        // What the rules must see, by device: new events and summaries, and
        // status changes (which only make the home look at its devices).
        let mut for_rules: Vec<(&str, i64, HomeInput)> = Vec::new();
        for (checked, received_at) in batch {
            match checked {
                Checked::Accepted(accepted) => match &accepted.payload {
                    Payload::Status(_) => {
                        apply_status(&mut transaction, accepted, *received_at).await?;
                        outcome.statuses += 1;
                        for_rules.push((accepted.device_id.as_str(), *received_at, HomeInput::Look));
                    }
                    _ => {
                        if insert_message(&mut transaction, accepted, *received_at).await? {
                            for_rules.push((accepted.device_id.as_str(), *received_at, home_input(accepted)));
                            note_device_message(&mut transaction, accepted, *received_at).await?;
                            if let Payload::Summary(_) = accepted.payload {
                                roll_up(&mut transaction, accepted, *received_at).await?;
                            }
                            outcome.stored.push(StoredMessage {
                                device_id: accepted.device_id.to_string(),
                                received_at: *received_at,
                                payload: accepted.payload.clone(),
                            });
                        } else {
                            outcome.duplicates += 1;
                        }
                    }
                },
                Checked::Rejected(rejected) => {
                    quarantine(&mut transaction, rejected, *received_at).await?;
                    outcome.rejected += 1;
                    rejected_any = true;
                }
            }
        }
        if rejected_any {
            // Keep the quarantine bounded: a device spewing garbage cannot fill the disk.
            sqlx::query("DELETE FROM quarantine WHERE id <= (SELECT MAX(id) FROM quarantine) - $1")
                .bind(QUARANTINE_CAP)
                .execute(&mut *transaction)
                .await?;
        }
        // Design: the rules run in the transaction that stores what they
        // judge, so an alert commits with its cause or not at all, and a
        // redelivered message (not stored again) raises nothing.
        let inputs = homes_of(&mut transaction, for_rules).await?;
        let now = batch.iter().map(|(_, at)| *at).max().unwrap_or_default();
        outcome.alert_events = engine::apply(&mut transaction, self.backend, &self.policy, &inputs, now).await?;
        transaction.commit().await?;
        if let Some(newest) = outcome.alert_events.iter().max() {
            self.note_alert_written(*newest);
        }
        Ok(outcome)
    }
}

fn home_input(accepted: &Accepted) -> HomeInput {
    let device = accepted.device_id.to_string();
    match &accepted.payload {
        Payload::Event(event) => HomeInput::Event { device, boot: event.boot, kind: event.kind },
        Payload::Summary(summary) => HomeInput::Summary {
            device,
            boot: summary.boot,
            motion: summary.motion,
            door_opens: summary.door_opens,
            temp_dc: summary.temp_dc,
            battery: summary.battery,
        },
        Payload::Status(_) => HomeInput::Look,
    }
}

/// Binds each input to its device's elder; unclaimed devices have no home to judge.
async fn homes_of(
    transaction: &mut Transaction<'_, Any>,
    for_rules: Vec<(&str, i64, HomeInput)>,
) -> Result<Vec<(i64, i64, HomeInput)>, StoreError> {
    if for_rules.is_empty() {
        return Ok(Vec::new());
    }
    let mut devices: Vec<&str> = for_rules.iter().map(|(device, _, _)| *device).collect();
    devices.sort_unstable();
    devices.dedup();
    let mut elders = std::collections::HashMap::new();
    for chunk in devices.chunks(500) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT device_id, elder_id FROM devices WHERE device_id IN ({}) AND elder_id IS NOT NULL",
            placeholders(1, chunk.len())
        )));
        for device in chunk {
            query = query.bind(*device);
        }
        for row in query.fetch_all(&mut **transaction).await? {
            elders.insert(row.try_get::<String, _>("device_id")?, row.try_get::<i64, _>("elder_id")?);
        }
    }
    Ok(for_rules
        .into_iter()
        .filter_map(|(device, at, input)| elders.get(device).map(|elder| (*elder, at, input)))
        .collect())
}

/// Inserts an event or summary; `false` when `(device, boot, seq)` is already there.
async fn insert_message(
    transaction: &mut Transaction<'_, Any>,
    accepted: &Accepted,
    received_at: i64,
) -> Result<bool, StoreError> {
    let (boot, seq, up, channel, kind, state) = match &accepted.payload {
        Payload::Event(event) => {
            (event.boot, event.seq, event.up, "event", Some(event.kind.kind_str()), Some(event.kind.state_str()))
        }
        Payload::Summary(summary) => (summary.boot, summary.seq, summary.up, "summary", None, None),
        Payload::Status(_) => unreachable!("statuses are applied, not stored"),
    };
    let result = sqlx::query(
        "INSERT INTO messages (device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT elder_id FROM devices WHERE device_id = $1), $9)
         ON CONFLICT (device_id, boot, seq) DO NOTHING",
    )
    .bind(accepted.device_id.as_str())
    .bind(i64::from(boot))
    .bind(i64::from(seq))
    .bind(channel)
    .bind(kind)
    .bind(state)
    .bind(i64::try_from(up).unwrap_or(i64::MAX))
    .bind(received_at)
    .bind(accepted.text.as_str())
    .execute(&mut **transaction)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The device was heard from: create it (unclaimed) or update what we know.
async fn note_device_message(
    transaction: &mut Transaction<'_, Any>,
    accepted: &Accepted,
    received_at: i64,
) -> Result<(), StoreError> {
    let (boot, summary) = match &accepted.payload {
        Payload::Event(event) => (event.boot, None),
        Payload::Summary(summary) => (summary.boot, Some(summary)),
        Payload::Status(_) => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO devices (device_id, first_seen, last_seen, message_count, online, status_changed_at, boot,
                              summary_interval_s, last_summary_at, battery, rssi, temp_dc)
         VALUES ($1, $2, $2, 1, 1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (device_id) DO UPDATE SET
             last_seen = excluded.last_seen,
             message_count = devices.message_count + 1,
             status_changed_at = CASE WHEN devices.online = 0 THEN excluded.last_seen ELSE devices.status_changed_at END,
             online = 1,
             offline_reason = NULL,
             boot = excluded.boot,
             summary_interval_s = COALESCE(excluded.summary_interval_s, devices.summary_interval_s),
             last_summary_at = COALESCE(excluded.last_summary_at, devices.last_summary_at),
             battery = COALESCE(excluded.battery, devices.battery),
             rssi = COALESCE(excluded.rssi, devices.rssi),
             temp_dc = COALESCE(excluded.temp_dc, devices.temp_dc)",
    )
    .bind(accepted.device_id.as_str())
    .bind(received_at)
    .bind(i64::from(boot))
    .bind(summary.map(|s| i64::from(s.interval_s)))
    .bind(summary.map(|_| received_at))
    .bind(summary.and_then(|s| s.battery).map(i64::from))
    .bind(summary.and_then(|s| s.rssi).map(i64::from))
    .bind(summary.and_then(|s| s.temp_dc).map(i64::from))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Online/offline from the status channel (the Last Will included).
async fn apply_status(
    transaction: &mut Transaction<'_, Any>,
    accepted: &Accepted,
    received_at: i64,
) -> Result<(), StoreError> {
    let Payload::Status(status) = &accepted.payload else { return Ok(()) };
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
    .bind(accepted.device_id.as_str())
    .bind(received_at)
    .bind(i64::from(online))
    .bind(if online { None } else { Some("last_will") })
    .bind(status.boot.map(i64::from))
    .bind(status.fw.as_ref().map(|fw| fw.as_str()))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Adds a summary to its device's hourly rollup (by receive time: device clocks are not trusted).
async fn roll_up(
    transaction: &mut Transaction<'_, Any>,
    accepted: &Accepted,
    received_at: i64,
) -> Result<(), StoreError> {
    let Payload::Summary(summary) = &accepted.payload else { return Ok(()) };
    let temp = summary.temp_dc.map(i64::from);
    sqlx::query(
        "INSERT INTO activity_hourly (device_id, hour_start, summaries, motion, door_opens, temp_min, temp_max)
         VALUES ($1, $2, 1, $3, $4, $5, $5)
         ON CONFLICT (device_id, hour_start) DO UPDATE SET
             summaries = activity_hourly.summaries + 1,
             motion = activity_hourly.motion + excluded.motion,
             door_opens = activity_hourly.door_opens + excluded.door_opens,
             temp_min = CASE WHEN excluded.temp_min IS NULL THEN activity_hourly.temp_min
                             WHEN activity_hourly.temp_min IS NULL OR excluded.temp_min < activity_hourly.temp_min THEN excluded.temp_min
                             ELSE activity_hourly.temp_min END,
             temp_max = CASE WHEN excluded.temp_max IS NULL THEN activity_hourly.temp_max
                             WHEN activity_hourly.temp_max IS NULL OR excluded.temp_max > activity_hourly.temp_max THEN excluded.temp_max
                             ELSE activity_hourly.temp_max END",
    )
    .bind(accepted.device_id.as_str())
    .bind(received_at - received_at.rem_euclid(HOUR_MS))
    .bind(i64::from(summary.motion))
    .bind(i64::from(summary.door_opens))
    .bind(temp)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

async fn quarantine(
    transaction: &mut Transaction<'_, Any>,
    rejected: &Rejected,
    received_at: i64,
) -> Result<(), StoreError> {
    let payload = (rejected.payload.len() <= QUARANTINE_PAYLOAD_MAX).then_some(rejected.payload.as_slice());
    sqlx::query(
        "INSERT INTO quarantine (received_at, topic, reason, detail, payload, payload_len) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(received_at)
    .bind(rejected.topic.as_str())
    .bind(rejected.reason)
    .bind(rejected.detail.as_str())
    .bind(payload.map(<[u8]>::to_vec))
    .bind(i64::try_from(rejected.payload.len()).unwrap_or(i64::MAX))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
