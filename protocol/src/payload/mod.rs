//! Payloads: what a node says on each channel, and how it is checked.
//!
//! Decoding goes through permissive "raw" structs (every field optional,
//! unknown fields ignored, numbers wide) and then through explicit checks, so
//! each bad input gets a precise [`Rejection`] rather than a generic parse
//! error: missing field by name, value out of range by name, and so on.
//! Fields may be added in later versions and are ignored here; they are never
//! renamed.

mod event;
mod status;
mod summary;

pub use event::{DoorState, Event, EventKind, SmokeState, TamperState};
pub use status::{Firmware, Status, StatusState};
pub use summary::{MAX_INTERVAL_S as MAX_SUMMARY_INTERVAL_S, Summary};

use crate::{Channel, MAX_PAYLOAD_LEN, SCHEMA_VERSION};

/// A decoded, validated payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Event(Event),
    Summary(Summary),
    Status(Status),
}

/// Why a payload was refused. Each is a normal outcome for the gateway: it is
/// counted under [`Rejection::reason`], logged, and quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("payload is {len} bytes; the limit is {MAX_PAYLOAD_LEN}")]
    TooLarge { len: usize },
    #[error("payload is not a JSON object")]
    NotJson,
    #[error("a field has the wrong JSON type, a number that does not fit, or appears twice")]
    WrongType,
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    #[error("schema version {0} is not supported; this gateway reads version {SCHEMA_VERSION}")]
    UnsupportedVersion(u64),
    #[error("unknown event kind; expected door, smoke, help or tamper")]
    UnknownKind,
    #[error("state is not one this event kind can have")]
    UnknownState,
    #[error("field `{0}` is out of range")]
    OutOfRange(&'static str),
}

impl Rejection {
    /// A short stable name for counting rejections by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::NotJson => "not_json",
            Rejection::WrongType => "wrong_type",
            Rejection::MissingField(_) => "missing_field",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::UnknownKind => "unknown_kind",
            Rejection::UnknownState => "unknown_state",
            Rejection::OutOfRange(_) => "out_of_range",
        }
    }
}

/// Encoding failed: the buffer given was too small for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the buffer is too small for this payload")]
pub struct EncodeError;

/// Decodes the payload of a message received on `channel`.
pub fn decode(channel: Channel, bytes: &[u8]) -> Result<Payload, Rejection> {
    match channel {
        Channel::Event => Event::decode(bytes).map(Payload::Event),
        Channel::Summary => Summary::decode(bytes).map(Payload::Summary),
        Channel::Status => Status::decode(bytes).map(Payload::Status),
    }
}

impl Payload {
    pub fn channel(&self) -> Channel {
        match self {
            Payload::Event(_) => Channel::Event,
            Payload::Summary(_) => Channel::Summary,
            Payload::Status(_) => Channel::Status,
        }
    }

    pub fn encode(&self, buffer: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Payload::Event(event) => event.encode(buffer),
            Payload::Summary(summary) => summary.encode(buffer),
            Payload::Status(status) => status.encode(buffer),
        }
    }
}

/// Parses `bytes` into the raw struct `T`, after the checks every payload
/// shares: size, shape, and (when the struct itself fails) the version.
fn parse_raw<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Rejection> {
    if bytes.len() > MAX_PAYLOAD_LEN {
        return Err(Rejection::TooLarge { len: bytes.len() });
    }
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Rejection::NotJson);
    }
    match serde_json_core::from_slice::<T>(bytes) {
        Ok((raw, _)) => Ok(raw),
        Err(error) => {
            // A later version may change a field's type; say "version" rather
            // than "wrong type" when that is what happened.
            if let Ok((VersionOnly { v: Some(v) }, _)) = serde_json_core::from_slice(bytes)
                && let Ok(v) = integer::<u64>(v, "v", UP_RANGE)
                && v != u64::from(SCHEMA_VERSION)
            {
                return Err(Rejection::UnsupportedVersion(v));
            }
            Err(classify(error))
        }
    }
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    v: Option<f64>,
}

fn classify(error: serde_json_core::de::Error) -> Rejection {
    use serde_json_core::de::Error as E;
    match error {
        E::InvalidType | E::InvalidNumber | E::CustomError => Rejection::WrongType,
        _ => Rejection::NotJson,
    }
}

/// Checks the `v` field every payload starts with.
fn check_version(v: Option<f64>) -> Result<(), Rejection> {
    let v: u64 = required_integer(v, "v", UP_RANGE)?;
    if v != u64::from(SCHEMA_VERSION) {
        return Err(Rejection::UnsupportedVersion(v));
    }
    Ok(())
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Rejection> {
    value.ok_or(Rejection::MissingField(field))
}

/// The largest integer the contract carries (`up`): 2^53 − 1, the largest
/// that every JSON reader, JavaScript included, represents exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Narrows a JSON number to an integer of the field's type within `range`.
///
/// Numbers are read as `f64` so that `1.5` or `-1` in an integer field is
/// "field out of range" by name rather than a parse error; integers up to
/// 2^53 − 1 are exact in an `f64`.
#[allow(clippy::cast_possible_truncation, reason = "checked: the value is integral and inside the safe range")]
fn integer<T: TryFrom<i64>>(
    value: f64,
    field: &'static str,
    range: core::ops::RangeInclusive<i64>,
) -> Result<T, Rejection> {
    let safe = -(MAX_SAFE_INTEGER as f64)..=(MAX_SAFE_INTEGER as f64);
    if !safe.contains(&value) {
        return Err(Rejection::OutOfRange(field));
    }
    let whole = value as i64;
    if whole as f64 != value || !range.contains(&whole) {
        return Err(Rejection::OutOfRange(field));
    }
    T::try_from(whole).map_err(|_| Rejection::OutOfRange(field))
}

/// A required integer field.
fn required_integer<T: TryFrom<i64>>(
    value: Option<f64>,
    field: &'static str,
    range: core::ops::RangeInclusive<i64>,
) -> Result<T, Rejection> {
    integer(required(value, field)?, field, range)
}

/// An optional integer field.
fn optional_integer<T: TryFrom<i64>>(
    value: Option<f64>,
    field: &'static str,
    range: core::ops::RangeInclusive<i64>,
) -> Result<Option<T>, Rejection> {
    value.map(|value| integer(value, field, range)).transpose()
}

const U32_RANGE: core::ops::RangeInclusive<i64> = 0..=u32::MAX as i64;
const U16_RANGE: core::ops::RangeInclusive<i64> = 0..=u16::MAX as i64;
const UP_RANGE: core::ops::RangeInclusive<i64> = 0..=MAX_SAFE_INTEGER;

fn encode_with<T: serde::Serialize>(wire: &T, buffer: &mut [u8]) -> Result<usize, EncodeError> {
    serde_json_core::to_slice(wire, buffer).map_err(|_| EncodeError)
}

#[cfg(test)]
mod tests;
