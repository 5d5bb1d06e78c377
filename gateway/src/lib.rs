//! The gateway: everything between the MQTT broker and the database.
//!
//! - [`ingest`]: check → batch → commit → acknowledge, the one core both
//!   broker paths feed.
//! - [`broker`]: the two paths — an external broker (Mosquitto, EMQX) through
//!   rumqttc with manual acks on a shared subscription, or the embedded
//!   broker (mqtt5) whose publish hook waits for the commit.
//! - [`store`]: SQLite or PostgreSQL, one schema, the same queries.
//! - [`status`]: device liveness from missed summaries, and retention.
//! - [`identity`]: who may speak on the broker: device, bridge, consumer and
//!   gateway identities, their `$7$` secrets and what each may do.
//! - [`access`]: roles, the regions they cover, passwords: who may see what.
//! - [`alerts`]: the rules, alerts and their handling, escalation, delivery,
//!   and remote check-ins.
//!
//! Architecture invariants:
//! - No message is acknowledged to its sender before it is committed.
//! - Per-home and per-device state lives in the database, so any gateway
//!   sharing the subscription can take any message.
//! - Ingest never waits on the console or any other consumer of what it stored.

pub mod access;
pub mod alerts;
pub mod broker;
pub mod identity;
pub mod ingest;
pub mod ledger;
pub mod metrics;
pub mod registry;
pub mod status;
pub mod store;
pub mod visits;

pub use anxin_protocol as protocol;
