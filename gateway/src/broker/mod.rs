//! The two ways messages reach ingest, behind one seam.
//!
//! - [`embedded`]: `anxin serve` runs an MQTT broker in-process (mqtt5). Its
//!   publish hook hands each message to ingest and returns only after the
//!   batch holding it committed, so the broker's PUBACK to the node *is*
//!   ack-after-commit, with no loopback hop.
//! - [`external`]: `anxin gateway` subscribes to Mosquitto or EMQX with
//!   rumqttc (persistent session, manual acks released after commit), on a
//!   plain subscription or an MQTT 5 shared one when several gateways share
//!   the load.
//!
//! Both feed [`crate::ingest::Ingest`], so the rules are written once.

pub mod embedded;
pub mod external;

/// The topic filter for every device message.
pub const DEVICE_TOPICS: &str = "anxin/v1/dev/+/+";
/// The usual shared-subscription group name (see `--share-group`).
pub const SHARE_GROUP: &str = "anxin-gateways";
