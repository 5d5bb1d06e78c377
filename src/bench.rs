//! `anxin bench ingest`: what durable ingest costs, as a ratio to what the
//! same broker delivers to a bare subscriber, measured in one run.
//!
//! Both phases use the embedded broker on loopback and the same pre-encoded
//! workload (a summary per home per round, a door event for every tenth home)
//! from the same publisher connections. The ceiling is the rate a bare QoS 1
//! subscriber receives it; the durable rate is the rate PUBACKs come back
//! when each PUBACK means "committed to SQLite (WAL, synchronous=FULL)".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anxin_gateway::broker::embedded::EmbeddedBroker;
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_gateway::store::{Database, Store};
use anxin_protocol::{DoorState, Event, EventKind, Summary};
use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Outgoing, Packet, QoS};

#[derive(Debug, clap::Args)]
pub struct BenchIngestArgs {
    /// Homes in the workload (distinct device ids)
    #[arg(long, default_value_t = 1_000)]
    pub homes: usize,
    /// Summaries per home
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// Publisher connections carrying the workload [default: one per home, at most 2,000]
    #[arg(long)]
    pub publishers: Option<usize>,
}

type Workload = Vec<Vec<(String, Vec<u8>)>>;

fn workload(args: &BenchIngestArgs) -> (Workload, usize) {
    let publishers = args.publishers.unwrap_or(args.homes.min(2_000)).max(1);
    let mut per_publisher: Workload = vec![Vec::new(); publishers];
    let mut total = 0;
    let mut buffer = [0u8; 512];
    for round in 0..args.rounds {
        for home in 0..args.homes {
            let device = format!("bench-{home:06}");
            let publisher = home % per_publisher.len();
            let seq = round * 2;
            let summary = Summary {
                boot: 1,
                seq,
                up: u64::from(round) * 300_000,
                interval_s: 300,
                motion: 4,
                door_opens: 1,
                temp_dc: Some(205),
                battery: Some(90),
                rssi: Some(-60),
            };
            let len = summary.encode(&mut buffer).unwrap_or(0);
            per_publisher[publisher].push((format!("anxin/v1/dev/{device}/summary"), buffer[..len].to_vec()));
            total += 1;
            if home % 10 == 0 {
                let event = Event {
                    boot: 1,
                    seq: seq + 1,
                    up: u64::from(round) * 300_000 + 1,
                    kind: EventKind::Door(DoorState::Open),
                };
                let len = event.encode(&mut buffer).unwrap_or(0);
                per_publisher[publisher].push((format!("anxin/v1/dev/{device}/event"), buffer[..len].to_vec()));
                total += 1;
            }
        }
    }
    (per_publisher, total)
}

/// Connects, waits at `start` with the other publishers (so connection set-up
/// is not timed), then publishes `messages` at QoS 1 and returns each one's
/// publish→PUBACK time.
async fn publish_all(
    broker: SocketAddr,
    client_id: String,
    messages: Vec<(String, Vec<u8>)>,
    start: std::sync::Arc<tokio::sync::Barrier>,
) -> anyhow::Result<Vec<Duration>> {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    loop {
        if let MqttEvent::Incoming(Packet::ConnAck(_)) = eventloop.poll().await.context("publisher connection")? {
            break;
        }
    }
    start.wait().await;
    let count = messages.len();
    let sender = tokio::spawn(async move {
        for (topic, payload) in messages {
            if client.publish(topic, QoS::AtLeastOnce, false, payload).await.is_err() {
                break;
            }
        }
        client
    });
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    while latencies.len() < count {
        match eventloop.poll().await.context("publisher connection")? {
            MqttEvent::Outgoing(Outgoing::Publish(packet_id)) => {
                sent_at.insert(packet_id, Instant::now());
            }
            MqttEvent::Incoming(Packet::PubAck(ack)) => {
                if let Some(at) = sent_at.remove(&ack.pkid) {
                    latencies.push(at.elapsed());
                }
            }
            _ => {}
        }
    }
    let client = sender.await?;
    let _ = client.disconnect().await;
    Ok(latencies)
}

/// Publishes the workload; returns the latencies and the time from the
/// moment every publisher was connected to the last PUBACK.
async fn publish_workload(
    broker: SocketAddr,
    workload: &Workload,
    phase: &str,
) -> anyhow::Result<(Vec<Duration>, Instant)> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(workload.len() + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, messages) in workload.iter().enumerate() {
        tasks.spawn(publish_all(broker, format!("bench-{phase}-publisher-{index}"), messages.clone(), start.clone()));
    }
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    Ok((latencies, started))
}

/// The `percent`-th percentile of sorted latencies, in milliseconds (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) * percent).div_ceil(100);
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|line| line.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A quantile of a summary metric from the Prometheus text, in milliseconds.
fn quantile_ms(rendered: &str, metric: &str, quantile: &str) -> f64 {
    let prefix = format!("{metric}{{quantile=\"{quantile}\"}} ");
    rendered
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |seconds| seconds * 1_000.0)
}

pub async fn ingest(args: BenchIngestArgs) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let (workload, total) = workload(&args);
    println!(
        "workload: {} homes × {} rounds = {total} messages (summaries, and a door event for every tenth home) over {} connections",
        args.homes,
        args.rounds,
        workload.len()
    );
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;

    // Ceiling: a bare broker and a bare subscriber.
    let bare = EmbeddedBroker { listen: loopback }.start_bare().await?;
    let mut options = MqttOptions::new("bench-ceiling-subscriber", "127.0.0.1", bare.local_addr.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_inflight(1_000);
    let (subscriber, mut subscriber_loop) = AsyncClient::new(options, 1_000);
    subscriber.subscribe("anxin/v1/dev/+/+", QoS::AtLeastOnce).await?;
    loop {
        if let MqttEvent::Incoming(Packet::SubAck(_)) = subscriber_loop.poll().await? {
            break;
        }
    }
    let received = tokio::spawn(async move {
        let mut count = 0;
        let mut started = None;
        while count < total {
            match subscriber_loop.poll().await {
                Ok(MqttEvent::Incoming(Packet::Publish(_))) => {
                    started.get_or_insert_with(Instant::now);
                    count += 1;
                }
                Ok(_) => {}
                Err(error) => return Err(anyhow::anyhow!("ceiling subscriber: {error}")),
            }
        }
        Ok(Instant::now())
    });
    let (_, ceiling_started) = publish_workload(bare.local_addr, &workload, "ceiling").await?;
    let ceiling_done =
        tokio::time::timeout(Duration::from_secs(600), received).await.context("ceiling subscriber timed out")???;
    let ceiling_seconds = ceiling_done.duration_since(ceiling_started).as_secs_f64();
    bare.stop().await;
    drop(subscriber);

    // Durable: the gateway's ingest behind the broker's publish hook.
    let folder = std::env::temp_dir().join(format!("anxin-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let store = Store::open(&Database::in_data_dir(&folder)).await?;
    let (ingest, writer) = Ingest::start(store.clone(), Default::default(), IngestConfig::default());
    let broker = EmbeddedBroker { listen: loopback }.start(ingest.clone()).await?;
    let (mut latencies, durable_started) = publish_workload(broker.local_addr, &workload, "durable").await?;
    let durable_seconds = durable_started.elapsed().as_secs_f64();
    broker.stop().await;
    drop(ingest);
    let _ = writer.await;
    let stored = store.message_count().await?;
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);
    if usize::try_from(stored)? != total {
        bail!("stored {stored} of {total} messages");
    }

    latencies.sort_unstable();
    let ceiling_rate = total as f64 / ceiling_seconds;
    let durable_rate = total as f64 / durable_seconds;
    println!("ceiling  bare subscriber on the embedded broker : {ceiling_rate:>9.0} msg/s");
    println!(
        "durable  stored in SQLite (WAL, FULL), acked   : {durable_rate:>9.0} msg/s  = {:.0}% of the ceiling",
        100.0 * durable_rate / ceiling_rate
    );
    println!(
        "publish → PUBACK (= committed): p50 {:.2} ms, p99 {:.2} ms; all {stored} stored once",
        percentile(&latencies, 50),
        percentile(&latencies, 99)
    );
    let rendered = metrics.render();
    println!(
        "batch commit: p50 {:.2} ms, p99 {:.2} ms; batch size p50 {:.0}, p99 {:.0}",
        quantile_ms(&rendered, anxin_gateway::metrics::COMMIT_SECONDS, "0.5"),
        quantile_ms(&rendered, anxin_gateway::metrics::COMMIT_SECONDS, "0.99"),
        quantile_ms(&rendered, anxin_gateway::metrics::BATCH_SIZE, "0.5") / 1_000.0,
        quantile_ms(&rendered, anxin_gateway::metrics::BATCH_SIZE, "0.99") / 1_000.0,
    );
    println!("peak memory of this process (broker, gateway, publishers): {:.0} MiB", peak_rss_mib());
    Ok(())
}
