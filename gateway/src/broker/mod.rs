//! The ways messages reach ingest, behind one seam.
//!
//! - [`embedded`]: `anxin serve` runs an MQTT broker in-process (mqtt5). Its
//!   publish hook hands each message to ingest and defers the PUBACK to the
//!   commit of the batch holding it, while the connection goes on reading:
//!   the broker's PUBACK to the node *is* ack-after-commit, pipelined, with
//!   no loopback hop.
//! - [`external`]: `anxin gateway` subscribes to Mosquitto or EMQX with
//!   rumqttc (persistent sessions, manual acks released in order after
//!   commit), on a plain subscription or an MQTT 5 shared one when several
//!   gateways share the load; device events have a session of their own, so
//!   a hazard never queues behind a backlog.
//!
//! - [`log`]: a province's store writers read a NATS JetStream cluster that
//!   the edges append to (issue 20, in progress), acknowledging each message
//!   to the log after its commit.
//!
//! All feed [`crate::ingest::Ingest`], so the rules are written once.
//! [`auth`] decides who may connect, publish and subscribe on the embedded
//! broker; an external one gets the same rules from `anxin devices export`.

pub mod auth;
pub mod embedded;
pub mod external;
pub mod log;

/// The topic filter for every device message.
pub const DEVICE_TOPICS: &str = "anxin/v1/dev/+/+";
/// The topic filter for device events (smoke, help, doors, tamper).
pub const DEVICE_EVENTS: &str = "anxin/v1/dev/+/event";
/// The usual shared-subscription group name (see `--share-group`).
pub const SHARE_GROUP: &str = "anxin-gateways";
