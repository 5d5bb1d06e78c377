//! The command line: subcommands, their flags and `--help` texts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anxin_simulator::Scenario;
use clap::{Args, Parser, Subcommand};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `anxin --version`: the build and the database schema it brings a store to.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| format!("{} (database schema {})", env!("CARGO_PKG_VERSION"), anxin_store::newest_schema()))
}

#[derive(Debug, Parser)]
#[command(
    name = "anxin",
    version = version(),
    about = "Anxin (安心): remote monitoring and visit records for elders in special difficulty",
    long_about = "Anxin watches over elders who live alone: sensor nodes in their homes report activity, \
                  doors, smoke, the help button and temperature over MQTT; Anxin stores every message, \
                  knows which devices are alive, and turns that into alerts for on-call staff (smoke, help, \
                  inactivity that learns the elder's routine, cold and heat, a door open at night, dead \
                  sensors) and into remote check-ins that count towards the monthly visit rate.\n\n\
                  Start with `anxin serve`: embedded MQTT broker, gateway and console in one process, \
                  data in a SQLite file under ./data. Settings come from defaults, then --config FILE \
                  (TOML, the flags' long names with underscores), then ANXIN_* variables, then flags."
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How log lines (on standard error) are written: text for people and journald, json (one
    /// object a line: time, level, target, fields) for a log collector
    #[arg(long, global = true, env = "ANXIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data is; shared by every command that touches it.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Configuration file (TOML): data_dir, database, mqtt_listen, mqtt_tls_listen, mqtt_tls_cert,
    /// mqtt_tls_key, allow_plaintext_mqtt, mqtt_max_connections, mqtt_max_retained, device_rate,
    /// device_burst, http_listen, http_tls_listen, http_tls_cert, http_tls_key, trusted_proxy, broker, broker_username,
    /// broker_password, broker_ca, gateway_id, share_group, cluster_log, cluster_log_replicas, retention_days, webhook, webhook_secret, metrics_token, utc_offset,
    /// escalate_after_s, and the sections [sms], [chain] and [retention] (deploy/anxin.toml shows every one)
    #[arg(long, env = "ANXIN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database [default: ./data]
    #[arg(long, env = "ANXIN_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of SQLite, e.g. postgres://anxin@db.example/anxin
    #[arg(long, env = "ANXIN_DATABASE", global = true, value_name = "URL", hide_env_values = true)]
    pub database: Option<String>,
    /// The homes' local time: nights, days, routines and the programme's months [default: +08:00]
    #[arg(long, env = "ANXIN_UTC_OFFSET", global = true, value_name = "+HH:MM")]
    pub utc_offset: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: embedded MQTT broker (or --broker), gateway and console
    #[command(long_about = "Run everything in one process: the embedded MQTT broker (or --broker), the gateway and \
        the console (web pages and JSON API on --http-listen). On the first start with an empty database it \
        creates the user admin with a one-time password printed once after the ready line, or with \
        ANXIN_ADMIN_PASSWORD; it must be changed at the first sign-in.")]
    Serve(Box<ServeArgs>),
    /// Try Anxin at once: a made-up district, a user of each role, simulated homes and three alerts
    #[command(long_about = "Starts everything `serve` runs on a temporary data folder (deleted at the end) \
        with a made-up district of three townships, a user of each role (admin, oncall, visitor, official) \
        whose one-time passwords are printed, and homes simulated live, paired with elders. Within a minute \
        the board shows a smoke alarm, an elder who has not moved for 13 hours and a dead sensor. It prints \
        the console's address and the sign-ins; Ctrl-C stops it.")]
    Demo(DemoArgs),
    /// Run only the gateway against an external broker; with --share-group several share the load
    #[command(long_about = "Runs the gateway alone against an external MQTT broker (Mosquitto, EMQX) and \
        the database. Several gateways, each with its own --gateway-id and the same --share-group, \
        share one MQTT v5 shared subscription and keep their state in the database, so any of them \
        can take any message. With --cluster-log instead of --broker, it is one of a province's store \
        writers: it reads the NATS JetStream cluster's durable log with the others and acknowledges each \
        message to the log after its commit. Serves /metrics and /healthz on --http-listen.")]
    Gateway(GatewayArgs),
    /// A province's MQTT edge: the embedded broker appending to the cluster's durable log
    #[command(long_about = "Runs the embedded MQTT broker as one of a province's edges: devices connect \
        here (their identities checked against the database, as with serve), and each message is appended \
        to the NATS JetStream cluster's durable log; the device's PUBACK leaves once the log's quorum holds \
        it. Edges keep nothing of their own, so several stand behind one address. Store writers (anxin \
        gateway --cluster-log) take the messages from the log into the database. Serves /metrics and \
        /healthz on --http-listen.")]
    Edge(EdgeArgs),
    /// Run only the console (web pages and API) against the database
    #[command(long_about = "Run only the console (web pages and JSON API) against the database that gateways \
        write. On the first start with an empty database it creates the user admin with a one-time password \
        printed once, or with ANXIN_ADMIN_PASSWORD; it must be changed at the first sign-in.")]
    Console(ConsoleArgs),
    /// Devices: provision them on the broker (a secret each), pair them to elders, revoke, export
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Bridges: a vendor's cloud or LoRaWAN server publishing for the devices assigned to it
    #[command(subcommand)]
    Bridges(BridgesCommand),
    /// Alert consumers: MQTT clients that may only subscribe to anxin/v1/alerts/#
    #[command(subcommand)]
    Consumers(ConsumersCommand),
    /// Gateways: the identity `anxin gateway` uses on an external broker
    #[command(subcommand)]
    Gateways(GatewaysCommand),
    /// The elders watched over
    #[command(subcommand)]
    Elders(EldersCommand),
    /// Stored events and summaries
    #[command(subcommand)]
    Events(EventsCommand),
    /// Alerts: list, acknowledge, resolve with how they were handled, time-to-acknowledge figures
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The ledger (台账): import or export a township's .xlsx or .csv
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Visits, including the remote check-ins the gateway records, and the monthly visit rate
    #[command(subcommand)]
    Visits(VisitsCommand),
    /// Heightened watch over a region (extreme weather, festivals): tighter thresholds
    #[command(subcommand)]
    Watch(WatchCommand),
    /// An elder's call list (呼叫顺序): who the responder chain reaches by SMS, in order
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// The duty roster (值班表): who is on call in a county, when
    #[command(subcommand)]
    Duty(DutyCommand),
    /// People who use the console: admin, oncall, visitor, official
    #[command(subcommand)]
    Users(UsersCommand),
    /// Bearer tokens for the JSON API (/api/v1)
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit log: check its hash chain, prune what is past the retention
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent copy of the SQLite database to FILE while `serve` runs (SQLite's VACUUM INTO),
    /// then check the copy; PostgreSQL: use pg_dump
    #[command(long_about = "Writes a consistent copy of the SQLite database to FILE — safe while `anxin serve` \
        runs and writes: the copy is one snapshot, and every message acknowledged before it began is in it — \
        then checks the copy (integrity, schema, what it holds). FILE must not exist. A PostgreSQL database \
        is backed up with its own tools (pg_dump, or base backups with WAL archiving).\n\n\
        Restore with `anxin restore FILE`.")]
    Backup {
        /// Where the copy goes (must not exist)
        #[arg(required_unless_present = "into", conflicts_with = "into")]
        file: Option<PathBuf>,
        /// Instead of FILE: a new file in this folder named by the time (anxin-<UTC time>.sqlite3),
        /// as the daily timer (deploy/anxin-backup.timer) takes them
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
        /// With --into: then keep only the newest N backups there
        #[arg(long, value_name = "N", requires = "into")]
        keep: Option<usize>,
    },
    /// Put a backup back as the SQLite database, after checking it; stop `anxin serve` first
    #[command(long_about = "Checks FILE (a backup from `anxin backup`, or a copy Anxin took before a migration, \
        under the data folder's backups/): its integrity, that it is an Anxin database, and that this Anxin \
        knows its schema. Then puts it in place of the SQLite database — with --replace when there is one \
        already, which is kept beside it as `*.before-restore-<time>` — brings it to this build's schema, \
        and checks the audit log's chain. Stop `anxin serve` first.")]
    Restore {
        /// The backup to restore
        file: PathBuf,
        /// Replace the database there now (kept beside it, renamed)
        #[arg(long)]
        replace: bool,
    },
    /// Apply the retention policy now, as `anxin serve` does every day, and say what went
    #[command(long_about = "Removes what is past its time under the retention policy (the `[retention]` \
        section of the settings file and `retention_days`), in batches of 1,000 rows, each its own short \
        transaction, so a running `anxin serve` goes on ingesting meanwhile: raw sensor messages (90 days \
        by default), hourly activity (730 days), audit log entries (365 days, at least 180), visits' photos \
        and locations (365 days; the record and its signatures stay), visits and resolved alerts with their \
        handling (5 years; a visit a spot-check or a referral names stays), and elders who left the \
        programme (anonymised 3 years after leaving). 0 keeps a kind for ever. Each kind that lost rows gets \
        an audit entry with the count.")]
    Retention,
    /// Measure Anxin on this machine (figures, not pass/fail)
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Simulate homes with sensor nodes publishing to an MQTT broker (demo driver and load generator)
    #[command(long_about = "Runs N simulated homes, each the sensor-node firmware's own logic with a daily routine \
        (asleep at night, active by day, the door now and then), one MQTT connection per home. \
        Scripted scenarios make one home do something on demand.\n\n\
        Example: anxin simulate --homes 50 --speed 60 --duration 2m --scenario smoke:3@10m --scenario silent:7")]
    Simulate(SimulateArgs),
}

/// How the gateway reaches an external broker.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Username for the external broker
    #[arg(long, env = "ANXIN_BROKER_USERNAME")]
    pub broker_username: Option<String>,
    /// Password for the external broker
    #[arg(long, env = "ANXIN_BROKER_PASSWORD", hide_env_values = true)]
    pub broker_password: Option<String>,
    /// PEM file of the CA that signed an mqtts:// broker's certificate [default: the system's roots]
    #[arg(long, env = "ANXIN_BROKER_CA", value_name = "FILE")]
    pub broker_ca: Option<PathBuf>,
    /// This gateway's fixed MQTT client id; its persistent session survives restarts.
    /// Each gateway sharing a broker needs its own [default: anxin-gateway]
    #[arg(long, env = "ANXIN_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// Join the MQTT v5 shared subscription of this group, so several gateways share the load
    /// (e.g. anxin-gateways). Without it the gateway subscribes plainly, which Mosquitto keeps
    /// across its own restarts; Mosquitto 2.0 does not keep shared subscriptions
    #[arg(long, env = "ANXIN_SHARE_GROUP", value_name = "GROUP")]
    pub share_group: Option<String>,
    /// Days raw messages are kept (hourly rollups stay) [default: 90]
    #[arg(long, env = "ANXIN_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    #[command(flatten)]
    pub alerting: AlertArgs,
}

/// How alerts are judged and sent on.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Also POST every alert change as signed JSON to this URL, with retries: ids, codes, times and
    /// the region, never a name, phone or note (see the README). SMS to an elder's contacts go
    /// through the [sms] provider of the config file instead
    #[arg(long, env = "ANXIN_WEBHOOK", value_name = "URL")]
    pub webhook: Option<String>,
    /// The secret the webhook's receiver shares: every POST carries an HMAC-SHA256 signature of
    /// its timestamp and body (X-Anxin-Signature; see the README); at least 16 characters
    #[arg(long, env = "ANXIN_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Seconds before an unacknowledged critical alert escalates to every on-call worker of the
    /// county, and between reminders after that [default: 60]
    #[arg(long, env = "ANXIN_ESCALATE_AFTER_S", value_name = "SECONDS")]
    pub escalate_after_s: Option<u32>,
    /// The console's address as responders' phones reach it (https://…): the answer links in the
    /// responder chain's SMS open it. Needed with an [sms] provider in the config file
    #[arg(long, env = "ANXIN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    #[command(flatten)]
    pub web: WebArgs,
    /// Use this external broker instead of the embedded one (mqtts:// for TLS)
    #[arg(long, env = "ANXIN_BROKER", value_name = "mqtt[s]://HOST:PORT")]
    pub broker: Option<String>,
    #[command(flatten)]
    pub broker_args: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct EdgeArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    #[command(flatten)]
    pub log: ClusterLogArgs,
    /// Where /metrics and /healthz are served [default: 127.0.0.1:9464]
    #[arg(long, env = "ANXIN_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
}

/// The embedded MQTT broker's listeners and limits (`serve` and `edge`).
#[derive(Debug, Args)]
pub struct MqttArgs {
    /// Where the embedded MQTT broker listens for plain MQTT [default: 127.0.0.1:1883]. Off this
    /// machine only with --allow-plaintext-mqtt: use the TLS listener for devices
    #[arg(long, env = "ANXIN_MQTT_LISTEN", value_name = "ADDR")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Where the embedded broker listens for MQTT over TLS, e.g. 0.0.0.0:8883 [default: 0.0.0.0:8883
    /// when --mqtt-tls-cert is given]
    #[arg(long, env = "ANXIN_MQTT_TLS_LISTEN", value_name = "ADDR")]
    pub mqtt_tls_listen: Option<SocketAddr>,
    /// The TLS listener's certificate chain (PEM)
    #[arg(long, env = "ANXIN_MQTT_TLS_CERT", value_name = "FILE")]
    pub mqtt_tls_cert: Option<PathBuf>,
    /// The TLS listener's private key (PEM)
    #[arg(long, env = "ANXIN_MQTT_TLS_KEY", value_name = "FILE")]
    pub mqtt_tls_key: Option<PathBuf>,
    /// Accept a plain-MQTT --mqtt-listen that is not loopback (secrets and data would cross the
    /// network unencrypted)
    #[arg(long, env = "ANXIN_ALLOW_PLAINTEXT_MQTT")]
    pub allow_plaintext_mqtt: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// A province's durable log (`gateway` as a store writer, and `edge`).
#[derive(Debug, Args)]
pub struct ClusterLogArgs {
    /// A province's durable log: the NATS JetStream cluster's nodes (comma-separated); a gateway
    /// given it instead of --broker is one of the log's store writers
    #[arg(long, env = "ANXIN_CLUSTER_LOG", value_name = "nats://HOST:PORT,…", value_delimiter = ',')]
    pub cluster_log: Vec<String>,
    /// Copies of the log's stream, made by the first process to find it missing [default: 3]
    #[arg(long, env = "ANXIN_CLUSTER_LOG_REPLICAS", value_name = "N")]
    pub cluster_log_replicas: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the console listens
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub http_listen: SocketAddr,
    /// Elders in the made-up district
    #[arg(long, default_value_t = 60)]
    pub elders: usize,
    /// Homes simulated live, each paired with an elder (at least 3)
    #[arg(long, default_value_t = 12)]
    pub homes: usize,
}

/// What the embedded broker lets clients take.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Clients connected at once; past it a new connection is closed at once [default: 20000, at
    /// most the open-file limit less 1024]
    #[arg(long, env = "ANXIN_MQTT_MAX_CONNECTIONS", value_name = "N")]
    pub mqtt_max_connections: Option<usize>,
    /// Retained messages held (one status per device) [default: 100000]
    #[arg(long, env = "ANXIN_MQTT_MAX_RETAINED", value_name = "N")]
    pub mqtt_max_retained: Option<usize>,
    /// A device's publishes a second on average; bridges get as much per device they carry
    /// [default: 2]
    #[arg(long, env = "ANXIN_DEVICE_RATE", value_name = "PER_SECOND")]
    pub device_rate: Option<f64>,
    /// A device's publishes at once before its rate applies, e.g. its outbox after an outage
    /// [default: 256]
    #[arg(long, env = "ANXIN_DEVICE_BURST", value_name = "N")]
    pub device_burst: Option<u32>,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The external MQTT broker (mqtts:// for TLS)
    #[arg(long, env = "ANXIN_BROKER", value_name = "mqtt[s]://HOST:PORT", conflicts_with = "cluster_log")]
    pub broker: Option<String>,
    #[command(flatten)]
    pub log: ClusterLogArgs,
    /// Where /metrics and /healthz are served [default: 127.0.0.1:9464]
    #[arg(long, env = "ANXIN_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub broker_args: BrokerArgs,
}

/// Where and how the console is served (`serve` and `console`).
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Where the console listens [default: 127.0.0.1:8080]
    #[arg(long, env = "ANXIN_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// A reverse proxy in front of the console (repeat, or comma-separated): from these
    /// addresses the client's own address is read from X-Forwarded-For, for sign-in limits and
    /// the audit log; from any other, the header is ignored
    #[arg(long, env = "ANXIN_TRUSTED_PROXY", value_name = "IP", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Where the console serves HTTPS itself, e.g. 0.0.0.0:8443 [default: 0.0.0.0:8443 when
    /// --http-tls-cert is given]; --http-listen then only redirects to it
    #[arg(long, env = "ANXIN_HTTP_TLS_LISTEN", value_name = "ADDR")]
    pub http_tls_listen: Option<SocketAddr>,
    /// The console's certificate chain (PEM); read again on SIGHUP
    #[arg(long, env = "ANXIN_HTTP_TLS_CERT", value_name = "FILE")]
    pub http_tls_cert: Option<PathBuf>,
    /// The console's private key (PEM); read again on SIGHUP
    #[arg(long, env = "ANXIN_HTTP_TLS_KEY", value_name = "FILE")]
    pub http_tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Durable ingest rate as a ratio to a bare subscriber's, with PUBACK latency and memory
    Ingest(anxin_bench::ingest::BenchIngestArgs),
    /// Smoke alarm → alert on the console feed (idle vs loaded), and how late overdue homes fire
    Alerts(anxin_bench::alerts::BenchAlertsArgs),
    /// Page weight and server time of the alert board (500 open alerts) and of an elder page (90 days of history)
    Console(anxin_bench::console::BenchConsoleArgs),
    /// Importing, re-importing and exporting a 5,000-elder ledger, and the visit-rate page over it
    Ledger(anxin_bench::ledger::BenchLedgerArgs),
    /// A burst of smoke alarms through the responder chain: SMS rate against the provider alone,
    /// alarm → first SMS, and ingest meanwhile
    Responders(anxin_bench::responders::BenchRespondersArgs),
    /// A province on loopback (3 nats-server nodes, edges, store writers, PostgreSQL): durable
    /// rate with 1, 2 and 4 writers, smoke alarm → console feed, recovery after kill -9 of a log
    /// node, an edge and a writer
    Cluster(anxin_bench::cluster::BenchClusterArgs),
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List devices with their state, battery and signal
    List {
        /// Only devices heard from but not yet paired to an elder
        #[arg(long)]
        unclaimed: bool,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Bind a device to an elder's home
    Pair {
        device_id: String,
        /// The elder's id (see `anxin elders list`)
        #[arg(long)]
        elder: i64,
    },
    /// Create devices on the broker, each with a new random secret, shown once
    #[command(
        long_about = "Creates each device on the broker with a new 128-bit random secret, shown once: printed, or with \
            --out written to FILE as JSON {\"device_id\": \"secret\", …} (what a factory puts on the label \
            or QR code). The device connects with username = client id = its id and that secret, and may \
            publish only on anxin/v1/dev/{its id}/…. A revoked device can be provisioned again (a new \
            secret)."
    )]
    Provision {
        /// Device ids (a-z, 0-9, '-', '_', '.')
        #[arg(required = true, value_name = "ID")]
        device_ids: Vec<String>,
        /// Write the secrets to this new file (JSON, readable by you only) instead of printing them
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Take a vendor's list of devices and their secrets (.csv with device_id,secret, or provision's JSON)
    Import {
        /// A .csv (device_id,secret per line, header optional) or .json ({"device_id": "secret", …})
        file: PathBuf,
    },
    /// Revoke a device: it can no longer connect, and a connected one's next publish is refused
    Revoke { device_id: String },
    /// Write the broker identities for an external Mosquitto (password file, ACL, settings)
    #[command(
        long_about = "Writes DIR/passwd (mosquitto_passwd format: the same $7$ hashes), DIR/acl (each device publishes \
            only on its own topics, bridges for their devices, consumers read alerts, gateways read devices \
            and publish alerts) and DIR/anxin-auth.conf (password_file, acl_file, allow_anonymous false) to \
            include from mosquitto.conf, whose listeners set use_username_as_clientid true (see \
            deploy/mosquitto.conf). Export again after every change and send Mosquitto SIGHUP to reload."
    )]
    Export {
        /// Folder to write Mosquitto's files into
        #[arg(long, value_name = "DIR")]
        mosquitto: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BridgesCommand {
    /// Create a bridge allowed to publish for these devices, with a new secret shown once
    Add {
        /// The bridge's name, also its username and client id
        name: String,
        /// The devices it publishes for
        #[arg(long, required = true, num_args = 1.., value_name = "ID")]
        devices: Vec<String>,
        /// Publishes a second it may make on average [default: 2 per device]
        #[arg(long, value_name = "PER_SECOND")]
        rate: Option<u32>,
        /// Write the secret to this new file (JSON) instead of printing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List bridges and their devices
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke a bridge
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ConsumersCommand {
    /// Create an alert consumer (subscribes to anxin/v1/alerts/# only), with a new secret shown once
    Add {
        /// The consumer's name, also its username and client id
        name: String,
        /// Write the secret to this new file (JSON) instead of printing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List alert consumers
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke an alert consumer
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GatewaysCommand {
    /// Create a gateway identity for an external broker, with a new secret shown once
    #[command(
        long_about = "Creates the identity `anxin gateway --broker-username NAME --broker-password SECRET` uses on an \
            external broker: it reads device topics and publishes alerts. It connects as NAME, NAME-events \
            and NAME-alerts (one name per connection, since Anxin's Mosquitto settings make the client id \
            the username); `anxin devices export --mosquitto` writes all three."
    )]
    Add {
        /// The gateway's name (use it as --gateway-id too)
        name: String,
        /// Write the secret to this new file (JSON) instead of printing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List gateway identities
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke a gateway identity
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum EldersCommand {
    /// Register an elder
    Add(Box<ElderAddArgs>),
    /// List elders
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Mark an elder away (hospital, staying with family): alerts other than smoke and help pause
    /// until the date, and the return is expected (inactivity counts from then)
    Away {
        elder_id: i64,
        /// Last day away (local date, YYYY-MM-DD): the absence ends at the end of that day
        #[arg(long, value_name = "DATE")]
        until: String,
        /// Why (住院, 随子女居住, …)
        #[arg(long)]
        reason: String,
        /// Who records it
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// End an elder's absence now (back early)
    Back { elder_id: i64 },
    /// Name the visitor responsible for an elder (探访责任人)
    Assign {
        elder_id: i64,
        /// The visitor's user name (see `anxin users list`)
        #[arg(long)]
        visitor: String,
        /// Who records it
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Elders with no visitor responsible for them
    Unassigned,
    /// Left-behind (留守) elders whose children left six months ago or more: due a re-check
    Recheck,
    /// Record that an elder left the programme: their devices are released, alerts for the home stop,
    /// and from the month after the exit they no longer count in the visit rate
    #[command(
        long_about = "Records that an elder left the programme (退出) with a reason and the last day in it.         In the same transaction the home's devices are unpaired, the home is no longer watched and its open         alerts are resolved as `elder_left`. Nothing of the elder's history is removed, and `anxin elders         reenter` brings them back.\n\n\
        The visit rate counts an elder in a month when they were enrolled on any day of it; an elder who left         during the month counts only when visited on or before the exit date."
    )]
    Leave {
        elder_id: i64,
        /// died (死亡), moved (迁出), institution (入住养老机构), ineligible (不再符合条件) or declined (本人拒绝)
        #[arg(long)]
        reason: String,
        /// The last day in the programme (local date, YYYY-MM-DD; default: today)
        #[arg(long, value_name = "DATE")]
        on: Option<String>,
        /// Who records it
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Bring back an elder who left: a new period in the programme begins (pair the devices again)
    Reenter {
        elder_id: i64,
        /// The first day back (local date, YYYY-MM-DD; default: today)
        #[arg(long, value_name = "DATE")]
        on: Option<String>,
        /// Who records it
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// The exits of a month: who left, why, and who recorded it
    Exits {
        /// The month, YYYY-MM (default: this month)
        #[arg(long)]
        month: Option<String>,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain from its latest checkpoint; exits 1 and names the first
    /// broken entry if one was changed, added or removed
    Verify,
    /// Remove entries older than DAYS (180 at least), keeping a checkpoint the chain goes on from
    Prune {
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(180..))]
        older_than_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a bearer token acting as USER (with USER's role and regions); printed once. USER
    /// must have set their own password
    Issue {
        user: String,
        /// Days until it expires
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=730))]
        days: u32,
    },
    /// List tokens (never the tokens themselves): id, user, issued, last used, expiry, revoked
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by the id `tokens list` shows; it stops working at once
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; prints a one-time password they must change at first sign-in
    Add {
        name: String,
        /// admin, oncall (on-call staff), visitor (探访人员) or official
        #[arg(long)]
        role: String,
        /// A region the user covers, COUNTY[/TOWNSHIP[/VILLAGE]]; repeatable; required for oncall and official
        #[arg(long = "region", value_name = "REGION")]
        regions: Vec<String>,
        /// For a visitor, their kind: civil_affairs_office (民政办), service_station (民政服务站),
        /// village_committee (村(居)委会), grid_worker (网格员), volunteer (志愿者), relative (亲属),
        /// neighbour (邻里), social_worker (社会工作者) or other (其他)
        #[arg(long)]
        kind: Option<String>,
    },
    /// Add many users from a CSV file (name,role,regions,kind); their one-time passwords go to --out
    #[command(long_about = "Adds the users of a CSV file (UTF-8, a header row `name,role,regions,kind`; \
        regions separated by `;`, each COUNTY[/TOWNSHIP[/VILLAGE]]; kind for visitors only, may be empty). \
        Every row is checked first: if any is wrong (a role, a region missing for oncall or official, a \
        kind, a name twice or already taken), each problem is said with its line and nobody is added. \
        Then each user is added with a one-time password, written to --out (a new file, readable by its \
        owner only, `name,one_time_password`), never to the terminal; each must change it at first \
        sign-in. Hand the passwords over and delete the file.")]
    Import {
        /// The CSV file (name,role,regions,kind); - reads standard input
        file: PathBuf,
        /// Where the one-time passwords go (must not exist; created readable by its owner only);
        /// - writes them to standard output
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Set a visitor's kind (民政办, 网格员, 志愿者, …): the rate page counts visits by kind
    SetKind {
        name: String,
        /// civil_affairs_office, service_station, village_committee, grid_worker, volunteer, relative,
        /// neighbour, social_worker or other (or the plan's word)
        kind: String,
    },
    /// List users with their roles and regions
    List {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their sessions end, their tokens and open alert streams stop within seconds
    Disable { name: String },
    /// Enable a disabled user again
    Enable { name: String },
    /// Give a user a new one-time password (printed once; they must change it at sign-in); their
    /// sessions end
    ResetPassword { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts, open ones first, most urgent first
    List {
        /// Only alerts not yet resolved
        #[arg(long)]
        open: bool,
        /// Only this elder's
        #[arg(long)]
        elder: Option<i64>,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// One alert with its whole history: every change, the responder chain's every attempt and answer
    Show {
        id: i64,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge: you have it in hand (stops escalation)
    Ack {
        id: i64,
        /// Your name
        #[arg(long)]
        by: String,
    },
    /// Resolve with how it was handled (处置情况)
    Resolve {
        id: i64,
        /// Your name
        #[arg(long)]
        by: String,
        /// visited, reached_by_phone, family_reached, emergency_services, false_alarm, device_fault or other
        #[arg(long)]
        outcome: String,
        /// What was done (required with `other`)
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Share of alerts acknowledged within 60 s and 180 s, per region and period
    Stats {
        #[arg(long)]
        county: Option<String>,
        #[arg(long)]
        township: Option<String>,
        #[arg(long)]
        village: Option<String>,
        /// Only critical, warning or notice alerts
        #[arg(long)]
        severity: Option<String>,
        /// First day (local date, YYYY-MM-DD) [default: 30 days ago]
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day (local date, YYYY-MM-DD) [default: today]
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VisitsCommand {
    /// An elder's visits, newest first; with --days, every closed day and why it did or did not count
    /// as a remote check-in
    #[command(long_about = "An elder's visits, newest first, remote check-ins (远程监测探访) included.\n\n\
        The gateway closes each home's local day shortly after midnight and records it as a `remote` visit \
        when (1) the elder was active: motion or a door in at least two different hours; (2) the sensors \
        were online: they reported in at least 20 of the 24 hours and none was offline at the day's end; \
        (3) no critical alert (smoke, help, lasting inactivity) was open at any moment of the day; and \
        (4) the elder was not marked away at any moment of the day. With --days, every closed day is \
        listed with the condition it failed.")]
    List {
        #[arg(long)]
        elder: i64,
        /// Show the closed days behind the remote check-ins instead
        #[arg(long)]
        days: bool,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The monthly visit rate (月探访率): elders in the programme that month, those visited at least
    /// once (any mode), by township, and who is not yet visited
    #[command(long_about = "The monthly visit rate (月探访率): the elders in the programme that month, those \
        visited at least once (any mode, the remote check-in included), the rate by township, and who is not yet \
        visited.\n\n\
        An elder counts in a month when enrolled on any day of it. An elder who left during the month \
        (`anxin elders leave`) counts only when visited on or before the exit date; those who left before a visit \
        are listed apart. The rate is rounded down, so 100% means everyone.")]
    Rate {
        /// The month, YYYY-MM (default: this month)
        #[arg(long)]
        month: Option<String>,
        /// COUNTY, COUNTY/TOWNSHIP or COUNTY/TOWNSHIP/VILLAGE (default: everywhere)
        #[arg(long)]
        region: Option<String>,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Close a month for a county (关账): its visit rate is frozen as it stands; visits recorded later
    /// for it are marked late (补录) and count only if the month is reopened
    Close {
        /// The month, YYYY-MM (it must be over)
        #[arg(long)]
        month: String,
        /// The county (县(市、区))
        #[arg(long)]
        county: String,
        /// Who closes it (written to the audit log)
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Reopen a closed month: its figures are computed afresh, late visits included
    Reopen {
        #[arg(long)]
        month: String,
        #[arg(long)]
        county: String,
        /// Who reopens it (written to the audit log)
        #[arg(long, default_value = "admin")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Import a ledger file: all of it, or nothing with every bad row listed
    #[command(long_about = "Imports a ledger (台账) file, .xlsx (its first worksheet) or .csv (UTF-8 or GBK): \
        one row per elder under the record form's headers (县(市、区), 乡镇(街道), 村(居), 家庭住址, 被探访人姓名, \
        公民身份号码, 联系电话, 紧急联系人, 是否独居, …, 户主姓名, …, 饮水是否安全, …, 帮扶单位(组织), 探访责任人) or \
        their English keys (county, township, …). Rows are matched by 编号 (Anxin's number, on exported files), \
        then by citizen ID; new elders are registered, changed ones updated, the same ones left alone. If any \
        row is wrong nothing is written, every problem is listed by line and column, and the exit status is 2.")]
    Import {
        /// The .xlsx or .csv file
        file: PathBuf,
        /// Who imports it (written to the audit log)
        #[arg(long, default_value = "admin")]
        by: String,
        /// Show what the import would change, row by row, and save nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a made-up sample ledger to try the import with (valid check digits, nobody's IDs)
    Sample {
        /// The file to write; its extension (.xlsx or .csv) sets the format
        file: PathBuf,
        /// How many elders, spread over three townships
        #[arg(long, default_value_t = 100)]
        elders: usize,
    },
    /// Export the whole ledger to a .xlsx or .csv file (whole ID numbers: keep it safe)
    Export {
        /// The file to write; its extension (.xlsx or .csv) sets the format
        file: PathBuf,
        /// Who exports it (written to the audit log)
        #[arg(long, default_value = "admin")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Put a county, township or village on heightened watch until a date: inactivity and
    /// temperature thresholds tighten for every home in it
    Start {
        #[arg(long)]
        county: String,
        #[arg(long)]
        township: Option<String>,
        #[arg(long)]
        village: Option<String>,
        /// Last day (local date, YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        until: String,
        /// Why (寒潮, 暴雪, 春节, …)
        #[arg(long)]
        reason: String,
        /// Who starts it
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Heightened watches in force or planned
    List,
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// An elder's call list, in order
    List {
        elder: i64,
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Add a contact at the end of an elder's call list, with how they agreed to be called
    #[command(long_about = "Adds a contact at the end of an elder's call list. When an alert opens, the \
        responder chain sends them an SMS with a link to answer (我去处理 / 已到达 / 无法前往): smoke, help and \
        an emergency found on a visit reach the first three at once with on-call; inactivity reaches the family \
        first, then the village (neighbours, committee, grid worker, visitor), then on-call. Their hours are \
        never applied to smoke and help. Nobody is called without recorded consent.\n\n\
        Example: anxin contacts add 1 --name 王丽 --relation family --phone 13904150001 --consent 电话确认")]
    Add {
        elder: i64,
        #[arg(long)]
        name: String,
        /// family, neighbour, village_committee, grid_worker, visitor or oncall (or 家属, 邻居, 村委会, …)
        #[arg(long)]
        relation: String,
        #[arg(long)]
        phone: String,
        /// From when they can be reached, HH:MM (with --to)
        #[arg(long, value_name = "HH:MM")]
        from: Option<String>,
        /// Until when, HH:MM; before --from spans midnight
        #[arg(long, value_name = "HH:MM")]
        to: Option<String>,
        /// Only these alert kinds, comma-separated (smoke, help, inactivity, cold, …) [default: each kind's default]
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// How they agreed to be called (书面同意, 电话确认, …)
        #[arg(long)]
        consent: String,
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Remove a contact from an elder's call list
    Remove {
        elder: i64,
        contact: i64,
        #[arg(long, default_value = "admin")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DutyCommand {
    /// Shifts from half a day ago to a week ahead
    List {
        #[arg(long)]
        county: Option<String>,
    },
    /// Put someone on call in a county from one time to another (local, YYYY-MM-DDTHH:MM)
    Add {
        #[arg(long)]
        county: String,
        #[arg(long)]
        person: String,
        #[arg(long)]
        phone: String,
        #[arg(long, value_name = "YYYY-MM-DDTHH:MM")]
        from: String,
        #[arg(long, value_name = "YYYY-MM-DDTHH:MM")]
        to: String,
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Take a shift off the roster
    Cancel {
        id: i64,
        #[arg(long, default_value = "admin")]
        by: String,
    },
}

#[derive(Debug, Args)]
pub struct ElderAddArgs {
    /// Name (被探访人姓名)
    #[arg(long)]
    pub name: String,
    /// County, city or district (县(市、区))
    #[arg(long)]
    pub county: String,
    /// Township or street (乡镇(街道))
    #[arg(long)]
    pub township: String,
    /// Village or residents' committee (村(居))
    #[arg(long)]
    pub village: String,
    /// Home address (家庭住址)
    #[arg(long)]
    pub address: String,
    /// Phone (联系电话)
    #[arg(long)]
    pub phone: Option<String>,
    /// Emergency contact's name (紧急联系人)
    #[arg(long)]
    pub emergency_contact: Option<String>,
    /// Emergency contact's phone
    #[arg(long)]
    pub emergency_phone: Option<String>,
    /// Categories (annex 2), comma-separated, at least one: living_alone, empty_nest, left_behind,
    /// dependent, severely_disabled, bereaved_family. Dependent and severely disabled elders get a
    /// stricter inactivity threshold (8 h instead of 12 h)
    #[arg(long)]
    pub categories: Option<String>,
    /// For left_behind (留守): the date the children left (YYYY-MM-DD); the half-year re-check counts
    /// from it
    #[arg(long, value_name = "DATE")]
    pub left_behind_since: Option<String>,
    /// Hours without activity before an inactivity alert, for this elder only (1-72)
    #[arg(long, value_name = "HOURS")]
    pub inactivity_hours: Option<i64>,
    /// Citizen ID number (公民身份号码): 18 characters with a valid check digit; the elder must
    /// be 60 or older
    #[arg(long, value_name = "ID")]
    pub citizen_id: Option<String>,
    /// Disability certificate number (残疾人证号, second generation): the citizen ID, then the
    /// category digit (1-7) and the grade digit (1-4); grade 1 or 2 makes the elder severely_disabled
    #[arg(long, value_name = "NUMBER")]
    pub disability_cert: Option<String>,
    /// The elder does not live at the registered address (不在户籍地居住)
    #[arg(long)]
    pub not_at_registered_address: bool,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print stored events and summaries as they arrive (Ctrl-C to stop)
    Tail {
        /// Only this device
        #[arg(long)]
        device: Option<String>,
        /// How many recent messages to show first
        #[arg(long, default_value_t = 10)]
        last: i64,
    },
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// MQTT broker to publish to (mqtts:// for TLS)
    #[arg(long, env = "ANXIN_BROKER", default_value = "mqtt://127.0.0.1:1883", value_name = "mqtt[s]://HOST:PORT")]
    pub broker: String,
    /// PEM file of the CA that signed an mqtts:// broker's certificate [default: the system's roots]
    #[arg(long, env = "ANXIN_BROKER_CA", value_name = "FILE")]
    pub broker_ca: Option<PathBuf>,
    /// Number of homes
    #[arg(long, default_value_t = 10)]
    pub homes: usize,
    /// How long to run, in real time (e.g. 90s, 10m, 1h)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After --duration, how long each home may go on delivering what it still holds, observing nothing new
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Simulated seconds per real second (60: an hour passes in a minute)
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Summary (heartbeat) interval of each node, in simulated time
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub summary_interval: Duration,
    /// Simulated hour of day at which the run starts (0-23)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..24))]
    pub start_hour: u32,
    /// A scripted scenario, KIND:HOME[@TIME], repeatable. KIND is smoke, help, silent (no activity),
    /// door-night (door left open at night), cold (room at 8 °C) or offline (the node dies);
    /// TIME is simulated time since the start, e.g. smoke:3@10m
    #[arg(long = "scenario", value_name = "KIND:HOME[@TIME]")]
    pub scenarios: Vec<Scenario>,
    /// Device ids are PREFIX-00001, PREFIX-00002, …
    #[arg(long, default_value = "sim")]
    pub id_prefix: String,
    /// Seed for the homes' routines: the same seed gives the same homes
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Allow a broker that is not on this machine (refused by default)
    #[arg(long)]
    pub allow_remote: bool,
    /// The simulated devices' secrets (provision's JSON, {"device_id": "secret", …}). Without it the
    /// simulator provisions its own devices, with new secrets, in --data-dir / --database
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    anxin_simulator::scenario::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration; use a number and s, m or h, e.g. 90s, 10m, 2h"))
}
