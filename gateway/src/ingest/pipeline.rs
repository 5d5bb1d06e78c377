//! The pipeline of one batch, in one transaction, in this order:
//!
//! 1. write the messages — events and summaries (new ones only past here),
//!    what they say about their devices, the Last Wills and statuses, the
//!    hourly rollups, the quarantine;
//! 2. run the pure rules ([`anxin_domain::alerts::engine`]) on every home the new
//!    messages belong to, each home read under its lock;
//! 3. write their effects — the homes' new states and deadlines, alerts and
//!    their history, closed days and remote check-ins;
//! 4. commit, then wake the alert feed.
//!
//! The caller acknowledges after this returns. The timer loop
//! ([`crate::alerts::timers`]) runs steps 2–4 for homes whose deadline
//! passed, through [`judge_homes`], so the rules and their effects are
//! written in one place.
//!
//! Design: each step writes the whole batch with a few multi-row statements
//! (the store's), not a statement per message; what is added up across a
//! batch (a device's notes, an hour's rollup) is added up here, in order.
//! Invariant: an alert commits with the message that caused it or not at
//! all, and a redelivered message — a duplicate, not stored again — reaches
//! no rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use anxin_protocol::Payload;

use super::check::{Accepted, Checked};
use anxin_domain::alerts::checkin::{self, Verdict};
use anxin_domain::alerts::engine::{self, HomeInput, HomePlace, REMOTE_VISITOR, SYSTEM};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::alerts::rules::{self, Day, Effect};
use anxin_domain::alerts::{AlertStatus, Severity};
use anxin_domain::time::{DAY_MS, HOUR_MS};
use anxin_store::{DeviceNote, HourRollup, MessageRow, QuarantineRow, Store, StoreError, Write};

/// What a committed batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events and summaries stored for the first time.
    pub stored: u64,
    /// Where in the batch the events and summaries already stored were
    /// (redeliveries, or a repeat within the batch).
    pub duplicates: Vec<usize>,
    /// Status messages applied to devices.
    pub statuses: u64,
    pub rejected: u64,
    /// Alert events the batch's messages caused.
    pub alert_events: Vec<i64>,
}

/// Commits `batch` (each message with its receive time) in one transaction.
/// Either all of it is durable when this returns `Ok`, or none of it is.
pub async fn commit_batch(
    store: &Store,
    policy: &AlertPolicy,
    batch: &[(Checked, i64)],
) -> Result<BatchOutcome, StoreError> {
    let mut write = store.begin_write().await?;
    let (mut outcome, inputs) = write_messages(&mut write, batch).await?;
    let now = batch.iter().map(|(_, at)| *at).max().unwrap_or_default();
    outcome.alert_events = judge_homes(&mut write, policy, &inputs, now).await?;
    write.commit().await?;
    if let Some(newest) = outcome.alert_events.iter().max() {
        store.note_alert_written(*newest);
    }
    Ok(outcome)
}

/// One input for the rules: `(elder_id, at, input)`.
pub type RuleInput = (i64, i64, HomeInput);

/// Step 1: the messages, and what they say about their devices.
async fn write_messages(
    write: &mut Write,
    batch: &[(Checked, i64)],
) -> Result<(BatchOutcome, Vec<RuleInput>), StoreError> {
    let mut outcome = BatchOutcome::default();
    let accepted: Vec<(usize, &Accepted, i64)> = batch
        .iter()
        .enumerate()
        .filter_map(|(index, (checked, at))| match checked {
            Checked::Accepted(accepted) => Some((index, accepted, *at)),
            Checked::Rejected(_) => None,
        })
        .collect();
    let mut devices: Vec<&str> = accepted.iter().map(|(_, accepted, _)| accepted.device_id.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    let homes = write.device_homes(&devices).await?;

    // Events and summaries, each key once: a repeat within the batch is a duplicate.
    let mut seen: HashSet<(&str, u32, u32)> = HashSet::with_capacity(accepted.len());
    let mut rows: Vec<MessageRow<'_>> = Vec::with_capacity(accepted.len());
    let mut row_of: HashMap<usize, usize> = HashMap::with_capacity(accepted.len());
    for (index, accepted, at) in &accepted {
        let Some(row) = message_row(accepted, *at, &homes) else { continue };
        if seen.insert((row.device_id, row.boot, row.seq)) {
            row_of.insert(*index, rows.len());
            rows.push(row);
        } else {
            outcome.duplicates.push(*index);
        }
    }
    let new = write.insert_messages(&rows).await?;

    // In batch order: notes of new messages add up per device; a status
    // applies where it falls, after the notes of that device before it.
    let mut notes: Vec<DeviceNote<'_>> = Vec::new();
    let mut note_of: HashMap<&str, usize> = HashMap::new();
    let mut rollups: BTreeMap<(&str, i64), HourRollup<'_>> = BTreeMap::new();
    let mut inputs: Vec<RuleInput> = Vec::new();
    for (index, accepted, at) in &accepted {
        let device = accepted.device_id.as_str();
        let elder = homes.get(device).copied();
        match &accepted.payload {
            Payload::Status(status) => {
                if note_of.contains_key(device) {
                    write.note_devices(&notes).await?;
                    notes.clear();
                    note_of.clear();
                }
                write.apply_status(device, status, *at).await?;
                outcome.statuses += 1;
                if let Some(elder) = elder {
                    inputs.push((elder, *at, HomeInput::Look));
                }
            }
            payload => {
                let Some(&row) = row_of.get(index) else { continue };
                if !new[row] {
                    outcome.duplicates.push(*index);
                    continue;
                }
                outcome.stored += 1;
                let note = match note_of.get(device) {
                    Some(&at_note) => &mut notes[at_note],
                    None => {
                        note_of.insert(device, notes.len());
                        notes.push(DeviceNote {
                            device_id: device,
                            messages: 0,
                            first_at: *at,
                            last_at: *at,
                            boot: 0,
                            summary_interval_s: None,
                            last_summary_at: None,
                            battery: None,
                            rssi: None,
                            temp_dc: None,
                        });
                        notes.last_mut().unwrap_or_else(|| unreachable!("just pushed"))
                    }
                };
                add_to_note(note, payload, *at);
                if let Payload::Summary(summary) = payload {
                    let hour_start = at - at.rem_euclid(HOUR_MS);
                    let rollup = rollups.entry((device, hour_start)).or_insert(HourRollup {
                        device_id: device,
                        hour_start,
                        summaries: 0,
                        motion: 0,
                        door_opens: 0,
                        temp_min: None,
                        temp_max: None,
                    });
                    rollup.summaries += 1;
                    rollup.motion += i64::from(summary.motion);
                    rollup.door_opens += i64::from(summary.door_opens);
                    if let Some(temp) = summary.temp_dc {
                        rollup.temp_min = Some(rollup.temp_min.map_or(temp, |low| low.min(temp)));
                        rollup.temp_max = Some(rollup.temp_max.map_or(temp, |high| high.max(temp)));
                    }
                }
                if let Some(elder) = elder {
                    inputs.push((elder, *at, home_input(accepted)));
                }
            }
        }
    }
    write.note_devices(&notes).await?;
    write.add_to_rollups(&rollups.into_values().collect::<Vec<_>>()).await?;

    let rejected: Vec<QuarantineRow<'_>> = batch
        .iter()
        .filter_map(|(checked, at)| match checked {
            Checked::Rejected(rejected) => Some(QuarantineRow {
                topic: &rejected.topic,
                reason: rejected.reason,
                detail: &rejected.detail,
                payload: &rejected.payload,
                received_at: *at,
            }),
            Checked::Accepted(_) => None,
        })
        .collect();
    outcome.rejected = rejected.len() as u64;
    write.quarantine(&rejected).await?;
    outcome.duplicates.sort_unstable();
    Ok((outcome, inputs))
}

/// The `messages` row of an event or summary; `None` for a status.
fn message_row<'a>(accepted: &'a Accepted, at: i64, homes: &HashMap<String, i64>) -> Option<MessageRow<'a>> {
    let (boot, seq, up, channel, kind, state) = match &accepted.payload {
        Payload::Event(event) => {
            (event.boot, event.seq, event.up, "event", Some(event.kind.kind_str()), Some(event.kind.state_str()))
        }
        Payload::Summary(summary) => (summary.boot, summary.seq, summary.up, "summary", None, None),
        Payload::Status(_) => return None,
    };
    Some(MessageRow {
        device_id: accepted.device_id.as_str(),
        boot,
        seq,
        channel,
        kind,
        state,
        up,
        received_at: at,
        elder_id: homes.get(accepted.device_id.as_str()).copied(),
        payload: accepted.text.as_str(),
    })
}

/// Adds one new message to its device's note (messages come in order).
fn add_to_note(note: &mut DeviceNote<'_>, payload: &Payload, at: i64) {
    note.messages += 1;
    note.last_at = at;
    match payload {
        Payload::Event(event) => note.boot = event.boot,
        Payload::Summary(summary) => {
            note.boot = summary.boot;
            note.summary_interval_s = Some(summary.interval_s);
            note.last_summary_at = Some(at);
            note.battery = summary.battery.or(note.battery);
            note.rssi = summary.rssi.or(note.rssi);
            note.temp_dc = summary.temp_dc.or(note.temp_dc);
        }
        Payload::Status(_) => {}
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

/// Steps 2 and 3 inside `write`: the rules for `inputs` (in arrival order)
/// and their effects. Returns the ids of the alert events written.
pub async fn judge_homes(
    write: &mut Write,
    policy: &AlertPolicy,
    inputs: &[RuleInput],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_elder: BTreeMap<i64, Vec<(i64, &HomeInput)>> = BTreeMap::new();
    for (elder_id, at, input) in inputs {
        by_elder.entry(*elder_id).or_default().push((*at, input));
    }
    let elder_ids: Vec<i64> = by_elder.keys().copied().collect();
    let homes = write.lock_homes(&elder_ids, now).await?;
    let watches = write.heightened_regions(now).await?;
    let mut states = Vec::with_capacity(homes.len());
    let mut effects = Vec::new();
    for (elder_id, home_inputs) in &by_elder {
        let Some(home) = homes.get(elder_id) else { continue };
        let place = &home.place;
        let heightened = watches.iter().any(|watch| watch.covers(&place.county, &place.township, &place.village));
        let judged = engine::judge_home(*elder_id, home, home_inputs, policy, heightened, now);
        states.push((*elder_id, judged.state, judged.due));
        effects.extend(judged.effects.into_iter().map(|(at, effect)| (*elder_id, place, at, effect)));
    }
    write.write_home_states(&states, now).await?;
    let mut events = Vec::new();
    for (elder_id, place, at, effect) in effects {
        events.extend(write_effect(write, policy, elder_id, place, effect, at).await?);
    }
    Ok(events)
}

/// Step 3 for one effect.
async fn write_effect(
    write: &mut Write,
    policy: &AlertPolicy,
    elder_id: i64,
    place: &HomePlace,
    effect: Effect,
    at: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut events = Vec::new();
    match effect {
        Effect::Raise { kind, severity, device, detail } => match write.open_alert(elder_id, kind).await? {
            Some(open) if severity > open.severity => {
                // A warning turning critical starts the escalation clock
                // unless someone already has it in hand.
                let remind_at = (severity == Severity::Critical && open.status == AlertStatus::Open)
                    .then_some(at + policy.escalate_after_ms);
                write.raise_alert(open.id, severity, &detail, at, remind_at).await?;
                events.push(write.alert_event(open.id, at, "raised", Some(SYSTEM), Some(&detail.to_string())).await?);
            }
            Some(open) => {
                write.repeat_alert(open.id, at).await?;
                events.push(write.alert_event(open.id, at, "repeated", Some(SYSTEM), Some(&detail.to_string())).await?);
            }
            None => {
                let remind_at = (severity == Severity::Critical).then_some(at + policy.escalate_after_ms);
                let id = write
                    .insert_alert(elder_id, place, kind, severity, device.as_deref(), &detail, at, remind_at)
                    .await?;
                events.push(write.alert_event(id, at, "opened", Some(SYSTEM), Some(&detail.to_string())).await?);
                tracing::info!(elder_id, alert = id, kind = kind.as_str(), severity = severity.as_str(), "{detail}");
            }
        },
        Effect::Note { kind, detail } => {
            if let Some(open) = write.open_alert(elder_id, kind).await? {
                write.touch_alert(open.id, at).await?;
                events.push(write.alert_event(open.id, at, "note", Some(SYSTEM), Some(&detail.to_string())).await?);
            }
        }
        Effect::Clear { kind, detail } => {
            if let Some(open) = write.open_alert(elder_id, kind).await? {
                let detail = detail.to_string();
                write.resolve_cleared(open.id, SYSTEM, &detail, at).await?;
                events.push(write.alert_event(open.id, at, "resolved", Some(SYSTEM), Some(&detail)).await?);
            }
        }
        Effect::DayClosed(day) => close_day(write, policy, elder_id, &day).await?,
    }
    Ok(events)
}

/// A local day ended: keep it, and record it as a remote check-in if it counts.
async fn close_day(write: &mut Write, policy: &AlertPolicy, elder_id: i64, day: &Day) -> Result<(), StoreError> {
    let start = rules::day_start(day.date, policy);
    let end = start + DAY_MS;
    let facts = write.day_alert_facts(elder_id, start, end).await?;
    let verdict = checkin::judge(day, &facts);
    let date = engine::day_text(day.date);
    write.record_day(elder_id, &date, day, verdict == Verdict::Counts, verdict.reason()).await?;
    if verdict == Verdict::Counts {
        let summary = serde_json::to_string(&checkin::summary(day, &facts)).unwrap_or_default();
        let visited_at = day.last_activity.unwrap_or(end);
        write.record_remote_visit(elder_id, &date, visited_at, REMOTE_VISITOR, &summary, end).await?;
    }
    Ok(())
}
