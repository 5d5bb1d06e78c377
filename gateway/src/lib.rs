//! The gateway: everything between the MQTT broker and the database.
//!
//! It will own ingest (validate → dedup on `(device, boot, seq)` → batch
//! commit → acknowledge), device status (Last Will, heartbeats), the monitors
//! (hazard, inactivity, offline), alerts and their lifecycle, remote check-in
//! visits, and the store on SQLite and PostgreSQL. It is filled in by the
//! gateway and alert-engine issues; today it only re-exports the wire
//! contract it decodes.
//!
//! Architecture invariant: ingest never waits on the console, a webhook or any
//! other consumer of alerts.

pub use anxin_protocol as protocol;
