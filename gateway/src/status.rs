//! Background upkeep shared by every gateway: devices that went silent,
//! the online/offline and open-alert gauges, the data disk's free space, the
//! day partitions of PostgreSQL's messages made a week ahead
//! ([`anxin_store::DAYS_AHEAD`]), and the daily retention job
//! ([`anxin_store::RetentionPolicy`]).

use std::time::Duration;

use tokio::sync::watch;

use crate::metrics as m;
use anxin_domain::alerts::Severity;
use anxin_store::{RETENTION_BATCH, RetentionPolicy, Store, now_ms};

#[derive(Debug, Clone)]
pub struct UpkeepConfig {
    /// How often silent devices are looked for.
    pub sweep_every: Duration,
    /// How long each kind of record is kept.
    pub retention: RetentionPolicy,
    /// How often the retention job runs (at start, then this often).
    pub retention_every: Duration,
    /// The SQLite data folder, whose free space is reported.
    pub data_folder: Option<std::path::PathBuf>,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        Self {
            sweep_every: Duration::from_secs(10),
            retention: RetentionPolicy::default(),
            retention_every: Duration::from_secs(24 * 3_600),
            data_folder: None,
        }
    }
}

/// How often the day partitions ahead are looked at (and made if missing);
/// a failed try is tried again at the next sweep.
const PARTITIONS_EVERY: Duration = Duration::from_secs(3_600);

/// Runs until `shutdown` turns true.
pub async fn run_upkeep(store: Store, config: UpkeepConfig, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(config.sweep_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_expiry = None::<tokio::time::Instant>;
    let mut last_partitions = None::<tokio::time::Instant>;
    let mut runs: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        match store.mark_silent_devices_offline(now).await {
            Ok(silent) if !silent.is_empty() => tracing::info!(devices = ?silent, "offline: 3 summaries missed"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot check for silent devices"),
        }
        if let Ok(counts) = store.device_status_counts().await {
            metrics::gauge!(m::DEVICES_ONLINE).set(counts.online as f64);
            metrics::gauge!(m::DEVICES_OFFLINE).set(counts.offline as f64);
        }
        if let Ok(open) = store.open_alert_counts().await {
            for severity in [Severity::Critical, Severity::Warning, Severity::Notice] {
                let n = open.iter().find(|(s, _)| *s == severity).map_or(0, |(_, n)| *n);
                metrics::gauge!(m::ALERTS_OPEN, "severity" => severity.as_str()).set(n as f64);
            }
        }
        if let Ok(oldest) = store.oldest_unacknowledged().await {
            for severity in [Severity::Critical, Severity::Warning, Severity::Notice] {
                let age = oldest.iter().find(|(s, _)| *s == severity).map_or(0, |(_, at)| (now - at).max(0));
                metrics::gauge!(m::ALERTS_UNACKNOWLEDGED_SECONDS, "severity" => severity.as_str())
                    .set(age as f64 / 1e3);
            }
        }
        if runs.is_multiple_of(6) {
            // Time to acknowledge, as the programme holds it: the share of
            // the last day's alerts acknowledged within one and three minutes.
            let day_ago = now - 24 * 3_600_000;
            for severity in [Severity::Critical, Severity::Warning, Severity::Notice] {
                let region = anxin_store::RegionFilter::default();
                if let Ok(stats) = store.ack_stats(&region, Some(severity), day_ago, now + 1).await {
                    let share = |share: Option<f64>| share.unwrap_or(f64::NAN);
                    metrics::gauge!(m::ACKNOWLEDGED_WITHIN_60S, "severity" => severity.as_str())
                        .set(share(stats.share_60s()));
                    metrics::gauge!(m::ACKNOWLEDGED_WITHIN_180S, "severity" => severity.as_str())
                        .set(share(stats.share_180s()));
                }
            }
        }
        runs += 1;
        if let Some(folder) = &config.data_folder {
            match rustix::fs::statvfs(folder) {
                Ok(space) => metrics::gauge!(m::DATA_FREE_BYTES).set((space.f_bavail * space.f_frsize) as f64),
                Err(error) => tracing::warn!(%error, "cannot read the data folder's free space"),
            }
        }
        if last_partitions.is_none_or(|at| at.elapsed() >= PARTITIONS_EVERY) {
            // Before retention, which may drop the oldest ones.
            match store.prepare_message_partitions(now).await {
                Ok(_) => last_partitions = Some(tokio::time::Instant::now()),
                Err(error) => tracing::warn!(%error, "messages: day partitions not made this time"),
            }
        }
        metrics::counter!(m::UPKEEP_RUNS).increment(1);
        if last_expiry.is_none_or(|at| at.elapsed() >= config.retention_every) {
            last_expiry = Some(tokio::time::Instant::now());
            match store.apply_retention(&config.retention, now, RETENTION_BATCH).await {
                Ok(report) => {
                    for (kind, removed, _) in &report.removed {
                        metrics::counter!(m::RETENTION_REMOVED, "record" => kind.as_str()).increment(*removed);
                    }
                }
                Err(error) => tracing::warn!(%error, "retention: not applied this time"),
            }
        }
    }
}
