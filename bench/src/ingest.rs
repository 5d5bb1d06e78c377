//! `anxin bench ingest`: what durable ingest costs, as a ratio to what the
//! same broker delivers to a bare subscriber, measured in one run.
//!
//! Phases, each beside its baseline:
//! 1. **Ceiling**: the workload (a summary per home per round, a door event
//!    for every tenth home, pre-encoded) from the publisher connections to a
//!    bare QoS 1 subscriber on the same broker — embedded (`anxin serve`'s)
//!    or a Mosquitto started for the run (`anxin gateway`'s path).
//! 2. **Durable**: the same workload into the gateway. Embedded: the rate of
//!    PUBACKs, each meaning "committed". Mosquitto: the rate the gateway
//!    commits what the broker delivers (the broker acknowledges publishers
//!    itself). SQLite is WAL with `synchronous=FULL`; `--database` takes a
//!    PostgreSQL server instead; `--rules` pairs every home so the alert
//!    rules run on every message.
//! 3. **Backlog** (`--backlog N`): Mosquitto — the gateway away while N
//!    messages queue for its session, then started: the drain rate and the
//!    memory it takes; embedded — every publisher flushing its share of N at
//!    once (nodes back after an outage). Smoke alarms from live homes are
//!    timed to the console feed meanwhile.
//! 4. **Latency** (`--latency-seconds`): a probe's publish → bare subscriber
//!    latency beside a smoke alarm's publish → console feed latency, first
//!    with no load (the floor: a durable alert costs at least one commit),
//!    then under a steady load at half the durable rate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_gateway::alerts::delivery::start_feed;
use anxin_gateway::broker::embedded::RunningBroker;
use anxin_gateway::broker::external::{self, ExternalBroker, Subscribed};
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_gateway::metrics;
use anxin_protocol::{DoorState, Event, EventKind};
use anxin_store::{AlertChange, Database, Store, now_ms};
use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event as MqttEvent, Outgoing, Packet, QoS};
use tokio::sync::{broadcast, watch};

use super::{
    BenchClients, Histograms, Mosquitto, Pace, latency_line, paced_summaries, peak_rss_mib, percentile, percentile_of,
    rss_mib, smoke_probes, watched_home,
};
use crate::out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    /// `anxin serve`'s broker, in this process
    Embedded,
    /// A Mosquitto started for the run, read by the gateway's external path (`anxin gateway`)
    Mosquitto,
}

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
    /// Publishes each connection keeps waiting for their PUBACK
    #[arg(long, default_value_t = 100)]
    pub inflight: u16,
    /// The broker the messages pass through
    #[arg(long, value_enum, default_value_t = BrokerKind::Embedded)]
    pub broker: BrokerKind,
    /// A PostgreSQL server (postgres://USER@HOST:PORT/DB) to measure instead of SQLite; the run uses a fresh
    /// database of its own there and drops it after
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Pair every home with an elder, so the alert rules run on every message
    #[arg(long)]
    pub rules: bool,
    /// Also drain a backlog of N messages, timing smoke alarms from live homes meanwhile
    #[arg(long, value_name = "N")]
    pub backlog: Option<usize>,
    /// Seconds of steady load at half the durable rate, timing smoke alarms to the console feed against a
    /// bare subscriber's latency at the same load (0: skip)
    #[arg(long, default_value_t = 5)]
    pub latency_seconds: u64,
    /// The batch writer's size limit [default: the gateway's]
    #[arg(long)]
    pub batch_max: Option<usize>,
    /// How long the batch writer waits for a batch to fill, in ms [default: the gateway's]
    #[arg(long)]
    pub batch_deadline_ms: Option<u64>,
}

impl BenchIngestArgs {
    fn ingest_config(&self) -> IngestConfig {
        let default = IngestConfig::default();
        IngestConfig {
            batch_max: self.batch_max.unwrap_or(default.batch_max),
            batch_deadline: self.batch_deadline_ms.map_or(default.batch_deadline, Duration::from_millis),
            ..default
        }
    }
}

/// Each publisher's messages, in order.
type Workload = Vec<Vec<(String, Vec<u8>)>>;

/// The workload devices: `bench-000000`, … (so `--rules` can pair them).
fn device(home: usize) -> String {
    format!("bench-{home:06}")
}

/// `rounds` summaries per home and a door event for every tenth home each
/// round, spread over `publishers` connections; `boot` keeps runs apart.
fn make_workload(homes: usize, rounds: u32, publishers: usize, boot: u32) -> (Workload, usize) {
    let mut per_publisher: Workload = vec![Vec::new(); publishers.max(1)];
    let mut total = 0;
    let mut buffer = [0u8; 512];
    for round in 0..rounds {
        for home in 0..homes {
            let publisher = home % per_publisher.len();
            let seq = round * 2;
            let summary = super::summary(boot, seq, u64::from(round) * 300_000, 300, 4, 1);
            per_publisher[publisher].push((format!("anxin/v1/dev/{}/summary", device(home)), summary));
            total += 1;
            if home % 10 == 0 {
                let event = Event {
                    boot,
                    seq: seq + 1,
                    up: u64::from(round) * 300_000 + 1,
                    kind: EventKind::Door(DoorState::Open),
                };
                let len = event.encode(&mut buffer).unwrap_or(0);
                per_publisher[publisher].push((format!("anxin/v1/dev/{}/event", device(home)), buffer[..len].to_vec()));
                total += 1;
            }
        }
    }
    (per_publisher, total)
}

/// Connects, waits at `start` with the other publishers (so connection set-up
/// is not timed), then publishes `messages` at QoS 1 and returns each one's
/// publish → PUBACK time.
async fn publish_all(
    clients: BenchClients,
    broker: SocketAddr,
    client_id: String,
    messages: Vec<(String, Vec<u8>)>,
    inflight: u16,
    start: Arc<tokio::sync::Barrier>,
) -> anyhow::Result<Vec<Duration>> {
    let (client, mut eventloop) = clients.connect(broker, client_id, inflight).await?;
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

/// Publishes the workload from all its connections at once; returns the
/// PUBACK latencies and the moment every publisher was connected.
async fn publish_workload(
    clients: &BenchClients,
    broker: SocketAddr,
    workload: &Workload,
    inflight: u16,
    phase: &str,
) -> anyhow::Result<(Vec<Duration>, Instant)> {
    let name = |index: usize| format!("bench-{phase}-publisher-{index}");
    let publishers = workload.iter().enumerate().map(|(index, messages)| {
        let devices: std::collections::BTreeSet<String> =
            messages.iter().filter_map(|(topic, _)| topic.split('/').nth(3).map(str::to_string)).collect();
        (name(index), devices.into_iter().collect())
    });
    clients.enrol_publishers(publishers.collect()).await?;
    let start = Arc::new(tokio::sync::Barrier::new(workload.len() + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, messages) in workload.iter().enumerate() {
        let client_id = name(index);
        tasks.spawn(publish_all(clients.clone(), broker, client_id, messages.clone(), inflight, start.clone()));
    }
    // Released once every publisher is connected.
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    Ok((latencies, started))
}

/// A bare QoS 1 subscriber to every device topic; `Some(prefix)`: only the
/// topics of devices whose id starts with it, timed from the publish
/// instant each probe carries in its payload's `up`.
struct BareSubscriber {
    received: tokio::task::JoinHandle<anyhow::Result<(usize, Instant)>>,
}

impl BareSubscriber {
    /// Subscribes, and counts `expected` messages from the subscription on.
    async fn start(clients: &BenchClients, broker: SocketAddr, expected: usize) -> anyhow::Result<BareSubscriber> {
        let mut options = clients.subscriber("bench-bare-subscriber", broker).await?;
        options.set_keep_alive(Duration::from_secs(60));
        options.set_inflight(1_000);
        let (subscriber, mut eventloop) = AsyncClient::new(options, 1_000);
        subscriber.subscribe("anxin/v1/dev/+/+", QoS::AtLeastOnce).await?;
        loop {
            if let MqttEvent::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
                break;
            }
        }
        let received = tokio::spawn(async move {
            let _subscriber = subscriber;
            let mut count = 0;
            while count < expected {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::Publish(_))) => count += 1,
                    Ok(_) => {}
                    Err(error) => bail!("bare subscriber: {error}"),
                }
            }
            Ok((count, Instant::now()))
        });
        Ok(BareSubscriber { received })
    }

    async fn done(self) -> anyhow::Result<Instant> {
        let (_, at) = tokio::time::timeout(Duration::from_secs(900), self.received)
            .await
            .context("the bare subscriber timed out")???;
        Ok(at)
    }
}

/// Where the run stores: a fresh SQLite folder, or a fresh database on a
/// PostgreSQL server.
struct Scratch {
    database: Database,
    folder: std::path::PathBuf,
    postgres: Option<(String, String)>,
}

impl Scratch {
    async fn create(server: Option<&str>) -> anyhow::Result<Scratch> {
        let folder = std::env::temp_dir().join(format!("anxin-bench-ingest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder)?;
        let Some(server) = server else {
            return Ok(Scratch { database: Database::in_data_dir(&folder), folder, postgres: None });
        };
        use sqlx::Connection;
        let name = format!("anxin_bench_{}", std::process::id());
        let mut connection = sqlx::PgConnection::connect(server).await.context("connect to --database")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut connection).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut connection).await?;
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{server}/{name}"),
        };
        Ok(Scratch { database: Database::Postgres(url), folder, postgres: Some((server.to_string(), name)) })
    }

    fn describe(&self) -> &'static str {
        match self.database {
            Database::Sqlite(_) => "SQLite (WAL, synchronous=FULL)",
            Database::Postgres(_) => "PostgreSQL",
        }
    }

    async fn drop_all(self) {
        let _ = std::fs::remove_dir_all(&self.folder);
        if let Some((server, name)) = self.postgres {
            use sqlx::Connection;
            if let Ok(mut connection) = sqlx::PgConnection::connect(&server).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut connection)
                    .await;
            }
        }
    }
}

/// The gateway under test: ingest, the console feed, and a broker path.
struct Gateway {
    ingest: Ingest,
    writer: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    embedded: Option<RunningBroker>,
    feed: broadcast::Sender<Arc<AlertChange>>,
    /// Where devices publish.
    broker: SocketAddr,
}

impl Gateway {
    async fn start(
        store: &Store,
        policy: &Arc<AlertPolicy>,
        config: IngestConfig,
        mosquitto: Option<&Mosquitto>,
        clients: &BenchClients,
    ) -> anyhow::Result<Gateway> {
        let (shutdown, shutdown_watch) = watch::channel(false);
        let (ingest, writer) = Ingest::start(store.clone(), policy.clone(), config);
        let (feed, feed_task) = start_feed(store.clone(), shutdown_watch.clone());
        let mut tasks = vec![feed_task];
        let (embedded, broker) = match mosquitto {
            None => {
                let broker = clients.embedded_broker().start(ingest.clone()).await?;
                let address = broker.local_addr;
                (Some(broker), address)
            }
            Some(mosquitto) => {
                let config = ExternalBroker::new("127.0.0.1", mosquitto.address.port(), "bench-gateway");
                let (subscribed, mut subscribed_watch) = watch::channel(Subscribed::default());
                tasks.push(tokio::spawn(external::run_watched(config, ingest.clone(), shutdown_watch, subscribed)));
                tokio::time::timeout(Duration::from_secs(20), subscribed_watch.wait_for(Subscribed::both))
                    .await
                    .context("the gateway did not subscribe within 20 s")??;
                (None, mosquitto.address)
            }
        };
        Ok(Gateway { ingest, writer, shutdown, tasks, embedded, feed, broker })
    }

    /// Waits until `count` more events and summaries than `before` are stored.
    async fn stored(&self, before: u64, count: usize) -> anyhow::Result<Instant> {
        let target = before + u64::try_from(count)?;
        let mut last = (self.ingest.progress().snapshot().stored, Instant::now());
        loop {
            let stored = self.ingest.progress().snapshot().stored;
            if stored >= target {
                return Ok(Instant::now());
            }
            if stored != last.0 {
                last = (stored, Instant::now());
            }
            anyhow::ensure!(
                last.1.elapsed() < Duration::from_secs(60),
                "ingest stalled at {} of {count} messages ({:?})",
                stored - before,
                self.ingest.progress().snapshot()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(broker) = self.embedded {
            broker.stop().await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        drop(self.ingest);
        let _ = self.writer.await;
    }
}

/// Commit time and batch size of what the writer committed since the last look.
fn commit_figures(histograms: &Histograms) -> String {
    let mut commit = histograms.take(metrics::COMMIT_SECONDS);
    let mut batch = histograms.take(metrics::BATCH_SIZE);
    let mut lag = histograms.take(metrics::ACK_LAG_SECONDS);
    format!(
        "batch commit: p50 {:.2} ms, p99 {:.2} ms; batch size p50 {:.0}, p99 {:.0} ({} commits); received → committed p50 {:.1} ms, p99 {:.1} ms",
        percentile_of(&mut commit, 50) * 1_000.0,
        percentile_of(&mut commit, 99) * 1_000.0,
        percentile_of(&mut batch, 50),
        percentile_of(&mut batch, 99),
        batch.len(),
        percentile_of(&mut lag, 50) * 1_000.0,
        percentile_of(&mut lag, 99) * 1_000.0,
    )
}

fn per_second(count: usize, from: Instant, to: Instant) -> f64 {
    count as f64 / to.duration_since(from).as_secs_f64().max(1e-9)
}

/// Samples this process's memory every 100 ms until told to stop; returns the peak seen.
fn sample_memory() -> (watch::Sender<bool>, tokio::task::JoinHandle<f64>) {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut peak = rss_mib();
        loop {
            tokio::select! {
                _ = stopped.changed() => return peak,
                () = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(rss_mib()),
            }
        }
    });
    (stop, task)
}

pub async fn ingest(args: BenchIngestArgs) -> anyhow::Result<()> {
    let histograms = Histograms::install(&[metrics::COMMIT_SECONDS, metrics::BATCH_SIZE, metrics::ACK_LAG_SECONDS])?;
    let publishers = args.publishers.unwrap_or(args.homes.min(2_000)).clamp(1, args.homes.max(1));
    let (workload, total) = make_workload(args.homes, args.rounds, publishers, 1);
    let mosquitto = match args.broker {
        BrokerKind::Embedded => None,
        BrokerKind::Mosquitto => Some(Mosquitto::start()?),
    };
    let scratch = Scratch::create(args.database.as_deref()).await?;
    let broker_name = match args.broker {
        BrokerKind::Embedded => "the embedded broker",
        BrokerKind::Mosquitto => "Mosquitto",
    };
    out!(
        "workload: {} homes × {} rounds = {total} messages (summaries, and a door event for every tenth home) over {} connections, {} in flight each; {broker_name}; {}{}",
        args.homes,
        args.rounds,
        workload.len(),
        args.inflight,
        scratch.describe(),
        if args.rules { "; every home paired, the rules on every message" } else { "" }
    );

    // The run's database, and its clients' identities (the bare broker checks them too).
    let store = Store::open(&scratch.database).await?;
    let clients = BenchClients::new(&store);
    // Homes and probes first: enrolling a publisher registers its devices too.
    let policy = Arc::new(AlertPolicy::default());
    let now = now_ms();
    // 50 for the backlog, 50 with no load, 150 at half the durable rate.
    let probe_count = 250;
    if args.rules {
        store
            .populate_for_benchmark(args.homes, "bench", now, |_, device| watched_home(&policy, now, device, now))
            .await?;
    }
    let probe_elders = store
        .populate_for_benchmark(probe_count, "probe", now, |_, device| watched_home(&policy, now, device, now))
        .await?;
    let probes: Vec<(String, i64)> =
        probe_elders.iter().enumerate().map(|(index, elder)| (format!("probe-{index:06}"), *elder)).collect();

    // 1. Ceiling: the same broker, a bare subscriber.
    let (bare, bare_address) = bare_broker(&clients, mosquitto.as_ref()).await?;
    let subscriber = BareSubscriber::start(&clients, bare_address, total).await?;
    let (_, ceiling_started) = publish_workload(&clients, bare_address, &workload, args.inflight, "ceiling").await?;
    let ceiling_done = subscriber.done().await?;
    let ceiling_rate = per_second(total, ceiling_started, ceiling_done);
    if let Some(bare) = bare {
        bare.stop().await;
    }
    out!("ceiling  bare subscriber on {broker_name:<20}: {ceiling_rate:>9.0} msg/s");

    // 2. Durable: the gateway.
    let gateway = Gateway::start(&store, &policy, args.ingest_config(), mosquitto.as_ref(), &clients).await?;
    let before = gateway.ingest.progress().snapshot().stored;
    let _ = commit_figures(&histograms);
    let (mut latencies, durable_started) =
        publish_workload(&clients, gateway.broker, &workload, args.inflight, "durable").await?;
    let durable_done = match args.broker {
        BrokerKind::Embedded => Instant::now(),
        BrokerKind::Mosquitto => gateway.stored(before, total).await?,
    };
    let durable_rate = per_second(total, durable_started, durable_done);
    let stored = gateway.ingest.progress().snapshot().stored - before;
    if usize::try_from(stored)? != total {
        bail!("stored {stored} of {total} messages");
    }
    out!(
        "durable  stored in {:<29}: {durable_rate:>9.0} msg/s  = {:.0}% of the ceiling",
        scratch.describe(),
        100.0 * durable_rate / ceiling_rate
    );
    latencies.sort_unstable();
    match args.broker {
        BrokerKind::Embedded => out!(
            "publish → PUBACK (= committed): p50 {:.2} ms, p99 {:.2} ms; all {stored} stored once",
            percentile(&latencies, 50),
            percentile(&latencies, 99)
        ),
        BrokerKind::Mosquitto => out!(
            "publish → Mosquitto's PUBACK: p50 {:.2} ms, p99 {:.2} ms; all {stored} stored once",
            percentile(&latencies, 50),
            percentile(&latencies, 99)
        ),
    }
    out!("{}", commit_figures(&histograms));

    // 3. Backlog.
    let mut next_probe = 0;
    let mut gateway = gateway;
    if let Some(backlog) = args.backlog.filter(|n| *n > 0) {
        let rounds = u32::try_from(backlog.div_ceil(args.homes.max(1) * 11 / 10).max(1))?;
        let (messages, count) = make_workload(args.homes, rounds, publishers, 2);
        let memory_before = rss_mib();
        let smokes_during = &probes[..50];
        let every = Duration::from_millis(20);
        let (drain_started, drain_done, smokes, peak) = match &mosquitto {
            Some(mosquitto) => {
                // The gateway goes away; its sessions stay, and the broker queues for them.
                gateway.stop().await;
                let (_, _) = publish_workload(&clients, mosquitto.address, &messages, args.inflight, "backlog").await?;
                let (stop_sampling, peak) = sample_memory();
                let started = Instant::now();
                gateway = Gateway::start(&store, &policy, args.ingest_config(), Some(mosquitto), &clients).await?;
                // A new gateway counts from nothing (its drain may have begun already).
                let before = 0;
                let mut feed = gateway.feed.subscribe();
                let smokes = smoke_probes(&clients, gateway.broker, "backlog", smokes_during, every, &mut feed);
                // The smoke alarms are stored too: done when both are.
                let (smokes, done) = tokio::join!(smokes, gateway.stored(before, count + smokes_during.len()));
                let _ = stop_sampling.send(true);
                (started, done?, smokes?, peak.await?)
            }
            None => {
                let (stop_sampling, peak) = sample_memory();
                let mut feed = gateway.feed.subscribe();
                let flush = async {
                    let flushed = publish_workload(&clients, gateway.broker, &messages, args.inflight, "backlog").await;
                    (flushed, Instant::now())
                };
                let smokes = async {
                    // Once the flood is on.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    smoke_probes(&clients, gateway.broker, "backlog", smokes_during, every, &mut feed).await
                };
                let ((flushed, done), smokes) = tokio::join!(flush, smokes);
                let (_, started) = flushed?;
                let _ = stop_sampling.send(true);
                (started, done, smokes?, peak.await?)
            }
        };
        next_probe = 50;
        let rate = per_second(count, drain_started, drain_done);
        out!(
            "backlog  {count} messages {}: drained at {rate:>9.0} msg/s = {:.0}% of the ceiling; memory {memory_before:.0} → peak {peak:.0} MiB",
            match args.broker {
                BrokerKind::Embedded => format!("flushed by {} connections at once", messages.len()),
                BrokerKind::Mosquitto => "queued in Mosquitto for the gateway's session".to_string(),
            },
            100.0 * rate / ceiling_rate
        );
        out!("{}", latency_line("smoke → console feed while the backlog drains", &smokes));
        out!("{}", commit_figures(&histograms));
    }

    // 4. Latency at half the durable rate.
    if args.latency_seconds > 0 {
        let rate = durable_rate / 2.0;
        let load_devices: Vec<String> = (0..args.homes).map(device).collect();
        let connections = publishers.min(50);
        let seconds = Duration::from_secs(args.latency_seconds);
        let probes_wanted = probes.len() - next_probe - 50;
        let every = (seconds / u32::try_from(probes_wanted)?).max(Duration::from_millis(5));
        let pace = || Pace { rate, stop: Instant::now() + seconds };

        // The floor, with no load: a probe through the bare broker, and a
        // smoke alarm through the gateway — whose least cost is one commit
        // (an fsync on SQLite), as the feed shows only what is durable.
        let (idle_probes, steady_probes) = probes[next_probe..].split_at(50);
        let idle_every = Duration::from_millis(10);
        let (bare, bare_address) = bare_broker(&clients, mosquitto.as_ref()).await?;
        let idle_bare = bare_probes(&clients, bare_address, "idle", idle_probes.len(), idle_every).await?;
        let mut feed = gateway.feed.subscribe();
        let idle_smokes = smoke_probes(&clients, gateway.broker, "idle", idle_probes, idle_every, &mut feed).await?;

        // Bare broker at that load: a probe's publish → subscriber latency.
        let bare_latencies = {
            let load = steady_load(&clients, bare_address, &load_devices, connections, pace(), 1_000_000, "bare");
            let probing = bare_probes(&clients, bare_address, "steady", probes_wanted, every);
            let (load, probing) = tokio::join!(load, probing);
            load?;
            probing?
        };
        if let Some(bare) = bare {
            bare.stop().await;
        }
        // The gateway at that load: a smoke alarm's publish → console feed latency.
        let _ = commit_figures(&histograms);
        let smokes = {
            let load = steady_load(&clients, gateway.broker, &load_devices, connections, pace(), 2_000_000, "durable");
            let probing = smoke_probes(&clients, gateway.broker, "steady", steady_probes, every, &mut feed);
            let (load, probing) = tokio::join!(load, probing);
            load?;
            probing?
        };
        let ratio = |of: &[Duration], to: &[Duration]| percentile(of, 99) / percentile(to, 99).max(0.001);
        out!("with no load:");
        out!("{}", latency_line("  probe → bare subscriber              ", &idle_bare));
        out!("{}", latency_line("  smoke → alert on the console feed    ", &idle_smokes));
        out!(
            "  smoke p99 / bare p99: {:.1}× (the floor: a durable alert costs a commit)",
            ratio(&idle_smokes, &idle_bare)
        );
        out!("at half the durable rate ({rate:.0} msg/s over {connections} connections):");
        out!("{}", latency_line("  probe → bare subscriber              ", &bare_latencies));
        out!("{}", latency_line("  smoke → alert on the console feed    ", &smokes));
        out!(
            "  smoke p99 / bare p99: {:.1}×; smoke p99 / smoke p99 with no load: {:.1}×",
            ratio(&smokes, &bare_latencies),
            ratio(&smokes, &idle_smokes)
        );
        out!("  {}", commit_figures(&histograms));
    }

    gateway.stop().await;
    store.close().await;
    scratch.drop_all().await;
    out!("peak memory of this process (broker, gateway, publishers): {:.0} MiB", peak_rss_mib());
    Ok(())
}

/// The bare broker the ceiling is measured on: Mosquitto as it is, or a
/// fresh embedded broker with no ingest (stopped by the caller); and where
/// publishers reach it.
async fn bare_broker(
    clients: &BenchClients,
    mosquitto: Option<&Mosquitto>,
) -> anyhow::Result<(Option<RunningBroker>, SocketAddr)> {
    Ok(match mosquitto {
        Some(mosquitto) => (None, mosquitto.address),
        None => {
            let bare = clients.embedded_broker().start_bare().await?;
            let address = bare.local_addr;
            (Some(bare), address)
        }
    })
}

/// Summaries at `rate` per second in total over `connections`, for `seconds`.
async fn steady_load(
    clients: &BenchClients,
    broker: SocketAddr,
    devices: &[String],
    connections: usize,
    pace: Pace,
    first_seq: u32,
    phase: &str,
) -> anyhow::Result<()> {
    let Pace { rate, stop } = pace;
    let acked = Arc::new(AtomicU64::new(0));
    let per = devices.len().div_ceil(connections.max(1)).max(1);
    let name = |index: usize| format!("bench-{phase}-load-{index}");
    clients
        .enrol_publishers(devices.chunks(per).enumerate().map(|(index, chunk)| (name(index), chunk.to_vec())).collect())
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, chunk) in devices.chunks(per).enumerate() {
        let share = rate * chunk.len() as f64 / devices.len().max(1) as f64;
        let client_id = name(index);
        tasks.spawn(paced_summaries(
            clients.clone(),
            broker,
            client_id,
            chunk.to_vec(),
            first_seq,
            Pace { rate: share, stop },
            acked.clone(),
        ));
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

/// `count` probe events, `every` apart, from one connection to a bare
/// subscriber of their topic; publish → receive latencies, sorted.
async fn bare_probes(
    clients: &BenchClients,
    broker: SocketAddr,
    name: &str,
    count: usize,
    every: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let mut options = clients.subscriber(&format!("bench-probe-subscriber-{name}"), broker).await?;
    options.set_keep_alive(Duration::from_secs(60));
    let (subscriber, mut subscriber_loop) = AsyncClient::new(options, 100);
    subscriber.subscribe("anxin/v1/dev/bare-probe/event", QoS::AtLeastOnce).await?;
    loop {
        if let MqttEvent::Incoming(Packet::SubAck(_)) = subscriber_loop.poll().await? {
            break;
        }
    }
    let client_id = format!("bench-bare-probe-{name}");
    clients.enrol_publishers(vec![(client_id.clone(), vec!["bare-probe".into()])]).await?;
    let (client, mut eventloop) = clients.connect(broker, client_id, 100).await?;
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut sent: HashMap<u32, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(every);
    let mut next = 0u32;
    let deadline = Instant::now() + every * u32::try_from(count)? + Duration::from_secs(60);
    while latencies.len() < count && Instant::now() < deadline {
        tokio::select! {
            _ = ticker.tick(), if (next as usize) < count => {
                next += 1;
                sent.insert(next, Instant::now());
                client.publish("anxin/v1/dev/bare-probe/event", QoS::AtLeastOnce, false, super::smoke(next)).await?;
            }
            event = subscriber_loop.poll() => {
                if let MqttEvent::Incoming(Packet::Publish(publish)) = event? {
                    let seq = anxin_protocol::decode(anxin_protocol::Channel::Event, &publish.payload)
                        .ok()
                        .and_then(|payload| match payload {
                            anxin_protocol::Payload::Event(event) => Some(event.seq),
                            _ => None,
                        });
                    if let Some(at) = seq.and_then(|seq| sent.remove(&seq)) {
                        latencies.push(at.elapsed());
                    }
                }
            }
        }
    }
    let _ = client.disconnect().await;
    anyhow::ensure!(latencies.len() == count, "{} probes never reached the bare subscriber", count - latencies.len());
    latencies.sort_unstable();
    Ok(latencies)
}
