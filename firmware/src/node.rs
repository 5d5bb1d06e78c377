//! The node application as a state machine: time and observations in,
//! messages out. No I/O, no clock, no randomness of its own — the runner
//! ([`crate::link`]) and the simulator feed it all three, which is why the
//! same logic can be tested through a scripted day in microseconds and run
//! in thousands of simulated homes.

use anxin_protocol::{
    Channel, DeviceId, DoorState, Event, EventKind, MAX_SUMMARY_INTERVAL_S, SmokeState, Status, Summary, TOPIC_MAX_LEN,
    TamperState, Topic,
};
use heapless::{String, Vec};

use crate::backoff::Backoff;
use crate::outbox::{Dropped, Outbox, Outgoing};

/// Default summary interval: 5 minutes. The summary is also the heartbeat;
/// the gateway calls a node offline after 3 missed intervals.
pub const DEFAULT_SUMMARY_INTERVAL_MS: u64 = 300_000;

/// Room for the largest encoded payload (a summary with every field is ~170 B).
pub const PAYLOAD_CAPACITY: usize = 256;

/// Default outbox size: an hour offline at 5-minute summaries is 12 messages,
/// so 64 leaves room for a busy day of door events too.
pub const DEFAULT_OUTBOX: usize = 64;

/// What the node's sensors tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The PIR counted a trigger (already held off by the driver).
    Motion,
    Door(DoorState),
    Smoke(SmokeState),
    HelpPressed,
    Tamper(TamperState),
    /// Room temperature in 0.1 °C.
    Temperature(i16),
    /// Battery level in percent.
    Battery(u8),
    /// Radio signal strength in dBm.
    Rssi(i16),
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub summary_interval_ms: u64,
    pub firmware_version: &'static str,
    pub backoff: Backoff,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            summary_interval_ms: DEFAULT_SUMMARY_INTERVAL_MS,
            firmware_version: env!("CARGO_PKG_VERSION"),
            backoff: Backoff::default(),
        }
    }
}

/// One MQTT message ready to go out (QoS 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String<TOPIC_MAX_LEN>,
    pub payload: Vec<u8, PAYLOAD_CAPACITY>,
    pub retain: bool,
    /// The message's `seq` for events and summaries; `None` for status.
    pub seq: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down { retry_at: u64 },
    Up { announced: bool },
}

/// A sensor node's whole application state.
#[derive(Debug)]
pub struct Node<const OUTBOX: usize = DEFAULT_OUTBOX> {
    device_id: DeviceId,
    config: NodeConfig,
    boot: u32,
    next_seq: u32,
    window_started_at: u64,
    next_summary_at: u64,
    motion: u16,
    door_opens: u16,
    temp_dc: Option<i16>,
    battery: Option<u8>,
    rssi: Option<i16>,
    outbox: Outbox<OUTBOX>,
    link: Link,
    dropped: u32,
}

impl<const OUTBOX: usize> Node<OUTBOX> {
    /// A node that has just powered up at `now_ms` (its uptime clock, usually 0).
    /// `boot` must be random per power-up (the board's RNG), so that
    /// `(device, boot, seq)` never repeats across restarts.
    pub fn new(device_id: DeviceId, boot: u32, now_ms: u64, config: NodeConfig) -> Self {
        Self {
            device_id,
            boot,
            next_seq: 0,
            window_started_at: now_ms,
            next_summary_at: now_ms + config.summary_interval_ms,
            motion: 0,
            door_opens: 0,
            temp_dc: None,
            battery: None,
            rssi: None,
            outbox: Outbox::new(),
            link: Link::Down { retry_at: now_ms },
            dropped: 0,
            config,
        }
    }

    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    pub fn boot(&self) -> u32 {
        self.boot
    }

    pub fn outbox(&self) -> &Outbox<OUTBOX> {
        &self.outbox
    }

    /// Messages lost to outbox overflow since power-up (never a hazard).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Up { .. })
    }

    /// Takes in what a sensor saw at `now_ms`.
    pub fn observe(&mut self, now_ms: u64, observation: Observation) {
        let kind = match observation {
            Observation::Motion => {
                self.motion = self.motion.saturating_add(1);
                return;
            }
            Observation::Temperature(temp_dc) => return self.temp_dc = Some(temp_dc),
            Observation::Battery(percent) => return self.battery = Some(percent.min(100)),
            Observation::Rssi(dbm) => return self.rssi = Some(dbm),
            Observation::Door(state) => {
                if state == DoorState::Open {
                    self.door_opens = self.door_opens.saturating_add(1);
                }
                EventKind::Door(state)
            }
            Observation::Smoke(state) => EventKind::Smoke(state),
            Observation::HelpPressed => EventKind::Help,
            Observation::Tamper(state) => EventKind::Tamper(state),
        };
        let event = Event { boot: self.boot, seq: self.take_seq(), up: now_ms, kind };
        self.enqueue(Outgoing::Event(event));
    }

    /// Advances time: emits the summary when its interval is over.
    pub fn tick(&mut self, now_ms: u64) {
        if now_ms < self.next_summary_at {
            return;
        }
        let elapsed_s = (now_ms - self.window_started_at) / 1_000;
        let interval_s = u32::try_from(elapsed_s.clamp(1, u64::from(MAX_SUMMARY_INTERVAL_S))).unwrap_or(1);
        let summary = Summary {
            boot: self.boot,
            seq: self.take_seq(),
            up: now_ms,
            interval_s,
            motion: self.motion,
            door_opens: self.door_opens,
            temp_dc: self.temp_dc,
            battery: self.battery,
            rssi: self.rssi,
        };
        self.enqueue(Outgoing::Summary(summary));
        self.motion = 0;
        self.door_opens = 0;
        self.window_started_at = now_ms;
        // Keep a steady cadence, unless the node fell more than an interval behind.
        let next = self.next_summary_at + self.config.summary_interval_ms;
        self.next_summary_at = if next > now_ms { next } else { now_ms + self.config.summary_interval_ms };
    }

    /// When the next summary is due (for a runner that sleeps between events).
    pub fn next_summary_at(&self) -> u64 {
        self.next_summary_at
    }

    /// True when the node is offline and its backoff has run out.
    pub fn wants_connection(&self, now_ms: u64) -> bool {
        matches!(self.link, Link::Down { retry_at } if now_ms >= retry_at)
    }

    pub fn on_connected(&mut self) {
        self.config.backoff.reset();
        self.link = Link::Up { announced: false };
    }

    /// The connection failed or dropped; `random` jitters the retry.
    pub fn on_connection_lost(&mut self, now_ms: u64, random: u32) {
        let delay = self.config.backoff.next_delay_ms(random);
        self.link = Link::Down { retry_at: now_ms + delay };
    }

    /// What to publish next: the retained `online` status first after each
    /// connection, then the outbox in order. The message stays queued until
    /// [`Node::on_published`] confirms its PUBACK, so a message in flight
    /// when the link drops is sent again (same `seq`: the gateway dedups).
    pub fn next_publish(&self) -> Option<Publish> {
        match self.link {
            Link::Down { .. } => None,
            Link::Up { announced: false } => {
                let status = Status::online(self.boot, self.config.firmware_version);
                Some(self.publish(Channel::Status, |buffer| status.encode(buffer), true, None))
            }
            Link::Up { announced: true } => self.outbox.front().map(|message| match message {
                Outgoing::Event(event) => {
                    self.publish(Channel::Event, |buffer| event.encode(buffer), false, Some(event.seq))
                }
                Outgoing::Summary(summary) => {
                    self.publish(Channel::Summary, |buffer| summary.encode(buffer), false, Some(summary.seq))
                }
            }),
        }
    }

    /// The broker acknowledged the message with this `seq` (`None`: the status).
    pub fn on_published(&mut self, seq: Option<u32>) {
        match seq {
            None => {
                if let Link::Up { announced } = &mut self.link {
                    *announced = true;
                }
            }
            Some(seq) => {
                self.outbox.acknowledge(seq);
            }
        }
    }

    /// The Last Will to register at connect: retained `offline` status.
    pub fn last_will(&self) -> Publish {
        self.publish(Channel::Status, |buffer| Status::LAST_WILL.encode(buffer), true, None)
    }

    fn publish(
        &self,
        channel: Channel,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, anxin_protocol::EncodeError>,
        retain: bool,
        seq: Option<u32>,
    ) -> Publish {
        let mut buffer = [0u8; PAYLOAD_CAPACITY];
        // Cannot fail: PAYLOAD_CAPACITY exceeds the largest payload the node builds.
        let len = encode(&mut buffer).unwrap_or(0);
        let mut payload = Vec::new();
        let _ = payload.extend_from_slice(&buffer[..len]);
        Publish { topic: Topic::new(self.device_id.clone(), channel).to_heapless(), payload, retain, seq }
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn enqueue(&mut self, message: Outgoing) {
        if self.outbox.push(message) != Dropped::Nothing {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests;
