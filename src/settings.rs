//! One `Settings` for the binary: defaults, then a TOML file (`--config`),
//! then `ANXIN_*` environment variables, then flags (clap applies those two).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anxin_gateway::store::Database;
use anyhow::Context;
use serde::Deserialize;

/// What a configuration file may set; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub mqtt_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub broker: Option<String>,
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    pub broker_ca: Option<PathBuf>,
    pub gateway_id: Option<String>,
    pub share_group: Option<String>,
    pub retention_days: Option<u32>,
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
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_GATEWAY_HTTP_LISTEN: &str = "127.0.0.1:9464";
pub const DEFAULT_GATEWAY_ID: &str = "anxin-gateway";
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
