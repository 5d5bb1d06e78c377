//! The wire contract between Anxin's sensor nodes and its gateway.
//!
//! Everything a node and the gateway must agree on lives here and nowhere
//! else: the MQTT topic layout (`anxin/v1/dev/{device_id}/{channel}`), the
//! three payloads (`event`, `summary`, `status`), their limits, and how they
//! are encoded and decoded. DESIGN.md's "Wire contract" section is the
//! human-readable copy; its examples are this crate's golden tests.
//!
//! Invariants this crate keeps:
//! - `no_std` and allocation-free: the same code runs on a sensor node and in
//!   the gateway (with the `std` feature, which only adds trait impls).
//! - Decoding never panics and never allocates: every bad input becomes a
//!   typed [`Rejection`] or [`TopicError`] with a reason the gateway can count.
//! - A [`DeviceId`] that exists is safe to put in a topic: it cannot contain
//!   MQTT wildcards, separators or control characters.
//! - The home is never in the contract: the gateway maps a device to its home
//!   from its registry, so a device cannot speak for another home.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

mod device_id;
mod payload;
mod topic;

pub use device_id::{DeviceId, DeviceIdError};
pub use payload::MAX_SUMMARY_INTERVAL_S;
pub use payload::{
    DoorState, EncodeError, Event, EventKind, Firmware, Payload, Rejection, SmokeState, Status, StatusState, Summary,
    TamperState, decode,
};
pub use topic::{Channel, TOPIC_MAX_LEN, TOPIC_PREFIX, Topic, TopicError};

/// The schema version every payload carries in its `v` field.
pub const SCHEMA_VERSION: u8 = 1;

/// The largest payload the contract allows, in bytes. Larger ones are rejected
/// unread, so a misbehaving device cannot make the gateway parse megabytes.
pub const MAX_PAYLOAD_LEN: usize = 512;
