//! The embedded broker for `anxin serve`: mqtt5's broker in-process (the
//! patched 0.49 in `vendor/mqtt5`).
//!
//! Design: the publish hook submits each device message to ingest and
//! *defers* its decision (`PublishAction::Defer`) to the moment the batch
//! holding it commits: the connection goes on reading, so one connection
//! keeps many publishes in flight (up to the broker's Receive Maximum) and
//! they commit in batches with everyone else's, while the broker sends the
//! PUBACKs in arrival order, each after its commit — the same guarantee as
//! manual acks with an external broker, without a loopback hop. What cannot
//! be stored (ingest stopping) is refused: an MQTT 5 node gets a PUBACK with
//! an error reason code, an MQTT 3.1.1 node loses its connection; neither
//! ever gets a success for a message that is not committed. Broker and
//! gateway live and die together: if the process dies first, the node never
//! got its PUBACK and sends the message again.
//!
//! Nobody connects without an identity ([`super::auth`]): a device speaks
//! only for itself, a bridge for its devices, within its rate; a device
//! leaves a retained message only on its own status topic.
//!
//! The broker publishes a Last Will itself, without the publish hook; the
//! hook therefore remembers each client's will at connect (when it may
//! publish there) and ingests it when the client disconnects unexpectedly.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt5::broker::MqttBroker;
use mqtt5::broker::config::{BrokerConfig, StorageBackend, StorageConfig};
use mqtt5::broker::events::{
    BrokerEventHandler, ClientConnectEvent, ClientDisconnectEvent, ClientPublishEvent, PublishAction,
};
use mqtt5::protocol::v5::reason_codes::ReasonCode;

use super::auth::{BrokerAuth, Refusal};
use crate::ingest::Ingest;
use crate::metrics::{BROKER_CONNECTIONS, BROKER_CONNECTIONS_REFUSED, BROKER_RETAINED};
use anxin_store::now_ms;

/// Publishes one connection may have waiting for their commit (the broker's
/// Receive Maximum): enough to cover a commit's latency at a bridge's rate,
/// few enough that a connection holds little memory.
pub const RECEIVE_MAXIMUM: u16 = 512;

/// Settings of the embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    /// Where to listen for plain MQTT; loopback unless the operator says otherwise.
    pub listen: SocketAddr,
    /// Who may connect, publish and subscribe.
    pub auth: Arc<BrokerAuth>,
    /// A TLS listener too (MQTT over TLS, e.g. on 8883).
    pub tls: Option<BrokerTls>,
    /// How much any client may take.
    pub limits: BrokerLimits,
}

/// What the broker lets clients take; each a setting (`anxin serve --help`)
/// with a counter on /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    /// Clients connected at once; past it a new connection is closed at once
    /// (`anxin_broker_connections_refused_total`) rather than starving the
    /// ones already in.
    pub max_connections: usize,
    /// Retained messages held (a device's status each).
    pub max_retained: usize,
    /// Largest retained message; the contract's status is at most 512 bytes.
    pub max_retained_bytes: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits { max_connections: 20_000, max_retained: 100_000, max_retained_bytes: 1_024 }
    }
}

/// The embedded broker's TLS listener: where, and its certificate chain and
/// private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTls {
    pub listen: SocketAddr,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedBrokerError {
    #[error("cannot listen for MQTT on {listen}: {reason}")]
    Bind { listen: SocketAddr, reason: String },
    #[error("cannot use {path} for MQTT over TLS: {reason}")]
    Tls { path: std::path::PathBuf, reason: String },
}

/// A running embedded broker.
pub struct RunningBroker {
    pub local_addr: SocketAddr,
    /// Where the TLS listener is, when there is one.
    pub tls_addr: Option<SocketAddr>,
    shutdown: mqtt5::broker::server::BrokerShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningBroker").field("local_addr", &self.local_addr).finish()
    }
}

impl RunningBroker {
    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        self.shutdown.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

impl EmbeddedBroker {
    /// Binds the listener (so a taken port fails here, with its address) and
    /// starts serving.
    pub async fn start(&self, ingest: Ingest) -> Result<RunningBroker, EmbeddedBrokerError> {
        self.start_with(Some(Target::Ingest(ingest))).await
    }

    /// The broker as a province's edge: each device message is appended to
    /// the cluster's durable log and acknowledged to the device once the
    /// log's quorum holds it.
    pub async fn start_edge(&self, log: super::log::Log) -> Result<RunningBroker, EmbeddedBrokerError> {
        self.start_with(Some(Target::Log(Box::new(log)))).await
    }

    /// The same broker with no ingest hook: a plain broker, for measuring the
    /// ceiling that ingest is compared against (`anxin bench ingest`).
    pub async fn start_bare(&self) -> Result<RunningBroker, EmbeddedBrokerError> {
        self.start_with(None).await
    }

    async fn start_with(&self, target: Option<Target>) -> Result<RunningBroker, EmbeddedBrokerError> {
        let storage = StorageConfig {
            // The database is the durable store; queued QoS 1 deliveries to
            // other subscribers need not survive a restart.
            backend: StorageBackend::Memory,
            enable_persistence: false,
            ..StorageConfig::default()
        };
        // mqtt5 reports a taken port in several lines; probe first for a clear one.
        if self.listen.port() != 0 {
            std::net::TcpListener::bind(self.listen)
                .map_err(|error| EmbeddedBrokerError::Bind { listen: self.listen, reason: error.to_string() })?;
        }
        if let Some(tls) = &self.tls {
            check_tls_files(tls)?;
            if tls.listen.port() != 0 {
                std::net::TcpListener::bind(tls.listen)
                    .map_err(|error| EmbeddedBrokerError::Bind { listen: tls.listen, reason: error.to_string() })?;
            }
        }
        let mut config = BrokerConfig::default()
            .with_bind_address(self.listen)
            .with_storage(storage)
            .with_max_packet_size(64 * 1024)
            .with_server_receive_maximum(RECEIVE_MAXIMUM)
            .with_max_clients(self.limits.max_connections)
            .with_sys_topics_enabled(false);
        if let Some(tls) = &self.tls {
            config = config.with_tls(
                mqtt5::broker::config::TlsConfig::new(tls.cert.clone(), tls.key.clone()).with_bind_address(tls.listen),
            );
        }
        if let Some(target) = target {
            config = config.with_event_handler(Arc::new(IngestHook {
                target,
                auth: self.auth.clone(),
                wills: Mutex::new(HashMap::new()),
                retained: Mutex::new(HashSet::new()),
                limits: self.limits,
            }));
        }
        let mut broker = MqttBroker::with_config(config)
            .await
            .map_err(|error| EmbeddedBrokerError::Bind { listen: self.listen, reason: error.to_string() })?
            .with_auth_provider(self.auth.clone());
        let local_addr = broker.local_addr().unwrap_or(self.listen);
        let tls_addr = broker.tls_local_addr();
        if let (Some(tls), None) = (&self.tls, tls_addr) {
            // mqtt5 only warns and goes on without TLS; a node would then find nothing there.
            return Err(EmbeddedBrokerError::Bind {
                listen: tls.listen,
                reason: "the TLS listener did not start".into(),
            });
        }
        let shutdown = broker.shutdown_handle();
        let monitor = broker.resource_monitor();
        let gauges = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                metrics::gauge!(BROKER_CONNECTIONS).set(monitor.connection_count() as f64);
                metrics::counter!(BROKER_CONNECTIONS_REFUSED).absolute(monitor.refused_connections());
            }
        });
        let task = tokio::spawn(async move {
            let _gauges = AbortOnDrop(gauges);
            if let Err(error) = broker.run().await {
                tracing::error!(%error, "embedded broker stopped");
            }
        });
        Ok(RunningBroker { local_addr, tls_addr, shutdown, task })
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the certificate chain and key once, so a wrong path or a file that
/// is not PEM is named at start-up.
fn check_tls_files(tls: &BrokerTls) -> Result<(), EmbeddedBrokerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &std::path::Path, reason: String| EmbeddedBrokerError::Tls { path: path.to_path_buf(), reason };
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certificates| certificates.collect())
        .map_err(|error| bad(&tls.cert, error.to_string()))?;
    if certificates.is_empty() {
        return Err(bad(&tls.cert, "it holds no PEM certificate".into()));
    }
    PrivateKeyDer::from_pem_file(&tls.key).map_err(|error| bad(&tls.key, format!("no PEM private key ({error})")))?;
    Ok(())
}

/// Ingest stopped before the message was committed: refuse it, so the node
/// keeps it and sends it again.
fn not_stored() -> PublishAction {
    PublishAction::Refuse(ReasonCode::ImplementationSpecificError)
}

/// A client's Last Will: topic and payload.
type Will = (Arc<str>, Vec<u8>);

/// Where the hook hands device messages: ingest in this process (`serve`),
/// or a province's durable log (`edge`).
enum Target {
    Ingest(Ingest),
    Log(Box<super::log::Log>),
}

struct IngestHook {
    target: Target,
    auth: Arc<BrokerAuth>,
    /// The topics holding a retained message (devices' status topics).
    retained: Mutex<HashSet<Arc<str>>>,
    limits: BrokerLimits,
    /// Each connected device's Last Will, by client id.
    wills: Mutex<HashMap<Arc<str>, Will>>,
}

impl IngestHook {
    fn wills(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Will>> {
        self.wills.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl IngestHook {
    /// Whether `user` may leave a retained message of `size` bytes on `topic`:
    /// only a device on its own status topic, within the limits. An empty
    /// one clears the topic's.
    fn retain(&self, user: Option<&str>, topic: &str, size: usize) -> Result<(), Refusal> {
        if !self.auth.is_own_status(user, topic) {
            return Err(Refusal::RetainedNotAllowed);
        }
        if size > self.limits.max_retained_bytes {
            return Err(Refusal::RetainedLimit);
        }
        let mut retained = self.retained.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if size == 0 {
            retained.remove(topic);
        } else if !retained.contains(topic) {
            if retained.len() >= self.limits.max_retained {
                return Err(Refusal::RetainedLimit);
            }
            retained.insert(Arc::from(topic));
        }
        metrics::gauge!(BROKER_RETAINED).set(retained.len() as f64);
        Ok(())
    }
}

impl BrokerEventHandler for IngestHook {
    fn on_client_connect<'a>(&'a self, event: ClientConnectEvent) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let user = event.user_id.as_deref();
            match (event.will_topic, event.will_payload) {
                (Some(topic), Some(payload))
                    if topic.starts_with("anxin/v1/dev/") && self.auth.may_publish(user, &topic).await.is_ok() =>
                {
                    self.wills().insert(event.client_id, (topic, payload.to_vec()));
                }
                _ => {
                    self.wills().remove(&event.client_id);
                }
            }
        })
    }

    fn on_client_publish<'a>(
        &'a self,
        event: ClientPublishEvent,
    ) -> Pin<Box<dyn Future<Output = PublishAction> + Send + 'a>> {
        Box::pin(async move {
            let user = event.user_id.as_deref();
            if event.retain
                && let Err(refusal) = self.retain(user, &event.topic, event.payload.len())
            {
                refusal.count();
                return PublishAction::Refuse(match refusal {
                    Refusal::RetainedNotAllowed => ReasonCode::NotAuthorized,
                    _ => ReasonCode::QuotaExceeded,
                });
            }
            if !event.topic.starts_with("anxin/v1/dev/") {
                // Not a device topic: the process's own alert topics (the
                // auth provider let nothing else through). Routed, not ingested.
                return PublishAction::Continue;
            }
            if !self.auth.take_publish(user) {
                Refusal::RateLimited.count();
                return PublishAction::Refuse(ReasonCode::QuotaExceeded);
            }
            let ingest = match &self.target {
                Target::Ingest(ingest) => ingest,
                Target::Log(log) => {
                    // Design: the append is queued in arrival order now; the
                    // PUBACK waits for the quorum, without holding up the
                    // connection.
                    return match log.append_in_order(&event.topic, &event.payload, now_ms()).await {
                        Ok(replicated) => PublishAction::Defer(Box::pin(async move {
                            match replicated.await {
                                Ok(()) => PublishAction::Continue,
                                Err(_) => not_stored(),
                            }
                        })),
                        Err(_) => not_stored(),
                    };
                }
            };
            let progress = ingest.progress().clone();
            progress.received();
            let settle = progress.settle_on_drop();
            match ingest.submit(&event.topic, &event.payload, now_ms()).await {
                // Design: decide at the commit, without holding up the connection.
                Ok(committed) => PublishAction::Defer(Box::pin(async move {
                    let _settle = settle;
                    match committed.await {
                        Ok(()) => PublishAction::Continue,
                        Err(_) => not_stored(),
                    }
                })),
                Err(_) => not_stored(),
            }
        })
    }

    fn on_client_disconnect<'a>(
        &'a self,
        event: ClientDisconnectEvent,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let will = self.wills().remove(&event.client_id);
            let (true, Some((topic, payload))) = (event.unexpected, will) else { return };
            match &self.target {
                Target::Ingest(ingest) => {
                    if let Ok(committed) = ingest.submit(&topic, &payload, now_ms()).await {
                        let _ = committed.await;
                    }
                }
                Target::Log(log) => {
                    if let Ok(replicated) = log.append_in_order(&topic, &payload, now_ms()).await {
                        let _ = replicated.await;
                    }
                }
            }
        })
    }
}
