//! `anxin bench cluster`: a province on loopback, measured (issue 20).
//!
//! The run starts what `scripts/cluster` starts, as processes of its own: a
//! three-node NATS JetStream cluster (`nats-server`, the durable log), store
//! writers and edges of this very binary (`anxin gateway --cluster-log`,
//! `anxin edge`), each on fresh loopback ports, and fresh databases on the
//! PostgreSQL server given (copies of one set up once, with every home
//! registered, paired and watched). It prints:
//!
//! - the rate one client appends to the log at, acknowledged by its quorum
//!   (an edge's ceiling), and the durable rate at which 1, 2 and 4 writers
//!   drain a backlog queued in the log, as ratios of one writer's: how the
//!   writers' tier scales on this machine;
//! - smoke alarm → console feed while homes publish through both edges,
//!   p50/p99: the feed is read here from a store that writes nothing, as a
//!   console process reads it;
//! - after `kill -9` of the stream's leader node, of the edge the alarms go
//!   through, and of a writer, in turn (each started again after): how long
//!   the alarms sent meanwhile took, how long after the kill they were
//!   prompt again, and that every one became an alert.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anxin_domain::alerts::AlertKind;
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_gateway::alerts::delivery::start_feed;
use anxin_gateway::broker::log::{Log, LogConfig};
use anxin_store::{AlertChange, Database, Store, now_ms};
use anyhow::Context;
use futures_util::StreamExt;
use rumqttc::{Event as MqttEvent, Packet, QoS};
use tokio::sync::broadcast;

use super::{BenchClients, latency_line, percentile, smoke, summary, watched_home};
use crate::out;

#[derive(Debug, clap::Args)]
pub struct BenchClusterArgs {
    /// The PostgreSQL server (postgres://USER@HOST:PORT/DB): the run makes fresh databases there
    /// and drops them after
    #[arg(
        long,
        env = "ANXIN_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        value_name = "URL"
    )]
    pub database: String,
    /// Homes registered, each an elder with one paired sensor node
    #[arg(long, default_value_t = 10_000)]
    pub homes: usize,
    /// Summaries queued in the log before the writers start, for each number of writers
    #[arg(long, default_value_t = 200_000)]
    pub backlog: usize,
    /// How many store writers drain the backlog, in turn (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub writers: Vec<usize>,
    /// Summaries a second from all homes through the edges while alarms are timed
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Smoke alarms timed with no fault, one every 200 ms, each from a home of its own
    #[arg(long, default_value_t = 100)]
    pub alarms: usize,
    /// Seconds of alarms (one every 200 ms) after each kill
    #[arg(long, default_value_t = 45)]
    pub recovery_seconds: u64,
    /// Idle device connections one edge is made to hold, to measure its memory per connection
    #[arg(long, default_value_t = 5_000)]
    pub connections: usize,
}

/// Alarms are sent this far apart, each from a home of its own.
const ALARM_EVERY: Duration = Duration::from_millis(200);

pub async fn cluster(args: BenchClusterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.writers.is_empty() && args.writers.iter().all(|&n| n > 0), "--writers: at least one each");
    let alarm_homes = args.alarms + 3 * alarm_count(args.recovery_seconds);
    anyhow::ensure!(
        args.homes >= alarm_homes + 10,
        "--homes {}: at least {} (one home per alarm, and some to publish summaries)",
        args.homes,
        alarm_homes + 10
    );
    let folder = std::env::temp_dir().join(format!("anxin-bench-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)?;
    let postgres = Postgres { server: args.database.clone(), prefix: format!("anxin_bench_{}", std::process::id()) };
    postgres.drop_stale().await;
    // Interrupted (Ctrl-C, SIGTERM), the run is dropped: its processes with it.
    let outcome = tokio::select! {
        outcome = run(&args, &folder, &postgres) => outcome,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}; the run's processes are stopped")),
    };
    postgres.drop_all().await;
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&folder);
    } else {
        out!("the processes' output is kept in {}", folder.display());
    }
    outcome
}

async fn run(args: &BenchClusterArgs, folder: &Path, postgres: &Postgres) -> anyhow::Result<()> {
    let mut nats = NatsNodes::start(folder)?;
    let servers = nats.urls();
    out!(
        "a province on loopback: 3 nats-server nodes (stream replicated 3×), writers and edges of {} on PostgreSQL at {}",
        std::env::current_exe()?.display(),
        postgres.server_without_password()
    );

    // Every home registered, paired and watched once, in a database the
    // phases copy.
    let set_up = Instant::now();
    let template = postgres.create("template", None).await?;
    {
        let store = Store::open(&Database::Postgres(template.clone())).await?;
        let policy = AlertPolicy::default();
        let now = now_ms();
        store
            .populate_for_benchmark(args.homes, "bench", now, |_, device| watched_home(&policy, now, device, now))
            .await?;
        // The day partitions a running province has (its upkeep made them).
        store.prepare_message_partitions(now).await?;
        store.close().await;
    }
    out!("{} homes registered, paired and watched in {:.1} s", args.homes, set_up.elapsed().as_secs_f64());

    let log = Log::open(LogConfig { servers: servers.split(',').map(String::from).collect(), ..LogConfig::default() })
        .await?;
    let devices: Vec<String> = (0..args.homes).map(device).collect();

    // The writers' tier: the same backlog drained by 1, 2, 4 writers.
    let mut one_writer = None;
    for (phase, &writers) in args.writers.iter().enumerate() {
        let url = postgres.create(&format!("w{writers}_{phase}"), Some("template")).await?;
        let boot = 1_000 + u32::try_from(phase)?;
        let appended = append_backlog(&log, &devices, args.backlog, boot).await?;
        if phase == 0 {
            out!(
                "appending {} summaries to the log from one client, each acknowledged by the quorum: {:.0} msg/s (an edge's ceiling)",
                args.backlog,
                args.backlog as f64 / appended.as_secs_f64()
            );
            if let Some(bytes) = nats.stream_bytes() {
                out!(
                    "the log keeps a queued summary in {:.0} bytes (on each of its three nodes)",
                    bytes as f64 / args.backlog as f64
                );
            }
        }
        let Drained { rate, bytes_per_row, resident_mib } =
            drain(&url, &servers, folder, writers, args.backlog).await?;
        if phase == 0 {
            out!(
                "PostgreSQL keeps a summary in {bytes_per_row:.0} bytes (the messages table with its indexes, per row)"
            );
            out!("a store writer's resident memory at the end of the drain: {resident_mib:.0} MiB");
            out!("rows updated in place (HOT, no index written): {}", hot_updates(&url).await?);
        }
        let ratio = match one_writer {
            None => {
                one_writer = Some(rate);
                "the baseline".to_string()
            }
            Some(baseline) => format!("{:.2}× one writer's", rate / baseline),
        };
        out!(
            "{writers} writer(s) draining {} queued summaries into PostgreSQL: {rate:.0} msg/s durable, {ratio}",
            args.backlog
        );
    }

    // The province under load: two edges, two writers, alarms timed.
    let url = postgres.create("province", Some("template")).await?;
    let store = Store::open(&Database::Postgres(url.clone())).await?;
    let clients = BenchClients::new(&store);
    let edge_ports = [free_port()?, free_port()?];
    let mut edges = Vec::new();
    for (index, port) in edge_ports.iter().enumerate() {
        edges.push(start_edge(&url, &servers, folder, index + 1, *port)?);
    }
    let edge_addresses: Vec<SocketAddr> =
        edge_ports.iter().map(|&port| SocketAddr::from(([127, 0, 0, 1], port))).collect();
    let mut writers = [start_writer(&url, &servers, folder, 1)?, start_writer(&url, &servers, folder, 2)?];
    held_connections(&clients, &edges[1], edge_addresses[1], args.connections).await?;

    let (shutdown, shutdown_watch) = tokio::sync::watch::channel(false);
    let (feed, feed_task) = start_feed(store.clone(), shutdown_watch);
    let alarm_homes = args.alarms + 3 * alarm_count(args.recovery_seconds);
    let alarm_devices: Vec<String> = devices[..alarm_homes].to_vec();
    let load_devices: Vec<String> = devices[alarm_homes..].to_vec();
    let acked = Arc::new(AtomicU64::new(0));
    let stop_load = Arc::new(tokio::sync::Notify::new());
    let mut load = Vec::new();
    let connections = 4usize.min(load_devices.len());
    for (index, chunk) in load_devices.chunks(load_devices.len().div_ceil(connections)).enumerate() {
        let name = format!("bench-load-{index}");
        clients.enrol_publishers(vec![(name.clone(), chunk.to_vec())]).await?;
        load.push(tokio::spawn(load_through_edges(
            clients.clone(),
            edge_addresses.clone(),
            index,
            name,
            chunk.to_vec(),
            args.rate / connections as f64,
            acked.clone(),
            stop_load.clone(),
        )));
    }
    clients.enrol_publishers(vec![("bench-alarms".to_string(), alarm_devices.clone())]).await?;
    let mut alarms = Alarms::new(&clients, &edge_addresses, feed.subscribe(), store.clone()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut next_home = 0;
    let steady_homes = &alarm_devices[next_home..next_home + args.alarms];
    next_home += args.alarms;
    let (steady, _) = alarms.send(steady_homes, Instant::now()).await?;
    let mut sorted = steady.iter().map(|alarm| alarm.alerted).collect::<Vec<_>>();
    sorted.sort_unstable();
    out!("{}", latency_line("smoke → console feed, homes publishing through two edges", &sorted));
    let prompt = Duration::from_secs_f64(percentile(&sorted, 99) / 1_000.0 * 2.0).max(Duration::from_millis(500));

    let per_kill = alarm_count(args.recovery_seconds);
    for fault in [Fault::LogNode, Fault::Edge, Fault::Writer] {
        let homes = &alarm_devices[next_home..next_home + per_kill];
        next_home += per_kill;
        let killed_at = Instant::now();
        let what = match fault {
            Fault::LogNode => {
                let leader = nats.stream_leader().unwrap_or(0);
                nats.kill(leader);
                format!("the stream's leader node n{}", leader + 1)
            }
            Fault::Edge => {
                edges[0].kill();
                "the edge the alarms went through".to_string()
            }
            Fault::Writer => {
                writers[0].kill();
                "a store writer".to_string()
            }
        };
        let (timed, delivered) = alarms.send(homes, killed_at).await?;
        let slowest = timed
            .iter()
            .map(|alarm| alarm.alerted)
            .filter(|&alerted| alerted < Duration::MAX)
            .max()
            .unwrap_or_default();
        let slowest_ack = timed.iter().map(|alarm| alarm.acked).max().unwrap_or_default();
        let prompt_again = timed.iter().rev().find(|alarm| alarm.alerted > prompt).map_or(Duration::ZERO, |alarm| {
            alarm.sent.checked_add(alarm.alerted).map_or(Duration::MAX, |at| at.saturating_duration_since(killed_at))
        });
        out!(
            "kill -9 of {what}: {delivered} of {} alarms sent in the {} s after it became alerts; slowest {:.1} s to the feed ({:.1} s to its PUBACK); every alarm within {:.0} ms again {:.1} s after the kill",
            timed.len(),
            args.recovery_seconds,
            slowest.as_secs_f64(),
            slowest_ack.as_secs_f64(),
            prompt.as_secs_f64() * 1_000.0,
            prompt_again.as_secs_f64()
        );
        anyhow::ensure!(delivered == timed.len(), "{} alarms never became alerts", timed.len() - delivered);
        match fault {
            Fault::LogNode => nats.restart_all_stopped()?,
            Fault::Edge => edges[0] = start_edge(&url, &servers, folder, 1, edge_ports[0])?,
            Fault::Writer => writers[0] = start_writer(&url, &servers, folder, 1)?,
        }
    }

    stop_load.notify_waiters();
    for task in load {
        task.await??;
    }
    let stored = store.message_count().await?;
    out!(
        "background load: {:.0} summaries/s asked from {} homes over {connections} connections; {} acknowledged, {stored} messages stored",
        args.rate,
        load_devices.len(),
        acked.load(Ordering::Relaxed)
    );
    let _ = shutdown.send(true);
    let _ = feed_task.await;
    for process in writers.iter_mut().chain(edges.iter_mut()) {
        process.stop();
    }
    store.close().await;
    drop(nats);
    Ok(())
}

/// Waits for SIGINT or SIGTERM; names it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    LogNode,
    Edge,
    Writer,
}

fn alarm_count(seconds: u64) -> usize {
    usize::try_from(Duration::from_secs(seconds).as_millis() / ALARM_EVERY.as_millis()).unwrap_or(usize::MAX)
}

fn device(index: usize) -> String {
    format!("bench-{index:06}")
}

/// Appends `count` summaries (round-robin over `devices`, boot `boot`) with
/// up to 4,096 waiting for the quorum at once; returns how long it took.
async fn append_backlog(log: &Log, devices: &[String], count: usize, boot: u32) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut waiting = futures_util::stream::FuturesUnordered::new();
    for index in 0..count {
        let home = index % devices.len();
        let seq = u32::try_from(index / devices.len() + 1)?;
        let topic = format!("anxin/v1/dev/{}/summary", devices[home]);
        let payload = summary(boot, seq, u64::from(seq) * 300_000, 300, 3, 1);
        waiting.push(log.append_in_order(&topic, &payload, now_ms()).await?);
        while waiting.len() >= 4_096 {
            waiting.next().await.context("an append")??;
        }
    }
    while let Some(acked) = waiting.next().await {
        acked?;
    }
    Ok(started.elapsed())
}

/// Starts `writers` store writers on `url` and measures the rate (msg/s) at
/// which the database's message count went from its first nonzero value to
/// `backlog`, the messages table's size per row and the writers' memory;
/// stops them after.
async fn drain(url: &str, servers: &str, folder: &Path, writers: usize, backlog: usize) -> anyhow::Result<Drained> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    let mut processes = Vec::new();
    for index in 0..writers {
        processes.push(start_writer(url, servers, folder, 10 + index)?);
    }
    let target = i64::try_from(backlog)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, i64)> = None;
    let finished = loop {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&pool).await?;
        let now = Instant::now();
        if count > 0 && first.is_none() {
            first = Some((now, count));
        }
        if count >= target {
            break now;
        }
        anyhow::ensure!(now < deadline, "{writers} writer(s) stored {count} of {backlog} in ten minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let resident = processes.iter().filter_map(|process| process.resident_kib().ok()).max().unwrap_or(0);
    for process in &mut processes {
        process.stop();
    }
    // The partitions' sizes: the partitioned table itself holds nothing.
    let bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('messages')",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let (from, at_first) = first.context("nothing stored")?;
    let seconds = finished.duration_since(from).as_secs_f64().max(0.001);
    Ok(Drained {
        rate: (target - at_first).max(1) as f64 / seconds,
        bytes_per_row: bytes as f64 / backlog as f64,
        resident_mib: resident as f64 / 1_024.0,
    })
}

/// What a drain of the backlog measured.
struct Drained {
    /// Messages a second, durable.
    rate: f64,
    /// The messages table with its indexes, per row.
    bytes_per_row: f64,
    /// The largest writer's resident memory at the end, MiB.
    resident_mib: f64,
}

/// Opens `count` idle connections (each an identity of its own, as sensor
/// nodes are) to one edge and prints what the edge's resident memory grew by.
async fn held_connections(
    clients: &BenchClients,
    edge: &Process,
    address: SocketAddr,
    count: usize,
) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let names: Vec<String> = (0..count).map(|index| format!("bench-idle-{index:06}")).collect();
    clients.enrol_publishers(names.iter().map(|name| (name.clone(), Vec::new())).collect()).await?;
    let before = edge.resident_kib()?;
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut connecting = tokio::task::JoinSet::new();
    for name in names {
        let (clients, limit) = (clients.clone(), limit.clone());
        connecting.spawn(async move {
            let _turn = limit.acquire_owned().await?;
            let (client, mut eventloop) = clients.connect(address, name, 10).await?;
            let polling = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
            anyhow::Ok((client, polling))
        });
    }
    let mut held = Vec::with_capacity(count);
    while let Some(connected) = connecting.join_next().await {
        held.push(connected??);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = edge.resident_kib()?;
    out!(
        "{count} idle device connections held by one edge: {:.1} KiB of resident memory each ({:.0} → {:.0} MiB)",
        after.saturating_sub(before) as f64 / count as f64,
        before as f64 / 1_024.0,
        after as f64 / 1_024.0
    );
    for (client, polling) in held {
        let _ = client.disconnect().await;
        polling.abort();
    }
    Ok(())
}

/// Each table the writers updated: its updates, and the share that were
/// HOT (the new row version on the same page, no index entry written).
async fn hot_updates(url: &str) -> anyhow::Result<String> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE n_tup_upd > 0 ORDER BY n_tup_upd DESC",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(rows
        .iter()
        .map(|(table, updated, hot)| {
            format!("{table} {:.0} % of {updated}", 100.0 * *hot as f64 / (*updated).max(1) as f64)
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Summaries from `devices` at `rate` a second through the edges, starting
/// with edge `first` and moving to the next when one goes away, until
/// `stop`; counts PUBACKs into `acked`.
#[allow(clippy::too_many_arguments, reason = "one publisher's whole description")]
async fn load_through_edges(
    clients: BenchClients,
    edges: Vec<SocketAddr>,
    first: usize,
    name: String,
    devices: Vec<String>,
    rate: f64,
    acked: Arc<AtomicU64>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let stopped = stop.notified();
    tokio::pin!(stopped);
    let mut seqs = vec![0u32; devices.len()];
    let mut next = 0usize;
    let mut edge = first;
    loop {
        let Ok((client, mut eventloop)) = clients.connect(edges[edge % edges.len()], name.clone(), 200).await else {
            edge += 1;
            tokio::select! {
                () = &mut stopped => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(200)) => continue,
            }
        };
        let started = Instant::now();
        let mut published = 0u64;
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                () = &mut stopped => {
                    let _ = client.disconnect().await;
                    return Ok(());
                }
                event = eventloop.poll() => match event {
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => { acked.fetch_add(1, Ordering::Relaxed); }
                    Ok(_) => {}
                    Err(_) => break,
                },
                _ = ticker.tick() => {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a count, never negative")]
                    let due = (started.elapsed().as_secs_f64() * rate) as u64;
                    while published < due {
                        let home = next % devices.len();
                        next += 1;
                        published += 1;
                        seqs[home] += 1;
                        let payload = summary(1, seqs[home], u64::from(seqs[home]) * 60_000, 60, 2, 0);
                        // A full request queue: this tick's share waits for the next.
                        if client.try_publish(format!("anxin/v1/dev/{}/summary", devices[home]), QoS::AtLeastOnce, false, payload).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        edge += 1;
    }
}

/// One alarm: when it was sent, and how long until its PUBACK and until
/// its `opened` change on the feed.
struct Timed {
    sent: Instant,
    acked: Duration,
    alerted: Duration,
}

/// Smoke alarms from one connection that moves to the other edge when its
/// own goes away (sending again what was not acknowledged, as a sensor
/// node's outbox does), timed to their `opened` change on the feed.
struct Alarms {
    clients: BenchClients,
    edges: Vec<SocketAddr>,
    edge: usize,
    connection: Option<(rumqttc::AsyncClient, rumqttc::EventLoop)>,
    seen: Arc<Mutex<HashMap<i64, Instant>>>,
    elders: HashMap<String, i64>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Alarms {
    async fn new(
        clients: &BenchClients,
        edges: &[SocketAddr],
        mut feed: broadcast::Receiver<Arc<AlertChange>>,
        store: Store,
    ) -> anyhow::Result<Alarms> {
        let seen: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let watcher = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    match feed.recv().await {
                        Ok(change) if change.kind == AlertKind::Smoke && change.action == "opened" => {
                            if let Ok(mut seen) = seen.lock() {
                                seen.entry(change.elder_id).or_insert_with(Instant::now);
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        };
        let mut elders = HashMap::new();
        for device in store.devices(false).await? {
            if let Some(elder) = device.elder_id {
                elders.insert(device.device_id, elder);
            }
        }
        Ok(Alarms { clients: clients.clone(), edges: edges.to_vec(), edge: 0, connection: None, seen, elders, watcher })
    }

    /// Sends a smoke alarm from each of `homes`, [`ALARM_EVERY`] apart from
    /// `from`, and waits (up to 90 s after the last) for their alerts.
    /// Returns each alarm's times, in send order, and how many became
    /// alerts.
    async fn send(&mut self, homes: &[String], from: Instant) -> anyhow::Result<(Vec<Timed>, usize)> {
        let mut sent = Vec::with_capacity(homes.len());
        for (index, device) in homes.iter().enumerate() {
            let due = from + ALARM_EVERY * u32::try_from(index)?;
            tokio::time::sleep_until(due.into()).await;
            let at = Instant::now();
            self.publish(device).await?;
            sent.push((device.clone(), at, at.elapsed()));
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let seen = self.seen.lock().map_err(|_| anyhow::anyhow!("the feed watcher panicked"))?.clone();
            let missing = sent.iter().filter(|(device, _, _)| !seen.contains_key(&self.elders[device])).count();
            if missing == 0 || Instant::now() > deadline {
                let timed = sent
                    .iter()
                    .map(|(device, at, acked)| Timed {
                        sent: *at,
                        acked: *acked,
                        alerted: seen.get(&self.elders[device]).map_or(Duration::MAX, |seen| seen.duration_since(*at)),
                    })
                    .collect();
                return Ok((timed, sent.len() - missing));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes one alarm and waits for its PUBACK, reconnecting to the
    /// next edge (and sending again) until one acknowledges it.
    async fn publish(&mut self, device: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "no edge acknowledged the alarm from {device} in two minutes");
            if self.connection.is_none() {
                match self.clients.connect(self.edges[self.edge % self.edges.len()], "bench-alarms".into(), 10).await {
                    Ok(connection) => self.connection = Some(connection),
                    Err(_) => {
                        self.edge += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some((client, eventloop)) = self.connection.as_mut() else { continue };
            client.publish(format!("anxin/v1/dev/{device}/event"), QoS::AtLeastOnce, false, smoke(1_000_000)).await?;
            let acked = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match eventloop.poll().await {
                        Ok(MqttEvent::Incoming(Packet::PubAck(_))) => return true,
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if acked {
                return Ok(());
            }
            self.connection = None;
            self.edge += 1;
        }
    }
}

impl Drop for Alarms {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Fresh databases on the PostgreSQL server, all named after this run.
struct Postgres {
    server: String,
    prefix: String,
}

impl Postgres {
    /// Creates `{prefix}_{name}`, a copy of `{prefix}_{template}` when given; its URL.
    async fn create(&self, name: &str, template: Option<&str>) -> anyhow::Result<String> {
        use sqlx::Connection;
        let name = format!("{}_{name}", self.prefix);
        let mut connection = sqlx::PgConnection::connect(&self.server)
            .await
            .with_context(|| format!("connect to --database {}", self.server_without_password()))?;
        let copy = template.map(|template| format!(" TEMPLATE {}_{template}", self.prefix)).unwrap_or_default();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut connection)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}{copy}"))).execute(&mut connection).await?;
        Ok(match self.server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{}/{name}", self.server),
        })
    }

    fn server_without_password(&self) -> String {
        match (self.server.split_once("://"), self.server.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
            _ => self.server.clone(),
        }
    }

    /// Drops the databases of earlier runs that ended before dropping their
    /// own (`anxin_bench_{pid}_…` of a pid no longer running).
    async fn drop_stale(&self) {
        use sqlx::Connection;
        let Ok(mut connection) = sqlx::PgConnection::connect(&self.server).await else { return };
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname ~ '^anxin_bench_[0-9]+_'")
                .fetch_all(&mut connection)
                .await
                .unwrap_or_default();
        for name in names {
            let pid = name.trim_start_matches("anxin_bench_").split('_').next().unwrap_or_default();
            if Path::new("/proc").join(pid).exists() {
                continue;
            }
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut connection)
                .await;
        }
    }

    /// Drops every database of this run.
    async fn drop_all(&self) {
        use sqlx::Connection;
        let Ok(mut connection) = sqlx::PgConnection::connect(&self.server).await else { return };
        let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(format!("{}_", self.prefix))
            .fetch_all(&mut connection)
            .await
            .unwrap_or_default();
        for name in names {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut connection)
                .await;
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A process of this binary (a writer or an edge), its output in the run's folder.
struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Starts `anxin ARGS…` and waits (up to a minute) for a line of its
    /// standard output containing `ready`; returns that line too.
    fn start(name: &str, args: &[&str], ready: &str, folder: &Path) -> anyhow::Result<(Process, String)> {
        let log = folder.join(format!("{name}.log"));
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("ANXIN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        crate::child_started(child.id());
        let stdout = child.stdout.take().context("the process's output")?;
        let (lines, found) = std::sync::mpsc::channel();
        let ready = ready.to_string();
        let out_path = folder.join(format!("{name}.out"));
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(out_path).ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(out) = out.as_mut() {
                    let _ = writeln!(out, "{line}");
                }
                if line.contains(&ready) {
                    let _ = lines.send(line);
                }
            }
        });
        let process = Process { name: name.to_string(), child };
        let line = found
            .recv_timeout(Duration::from_secs(60))
            .with_context(|| format!("{name} did not say it was ready within a minute: see {}", log.display()))?;
        Ok((process, line))
    }

    /// Resident memory (VmRSS), KiB.
    fn resident_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("VmRSS of {}", self.name))
    }

    /// SIGKILL: nothing flushed, no goodbye.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        crate::child_ended(self.child.id());
    }

    /// SIGTERM, then SIGKILL after ten seconds.
    fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                crate::child_ended(self.child.id());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        out!("{} did not stop within ten seconds of SIGTERM: killed", self.name);
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start_writer(url: &str, servers: &str, folder: &Path, index: usize) -> anyhow::Result<Process> {
    let args = ["--database", url, "gateway", "--cluster-log", servers, "--http-listen", "127.0.0.1:0"];
    Ok(Process::start(&format!("writer-{index}"), &args, "store writer on the cluster log", folder)?.0)
}

fn start_edge(url: &str, servers: &str, folder: &Path, index: usize, port: u16) -> anyhow::Result<Process> {
    let listen = format!("127.0.0.1:{port}");
    let args =
        ["--database", url, "edge", "--cluster-log", servers, "--mqtt-listen", &listen, "--http-listen", "127.0.0.1:0"];
    Ok(Process::start(&format!("edge-{index}"), &args, "anxin edge: MQTT broker on", folder)?.0)
}

/// Three `nats-server` nodes with JetStream, routed to each other.
struct NatsNodes {
    binary: PathBuf,
    nodes: Vec<NatsNode>,
}

struct NatsNode {
    name: String,
    client: u16,
    monitor: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsNodes {
    fn start(folder: &Path) -> anyhow::Result<NatsNodes> {
        // On the PATH, or where Debian puts it (/usr/sbin, often not on a user's PATH).
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary = std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
            .map(|folder| folder.join("nats-server"))
            .find(|candidate| candidate.is_file())
            .context("`anxin bench cluster` needs nats-server installed (Debian: apt-get install nats-server)")?;
        let ports: Vec<(u16, u16, u16)> =
            (0..3).map(|_| Ok((free_port()?, free_port()?, free_port()?))).collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = ports.iter().map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}")).collect();
        let mut nodes = Vec::new();
        for (index, (client, route, monitor)) in ports.into_iter().enumerate() {
            let name = format!("n{}", index + 1);
            let config = folder.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{ store_dir: \"{}\", max_file_store: 8G, max_memory_store: 256M }}\n\
                     cluster {{ name: anxin-bench, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    folder.join(&name).display(),
                    routes.join(", ")
                ),
            )?;
            let mut node =
                NatsNode { log: folder.join(format!("{name}.log")), name, client, monitor, config, child: None };
            node.spawn(&binary)?;
            nodes.push(node);
        }
        let cluster = NatsNodes { binary, nodes };
        cluster.wait_formed()?;
        Ok(cluster)
    }

    /// Waits (up to a minute) until every node sees a cluster of three.
    fn wait_formed(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.nodes.iter().all(|node| node.jsz("").contains("\"cluster_size\": 3")) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the nats-server nodes did not form a cluster: see {}",
                self.nodes[0].log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn urls(&self) -> String {
        self.nodes.iter().map(|node| format!("nats://127.0.0.1:{}", node.client)).collect::<Vec<_>>().join(",")
    }

    /// The log's stream as the nodes' monitoring shows it (`/jsz`).
    fn stream(&self) -> Option<serde_json::Value> {
        let page = self.nodes.iter().find_map(|node| {
            let page = node.jsz("?accounts=true&streams=true");
            (!page.is_empty()).then_some(page)
        })?;
        let body = page.split_once("\r\n\r\n").map_or(page.as_str(), |(_, body)| body);
        let jsz: serde_json::Value = serde_json::from_str(body).ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|stream| stream["name"] == anxin_gateway::broker::log::STREAM)
    }

    /// The node leading the log's stream.
    fn stream_leader(&self) -> Option<usize> {
        let leader = self.stream()?["cluster"]["leader"].as_str()?.to_string();
        self.nodes.iter().position(|node| node.name == leader)
    }

    /// The bytes the stream holds (one copy).
    fn stream_bytes(&self) -> Option<u64> {
        self.stream()?["state"]["bytes"].as_u64()
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
            crate::child_ended(child.id());
        }
    }

    /// Starts again every node that was killed, with its folder as it was
    /// left, and waits until the cluster has formed again.
    fn restart_all_stopped(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            if node.child.is_none() {
                node.spawn(&self.binary)?;
            }
        }
        self.wait_formed()
    }
}

impl NatsNode {
    fn spawn(&mut self, binary: &Path) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.child = Some(
            Command::new(binary)
                .arg("-c")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("start nats-server {}", self.name))?,
        );
        if let Some(child) = &self.child {
            crate::child_started(child.id());
        }
        Ok(())
    }

    /// `/jsz{query}` of the node's monitoring port, headers and all; empty when it does not answer.
    fn jsz(&self, query: &str) -> String {
        use std::io::Read;
        let address = SocketAddr::from(([127, 0, 0, 1], self.monitor));
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = write!(stream, "GET /jsz{query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        let mut page = String::new();
        let _ = stream.read_to_string(&mut page);
        page
    }
}

impl Drop for NatsNodes {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}
