//! `anxin simulate`: homes that behave like real ones, for demos, tests and
//! load.
//!
//! Each simulated home runs the firmware's own [`Node`] state machine —
//! numbering, summaries, outbox, backoff are the node's, not a copy — fed by
//! a [`routine`] (asleep at night, active by day, the door now and then) and
//! by [`scenario`]s asked for on the command line (smoke in home K, a silent
//! home, a door left open at night, a cold room, a device going silent, the
//! help button). Its uplink is rumqttc instead of rust-mqtt, one MQTT
//! connection per home, as on real nodes.
//!
//! Simulated time runs `speed` times faster than real time, so a day of
//! routine fits in a demo; the run is bounded by a real-time duration and the
//! broker must be on loopback unless explicitly allowed.
//!
//! [`Node`]: anxin_firmware::Node

pub mod home;
pub mod ledger;
pub mod routine;
pub mod scenario;

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use scenario::{Scenario, ScenarioError};

/// Everything a simulation run needs.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub broker_host: String,
    pub broker_port: u16,
    pub homes: usize,
    /// Real time the run lasts.
    pub duration: Duration,
    /// Real time a home may go on after `duration` delivering what its
    /// outbox still holds (observing nothing new); zero: none. A test that
    /// breaks the broker near the end gives its homes time to reconnect and
    /// deliver, so `still_queued` says whether they could.
    pub drain: Duration,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated summary interval.
    pub summary_interval: Duration,
    /// Simulated hour of day at which the run starts (0–23).
    pub start_hour: u32,
    pub scenarios: Vec<Scenario>,
    /// Device ids are `{prefix}-{index:05}`, index from 1.
    pub id_prefix: String,
    /// Seed for routines and jitter: the same seed gives the same homes.
    pub seed: u64,
    /// Permit a broker that is not on this machine.
    pub allow_remote: bool,
    /// Keep every `(device, boot, seq)` the broker acknowledged, in the
    /// report (for tests that check nothing acknowledged was lost).
    pub record_acks: bool,
    /// Each device's secret on the broker (username = client id = device
    /// id); a device without one connects without credentials.
    pub credentials: std::collections::HashMap<String, String>,
    /// MQTT over TLS with this client configuration (which CA to trust).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        Self {
            broker_host: "127.0.0.1".into(),
            broker_port: 1883,
            homes: 10,
            duration: Duration::from_secs(60),
            drain: Duration::ZERO,
            speed: 1.0,
            summary_interval: Duration::from_secs(300),
            start_hour: 8,
            scenarios: Vec::new(),
            id_prefix: "sim".into(),
            seed: 1,
            allow_remote: false,
            record_acks: false,
            credentials: std::collections::HashMap::new(),
            tls: None,
        }
    }
}

/// Why a simulation could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("broker {0} is not on this machine; pass --allow-remote to simulate against it")]
    RemoteBroker(String),
    #[error("cannot resolve broker host {0}")]
    UnresolvableBroker(String),
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("--homes must be at least 1")]
    NoHomes,
    #[error("--speed must be a positive number")]
    BadSpeed,
}

/// Counters shared by every home of a run.
#[derive(Debug, Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub acknowledged: AtomicU64,
    pub events: AtomicU64,
    pub summaries: AtomicU64,
    pub connections: AtomicU64,
    pub connection_failures: AtomicU64,
    pub first_connection_failure: std::sync::OnceLock<String>,
    pub dropped_by_outbox: AtomicU64,
    /// Filled only with `record_acks`.
    pub acked: std::sync::Mutex<Vec<AckedMessage>>,
}

/// A message the broker acknowledged to a simulated node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AckedMessage {
    pub device_id: String,
    pub boot: u32,
    pub seq: u32,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub homes: usize,
    pub published: u64,
    pub acknowledged: u64,
    pub events: u64,
    pub summaries: u64,
    pub connections: u64,
    pub connection_failures: u64,
    /// Why the first failed connection attempt failed (a refused password,
    /// a certificate not trusted, …): a run that never connects says why.
    pub first_connection_failure: Option<String>,
    pub dropped_by_outbox: u64,
    pub still_queued: u64,
    /// With `record_acks`: every event and summary acknowledged, sorted.
    pub acked: Vec<AckedMessage>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} homes: {} messages acknowledged by the broker ({} events, {} summaries), {} connections, \
             {} failed connection attempts, {} dropped by full outboxes, {} still queued at the end",
            self.homes,
            self.acknowledged,
            self.events,
            self.summaries,
            self.connections,
            self.connection_failures,
            self.dropped_by_outbox,
            self.still_queued
        )?;
        match &self.first_connection_failure {
            Some(why) => write!(f, "; the first failed attempt: {why}"),
            None => Ok(()),
        }
    }
}

impl SimulateOptions {
    /// Checks the options before anything connects.
    pub fn validate(&self) -> Result<(), SimulateError> {
        if self.homes == 0 {
            return Err(SimulateError::NoHomes);
        }
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(SimulateError::BadSpeed);
        }
        for scenario in &self.scenarios {
            scenario.check(self.homes)?;
        }
        if !self.allow_remote {
            let target = format!("{}:{}", self.broker_host, self.broker_port);
            let addresses: Vec<IpAddr> = target
                .to_socket_addrs()
                .map_err(|_| SimulateError::UnresolvableBroker(self.broker_host.clone()))?
                .map(|address| address.ip())
                .collect();
            if addresses.is_empty() || !addresses.iter().all(IpAddr::is_loopback) {
                return Err(SimulateError::RemoteBroker(target));
            }
        }
        Ok(())
    }

    pub fn device_id(&self, index: usize) -> String {
        format!("{}-{index:05}", self.id_prefix)
    }
}

/// Splits `mqtt://HOST:PORT` (port 1883 when left out) into host and port.
/// `mqtt://HOST[:PORT]` (port 1883) or `mqtts://HOST[:PORT]` (TLS, port
/// 8883): the host, the port, and whether it is TLS.
pub fn parse_broker_url(url: &str) -> Result<(String, u16, bool), BrokerUrlError> {
    let (rest, tls, default_port) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (rest, false, 1883),
        (_, Some(rest)) => (rest, true, 8883),
        _ => return Err(BrokerUrlError(url.into())),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| BrokerUrlError(url.into()))?),
        None => (rest, default_port),
    };
    if host.is_empty() || host.contains('/') {
        return Err(BrokerUrlError(url.into()));
    }
    Ok((host.to_string(), port, tls))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker {0:?} is not of the form mqtt://HOST:PORT or mqtts://HOST:PORT")]
pub struct BrokerUrlError(pub String);

/// Runs every home until the duration (and the drain) is over, then reports.
pub async fn run(options: SimulateOptions) -> Result<Report, SimulateError> {
    options.validate()?;
    let options = Arc::new(options);
    let counters = Arc::new(Counters::default());
    let mut tasks = tokio::task::JoinSet::new();
    for index in 1..=options.homes {
        let options = Arc::clone(&options);
        let counters = Arc::clone(&counters);
        tasks.spawn(async move { home::run_home(index, &options, &counters).await });
        // Stagger connections so a thousand homes do not all connect in one
        // instant, as after a district-wide power cut.
        if index % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut still_queued = 0;
    while let Some(result) = tasks.join_next().await {
        if let Ok(queued) = result {
            still_queued += queued as u64;
        }
    }
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    Ok(Report {
        homes: options.homes,
        published: load(&counters.published),
        acknowledged: load(&counters.acknowledged),
        events: load(&counters.events),
        summaries: load(&counters.summaries),
        connections: load(&counters.connections),
        connection_failures: load(&counters.connection_failures),
        first_connection_failure: counters.first_connection_failure.get().cloned(),
        dropped_by_outbox: load(&counters.dropped_by_outbox),
        still_queued,
        acked: {
            let mut acked =
                std::mem::take(&mut *counters.acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            acked.sort();
            acked
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_and_without_a_port() {
        assert_eq!(parse_broker_url("mqtt://127.0.0.1:1884"), Ok(("127.0.0.1".into(), 1884, false)));
        assert_eq!(parse_broker_url("mqtt://localhost"), Ok(("localhost".into(), 1883, false)));
        assert_eq!(parse_broker_url("mqtts://localhost"), Ok(("localhost".into(), 8883, true)));
        assert_eq!(parse_broker_url("mqtts://10.0.0.2:18883"), Ok(("10.0.0.2".into(), 18883, true)));
        assert!(parse_broker_url("http://x:1").is_err());
        assert!(parse_broker_url("mqtt://:1").is_err());
        assert!(parse_broker_url("mqtt://h:99999").is_err());
    }

    #[test]
    fn a_remote_broker_is_refused_unless_allowed() {
        let options = SimulateOptions { broker_host: "192.0.2.1".into(), ..SimulateOptions::default() };
        assert!(matches!(options.validate(), Err(SimulateError::RemoteBroker(_))));
        let allowed = SimulateOptions { allow_remote: true, ..options };
        assert!(allowed.validate().is_ok());
        let loopback = SimulateOptions { broker_host: "localhost".into(), ..SimulateOptions::default() };
        assert!(loopback.validate().is_ok());
    }

    #[test]
    fn nonsense_counts_and_speeds_are_refused() {
        assert!(matches!(
            SimulateOptions { homes: 0, ..SimulateOptions::default() }.validate(),
            Err(SimulateError::NoHomes)
        ));
        assert!(matches!(
            SimulateOptions { speed: 0.0, ..SimulateOptions::default() }.validate(),
            Err(SimulateError::BadSpeed)
        ));
        let scenarios = vec!["help:11".parse().unwrap()];
        assert!(matches!(
            SimulateOptions { scenarios, ..SimulateOptions::default() }.validate(),
            Err(SimulateError::Scenario(_))
        ));
    }
}
