//! Alert changes, out: the in-process feed the console uses, MQTT
//! (`anxin/v1/alerts/{county}/{alert_id}`) and an optional webhook for SMS and
//! phone gateways.
//!
//! Every sink reads `alert_events` from the database after its own cursor, so
//! what a crash interrupted is delivered after the restart, and changes made
//! by another process (the CLI, another gateway) go out too. One gateway at a
//! time holds a sink (a lease in `alert_sinks`). A failed delivery is retried
//! with backoff from `alert_retries`, apart from the rest: each attempt is its
//! own task, so a slow or failing webhook delays neither ingest (which never
//! waits on a sink) nor the delivery of other changes. A change is claimed in
//! `alert_retries` before the cursor moves past it, so a crash mid-attempt
//! only delays it. Delivery is at least once: receivers deduplicate on
//! `event_id`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, watch};

use crate::metrics as m;
use anxin_domain::alerts::{AlertKind, AlertStatus, Outcome, Severity};
use anxin_domain::outbound;
use anxin_store::{AlertChange, Store, StoreError, now_ms};

/// The HTTP client of what leaves the process (the webhook, SMS providers):
/// rustls on ring with the system's roots (no second crypto provider), and
/// `timeout` for a whole request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// An alert change as it leaves the process, on MQTT and to the webhook:
/// ids, codes, times and the region. Never free text: a resolution note or
/// an explanation may name a person, a phone or an illness, and those stay
/// in the console.
#[derive(Debug, serde::Serialize)]
pub struct Outbound<'a> {
    pub event_id: i64,
    /// `opened`, `acknowledged`, `escalated`, `reminded`, `resolved`, …
    pub action: &'a str,
    pub at: i64,
    /// The staff account that acted, by its user name.
    pub actor: Option<&'a str>,
    pub alert_id: i64,
    pub elder_id: i64,
    pub kind: AlertKind,
    pub severity: Severity,
    pub status: AlertStatus,
    pub level: i64,
    pub county: &'a str,
    pub township: &'a str,
    pub village: &'a str,
    pub opened_at: i64,
    pub acknowledged_by: Option<&'a str>,
    pub outcome: Option<Outcome>,
}

impl<'a> From<&'a AlertChange> for Outbound<'a> {
    fn from(change: &'a AlertChange) -> Outbound<'a> {
        Outbound {
            event_id: change.event_id,
            action: &change.action,
            at: change.at,
            actor: change.actor.as_deref(),
            alert_id: change.alert_id,
            elder_id: change.elder_id,
            kind: change.kind,
            severity: change.severity,
            status: change.status,
            level: change.level,
            county: &change.county,
            township: &change.township,
            village: &change.village,
            opened_at: change.opened_at,
            acknowledged_by: change.acknowledged_by.as_deref(),
            outcome: change.outcome,
        }
    }
}

/// How long a gateway holds a sink without renewing.
const LEASE_MS: i64 = 15_000;
/// Deliveries attempted at once, per sink.
const IN_FLIGHT: usize = 64;
/// How long one attempt may take; cut off, it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery claimed but not settled by then (the process died) is tried again.
const CLAIM_MS: i64 = 60_000;
/// After this many attempts (about a day of 5-minute retries), a delivery is given up and logged.
const MAX_ATTEMPTS: i64 = 300;

/// How long a failed delivery waits before its next attempt: 2 s after the
/// first failure, doubling to 5 minutes.
fn retry_backoff_ms(attempts: i64) -> i64 {
    (1_000i64 << attempts.clamp(0, 8)).min(300_000)
}

/// Starts the in-process feed: every alert change, as soon as this process
/// writes it (or within a second when another process did).
pub fn start_feed(
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) -> (broadcast::Sender<Arc<AlertChange>>, tokio::task::JoinHandle<()>) {
    let (sender, _) = broadcast::channel(4_096);
    let feed = sender.clone();
    let task = tokio::spawn(async move {
        let mut writes = store.alert_writes();
        let mut cursor = loop {
            match store.newest_alert_event().await {
                Ok(newest) => break newest,
                Err(error) => {
                    tracing::warn!(%error, "alert feed cannot start; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        loop {
            match store.alert_changes_after(cursor, 500).await {
                Ok(changes) => {
                    let full = changes.len() == 500;
                    for change in changes {
                        cursor = change.position;
                        let _ = feed.send(Arc::new(change));
                    }
                    if full {
                        continue;
                    }
                }
                Err(error) => tracing::warn!(%error, "alert feed cannot read changes"),
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = writes.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    (sender, task)
}

/// Where an MQTT sink publishes.
#[derive(Debug, Clone)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    /// `Some`: TLS, with this CA file (`None` inside: the system's roots).
    pub tls: Option<Option<std::path::PathBuf>>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
}

/// A destination for alert changes.
#[derive(Debug)]
pub enum Sink {
    Mqtt(MqttSink),
    Webhook(WebhookSink),
}

impl Sink {
    pub fn mqtt(target: MqttTarget) -> Sink {
        Sink::Mqtt(MqttSink { target, client: tokio::sync::Mutex::new(None) })
    }

    /// A webhook whose requests are signed with `secret` ([`outbound::sign`]).
    pub fn webhook(url: String, secret: String) -> Result<Sink, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("webhook {url:?} must be an http:// or https:// URL"));
        }
        let client = http_client(Duration::from_secs(5)).map_err(|error| format!("the webhook: {error}"))?;
        Ok(Sink::Webhook(WebhookSink { url, secret, client }))
    }

    /// The sink's name in `alert_sinks` and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Mqtt(_) => "mqtt",
            Sink::Webhook(_) => "webhook",
        }
    }

    async fn deliver(&self, change: &AlertChange) -> Result<(), String> {
        let body = serde_json::to_vec(&Outbound::from(change)).map_err(|error| error.to_string())?;
        match self {
            Sink::Mqtt(sink) => sink.publish(&alert_topic(&change.county, change.alert_id), body).await,
            Sink::Webhook(sink) => sink.post(body).await,
        }
    }
}

/// `anxin/v1/alerts/{county}/{alert_id}`; characters MQTT gives meaning to
/// (`/ + #`) are replaced in the county's name.
pub fn alert_topic(county: &str, alert_id: i64) -> String {
    let county: String = county.chars().map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c }).collect();
    format!("anxin/v1/alerts/{county}/{alert_id}")
}

pub struct WebhookSink {
    url: String,
    secret: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("url", &self.url).finish_non_exhaustive()
    }
}

impl WebhookSink {
    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(outbound::SIGNATURE_HEADER, outbound::sign(&self.secret, now_ms().div_euclid(1_000), &body))
            .body(body)
            .send()
            .await
            .map_err(|error| format!("webhook: {error}"))?;
        if response.status().is_success() { Ok(()) } else { Err(format!("webhook answered {}", response.status())) }
    }
}

pub struct MqttSink {
    target: MqttTarget,
    client: tokio::sync::Mutex<Option<mqtt5::MqttClient>>,
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink").field("target", &self.target).finish()
    }
}

impl MqttSink {
    async fn connect(&self) -> Result<mqtt5::MqttClient, String> {
        let target = &self.target;
        let client = mqtt5::MqttClient::new(target.client_id.clone());
        // Design: no automatic reconnect. `publish` replaces a lost client
        // with a new one; a client reconnecting by itself beside that new
        // one would share its client id, and each would take over the
        // other's session in turn.
        let mut options = mqtt5::ConnectOptions::new(target.client_id.clone())
            .with_clean_start(true)
            .with_keep_alive(Duration::from_secs(30))
            .with_automatic_reconnect(false);
        if let Some(username) = &target.username {
            options = options.with_credentials(username.clone(), target.password.clone().unwrap_or_default());
        }
        match &target.tls {
            None => {
                let address = format!("mqtt://{}:{}", target.host, target.port);
                client.connect_with_options(&address, options).await.map_err(|error| error.to_string())?;
            }
            Some(ca_file) => {
                let address: SocketAddr = tokio::net::lookup_host((target.host.as_str(), target.port))
                    .await
                    .map_err(|error| error.to_string())?
                    .next()
                    .ok_or_else(|| format!("{} has no address", target.host))?;
                let mut tls = mqtt5::transport::tls::TlsConfig::new(address, target.host.clone());
                match ca_file {
                    Some(path) => {
                        tls.load_ca_cert_pem(&path.to_string_lossy()).map_err(|error| error.to_string())?;
                        tls = tls.with_system_roots(false);
                    }
                    None => tls = tls.with_system_roots(true),
                }
                client.connect_with_tls_and_options(tls, options).await.map_err(|error| error.to_string())?;
            }
        }
        Ok(client)
    }

    async fn publish(&self, topic: &str, body: Vec<u8>) -> Result<(), String> {
        let client = {
            let mut slot = self.client.lock().await;
            let connected = match slot.as_ref() {
                Some(client) => client.is_connected().await,
                None => false,
            };
            match slot.as_ref() {
                Some(client) if connected => client.clone(),
                _ => {
                    // The one long-lived client is gone: close it for good first.
                    if let Some(previous) = slot.take() {
                        let _ = previous.disconnect().await;
                    }
                    let client = self.connect().await.map_err(|error| format!("MQTT connect: {error}"))?;
                    *slot = Some(client.clone());
                    client
                }
            }
        };
        let result = client.publish_qos1(topic, body).await.map_err(|error| format!("MQTT publish: {error}"))?;
        match tokio::time::timeout(Duration::from_secs(5), result.outcome()).await {
            Ok(mqtt5::PublishOutcome::Delivered(_)) => Ok(()),
            Ok(other) => Err(format!("MQTT publish not acknowledged: {other:?}")),
            Err(_) => Err("MQTT publish not acknowledged within 5 s".into()),
        }
    }
}

/// Delivers every alert change to `sink` until `shutdown` turns true.
/// `holder` names this gateway in the lease.
pub async fn run_sink(store: Store, sink: Sink, holder: String, mut shutdown: watch::Receiver<bool>) {
    let sink = Arc::new(sink);
    let name = sink.name();
    let mut writes = store.alert_writes();
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        if let Err(error) = deliver_round(&store, &sink, &holder, &in_flight).await {
            tracing::warn!(sink = name, %error, "alert delivery round failed");
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = writes.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn deliver_round(
    store: &Store,
    sink: &Arc<Sink>,
    holder: &str,
    in_flight: &Arc<Semaphore>,
) -> Result<(), StoreError> {
    let name = sink.name();
    let Some(mut through) = store.hold_sink(name, holder, now_ms(), LEASE_MS).await? else { return Ok(()) };
    loop {
        let changes = store.alert_changes_after(through, 256).await?;
        let Some(last) = changes.last() else { break };
        // Claim before moving the cursor: a crash mid-attempt leaves the
        // claim, which is retried when it runs out.
        let ids: Vec<i64> = changes.iter().map(|change| change.event_id).collect();
        store.claim_deliveries(name, &ids, now_ms() + CLAIM_MS).await?;
        through = last.position;
        store.advance_sink(name, holder, through).await?;
        for change in changes {
            spawn_attempt(store, sink, change, 0, in_flight).await;
        }
    }
    for (event_id, attempts) in store.due_retries(name, now_ms()).await? {
        if !store.reclaim_delivery(name, event_id, now_ms() + CLAIM_MS).await? {
            continue;
        }
        match store.alert_change(event_id).await? {
            Some(change) => spawn_attempt(store, sink, change, attempts, in_flight).await,
            None => store.forget_retry(name, event_id).await?,
        }
    }
    Ok(())
}

/// Attempts one delivery on its own task: a receiver that hangs holds up
/// only its own change. At most `IN_FLIGHT` at once.
async fn spawn_attempt(
    store: &Store,
    sink: &Arc<Sink>,
    change: AlertChange,
    attempts: i64,
    in_flight: &Arc<Semaphore>,
) {
    let Ok(permit) = Arc::clone(in_flight).acquire_owned().await else { return };
    let store = store.clone();
    let sink = Arc::clone(sink);
    tokio::spawn(async move {
        let _permit = permit;
        let name = sink.name();
        let event_id = change.event_id;
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, sink.deliver(&change)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        };
        let settled = match outcome {
            Ok(()) => {
                metrics::counter!(m::ALERTS_DELIVERED, "sink" => name).increment(1);
                store.forget_retry(name, event_id).await
            }
            Err(error) if attempts + 1 < MAX_ATTEMPTS => {
                tracing::warn!(sink = name, event = event_id, attempt = attempts + 1, %error, "alert delivery failed; will retry");
                store.retry_later(name, event_id, attempts + 1, &error, now_ms() + retry_backoff_ms(attempts + 1)).await
            }
            Err(error) => {
                tracing::error!(sink = name, event = event_id, attempts, %error, "alert delivery given up");
                metrics::counter!(m::ALERT_DELIVERIES_ABANDONED, "sink" => name).increment(1);
                store.forget_retry(name, event_id).await
            }
        };
        if let Err(error) = settled {
            // The claim stays and runs out: the change is tried again.
            tracing::warn!(sink = name, event = event_id, %error, "cannot record a delivery's outcome");
        }
    });
}
