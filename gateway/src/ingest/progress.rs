//! How far ingest has got, and the watchdog that says so when it stops.
//!
//! Every broker path counts a message `received` when it arrives and
//! `settled` when its acknowledgement is released (or, its connection gone,
//! abandoned to the broker's redelivery); the batch writer counts what it
//! `committed`. Work waits while received > settled. The watchdog looks once a
//! second: when work waits and neither count has moved for `stalled_after`,
//! ingest is stalled — a gauge says for how long, and a warning goes to the
//! log (again every minute while it lasts).
//!
//! Design: the counts are plain atomics bumped on the hot path (one relaxed
//! add per message); everything else happens on the watchdog's own task, so
//! the check cannot itself be held up by what it watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics as m;

/// Shared counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    settled: AtomicU64,
    committed: AtomicU64,
    stored: AtomicU64,
    batches: AtomicU64,
}

/// The counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Messages a broker path took from the network.
    pub received: u64,
    /// Of those, acknowledged or left to the broker's redelivery.
    pub settled: u64,
    /// Messages committed by the batch writer (new, duplicate or rejected).
    pub committed: u64,
    /// Of those, events and summaries stored for the first time.
    pub stored: u64,
    /// Transactions that committed them.
    pub batches: u64,
}

impl Snapshot {
    /// Messages taken in and not yet settled.
    pub fn waiting(&self) -> u64 {
        self.received.saturating_sub(self.settled)
    }
}

impl Progress {
    pub fn received(&self) {
        self.0.received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn settled(&self, count: u64) {
        self.0.settled.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self, messages: u64, stored: u64) {
        self.0.committed.fetch_add(messages, Ordering::Relaxed);
        self.0.stored.fetch_add(stored, Ordering::Relaxed);
        self.0.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.0.received.load(Ordering::Relaxed),
            settled: self.0.settled.load(Ordering::Relaxed),
            committed: self.0.committed.load(Ordering::Relaxed),
            stored: self.0.stored.load(Ordering::Relaxed),
            batches: self.0.batches.load(Ordering::Relaxed),
        }
    }

    /// A guard that settles one message when dropped: however the wait for
    /// its commit ends (acknowledged, refused, its connection closed).
    pub fn settle_on_drop(&self) -> SettleOnDrop {
        SettleOnDrop(self.clone())
    }
}

/// See [`Progress::settle_on_drop`].
#[derive(Debug)]
pub struct SettleOnDrop(Progress);

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        self.0.settled(1);
    }
}

/// What the watchdog concluded from two looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Moving, or nothing waits.
    Healthy,
    /// Work waits and nothing moved for this long.
    Stalled(Duration),
}

/// The watchdog's memory: pure, so its rule is tested without waiting.
#[derive(Debug, Clone)]
pub struct Watch {
    stalled_after: Duration,
    last: Snapshot,
    still_for: Duration,
}

impl Watch {
    pub fn new(stalled_after: Duration) -> Watch {
        Watch { stalled_after, last: Snapshot::default(), still_for: Duration::ZERO }
    }

    /// Takes a look `elapsed` after the previous one.
    pub fn look(&mut self, now: Snapshot, elapsed: Duration) -> Verdict {
        let moved = now.committed != self.last.committed || now.settled != self.last.settled;
        if moved || now.waiting() == 0 {
            self.still_for = Duration::ZERO;
        } else {
            self.still_for += elapsed;
        }
        self.last = now;
        if self.still_for >= self.stalled_after { Verdict::Stalled(self.still_for) } else { Verdict::Healthy }
    }
}

/// Looks at `progress` every second until `shutdown` turns true.
pub async fn run_watchdog(progress: Progress, stalled_after: Duration, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(1);
    let mut watch = Watch::new(stalled_after);
    let mut logged_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = progress.snapshot();
        metrics::gauge!(m::INGEST_WAITING).set(now.waiting() as f64);
        match watch.look(now, every) {
            Verdict::Healthy => {
                metrics::gauge!(m::INGEST_STALLED_SECONDS).set(0.0);
                if logged_at.take().is_some() {
                    tracing::info!("ingest is moving again");
                }
            }
            Verdict::Stalled(still) => {
                metrics::gauge!(m::INGEST_STALLED_SECONDS).set(still.as_secs_f64());
                if logged_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    logged_at = Some(tokio::time::Instant::now());
                    tracing::error!(
                        waiting = now.waiting(),
                        committed = now.committed,
                        "ingest has made no progress for {} s while {} messages wait for their acknowledgement",
                        still.as_secs(),
                        now.waiting()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(received: u64, settled: u64, committed: u64) -> Snapshot {
        Snapshot { received, settled, committed, ..Snapshot::default() }
    }

    #[test]
    fn waiting_work_that_does_not_move_is_a_stall_after_the_limit() {
        let second = Duration::from_secs(1);
        let mut watch = Watch::new(Duration::from_secs(3));
        assert_eq!(watch.look(at(10, 0, 0), second), Verdict::Healthy);
        assert_eq!(watch.look(at(10, 0, 0), second), Verdict::Healthy);
        assert_eq!(
            watch.look(at(12, 0, 0), second),
            Verdict::Stalled(Duration::from_secs(3)),
            "arrivals are not progress"
        );
        assert_eq!(watch.look(at(12, 0, 0), second), Verdict::Stalled(Duration::from_secs(4)));
        assert_eq!(watch.look(at(12, 0, 5), second), Verdict::Healthy, "a commit is progress");
        assert_eq!(watch.look(at(12, 5, 5), second), Verdict::Healthy, "so is an acknowledgement");
    }

    #[test]
    fn an_idle_gateway_is_not_stalled() {
        let mut watch = Watch::new(Duration::from_secs(2));
        for _ in 0..10 {
            assert_eq!(watch.look(at(7, 7, 7), Duration::from_secs(1)), Verdict::Healthy);
        }
    }

    #[test]
    fn a_dropped_guard_settles_its_message() {
        let progress = Progress::default();
        progress.received();
        drop(progress.settle_on_drop());
        assert_eq!(progress.snapshot().waiting(), 0);
    }
}
