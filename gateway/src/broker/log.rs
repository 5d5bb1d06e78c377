//! The province's durable log (issue 20): NATS JetStream between the MQTT
//! edges that devices connect to and the store writers.
//!
//! An edge appends each checked device message to one stream,
//! `ANXIN_INGEST`, replicated on `replicas` nodes (three in a cluster); the
//! append's acknowledgement comes once a quorum of them has it, and only then
//! does the edge acknowledge the device. Store writers consume the stream as
//! one group (a durable pull consumer per lane, shared by every writer) and
//! acknowledge a message to the log only after the database transaction
//! holding it committed. A message the log handed out and never got an
//! acknowledgement for (a writer killed, an ack lost) is handed out again
//! after `ACK_WAIT`; the store's key `(device_id, boot, seq)` makes the
//! second copy a no-op, so every message is stored exactly once.
//!
//! Two lanes, as in-process: hazards (a smoke alarm, the help button) on
//! `anxin.ingest.hazards` and everything else on `anxin.ingest.bulk`, each
//! with its own consumer, so a smoke alarm is never behind a backlog of
//! summaries. The stream's retention is a work queue: a message acknowledged
//! by its lane's consumer is gone from the log, so the log holds only what is
//! not yet stored.
//!
//! Debian 12's nats-server (2.9.10) is the oldest server this must work
//! with: async-nats is built without its `server_2_10` features, and every
//! consumer has one filter subject.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::ingest::{Checked, Committed, Ingest, is_urgent};

/// The stream every edge appends to.
pub const STREAM: &str = "ANXIN_INGEST";
/// Hazards' subject (see [`is_urgent`]).
pub const HAZARDS: &str = "anxin.ingest.hazards";
/// Everything else: summaries, statuses, other events, bad input.
pub const BULK: &str = "anxin.ingest.bulk";
/// Each lane's consumer, shared by every writer, and its subject.
const LANES: [(&str, &str); 2] = [("writers-hazards", HAZARDS), ("writers-bulk", BULK)];
/// The device's MQTT topic, as the edge received it.
pub const TOPIC_HEADER: &str = "Anxin-Topic";
/// When the edge received it (UTC ms): the message's `received_at`.
pub const RECEIVED_HEADER: &str = "Anxin-Received-At";
/// How long the log waits, by default, for a writer's acknowledgement
/// before handing the message out again.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long the log remembers a message id to drop a device's resend of a
/// message it already holds.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Where the log is and how it is kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The cluster's nodes (`nats://HOST:PORT`); the client moves between them.
    pub servers: Vec<String>,
    /// Copies of the stream: 3 in a cluster (one node may be lost), 1 alone.
    pub replicas: usize,
    /// Messages a lane's writers may hold unacknowledged, all writers together.
    pub window: usize,
    /// Messages a writer asks for at once.
    pub batch: usize,
    /// How long the log waits for a writer's acknowledgement before handing
    /// the message to another ([`ACK_WAIT`]).
    pub ack_wait: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            servers: vec!["nats://127.0.0.1:4222".into()],
            replicas: 3,
            window: 8_192,
            batch: 512,
            ack_wait: ACK_WAIT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot reach the log at {servers}: {source}")]
    Connect {
        servers: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("the log's stream {STREAM}: {0}")]
    Stream(String),
    #[error("the log did not take the message: {0}")]
    Append(String),
    #[error("ingest has stopped")]
    IngestStopped,
}

/// A connection to the log, shared by the tasks of one process.
#[derive(Debug, Clone)]
pub struct Log {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    config: LogConfig,
}

impl Log {
    /// Connects and makes sure the stream and the writers' consumers exist
    /// (the first process to start creates them; the rest find them).
    pub async fn open(config: LogConfig) -> Result<Log, LogError> {
        let client = async_nats::ConnectOptions::new()
            .name("anxin")
            .retry_on_initial_connect()
            .connect(config.servers.as_slice())
            .await
            .map_err(|source| LogError::Connect { servers: config.servers.join(","), source })?;
        let jetstream = jetstream::new(client);
        let wanted = stream::Config {
            name: STREAM.into(),
            subjects: vec![HAZARDS.into(), BULK.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        // A cluster coming back (nodes restarting, a leader being elected)
        // answers nothing for a while: wait for it, saying so, rather than
        // exit — an edge or a writer started meanwhile is one less later.
        let stream = loop {
            match jetstream.get_or_create_stream(wanted.clone()).await {
                Ok(stream) => break stream,
                Err(error) => {
                    tracing::warn!(%error, "waiting for the cluster log's stream {STREAM}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        Ok(Log { jetstream, stream, config })
    }

    /// Appends a device message and waits until the log's quorum holds it.
    pub async fn append(&self, topic: &str, payload: &[u8], received_at: i64) -> Result<(), LogError> {
        self.append_in_order(topic, payload, received_at).await?.await
    }

    /// An edge's append of a device message, in two steps so that a
    /// connection's publishes reach the log in the order they came: this
    /// call queues the message on the log's connection (in order), and the
    /// future it returns resolves once the quorum holds it — the moment the
    /// edge may PUBACK. The lane and the id come from the message itself.
    pub async fn append_in_order(
        &self,
        topic: &str,
        payload: &[u8],
        received_at: i64,
    ) -> Result<impl Future<Output = Result<(), LogError>> + Send + 'static, LogError> {
        let checked = crate::ingest::check(topic, payload);
        let id = match &checked {
            Checked::Accepted(accepted) => match &accepted.payload {
                anxin_protocol::Payload::Event(event) => Some((event.boot, event.seq)),
                anxin_protocol::Payload::Summary(summary) => Some((summary.boot, summary.seq)),
                anxin_protocol::Payload::Status(_) => None,
            }
            .map(|(boot, seq)| format!("{}/{boot}/{seq}", accepted.device_id.as_str())),
            Checked::Rejected(_) => None,
        };
        let mut headers = HeaderMap::new();
        headers.insert(TOPIC_HEADER, topic);
        headers.insert(RECEIVED_HEADER, received_at.to_string().as_str());
        if let Some(id) = &id {
            headers.insert("Nats-Msg-Id", id.as_str());
        }
        let subject = if is_urgent(&checked) { HAZARDS } else { BULK };
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload.to_vec().into())
            .await
            .map_err(|e| LogError::Append(e.to_string()))?;
        Ok(async move {
            ack.await.map_err(|e| LogError::Append(e.to_string()))?;
            Ok(())
        })
    }

    /// Each lane's consumer as the log sees it now (hazards, bulk).
    async fn lanes(&self) -> Result<Vec<consumer::Info>, LogError> {
        let mut infos = Vec::with_capacity(LANES.len());
        for (name, _) in LANES {
            let mut consumer: consumer::PullConsumer =
                self.stream.get_consumer(name).await.map_err(|e| LogError::Stream(e.to_string()))?;
            infos.push(consumer.info().await.map_err(|e| LogError::Stream(e.to_string()))?.clone());
        }
        Ok(infos)
    }

    /// Messages the writers have not yet acknowledged, both lanes together:
    /// not yet handed out, or handed out and not acknowledged. Counted by the
    /// lanes' consumers, not by the stream: nats-server 2.9 may keep an
    /// acknowledged message of a replicated work queue in the stream after a
    /// leader change (nats-io/nats-server#6140, fixed in 2.11), which no
    /// writer will be handed again (seen here: all 2,001 stored, 1 left in
    /// the stream).
    pub async fn pending(&self) -> Result<u64, LogError> {
        Ok(self.lanes().await?.iter().map(|lane| lane.num_pending + lane.num_ack_pending as u64).sum())
    }

    /// Deliveries the log has made to writers, both lanes together: one per
    /// message, and one more each time a message went unacknowledged (a
    /// writer lost) and was handed out again.
    pub async fn deliveries(&self) -> Result<u64, LogError> {
        Ok(self.lanes().await?.iter().map(|lane| lane.delivered.consumer_sequence).sum())
    }

    /// Pull requests waiting on each lane (hazards, bulk): one per writer
    /// reading it and not yet served.
    pub async fn waiting_pulls(&self) -> Result<Vec<usize>, LogError> {
        Ok(self.lanes().await?.iter().map(|lane| lane.num_waiting).collect())
    }

    /// Consumes both lanes into `ingest` until ingest stops or the
    /// returned handle is dropped; each message is acknowledged to the log
    /// after its commit. Several processes may run this at once: they share
    /// the lanes' consumers.
    pub fn consume(&self, ingest: Ingest) -> Consuming {
        let lanes =
            LANES.iter().map(|&(name, subject)| tokio::spawn(self.clone().consume_lane(name, subject, ingest.clone())));
        Consuming { lanes: lanes.collect() }
    }

    async fn consume_lane(self, name: &'static str, subject: &'static str, ingest: Ingest) -> Result<(), LogError> {
        // Acknowledgements leave in the order the messages arrived, each
        // once its commit is done; the queue between is the window, so a
        // writer whose database is slow stops asking the log for more.
        let (pending, mut settled) = mpsc::channel::<(Committed, jetstream::Message)>(self.config.window);
        let acker = AbortOnDrop(tokio::spawn(async move {
            while let Some((committed, message)) = settled.recv().await {
                if committed.await.is_err() {
                    // Ingest stopped before its commit: not acknowledged, so
                    // the log hands it out again after the ack wait.
                    return;
                }
                // A lost acknowledgement is a redelivery, which the store drops.
                if let Err(error) = message.ack().await {
                    tracing::debug!(%error, "acknowledgement to the log lost");
                }
            }
        }));
        // Every failure to reach the log — a node lost, its leader moving,
        // a pull expiring unanswered — ends in a fresh pull after a pause;
        // only ingest stopping ends the lane.
        loop {
            match self.pull(name, subject, &ingest, &pending).await {
                Err(LogError::IngestStopped) => return Err(LogError::IngestStopped),
                Err(error) => tracing::warn!(%error, lane = name, "reading the log; pulling again"),
                Ok(()) => {}
            }
            if acker.0.is_finished() {
                return Err(LogError::IngestStopped);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// One pull subscription on the lane's consumer, until it fails.
    async fn pull(
        &self,
        name: &'static str,
        subject: &'static str,
        ingest: &Ingest,
        pending: &mpsc::Sender<(Committed, jetstream::Message)>,
    ) -> Result<(), LogError> {
        let consumer: consumer::PullConsumer = self
            .stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.into()),
                    filter_subject: subject.into(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_ack_pending: self.config.window as i64,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| LogError::Stream(e.to_string()))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| LogError::Stream(e.to_string()))?;
        while let Some(next) = messages.next().await {
            let message = next.map_err(|e| LogError::Stream(e.to_string()))?;
            let headers = message.headers.as_ref();
            let header = |key: &str| headers.and_then(|h| h.get(key)).map(|v| v.as_str().to_string());
            let topic = header(TOPIC_HEADER).unwrap_or_default();
            let received_at = header(RECEIVED_HEADER).and_then(|v| v.parse().ok()).unwrap_or_else(anxin_store::now_ms);
            let checked: Checked = crate::ingest::check(&topic, &message.payload);
            let slot = ingest.reserve(is_urgent(&checked)).await.map_err(|_| LogError::IngestStopped)?;
            let committed = slot.submit(checked, received_at, crate::ingest::Delivery::Single);
            pending.send((committed, message)).await.map_err(|_| LogError::IngestStopped)?;
        }
        Ok(())
    }
}

/// A writer's consumption of the log: both lanes, stopped when dropped
/// (what the log handed out and was not acknowledged goes to another writer
/// after the ack wait).
#[derive(Debug)]
pub struct Consuming {
    lanes: Vec<tokio::task::JoinHandle<Result<(), LogError>>>,
}

impl Consuming {
    /// Waits until a lane ends: ingest stopped, or the stream was deleted.
    pub async fn ended(mut self) -> Result<(), LogError> {
        let lanes = std::mem::take(&mut self.lanes);
        let (ended, _, rest) = futures_util::future::select_all(lanes).await;
        for lane in rest {
            lane.abort();
        }
        ended.map_err(|e| LogError::Stream(e.to_string()))?
    }
}

impl Drop for Consuming {
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.abort();
        }
    }
}

/// A task that ends with its owner.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
