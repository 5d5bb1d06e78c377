//! Ingest: the one pipeline every broker path feeds.
//!
//! check (pure) → batch → write the messages → run the pure rules on them →
//! write their effects → commit, all in one transaction ([`pipeline`]) →
//! acknowledge in order → notify. A message is acknowledged to its sender — a
//! PUBACK from the embedded broker, a manual ack to an external one — only
//! after the transaction holding it committed, so a crash at any point loses
//! nothing: the unacknowledged message is delivered again, and the
//! redelivery is a no-op.
//!
//! Invariants:
//! - Nothing here waits on something that needs the waiting task: a sender
//!   waits only for room in a bounded queue, which the writer empties on its
//!   own task; backpressure is a path not reading its socket, never a cycle.
//! - Bad input is a normal outcome: counted by reason, logged with a rate
//!   limit, quarantined, acknowledged (it would only come back), and never
//!   stops or slows the good messages batched with it.
//! - A failed commit is retried with backoff, never skipped: nothing is
//!   acknowledged that is not stored. A disk full is such a failure: it is
//!   marked on the store's [`anxin_store::Storage`] (the console says so)
//!   until a commit goes through again.
//! - Group commit: a batch is whatever queued while the previous commit ran
//!   (at most `batch_max`); nothing waits for a batch to fill.
//! - Hazards (a smoke alarm, the help button) have a lane of their own and
//!   commit ahead of everything queued: a batch with a hazard in it commits
//!   at once. On PostgreSQL the lane has a writer of its own, committing
//!   beside the summaries' writer.
//! - Messages are checked on the broker path's task, not the writer's, so
//!   decoding runs beside the commit and the one writer only writes.
//! - [`progress`] counts what arrived, what committed and what was
//!   acknowledged; its watchdog says when waiting work stops moving.

pub mod check;
mod log_limit;
pub mod pipeline;
pub mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_protocol::{EventKind, Payload, SmokeState};
use tokio::sync::{mpsc, oneshot};

use crate::metrics as m;
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_store::{Backend, Store};
pub use check::{Accepted, Checked, Rejected, check};
use log_limit::LogLimiter;
pub use pipeline::{BatchOutcome, commit_batch};
pub use progress::Progress;

/// Batching knobs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// A batch holds at most this many messages…
    pub batch_max: usize,
    /// …and waits this long for more once nothing else is queued. Zero (the
    /// default) is group commit: a batch is what queued while the previous
    /// commit ran, so batches grow with the load by themselves and a lone
    /// message is committed at once (measured: one connection with 100
    /// publishes in flight stores 3× more per second than with 5 ms).
    pub batch_deadline: Duration,
    /// Messages that may wait for a batch, per lane, before senders wait.
    pub queue: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { batch_max: 2_048, batch_deadline: Duration::ZERO, queue: 16_384 }
    }
}

/// How a message reached ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The usual way: each delivery is one publish (a redelivery is a duplicate).
    Single,
    /// A second copy on purpose: with an external broker, events reach the
    /// gateway on their own session *and* on the main one (so none can be
    /// missed); the main session's copy of a stored event is not counted as
    /// a duplicate, and a copy of a bad event is neither counted nor
    /// quarantined again.
    Copy,
}

/// One message from a broker path, checked on the path's own task, with the
/// promise to tell it when the message is durable.
#[derive(Debug)]
struct Incoming {
    checked: Checked,
    received_at: i64,
    delivery: Delivery,
    received: Instant,
    committed: oneshot::Sender<()>,
}

/// The sending side of ingest; cheap to clone, one per broker path.
#[derive(Debug, Clone)]
pub struct Ingest {
    summaries: mpsc::Sender<Incoming>,
    /// Hazards (a smoke alarm, the help button): a lane of their own,
    /// committed ahead of everything queued before them.
    hazards: mpsc::Sender<Incoming>,
    progress: Progress,
}

/// A smoke alarm or a press of the help button: someone may be in danger
/// now. Everything else (summaries, doors, tamper, statuses, bad input) can
/// wait for a batch.
pub fn is_urgent(checked: &Checked) -> bool {
    match checked {
        Checked::Accepted(accepted) => match &accepted.payload {
            Payload::Event(event) => matches!(event.kind, EventKind::Smoke(SmokeState::Alarm) | EventKind::Help),
            Payload::Summary(_) | Payload::Status(_) => false,
        },
        Checked::Rejected(_) => false,
    }
}

/// Resolves when the message is committed. If ingest stops first, it
/// resolves with an error and the message must not be acknowledged.
pub type Committed = oneshot::Receiver<()>;

#[derive(Debug, thiserror::Error)]
#[error("ingest has stopped")]
pub struct IngestStopped;

/// Room for one message in a lane, taken ahead (see [`Ingest::reserve`]).
#[derive(Debug)]
pub struct Slot<'a> {
    permit: mpsc::Permit<'a, Incoming>,
}

impl Slot<'_> {
    /// Hands the checked message over; `received_at` is the gateway's clock (UTC ms).
    pub fn submit(self, checked: Checked, received_at: i64, delivery: Delivery) -> Committed {
        let (committed, receiver) = oneshot::channel();
        self.permit.send(Incoming { checked, received_at, delivery, received: Instant::now(), committed });
        metrics::counter!(m::RECEIVED).increment(1);
        receiver
    }
}

impl Ingest {
    /// Starts the batch writer. It runs until every `Ingest` clone is dropped,
    /// then commits what it holds and ends.
    pub fn start(
        store: Store,
        policy: Arc<AlertPolicy>,
        config: IngestConfig,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        metrics::gauge!(m::STORAGE_FULL).set(0.0);
        let (summaries, summary_receiver) = mpsc::channel(config.queue);
        let (hazards, hazard_receiver) = mpsc::channel(config.queue);
        let progress = Progress::default();
        let writer = |summaries, hazards| Writer {
            store: store.clone(),
            policy: policy.clone(),
            config: config.clone(),
            summaries,
            hazards,
            progress: progress.clone(),
            log: LogLimiter::new(Duration::from_secs(60)),
        };
        // Design: SQLite has one writer, so hazards go first on the one
        // writer task and wait at most for the commit in progress.
        // PostgreSQL takes concurrent transactions, so hazards get a writer
        // of their own and commit beside a batch of summaries instead of
        // after it (both lock devices, then homes, each in key order).
        let task = match store.backend() {
            Backend::Sqlite => tokio::spawn(writer(summary_receiver, hazard_receiver).run()),
            Backend::Postgres => {
                let summaries_only = tokio::spawn(writer(summary_receiver, closed()).run());
                let hazards_only = tokio::spawn(writer(closed(), hazard_receiver).run());
                tokio::spawn(async move {
                    let _ = tokio::join!(summaries_only, hazards_only);
                })
            }
        };
        (Ingest { summaries, hazards, progress }, task)
    }

    /// Takes room for a message in its lane (`urgent`: see [`is_urgent`]),
    /// waiting while the lane is full. Cancel-safe: a path can wait for room
    /// and read its socket at once.
    pub async fn reserve(&self, urgent: bool) -> Result<Slot<'_>, IngestStopped> {
        let lane = if urgent { &self.hazards } else { &self.summaries };
        let permit = lane.reserve().await.map_err(|_| IngestStopped)?;
        Ok(Slot { permit })
    }

    /// Checks a received message (on the caller's task) and hands it to
    /// ingest, waiting for room; `received_at` is the gateway's clock (UTC
    /// ms), never the device's.
    pub async fn submit(&self, topic: &str, payload: &[u8], received_at: i64) -> Result<Committed, IngestStopped> {
        let checked = check(topic, payload);
        let slot = self.reserve(is_urgent(&checked)).await?;
        Ok(slot.submit(checked, received_at, Delivery::Single))
    }

    /// What has arrived, committed and been acknowledged so far.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// A lane that never delivers: the other writer's.
fn closed() -> mpsc::Receiver<Incoming> {
    mpsc::channel(1).1
}

struct Writer {
    store: Store,
    policy: Arc<AlertPolicy>,
    config: IngestConfig,
    summaries: mpsc::Receiver<Incoming>,
    hazards: mpsc::Receiver<Incoming>,
    progress: Progress,
    log: LogLimiter,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.config.batch_max);
        loop {
            // Design: hazards first. A batch that holds a hazard commits as
            // soon as the waiting hazards are in it, without filling up with
            // summaries, so a smoke alarm waits at most for the commit in
            // progress, not for the queue of summaries ahead of it.
            let first = tokio::select! {
                biased;
                Some(incoming) = self.hazards.recv() => incoming,
                Some(incoming) = self.summaries.recv() => incoming,
                else => break,
            };
            let urgent = is_urgent(&first.checked);
            batch.push(first);
            while batch.len() < self.config.batch_max {
                match self.hazards.try_recv() {
                    Ok(incoming) => batch.push(incoming),
                    Err(_) => break,
                }
            }
            if !urgent {
                // Whatever is already queued joins at once; then wait a
                // moment for more, unless an event arrives.
                while batch.len() < self.config.batch_max {
                    match self.summaries.try_recv() {
                        Ok(incoming) => batch.push(incoming),
                        Err(_) => break,
                    }
                }
                let deadline = tokio::time::Instant::now() + self.config.batch_deadline;
                while batch.len() < self.config.batch_max && !self.config.batch_deadline.is_zero() {
                    let next = tokio::time::timeout_at(deadline, async {
                        tokio::select! {
                            biased;
                            Some(incoming) = self.hazards.recv() => Some(incoming),
                            Some(incoming) = self.summaries.recv() => Some(incoming),
                            else => None,
                        }
                    })
                    .await;
                    match next {
                        Ok(Some(incoming)) => {
                            let urgent = is_urgent(&incoming.checked);
                            batch.push(incoming);
                            if urgent {
                                break;
                            }
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            self.commit(&mut batch).await;
        }
        tracing::debug!("ingest writer stopped");
    }

    async fn commit(&mut self, batch: &mut Vec<Incoming>) {
        let mut checked: Vec<(Checked, i64)> = Vec::with_capacity(batch.len());
        let mut deliveries: Vec<Delivery> = Vec::with_capacity(batch.len());
        let mut promises: Vec<(Instant, oneshot::Sender<()>)> = Vec::with_capacity(batch.len());
        for incoming in batch.drain(..) {
            promises.push((incoming.received, incoming.committed));
            if let Checked::Rejected(rejected) = &incoming.checked {
                // The copy of a bad event is the events session's business:
                // it is refused (and kept in quarantine) once, from there.
                if incoming.delivery == Delivery::Copy {
                    continue;
                }
                metrics::counter!(m::REJECTED, "reason" => rejected.reason).increment(1);
                if let Some(suppressed) = self.log.admit(rejected.reason, Instant::now()) {
                    tracing::warn!(topic = %rejected.topic, reason = rejected.reason, suppressed, "rejected: {}", rejected.detail);
                }
            }
            checked.push((incoming.checked, incoming.received_at));
            deliveries.push(incoming.delivery);
        }
        let mut retry_delay = Duration::from_millis(100);
        let outcome = loop {
            let started = Instant::now();
            match commit_batch(&self.store, &self.policy, &checked).await {
                Ok(outcome) => {
                    metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                    if self.store.storage().room_again() {
                        metrics::gauge!(m::STORAGE_FULL).set(0.0);
                        tracing::warn!("the database has room again: ingest stores and acknowledges again");
                    }
                    break outcome;
                }
                Err(error) => {
                    // Design: never acknowledge what is not stored. The
                    // senders wait (and the broker keeps the messages) until
                    // the database is back — or, when the disk is full, until
                    // space is freed: the batch is retried as it is, so
                    // ingest goes on by itself.
                    if error.is_storage_full() && self.store.storage().full_at(anxin_store::now_ms()) {
                        metrics::gauge!(m::STORAGE_FULL).set(1.0);
                        tracing::error!(
                            "the database has no room to write (disk full): messages are not acknowledged \
                             and wait on the devices and the broker; free space on the data disk and ingest \
                             resumes by itself"
                        );
                    }
                    tracing::error!(%error, batch = promises.len(), "commit failed; retrying in {retry_delay:?}");
                    metrics::counter!(m::COMMIT_FAILURES).increment(1);
                    tokio::time::sleep(retry_delay).await;
                    retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        let duplicates = outcome.duplicates.iter().filter(|&&index| deliveries[index] == Delivery::Single).count();
        metrics::histogram!(m::BATCH_SIZE).record(promises.len() as f64);
        metrics::counter!(m::STORED).increment(outcome.stored);
        metrics::counter!(m::DUPLICATES).increment(duplicates as u64);
        metrics::counter!(m::STATUSES).increment(outcome.statuses);
        self.progress.committed(promises.len() as u64, outcome.stored);
        for (received, committed) in promises {
            metrics::histogram!(m::ACK_LAG_SECONDS).record(received.elapsed().as_secs_f64());
            let _ = committed.send(());
        }
    }
}
