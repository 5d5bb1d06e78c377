//! Running the rules against the database.
//!
//! - [`apply`] runs inside a transaction: the ingest batch's (so an event, its
//!   home's new state and the alert it raised commit together, and a
//!   redelivered message — a duplicate, not stored — raises nothing), or the
//!   timer loop's.
//! - [`run_timers`] finds homes whose `next_due_at` has passed and alerts
//!   whose reminder is due, on any gateway; a row is taken under a lock (or a
//!   compare-and-set for reminders), so two gateways never act twice.
//!
//! Design: the home's state is loaded and locked in elder-id order
//! (`SELECT … FOR UPDATE` on PostgreSQL; SQLite has one writer), changed by
//! the pure rules, and written back with its next deadline in the same
//! transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anxin_protocol::EventKind;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio::sync::watch;

use super::checkin::{self, DayFacts, Verdict};
use super::policy::{AlertPolicy, DAY_MS, ElderFacts, MINUTE_MS};
use super::rules::{self, Context, Day, DeviceLink, Effect, HomeState, Input};
use super::{AlertKind, Category, Severity};
use crate::access;
use crate::store::{Backend, Store, StoreError, placeholders};

/// An input for one elder's home, owned (the batch outlives the decoded payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeInput {
    Event {
        device: String,
        boot: u32,
        kind: EventKind,
    },
    Summary {
        device: String,
        boot: u32,
        motion: u16,
        door_opens: u16,
        temp_dc: Option<i16>,
        battery: Option<u8>,
    },
    /// Only look: time passed, or a device's status changed.
    Look,
}

impl HomeInput {
    fn as_input(&self) -> Input<'_> {
        match self {
            HomeInput::Event { device, boot, kind } => Input::Event { device, boot: *boot, kind: *kind },
            HomeInput::Summary { device, boot, motion, door_opens, temp_dc, battery } => Input::Summary {
                device,
                boot: *boot,
                motion: *motion,
                door_opens: *door_opens,
                temp_dc: *temp_dc,
                battery: *battery,
            },
            HomeInput::Look => Input::Tick,
        }
    }
}

/// What one home needs besides its state.
#[derive(Debug, Clone, Default)]
struct HomeFacts {
    state: Option<String>,
    elder: ElderFacts,
    region: Region,
    devices: Vec<DeviceLink>,
    away_until: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Region {
    pub county: String,
    pub township: String,
    pub village: String,
}

/// Closing the day waits a little after midnight, spread over half an hour
/// by elder, so 100,000 homes do not all close at 00:00:00.
fn day_close_delay_ms(elder_id: i64) -> i64 {
    5 * MINUTE_MS + (elder_id.wrapping_mul(7_919)).rem_euclid(25 * MINUTE_MS)
}

/// Runs the rules for `inputs` (each `(elder_id, at, input)`, in arrival
/// order) inside `transaction`. Returns the ids of the alert events written.
pub(crate) async fn apply(
    transaction: &mut Transaction<'_, Any>,
    backend: Backend,
    policy: &AlertPolicy,
    inputs: &[(i64, i64, HomeInput)],
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
    let mut facts = load_facts(transaction, backend, &elder_ids, now).await?;
    let watches = active_watches(transaction, now).await?;
    let mut events = Vec::new();
    let mut writes = Vec::with_capacity(elder_ids.len());
    for (elder_id, home_inputs) in by_elder {
        let Some(home) = facts.remove(&elder_id) else { continue };
        let mut state = match home.state.as_deref().map(serde_json::from_str::<HomeState>) {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                // Never stop watching a home over a state we cannot read.
                tracing::error!(elder_id, %error, "home state unreadable; watching it afresh");
                HomeState::new(now, policy)
            }
            None => HomeState::new(home_inputs.first().map_or(now, |(at, _)| *at), policy),
        };
        let region = &home.region;
        let heightened = watches.iter().any(|watch| watch.covers(&region.county, &region.township, &region.village));
        let home_policy = policy.for_home(&home.elder, heightened, home.away_until);
        let delay = day_close_delay_ms(elder_id);
        let mut last_at = now;
        let mut effects = Vec::new();
        for (index, (at, input)) in home_inputs.iter().enumerate() {
            let context = Context { now: *at, policy, home: &home_policy, day_close_delay_ms: delay };
            if index == 0 {
                effects.extend(
                    rules::step(&mut state, &Input::Devices(&home.devices), &context).into_iter().map(|e| (*at, e)),
                );
            }
            effects.extend(rules::step(&mut state, &input.as_input(), &context).into_iter().map(|e| (*at, e)));
            last_at = *at;
        }
        let context = Context { now: last_at, policy, home: &home_policy, day_close_delay_ms: delay };
        // A deadline already past that the step did not act on would make the
        // timer loop spin on this home; look again in a second at the soonest.
        let due = rules::next_due(&state, &context).max(last_at + 1_000);
        let text = serde_json::to_string(&state).map_err(|error| StoreError::NotFound(error.to_string()))?;
        writes.push((elder_id, text, due));
        for (at, effect) in effects {
            events.extend(apply_effect(transaction, policy, elder_id, &home.region, effect, at).await?);
        }
    }
    write_states(transaction, &writes, now).await?;
    Ok(events)
}

async fn load_facts(
    transaction: &mut Transaction<'_, Any>,
    backend: Backend,
    elder_ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, HomeFacts>, StoreError> {
    let list = placeholders(1, elder_ids.len());
    // Every home gets its row first (an empty state: not watched yet), so the
    // rows can be locked: on PostgreSQL a transaction that waited for another
    // then reads the state that one wrote. On SQLite this first write takes
    // the database's write lock before anything is read.
    let n = elder_ids.len();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at)
         SELECT id, '', NULL, ${} FROM elders WHERE id IN ({list}) ORDER BY id
         ON CONFLICT (elder_id) DO NOTHING",
        n + 1
    )));
    for id in elder_ids {
        query = query.bind(*id);
    }
    query.bind(now).execute(&mut **transaction).await?;
    // Lock in one order, so two gateways cannot deadlock.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF h",
        Backend::Sqlite => "",
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT e.id, e.categories, e.inactivity_hours, e.county, e.township, e.village, h.state
         FROM home_watch h JOIN elders e ON e.id = h.elder_id
         WHERE h.elder_id IN ({list}) ORDER BY h.elder_id{lock}"
    )));
    for id in elder_ids {
        query = query.bind(*id);
    }
    let mut facts: HashMap<i64, HomeFacts> = HashMap::new();
    for row in query.fetch_all(&mut **transaction).await? {
        let id: i64 = row.try_get("id")?;
        facts.insert(
            id,
            HomeFacts {
                state: Some(row.try_get::<String, _>("state")?).filter(|state| !state.is_empty()),
                elder: ElderFacts {
                    categories: Category::parse_list(&row.try_get::<String, _>("categories")?),
                    inactivity_hours: row.try_get("inactivity_hours")?,
                },
                region: Region {
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                },
                ..HomeFacts::default()
            },
        );
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT device_id, elder_id, online, offline_reason FROM devices WHERE elder_id IN ({list}) ORDER BY device_id"
    )));
    for id in elder_ids {
        query = query.bind(*id);
    }
    for row in query.fetch_all(&mut **transaction).await? {
        let elder_id: i64 = row.try_get("elder_id")?;
        if let Some(home) = facts.get_mut(&elder_id) {
            home.devices.push(DeviceLink {
                device_id: row.try_get("device_id")?,
                online: row.try_get::<i64, _>("online")? == 1,
                offline_reason: row.try_get("offline_reason")?,
            });
        }
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT elder_id, ends_at FROM absences
         WHERE elder_id IN ({list}) AND cancelled_at IS NULL AND starts_at <= ${} AND ends_at > ${}",
        n + 1,
        n + 1
    )));
    for id in elder_ids {
        query = query.bind(*id);
    }
    for row in query.bind(now).fetch_all(&mut **transaction).await? {
        let elder_id: i64 = row.try_get("elder_id")?;
        let ends_at: i64 = row.try_get("ends_at")?;
        if let Some(home) = facts.get_mut(&elder_id) {
            home.away_until = Some(home.away_until.map_or(ends_at, |until| until.max(ends_at)));
        }
    }
    Ok(facts)
}

/// The heightened watches in force at `now` (a handful at most).
async fn active_watches(transaction: &mut Transaction<'_, Any>, now: i64) -> Result<Vec<access::Region>, StoreError> {
    let rows =
        sqlx::query("SELECT county, township, village FROM heightened_watches WHERE starts_at <= $1 AND ends_at > $1")
            .bind(now)
            .fetch_all(&mut **transaction)
            .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(access::Region {
                county: row.try_get("county")?,
                township: row.try_get("township")?,
                village: row.try_get("village")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

async fn write_states(
    transaction: &mut Transaction<'_, Any>,
    writes: &[(i64, String, i64)],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in writes.chunks(200) {
        let values =
            (0..chunk.len()).map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at) VALUES {}
             ON CONFLICT (elder_id) DO UPDATE SET
                 state = excluded.state, next_due_at = excluded.next_due_at, updated_at = excluded.updated_at",
            values.collect::<Vec<_>>().join(", ")
        )));
        for (elder_id, state, due) in chunk {
            query = query.bind(*elder_id).bind(state.as_str()).bind(*due).bind(now);
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(())
}

pub(crate) async fn insert_event(
    transaction: &mut Transaction<'_, Any>,
    alert_id: i64,
    at: i64,
    action: &str,
    actor: Option<&str>,
    detail: Option<&str>,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO alert_events (alert_id, at, action, actor, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(alert_id)
    .bind(at)
    .bind(action)
    .bind(actor)
    .bind(detail)
    .fetch_one(&mut **transaction)
    .await?;
    Ok(row.try_get("id")?)
}

async fn open_alert(
    transaction: &mut Transaction<'_, Any>,
    elder_id: i64,
    kind: AlertKind,
) -> Result<Option<AnyRow>, StoreError> {
    Ok(sqlx::query(
        "SELECT id, severity, status FROM alerts WHERE elder_id = $1 AND kind = $2 AND status <> 'resolved'",
    )
    .bind(elder_id)
    .bind(kind.as_str())
    .fetch_optional(&mut **transaction)
    .await?)
}

/// The system's name in alert histories.
pub const SYSTEM: &str = "anxin";

async fn apply_effect(
    transaction: &mut Transaction<'_, Any>,
    policy: &AlertPolicy,
    elder_id: i64,
    region: &Region,
    effect: Effect,
    at: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut events = Vec::new();
    match effect {
        Effect::Raise { kind, severity, device, detail } => {
            match open_alert(transaction, elder_id, kind).await? {
                Some(row) => {
                    let id: i64 = row.try_get("id")?;
                    let old = Severity::parse(&row.try_get::<String, _>("severity")?).unwrap_or(Severity::Notice);
                    let status: String = row.try_get("status")?;
                    if severity > old {
                        // A warning turning critical starts the escalation clock
                        // unless someone already has it in hand.
                        let reminder = (severity == Severity::Critical && status == "open")
                            .then_some(at + policy.escalate_after_ms);
                        sqlx::query(
                            "UPDATE alerts SET severity = $1, detail = $2, updated_at = $3, repeats = repeats + 1,
                                 next_reminder_at = COALESCE($4, next_reminder_at)
                             WHERE id = $5",
                        )
                        .bind(severity.as_str())
                        .bind(detail.as_str())
                        .bind(at)
                        .bind(reminder)
                        .bind(id)
                        .execute(&mut **transaction)
                        .await?;
                        events.push(insert_event(transaction, id, at, "raised", Some(SYSTEM), Some(&detail)).await?);
                    } else {
                        sqlx::query("UPDATE alerts SET repeats = repeats + 1, updated_at = $1 WHERE id = $2")
                            .bind(at)
                            .bind(id)
                            .execute(&mut **transaction)
                            .await?;
                        events.push(insert_event(transaction, id, at, "repeated", Some(SYSTEM), Some(&detail)).await?);
                    }
                }
                None => {
                    let reminder = (severity == Severity::Critical).then_some(at + policy.escalate_after_ms);
                    let row = sqlx::query(
                        "INSERT INTO alerts (elder_id, kind, severity, status, county, township, village, device_id,
                                             detail, opened_at, updated_at, next_reminder_at)
                         VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
                    )
                    .bind(elder_id)
                    .bind(kind.as_str())
                    .bind(severity.as_str())
                    .bind(region.county.as_str())
                    .bind(region.township.as_str())
                    .bind(region.village.as_str())
                    .bind(device.as_deref())
                    .bind(detail.as_str())
                    .bind(at)
                    .bind(reminder)
                    .fetch_one(&mut **transaction)
                    .await?;
                    let id: i64 = row.try_get("id")?;
                    events.push(insert_event(transaction, id, at, "opened", Some(SYSTEM), Some(&detail)).await?);
                    tracing::info!(
                        elder_id,
                        alert = id,
                        kind = kind.as_str(),
                        severity = severity.as_str(),
                        "{detail}"
                    );
                }
            }
        }
        Effect::Note { kind, detail } => {
            if let Some(row) = open_alert(transaction, elder_id, kind).await? {
                let id: i64 = row.try_get("id")?;
                sqlx::query("UPDATE alerts SET updated_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(id)
                    .execute(&mut **transaction)
                    .await?;
                events.push(insert_event(transaction, id, at, "note", Some(SYSTEM), Some(&detail)).await?);
            }
        }
        Effect::Clear { kind, detail } => {
            if let Some(row) = open_alert(transaction, elder_id, kind).await? {
                let id: i64 = row.try_get("id")?;
                sqlx::query(
                    "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, outcome = 'cleared_itself',
                         note = $3, next_reminder_at = NULL, updated_at = $1
                     WHERE id = $4",
                )
                .bind(at)
                .bind(SYSTEM)
                .bind(detail.as_str())
                .bind(id)
                .execute(&mut **transaction)
                .await?;
                events.push(insert_event(transaction, id, at, "resolved", Some(SYSTEM), Some(&detail)).await?);
            }
        }
        Effect::DayClosed(day) => close_day(transaction, policy, elder_id, &day).await?,
    }
    Ok(events)
}

/// `2026-11-29` for a local day number.
pub fn day_text(day: i64) -> String {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .map(|date| date.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

/// The name a remote check-in is recorded under.
pub const REMOTE_VISITOR: &str = "Anxin remote monitoring";

async fn close_day(
    transaction: &mut Transaction<'_, Any>,
    policy: &AlertPolicy,
    elder_id: i64,
    day: &Day,
) -> Result<(), StoreError> {
    let start = rules::day_start(day.date, policy);
    let end = start + DAY_MS;
    let row = sqlx::query(
        "SELECT COUNT(CASE WHEN severity = 'critical' AND opened_at < $3 AND (resolved_at IS NULL OR resolved_at >= $2)
                           THEN 1 END) AS critical,
                COUNT(CASE WHEN opened_at >= $2 AND opened_at < $3 THEN 1 END) AS opened
         FROM alerts WHERE elder_id = $1 AND opened_at < $3",
    )
    .bind(elder_id)
    .bind(start)
    .bind(end)
    .fetch_one(&mut **transaction)
    .await?;
    let facts =
        DayFacts { critical_alert_open: row.try_get::<i64, _>("critical")? > 0, alerts_opened: row.try_get("opened")? };
    let verdict = checkin::judge(day, &facts);
    let date = day_text(day.date);
    sqlx::query(
        "INSERT INTO elder_days (elder_id, day, first_activity_at, last_activity_at, wake_at, active_hours, reported_hours,
                                 door_opens, motion, temp_min, temp_max, counted, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (elder_id, day) DO NOTHING",
    )
    .bind(elder_id)
    .bind(date.as_str())
    .bind(day.first_activity)
    .bind(day.last_activity)
    .bind(day.wake)
    .bind(i64::from(day.active_hours))
    .bind(i64::from(day.reported_hours))
    .bind(day.door_opens)
    .bind(day.motion)
    .bind(day.temp_min_dc.map(i64::from))
    .bind(day.temp_max_dc.map(i64::from))
    .bind(i64::from(verdict == Verdict::Counts))
    .bind(verdict.reason())
    .execute(&mut **transaction)
    .await?;
    if verdict == Verdict::Counts {
        let summary = serde_json::to_string(&checkin::summary(day, &facts)).unwrap_or_default();
        sqlx::query(
            "INSERT INTO visits (elder_id, day, mode, visited_at, visitor, summary, created_at)
             VALUES ($1, $2, 'remote', $3, $4, $5, $6)
             ON CONFLICT (elder_id, day) WHERE mode = 'remote' DO NOTHING",
        )
        .bind(elder_id)
        .bind(date.as_str())
        .bind(day.last_activity.unwrap_or(end))
        .bind(REMOTE_VISITOR)
        .bind(summary)
        .bind(end)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// Homes looked at per timer transaction.
const TICK_BATCH: i64 = 500;

impl Store {
    /// Looks at up to 500 homes whose deadline has passed by `now`. Returns
    /// how many homes it looked at; call again while it returns a full batch.
    pub async fn tick_due_homes(&self, now: i64) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT elder_id, next_due_at FROM home_watch WHERE next_due_at <= $1 ORDER BY next_due_at, elder_id LIMIT $2",
        )
        .bind(now)
        .bind(TICK_BATCH)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut inputs: Vec<(i64, i64, HomeInput)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let due: i64 = row.try_get("next_due_at")?;
            metrics::histogram!(crate::metrics::TIMER_LATENESS_SECONDS).record((now - due).max(0) as f64 / 1_000.0);
            inputs.push((row.try_get("elder_id")?, now, HomeInput::Look));
        }
        self.apply_in_transaction(&inputs, now).await?;
        Ok(inputs.len())
    }

    /// Runs the rules for `inputs` in a transaction of their own.
    pub async fn apply_in_transaction(&self, inputs: &[(i64, i64, HomeInput)], now: i64) -> Result<(), StoreError> {
        if inputs.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.pool.begin().await?;
        let events = apply(&mut transaction, self.backend(), &self.policy, inputs, now).await?;
        transaction.commit().await?;
        if let Some(newest) = events.iter().max() {
            self.note_alert_written(*newest);
        }
        Ok(())
    }

    /// Escalates critical alerts not acknowledged in time and reminds again
    /// while they stay so. Returns the events written.
    pub async fn escalate_due_alerts(&self, now: i64) -> Result<Vec<i64>, StoreError> {
        let due = sqlx::query(
            "SELECT id, level, reminders, next_reminder_at, opened_at, county FROM alerts
             WHERE next_reminder_at <= $1 ORDER BY next_reminder_at LIMIT 500",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::new();
        for row in due {
            let id: i64 = row.try_get("id")?;
            let reminder_at: i64 = row.try_get("next_reminder_at")?;
            let opened_at: i64 = row.try_get("opened_at")?;
            let county: String = row.try_get("county")?;
            let _turn = self.write_turn().await;
            let mut transaction = self.pool.begin().await?;
            // Compare-and-set on the reminder time: one gateway wins.
            let updated = sqlx::query(
                "UPDATE alerts SET level = CASE WHEN level = 0 THEN 1 ELSE level END, reminders = reminders + 1,
                     next_reminder_at = $1, updated_at = $2
                 WHERE id = $3 AND next_reminder_at = $4 AND status = 'open'
                 RETURNING level, reminders",
            )
            .bind(now + self.policy.remind_every_ms)
            .bind(now)
            .bind(id)
            .bind(reminder_at)
            .fetch_optional(&mut *transaction)
            .await?;
            let Some(updated) = updated else { continue };
            let reminders: i64 = updated.try_get("reminders")?;
            let waited = (now - opened_at) / 1_000;
            let (action, detail) = if reminders == 1 {
                (
                    "escalated",
                    format!("not acknowledged after {waited} s: escalated to every on-call worker of {county}"),
                )
            } else {
                ("reminded", format!("reminder {reminders}: still not acknowledged after {waited} s"))
            };
            events.push(insert_event(&mut transaction, id, now, action, Some(SYSTEM), Some(&detail)).await?);
            transaction.commit().await?;
            tracing::warn!(alert = id, "{detail}");
        }
        if let Some(newest) = events.iter().max() {
            self.note_alert_written(*newest);
        }
        Ok(events)
    }

    /// The earliest home deadline or alert reminder, if any.
    pub async fn next_deadline(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(next_due_at) FROM home_watch) AS home, (SELECT MIN(next_reminder_at) FROM alerts) AS reminder",
        )
        .fetch_one(&self.pool)
        .await?;
        let home: Option<i64> = row.try_get("home")?;
        let reminder: Option<i64> = row.try_get("reminder")?;
        Ok(match (home, reminder) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

/// How the timer loop paces itself.
#[derive(Debug, Clone)]
pub struct TimerConfig {
    /// Look at least this often, even with no deadline known (a deadline
    /// set by another gateway or process).
    pub poll_every: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self { poll_every: Duration::from_millis(250) }
    }
}

/// Runs the database's timers until `shutdown` turns true: overdue homes and
/// due reminders, on the wall clock.
pub async fn run_timers(store: Store, config: TimerConfig, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        let now = crate::store::now_ms();
        let mut wait = config.poll_every;
        match tick_all(&store, now).await {
            Ok(()) => {
                failures = 0;
                if let Ok(Some(deadline)) = store.next_deadline().await {
                    let until = Duration::from_millis(u64::try_from(deadline - crate::store::now_ms()).unwrap_or(0));
                    wait = wait.min(until);
                }
            }
            Err(error) => {
                failures += 1;
                tracing::error!(%error, "alert timers failed; retrying");
                wait = Duration::from_millis(250 * u64::from(failures.min(20)));
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn tick_all(store: &Store, now: i64) -> Result<(), StoreError> {
    while store.tick_due_homes(now).await? == usize::try_from(TICK_BATCH).unwrap_or(500) {}
    store.escalate_due_alerts(now).await?;
    Ok(())
}
