//! The two ways messages reach ingest, behind one seam.
//!
//! - [`embedded`]: `anxin serve` runs an MQTT broker in-process (mqtt5). Its
//!   publish hook hands each message to ingest and returns only after the
//!   batch holding it committed, so the broker's PUBACK to the node *is*
//!   ack-after-commit, with no loopback hop.
//! - [`external`]: `anxin gateway` subscribes to Mosquitto or EMQX with
//!   rumqttc on an MQTT 5 shared subscription, persistent session, manual
//!   acks released after commit.
//!
//! Both feed [`crate::ingest::Ingest`], so the rules are written once.

pub mod embedded;
pub mod external;

/// The topic filter for every device message.
pub const DEVICE_TOPICS: &str = "anxin/v1/dev/+/+";
/// The shared-subscription group of all gateways.
pub const SHARE_GROUP: &str = "anxin-gateways";
