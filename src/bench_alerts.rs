//! `anxin bench alerts`: how fast an alarm reaches the console, and how late
//! overdue homes are found, with many homes watched and a gateway under load.
//!
//! Everything runs in this process: the embedded broker with the gateway's
//! ingest hook, the alert engine's timer loop, and the in-process feed the
//! console reads. Homes are registered in bulk (paired, online, watched). A
//! smoke alarm is published from a probe connection and timed until its
//! `opened` change arrives on the feed — first with the gateway idle (the
//! baseline), then while publisher connections load it with summaries. A
//! tenth of the homes (at most 10,000) are set up so their inactivity deadline falls
//! inside the loaded phase; each one's lateness is the time from its deadline
//! to its `opened` change on the feed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anxin_gateway::alerts::delivery::start_feed;
use anxin_gateway::alerts::policy::{AlertPolicy, HOUR_MS};
use anxin_gateway::alerts::rules::{self, HomeState, next_due};
use anxin_gateway::alerts::timers::{TimerConfig, run_timers};
use anxin_gateway::broker::embedded::EmbeddedBroker;
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_gateway::store::{AlertChange, Database, Store, now_ms};
use anxin_protocol::{Event, EventKind, SmokeState, Summary};
use anyhow::Context;
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;

use crate::bench::{peak_rss_mib, percentile};

#[derive(Debug, clap::Args)]
pub struct BenchAlertsArgs {
    /// Homes watched (each an elder with one paired sensor)
    #[arg(long, default_value_t = 10_000)]
    pub homes: usize,
    /// Background load in summaries per second [default: every home every minute, 5× a real day]
    #[arg(long)]
    pub rate: Option<u64>,
    /// Length of the loaded phase, in seconds
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Publisher connections carrying the load
    #[arg(long, default_value_t = 50)]
    pub publishers: usize,
}

async fn connect(broker: SocketAddr, client_id: String) -> anyhow::Result<(AsyncClient, rumqttc::EventLoop)> {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_inflight(200);
    let (client, mut eventloop) = AsyncClient::new(options, 1_024);
    loop {
        if let MqttEvent::Incoming(Packet::ConnAck(_)) = eventloop.poll().await.context("bench connection")? {
            break;
        }
    }
    Ok((client, eventloop))
}

fn smoke(seq: u32) -> Vec<u8> {
    let mut buffer = [0u8; 256];
    let event = Event { boot: 1, seq, up: u64::from(seq), kind: EventKind::Smoke(SmokeState::Alarm) };
    let len = event.encode(&mut buffer).unwrap_or(0);
    buffer[..len].to_vec()
}

/// Publishes a smoke alarm for each of `homes`, `every` apart, and returns
/// publish → `opened`-on-the-feed latencies.
async fn probe(
    broker: SocketAddr,
    name: &str,
    homes: &[(usize, i64)],
    every: Duration,
    feed: &mut broadcast::Receiver<Arc<AlertChange>>,
) -> anyhow::Result<Vec<Duration>> {
    let (client, mut eventloop) = connect(broker, format!("bench-probe-{name}")).await?;
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut ticker = tokio::time::interval(every);
    let mut next = 0;
    let deadline = Instant::now() + every * u32::try_from(homes.len()).unwrap_or(u32::MAX) + Duration::from_secs(30);
    while latencies.len() < homes.len() && Instant::now() < deadline {
        tokio::select! {
            _ = ticker.tick(), if next < homes.len() => {
                let (index, elder) = homes[next];
                next += 1;
                sent.insert(elder, Instant::now());
                client.publish(format!("anxin/v1/dev/bench-{index:06}/event"), QoS::AtLeastOnce, false, smoke(1_000_000)).await?;
            }
            change = feed.recv() => match change {
                Ok(change) if change.kind == "smoke" && change.action == "opened" => {
                    if let Some(at) = sent.remove(&change.elder_id) {
                        latencies.push(at.elapsed());
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => anyhow::bail!("the feed dropped {n} changes"),
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("the feed closed"),
            },
        }
    }
    let _ = client.disconnect().await;
    anyhow::ensure!(sent.is_empty(), "{} smoke alarms never reached the feed", sent.len());
    latencies.sort_unstable();
    Ok(latencies)
}

/// Summaries with motion from `homes`, at `rate` per second in total, until
/// `stop`; counts PUBACKs (each one a committed message) into `sent`.
async fn load(
    broker: SocketAddr,
    index: usize,
    homes: Vec<usize>,
    rate: f64,
    stop: Instant,
    sent: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let (client, mut eventloop) = connect(broker, format!("bench-load-{index}")).await?;
    let acked = sent.clone();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let MqttEvent::Incoming(Packet::PubAck(_)) = event {
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut seqs = vec![0u32; homes.len()];
    let mut buffer = [0u8; 512];
    let started = Instant::now();
    let mut published = 0u64;
    let mut next = 0;
    while Instant::now() < stop && !homes.is_empty() {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count of messages, never negative"
        )]
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while published < due {
            let home = next % homes.len();
            next += 1;
            seqs[home] += 1;
            let summary = Summary {
                boot: 1,
                seq: seqs[home],
                up: u64::from(seqs[home]) * 60_000,
                interval_s: 60,
                motion: 2,
                door_opens: 0,
                temp_dc: Some(205),
                battery: Some(90),
                rssi: Some(-60),
            };
            let len = summary.encode(&mut buffer).unwrap_or(0);
            client
                .publish(
                    format!("anxin/v1/dev/bench-{:06}/summary", homes[home]),
                    QoS::AtLeastOnce,
                    false,
                    buffer[..len].to_vec(),
                )
                .await?;
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = client.disconnect().await;
    Ok(())
}

fn line(name: &str, latencies: &[Duration]) -> String {
    format!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        percentile(latencies, 50),
        percentile(latencies, 99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1_000.0),
        latencies.len()
    )
}

/// A home watched since `silence_from`, its device known, and its deadline.
fn watched_home(policy: &AlertPolicy, silence_from: i64, device: &str, now: i64) -> (String, i64) {
    let mut state = HomeState::new(silence_from, policy);
    state.boots.insert(device.to_string(), 1);
    let home = policy.for_home(&Default::default(), false, None);
    let context = rules::Context { now, policy, home: &home, day_close_delay_ms: 5 * 60_000 };
    let due = next_due(&state, &context);
    (serde_json::to_string(&state).unwrap_or_default(), due)
}

pub async fn alerts(args: BenchAlertsArgs) -> anyhow::Result<()> {
    let homes = args.homes.max(1_000);
    let rate = args.rate.unwrap_or((homes / 60) as u64).max(1) as f64;
    let overdue = (homes / 10).min(10_000);
    let probes_idle = 100;
    let probes_loaded = 200;
    let folder = std::env::temp_dir().join(format!("anxin-bench-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let store = Store::open(&Database::in_data_dir(&folder)).await?;
    let policy = Arc::new(AlertPolicy::default());

    // Homes [0, overdue) fall silent so their deadline lands inside the loaded
    // phase; the others were active a moment ago.
    let now = now_ms();
    let loaded_from = now + 20_000;
    let loaded_ms = i64::try_from(args.seconds * 1_000)?;
    let spread = (loaded_ms - 6_000).max(1);
    let overdue_count = i64::try_from(overdue.max(1))?;
    let due_at = |index: usize| -> Option<i64> {
        Some(loaded_from + 3_000 + spread * i64::try_from(index).ok()? / overdue_count)
    };
    let set_up = Instant::now();
    let elders = store
        .populate_for_benchmark(homes, "bench", now, |index, device| {
            let silence_from = if index < overdue { due_at(index).unwrap_or(now) - 12 * HOUR_MS } else { now };
            watched_home(&policy, silence_from, device, now)
        })
        .await?;
    println!(
        "{homes} homes registered, paired and watched in {:.1} s; {overdue} of them fall due during the loaded phase",
        set_up.elapsed().as_secs_f64()
    );

    let (shutdown, shutdown_watch) = tokio::sync::watch::channel(false);
    let (ingest, writer) = Ingest::start(store.clone(), policy.clone(), IngestConfig::default());
    let broker = EmbeddedBroker { listen: "127.0.0.1:0".parse()? }.start(ingest.clone()).await?;
    let timers =
        tokio::spawn(run_timers(store.clone(), policy.clone(), TimerConfig::default(), shutdown_watch.clone()));
    let (feed_sender, feed_task) = start_feed(store.clone(), shutdown_watch.clone());
    let mut feed = feed_sender.subscribe();

    // Probe homes come after the overdue ones; load homes are the rest.
    let probe_homes: Vec<(usize, i64)> =
        (overdue..overdue + probes_idle + probes_loaded).map(|index| (index, elders[index])).collect();
    let idle =
        probe(broker.local_addr, "idle", &probe_homes[..probes_idle], Duration::from_millis(50), &mut feed).await?;

    // Wait for the loaded phase to begin, then load and probe together.
    tokio::time::sleep(Duration::from_millis(u64::try_from((loaded_from - now_ms()).max(0))?)).await;
    let load_homes: Vec<usize> = (overdue + probes_idle + probes_loaded..homes).collect();
    let stop = Instant::now() + Duration::from_secs(args.seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let mut publishers = tokio::task::JoinSet::new();
    let per = load_homes.len().div_ceil(args.publishers.max(1)).max(1);
    for (index, chunk) in load_homes.chunks(per).enumerate() {
        let share = rate * chunk.len() as f64 / load_homes.len().max(1) as f64;
        publishers.spawn(load(broker.local_addr, index, chunk.to_vec(), share, stop, sent.clone()));
    }
    let mut overdue_feed = feed_sender.subscribe();
    let overdue_elders: HashMap<i64, i64> =
        (0..overdue).map(|index| (elders[index], due_at(index).unwrap_or(now))).collect();
    let lateness_task = tokio::spawn(async move {
        let mut lateness = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut twice = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds + 60);
        while seen.len() < overdue_elders.len() {
            match tokio::time::timeout_at(deadline, overdue_feed.recv()).await {
                Ok(Ok(change)) if change.kind == "inactivity" && change.action == "opened" => {
                    if let Some(due) = overdue_elders.get(&change.elder_id) {
                        if seen.insert(change.elder_id) {
                            lateness.push(Duration::from_millis(u64::try_from(now_ms() - due).unwrap_or(0)));
                        } else {
                            twice += 1;
                        }
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    return Err(anyhow::anyhow!("the feed dropped {n} changes"));
                }
                Ok(Err(_)) | Err(_) => break,
            }
        }
        lateness.sort_unstable();
        Ok((lateness, twice))
    });
    let loaded_started = Instant::now();
    let loaded =
        probe(broker.local_addr, "loaded", &probe_homes[probes_idle..], Duration::from_millis(100), &mut feed).await?;
    while let Some(result) = publishers.join_next().await {
        result??;
    }
    let load_seconds = loaded_started.elapsed().as_secs_f64();
    let (lateness, twice) = lateness_task.await??;

    let _ = shutdown.send(true);
    broker.stop().await;
    drop(ingest);
    let _ = writer.await;
    let _ = tokio::join!(timers, feed_task);
    let stored = store.message_count().await?;
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);

    let published = sent.load(Ordering::Relaxed);
    println!(
        "background load: summaries from {} homes over {} connections, {:.0} msg/s asked, {:.0} msg/s stored and acknowledged; {stored} messages stored in all",
        load_homes.len(),
        args.publishers,
        rate,
        published as f64 / load_seconds,
    );
    println!("{}", line("smoke → alert on the console feed, gateway idle  ", &idle));
    println!("{}", line("smoke → alert on the console feed, gateway loaded", &loaded));
    println!(
        "loaded / idle: p50 {:.2}×, p99 {:.2}×",
        percentile(&loaded, 50) / percentile(&idle, 50).max(0.001),
        percentile(&loaded, 99) / percentile(&idle, 99).max(0.001)
    );
    println!(
        "{}; {} of {overdue} fired, {twice} twice",
        line("overdue inactivity: deadline → alert on the feed", &lateness),
        lateness.len()
    );
    println!("peak memory of this process (broker, gateway, publishers): {:.0} MiB", peak_rss_mib());
    Ok(())
}
