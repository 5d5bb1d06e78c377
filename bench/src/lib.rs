//! `anxin-bench`, the `anxin bench …` commands: benchmarks that print figures, each measured beside a
//! baseline of the same run so they read as ratios on any machine.
//!
//! - [`ingest`]: durable ingest against a bare subscriber on the same broker
//!   (embedded or Mosquitto), backlogs, smoke alarms under load.
//! - [`alerts`]: smoke alarm → console feed idle and loaded; overdue homes.
//! - [`cluster`]: a province on loopback: writers' scaling, alarms, kills.
//! - [`console`]: page weight and server time of the busiest pages.
//! - [`ledger`]: importing and exporting a township ledger; the rate page.
//! - [`responders`]: a burst of smoke alarms through the responder chain.
//!
//! This module holds what they share: MQTT publishers and probes, a
//! Mosquitto of the run's own, percentiles, memory, and a recorder for the
//! gateway's histograms.

pub mod alerts;
pub mod cluster;
pub mod console;
pub mod ingest;
pub mod ledger;
pub mod responders;

use std::sync::OnceLock;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::alerts::rules::{self, HomeState, next_due};
use anxin_domain::identity::IdentityKind;
use anxin_gateway::broker::auth::{BrokerAuth, RateLimits};
use anxin_gateway::broker::embedded::{BrokerLimits, EmbeddedBroker};
use anxin_protocol::{Event, EventKind, SmokeState};
use anxin_store::{AlertChange, NewIdentity, Store};
use anyhow::Context;
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;

/// How a line of figures is printed: standard output, unless the binary says
/// otherwise ([`print_lines_with`]).
static PRINT_LINE: OnceLock<fn(std::fmt::Arguments<'_>)> = OnceLock::new();

/// Prints the benchmarks' lines with `print` (the binary's, which ends
/// quietly on a closed pipe: `anxin bench ingest | head`). Set once.
pub fn print_lines_with(print: fn(std::fmt::Arguments<'_>)) {
    let _ = PRINT_LINE.set(print);
}

#[doc(hidden)]
pub fn print_line(line: std::fmt::Arguments<'_>) {
    match PRINT_LINE.get() {
        Some(print) => print(line),
        None => println!("{line}"),
    }
}

/// The processes a benchmark started (`nats-server`, writers, edges), by
/// pid: killed by [`stop_children`] when the process must end at once.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(crate) fn child_started(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(pid);
    }
}

pub(crate) fn child_ended(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain(|&child| child != pid);
    }
}

/// Kills (SIGKILL) every process a benchmark started that is still
/// running: for a benchmark ending before its own clean-up runs (standard
/// output closed, `std::process::exit`).
pub fn stop_children() {
    let pids: Vec<u32> = CHILDREN.lock().map(|mut children| std::mem::take(&mut *children)).unwrap_or_default();
    for pid in pids {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
}

/// `println!` through [`print_line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// The `percent`-th percentile of sorted latencies, in milliseconds (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) * percent).div_ceil(100);
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

/// The `percent`-th percentile of unsorted values (nearest rank); NaN for none.
pub(crate) fn percentile_of(values: &mut [f64], percent: usize) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) * percent).div_ceil(100);
    values[rank.min(values.len() - 1)]
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|line| line.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .unwrap_or(0.0)
}

/// The most memory this process has held so far.
pub(crate) fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}

/// The memory this process holds now.
pub(crate) fn rss_mib() -> f64 {
    status_kib("VmRSS:") / 1024.0
}

/// A recorder for the benchmarks: keeps the values of the histograms it is
/// asked about (commit time, batch size) until they are taken, ignores the
/// rest. A benchmark takes them after each phase, so each phase's figures
/// are its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histograms(Arc<Mutex<HashMap<String, Vec<f64>>>>);

impl Histograms {
    /// Installs a recorder keeping `names`; returns the handle to read them.
    pub(crate) fn install(names: &[&str]) -> anyhow::Result<Histograms> {
        let histograms = Histograms::default();
        let recorder = BenchRecorder {
            histograms: histograms.clone(),
            names: names.iter().map(|name| name.to_string()).collect(),
        };
        metrics::set_global_recorder(recorder)
            .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
        Ok(histograms)
    }

    /// The values recorded under `name` since it was last taken.
    pub(crate) fn take(&self, name: &str) -> Vec<f64> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name).unwrap_or_default()
    }
}

#[derive(Debug)]
struct BenchRecorder {
    histograms: Histograms,
    names: Vec<String>,
}

#[derive(Debug)]
struct Kept {
    histograms: Histograms,
    name: String,
}

impl metrics::HistogramFn for Kept {
    fn record(&self, value: f64) {
        let mut all = self.histograms.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(self.name.clone()).or_default().push(value);
    }
}

impl metrics::Recorder for BenchRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        if self.names.iter().any(|name| name == key.name()) {
            metrics::Histogram::from_arc(Arc::new(Kept {
                histograms: self.histograms.clone(),
                name: key.name().to_string(),
            }))
        } else {
            metrics::Histogram::noop()
        }
    }
}

/// A Mosquitto of the benchmark's own on a free loopback port, with the
/// in-flight and queue values of `deploy/mosquitto.conf` (anonymous, on
/// loopback only, nothing persisted); stopped when dropped.
#[derive(Debug)]
pub(crate) struct Mosquitto {
    pub address: SocketAddr,
    child: Child,
    folder: PathBuf,
}

impl Mosquitto {
    pub(crate) fn start() -> anyhow::Result<Mosquitto> {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .context("--broker mosquitto needs Mosquitto installed (Debian: apt-get install mosquitto)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let folder = std::env::temp_dir().join(format!("anxin-bench-mosquitto-{}", std::process::id()));
        std::fs::create_dir_all(&folder)?;
        let config = folder.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n\
                 max_inflight_messages 1000\nmax_queued_messages 0\nmessage_size_limit 65536\nlog_dest none\n"
            ),
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Started as root, Mosquitto drops to its own user, which must read the file.
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755))?;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))?;
        }
        let child = Command::new(binary).arg("-c").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mosquitto = Mosquitto { address, child, folder };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "Mosquitto did not start on {address}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(mosquitto)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The benchmark's MQTT clients, each with an identity of its own on the
/// broker: enrolled in the run's database before it connects (a bridge for
/// the devices it publishes for, a gateway for a subscriber), all with one
/// secret hashed once, and a rate the limiter never reaches (the figures
/// measure ingest, not the limit).
#[derive(Clone)]
pub(crate) struct BenchClients {
    store: Store,
    secret: Arc<str>,
    hash: Arc<str>,
}

impl BenchClients {
    pub(crate) fn new(store: &Store) -> BenchClients {
        let secret = anxin_domain::identity::new_secret();
        let hash = anxin_domain::identity::hash_secret(&secret);
        BenchClients { store: store.clone(), secret: secret.into(), hash: hash.into() }
    }

    /// The embedded broker on a free loopback port, checking this run's identities.
    pub(crate) fn embedded_broker(&self) -> EmbeddedBroker {
        EmbeddedBroker {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth: BrokerAuth::new(self.store.clone(), RateLimits::default()),
            tls: None,
            limits: BrokerLimits::default(),
        }
    }

    /// Enrols clients that publish for devices (bridges), all in one commit.
    pub(crate) async fn enrol_publishers(&self, publishers: Vec<(String, Vec<String>)>) -> anyhow::Result<()> {
        let identities: Vec<NewIdentity> =
            publishers.into_iter().map(|(name, devices)| self.identity(name, IdentityKind::Bridge, devices)).collect();
        self.store.reissue_identities(&identities, "bench", anxin_store::now_ms()).await?;
        Ok(())
    }

    fn identity(&self, name: String, kind: IdentityKind, devices: Vec<String>) -> NewIdentity {
        NewIdentity { name, kind, secret_hash: self.hash.to_string(), rate_per_s: Some(100_000_000), devices }
    }

    /// Options for a subscriber of device topics (a gateway's identity).
    pub(crate) async fn subscriber(&self, name: &str, broker: SocketAddr) -> anyhow::Result<MqttOptions> {
        let identity = self.identity(name.to_string(), IdentityKind::Gateway, Vec::new());
        self.store.reissue_identities(&[identity], "bench", anxin_store::now_ms()).await?;
        let mut options = MqttOptions::new(name, broker.ip().to_string(), broker.port());
        options.set_credentials(name, self.secret.as_ref());
        Ok(options)
    }

    /// An MQTT 3.1.1 connection (as a sensor node or bridge would open) of an
    /// enrolled publisher, once the broker has accepted it; `inflight`
    /// publishes may wait for their PUBACK.
    pub(crate) async fn connect(
        &self,
        broker: SocketAddr,
        name: String,
        inflight: u16,
    ) -> anyhow::Result<(AsyncClient, rumqttc::EventLoop)> {
        let mut options = MqttOptions::new(name.clone(), broker.ip().to_string(), broker.port());
        options.set_credentials(name, self.secret.as_ref());
        options.set_keep_alive(Duration::from_secs(60));
        options.set_inflight(inflight);
        let (client, mut eventloop) = AsyncClient::new(options, 1_024);
        loop {
            match eventloop.poll().await.context("bench connection")? {
                MqttEvent::Incoming(Packet::ConnAck(ack)) if ack.code == rumqttc::ConnectReturnCode::Success => break,
                MqttEvent::Incoming(Packet::ConnAck(ack)) => {
                    anyhow::bail!("the broker refused a bench client: {:?}", ack.code)
                }
                _ => {}
            }
        }
        Ok((client, eventloop))
    }
}

/// A summary of a lived-in, healthy home (fixed readings) as encoded on the wire.
pub(crate) fn summary(boot: u32, seq: u32, up: u64, interval_s: u32, motion: u16, door_opens: u16) -> Vec<u8> {
    let mut buffer = [0u8; 512];
    let summary = anxin_protocol::Summary {
        boot,
        seq,
        up,
        interval_s,
        motion,
        door_opens,
        temp_dc: Some(205),
        battery: Some(90),
        rssi: Some(-60),
    };
    let len = summary.encode(&mut buffer).unwrap_or(0);
    buffer[..len].to_vec()
}

/// A smoke alarm event.
pub(crate) fn smoke(seq: u32) -> Vec<u8> {
    let mut buffer = [0u8; 256];
    let event = Event { boot: 1, seq, up: u64::from(seq), kind: EventKind::Smoke(SmokeState::Alarm) };
    let len = event.encode(&mut buffer).unwrap_or(0);
    buffer[..len].to_vec()
}

/// A watched home's state and deadline: watched since `silence_from`, its
/// one device known (as `Store::populate_for_benchmark` takes them; the
/// province's tests set up their silent homes with it too).
pub fn watched_home(policy: &AlertPolicy, silence_from: i64, device: &str, now: i64) -> (String, i64) {
    let mut state = HomeState::new(silence_from, policy);
    state.boots.insert(device.to_string(), 1);
    let home = policy.for_home(&Default::default(), false, None);
    let context = rules::Context { now, policy, home: &home, day_close_delay_ms: 5 * 60_000 };
    let due = next_due(&state, &context);
    (serde_json::to_string(&state).unwrap_or_default(), due)
}

/// Publishes a smoke alarm from each of `homes` (`(device id, elder id)`),
/// `every` apart, and returns the publish → `opened`-on-the-feed latencies,
/// sorted.
pub(crate) async fn smoke_probes(
    clients: &BenchClients,
    broker: SocketAddr,
    name: &str,
    homes: &[(String, i64)],
    every: Duration,
    feed: &mut broadcast::Receiver<Arc<AlertChange>>,
) -> anyhow::Result<Vec<Duration>> {
    let devices = homes.iter().map(|(device, _)| device.clone()).collect();
    let client_id = format!("bench-probe-{name}");
    clients.enrol_publishers(vec![(client_id.clone(), devices)]).await?;
    let (client, mut eventloop) = clients.connect(broker, client_id, 100).await?;
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut ticker = tokio::time::interval(every);
    let mut next = 0;
    let deadline = Instant::now() + every * u32::try_from(homes.len()).unwrap_or(u32::MAX) + Duration::from_secs(60);
    while latencies.len() < homes.len() && Instant::now() < deadline {
        tokio::select! {
            _ = ticker.tick(), if next < homes.len() => {
                let (device, elder) = &homes[next];
                next += 1;
                sent.insert(*elder, Instant::now());
                client.publish(format!("anxin/v1/dev/{device}/event"), QoS::AtLeastOnce, false, smoke(1_000_000)).await?;
            }
            change = feed.recv() => match change {
                Ok(change) if change.kind == anxin_domain::alerts::AlertKind::Smoke && change.action == "opened" => {
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

/// `name: p50 …, p99 …, max … (n=…)`.
pub(crate) fn latency_line(name: &str, latencies: &[Duration]) -> String {
    format!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        percentile(latencies, 50),
        percentile(latencies, 99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1_000.0),
        latencies.len()
    )
}

/// A steady load: so many messages a second in total, until a moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub rate: f64,
    pub stop: Instant,
}

/// Summaries with motion from `devices` at `pace`, from one connection
/// (enrolled for them); counts PUBACKs into `acked`. A device's sequence
/// numbers start above `first_seq`.
pub(crate) async fn paced_summaries(
    clients: BenchClients,
    broker: SocketAddr,
    client_id: String,
    devices: Vec<String>,
    first_seq: u32,
    pace: Pace,
    acked: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    let Pace { rate, stop } = pace;
    let (client, mut eventloop) = clients.connect(broker, client_id, 200).await?;
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let MqttEvent::Incoming(Packet::PubAck(_)) = event {
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let mut seqs = vec![first_seq; devices.len()];
    let started = Instant::now();
    let mut published = 0u64;
    let mut next = 0;
    while Instant::now() < stop && !devices.is_empty() {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count of messages, never negative"
        )]
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while published < due {
            let home = next % devices.len();
            next += 1;
            seqs[home] += 1;
            let payload = summary(1, seqs[home], u64::from(seqs[home]) * 60_000, 60, 2, 0);
            let topic = format!("anxin/v1/dev/{}/summary", devices[home]);
            client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = client.disconnect().await;
    Ok(())
}
