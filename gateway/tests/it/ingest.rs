//! Ingest through real brokers: Mosquitto (external path) and the embedded one.
//!
//! These tests assert completeness and order — every acknowledged message
//! stored exactly once, acknowledgements in order, a smoke alarm committed
//! before a backlog has drained — never a duration: timings are the
//! benchmark's (`anxin bench ingest`).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::identity::{IdentityKind, hash_secret};
use anxin_domain::registry::NewElder;
use anxin_gateway::broker::auth::{BrokerAuth, RateLimits};
use anxin_gateway::broker::embedded::{BrokerLimits, EmbeddedBroker, RunningBroker};
use anxin_gateway::broker::external::{self, ExternalBroker, Subscribed};
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_store::{AlertFilter, NewIdentity, Store, now_ms};
use anxin_testkit::Broker;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use sqlx::Connection;
use tokio::sync::watch;

use crate::{Backend, fresh_store, reopen};

fn event(seq: u32) -> String {
    format!(r#"{{"v":1,"boot":9,"seq":{seq},"up":{seq},"kind":"door","state":"open"}}"#)
}

fn summary(seq: u32) -> Vec<u8> {
    format!(r#"{{"v":1,"boot":1,"seq":{seq},"up":{seq},"interval_s":300,"motion":2,"door_opens":0,"battery":90}}"#)
        .into_bytes()
}

const SMOKE: &str = r#"{"v":1,"boot":5,"seq":1,"up":1,"kind":"smoke","state":"alarm"}"#;

/// Every test client's secret (a Mosquitto without a password file ignores it).
const SECRET: &str = "it-secret-0123456789abcdef";

/// Gives each `(name, kind, devices)` an identity with [`SECRET`]; `rate`:
/// its own publish rate (a node flushing a large outbox at full speed).
async fn enrol(store: &Store, identities: &[(&str, IdentityKind, &[&str])], rate: Option<i64>) {
    let hash = hash_secret(SECRET);
    let identities: Vec<NewIdentity> = identities
        .iter()
        .map(|(name, kind, devices)| NewIdentity {
            name: (*name).to_string(),
            kind: *kind,
            secret_hash: hash.clone(),
            rate_per_s: rate,
            devices: devices.iter().map(|d| (*d).to_string()).collect(),
        })
        .collect();
    store.create_identities(&identities, "test", now_ms()).await.unwrap();
}

/// Gives each of `names` a device identity with [`SECRET`].
async fn enrol_devices(store: &Store, names: &[String]) {
    let identities: Vec<(&str, IdentityKind, &[&str])> =
        names.iter().map(|name| (name.as_str(), IdentityKind::Device, &[][..])).collect();
    enrol(store, &identities, None).await;
}

/// The embedded broker on a free port, checking identities in `store`.
async fn embedded(store: &Store, ingest: Ingest) -> RunningBroker {
    embedded_with(store, ingest, BrokerLimits::default()).await
}

async fn embedded_with(store: &Store, ingest: Ingest, limits: BrokerLimits) -> RunningBroker {
    let auth = BrokerAuth::new(store.clone(), RateLimits::default());
    EmbeddedBroker { listen: "127.0.0.1:0".parse().unwrap(), auth, tls: None, limits }.start(ingest).await.unwrap()
}

fn start_ingest(store: &Store) -> (Ingest, tokio::task::JoinHandle<()>) {
    Ingest::start(store.clone(), Arc::new(AlertPolicy::default()), IngestConfig::default())
}

/// A device-like publisher; returns the client once its connection is up.
async fn publisher(
    host: &str,
    port: u16,
    client_id: &str,
    will: Option<LastWill>,
) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_credentials(client_id, SECRET);
    if let Some(will) = will {
        options.set_last_will(will);
    }
    AsyncClient::new(options, 1_000)
}

/// Polls `eventloop` until `count` PUBACKs arrived.
async fn await_pubacks(eventloop: &mut rumqttc::EventLoop, count: usize) {
    let mut acked = 0;
    while acked < count {
        match tokio::time::timeout(Duration::from_secs(20), eventloop.poll()).await.expect("PUBACKs within 20 s") {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(error) => panic!("publisher connection failed: {error}"),
        }
    }
}

/// Publishes `messages` at QoS 1 from one MQTT 3.1.1 connection with up to
/// `inflight` unacknowledged, as fast as the broker takes them. Returns the
/// indices of the messages the broker acknowledged, in the order of their
/// PUBACKs. Panics if 60 s pass without an acknowledgement.
async fn publish_all(
    broker: SocketAddr,
    client_id: &str,
    messages: Vec<(String, Vec<u8>)>,
    inflight: u16,
) -> Vec<usize> {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_credentials(client_id, SECRET);
    options.set_inflight(inflight);
    let (client, mut eventloop) = AsyncClient::new(options, 1_000);
    let count = messages.len();
    let sender = tokio::spawn(async move {
        for (topic, payload) in messages {
            client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("queue a publish");
        }
        client
    });
    let (mut sent, mut in_flight, mut acked) = (0, HashMap::new(), Vec::with_capacity(count));
    while acked.len() < count {
        let Ok(polled) = tokio::time::timeout(Duration::from_secs(60), eventloop.poll()).await else {
            panic!("{client_id}: no PUBACK for 60 s ({} of {count} acknowledged)", acked.len());
        };
        match polled {
            Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                in_flight.insert(packet_id, sent);
                sent += 1;
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                acked.push(in_flight.remove(&ack.pkid).expect("a PUBACK for a publish in flight"))
            }
            Ok(_) => {}
            Err(error) => panic!("{client_id}: connection failed: {error}"),
        }
    }
    let client = sender.await.unwrap();
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
    acked
}

/// Waits until every key in `expected` is stored, failing if the store
/// stops growing for 30 s (a stall) before that. Returns the stored keys.
async fn stored_without_a_stall(
    store: &Store,
    expected: &BTreeSet<(String, i64, i64)>,
) -> BTreeSet<(String, i64, i64)> {
    let mut last = 0;
    let mut still_since = tokio::time::Instant::now();
    loop {
        let keys: BTreeSet<_> = store.message_keys().await.unwrap().into_iter().collect();
        if expected.is_subset(&keys) {
            return keys;
        }
        if keys.len() != last {
            last = keys.len();
            still_since = tokio::time::Instant::now();
        }
        assert!(
            still_since.elapsed() < Duration::from_secs(30),
            "ingest stalled: {} of {} messages stored, none more for 30 s",
            expected.intersection(&keys).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `condition` on the store every 20 ms for up to 20 s.
async fn eventually<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[derive(Debug)]
struct RunningGateway {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    subscribed: watch::Receiver<Subscribed>,
    ingest: Ingest,
}

impl RunningGateway {
    /// A gateway in share group `group` (each test its own: the broker may be
    /// shared), or on a plain subscription. Its sessions are this test
    /// process's own (the client id carries the process id) and expire a
    /// minute after it leaves, so a shared broker that persists sessions
    /// brings nothing of an earlier run.
    fn start(store: &Store, broker: &Broker, client_id: &str, group: Option<&str>) -> RunningGateway {
        let (ingest, _writer) = start_ingest(store);
        let (shutdown, watch) = watch::channel(false);
        let client_id = format!("{client_id}-{}", std::process::id());
        let mut config = ExternalBroker::new(broker.host(), broker.port(), client_id);
        config.session_expiry = Duration::from_secs(60);
        config.share_group = group.map(|group| format!("{group}-{}", std::process::id()));
        let (subscribed_sender, subscribed) = watch::channel(Subscribed::default());
        let task = tokio::spawn(external::run_watched(config, ingest.clone(), watch, subscribed_sender));
        RunningGateway { shutdown, task, subscribed, ingest }
    }

    /// Waits until both sessions hold their subscription.
    async fn subscribed(&mut self) {
        tokio::time::timeout(Duration::from_secs(20), self.subscribed.wait_for(Subscribed::both))
            .await
            .expect("both sessions subscribed within 20 s")
            .unwrap();
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_a_message_and_its_redelivery_are_stored_once_and_bad_input_is_counted() {
    // Its own broker: the gateway takes every device topic, and other tests
    // publish on the shared one (retained statuses too).
    let broker = Broker::start_private();
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let mut gateway = RunningGateway::start(&store, &broker, "gw-it-mosquitto", Some("it-mosquitto"));
    gateway.subscribed().await;
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "ext-it-node", None).await;
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });

    for _ in 0..3 {
        client.publish("anxin/v1/dev/ext-it-node/event", QoS::AtLeastOnce, false, event(1)).await.unwrap();
    }
    let bad: [(&str, Vec<u8>); 4] = [
        ("anxin/v1/dev/ext-it-node/event", b"garbage".to_vec()),
        ("anxin/v1/dev/Ext-It/event", event(2).into_bytes()),
        ("anxin/v1/dev/ext-it-node/event", vec![b' '; 2_000]),
        ("anxin/v1/dev/ext-it-node/event", br#"{"v":1,"boot":9,"seq":3,"up":3,"kind":"flood","state":"on"}"#.to_vec()),
    ];
    for (topic, payload) in bad {
        client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }
    client.publish("anxin/v1/dev/ext-it-node/event", QoS::AtLeastOnce, false, event(4)).await.unwrap();

    let expected = vec![("ext-it-node".to_string(), 9, 1), ("ext-it-node".to_string(), 9, 4)];
    assert!(eventually(|| async { store.message_keys().await.unwrap() == expected }).await);
    // Each bad event came on both sessions and is quarantined once, by reason.
    let counts = || async { store.quarantine_counts().await.unwrap() };
    let expected_counts: Vec<(String, i64)> = ["bad_device_id", "not_json", "too_large", "unknown_kind"]
        .into_iter()
        .map(|reason| (reason.to_string(), 1))
        .collect();
    assert!(eventually(|| async { counts().await == expected_counts }).await, "{:?}", counts().await);
    gateway.stop().await;
    driver.abort();
}

/// The 1st finding of the issue: a burst bigger than the gateway's windows
/// froze `anxin gateway` for good at ~5,000 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_50_000_through_mosquitto_is_stored_exactly_once_without_a_stall() {
    // A private Mosquitto with the in-flight and queue values of deploy/mosquitto.conf.
    let broker = Broker::start_private();
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let mut gateway = RunningGateway::start(&store, &broker, "gw-it-burst", None);
    gateway.subscribed().await;
    let messages: Vec<(String, Vec<u8>)> =
        (0..50_000u32).map(|i| (format!("anxin/v1/dev/burst-{:04}/summary", i % 1_000), summary(i / 1_000))).collect();
    let keys: Vec<(String, i64, i64)> =
        (0..50_000u32).map(|i| (format!("burst-{:04}", i % 1_000), 1, i64::from(i / 1_000))).collect();
    let acked = publish_all(broker.address, "burst-publisher", messages, 100).await;
    let expected: BTreeSet<_> = acked.iter().map(|&index| keys[index].clone()).collect();
    assert_eq!(expected.len(), 50_000, "Mosquitto acknowledged every publish");
    let stored = stored_without_a_stall(&store, &expected).await;
    assert_eq!(stored, expected, "every acknowledged message stored, nothing else");
    assert_eq!(store.message_count().await.unwrap(), 50_000, "each exactly once");
    let progress = gateway.ingest.progress().snapshot();
    assert!(progress.batches < 50_000 / 10, "committed in batches: {progress:?}");
    gateway.stop().await;
}

/// A backlog queued for the gateway's session while it was away drains once
/// it is back, and a smoke alarm published meanwhile does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_a_smoke_alarm_overtakes_a_draining_backlog() {
    let broker = Broker::start_private();
    let (store, guard) = fresh_store(Backend::Sqlite).await;
    let elder = store.add_elder(&elder(), now_ms()).await.unwrap();
    store.pair_device("drain-smoke", elder.id, now_ms()).await.unwrap();
    // The sessions exist (and are subscribed) before the gateway goes away.
    let mut gateway = RunningGateway::start(&store, &broker, "gw-it-drain", None);
    gateway.subscribed().await;
    gateway.stop().await;

    let backlog = 20_000u32;
    let messages: Vec<(String, Vec<u8>)> =
        (0..backlog).map(|i| (format!("anxin/v1/dev/drain-{:03}/summary", i % 500), summary(i / 500))).collect();
    let acked = publish_all(broker.address, "drain-publisher", messages, 100).await;
    assert_eq!(acked.len(), backlog as usize);

    let mut gateway = RunningGateway::start(&reopen(&guard).await, &broker, "gw-it-drain", None);
    gateway.subscribed().await;
    assert!(eventually(|| async { store.message_count().await.unwrap() >= 500 }).await, "the drain began");
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "drain-smoke", None).await;
    client.publish("anxin/v1/dev/drain-smoke/event", QoS::AtLeastOnce, false, SMOKE).await.unwrap();
    await_pubacks(&mut eventloop, 1).await;
    let smoke_alert = || async {
        let filter = AlertFilter { elder_id: Some(elder.id), ..Default::default() };
        !store.alerts(&filter).await.unwrap().is_empty()
    };
    assert!(eventually(smoke_alert).await, "the smoke alarm raised its alert");
    let drained = store.message_count().await.unwrap();
    assert!(drained < i64::from(backlog), "the alert came before the backlog drained ({drained} of {backlog} stored)");
    let expected: BTreeSet<_> =
        (0..backlog).map(|i| (format!("drain-{:03}", i % 500), 1, i64::from(i / 500))).collect();
    stored_without_a_stall(&store, &expected).await;
    assert_eq!(store.message_count().await.unwrap(), i64::from(backlog) + 1, "each stored once");
    gateway.stop().await;
}

fn elder() -> NewElder {
    NewElder {
        name: "王秀英".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        ..NewElder::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_acknowledges_a_message_only_once_it_is_stored() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    enrol(&store, &[("emb-it-node", IdentityKind::Device, &[])], None).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let port = broker.local_addr.port();
    let (client, mut eventloop) = publisher("127.0.0.1", port, "emb-it-node", None).await;
    for seq in 0..50 {
        client.publish("anxin/v1/dev/emb-it-node/event", QoS::AtLeastOnce, false, event(seq)).await.unwrap();
    }
    await_pubacks(&mut eventloop, 50).await;
    // No waiting: a PUBACK means committed.
    assert_eq!(store.message_count().await.unwrap(), 50);
    broker.stop().await;
}

/// The 2nd finding: the embedded broker carried one message per commit per
/// connection. A bridge's one connection must get the gateway's batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_keeps_100_publishes_in_flight_acknowledged_in_order_after_batched_commits() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let devices: Vec<String> = (0..50).map(|i| format!("bridge-{i:02}")).collect();
    let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
    enrol(&store, &[("bridge", IdentityKind::Bridge, &devices)], None).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest.clone()).await;
    let messages: Vec<(String, Vec<u8>)> =
        (0..2_000u32).map(|i| (format!("anxin/v1/dev/bridge-{:02}/summary", i % 50), summary(i / 50))).collect();
    let before = ingest.progress().snapshot();
    let acked = publish_all(broker.local_addr, "bridge", messages, 100).await;
    assert_eq!(acked, (0..2_000).collect::<Vec<_>>(), "every publish acknowledged, in order");
    assert_eq!(store.message_count().await.unwrap(), 2_000, "each PUBACK after its commit");
    let after = ingest.progress().snapshot();
    let batches = after.batches - before.batches;
    assert!(batches < 2_000 / 5, "more than one message per commit: 2,000 messages in {batches} commits");
    broker.stop().await;
}

/// An MQTT 5 client on the embedded broker, to read PUBACK reason codes.
async fn v5_publisher(port: u16, client_id: &str) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
    let mut options = rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_credentials(client_id, SECRET);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
    loop {
        let polled = tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.expect("connected");
        if let Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_))) = polled {
            return (client, eventloop);
        }
    }
}

/// The 3rd finding: with its writer gone, the embedded broker acknowledged
/// messages it never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_cannot_be_stored_is_refused_and_its_resend_after_a_restart_is_stored() {
    use rumqttc::v5::mqttbytes::v5::{Packet as V5Packet, PubAckReason};
    let (store, guard) = fresh_store(Backend::Sqlite).await;
    enrol(&store, &[("refused-v5", IdentityKind::Device, &[]), ("refused-v3", IdentityKind::Device, &[])], None).await;
    let (ingest, writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let port = broker.local_addr.port();
    // The writer dies (as when the process is stopping): nothing can be stored.
    writer.abort();
    let _ = writer.await;

    let (client, mut eventloop) = v5_publisher(port, "refused-v5").await;
    client
        .publish("anxin/v1/dev/refused-v5/event", rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, event(1))
        .await
        .unwrap();
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.expect("an answer") {
            Ok(rumqttc::v5::Event::Incoming(V5Packet::PubAck(ack))) => break ack.reason,
            Ok(_) => {}
            Err(error) => panic!("the MQTT 5 connection failed: {error}"),
        }
    };
    assert_eq!(reason, PubAckReason::ImplementationSpecificError, "refused, not acknowledged");

    // MQTT 3.1.1 has no refusal: the connection is closed before any PUBACK.
    let (v3, mut v3_loop) = publisher("127.0.0.1", port, "refused-v3", None).await;
    v3.publish("anxin/v1/dev/refused-v3/event", QoS::AtLeastOnce, false, event(1)).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), v3_loop.poll()).await.expect("an answer") {
            Ok(Event::Incoming(Packet::PubAck(_))) => break false,
            Ok(_) => {}
            Err(_) => break true,
        }
    };
    assert!(closed, "the MQTT 3.1.1 connection is closed, the publish never acknowledged");
    assert_eq!(store.message_count().await.unwrap(), 0);
    broker.stop().await;

    // After a restart the node sends it again: stored, and acknowledged.
    let store = reopen(&guard).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let (v3, mut v3_loop) = publisher("127.0.0.1", broker.local_addr.port(), "refused-v3", None).await;
    v3.publish("anxin/v1/dev/refused-v3/event", QoS::AtLeastOnce, false, event(1)).await.unwrap();
    await_pubacks(&mut v3_loop, 1).await;
    assert_eq!(store.message_keys().await.unwrap(), [("refused-v3".to_string(), 9, 1)]);
    broker.stop().await;
}

/// Many nodes coming back at once, each flushing its outbox, and a smoke
/// alarm from a live home among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_broker_a_smoke_alarm_overtakes_nodes_flushing_their_outboxes() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let elder = store.add_elder(&elder(), now_ms()).await.unwrap();
    store.pair_device("flush-smoke", elder.id, now_ms()).await.unwrap();
    let (nodes, each) = (40u32, 400u32);
    let names: Vec<String> = (0..nodes).map(|node| format!("flush-{node:02}")).collect();
    let mut identities: Vec<(&str, IdentityKind, &[&str])> =
        names.iter().map(|name| (name.as_str(), IdentityKind::Device, &[][..])).collect();
    identities.push(("flush-smoke", IdentityKind::Device, &[]));
    // Outboxes of 400 at full speed: above a device's default burst.
    enrol(&store, &identities, Some(10_000)).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let mut flushing = tokio::task::JoinSet::new();
    for node in 0..nodes {
        let messages: Vec<(String, Vec<u8>)> =
            (0..each).map(|seq| (format!("anxin/v1/dev/flush-{node:02}/summary"), summary(seq))).collect();
        let address = broker.local_addr;
        flushing.spawn(async move { publish_all(address, &format!("flush-{node:02}"), messages, 100).await.len() });
    }
    assert!(eventually(|| async { store.message_count().await.unwrap() >= 200 }).await, "the flush began");
    let (client, mut eventloop) = publisher("127.0.0.1", broker.local_addr.port(), "flush-smoke", None).await;
    client.publish("anxin/v1/dev/flush-smoke/event", QoS::AtLeastOnce, false, SMOKE).await.unwrap();
    await_pubacks(&mut eventloop, 1).await;
    // The PUBACK means committed, and the alert commits with its message.
    let alerts = store.alerts(&AlertFilter { elder_id: Some(elder.id), ..Default::default() }).await.unwrap();
    assert_eq!(alerts.len(), 1, "the smoke alarm's alert is committed");
    let stored = store.message_count().await.unwrap();
    let total = i64::from(nodes * each) + 1;
    assert!(stored < total, "the alert came before the outboxes were flushed ({stored} of {total} stored)");
    let mut acked = 0;
    while let Some(count) = flushing.join_next().await {
        acked += count.unwrap();
    }
    assert_eq!(acked, (nodes * each) as usize);
    assert_eq!(store.message_count().await.unwrap(), total, "every acknowledged message stored once");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_records_a_vanished_nodes_last_will() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    enrol(&store, &[("emb-will", IdentityKind::Device, &[])], None).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let will = LastWill::new("anxin/v1/dev/emb-will/status", r#"{"v":1,"state":"offline"}"#, QoS::AtLeastOnce, true);
    let (client, mut eventloop) = publisher("127.0.0.1", broker.local_addr.port(), "emb-will", Some(will)).await;
    client
        .publish(
            "anxin/v1/dev/emb-will/status",
            QoS::AtLeastOnce,
            true,
            r#"{"v":1,"boot":1,"state":"online","fw":"t"}"#,
        )
        .await
        .unwrap();
    await_pubacks(&mut eventloop, 1).await;
    assert!(store.device("emb-will").await.unwrap().unwrap().online);
    // The node vanishes: its TCP connection drops without DISCONNECT.
    drop(client);
    drop(eventloop);
    assert!(
        eventually(|| async {
            store.device("emb-will").await.unwrap().unwrap().offline_reason.as_deref() == Some("last_will")
        })
        .await
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_shared_subscription_store_every_message_exactly_once() {
    // Its own broker, so the count is of this test's messages alone.
    let broker = Broker::start_private();
    let (store, _guard) = fresh_store(Backend::Postgres).await;
    let mut first = RunningGateway::start(&store, &broker, "gw-it-share-1", Some("it-share"));
    let mut second = RunningGateway::start(&store, &broker, "gw-it-share-2", Some("it-share"));
    first.subscribed().await;
    second.subscribed().await;
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "share-it-node", None).await;
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let (first_before, second_before) = (first.ingest.progress().snapshot(), second.ingest.progress().snapshot());
    let published = 400;
    for seq in 0..published {
        client.publish("anxin/v1/dev/share-it-node/summary", QoS::AtLeastOnce, false, summary(seq)).await.unwrap();
    }
    assert!(eventually(|| async { store.message_count().await.unwrap() == i64::from(published) }).await);
    let first_count = first.ingest.progress().snapshot().committed - first_before.committed;
    let second_count = second.ingest.progress().snapshot().committed - second_before.committed;
    assert_eq!(first_count + second_count, u64::from(published), "each message reached exactly one gateway");
    assert!(first_count > 0 && second_count > 0, "the load is shared: {first_count} / {second_count}");
    first.stop().await;
    second.stop().await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reaches_a_broker_over_tls_verifying_its_certificate() {
    let broker = Broker::start_tls();
    let (tls_address, ca_file) = broker.tls.clone().unwrap();
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let (ingest, _writer) = start_ingest(&store);
    let mut config = ExternalBroker::from_url(&format!("mqtts://{tls_address}"), "gw-it-tls").unwrap();
    config.tls.as_mut().unwrap().ca_file = Some(ca_file);
    let (shutdown, watch) = watch::channel(false);
    let (subscribed_sender, mut subscribed) = watch::channel(Subscribed::default());
    let gateway = tokio::spawn(external::run_watched(config, ingest.clone(), watch, subscribed_sender));
    tokio::time::timeout(Duration::from_secs(20), subscribed.wait_for(Subscribed::both))
        .await
        .expect("subscribed over TLS within 20 s")
        .unwrap();
    // The device publishes on the plain listener; the gateway reads over TLS.
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "tls-it-node", None).await;
    client.publish("anxin/v1/dev/tls-it-node/event", QoS::AtLeastOnce, false, event(1)).await.unwrap();
    await_pubacks(&mut eventloop, 1).await;
    assert!(eventually(|| async { store.message_count().await.unwrap() == 1 }).await, "stored over TLS");
    let _ = shutdown.send(true);
    let _ = gateway.await;
}

#[test]
fn broker_urls_choose_tls_and_a_bad_ca_file_is_named() {
    let plain = ExternalBroker::from_url("mqtt://broker.example", "gw").unwrap();
    assert_eq!((plain.host.as_str(), plain.port, plain.tls.is_some()), ("broker.example", 1883, false));
    let tls = ExternalBroker::from_url("mqtts://broker.example", "gw").unwrap();
    assert_eq!((tls.port, tls.tls.is_some()), (8883, true));
    assert_eq!(ExternalBroker::from_url("mqtts://10.0.0.1:18883", "gw").unwrap().port, 18883);
    assert!(ExternalBroker::from_url("tcp://x", "gw").is_err());
    let missing = external::Tls { ca_file: Some("/nonexistent/ca.pem".into()) };
    let error = ExternalBroker::tls_config(&missing).unwrap_err().to_string();
    assert!(error.starts_with("cannot read the CA file /nonexistent/ca.pem"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_alarm_commits_ahead_of_the_summaries_queued_before_it() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let (ingest, writer) = start_ingest(&store);
    let summary = |seq: u32| {
        format!(r#"{{"v":1,"boot":3,"seq":{seq},"up":{seq},"interval_s":300,"motion":1,"door_opens":0}}"#).into_bytes()
    };
    let mut summaries = Vec::new();
    for seq in 1..=5_000u32 {
        let topic = format!("anxin/v1/dev/queue-{}/summary", seq % 100);
        summaries.push(ingest.submit(&topic, &summary(seq), 1_000).await.unwrap());
    }
    let smoke = br#"{"v":1,"boot":3,"seq":9999,"up":1,"kind":"smoke","state":"alarm"}"#.to_vec();
    let committed = ingest.submit("anxin/v1/dev/queue-smoke/event", &smoke, 1_001).await.unwrap();
    committed.await.expect("the smoke alarm is committed");
    let last = summaries.last_mut().unwrap();
    assert!(
        matches!(last.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)),
        "the smoke alarm waited for 5,000 summaries queued before it"
    );
    for summary in summaries {
        summary.await.expect("every summary is committed too");
    }
    drop(ingest);
    writer.await.unwrap();
    assert_eq!(store.message_count().await.unwrap(), 5_001);
}

/// PostgreSQL: a smoke alarm commits while a batch of summaries is stuck in
/// its commit (here behind another session's lock on one of its devices),
/// because hazards have a writer of their own there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_smoke_alarm_commits_beside_a_batch_that_cannot() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let crate::DatabaseGuard::Postgres(database) = &guard else { unreachable!() };
    let (ingest, writer) = start_ingest(&store);
    let first = ingest.submit("anxin/v1/dev/pg-busy/summary", &summary(1), now_ms()).await.unwrap();
    first.await.expect("the first summary is committed");
    // Another session holds the device's row: the next batch touching it waits.
    let mut blocker = sqlx::PgConnection::connect(&database.url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT device_id FROM devices WHERE device_id = 'pg-busy' FOR UPDATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let mut stuck = ingest.submit("anxin/v1/dev/pg-busy/summary", &summary(2), now_ms()).await.unwrap();
    let mut observer = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut waiting = 0i64;
    for _ in 0..600 {
        waiting = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&mut observer)
            .await
            .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting > 0, "the batch of summaries never reached the locked row");
    let smoke = ingest.submit("anxin/v1/dev/pg-smoke/event", SMOKE.as_bytes(), now_ms()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), smoke)
        .await
        .expect("the smoke alarm committed while the summaries' commit waited")
        .expect("committed");
    assert!(
        matches!(stuck.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)),
        "the summary was committed though its row was locked"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut blocker).await.unwrap();
    stuck.await.expect("the summary is committed once the lock goes");
    drop(ingest);
    writer.await.unwrap();
    assert_eq!(store.message_count().await.unwrap(), 3);
}

/// While ingest cannot commit (the database is locked), the gateway takes no
/// more from the broker than its receive maximum per session: the rest waits
/// in the broker, not in the gateway's memory. Once the lock goes, all of it
/// is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_ingest_cannot_commit_the_gateway_holds_no_more_than_its_window() {
    let broker = Broker::start_private();
    let (store, guard) = fresh_store(Backend::Sqlite).await;
    let mut gateway = RunningGateway::start(&store, &broker, "gw-it-window", None);
    gateway.subscribed().await;
    // Another process holds SQLite's write lock: nothing commits.
    let crate::DatabaseGuard::Folder(folder) = &guard else { unreachable!() };
    let mut blocker =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", folder.join("anxin.sqlite3").display())).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let messages: Vec<(String, Vec<u8>)> =
        (0..10_000u32).map(|i| (format!("anxin/v1/dev/window-{:03}/summary", i % 100), summary(i / 100))).collect();
    let acked = publish_all(broker.address, "window-publisher", messages, 100).await;
    assert_eq!(acked.len(), 10_000, "the broker took them all");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = gateway.ingest.progress().snapshot().waiting();
    // Summaries only: the main session's window is the bound.
    assert!(
        waiting <= u64::from(external::RECEIVE_MAXIMUM),
        "the gateway holds {waiting} messages, more than its window"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut blocker).await.unwrap();
    let expected: BTreeSet<_> =
        (0..10_000u32).map(|i| (format!("window-{:03}", i % 100), 1, i64::from(i / 100))).collect();
    stored_without_a_stall(&store, &expected).await;
    gateway.stop().await;
}

/// Publishers faster than the database: Mosquitto 2.0.11 goes on sending a
/// session more than its receive maximum once acknowledgements flow, so the
/// gateway keeps its own window (it held 17,588 before it did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_publishers_faster_than_the_database_the_gateway_holds_no_more_than_its_window() {
    let broker = Broker::start_private();
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let mut gateway = RunningGateway::start(&store, &broker, "gw-it-faster", None);
    gateway.subscribed().await;
    let progress = gateway.ingest.progress().clone();
    let (stop, stopped) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        let mut most = 0;
        while !*stopped.borrow() {
            most = most.max(progress.snapshot().waiting());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        most
    });
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..10u32 {
        let messages: Vec<(String, Vec<u8>)> = (0..2_000u32)
            .map(|i| (format!("anxin/v1/dev/faster-{:04}/summary", (i % 100) + publisher * 100), summary(i / 100)))
            .collect();
        let address = broker.address;
        publishers
            .spawn(async move { publish_all(address, &format!("faster-{publisher}"), messages, 100).await.len() });
    }
    while publishers.join_next().await.is_some() {}
    let expected: BTreeSet<_> = (0..10u32)
        .flat_map(|publisher| {
            (0..2_000u32).map(move |i| (format!("faster-{:04}", (i % 100) + publisher * 100), 1, i64::from(i / 100)))
        })
        .collect();
    stored_without_a_stall(&store, &expected).await;
    let _ = stop.send(true);
    let most = watcher.await.unwrap();
    assert!(
        most <= u64::from(external::RECEIVE_MAXIMUM),
        "the gateway held {most} messages at once, more than its window"
    );
    assert_eq!(store.message_count().await.unwrap(), 20_000, "and stored each once");
    gateway.stop().await;
}

/// Publishes `payload` on `topic` at QoS 1 from an MQTT 5 client and returns
/// the PUBACK's reason.
async fn v5_publish(
    client: &rumqttc::v5::AsyncClient,
    eventloop: &mut rumqttc::v5::EventLoop,
    topic: &str,
    payload: Vec<u8>,
    retain: bool,
) -> rumqttc::v5::mqttbytes::v5::PubAckReason {
    client.publish(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, retain, payload).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.expect("a PUBACK") {
            Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::PubAck(ack))) => return ack.reason,
            Ok(_) => {}
            Err(error) => panic!("the MQTT 5 connection failed: {error}"),
        }
    }
}

/// A device over its rate is refused (its node keeps the messages), and
/// another device's ingest goes on meanwhile, acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_over_its_rate_is_refused_and_others_go_on() {
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    enrol(&store, &[("rate-flood", IdentityKind::Device, &[]), ("rate-calm", IdentityKind::Device, &[])], None).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let port = broker.local_addr.port();
    let (flood, mut flood_loop) = v5_publisher(port, "rate-flood").await;
    let (calm, mut calm_loop) = v5_publisher(port, "rate-calm").await;
    let burst = 256u32;
    assert_eq!(RateLimits::default().device.burst, f64::from(burst), "a device's default burst");
    let (mut accepted, mut refused) = (0u32, 0u32);
    for seq in 0..burst + 50 {
        match v5_publish(&flood, &mut flood_loop, "anxin/v1/dev/rate-flood/summary", summary(seq), false).await {
            PubAckReason::Success => accepted += 1,
            PubAckReason::QuotaExceeded => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
        if seq % 50 == 0 {
            let answer = v5_publish(&calm, &mut calm_loop, "anxin/v1/dev/rate-calm/summary", summary(seq), false).await;
            assert_eq!(answer, PubAckReason::Success, "the calm device goes on");
        }
    }
    assert!(accepted >= burst && refused > 0, "the burst is taken, then refused: {accepted} taken, {refused} refused");
    let stored = store.message_keys().await.unwrap();
    let flooded = stored.iter().filter(|(d, _, _)| d == "rate-flood").count();
    assert_eq!(u32::try_from(flooded).unwrap(), accepted, "only what was taken");
    broker.stop().await;
}

/// A device leaves a retained message only on its own status topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_retains_only_its_status() {
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    enrol(&store, &[("retainer", IdentityKind::Device, &[])], None).await;
    let (ingest, _writer) = start_ingest(&store);
    let broker = embedded(&store, ingest).await;
    let (client, mut eventloop) = v5_publisher(broker.local_addr.port(), "retainer").await;
    let big = vec![b'x'; 60 * 1024];
    let answer = v5_publish(&client, &mut eventloop, "anxin/v1/dev/retainer/summary", big, true).await;
    assert_eq!(answer, PubAckReason::NotAuthorized, "no retained summaries");
    let status = br#"{"v":1,"boot":1,"state":"online","fw":"t"}"#.to_vec();
    let answer = v5_publish(&client, &mut eventloop, "anxin/v1/dev/retainer/status", status, true).await;
    assert_eq!(answer, PubAckReason::Success, "its own status, retained");
    assert!(store.device("retainer").await.unwrap().unwrap().online);
    broker.stop().await;
}

/// Retained messages are bounded in number and size; past the bound a
/// status is refused (the node keeps it) and other devices' ingest goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_bounded_and_ingest_goes_on() {
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let names: Vec<String> = (0..4).map(|i| format!("retain-{i}")).collect();
    enrol_devices(&store, &names).await;
    let (ingest, _writer) = start_ingest(&store);
    let limits = BrokerLimits { max_retained: 3, ..BrokerLimits::default() };
    let broker = embedded_with(&store, ingest, limits).await;
    let port = broker.local_addr.port();
    let status = || br#"{"v":1,"boot":1,"state":"online","fw":"t"}"#.to_vec();
    let mut answers = Vec::new();
    for name in &names {
        let (client, mut eventloop) = v5_publisher(port, name).await;
        let topic = format!("anxin/v1/dev/{name}/status");
        answers.push(v5_publish(&client, &mut eventloop, &topic, status(), true).await);
        // Its status again replaces its own: no new one.
        if name == "retain-0" {
            let again = v5_publish(&client, &mut eventloop, &topic, status(), true).await;
            assert_eq!(again, PubAckReason::Success, "a device's own status, replaced");
            let huge = v5_publish(&client, &mut eventloop, &topic, vec![b' '; 60 * 1024], true).await;
            assert_eq!(huge, PubAckReason::QuotaExceeded, "a 60 KiB status is over the size");
        }
        // The same device's summaries go on, whatever became of its status.
        let topic = format!("anxin/v1/dev/{name}/summary");
        assert_eq!(v5_publish(&client, &mut eventloop, &topic, summary(1), false).await, PubAckReason::Success);
    }
    assert_eq!(
        answers,
        [PubAckReason::Success, PubAckReason::Success, PubAckReason::Success, PubAckReason::QuotaExceeded],
        "three retained statuses, then full"
    );
    assert_eq!(store.message_keys().await.unwrap().len(), 4, "every summary stored");
    broker.stop().await;
}

/// 300 devices connecting at once to an edge that has seen none of them (an
/// edge restarted under its homes): their identities are read from the
/// database together, in a couple of batches, not one by one behind the
/// pool; connecting again reads nothing. A wrong secret and an unknown name
/// in the same crowd are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_devices_connecting_at_once_have_their_identities_read_together() {
    use mqtt5::broker::auth::AuthProvider as _;
    let (store, _guard) = fresh_store(Backend::Postgres).await;
    let names: Vec<String> = (0..300).map(|n| format!("crowd-{n:03}")).collect();
    enrol_devices(&store, &names).await;
    let auth = BrokerAuth::new(store.clone(), RateLimits::default());
    let connect = |name: &str, secret: &str| mqtt5::packet::connect::ConnectPacket {
        protocol_version: 4,
        clean_start: true,
        keep_alive: 30,
        client_id: name.to_string(),
        username: Some(name.to_string()),
        password: Some(secret.as_bytes().to_vec()),
        will: None,
        properties: Default::default(),
        will_properties: Default::default(),
    };
    let address: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut crowd: Vec<_> = names.iter().map(|name| connect(name, SECRET)).collect();
    crowd.push(connect("crowd-000", "not-the-secret-0123456789"));
    crowd.push(connect("crowd-unknown", SECRET));
    let results = futures_util::future::join_all(crowd.iter().map(|packet| auth.authenticate(packet, address))).await;
    let accepted: Vec<bool> = results.into_iter().map(|result| result.unwrap().authenticated).collect();
    assert!(accepted[..300].iter().all(|ok| *ok), "every device with its secret is let in");
    assert_eq!(&accepted[300..], [false, false], "a wrong secret and an unknown name are refused");
    let batches = auth.identity_batches_read();
    assert!(batches <= 3, "302 connects read in {batches} batches");
    let again =
        futures_util::future::join_all(crowd[..300].iter().map(|packet| auth.authenticate(packet, address))).await;
    assert!(again.into_iter().all(|result| result.unwrap().authenticated));
    assert_eq!(auth.identity_batches_read(), batches, "identities kept are not read again");
}
