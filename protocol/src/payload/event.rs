//! `event`: immediate things — door, smoke, help, tamper.

use serde::{Deserialize, Serialize};

use super::{
    EncodeError, Rejection, U32_RANGE, UP_RANGE, check_version, encode_with, parse_raw, required, required_integer,
};
use crate::SCHEMA_VERSION;

/// `{"v":1,"boot":…,"seq":…,"up":…,"kind":"door","state":"open"}`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Random per power-up of the node.
    pub boot: u32,
    /// +1 per message within a boot; `(device, boot, seq)` identifies a message.
    pub seq: u32,
    /// Milliseconds since the node booted (at most 2^53 − 1); kept for
    /// ordering, never used as a clock.
    pub up: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Door(DoorState),
    Smoke(SmokeState),
    /// The help button was pressed.
    Help,
    Tamper(TamperState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoorState {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmokeState {
    Alarm,
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TamperState {
    Opened,
    Closed,
}

impl EventKind {
    /// The `kind` field on the wire.
    pub fn kind_str(self) -> &'static str {
        match self {
            EventKind::Door(_) => "door",
            EventKind::Smoke(_) => "smoke",
            EventKind::Help => "help",
            EventKind::Tamper(_) => "tamper",
        }
    }

    /// The `state` field on the wire.
    pub fn state_str(self) -> &'static str {
        match self {
            EventKind::Door(DoorState::Open) => "open",
            EventKind::Door(DoorState::Closed) => "closed",
            EventKind::Smoke(SmokeState::Alarm) => "alarm",
            EventKind::Smoke(SmokeState::Clear) => "clear",
            EventKind::Help => "pressed",
            EventKind::Tamper(TamperState::Opened) => "opened",
            EventKind::Tamper(TamperState::Closed) => "closed",
        }
    }

    /// Smoke and help are hazards: a node never drops one from its outbox.
    pub fn is_hazard(self) -> bool {
        matches!(self, EventKind::Smoke(_) | EventKind::Help)
    }

    fn parse(kind: &str, state: &str) -> Result<Self, Rejection> {
        let parsed = match (kind, state) {
            ("door", "open") => EventKind::Door(DoorState::Open),
            ("door", "closed") => EventKind::Door(DoorState::Closed),
            ("smoke", "alarm") => EventKind::Smoke(SmokeState::Alarm),
            ("smoke", "clear") => EventKind::Smoke(SmokeState::Clear),
            ("help", "pressed") => EventKind::Help,
            ("tamper", "opened") => EventKind::Tamper(TamperState::Opened),
            ("tamper", "closed") => EventKind::Tamper(TamperState::Closed),
            ("door" | "smoke" | "help" | "tamper", _) => return Err(Rejection::UnknownState),
            _ => return Err(Rejection::UnknownKind),
        };
        Ok(parsed)
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    v: Option<f64>,
    boot: Option<f64>,
    seq: Option<f64>,
    up: Option<f64>,
    #[serde(borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    state: Option<&'a str>,
}

#[derive(Serialize)]
struct WireEvent {
    v: u8,
    boot: u32,
    seq: u32,
    up: u64,
    kind: &'static str,
    state: &'static str,
}

impl Event {
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let raw: RawEvent<'_> = parse_raw(bytes)?;
        check_version(raw.v)?;
        let boot = required_integer(raw.boot, "boot", U32_RANGE)?;
        let seq = required_integer(raw.seq, "seq", U32_RANGE)?;
        let up = required_integer(raw.up, "up", UP_RANGE)?;
        let kind = required(raw.kind, "kind")?;
        let state = required(raw.state, "state")?;
        Ok(Self { boot, seq, up, kind: EventKind::parse(kind, state)? })
    }

    /// Writes the JSON payload into `buffer` and returns its length.
    pub fn encode(&self, buffer: &mut [u8]) -> Result<usize, EncodeError> {
        let wire = WireEvent {
            v: SCHEMA_VERSION,
            boot: self.boot,
            seq: self.seq,
            up: self.up,
            kind: self.kind.kind_str(),
            state: self.kind.state_str(),
        };
        encode_with(&wire, buffer)
    }
}
