//! Anxin's time: UTC epoch milliseconds (`i64`) everywhere; the deployment's
//! day is local (`AlertPolicy::utc_offset`, +08:00 by default).

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
