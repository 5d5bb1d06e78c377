//! Ingest from an external broker through rumqttc (MQTT 5).
//!
//! rumqttc leaves three things to its user, done here: reconnecting with
//! backoff (its `poll` fails in a tight loop while the broker is down),
//! resubscribing on every ConnAck (it does not restore subscriptions), and
//! acknowledging in order after commit (manual acks).

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, watch};

use super::DEVICE_TOPICS;
use crate::ingest::{Committed, Ingest};
use crate::metrics as m;
use crate::store::now_ms;

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

    /// The subscription: shared within the group, or plain.
    pub fn filter(&self) -> String {
        match &self.share_group {
            Some(group) => format!("$share/{group}/{DEVICE_TOPICS}"),
            None => DEVICE_TOPICS.to_string(),
        }
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
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| BrokerUrlError::CaFile { path: Default::default(), reason: error.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

/// Most messages the broker may have in flight to this gateway (its receive maximum).
const RECEIVE_MAXIMUM: u16 = 1_024;

/// Receives from the broker until `shutdown` turns true, then releases the
/// acks of everything already committed and disconnects.
pub async fn run(broker: ExternalBroker, ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
    // Acks are released in receive order by their own task, so waiting for a
    // commit never stops the event loop from reading and pinging.
    let (ack_sender, mut ack_receiver) =
        mpsc::channel::<(Committed, Publish, AsyncClient)>(usize::from(RECEIVE_MAXIMUM) * 2);
    let acker = tokio::spawn(async move {
        while let Some((committed, publish, client)) = ack_receiver.recv().await {
            if committed.await.is_ok() {
                // Fails harmlessly when that connection is gone: the broker
                // then redelivers the message, which is a no-op to store.
                let _ = client.ack(&publish).await;
            }
        }
    });

    let mut backoff = Duration::from_millis(100);
    let where_to = format!("{}:{}", broker.host, broker.port);
    let (client, eventloop) = 'connections: loop {
        // Design: a fresh client per connection. A packet id belongs to one
        // connection; an ack queued on the old one and sent on the new one
        // would acknowledge whatever message the broker gave that id since
        // (rumqttc #849) — a message never stored. With its own client, an old
        // ack dies with its connection.
        let (client, mut eventloop) = connect(&broker);
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => break 'connections (client, eventloop),
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    tracing::info!(broker = %where_to, session_present = connack.session_present, "connected to the broker");
                    metrics::gauge!(m::BROKER_CONNECTED).set(1.0);
                    backoff = Duration::from_millis(100);
                    // Always subscribe: a broker that lost the session would
                    // otherwise leave this gateway deaf.
                    if let Err(error) = client.try_subscribe(broker.filter(), QoS::AtLeastOnce) {
                        tracing::error!(%error, "cannot queue the subscription");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                    let Ok(committed) = ingest.submit(topic, publish.payload.to_vec(), now_ms()).await else {
                        break 'connections (client, eventloop);
                    };
                    if ack_sender.send((committed, publish, client.clone())).await.is_err() {
                        break 'connections (client, eventloop);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
                    tracing::warn!(broker = %where_to, %error, "broker connection lost; retrying in {backoff:?}");
                    tokio::select! {
                        _ = shutdown.changed() => return drain(acker, ack_sender, None).await,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue 'connections;
                }
            }
        }
    };
    drain(acker, ack_sender, Some((client, eventloop))).await;
}

fn connect(broker: &ExternalBroker) -> (AsyncClient, rumqttc::v5::EventLoop) {
    let mut options = MqttOptions::new(broker.client_id.clone(), broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(u32::try_from(broker.session_expiry.as_secs()).unwrap_or(u32::MAX)));
    options.set_manual_acks(true);
    options.set_receive_maximum(Some(RECEIVE_MAXIMUM));
    // Larger than the contract's 512 B, so oversized payloads reach the
    // gateway and are counted as `too_large` rather than dropped unseen.
    options.set_max_packet_size(Some(64 * 1024));
    if let (Some(username), Some(password)) = (&broker.username, &broker.password) {
        options.set_credentials(username.clone(), password.clone());
    }
    if let Some(tls) = &broker.tls {
        match ExternalBroker::tls_config(tls) {
            Ok(config) => {
                options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                    std::sync::Arc::new(config),
                )));
            }
            // Checked at start-up by the binary; here only if the file changed since.
            Err(error) => tracing::error!(%error, "TLS configuration"),
        }
    }
    let (client, mut eventloop) = AsyncClient::new(options, usize::from(RECEIVE_MAXIMUM) * 2);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    eventloop.options.set_network_options(network);
    (client, eventloop)
}

/// Releases the acks of what is already committed (they need the event loop
/// to reach the broker), then disconnects. Messages not yet committed stay
/// unacknowledged; the broker redelivers them to the session later.
async fn drain(
    acker: tokio::task::JoinHandle<()>,
    ack_sender: mpsc::Sender<(Committed, Publish, AsyncClient)>,
    connection: Option<(AsyncClient, rumqttc::v5::EventLoop)>,
) {
    drop(ack_sender);
    let drain = async {
        let mut acker = acker;
        match connection {
            Some((client, mut eventloop)) => {
                loop {
                    tokio::select! {
                        _ = &mut acker => break,
                        event = eventloop.poll() => if event.is_err() { break },
                    }
                }
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async { while eventloop.poll().await.is_ok() {} })
                    .await;
            }
            None => {
                let _ = acker.await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
}
