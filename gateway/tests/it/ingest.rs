//! Ingest through real brokers: Mosquitto (external path) and the embedded one.

use std::time::Duration;

use anxin_gateway::broker::embedded::EmbeddedBroker;
use anxin_gateway::broker::external::{self, ExternalBroker};
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_gateway::store::Store;
use anxin_testkit::Broker;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::watch;

use crate::{Backend, fresh_store};

fn event(seq: u32) -> String {
    format!(r#"{{"v":1,"boot":9,"seq":{seq},"up":{seq},"kind":"door","state":"open"}}"#)
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
}

impl RunningGateway {
    /// A gateway in share group `group` (each test its own: the broker may be shared).
    fn start(store: &Store, broker: &Broker, client_id: &str, group: &str) -> (RunningGateway, Ingest) {
        let (ingest, _writer) = Ingest::start(store.clone(), IngestConfig::default());
        let (shutdown, watch) = watch::channel(false);
        let mut config = ExternalBroker::new(broker.host(), broker.port(), client_id);
        config.share_group = Some(group.to_string());
        let task = tokio::spawn(external::run(config, ingest.clone(), watch));
        (RunningGateway { shutdown, task }, ingest)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_a_message_and_its_redelivery_are_stored_once_and_bad_input_is_counted() {
    let broker = Broker::start();
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let (gateway, ingest) = RunningGateway::start(&store, &broker, "gw-it-mosquitto", "it-mosquitto");
    let mut stored = ingest.subscribe_stored();
    // Wait for the gateway's subscription: publish a probe until it is stored.
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "ext-it-node", None).await;
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut probe_seq = 1_000;
    loop {
        client.publish("anxin/v1/dev/ext-it-node/event", QoS::AtLeastOnce, false, event(probe_seq)).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(300), stored.recv()).await.is_ok() {
            break;
        }
        probe_seq += 1;
    }
    // A probe that was slow to be stored may still land after the loop, so
    // the check counts the messages under test by key, not the total.
    let under_test = || async {
        let keys = store.message_keys().await.unwrap();
        keys.into_iter().filter(|(_, _, seq)| *seq < 1_000).collect::<Vec<_>>()
    };

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
    assert!(eventually(|| async { under_test().await == expected }).await, "{:?}", under_test().await);
    assert!(
        eventually(|| async {
            store.quarantine_counts().await.unwrap()
                == [
                    ("bad_device_id".into(), 1),
                    ("not_json".into(), 1),
                    ("too_large".into(), 1),
                    ("unknown_kind".into(), 1),
                ]
        })
        .await,
        "{:?}",
        store.quarantine_counts().await.unwrap()
    );
    gateway.stop().await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_acknowledges_a_message_only_once_it_is_stored() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let (ingest, _writer) = Ingest::start(store.clone(), IngestConfig::default());
    let broker = EmbeddedBroker { listen: "127.0.0.1:0".parse().unwrap() }.start(ingest).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_records_a_vanished_nodes_last_will() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    let (ingest, _writer) = Ingest::start(store.clone(), IngestConfig::default());
    let broker = EmbeddedBroker { listen: "127.0.0.1:0".parse().unwrap() }.start(ingest).await.unwrap();
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
    let broker = Broker::start();
    let (store, _guard) = fresh_store(Backend::Postgres).await;
    let (first, first_ingest) = RunningGateway::start(&store, &broker, "gw-it-share-1", "it-share");
    let (second, second_ingest) = RunningGateway::start(&store, &broker, "gw-it-share-2", "it-share");
    let mut first_stored = first_ingest.subscribe_stored();
    let mut second_stored = second_ingest.subscribe_stored();
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "share-it-node", None).await;
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    // Both gateways are subscribed once probes reach each of them.
    let (mut first_seen, mut second_seen) = (0usize, 0usize);
    let mut seq = 10_000;
    while first_seen == 0 || second_seen == 0 {
        client.publish("anxin/v1/dev/share-it-node/event", QoS::AtLeastOnce, false, event(seq)).await.unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(batch) = first_stored.try_recv() {
            first_seen += batch.len();
        }
        while let Ok(batch) = second_stored.try_recv() {
            second_seen += batch.len();
        }
    }
    let before = store.message_count().await.unwrap();
    let published = 400;
    for seq in 0..published {
        client.publish("anxin/v1/dev/share-it-node/event", QoS::AtLeastOnce, false, event(seq)).await.unwrap();
    }
    assert!(eventually(|| async { store.message_count().await.unwrap() == before + i64::from(published) }).await);
    let (mut first_count, mut second_count) = (0usize, 0usize);
    while let Ok(batch) = first_stored.try_recv() {
        first_count += batch.len();
    }
    while let Ok(batch) = second_stored.try_recv() {
        second_count += batch.len();
    }
    assert_eq!(first_count + second_count, published as usize, "each message stored by exactly one gateway");
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
    let (ingest, _writer) = Ingest::start(store.clone(), IngestConfig::default());
    let mut config = ExternalBroker::from_url(&format!("mqtts://{tls_address}"), "gw-it-tls").unwrap();
    config.tls.as_mut().unwrap().ca_file = Some(ca_file);
    let (shutdown, watch) = watch::channel(false);
    let gateway = tokio::spawn(external::run(config, ingest.clone(), watch));
    let mut stored = ingest.subscribe_stored();
    // The device publishes on the plain listener; the gateway reads over TLS.
    let (client, mut eventloop) = publisher(&broker.host(), broker.port(), "tls-it-node", None).await;
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut seq = 0;
    loop {
        client.publish("anxin/v1/dev/tls-it-node/event", QoS::AtLeastOnce, false, event(seq)).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(300), stored.recv()).await.is_ok() {
            break;
        }
        seq += 1;
        assert!(seq < 60, "nothing arrived over TLS in 18 s");
    }
    let _ = shutdown.send(true);
    let _ = gateway.await;
    driver.abort();
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
    let (ingest, writer) = Ingest::start(store.clone(), IngestConfig::default());
    let summary = |seq: u32| {
        format!(r#"{{"v":1,"boot":3,"seq":{seq},"up":{seq},"interval_s":300,"motion":1,"door_opens":0}}"#).into_bytes()
    };
    let mut summaries = Vec::new();
    for seq in 1..=5_000u32 {
        let topic = format!("anxin/v1/dev/queue-{}/summary", seq % 100);
        summaries.push(ingest.submit(topic, summary(seq), 1_000).await.unwrap());
    }
    let smoke = br#"{"v":1,"boot":3,"seq":9999,"up":1,"kind":"smoke","state":"alarm"}"#.to_vec();
    let committed = ingest.submit("anxin/v1/dev/queue-smoke/event".into(), smoke, 1_001).await.unwrap();
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
