//! The sensor node's application, `no_std` and allocation-free, over
//! embedded-hal 1.0.
//!
//! - [`drivers`]: PIR, door contact, smoke detector, help button, tamper
//!   switch, TMP102 thermometer, battery gauge — generic over embedded-hal
//!   traits, each owning only its pin or bus.
//! - [`node`]: the application as a pure state machine (observations and
//!   time in, numbered messages out) with its bounded [`outbox`] and
//!   reconnect [`backoff`].
//! - [`board`]: the standard node's sensors sampled together.
//! - [`link`]: the main loop, and the two small traits the MQTT client sits
//!   behind; [`mqtt`] implements them with rust-mqtt (MQTT 5).
//!
//! Invariants:
//! - A hazard event (smoke, help) is never dropped by the node, however long
//!   the link is down (see [`outbox`]).
//! - A message leaves the outbox only when the broker acknowledged it, and
//!   keeps its `(boot, seq)` on every resend.
//! - Nothing here reads a clock or a random number generator: both are
//!   arguments, so every behaviour is testable at any instant.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![allow(async_fn_in_trait, reason = "the node runs on one executor; Send futures are not needed")]

pub mod backoff;
pub mod board;
pub mod drivers;
pub mod link;
pub mod mqtt;
pub mod node;
pub mod outbox;

pub use node::{Node, NodeConfig, Observation, Publish};
