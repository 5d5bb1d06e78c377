//! The gateway: everything between the MQTT broker and the database.
//! What the messages mean — the alert rules, access, the registry, visits —
//! is pure and lives in `anxin_domain`; this crate runs it.
//!
//! - [`ingest`]: check → batch → commit → acknowledge, the one core both
//!   broker paths feed.
//! - [`broker`]: the two paths — an external broker (Mosquitto, EMQX) through
//!   rumqttc with manual acks on a shared subscription, or the embedded
//!   broker (mqtt5) whose publish hook waits for the commit.
//! - the store (`anxin_store`, a crate of its own): SQLite or PostgreSQL.
//! - [`status`]: device liveness from missed summaries, and retention.
//! - [`alerts`]: the alert timers (escalation, overdue homes) and delivery.
//! - [`responders`]: the responder chain: SMS to an elder's contacts and
//!   on-call through a provider, from an outbox, moving by itself.
//!
//! Architecture invariants:
//! - No message is acknowledged to its sender before it is committed.
//! - Per-home and per-device state lives in the database, so any gateway
//!   sharing the subscription can take any message.
//! - Ingest never waits on the console or any other consumer of what it stored.

pub mod alerts;
pub mod broker;
pub mod ingest;
pub mod metrics;
pub mod responders;
pub mod status;

pub use anxin_protocol as protocol;
