//! One `Settings` for the binary: defaults, then a TOML file (`--config`),
//! then `ANXIN_*` environment variables, then flags (clap applies those two).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_store::Database;
use anyhow::{Context, anyhow};

use crate::cli::AlertArgs;
use serde::Deserialize;

/// What a configuration file may set; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub mqtt_listen: Option<SocketAddr>,
    pub mqtt_tls_listen: Option<SocketAddr>,
    pub mqtt_tls_cert: Option<PathBuf>,
    pub mqtt_tls_key: Option<PathBuf>,
    pub allow_plaintext_mqtt: Option<bool>,
    pub mqtt_max_connections: Option<usize>,
    pub mqtt_max_retained: Option<usize>,
    pub device_rate: Option<f64>,
    pub device_burst: Option<u32>,
    pub http_listen: Option<SocketAddr>,
    pub broker: Option<String>,
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    pub broker_ca: Option<PathBuf>,
    pub gateway_id: Option<String>,
    pub share_group: Option<String>,
    pub retention_days: Option<u32>,
    pub webhook: Option<String>,
    pub utc_offset: Option<String>,
    pub escalate_after_s: Option<u32>,
}

impl FileSettings {
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileSettings> {
        let Some(path) = path else { return Ok(FileSettings::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
    }
}

/// Where the data lives: `--database` if given, else SQLite in `--data-dir`.
pub fn database(data_dir: &Path, database: Option<&str>) -> Database {
    match database {
        Some(url) => Database::parse(url),
        None => Database::in_data_dir(data_dir),
    }
}

pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_MQTT_LISTEN: &str = "127.0.0.1:1883";
pub const DEFAULT_MQTT_TLS_LISTEN: &str = "0.0.0.0:8883";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_GATEWAY_HTTP_LISTEN: &str = "127.0.0.1:9464";
pub const DEFAULT_GATEWAY_ID: &str = "anxin-gateway";
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// `+08:00`, `-05:30`, `+8`.
pub fn parse_utc_offset(text: &str) -> anyhow::Result<chrono::FixedOffset> {
    let bad = || anyhow!("{text:?} is not a UTC offset; use +HH:MM, e.g. +08:00 for China");
    let (sign, rest) = match text.trim().split_at_checked(1).ok_or_else(bad)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return Err(bad()),
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let hours: i32 = hours.parse().map_err(|_| bad())?;
    let minutes: i32 = minutes.parse().map_err(|_| bad())?;
    if !(0..=14).contains(&hours) || !(0..60).contains(&minutes) {
        return Err(bad());
    }
    chrono::FixedOffset::east_opt(sign * (hours * 3_600 + minutes * 60)).ok_or_else(bad)
}

/// The alert thresholds: defaults, then the file, then `ANXIN_*` and flags
/// (`args`, when the command has them; otherwise the variables are read here).
pub fn alert_policy(args: Option<&AlertArgs>, file: &FileSettings) -> anyhow::Result<AlertPolicy> {
    let mut policy = AlertPolicy::default();
    let env_offset = std::env::var("ANXIN_UTC_OFFSET").ok();
    let offset = args.and_then(|a| a.utc_offset.clone()).or(env_offset).or(file.utc_offset.clone());
    if let Some(offset) = offset {
        policy.utc_offset = parse_utc_offset(&offset).context("--utc-offset")?;
    }
    let env_escalate = std::env::var("ANXIN_ESCALATE_AFTER_S").ok().and_then(|s| s.parse().ok());
    if let Some(seconds) = args.and_then(|a| a.escalate_after_s).or(env_escalate).or(file.escalate_after_s) {
        if seconds == 0 {
            anyhow::bail!("--escalate-after-s must be at least 1 second");
        }
        policy.escalate_after_ms = i64::from(seconds) * 1_000;
        policy.remind_every_ms = i64::from(seconds) * 1_000;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_settings_come_from_the_file_unless_flags_say_otherwise() {
        let file: FileSettings = toml::from_str("utc_offset = \"+05:00\"\nescalate_after_s = 90").unwrap();
        let policy = alert_policy(None, &file).unwrap();
        assert_eq!(policy.utc_offset.local_minus_utc(), 5 * 3_600);
        assert_eq!((policy.escalate_after_ms, policy.remind_every_ms), (90_000, 90_000));
        let flags = AlertArgs { webhook: None, utc_offset: Some("+08:00".into()), escalate_after_s: Some(30) };
        let policy = alert_policy(Some(&flags), &file).unwrap();
        assert_eq!((policy.utc_offset.local_minus_utc(), policy.escalate_after_ms), (8 * 3_600, 30_000));
        let zero = AlertArgs { escalate_after_s: Some(0), ..flags };
        assert!(alert_policy(Some(&zero), &file).is_err());
    }

    #[test]
    fn utc_offsets_parse_and_nonsense_is_refused() {
        assert_eq!(parse_utc_offset("+08:00").unwrap().local_minus_utc(), 8 * 3_600);
        assert_eq!(parse_utc_offset("+8").unwrap().local_minus_utc(), 8 * 3_600);
        assert_eq!(parse_utc_offset("-05:30").unwrap().local_minus_utc(), -(5 * 3_600 + 30 * 60));
        for bad in ["", "8", "+25:00", "+08:61", "UTC+8", "+aa"] {
            assert!(parse_utc_offset(bad).is_err(), "{bad:?}");
        }
    }
}
