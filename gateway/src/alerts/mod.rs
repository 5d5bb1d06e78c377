//! The alert engine's moving parts; its rules, policy and kinds are pure and
//! live in [`anxin_domain::alerts`].
//!
//! - [`timers`]: homes whose deadline passed and due reminders, on any gateway.
//! - [`delivery`]: every alert change to MQTT and an optional webhook, from
//!   the database, with retries; and the in-process feed for the console.

pub mod delivery;
pub mod timers;
