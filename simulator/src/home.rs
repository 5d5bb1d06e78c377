//! One simulated home: a firmware [`Node`] fed by its routine and
//! scenarios, uplinked over one rumqttc connection.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anxin_firmware::backoff::Backoff;
use anxin_firmware::{Node, NodeConfig, Observation, Publish};
use anxin_protocol::{Channel, DeviceId, DoorState, SmokeState, Topic};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};

use crate::routine::{DoorPlan, Routine};
use crate::scenario::{Scenario, ScenarioKind};
use crate::{Counters, SimulateOptions};

/// How often a home advances its simulated clock.
const TICK: Duration = Duration::from_millis(100);
/// The least real time between two connection attempts of one home, however
/// fast simulated time runs, so a broker outage is not hammered.
const MIN_RETRY: Duration = Duration::from_millis(500);
const MINUTE_MS: u64 = 60_000;

/// A publish waiting for its PUBACK: one at a time, like the real node.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: Option<u32>,
    channel: Channel,
    packet_id: Option<u16>,
}

/// Runs home `index` until the run's duration is over, then while it drains
/// its outbox (up to `options.drain`); returns how many messages were still
/// queued in its outbox.
pub async fn run_home(index: usize, options: &SimulateOptions, counters: &Counters) -> usize {
    let device_id = options.device_id(index);
    let Ok(parsed_id) = DeviceId::parse(&device_id) else {
        tracing::error!(%device_id, "not a valid device id; check --id-prefix");
        return 0;
    };
    let mut rng = fastrand::Rng::with_seed(options.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let config = NodeConfig {
        summary_interval_ms: u64::try_from(options.summary_interval.as_millis()).unwrap_or(300_000).max(1_000),
        firmware_version: "sim-0.1.0",
        backoff: Backoff::new(1_000, 60_000),
    };
    // A fresh boot on every run, whatever the seed: a run is a power-up, and
    // a node that came back with the same boot would send (boot, seq) pairs
    // already stored — duplicates, dropped as redeliveries.
    let boot = fastrand::u32(..);
    let mut node: Node = Node::new(parsed_id, boot, 0, config);
    let routine = Routine::generate(&mut rng);
    let mut door = DoorPlan::default();
    let mut script = Script::new(options, index);
    let start_minute = u64::from(options.start_hour % 24) * 60;

    let started = Instant::now();
    let ends_at = started + options.duration;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive speed times elapsed seconds"
    )]
    let simulated_ms = |at: Instant| (at.duration_since(started).as_secs_f64() * options.speed * 1_000.0) as u64;
    let mut next_minute = 0u64;
    let mut connection: Option<(AsyncClient, EventLoop)> = None;
    let mut in_flight: Option<InFlight> = None;
    let mut next_attempt = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dropped_before = 0;

    loop {
        let polled = async {
            match connection.as_mut() {
                Some((_, eventloop)) => eventloop.poll().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticker.tick() => {
                let real_now = Instant::now();
                let draining = real_now >= ends_at;
                if draining && (real_now >= ends_at + options.drain || node.outbox().is_empty()) {
                    break;
                }
                let now = simulated_ms(real_now);
                // Every simulated minute passed since the last tick (none
                // while draining: the home only delivers what it holds).
                while !draining && (next_minute + 1) * MINUTE_MS <= now {
                    for (at, observation) in routine.minute(next_minute, start_minute, &mut rng, &mut door) {
                        let observation = script.adjust(at, observation);
                        if let Some(observation) = observation {
                            node.observe(at, observation);
                        }
                    }
                    next_minute += 1;
                }
                if !draining {
                    for (at, observation) in script.due(now, start_minute) {
                        node.observe(at, observation);
                    }
                    node.tick(now);
                }
                if node.dropped() > dropped_before {
                    counters.dropped_by_outbox.fetch_add(u64::from(node.dropped() - dropped_before), Ordering::Relaxed);
                    dropped_before = node.dropped();
                }
                if script.dies_at.is_some_and(|at| now >= at) {
                    // The node dies: drop the connection without DISCONNECT.
                    return node.outbox().len();
                }
                if connection.is_none() && node.wants_connection(now) && real_now >= next_attempt {
                    connection = Some(connect(options, &device_id, &node.last_will()));
                    next_attempt = real_now + MIN_RETRY;
                }
            }
            event = polled => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    node.on_connected();
                    in_flight = None;
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                    if let Some(flight) = in_flight.as_mut() {
                        flight.packet_id = Some(packet_id);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(flight) = in_flight.filter(|flight| flight.packet_id == Some(ack.pkid)) {
                        node.on_published(flight.seq);
                        in_flight = None;
                        if options.record_acks && let Some(seq) = flight.seq {
                            let acked = crate::AckedMessage { device_id: device_id.clone(), boot, seq };
                            counters.acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(acked);
                        }
                        counters.acknowledged.fetch_add(1, Ordering::Relaxed);
                        match flight.channel {
                            Channel::Event => counters.events.fetch_add(1, Ordering::Relaxed),
                            Channel::Summary => counters.summaries.fetch_add(1, Ordering::Relaxed),
                            Channel::Status => 0,
                        };
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%device_id, %error, "connection lost");
                    if !node.is_connected() {
                        counters.connection_failures.fetch_add(1, Ordering::Relaxed);
                        let _ = counters.first_connection_failure.set(error.to_string());
                    }
                    // A fresh client next time: rumqttc's own resend state
                    // would duplicate the node's outbox.
                    connection = None;
                    in_flight = None;
                    node.on_connection_lost(simulated_ms(Instant::now()), rng.u32(..));
                }
            },
        }
        if in_flight.is_none()
            && node.is_connected()
            && let Some((client, _)) = connection.as_ref()
            && let Some(message) = node.next_publish()
        {
            in_flight = Some(send(client, &message, counters));
        }
    }
    if let Some((client, mut eventloop)) = connection.take() {
        // The run is over, not the node: leave without triggering the Last Will.
        let _ = client.try_disconnect();
        let _ =
            tokio::time::timeout(Duration::from_millis(500), async { while eventloop.poll().await.is_ok() {} }).await;
    }
    node.outbox().len()
}

fn connect(options: &SimulateOptions, device_id: &str, will: &Publish) -> (AsyncClient, EventLoop) {
    let mut mqtt = MqttOptions::new(device_id, options.broker_host.clone(), options.broker_port);
    mqtt.set_keep_alive(Duration::from_secs(60));
    mqtt.set_clean_session(true);
    if let Some(secret) = options.credentials.get(device_id) {
        mqtt.set_credentials(device_id, secret.as_str());
    }
    if let Some(tls) = &options.tls {
        mqtt.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone())));
    }
    mqtt.set_last_will(LastWill::new(will.topic.as_str(), will.payload.to_vec(), QoS::AtLeastOnce, will.retain));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 4);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    eventloop.set_network_options(network);
    (client, eventloop)
}

fn send(client: &AsyncClient, message: &Publish, counters: &Counters) -> InFlight {
    let channel = Topic::parse(&message.topic).map(|topic| topic.channel).unwrap_or(Channel::Event);
    // try_publish: never await inside the poll loop (rumqttc #263); with one
    // message in flight the request queue cannot be full.
    if client.try_publish(message.topic.as_str(), QoS::AtLeastOnce, message.retain, message.payload.to_vec()).is_ok() {
        counters.published.fetch_add(1, Ordering::Relaxed);
    }
    InFlight { seq: message.seq, channel, packet_id: None }
}

/// This home's scenarios, turned into times and observations.
#[derive(Debug, Default)]
struct Script {
    /// One-off observations still to come, at simulated ms.
    pending: Vec<(Option<u64>, ScenarioKind)>,
    silent_from: Option<u64>,
    cold_from: Option<u64>,
    door_left_open_at: Option<u64>,
    dies_at: Option<u64>,
}

impl Script {
    fn new(options: &SimulateOptions, home: usize) -> Self {
        let mut script = Script::default();
        let ms = |scenario: &Scenario| scenario.at.map(|at| u64::try_from(at.as_millis()).unwrap_or(u64::MAX));
        for scenario in options.scenarios.iter().filter(|s| s.home == home) {
            match scenario.kind {
                ScenarioKind::Smoke | ScenarioKind::Help | ScenarioKind::DoorLeftOpenAtNight => {
                    script.pending.push((ms(scenario), scenario.kind));
                }
                ScenarioKind::Silent => script.silent_from = Some(ms(scenario).unwrap_or(0)),
                ScenarioKind::Cold => script.cold_from = Some(ms(scenario).unwrap_or(0)),
                ScenarioKind::DeviceSilent => script.dies_at = Some(ms(scenario).unwrap_or(0)),
            }
        }
        script
    }

    /// Scenario observations due by `now`.
    fn due(&mut self, now: u64, start_minute: u64) -> Vec<(u64, Observation)> {
        let mut due = Vec::new();
        self.pending.retain(|(at, kind)| {
            let at = at.unwrap_or_else(|| match kind {
                // Default: the next 23:00 after the start.
                ScenarioKind::DoorLeftOpenAtNight => ((23 * 60 + 24 * 60 - start_minute) % (24 * 60)) * MINUTE_MS,
                _ => 0,
            });
            if at > now {
                return true;
            }
            let observation = match kind {
                ScenarioKind::Smoke => Observation::Smoke(SmokeState::Alarm),
                ScenarioKind::Help => Observation::HelpPressed,
                _ => Observation::Door(DoorState::Open),
            };
            if *kind == ScenarioKind::DoorLeftOpenAtNight {
                self.door_left_open_at = Some(at);
            }
            due.push((at, observation));
            false
        });
        due
    }

    /// Applies lasting scenarios to what the routine produced.
    fn adjust(&self, at: u64, observation: Observation) -> Option<Observation> {
        let silent = self.silent_from.is_some_and(|from| at >= from);
        match observation {
            Observation::Motion | Observation::Door(_) if silent => None,
            Observation::Temperature(_) if self.cold_from.is_some_and(|from| at >= from) => {
                Some(Observation::Temperature(80))
            }
            // Once the door is left open, the routine does not close it.
            Observation::Door(_) if self.door_left_open_at.is_some_and(|from| at >= from) => None,
            other => Some(other),
        }
    }
}
