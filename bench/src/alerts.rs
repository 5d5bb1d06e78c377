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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::time::HOUR_MS;
use anxin_gateway::alerts::delivery::start_feed;
use anxin_gateway::alerts::timers::{TimerConfig, run_timers};
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_store::{Database, Store, now_ms};
use tokio::sync::broadcast;

use super::{BenchClients, Pace, latency_line, paced_summaries, peak_rss_mib, percentile, smoke_probes, watched_home};
use crate::out;

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
    out!(
        "{homes} homes registered, paired and watched in {:.1} s; {overdue} of them fall due during the loaded phase",
        set_up.elapsed().as_secs_f64()
    );

    let (shutdown, shutdown_watch) = tokio::sync::watch::channel(false);
    let (ingest, writer) = Ingest::start(store.clone(), policy.clone(), IngestConfig::default());
    let clients = BenchClients::new(&store);
    let broker = clients.embedded_broker().start(ingest.clone()).await?;
    let timers =
        tokio::spawn(run_timers(store.clone(), policy.clone(), TimerConfig::default(), shutdown_watch.clone()));
    let (feed_sender, feed_task) = start_feed(store.clone(), shutdown_watch.clone());
    let mut feed = feed_sender.subscribe();

    // Probe homes come after the overdue ones; load homes are the rest.
    let probe_homes: Vec<(String, i64)> = (overdue..overdue + probes_idle + probes_loaded)
        .map(|index| (format!("bench-{index:06}"), elders[index]))
        .collect();
    let idle = smoke_probes(
        &clients,
        broker.local_addr,
        "idle",
        &probe_homes[..probes_idle],
        Duration::from_millis(50),
        &mut feed,
    )
    .await?;

    // Wait for the loaded phase to begin, then load and probe together.
    tokio::time::sleep(Duration::from_millis(u64::try_from((loaded_from - now_ms()).max(0))?)).await;
    let load_homes: Vec<usize> = (overdue + probes_idle + probes_loaded..homes).collect();
    let stop = Instant::now() + Duration::from_secs(args.seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let mut publishers = tokio::task::JoinSet::new();
    let per = load_homes.len().div_ceil(args.publishers.max(1)).max(1);
    let devices_of = |chunk: &[usize]| -> Vec<String> { chunk.iter().map(|home| format!("bench-{home:06}")).collect() };
    clients
        .enrol_publishers(
            load_homes
                .chunks(per)
                .enumerate()
                .map(|(index, chunk)| (format!("bench-load-{index}"), devices_of(chunk)))
                .collect(),
        )
        .await?;
    for (index, chunk) in load_homes.chunks(per).enumerate() {
        let share = rate * chunk.len() as f64 / load_homes.len().max(1) as f64;
        let devices = devices_of(chunk);
        let client_id = format!("bench-load-{index}");
        publishers.spawn(paced_summaries(
            clients.clone(),
            broker.local_addr,
            client_id,
            devices,
            0,
            Pace { rate: share, stop },
            sent.clone(),
        ));
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
                Ok(Ok(change))
                    if change.kind == anxin_domain::alerts::AlertKind::Inactivity && change.action == "opened" =>
                {
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
    let loaded = smoke_probes(
        &clients,
        broker.local_addr,
        "loaded",
        &probe_homes[probes_idle..],
        Duration::from_millis(100),
        &mut feed,
    )
    .await?;
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
    out!(
        "background load: summaries from {} homes over {} connections, {:.0} msg/s asked, {:.0} msg/s stored and acknowledged; {stored} messages stored in all",
        load_homes.len(),
        args.publishers,
        rate,
        published as f64 / load_seconds,
    );
    out!("{}", latency_line("smoke → alert on the console feed, gateway idle  ", &idle));
    out!("{}", latency_line("smoke → alert on the console feed, gateway loaded", &loaded));
    out!(
        "loaded / idle: p50 {:.2}×, p99 {:.2}×",
        percentile(&loaded, 50) / percentile(&idle, 50).max(0.001),
        percentile(&loaded, 99) / percentile(&idle, 99).max(0.001)
    );
    out!(
        "{}; {} of {overdue} fired, {twice} twice",
        latency_line("overdue inactivity: deadline → alert on the feed", &lateness),
        lateness.len()
    );
    out!("peak memory of this process (broker, gateway, publishers): {:.0} MiB", peak_rss_mib());
    Ok(())
}
