//! One `Settings` for the binary, merged once, before any command runs:
//! defaults < a TOML file (`--config`) < `ANXIN_*` variables < flags. Clap
//! reads each flag's variable; [`Layer::from_cli`] turns what it parsed into a
//! layer, [`Layer::over`] puts it over the file's, and [`Settings::resolve`]
//! fills in the defaults and checks every value. Commands read only
//! `Settings`; nothing else reads the environment.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::responders::ChainTimes;
use anxin_gateway::broker::auth::RateLimits;
use anxin_gateway::broker::embedded::BrokerTls;
use anxin_gateway::responders::notify::{AliyunConfig, BodyFormat, HttpTemplateConfig};
use anxin_store::Database;
use anyhow::{Context, anyhow};
use serde::Deserialize;

use crate::cli::{AlertArgs, BrokerArgs, Cli, ClusterLogArgs, Command, LimitArgs, MqttArgs, WebArgs};

/// One layer of settings, every key optional: the file's, or the flags' (with
/// their `ANXIN_*` variables).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
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
    pub trusted_proxy: Option<Vec<std::net::IpAddr>>,
    pub http_tls_listen: Option<SocketAddr>,
    pub http_tls_cert: Option<PathBuf>,
    pub http_tls_key: Option<PathBuf>,
    pub broker: Option<String>,
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    pub broker_ca: Option<PathBuf>,
    pub gateway_id: Option<String>,
    pub share_group: Option<String>,
    /// A province's durable log (NATS JetStream nodes) instead of a broker.
    pub cluster_log: Option<Vec<String>>,
    pub cluster_log_replicas: Option<usize>,
    pub retention_days: Option<u32>,
    pub webhook: Option<String>,
    pub webhook_secret: Option<String>,
    /// Where answer links in messages point (https): the console as the
    /// responders' phones reach it.
    pub public_url: Option<String>,
    /// The SMS provider (`[sms]` in the file).
    pub sms: Option<SmsLayer>,
    /// The provider's secret (Aliyun's AccessKey secret, or a generic
    /// provider's token): `ANXIN_SMS_SECRET` or the file.
    pub sms_secret: Option<String>,
    /// The chain's times (`[chain]` in the file).
    pub chain: Option<ChainLayer>,
    /// How long each kind of record is kept (`[retention]` in the file).
    pub retention: Option<RetentionLayer>,
    pub utc_offset: Option<String>,
    pub escalate_after_s: Option<u32>,
    /// The bearer token `/metrics` asks of a scraper off this machine:
    /// `ANXIN_METRICS_TOKEN` or the file (never a flag, which `ps` shows).
    pub metrics_token: Option<String>,
    /// The first administrator's password: `ANXIN_ADMIN_PASSWORD` only (a
    /// flag would show it in `ps`, a file would keep it on disk).
    #[serde(skip)]
    pub admin_password: Option<String>,
}

/// `[sms]`: the provider that carries the responder chain's messages.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsLayer {
    /// `aliyun` (Alibaba Cloud SMS) or `http` (any gateway, from a request template).
    pub provider: String,
    // Aliyun
    pub access_key_id: Option<String>,
    pub sign_name: Option<String>,
    pub template_code: Option<String>,
    pub late_template_code: Option<String>,
    pub region_id: Option<String>,
    pub endpoint: Option<String>,
    // A generic HTTP provider
    pub url: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Option<String>,
    /// `json` (the default) or `form`: how placeholders in the body are escaped.
    pub format: Option<String>,
}

/// `[chain]`: how long the responder chain waits.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainLayer {
    /// Minutes for someone to accept, per alert kind (`smoke = 3`), and `default`.
    #[serde(default)]
    pub accept_within_min: std::collections::BTreeMap<String, u32>,
    /// Minutes for the one who accepted to arrive before on-call is told.
    pub arrive_within_min: Option<u32>,
}

/// `[retention]`: how long each kind of record is kept (0: for ever). Raw
/// messages' days are `retention_days` (`--retention-days`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionLayer {
    pub hourly_activity_days: Option<u32>,
    pub audit_days: Option<u32>,
    pub visit_evidence_days: Option<u32>,
    pub records_years: Option<u32>,
    pub left_elders_years: Option<u32>,
}

/// `upper.over(lower)`: each key from `upper` where it has one.
macro_rules! layered {
    ($($key:ident),* $(,)?) => {
        impl Layer {
            /// Every setting's name (the file's keys; `admin_password` is a variable only).
            pub const KEYS: &[&str] = &[$(stringify!($key)),*];

            pub fn over(self, lower: Layer) -> Layer {
                Layer { $($key: self.$key.or(lower.$key)),* }
            }
        }
    };
}
layered!(
    data_dir,
    database,
    mqtt_listen,
    mqtt_tls_listen,
    mqtt_tls_cert,
    mqtt_tls_key,
    allow_plaintext_mqtt,
    mqtt_max_connections,
    mqtt_max_retained,
    device_rate,
    device_burst,
    http_listen,
    trusted_proxy,
    http_tls_listen,
    http_tls_cert,
    http_tls_key,
    broker,
    broker_username,
    broker_password,
    broker_ca,
    gateway_id,
    share_group,
    cluster_log,
    cluster_log_replicas,
    retention_days,
    webhook,
    webhook_secret,
    public_url,
    sms,
    sms_secret,
    chain,
    retention,
    utc_offset,
    escalate_after_s,
    metrics_token,
    admin_password,
);

impl Layer {
    /// The configuration file's layer (an empty one without `--config`).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Layer> {
        let Some(path) = path else { return Ok(Layer::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
    }

    /// What the command line (and, through clap, its `ANXIN_*` variables) says.
    pub fn from_cli(cli: &Cli) -> Layer {
        let global = Layer {
            data_dir: cli.storage.data_dir.clone(),
            database: cli.storage.database.clone(),
            utc_offset: cli.storage.utc_offset.clone(),
            admin_password: std::env::var("ANXIN_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()),
            metrics_token: std::env::var("ANXIN_METRICS_TOKEN").ok().filter(|t| !t.is_empty()),
            sms_secret: std::env::var("ANXIN_SMS_SECRET").ok().filter(|t| !t.is_empty()),
            ..Layer::default()
        };
        let command = match &cli.command {
            Command::Serve(args) => Layer { broker: args.broker.clone(), ..Layer::of_web(&args.web) }
                .over(Layer::of_mqtt(&args.mqtt))
                .over(Layer::of_broker(&args.broker_args)),
            Command::Gateway(args) => Layer {
                http_listen: args.http_listen,
                broker: args.broker.clone(),
                ..Layer::of_broker(&args.broker_args)
            }
            .over(Layer::of_log(&args.log)),
            Command::Edge(args) => {
                Layer { http_listen: args.http_listen, ..Layer::of_mqtt(&args.mqtt) }.over(Layer::of_log(&args.log))
            }
            Command::Console(args) => Layer::of_web(&args.web),
            _ => Layer::default(),
        };
        command.over(global)
    }

    fn of_web(args: &WebArgs) -> Layer {
        Layer {
            http_listen: args.http_listen,
            trusted_proxy: Some(args.trusted_proxy.clone()).filter(|proxies| !proxies.is_empty()),
            http_tls_listen: args.http_tls_listen,
            http_tls_cert: args.http_tls_cert.clone(),
            http_tls_key: args.http_tls_key.clone(),
            ..Layer::default()
        }
    }

    fn of_mqtt(args: &MqttArgs) -> Layer {
        Layer {
            mqtt_listen: args.mqtt_listen,
            mqtt_tls_listen: args.mqtt_tls_listen,
            mqtt_tls_cert: args.mqtt_tls_cert.clone(),
            mqtt_tls_key: args.mqtt_tls_key.clone(),
            allow_plaintext_mqtt: args.allow_plaintext_mqtt.then_some(true),
            ..Layer::of_limits(&args.limits)
        }
    }

    fn of_log(args: &ClusterLogArgs) -> Layer {
        Layer {
            cluster_log: Some(args.cluster_log.clone()).filter(|servers| !servers.is_empty()),
            cluster_log_replicas: args.cluster_log_replicas,
            ..Layer::default()
        }
    }

    fn of_limits(args: &LimitArgs) -> Layer {
        Layer {
            mqtt_max_connections: args.mqtt_max_connections,
            mqtt_max_retained: args.mqtt_max_retained,
            device_rate: args.device_rate,
            device_burst: args.device_burst,
            ..Layer::default()
        }
    }

    fn of_broker(args: &BrokerArgs) -> Layer {
        let AlertArgs { webhook, webhook_secret, escalate_after_s, public_url } = &args.alerting;
        Layer {
            broker_username: args.broker_username.clone(),
            broker_password: args.broker_password.clone(),
            broker_ca: args.broker_ca.clone(),
            gateway_id: args.gateway_id.clone(),
            share_group: args.share_group.clone(),
            retention_days: args.retention_days,
            webhook: webhook.clone(),
            webhook_secret: webhook_secret.clone(),
            escalate_after_s: *escalate_after_s,
            public_url: public_url.clone(),
            ..Layer::default()
        }
    }
}

/// Where the console (or a gateway's /metrics) listens unless told.
/// The shortest webhook secret taken.
pub const MIN_WEBHOOK_SECRET: usize = 16;

/// Where the console serves HTTPS when given a certificate.
pub const DEFAULT_HTTP_TLS_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443);

pub const DEFAULT_HTTP_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
pub const DEFAULT_GATEWAY_HTTP_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);
pub const DEFAULT_MQTT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);
pub const DEFAULT_MQTT_TLS_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8883);
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_GATEWAY_ID: &str = "anxin-gateway";
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// The responder chain's provider, and where its links point.
#[derive(Debug, Clone)]
pub struct Responders {
    pub public_url: String,
    pub provider: SmsProvider,
}

#[derive(Debug, Clone)]
pub enum SmsProvider {
    Aliyun(AliyunConfig),
    Http(HttpTemplateConfig),
}

/// Every setting, with its default filled in and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: Database,
    /// Where HTTP is served: the console, or a gateway's /metrics.
    pub http_listen: SocketAddr,
    /// Reverse proxies whose X-Forwarded-For the console believes.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where the console serves HTTPS itself, and with what certificate.
    pub http_tls: Option<(SocketAddr, anxin_console::tls::TlsFiles)>,
    /// The embedded broker's plain MQTT listener.
    pub mqtt_listen: SocketAddr,
    /// Its TLS listener, when a certificate and key are given.
    pub mqtt_tls: Option<BrokerTls>,
    pub allow_plaintext_mqtt: bool,
    /// `None`: as many as the open-file limit allows (found at start).
    pub mqtt_max_connections: Option<usize>,
    pub mqtt_max_retained: Option<usize>,
    pub rates: RateLimits,
    /// An external broker instead of the embedded one.
    pub broker: Option<String>,
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    pub broker_ca: Option<PathBuf>,
    /// The gateway's client id: `--gateway-id`, else its username, else `anxin-gateway`.
    pub gateway_id: String,
    pub share_group: Option<String>,
    /// A province's durable log: its nodes (`nats://HOST:PORT`); empty: none.
    pub cluster_log: Vec<String>,
    /// Copies of the log's stream (3 in a cluster).
    pub cluster_log_replicas: usize,
    pub retention: anxin_store::RetentionPolicy,
    /// The webhook's URL and the secret its requests are signed with.
    pub webhook: Option<(String, String)>,
    /// The responder chain's provider and links; `None`: no provider, no chain.
    pub responders: Option<Responders>,
    /// How long the chain waits (also the console's, for answers).
    pub chain_times: ChainTimes,
    pub policy: AlertPolicy,
    pub admin_password: Option<String>,
    /// Without one, `/metrics` answers only on this machine.
    pub metrics_token: Option<String>,
}

impl Settings {
    /// Settings for `cli`, merged once: its flags over `file`, over the defaults.
    pub fn of(cli: &Cli, file: Layer) -> anyhow::Result<Settings> {
        let http_default = match cli.command {
            Command::Gateway(_) | Command::Edge(_) => DEFAULT_GATEWAY_HTTP_LISTEN,
            _ => DEFAULT_HTTP_LISTEN,
        };
        Settings::resolve(Layer::from_cli(cli).over(file), http_default)
    }

    /// Fills in the defaults and checks each value, naming the flag to change.
    pub fn resolve(layer: Layer, http_default: SocketAddr) -> anyhow::Result<Settings> {
        let data_dir = layer.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let database = match &layer.database {
            Some(url) => Database::parse(url),
            None => Database::in_data_dir(&data_dir),
        };
        let mqtt_tls = match (layer.mqtt_tls_cert, layer.mqtt_tls_key) {
            (Some(cert), Some(key)) => {
                Some(BrokerTls { listen: layer.mqtt_tls_listen.unwrap_or(DEFAULT_MQTT_TLS_LISTEN), cert, key })
            }
            (None, None) if layer.mqtt_tls_listen.is_none() => None,
            _ => anyhow::bail!("MQTT over TLS needs both --mqtt-tls-cert and --mqtt-tls-key"),
        };
        let mut rates = RateLimits::default();
        if let Some(rate) = layer.device_rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--device-rate must be a positive number of publishes a second"
            );
            rates.device.per_second = rate;
            rates.bridge_per_device.per_second = rate;
        }
        if let Some(burst) = layer.device_burst {
            anyhow::ensure!(burst > 0, "--device-burst must be at least 1");
            rates.device.burst = f64::from(burst);
            rates.bridge_per_device.burst = f64::from(burst);
        }
        let mut policy = AlertPolicy::default();
        if let Some(offset) = &layer.utc_offset {
            policy.utc_offset = parse_utc_offset(offset).context("--utc-offset")?;
        }
        if let Some(seconds) = layer.escalate_after_s {
            anyhow::ensure!(seconds > 0, "--escalate-after-s must be at least 1 second");
            policy.escalate_after_ms = i64::from(seconds) * 1_000;
            policy.remind_every_ms = i64::from(seconds) * 1_000;
        }
        if let Some(servers) = &layer.cluster_log {
            anyhow::ensure!(layer.broker.is_none(), "--cluster-log and --broker: a gateway reads one or the other");
            for server in servers {
                anyhow::ensure!(
                    server.starts_with("nats://") || server.starts_with("tls://"),
                    "--cluster-log: {server:?} is not a NATS node (nats://HOST:PORT, or tls://HOST:PORT)"
                );
            }
        }
        if let Some(replicas) = layer.cluster_log_replicas {
            anyhow::ensure!(
                [1, 3, 5].contains(&replicas),
                "--cluster-log-replicas must be 1, 3 or 5 (a quorum of an odd number of nodes), not {replicas}"
            );
        }
        if layer.broker_ca.is_some()
            && let Some(url) = layer.broker.as_deref().filter(|url| !url.starts_with("mqtts://"))
        {
            anyhow::bail!("--broker-ca is for an mqtts:// broker; {url} is plain MQTT");
        }
        // The gateway's name on the broker: its username when it has one
        // (Anxin's Mosquitto settings make the client id the username).
        let gateway_id =
            layer.gateway_id.or_else(|| layer.broker_username.clone()).unwrap_or_else(|| DEFAULT_GATEWAY_ID.into());
        let defaults = anxin_store::RetentionPolicy::default();
        let kept = layer.retention.clone().unwrap_or_default();
        let retention = anxin_store::RetentionPolicy {
            raw_messages_days: layer.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            hourly_activity_days: kept.hourly_activity_days.unwrap_or(defaults.hourly_activity_days),
            audit_days: kept.audit_days.unwrap_or(defaults.audit_days),
            visit_evidence_days: kept.visit_evidence_days.unwrap_or(defaults.visit_evidence_days),
            records_years: kept.records_years.unwrap_or(defaults.records_years),
            left_elders_years: kept.left_elders_years.unwrap_or(defaults.left_elders_years),
        };
        retention.check().map_err(|why| anyhow!("[retention] audit_days: {why}"))?;
        if let Some(token) = &layer.metrics_token {
            anyhow::ensure!(
                token.chars().count() >= 16,
                "ANXIN_METRICS_TOKEN (metrics_token) must be at least 16 characters"
            );
        }
        let http_tls = match (layer.http_tls_cert, layer.http_tls_key) {
            (Some(cert), Some(key)) => Some((
                layer.http_tls_listen.unwrap_or(DEFAULT_HTTP_TLS_LISTEN),
                anxin_console::tls::TlsFiles { cert, key },
            )),
            (None, None) if layer.http_tls_listen.is_some() => {
                anyhow::bail!("--http-tls-listen needs --http-tls-cert and --http-tls-key")
            }
            (None, None) => None,
            _ => anyhow::bail!("the console's HTTPS needs both --http-tls-cert and --http-tls-key"),
        };
        let webhook = match (layer.webhook, layer.webhook_secret) {
            (None, _) => None,
            (Some(_), None) => anyhow::bail!(
                "--webhook needs --webhook-secret (or ANXIN_WEBHOOK_SECRET): the receiver checks each request's signature with it"
            ),
            (Some(_), Some(secret)) if secret.chars().count() < MIN_WEBHOOK_SECRET => {
                anyhow::bail!("--webhook-secret must be at least {MIN_WEBHOOK_SECRET} characters")
            }
            (Some(url), Some(secret)) => Some((url, secret)),
        };
        let responders = responders(layer.sms, layer.sms_secret, layer.public_url)?;
        let chain_times = chain_times(layer.chain.unwrap_or_default())?;
        Ok(Settings {
            data_dir,
            database,
            http_listen: layer.http_listen.unwrap_or(http_default),
            trusted_proxies: layer.trusted_proxy.unwrap_or_default(),
            http_tls,
            mqtt_listen: layer.mqtt_listen.unwrap_or(DEFAULT_MQTT_LISTEN),
            mqtt_tls,
            allow_plaintext_mqtt: layer.allow_plaintext_mqtt.unwrap_or(false),
            mqtt_max_connections: layer.mqtt_max_connections,
            mqtt_max_retained: layer.mqtt_max_retained,
            rates,
            broker: layer.broker,
            cluster_log: layer.cluster_log.unwrap_or_default(),
            cluster_log_replicas: layer.cluster_log_replicas.unwrap_or(3),
            broker_username: layer.broker_username,
            broker_password: layer.broker_password,
            broker_ca: layer.broker_ca,
            gateway_id,
            share_group: layer.share_group,
            retention,
            webhook,
            responders,
            chain_times,
            policy,
            admin_password: layer.admin_password,
            metrics_token: layer.metrics_token,
        })
    }

    /// Settings for a test or the demo: the defaults, on `data_dir`, with
    /// both listeners on port 0 (the bound ports are the `App`'s).
    pub fn for_data_dir(data_dir: &Path) -> Settings {
        let any_port = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
        let layer = Layer {
            data_dir: Some(data_dir.to_path_buf()),
            mqtt_listen: Some(any_port),
            http_listen: Some(any_port),
            ..Layer::default()
        };
        // The defaults and a data folder always resolve.
        Settings::resolve(layer, any_port).unwrap_or_else(|error| unreachable!("{error}"))
    }
}

/// Whether `url` may carry answer links: https, or http to this machine
/// (trying it out).
fn check_public_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let host = |rest: &str| rest.split(['/', '?', '#']).next().unwrap_or("").to_string();
    let ok = match url.split_once("://") {
        Some(("https", rest)) => !host(rest).is_empty(),
        Some(("http", rest)) => {
            let host = host(rest);
            let name = host.rsplit_once(':').map_or(host.as_str(), |(name, _)| name);
            matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        }
        _ => false,
    };
    anyhow::ensure!(
        ok,
        "--public-url {url:?} must be an https:// address (the links in SMS messages open it; \
         plain http only to this machine, for trying it out)"
    );
    Ok(url.to_string())
}

fn responders(
    sms: Option<SmsLayer>,
    secret: Option<String>,
    public_url: Option<String>,
) -> anyhow::Result<Option<Responders>> {
    let public_url = public_url.map(|url| check_public_url(&url)).transpose()?;
    let Some(sms) = sms else { return Ok(None) };
    let public_url = public_url.ok_or_else(|| {
        anyhow!("[sms] needs --public-url (public_url): the https address the messages' answer links open")
    })?;
    let need = |value: Option<String>, key: &str| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| anyhow!("[sms] provider {:?} needs {key}", sms.provider))
    };
    let provider = match sms.provider.as_str() {
        "aliyun" => SmsProvider::Aliyun(AliyunConfig {
            endpoint: sms.endpoint.clone(),
            access_key_id: need(sms.access_key_id.clone(), "access_key_id")?,
            access_key_secret: need(secret, "its AccessKey secret in ANXIN_SMS_SECRET (or sms_secret)")?,
            sign_name: need(sms.sign_name.clone(), "sign_name")?,
            template_code: need(sms.template_code.clone(), "template_code")?,
            late_template_code: sms.late_template_code.clone(),
            region_id: sms.region_id.clone(),
        }),
        "http" => SmsProvider::Http(HttpTemplateConfig {
            url: need(sms.url.clone(), "url")?,
            method: sms.method.clone(),
            headers: sms.headers.clone(),
            body: sms.body.clone(),
            format: match sms.format.as_deref() {
                None | Some("json") => BodyFormat::Json,
                Some("form") => BodyFormat::Form,
                Some(other) => anyhow::bail!("[sms] format {other:?} is not json or form"),
            },
            secret,
        }),
        other => anyhow::bail!("[sms] provider {other:?} is not aliyun or http"),
    };
    Ok(Some(Responders { public_url, provider }))
}

fn chain_times(layer: ChainLayer) -> anyhow::Result<ChainTimes> {
    use anxin_domain::alerts::AlertKind;
    use anxin_domain::time::MINUTE_MS;
    let mut times = ChainTimes::default();
    for (kind, minutes) in layer.accept_within_min {
        anyhow::ensure!(minutes > 0, "[chain] accept_within_min.{kind} must be at least 1 minute");
        let ms = i64::from(minutes) * MINUTE_MS;
        match kind.as_str() {
            "default" => times.default_accept_ms = ms,
            code => {
                let kind = AlertKind::parse(code)
                    .ok_or_else(|| anyhow!("[chain] accept_within_min: {code:?} is not an alert kind"))?;
                times.accept_ms.insert(kind, ms);
            }
        }
    }
    if let Some(minutes) = layer.arrive_within_min {
        anyhow::ensure!(minutes > 0, "[chain] arrive_within_min must be at least 1 minute");
        times.arrive_ms = i64::from(minutes) * MINUTE_MS;
    }
    Ok(times)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], file: &str) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("anxin").chain(args.iter().copied()))?;
        Settings::of(&cli, toml::from_str(file)?)
    }

    #[test]
    fn the_file_is_over_the_defaults_and_flags_are_over_the_file() {
        let file =
            "utc_offset = \"+05:00\"\nescalate_after_s = 90\nhttp_listen = \"127.0.0.1:18080\"\nretention_days = 7";
        let from_file = settings(&["serve"], file).unwrap();
        assert_eq!(from_file.policy.utc_offset.local_minus_utc(), 5 * 3_600);
        assert_eq!((from_file.policy.escalate_after_ms, from_file.policy.remind_every_ms), (90_000, 90_000));
        assert_eq!(from_file.http_listen, "127.0.0.1:18080".parse().unwrap());
        assert_eq!(from_file.retention.raw_messages_days, 7);
        assert_eq!(from_file.mqtt_listen, DEFAULT_MQTT_LISTEN);

        let flags = settings(&["serve", "--utc-offset", "+08:00", "--escalate-after-s", "30"], file).unwrap();
        assert_eq!((flags.policy.utc_offset.local_minus_utc(), flags.policy.escalate_after_ms), (8 * 3_600, 30_000));
        // A global flag after the command, and one an admin command takes.
        let admin = settings(&["elders", "list", "--utc-offset", "+03:00"], file).unwrap();
        assert_eq!(admin.policy.utc_offset.local_minus_utc(), 3 * 3_600);
        // Each command's own default.
        assert_eq!(settings(&["gateway"], "").unwrap().http_listen, DEFAULT_GATEWAY_HTTP_LISTEN);
        assert_eq!(settings(&["console"], "").unwrap().http_listen, DEFAULT_HTTP_LISTEN);
        assert_eq!(settings(&["gateway", "--broker-username", "gw-1"], "").unwrap().gateway_id, "gw-1");
    }

    #[test]
    fn nonsense_is_refused_with_the_flag_to_change() {
        for (args, file, said) in [
            (&["serve", "--escalate-after-s", "0"][..], "", "--escalate-after-s"),
            (&["serve", "--device-rate=-1"][..], "", "--device-rate"),
            (&["serve", "--mqtt-tls-cert", "cert.pem"][..], "", "--mqtt-tls-key"),
            (&["serve"][..], "utc_offset = \"UTC+8\"", "--utc-offset"),
            (&["gateway", "--broker", "mqtt://h:1883", "--broker-ca", "ca.pem"][..], "", "--broker-ca"),
            (&["gateway", "--cluster-log", "mqtt://h:1883"][..], "", "is not a NATS node"),
            (&["gateway", "--cluster-log", "nats://h:4222", "--cluster-log-replicas", "2"][..], "", "1, 3 or 5"),
            (&["gateway", "--broker", "mqtt://h:1883"][..], "cluster_log = [\"nats://h:4222\"]", "one or the other"),
            (&["serve", "--webhook", "https://sms.example/hook"][..], "", "--webhook-secret"),
            (&["serve", "--http-tls-cert", "console.pem"][..], "", "--http-tls-key"),
            (&["console", "--http-tls-listen", "0.0.0.0:8443"][..], "", "--http-tls-cert"),
            (&["serve", "--webhook-secret", "short"][..], "webhook = \"https://sms.example/hook\"", "16 characters"),
            (&["serve", "--public-url", "http://anxin.example"][..], "", "https://"),
            (&["serve"][..], "[sms]\nprovider = \"http\"\nurl = \"https://sms.example\"", "--public-url"),
            (&["serve", "--public-url", "https://a.example"][..], "[sms]\nprovider = \"aliyun\"", "access_key_id"),
            (
                &["serve", "--public-url", "https://a.example"][..],
                "[sms]\nprovider = \"carrier-pigeon\"",
                "aliyun or http",
            ),
            (&["serve"][..], "[chain]\naccept_within_min = { smoky = 3 }", "not an alert kind"),
        ] {
            let error = format!("{:#}", settings(args, file).unwrap_err());
            assert!(error.contains(said), "{args:?}: {error}");
        }
        assert!(toml::from_str::<Layer>("mqtt_lisen = \"127.0.0.1:1\"").is_err(), "a misspelt key is refused");
        assert!(toml::from_str::<Layer>("admin_password = \"in a file\"").is_err(), "never from a file");
    }

    #[test]
    fn a_provider_and_the_chain_s_times_come_from_the_file_with_the_secret_apart() {
        let file = "public_url = \"https://anxin.example.gov.cn/\"\nsms_secret = \"an access key secret\"\n\
                    [sms]\nprovider = \"aliyun\"\naccess_key_id = \"LTAI\"\nsign_name = \"安心\"\n\
                    template_code = \"SMS_1\"\n[chain]\naccept_within_min = { smoke = 2, default = 20 }\n\
                    arrive_within_min = 25";
        let settings = settings(&["serve"], file).unwrap();
        let responders = settings.responders.unwrap();
        assert_eq!(responders.public_url, "https://anxin.example.gov.cn");
        assert!(
            matches!(responders.provider, SmsProvider::Aliyun(ref c) if c.access_key_secret == "an access key secret")
        );
        use anxin_domain::alerts::AlertKind;
        let times = settings.chain_times;
        assert_eq!((times.accept_ms(AlertKind::Smoke), times.accept_ms(AlertKind::Cold)), (120_000, 1_200_000));
        assert_eq!((times.accept_ms(AlertKind::Help), times.arrive_ms), (180_000, 1_500_000));
        assert!(check_public_url("http://127.0.0.1:8080").is_ok(), "plain http to this machine, for trying it");
        assert!(settings_without_sms().responders.is_none());
    }

    fn settings_without_sms() -> Settings {
        settings(&["serve", "--public-url", "https://a.example"], "").unwrap()
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
