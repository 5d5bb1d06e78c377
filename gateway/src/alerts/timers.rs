//! The database's timers, on any gateway: homes whose deadline passed and
//! critical alerts whose reminder is due.
//!
//! - [`tick_due_homes`] takes up to 500 overdue homes and runs the rules and
//!   their effects for them in one transaction (the pipeline's
//!   [`judge_homes`]); each home's row is locked, so two gateways never act
//!   on one home twice.
//! - [`escalate_due_alerts`] moves each due reminder with a compare-and-set:
//!   one gateway wins.
//! - [`run_timers`] looks at least every 250 ms, sooner when the earliest
//!   deadline is nearer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::ingest::pipeline::judge_homes;
use anxin_domain::alerts::engine::{HomeInput, SYSTEM};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_store::{Store, StoreError, now_ms};

/// Homes looked at per timer transaction.
pub const TICK_BATCH: i64 = 500;

/// Looks at up to 500 homes whose deadline has passed by `now`. Returns how
/// many homes it looked at; call again while it returns a full batch.
pub async fn tick_due_homes(store: &Store, policy: &AlertPolicy, now: i64) -> Result<usize, StoreError> {
    let due = store.due_homes(now, TICK_BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    for (_, at) in &due {
        metrics::histogram!(crate::metrics::TIMER_LATENESS_SECONDS).record((now - at).max(0) as f64 / 1_000.0);
    }
    let inputs: Vec<_> = due.iter().map(|(elder_id, _)| (*elder_id, now, HomeInput::Look)).collect();
    let mut write = store.begin_write().await?;
    let events = judge_homes(&mut write, policy, &inputs, now).await?;
    write.commit().await?;
    if let Some(newest) = events.iter().max() {
        store.note_alert_written(*newest);
    }
    Ok(inputs.len())
}

/// Escalates critical alerts not acknowledged in time and reminds again
/// while they stay so. Returns the events written.
pub async fn escalate_due_alerts(store: &Store, policy: &AlertPolicy, now: i64) -> Result<Vec<i64>, StoreError> {
    let mut events = Vec::new();
    for due in store.due_reminders(now, 500).await? {
        let mut write = store.begin_write().await?;
        let Some(reminders) = write.take_reminder(&due, now + policy.remind_every_ms, now).await? else { continue };
        let waited = (now - due.opened_at) / 1_000;
        let (action, detail) = if reminders == 1 {
            (
                "escalated",
                format!("not acknowledged after {waited} s: escalated to every on-call worker of {}", due.county),
            )
        } else {
            ("reminded", format!("reminder {reminders}: still not acknowledged after {waited} s"))
        };
        events.push(write.alert_event(due.id, now, action, Some(SYSTEM), Some(&detail)).await?);
        write.commit().await?;
        tracing::warn!(alert = due.id, "{detail}");
    }
    if let Some(newest) = events.iter().max() {
        store.note_alert_written(*newest);
    }
    Ok(events)
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
pub async fn run_timers(
    store: Store,
    policy: Arc<AlertPolicy>,
    config: TimerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let now = now_ms();
        let mut wait = config.poll_every;
        match tick_all(&store, &policy, now).await {
            Ok(()) => {
                failures = 0;
                if let Ok(Some(deadline)) = store.next_deadline().await {
                    let until = Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0));
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

async fn tick_all(store: &Store, policy: &AlertPolicy, now: i64) -> Result<(), StoreError> {
    while tick_due_homes(store, policy, now).await? == usize::try_from(TICK_BATCH).unwrap_or(500) {}
    escalate_due_alerts(store, policy, now).await?;
    Ok(())
}
