//! Ingest: the one core every broker path feeds.
//!
//! check (pure) → batch → commit in one transaction (dedup on
//! `(device, boot, seq)` there) → acknowledge. A message is acknowledged to
//! its sender — a PUBACK from the embedded broker, a manual ack to an external
//! one — only after the transaction holding it committed, so a crash at any
//! point loses nothing: the unacknowledged message is delivered again, and the
//! redelivery is a no-op.
//!
//! Invariants:
//! - Bad input is a normal outcome: counted by reason, logged with a rate
//!   limit, quarantined, acknowledged (it would only come back), and never
//!   stops or slows the good messages batched with it.
//! - A failed commit is retried with backoff, never skipped: nothing is
//!   acknowledged that is not stored.
//! - Batches commit by size or by a short deadline, whichever comes first.
//! - Events (smoke, help, doors, tamper) have a lane of their own and commit
//!   ahead of queued summaries: a batch with an event in it commits at once.

pub mod check;
mod log_limit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::metrics as m;
use crate::store::{Store, StoredMessage};
pub use check::{Accepted, Checked, Rejected, check};
use log_limit::LogLimiter;

/// Batching knobs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Commit when this many messages are waiting…
    pub batch_max: usize,
    /// …or when the oldest has waited this long.
    pub batch_deadline: Duration,
    /// Messages that may wait for a batch before senders are slowed down.
    pub queue: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { batch_max: 512, batch_deadline: Duration::from_millis(5), queue: 16_384 }
    }
}

/// One message from a broker path, with the promise to tell it when the
/// message is durable.
#[derive(Debug)]
struct Incoming {
    topic: String,
    payload: Vec<u8>,
    received_at: i64,
    received: Instant,
    committed: oneshot::Sender<()>,
}

/// The sending side of ingest; cheap to clone, one per broker path.
#[derive(Debug, Clone)]
pub struct Ingest {
    sender: mpsc::Sender<Incoming>,
    /// Events (smoke, help, doors, tamper): a lane of their own, committed
    /// ahead of the summaries queued before them.
    urgent: mpsc::Sender<Incoming>,
    stored: broadcast::Sender<Arc<[StoredMessage]>>,
}

/// Events are few and matter now; summaries are many and can wait a batch.
fn is_urgent(topic: &str) -> bool {
    topic.ends_with("/event")
}

/// Resolves when the message is committed. If the gateway shuts down first,
/// it resolves with an error and the message must not be acknowledged.
pub type Committed = oneshot::Receiver<()>;

#[derive(Debug, thiserror::Error)]
#[error("ingest has stopped")]
pub struct IngestStopped;

impl Ingest {
    /// Starts the batch writer. It runs until every `Ingest` clone is dropped,
    /// then commits what it holds and ends.
    pub fn start(store: Store, config: IngestConfig) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(config.queue);
        let (urgent, urgent_receiver) = mpsc::channel(config.queue);
        let (stored, _) = broadcast::channel(1_024);
        let writer = Writer {
            store,
            config,
            receiver,
            urgent: urgent_receiver,
            stored: stored.clone(),
            log: LogLimiter::new(Duration::from_secs(60)),
        };
        (Ingest { sender, urgent, stored }, tokio::spawn(writer.run()))
    }

    /// Hands a received message to ingest; `received_at` is the gateway's
    /// clock (UTC ms), never the device's.
    pub async fn submit(&self, topic: String, payload: Vec<u8>, received_at: i64) -> Result<Committed, IngestStopped> {
        let (committed, receiver) = oneshot::channel();
        let lane = if is_urgent(&topic) { &self.urgent } else { &self.sender };
        let incoming = Incoming { topic, payload, received_at, received: Instant::now(), committed };
        lane.send(incoming).await.map_err(|_| IngestStopped)?;
        metrics::counter!(m::RECEIVED).increment(1);
        Ok(receiver)
    }

    /// New events and summaries, after they are durable (for monitors and the console).
    pub fn subscribe_stored(&self) -> broadcast::Receiver<Arc<[StoredMessage]>> {
        self.stored.subscribe()
    }
}

struct Writer {
    store: Store,
    config: IngestConfig,
    receiver: mpsc::Receiver<Incoming>,
    urgent: mpsc::Receiver<Incoming>,
    stored: broadcast::Sender<Arc<[StoredMessage]>>,
    log: LogLimiter,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.config.batch_max);
        loop {
            // Design: events first. A batch that holds an event commits as
            // soon as the waiting events are in it, without filling up with
            // summaries, so a smoke alarm waits at most for the commit in
            // progress, not for the queue of summaries ahead of it.
            let first = tokio::select! {
                biased;
                Some(incoming) = self.urgent.recv() => incoming,
                Some(incoming) = self.receiver.recv() => incoming,
                else => break,
            };
            let urgent = is_urgent(&first.topic);
            batch.push(first);
            while batch.len() < self.config.batch_max {
                match self.urgent.try_recv() {
                    Ok(incoming) => batch.push(incoming),
                    Err(_) => break,
                }
            }
            if !urgent {
                let deadline = tokio::time::Instant::now() + self.config.batch_deadline;
                while batch.len() < self.config.batch_max {
                    let next = tokio::time::timeout_at(deadline, async {
                        tokio::select! {
                            biased;
                            Some(incoming) = self.urgent.recv() => Some(incoming),
                            Some(incoming) = self.receiver.recv() => Some(incoming),
                            else => None,
                        }
                    })
                    .await;
                    match next {
                        Ok(Some(incoming)) => {
                            let urgent = is_urgent(&incoming.topic);
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
        let checked: Vec<(Checked, i64)> =
            batch.iter().map(|incoming| (check(&incoming.topic, &incoming.payload), incoming.received_at)).collect();
        for (checked, _) in &checked {
            if let Checked::Rejected(rejected) = checked {
                metrics::counter!(m::REJECTED, "reason" => rejected.reason).increment(1);
                if let Some(suppressed) = self.log.admit(rejected.reason, Instant::now()) {
                    tracing::warn!(topic = %rejected.topic, reason = rejected.reason, suppressed, "rejected: {}", rejected.detail);
                }
            }
        }
        let mut retry_delay = Duration::from_millis(100);
        let outcome = loop {
            let started = Instant::now();
            match self.store.commit_batch(&checked).await {
                Ok(outcome) => {
                    metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                    break outcome;
                }
                Err(error) => {
                    // Design: never acknowledge what is not stored. The
                    // senders wait (and the broker keeps the messages) until
                    // the database is back.
                    tracing::error!(%error, batch = batch.len(), "commit failed; retrying in {retry_delay:?}");
                    metrics::counter!(m::COMMIT_FAILURES).increment(1);
                    tokio::time::sleep(retry_delay).await;
                    retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        metrics::histogram!(m::BATCH_SIZE).record(batch.len() as f64);
        metrics::counter!(m::STORED).increment(outcome.stored.len() as u64);
        metrics::counter!(m::DUPLICATES).increment(outcome.duplicates);
        metrics::counter!(m::STATUSES).increment(outcome.statuses);
        for incoming in batch.drain(..) {
            metrics::histogram!(m::ACK_LAG_SECONDS).record(incoming.received.elapsed().as_secs_f64());
            let _ = incoming.committed.send(());
        }
        if !outcome.stored.is_empty() {
            let _ = self.stored.send(outcome.stored.into());
        }
    }
}
