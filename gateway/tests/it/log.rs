//! Issue 20: the province's durable log — a real three-node NATS JetStream
//! cluster between the edges and the store writers.

use std::sync::Arc;
use std::time::Duration;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::registry::NewElder;
use anxin_gateway::broker::log::{Log, LogConfig};
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_store::{AlertFilter, Store, now_ms};
use anxin_testkit::NatsCluster;

use crate::{Backend, fresh_store, reopen};

const DEVICES: u32 = 20;

fn summary(device: u32, seq: u32) -> (String, Vec<u8>) {
    let payload =
        format!(r#"{{"v":1,"boot":1,"seq":{seq},"up":{seq},"interval_s":300,"motion":2,"door_opens":0,"battery":90}}"#);
    (format!("anxin/v1/dev/log-{device:02}/summary"), payload.into_bytes())
}

/// A store writer: its own ingest (batches, lanes) consuming the log.
struct Writer {
    _consuming: anxin_gateway::broker::log::Consuming,
    _ingest: Ingest,
}

async fn writer(store: Store, config: &LogConfig) -> Writer {
    let (ingest, _task) = Ingest::start(store, Arc::new(AlertPolicy::default()), IngestConfig::default());
    let log = Log::open(config.clone()).await.unwrap();
    Writer { _consuming: log.consume(ingest.clone()), _ingest: ingest }
}

/// Appends as an edge does, sending again what the log did not take (as
/// a device sends again what was not acknowledged).
async fn append(log: &Log, topic: &str, payload: &[u8]) {
    for _attempt in 0..50 {
        match log.append(topic, payload, now_ms()).await {
            Ok(()) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("the log never took {topic}: {}", String::from_utf8_lossy(payload));
}

/// Three log nodes (three copies of the stream) and two writers on
/// PostgreSQL. While 2,000 summaries and a smoke alarm are appended, one
/// node is killed with SIGKILL and later one writer is stopped with what it
/// held uncommitted or unacknowledged: every appended message is stored
/// exactly once, the smoke alarm opens exactly one alert, the log ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_three_node_log_every_message_is_stored_once_while_a_node_and_a_writer_die() {
    let mut cluster = NatsCluster::start(3);
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let elder = NewElder {
        name: "刘淑珍".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 3 号".into(),
        categories: "living_alone".into(),
        ..NewElder::default()
    };
    let elder = store.add_elder(&elder, now_ms()).await.unwrap().id;
    store.pair_device("log-smoke", elder, now_ms()).await.unwrap();
    let config =
        LogConfig { servers: cluster.urls(), replicas: 3, window: 256, batch: 64, ack_wait: Duration::from_secs(2) };
    let edge = Log::open(config.clone()).await.unwrap();
    let first = writer(store.clone(), &config).await;
    let mut second = Some(writer(reopen(&guard).await, &config).await);

    let total = 2_000;
    for n in 0..total {
        let (topic, payload) = summary(n % DEVICES, n / DEVICES);
        append(&edge, &topic, &payload).await;
        if n == 600 {
            cluster.kill(0);
        }
        if n == 1_000 {
            let smoke = r#"{"v":1,"boot":3,"seq":7,"up":70,"kind":"smoke","state":"alarm"}"#;
            append(&edge, "anxin/v1/dev/log-smoke/event", smoke.as_bytes()).await;
        }
        if n == 1_400 {
            second = None;
        }
    }
    let expected = i64::from(total) + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.message_count().await.unwrap() < expected || edge.pending().await.map_or(true, |left| left > 0) {
        if tokio::time::Instant::now() >= deadline {
            let keys = store.message_keys().await.unwrap();
            let smoke = keys.iter().any(|(device, _, _)| device == "log-smoke");
            panic!(
                "{} of {expected} stored (the smoke alarm {}), {:?} left in the log",
                keys.len(),
                if smoke { "among them" } else { "not" },
                edge.pending().await.map_err(|e| e.to_string())
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.message_count().await.unwrap(), expected, "each message once");
    let alerts = store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap();
    assert_eq!(alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), ["smoke"], "one alert");
    cluster.restart(0);
    assert!(second.is_none());
    drop(first);
}
