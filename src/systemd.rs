//! Running under systemd (`deploy/anxin.service`, `Type=notify`): the
//! service says when it is ready and feeds the watchdog while its database
//! answers — a process that is up but can no longer store anything is
//! restarted. Outside systemd (no `NOTIFY_SOCKET`) all of this does nothing.

use std::time::Duration;

use anxin_store::Store;
use sd_notify::NotifyState;

/// Tells systemd the service is ready and, when the unit sets
/// `WatchdogSec`, feeds the watchdog every half period while a read of the
/// database succeeds within that half period.
pub fn ready(store: Store) {
    if let Err(error) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(%error, "could not tell systemd the service is ready");
    }
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return;
    }
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(500));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            match tokio::time::timeout(period, store.schema_version()).await {
                Ok(Ok(_)) => {
                    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                }
                Ok(Err(error)) => tracing::error!(%error, "the database did not answer: the watchdog is not fed"),
                Err(_) => tracing::error!("the database did not answer in time: the watchdog is not fed"),
            }
        }
    });
}

/// Tells systemd the service is stopping (so a slow shutdown is not taken
/// for a hang).
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}
