//! Issue 20: a province's store writers as processes — `anxin gateway
//! --cluster-log` on PostgreSQL, reading a real three-node NATS JetStream
//! cluster that the test appends to as an edge would.

use std::time::Duration;

use anxin_domain::registry::NewElder;
use anxin_gateway::broker::log::{Log, LogConfig};
use anxin_store::{AlertFilter, Database, Store, now_ms};
use anxin_testkit::{NatsCluster, PostgresDatabase};

use crate::serve::Process;

fn writer(database: &str, cluster: &NatsCluster) -> Process {
    let servers = cluster.urls().join(",");
    let process =
        Process::start(&["--database", database, "gateway", "--cluster-log", &servers, "--http-listen", "127.0.0.1:0"]);
    assert!(process.ready.contains("store writer on the cluster log"), "{}", process.ready);
    process
}

/// Appends as an edge does, sending again what the log did not take.
async fn append(log: &Log, topic: &str, payload: &[u8], id: &str, urgent: bool) {
    for _attempt in 0..50 {
        if log.append(topic, payload, now_ms(), urgent, Some(id)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the log never took {id}");
}

/// Two writer processes share the log's lanes. One is frozen (SIGSTOP) and
/// then killed (SIGKILL) while it holds messages taken from the log and
/// never acknowledged, and a log node is killed too: every appended message is stored exactly once,
/// the smoke alarm among them opens one alert, the log ends empty, and the
/// surviving writer stops in order on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_the_cluster_log_store_every_message_once_when_one_is_killed() {
    let mut cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let elder = NewElder {
        name: "赵玉兰".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 5 号".into(),
        categories: "living_alone".into(),
        ..NewElder::default()
    };
    let elder = store.add_elder(&elder, now_ms()).await.unwrap().id;
    store.pair_device("writer-smoke", elder, now_ms()).await.unwrap();
    let first = writer(&database.url, &cluster);
    let second = writer(&database.url, &cluster);
    let edge = Log::open(LogConfig { servers: cluster.urls(), ..LogConfig::default() }).await.unwrap();

    // Both writers wait on both lanes; then the first is frozen (SIGSTOP)
    // with its pulls standing: the log hands it messages it will never
    // acknowledge. It is killed (SIGKILL) a little later.
    let waiting = tokio::time::Instant::now() + Duration::from_secs(30);
    while edge.waiting_pulls().await.map_or(true, |lanes| lanes.iter().any(|&pulls| pulls < 2)) {
        assert!(tokio::time::Instant::now() < waiting, "both writers pull: {:?}", edge.waiting_pulls().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.freeze();
    let total: u32 = 2_000;
    let mut first = Some(first);
    for n in 0..total {
        let payload = format!(
            r#"{{"v":1,"boot":1,"seq":{},"up":{n},"interval_s":300,"motion":1,"door_opens":0,"battery":88}}"#,
            n / 20
        );
        let device = format!("writer-{:02}", n % 20);
        let id = format!("{device}/1/{}", n / 20);
        append(&edge, &format!("anxin/v1/dev/{device}/summary"), payload.as_bytes(), &id, false).await;
        if n == 800 {
            first.take().unwrap().kill();
        }
        if n == 1_000 {
            let smoke = r#"{"v":1,"boot":2,"seq":4,"up":40,"kind":"smoke","state":"alarm"}"#;
            append(&edge, "anxin/v1/dev/writer-smoke/event", smoke.as_bytes(), "writer-smoke/2/4", true).await;
        }
        if n == 1_300 {
            cluster.kill(2);
        }
    }
    let expected = i64::from(total) + 1;
    // The killed writer's messages come back after the log's ack wait (30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while store.message_count().await.unwrap() < expected || edge.pending().await.map_or(true, |left| left > 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected} stored, {:?} left in the log",
            store.message_count().await.unwrap(),
            edge.pending().await.map_err(|e| e.to_string())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.message_count().await.unwrap(), expected, "each message once");
    let deliveries = edge.deliveries().await.unwrap();
    assert!(deliveries > expected.cast_unsigned(), "the killed writer held messages, handed out again: {deliveries}");
    let alerts = store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap();
    assert_eq!(alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), ["smoke"], "one alert");
    let (said, status) = second.terminate();
    assert!(status.success() && said.iter().any(|line| line.contains("stopped")), "{status}: {said:?}");
    store.close().await;
}
