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

use super::{DEVICE_TOPICS, SHARE_GROUP};
use crate::ingest::{Committed, Ingest};
use crate::metrics as m;
use crate::store::now_ms;

/// How to reach the external broker.
#[derive(Debug, Clone)]
pub struct ExternalBroker {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Fixed per gateway, so its persistent session survives restarts.
    pub client_id: String,
    /// How long the broker keeps this gateway's session while it is away.
    pub session_expiry: Duration,
}

impl ExternalBroker {
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            username: None,
            password: None,
            client_id: client_id.into(),
            session_expiry: Duration::from_secs(7 * 24 * 3_600),
        }
    }

    /// The shared subscription every gateway joins.
    pub fn filter() -> String {
        format!("$share/{SHARE_GROUP}/{DEVICE_TOPICS}")
    }
}

/// Most messages the broker may have in flight to this gateway (its receive maximum).
const RECEIVE_MAXIMUM: u16 = 1_024;

/// Receives from the broker until `shutdown` turns true, then releases the
/// acks of everything already committed and disconnects.
pub async fn run(broker: ExternalBroker, ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
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
    let (client, mut eventloop) = AsyncClient::new(options, usize::from(RECEIVE_MAXIMUM) * 2);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    eventloop.options.set_network_options(network);

    // Acks are released in receive order by their own task, so waiting for a
    // commit never stops the event loop from reading and pinging.
    let (ack_sender, mut ack_receiver) = mpsc::channel::<(Committed, Publish)>(usize::from(RECEIVE_MAXIMUM) * 2);
    let acker_client = client.clone();
    let acker = tokio::spawn(async move {
        while let Some((committed, publish)) = ack_receiver.recv().await {
            if committed.await.is_ok() {
                let _ = acker_client.ack(&publish).await;
            }
        }
    });

    let mut backoff = Duration::from_millis(100);
    let where_to = format!("{}:{}", broker.host, broker.port);
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                tracing::info!(broker = %where_to, session_present = connack.session_present, "connected to the broker");
                metrics::gauge!(m::BROKER_CONNECTED).set(1.0);
                backoff = Duration::from_millis(100);
                // Always resubscribe: rumqttc does not, and a broker that lost
                // the session would otherwise leave this gateway deaf.
                if let Err(error) = client.try_subscribe(ExternalBroker::filter(), QoS::AtLeastOnce) {
                    tracing::error!(%error, "cannot queue the subscription");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let Ok(committed) = ingest.submit(topic, publish.payload.to_vec(), now_ms()).await else { break };
                if ack_sender.send((committed, publish)).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(error) => {
                metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
                tracing::warn!(broker = %where_to, %error, "broker connection lost; retrying in {backoff:?}");
                tokio::select! {
                    _ = shutdown.changed() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }

    // Drain: acks of committed messages still need the event loop to reach
    // the broker. Messages not yet committed stay unacknowledged and the
    // broker redelivers them to the session later.
    drop(ack_sender);
    let drain = async {
        let mut acker = acker;
        loop {
            tokio::select! {
                _ = &mut acker => break,
                event = eventloop.poll() => if event.is_err() { break },
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async { while eventloop.poll().await.is_ok() {} }).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    metrics::gauge!(m::BROKER_CONNECTED).set(0.0);
}
