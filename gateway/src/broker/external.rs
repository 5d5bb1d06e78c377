//! Ingest from an external broker through rumqttc (MQTT 5).
//!
//! rumqttc leaves three things to its user, done here: reconnecting with
//! backoff (its `poll` fails in a tight loop while the broker is down),
//! resubscribing on every ConnAck (it does not restore subscriptions), and
//! acknowledging in order after commit (manual acks) without ever stalling
//! the event loop.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::{DEVICE_EVENTS, DEVICE_TOPICS};
use crate::ingest::progress::SettleOnDrop;
use crate::ingest::{Checked, Delivery, Ingest, check, is_urgent};
use crate::metrics as m;
use anxin_store::now_ms;

/// How to reach the external broker.
#[derive(Debug, Clone)]
pub struct ExternalBroker {
    pub host: String,
    pub port: u16,
    /// `None`: plain TCP. `Some`: TLS, verifying the broker's certificate.
    pub tls: Option<Tls>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Fixed per gateway, so its persistent session survives restarts.
    pub client_id: String,
    /// How long the broker keeps this gateway's session while it is away.
    pub session_expiry: Duration,
    /// `Some(group)`: join the MQTT v5 shared subscription `$share/{group}/…`,
    /// so several gateways share the load. `None`: a plain subscription.
    ///
    /// Measured with Mosquitto 2.0.11: a broker restart restores a persistent
    /// session's plain subscriptions but not its shared ones, so messages
    /// published between the restart and the gateways' resubscription (a few
    /// seconds) reach no one. A single gateway should therefore not share.
    pub share_group: Option<String>,
}

impl ExternalBroker {
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            tls: None,
            username: None,
            password: None,
            client_id: client_id.into(),
            session_expiry: Duration::from_secs(7 * 24 * 3_600),
            share_group: None,
        }
    }

    /// The main subscription: shared within the group, or plain.
    pub fn filter(&self) -> String {
        Lane::Main.filter(self)
    }
}

/// TLS to the broker.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM file of the CA that signed the broker's certificate; `None`: the
    /// system's trusted roots.
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("broker {0:?} is not of the form mqtt://HOST:PORT or mqtts://HOST:PORT")]
    Shape(String),
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: std::path::PathBuf, reason: String },
    #[error("the CA file {0} holds no certificate")]
    NoCertificate(std::path::PathBuf),
    #[error("no trusted root certificates found on this system; pass --broker-ca")]
    NoSystemRoots,
}

impl ExternalBroker {
    /// `mqtt://HOST[:1883]` or `mqtts://HOST[:8883]` (TLS).
    pub fn from_url(url: &str, client_id: impl Into<String>) -> Result<Self, BrokerUrlError> {
        let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (rest, true, 8883)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (rest, false, 1883)
        } else {
            return Err(BrokerUrlError::Shape(url.into()));
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| BrokerUrlError::Shape(url.into()))?),
            None => (rest, default_port),
        };
        if host.is_empty() || host.contains('/') {
            return Err(BrokerUrlError::Shape(url.into()));
        }
        let mut broker = Self::new(host, port, client_id);
        broker.tls = tls.then(Tls::default);
        Ok(broker)
    }

    /// The rustls client configuration for `tls` (ring as the crypto provider).
    pub fn tls_config(tls: &Tls) -> Result<rustls::ClientConfig, BrokerUrlError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|certificates| certificates.collect())
                    .map_err(|error| BrokerUrlError::CaFile { path: path.clone(), reason: error.to_string() })?;
                if certificates.is_empty() {
                    return Err(BrokerUrlError::NoCertificate(path.clone()));
                }
                roots.add_parsable_certificates(certificates);
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if roots.is_empty() {
                    return Err(BrokerUrlError::NoSystemRoots);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| BrokerUrlError::CaFile { path: Default::default(), reason: error.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

/// Most messages the broker may have in flight to this gateway, per session
/// (its receive maximum), and the most the gateway holds per session (its
/// window): two full batches.
pub const RECEIVE_MAXIMUM: u16 = 4_096;

/// Requests (acks, mostly) that may wait for the event loop. A message's
/// place in the window comes back when its ack is queued, so queued acks are
/// bounded by what the event loop reads between two of its writes — a few
/// batches; this is far above that, and an ack that still finds no room is
/// logged and left to the broker's redelivery.
const ACK_QUEUE: usize = 1 << 16;

/// The gateway's two sessions with the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Every device message (events included), under the gateway's client id.
    Main,
    /// Device events only, live, under `{client id}-events`: the broker
    /// queues a session's messages in order, so a smoke alarm published while
    /// hundreds of thousands of summaries wait for the main session would
    /// wait behind all of them; on a session of its own it is delivered at
    /// once. That session starts clean every time: what was published while
    /// the gateway was away waits in the main session (in order, nothing
    /// lost), so the fast lane never has a backlog of its own to drain
    /// before a new alarm.
    Events,
}

impl Lane {
    /// Whether the broker keeps this session while the gateway is away.
    fn persistent(self) -> bool {
        self == Lane::Main
    }

    fn client_id(self, broker: &ExternalBroker) -> String {
        self.name(&broker.client_id)
    }

    /// The lane's name from the gateway's: its own for the main lane,
    /// `-events` after it for the events lane. Client ids and usernames
    /// both: with `use_username_as_clientid` (Anxin's Mosquitto settings)
    /// each connection needs a username of its own.
    fn name(self, gateway: &str) -> String {
        match self {
            Lane::Main => gateway.to_string(),
            Lane::Events => format!("{gateway}-events"),
        }
    }

    fn filter(self, broker: &ExternalBroker) -> String {
        let topics = match self {
            Lane::Main => DEVICE_TOPICS,
            Lane::Events => DEVICE_EVENTS,
        };
        match &broker.share_group {
            Some(group) => format!("$share/{group}/{topics}"),
            None => topics.to_string(),
        }
    }

    /// The main session's copy of an event is expected to be a duplicate.
    fn delivery(self, topic: &str) -> Delivery {
        match self {
            Lane::Main if topic.ends_with("/event") => Delivery::Copy,
            _ => Delivery::Single,
        }
    }
}

/// Which of the gateway's two sessions hold their subscription right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subscribed {
    pub main: bool,
    pub events: bool,
}

impl Subscribed {
    pub fn both(&self) -> bool {
        self.main && self.events
    }

    fn set(&mut self, lane: Lane, subscribed: bool) {
        match lane {
            Lane::Main => self.main = subscribed,
            Lane::Events => self.events = subscribed,
        }
    }
}

/// Receives from the broker until `shutdown` turns true, then releases the
/// acks of everything already committed and disconnects. Two sessions run
/// side by side (see [`Lane`]); each message is stored once whichever
/// session brings it first.
pub async fn run(broker: ExternalBroker, ingest: Ingest, shutdown: watch::Receiver<bool>) {
    run_watched(broker, ingest, shutdown, watch::channel(Subscribed::default()).0).await;
}

/// [`run`], saying in `subscribed` which sessions hold their subscription.
pub async fn run_watched(
    broker: ExternalBroker,
    ingest: Ingest,
    shutdown: watch::Receiver<bool>,
    subscribed: watch::Sender<Subscribed>,
) {
    let main = session(broker.clone(), Lane::Main, ingest.clone(), shutdown.clone(), &subscribed);
    let events = session(broker, Lane::Events, ingest, shutdown, &subscribed);
    tokio::join!(main, events);
    metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
}

/// A message read off the connection, on its way to its ack.
struct Taken {
    publish: Publish,
    /// Settles the message in ingest's progress however its wait ends.
    _settle: SettleOnDrop,
    /// Its place in the connection's window, given back with the ack.
    _window: OwnedSemaphorePermit,
}

/// One session: reconnects with backoff until `shutdown`.
///
/// Design: per connection, the event loop is polled by this task alone and
/// waits for nothing but the network and a place in the window; what it
/// reads goes to the connection's acker task, which submits to ingest and,
/// in receive order, sends each ack with `try_ack` (which queues without
/// waiting) once its commit is done, giving the message's place back.
/// Nothing waits on something that needs the waiting task: the acker never
/// waits for the event loop (the request queue holds twice the window, more
/// acks than can ever be owed at once), and places come back without it.
async fn session(
    broker: ExternalBroker,
    lane: Lane,
    ingest: Ingest,
    mut shutdown: watch::Receiver<bool>,
    subscribed: &watch::Sender<Subscribed>,
) {
    let mut backoff = Duration::from_millis(100);
    let where_to = format!("{}:{}", broker.host, broker.port);
    let client_id = lane.client_id(&broker);
    loop {
        // Design: a fresh client per connection. A packet id belongs to one
        // connection; an ack queued on the old one and sent on the new one
        // would acknowledge whatever message the broker gave that id since
        // (rumqttc #849) — a message never stored. With its own client, an old
        // ack dies with its connection.
        let (client, mut eventloop) = connect(&broker, lane);
        // Until the broker accepts the session nothing is owed: waiting for it
        // may be cut short by the shutdown.
        let connected = loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(connack))) => break Ok(connack.session_present),
                    Ok(_) => {}
                    Err(error) => break Err(error),
                },
            }
        };
        match connected {
            Ok(session_present) => {
                tracing::info!(broker = %where_to, client = %client_id, session_present, "connected to the broker");
                if lane == Lane::Main {
                    metrics::gauge!(m::BROKER_CONNECTED).set(1.0);
                }
                backoff = Duration::from_millis(100);
                // Always subscribe: a broker that lost the session would
                // otherwise leave this gateway deaf.
                if let Err(error) = client.try_subscribe(lane.filter(&broker), QoS::AtLeastOnce) {
                    tracing::error!(%error, "cannot queue the subscription");
                }
                let served = serve_connection(lane, client, eventloop, &ingest, &shutdown, subscribed).await;
                subscribed.send_modify(|now| now.set(lane, false));
                let error = match served {
                    Ok(()) => return,
                    Err(error) => error,
                };
                tracing::warn!(broker = %where_to, client = %client_id, %error, "broker connection lost; retrying in {backoff:?}");
            }
            Err(error) => {
                tracing::warn!(broker = %where_to, client = %client_id, %error, "cannot reach the broker; retrying in {backoff:?}");
            }
        }
        if lane == Lane::Main {
            metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Polls one connection until it fails (`Err`) or, after the shutdown, until
/// the acks of what was committed are out and it is closed (`Ok`).
async fn serve_connection(
    lane: Lane,
    client: AsyncClient,
    mut eventloop: rumqttc::v5::EventLoop,
    ingest: &Ingest,
    shutdown: &watch::Receiver<bool>,
    subscribed: &watch::Sender<Subscribed>,
) -> Result<(), rumqttc::v5::ConnectionError> {
    // Design: the window is ours to keep. The broker should send at most
    // RECEIVE_MAXIMUM messages this connection has not acknowledged, but
    // Mosquitto 2.0.11 stops counting once acknowledgements flow (measured:
    // 20,000 unacknowledged messages held by a gateway with a receive
    // maximum of 1,024). So the event loop polls only while it holds a place
    // in the window; a place is given back when its message's ack is queued
    // (by the acker, which never needs the event loop), so waiting for one
    // cannot deadlock, and what the gateway holds stays bounded whatever the
    // broker does. The channel is unbounded for the same reason: the window
    // bounds it.
    let window = Arc::new(Semaphore::new(usize::from(RECEIVE_MAXIMUM)));
    let (taken_sender, taken) = mpsc::unbounded_channel::<Taken>();
    let acker = tokio::spawn(acknowledge(lane, client, taken, ingest.clone(), shutdown.clone()));
    let mut taken_sender = Some(taken_sender);
    let outcome = loop {
        let Ok(place) = Arc::clone(&window).acquire_owned().await else { break Ok(()) };
        // Never cancelled: a request half written would break the stream.
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if *shutdown.borrow() {
                    // Left unacknowledged: the broker delivers it again to the session.
                    taken_sender = None;
                    continue;
                }
                if let Some(sender) = &taken_sender {
                    ingest.progress().received();
                    let settle = ingest.progress().settle_on_drop();
                    let _ = sender.send(Taken { publish, _settle: settle, _window: place });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let granted = ack.return_codes.iter().all(|code| matches!(code, SubscribeReasonCode::Success(_)));
                if !granted {
                    // Not fatal (a later reconnect subscribes again), but the operator must know.
                    tracing::error!(?lane, codes = ?ack.return_codes, "the broker refused the subscription");
                }
                subscribed.send_modify(|now| now.set(lane, granted));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break Ok(()),
            Ok(_) => {
                if *shutdown.borrow() {
                    // The acker finishes with what is committed, then disconnects.
                    taken_sender = None;
                }
            }
            Err(error) => break Err(error),
        }
    };
    drop(taken_sender);
    if outcome.is_ok() {
        // The DISCONNECT is written; give the broker a moment to read it.
        let _ = tokio::time::timeout(Duration::from_secs(1), async { while eventloop.poll().await.is_ok() {} }).await;
    }
    acker.abort();
    outcome
}

/// The acker of one connection: submits what the event loop took, in order,
/// and acknowledges each message once it is committed, in the same order.
/// After the shutdown it waits (10 s at most) for what is submitted, then
/// asks the event loop to disconnect.
async fn acknowledge(
    lane: Lane,
    client: AsyncClient,
    mut taken: mpsc::UnboundedReceiver<Taken>,
    ingest: Ingest,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut to_submit: VecDeque<(Taken, Checked, Delivery)> = VecDeque::new();
    let mut committing: FuturesOrdered<AckWhenCommitted> = FuturesOrdered::new();
    let mut open = true;
    let mut stopping = *shutdown.borrow();
    let mut give_up_at = stopping.then(|| tokio::time::Instant::now() + Duration::from_secs(10));
    loop {
        if stopping && committing.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some((taken, committed)) = committing.next(), if !committing.is_empty() => {
                if committed && let Err(error) = client.try_ack(&taken.publish) {
                    // Cannot happen while the queue holds more than can be
                    // owed; if it does, the broker redelivers.
                    tracing::error!(%error, "cannot queue an acknowledgement");
                }
            }
            slot = ingest.reserve(to_submit.front().is_some_and(|(_, checked, _)| is_urgent(checked))),
                if !to_submit.is_empty() && !stopping =>
            {
                let Ok(slot) = slot else { break };
                let Some((next, checked, delivery)) = to_submit.pop_front() else { continue };
                let committed = slot.submit(checked, now_ms(), delivery);
                committing.push_back(Box::pin(async move { (next, committed.await.is_ok()) }));
            }
            next = taken.recv(), if open => match next {
                Some(next) if !stopping => {
                    // Checked here, beside the commit, rather than on the one writer.
                    let topic = String::from_utf8_lossy(&next.publish.topic);
                    let checked = check(&topic, &next.publish.payload);
                    let delivery = lane.delivery(&topic);
                    to_submit.push_back((next, checked, delivery));
                }
                Some(_) => {}
                None => open = false,
            },
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                give_up_at = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                // What was not handed to ingest stays unacknowledged.
                to_submit.clear();
            }
            () = tokio::time::sleep_until(give_up_at.unwrap_or_else(tokio::time::Instant::now)), if give_up_at.is_some() => break,
        }
    }
    if stopping {
        let _ = client.try_disconnect();
    }
}

/// Waits for the commit of one taken message; `true` once it is committed.
type AckWhenCommitted = std::pin::Pin<Box<dyn Future<Output = (Taken, bool)> + Send>>;

fn connect(broker: &ExternalBroker, lane: Lane) -> (AsyncClient, rumqttc::v5::EventLoop) {
    let client_id = lane.client_id(broker);
    let persistent = lane.persistent();
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    if persistent {
        options.set_clean_start(false);
        let expiry = u32::try_from(broker.session_expiry.as_secs()).unwrap_or(u32::MAX);
        options.set_session_expiry_interval(Some(expiry));
    } else {
        options.set_clean_start(true);
    }
    options.set_manual_acks(true);
    options.set_receive_maximum(Some(RECEIVE_MAXIMUM));
    // Larger than the contract's 512 B, so oversized payloads reach the
    // gateway and are counted as `too_large` rather than dropped unseen.
    options.set_max_packet_size(Some(64 * 1024));
    if let (Some(username), Some(password)) = (&broker.username, &broker.password) {
        options.set_credentials(lane.name(username), password.clone());
    }
    if let Some(tls) = &broker.tls {
        match ExternalBroker::tls_config(tls) {
            Ok(config) => {
                options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                    Arc::new(config),
                )));
            }
            // Checked at start-up by the binary; here only if the file changed since.
            Err(error) => tracing::error!(%error, "TLS configuration"),
        }
    }
    // Room for every ack that can ever be owed at once (see ACK_QUEUE): the
    // acker's `try_ack` always finds room. The queue grows only as used.
    let (client, mut eventloop) = AsyncClient::new(options, ACK_QUEUE);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    eventloop.options.set_network_options(network);
    (client, eventloop)
}
