//! `summary`: every few minutes; also the node's heartbeat.

use serde::{Deserialize, Serialize};

use super::{
    EncodeError, Rejection, U16_RANGE, U32_RANGE, UP_RANGE, check_version, encode_with, optional_integer, parse_raw,
    required_integer,
};
use crate::SCHEMA_VERSION;

/// Longest summary interval accepted: one day.
pub const MAX_INTERVAL_S: u32 = 86_400;
/// Temperature range accepted, in 0.1 °C (the TMP102's −40…125 °C).
pub const TEMP_DC_RANGE: core::ops::RangeInclusive<i64> = -400..=1250;
/// Signal strength range accepted, in dBm.
pub const RSSI_RANGE: core::ops::RangeInclusive<i64> = -150..=0;

/// `{"v":1,"boot":…,"seq":…,"up":…,"interval_s":300,"motion":12,"door_opens":1,
///   "temp_dc":215,"battery":87,"rssi":-61}`
///
/// Motion is summarised on the node (triggers counted over the interval), not
/// sent per trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub boot: u32,
    pub seq: u32,
    pub up: u64,
    /// Length of the interval this summary covers, in seconds (1…86 400).
    pub interval_s: u32,
    /// Motion triggers counted in the interval.
    pub motion: u16,
    /// Door openings in the interval.
    pub door_opens: u16,
    /// Room temperature in 0.1 °C, if the node has a sensor.
    pub temp_dc: Option<i16>,
    /// Battery level in percent (0…100), if battery powered.
    pub battery: Option<u8>,
    /// Radio signal strength in dBm, if known.
    pub rssi: Option<i16>,
}

#[derive(Deserialize)]
struct RawSummary {
    v: Option<f64>,
    boot: Option<f64>,
    seq: Option<f64>,
    up: Option<f64>,
    interval_s: Option<f64>,
    motion: Option<f64>,
    door_opens: Option<f64>,
    temp_dc: Option<f64>,
    battery: Option<f64>,
    rssi: Option<f64>,
}

#[derive(Serialize)]
struct WireSummary {
    v: u8,
    boot: u32,
    seq: u32,
    up: u64,
    interval_s: u32,
    motion: u16,
    door_opens: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rssi: Option<i16>,
}

impl Summary {
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let raw: RawSummary = parse_raw(bytes)?;
        check_version(raw.v)?;
        Ok(Self {
            boot: required_integer(raw.boot, "boot", U32_RANGE)?,
            seq: required_integer(raw.seq, "seq", U32_RANGE)?,
            up: required_integer(raw.up, "up", UP_RANGE)?,
            interval_s: required_integer(raw.interval_s, "interval_s", 1..=i64::from(MAX_INTERVAL_S))?,
            motion: required_integer(raw.motion, "motion", U16_RANGE)?,
            door_opens: required_integer(raw.door_opens, "door_opens", U16_RANGE)?,
            temp_dc: optional_integer(raw.temp_dc, "temp_dc", TEMP_DC_RANGE)?,
            battery: optional_integer(raw.battery, "battery", 0..=100)?,
            rssi: optional_integer(raw.rssi, "rssi", RSSI_RANGE)?,
        })
    }

    pub fn encode(&self, buffer: &mut [u8]) -> Result<usize, EncodeError> {
        let wire = WireSummary {
            v: SCHEMA_VERSION,
            boot: self.boot,
            seq: self.seq,
            up: self.up,
            interval_s: self.interval_s,
            motion: self.motion,
            door_opens: self.door_opens,
            temp_dc: self.temp_dc,
            battery: self.battery,
            rssi: self.rssi,
        };
        encode_with(&wire, buffer)
    }
}
