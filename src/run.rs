//! `anxin serve`, `anxin gateway` and `anxin console`: composing the gateway,
//! the broker path, upkeep and the HTTP server, and shutting them down in
//! order (stop taking messages → commit and acknowledge what is in flight →
//! close the store).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_gateway::alerts::delivery::{self, MqttTarget, Sink};
use anxin_gateway::alerts::timers::{TimerConfig, run_timers};
use anxin_gateway::broker::auth::BrokerAuth;
use anxin_gateway::broker::embedded::{BrokerLimits, EmbeddedBroker, EmbeddedBrokerError};
use anxin_gateway::broker::external::{self, ExternalBroker};
use anxin_gateway::ingest::progress::run_watchdog;
use anxin_gateway::ingest::{Ingest, IngestConfig};
use anxin_gateway::responders::notify::{AliyunSms, HttpTemplate};
use anxin_gateway::responders::{ChainConfig, Notifier};
use anxin_gateway::status::{UpkeepConfig, run_upkeep};
use anxin_store::{Database, Store, StoreError};
use anyhow::{Context, anyhow};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::output::out;
use crate::settings::{Settings, SmsProvider};

/// Opens the store with errors that say which flag to change.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let database = &settings.database;
    if let Database::Sqlite(_) = database {
        check_writable(&settings.data_dir)?;
    }
    Store::open(database).await.map_err(|error| match error {
        StoreError::DataFolder { .. } => anyhow!("{error}; choose another with --data-dir"),
        StoreError::Open { .. } if matches!(database, Database::Postgres(_)) => anyhow!("{error}; check --database"),
        other => anyhow!(other),
    })
}

fn check_writable(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .and_then(|()| {
            // One probe per process: two commands starting at once (a tail
            // beside a pairing) must not remove each other's.
            let probe = data_dir.join(format!(".anxin-write-check-{}", std::process::id()));
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(probe)
        })
        .map_err(|error| {
            anyhow!("the data folder {} is not writable ({error}); choose another with --data-dir", data_dir.display())
        })
}

/// The process's metrics recorder, installed by the first caller (a test may
/// build several apps in one process; they share it).
fn metrics_recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("install the metrics recorder")?;
    anxin_gateway::metrics::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

async fn bind_http(listen: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow!("cannot listen for HTTP on {listen}: {error}; choose another with {flag}"))
}

fn upkeep_config(settings: &Settings) -> UpkeepConfig {
    let data_folder = match &settings.database {
        Database::Sqlite(path) => {
            Some(path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| ".".into(), Path::to_path_buf))
        }
        Database::Postgres(_) => None,
    };
    UpkeepConfig { retention: settings.retention, data_folder, ..UpkeepConfig::default() }
}

/// Raises this process's open-file limit to what the system allows (a
/// broker holds a file per connection; 1,024 is a common default) and
/// returns it.
pub(crate) fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            metrics::gauge!(anxin_gateway::metrics::OPEN_FILES_LIMIT).set(limit as f64);
            limit
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            rlimit::Resource::NOFILE.get().map_or(1_024, |(soft, _)| soft)
        }
    }
}

/// The embedded broker's limits: connections at most the open-file limit
/// less what the database, the console and the process need.
fn broker_limits(settings: &Settings) -> anyhow::Result<BrokerLimits> {
    let open_files = raise_open_files_limit();
    let room = usize::try_from(open_files.saturating_sub(1_024)).unwrap_or(usize::MAX).max(64);
    let defaults = BrokerLimits::default();
    if let Some(asked) = settings.mqtt_max_connections
        && asked > room
    {
        anyhow::bail!(
            "--mqtt-max-connections {asked} is more than this process can hold open ({room}, with the \
             open-file limit at {open_files}); raise LimitNOFILE or ask for fewer"
        );
    }
    let limits = BrokerLimits {
        max_connections: settings.mqtt_max_connections.unwrap_or(defaults.max_connections.min(room)),
        max_retained: settings.mqtt_max_retained.unwrap_or(defaults.max_retained),
        ..defaults
    };
    tracing::info!(open_files, max_connections = limits.max_connections, "broker limits");
    Ok(limits)
}

fn external_broker(url: &str, settings: &Settings) -> anyhow::Result<ExternalBroker> {
    let mut broker = ExternalBroker::from_url(url, settings.gateway_id.clone())?;
    if let Some(tls) = &mut broker.tls {
        tls.ca_file = settings.broker_ca.clone();
        // Fail at start-up, with the reason, rather than on every reconnect.
        ExternalBroker::tls_config(tls)?;
    }
    broker.username = settings.broker_username.clone();
    broker.password = settings.broker_password.clone();
    broker.share_group = settings.share_group.clone();
    Ok(broker)
}

/// How long waiting messages may go without progress before the watchdog
/// says ingest is stalled.
const STALLED_AFTER: Duration = Duration::from_secs(30);

/// The batch writer, and its watchdog (until `shutdown`).
fn start_ingest(
    store: &Store,
    policy: &Arc<AlertPolicy>,
    shutdown: &watch::Receiver<bool>,
) -> (Ingest, tokio::task::JoinHandle<()>) {
    let (ingest, writer) = Ingest::start(store.clone(), policy.clone(), IngestConfig::default());
    tokio::spawn(run_watchdog(ingest.progress().clone(), STALLED_AFTER, shutdown.clone()));
    (ingest, writer)
}

/// The live feed of alert changes, for the console's stream.
type Feed = tokio::sync::broadcast::Sender<Arc<anxin_store::AlertChange>>;

/// The alert engine's tasks: the database timers, the in-process feed (returned
/// for the console), and the MQTT (and webhook) sinks.
async fn start_alerting(
    store: &Store,
    policy: &Arc<AlertPolicy>,
    mqtt: Option<MqttTarget>,
    settings: &Settings,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, Feed)> {
    let name = mqtt.as_ref().map_or_else(|| settings.gateway_id.clone(), |mqtt| mqtt.client_id.clone());
    let holder = format!("{name}-{}", std::process::id());
    let mut tasks =
        vec![tokio::spawn(run_timers(store.clone(), policy.clone(), TimerConfig::default(), shutdown.clone()))];
    let (feed, feed_task) = delivery::start_feed(store.clone(), shutdown.clone());
    tasks.push(feed_task);
    let mut sinks: Vec<Sink> = mqtt.into_iter().map(Sink::mqtt).collect();
    if let Some((url, secret)) = settings.webhook.clone() {
        sinks.push(Sink::webhook(url, secret).map_err(|error| anyhow!("{error}; check --webhook"))?);
    }
    for sink in sinks {
        // From the first start on, every change reaches the sink.
        store.register_sink(sink.name()).await?;
        tasks.push(tokio::spawn(delivery::run_sink(store.clone(), sink, holder.clone(), shutdown.clone())));
    }
    if let Some(responders) = &settings.responders {
        let notifier: Arc<dyn Notifier> = match &responders.provider {
            SmsProvider::Aliyun(config) => Arc::new(AliyunSms::new(config.clone()).map_err(|e| anyhow!("[sms]: {e}"))?),
            SmsProvider::Http(config) => {
                Arc::new(HttpTemplate::new(config.clone()).map_err(|e| anyhow!("[sms]: {e}"))?)
            }
        };
        let config = ChainConfig {
            notifier,
            public_url: responders.public_url.clone(),
            times: settings.chain_times.clone(),
            utc_offset: settings.policy.utc_offset,
        };
        // From the first start on, every alert opened starts a chain.
        store.register_sink(anxin_gateway::responders::CURSOR).await?;
        tasks.push(tokio::spawn(anxin_gateway::responders::run(
            store.clone(),
            config,
            holder.clone(),
            shutdown.clone(),
        )));
    }
    Ok((tasks, feed))
}

fn mqtt_target_of(broker: &ExternalBroker) -> MqttTarget {
    MqttTarget {
        host: broker.host.clone(),
        port: broker.port,
        tls: broker.tls.as_ref().map(|tls| tls.ca_file.clone()),
        // Its own name for its own connection (see `anxin gateways add`).
        username: broker.username.as_ref().map(|username| format!("{username}-alerts")),
        password: broker.password.clone(),
        client_id: format!("{}-alerts", broker.client_id),
    }
}

/// The embedded broker's plain-MQTT listener: loopback, unless the
/// operator says the network is trusted.
fn plain_mqtt_listen(settings: &Settings) -> anyhow::Result<SocketAddr> {
    let listen = settings.mqtt_listen;
    if !listen.ip().is_loopback() && !settings.allow_plaintext_mqtt {
        anyhow::bail!(
            "refusing plain MQTT on {listen}: device secrets and data would cross the network \
             unencrypted; keep --mqtt-listen on 127.0.0.1 and give devices --mqtt-tls-listen with \
             --mqtt-tls-cert and --mqtt-tls-key, or pass --allow-plaintext-mqtt on a network you trust"
        );
    }
    Ok(listen)
}

/// `/metrics` and `/healthz` of a process without the console (a gateway,
/// an edge).
fn spawn_operations(
    http: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    settings: &Settings,
    store: &Store,
    shutdown: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let metrics = anxin_console::Metrics::new(metrics, settings.metrics_token.clone());
    spawn_http(http, anxin_console::operations_router(metrics, store.storage().clone()), shutdown.clone())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// On the first start (no user yet), creates the `admin` account: with the
/// password in `ANXIN_ADMIN_PASSWORD`, or a one-time password — returned as
/// the line to print once, after the ready line. Either must be changed at
/// the first sign-in.
async fn first_admin(store: &Store, settings: &Settings) -> anyhow::Result<Option<String>> {
    let given = settings.admin_password.clone();
    if let Some(password) = &given
        && password.chars().count() < 12
    {
        anyhow::bail!("ANXIN_ADMIN_PASSWORD needs at least 12 characters");
    }
    Ok(match store.ensure_first_admin(given.as_deref(), anxin_store::now_ms()).await? {
        Some(_) if given.is_some() => Some(
            "anxin: first start: created user admin with the password from ANXIN_ADMIN_PASSWORD; \
             change it at the first sign-in"
                .to_string(),
        ),
        Some(password) => Some(format!(
            "anxin: first start: sign in as admin with the one-time password {password} \
             (shown only now; it must be changed at the first sign-in)"
        )),
        None => None,
    })
}

/// Serves `router` until `shutdown` turns true.
fn spawn_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let graceful = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(error) = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!(%error, "HTTP server stopped");
        }
    })
}

/// The console on `http`, or — with `--http-tls-cert` — on its own HTTPS
/// listener, `http` then only redirecting there; the certificate is read
/// again on SIGHUP. Returns the server's task and the HTTPS address.
async fn spawn_console(
    http: tokio::net::TcpListener,
    router: axum::Router,
    settings: &Settings,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Option<SocketAddr>)> {
    let Some((listen, files)) = &settings.http_tls else {
        return Ok((spawn_http(http, router, shutdown), None));
    };
    let certificates = anxin_console::tls::Certificates::load(files.clone())
        .map_err(|error| anyhow!("{error}; check --http-tls-cert and --http-tls-key"))?;
    let tls = bind_http(*listen, "--http-tls-listen").await?;
    let https = tls.local_addr()?;
    let listener = anxin_console::tls::TlsListener::new(tls, certificates.clone())?;
    let mut stop = shutdown.clone();
    let secure = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop.changed().await;
        };
        if let Err(error) = anxin_console::tls::serve_tls(listener, router, graceful).await {
            tracing::error!(%error, "HTTPS server stopped");
        }
    });
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                Some(()) = hangups.recv() => match certificates.reload() {
                    Ok(()) => tracing::info!("the console's certificate was read again"),
                    Err(error) => tracing::error!(%error, "the console's certificate did not load; the old one stays"),
                },
            }
        }
    });
    let redirect = spawn_http(http, anxin_console::tls::redirect_to_https(https.port()), shutdown);
    let both = tokio::spawn(async move {
        let _ = tokio::join!(secure, redirect);
    });
    Ok((both, Some(https)))
}

pub async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = App::build(settings).await?;
    out!("{}", app.ready_line());
    if let Some(note) = &app.first_start {
        out!("{note}");
    }
    crate::systemd::ready(app.store.clone());
    app.run_until_stopped(async {
        stop_signal().await;
        crate::systemd::stopping();
    })
    .await;
    out!("anxin serve: stopped");
    Ok(())
}

/// `anxin serve` built: broker, ingest, alerting, upkeep and console all
/// running, their addresses bound (port 0 in the settings: a free port,
/// read here).
pub struct App {
    /// Where the embedded broker listens (plain MQTT); `None` on an external broker.
    pub mqtt: Option<SocketAddr>,
    pub http: SocketAddr,
    /// Where the console serves HTTPS itself, if it does (`http` then redirects).
    pub https: Option<SocketAddr>,
    /// The first start's note on the `admin` account, if this was it.
    pub first_start: Option<String>,
    pub store: Store,
    mqtt_description: String,
    database: String,
    shutdown: watch::Sender<bool>,
    broker_path: BrokerPath,
    ingest: Ingest,
    writer: tokio::task::JoinHandle<()>,
    upkeep: tokio::task::JoinHandle<()>,
    http_task: tokio::task::JoinHandle<()>,
    alerting: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("mqtt", &self.mqtt).field("http", &self.http).finish_non_exhaustive()
    }
}

impl App {
    /// Starts everything `anxin serve` runs, printing nothing.
    pub async fn build(settings: &Settings) -> anyhow::Result<App> {
        let metrics = metrics_recorder()?;
        let policy = Arc::new(settings.policy.clone());
        let store = open_store(settings).await?;
        let http = bind_http(settings.http_listen, "--http-listen").await?;
        let http_addr = http.local_addr()?;
        let (shutdown, shutdown_watch) = watch::channel(false);
        let (ingest, writer) = start_ingest(&store, &policy, &shutdown_watch);

        let (mqtt_description, broker_path, alerts_target, mqtt) = match &settings.broker {
            None => {
                let listen = plain_mqtt_listen(settings)?;
                let limits = broker_limits(settings)?;
                let auth = BrokerAuth::new(store.clone(), settings.rates);
                tokio::spawn(auth.clone().run_refresh(shutdown_watch.clone()));
                let broker = EmbeddedBroker { listen, auth: auth.clone(), tls: settings.mqtt_tls.clone(), limits }
                    .start(ingest.clone())
                    .await
                    .map_err(|error| match &error {
                        EmbeddedBrokerError::Bind { listen: at, .. } if *at == listen => {
                            anyhow!("{error}; choose another with --mqtt-listen")
                        }
                        EmbeddedBrokerError::Bind { .. } => anyhow!("{error}; choose another with --mqtt-tls-listen"),
                        EmbeddedBrokerError::Tls { .. } => {
                            anyhow!("{error}; check --mqtt-tls-cert and --mqtt-tls-key")
                        }
                    })?;
                // The broker is this process: connected while it runs.
                metrics::gauge!(anxin_gateway::metrics::BROKER_CONNECTED).set(1.0);
                let mut local = broker.local_addr;
                if local.ip().is_unspecified() {
                    local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                // The alert publisher: one client, with an identity only this process knows.
                let (name, secret) = auth.internal_credentials();
                let target = MqttTarget {
                    host: local.ip().to_string(),
                    port: local.port(),
                    tls: None,
                    username: Some(name.clone()),
                    password: Some(secret),
                    client_id: name,
                };
                let tls = broker.tls_addr.map(|tls| format!(" (TLS on {tls})")).unwrap_or_default();
                let description = format!("MQTT broker on {}{tls}", broker.local_addr);
                (description, BrokerPath::Embedded(broker), target, Some(local))
            }
            Some(url) => {
                let broker = external_broker(url, settings)?;
                let description = format!("MQTT from {url} as {}", broker.client_id);
                let target = mqtt_target_of(&broker);
                let task = tokio::spawn(external::run(broker, ingest.clone(), shutdown_watch.clone()));
                (description, BrokerPath::External(task), target, None)
            }
        };
        let (alerting, feed) = start_alerting(&store, &policy, Some(alerts_target), settings, &shutdown_watch).await?;
        let upkeep = tokio::spawn(run_upkeep(store.clone(), upkeep_config(settings), shutdown_watch.clone()));
        let api = anxin_console::AppState::new(store.clone(), policy.clone(), feed)
            .behind(&settings.trusted_proxies)
            .with_chain_times(settings.chain_times.clone())
            .with_evidence_days(settings.retention.visit_evidence_days);
        let (http_task, https) = spawn_console(
            http,
            anxin_console::router(anxin_console::Metrics::new(metrics, settings.metrics_token.clone()), api),
            settings,
            shutdown_watch.clone(),
        )
        .await?;
        let first_start = first_admin(&store, settings).await?;
        Ok(App {
            mqtt,
            http: http_addr,
            https,
            first_start,
            store,
            mqtt_description,
            database: settings.database.describe(),
            shutdown,
            broker_path,
            ingest,
            writer,
            upkeep,
            http_task,
            alerting,
        })
    }

    /// The one line saying where everything listens.
    pub fn ready_line(&self) -> String {
        let console = match self.https {
            Some(https) => format!("https://{https} (http://{} redirects)", self.http),
            None => format!("http://{}", self.http),
        };
        format!("anxin serve: {}, console on {console}, database {}", self.mqtt_description, self.database)
    }

    /// Runs until `shutdown` completes, then stops in order: no new messages →
    /// commit and acknowledge what is in flight → close the store.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        tracing::info!("stopping: no new messages; committing and acknowledging what is in flight");
        let _ = self.shutdown.send(true);
        match self.broker_path {
            BrokerPath::Embedded(broker) => broker.stop().await,
            BrokerPath::External(task) => {
                let _ = task.await;
            }
        }
        drop(self.ingest);
        let _ = self.writer.await;
        let _ = tokio::join!(self.upkeep, self.http_task);
        for task in self.alerting {
            let _ = task.await;
        }
        self.store.close().await;
    }
}

enum BrokerPath {
    Embedded(anxin_gateway::broker::embedded::RunningBroker),
    External(tokio::task::JoinHandle<()>),
}

pub async fn gateway(settings: &Settings) -> anyhow::Result<()> {
    use anxin_gateway::broker::log::{Log, LogConfig};
    // Where messages come from: an external broker, or (`--cluster-log`) a
    // province's durable log, read with the other store writers as one
    // group and acknowledged after each commit.
    let (broker, log) = if settings.cluster_log.is_empty() {
        let url = settings.broker.clone().context(
            "`anxin gateway` needs --broker mqtt://HOST:PORT (or ANXIN_BROKER), or --cluster-log nats://HOST:PORT,…",
        )?;
        (Some((external_broker(&url, settings)?, url)), None)
    } else {
        let config = LogConfig {
            servers: settings.cluster_log.clone(),
            replicas: settings.cluster_log_replicas,
            ..LogConfig::default()
        };
        (None, Some(Log::open(config).await?))
    };
    let metrics = metrics_recorder()?;
    raise_open_files_limit();
    let policy = Arc::new(settings.policy.clone());
    let store = open_store(settings).await?;
    let database = settings.database.describe();
    let http = bind_http(settings.http_listen, "--http-listen").await?;
    let http_addr = http.local_addr()?;
    let (shutdown, shutdown_watch) = watch::channel(false);
    let (ingest, writer) = start_ingest(&store, &policy, &shutdown_watch);
    // A store writer has no broker to publish alert changes on.
    let alerts_target = broker.as_ref().map(|(broker, _)| mqtt_target_of(broker));
    let (alerting, _feed) = start_alerting(&store, &policy, alerts_target, settings, &shutdown_watch).await?;
    let from = match &broker {
        Some((broker, url)) => format!("MQTT from {url} as {}", broker.client_id),
        None => format!(
            "store writer on the cluster log {} ({} copies)",
            settings.cluster_log.join(","),
            settings.cluster_log_replicas
        ),
    };
    out!("anxin gateway: {from}, metrics on http://{http_addr}/metrics, database {database}");
    let receiver =
        broker.map(|(broker, _)| tokio::spawn(external::run(broker, ingest.clone(), shutdown_watch.clone())));
    let consuming = log.map(|log| log.consume(ingest.clone()));
    let upkeep = tokio::spawn(run_upkeep(store.clone(), upkeep_config(settings), shutdown_watch.clone()));
    let http_task = spawn_operations(http, metrics, settings, &store, &shutdown_watch);

    stop_signal().await;
    tracing::info!("stopping: no new messages; committing and acknowledging what is in flight");
    // What was taken from the log and not yet acknowledged goes to another
    // writer after the ack wait; the store drops a second copy.
    drop(consuming);
    let _ = shutdown.send(true);
    if let Some(receiver) = receiver {
        let _ = receiver.await;
    }
    drop(ingest);
    let _ = writer.await;
    let _ = tokio::join!(upkeep, http_task);
    for task in alerting {
        let _ = task.await;
    }
    store.close().await;
    out!("anxin gateway: stopped");
    Ok(())
}

/// `anxin edge`: the embedded broker as a province's edge — device
/// identities from the database, each message appended to the cluster's
/// durable log and PUBACKed once the log's quorum holds it.
pub async fn edge(settings: &Settings) -> anyhow::Result<()> {
    use anxin_gateway::broker::log::{Log, LogConfig};
    anyhow::ensure!(!settings.cluster_log.is_empty(), "`anxin edge` needs --cluster-log nats://HOST:PORT,…");
    let listen = plain_mqtt_listen(settings)?;
    let metrics = metrics_recorder()?;
    raise_open_files_limit();
    let store = open_store(settings).await?;
    let http = bind_http(settings.http_listen, "--http-listen").await?;
    let http_addr = http.local_addr()?;
    let log = Log::open(LogConfig {
        servers: settings.cluster_log.clone(),
        replicas: settings.cluster_log_replicas,
        ..LogConfig::default()
    })
    .await?;
    let (shutdown, shutdown_watch) = watch::channel(false);
    let auth = BrokerAuth::new(store.clone(), settings.rates);
    tokio::spawn(auth.clone().run_refresh(shutdown_watch.clone()));
    let broker = EmbeddedBroker { listen, auth, tls: settings.mqtt_tls.clone(), limits: broker_limits(settings)? }
        .start_edge(log)
        .await
        .map_err(|error| anyhow!("{error}; check --mqtt-listen, --mqtt-tls-listen and the certificate"))?;
    metrics::gauge!(anxin_gateway::metrics::BROKER_CONNECTED).set(1.0);
    let tls = broker.tls_addr.map(|tls| format!(" (TLS on {tls})")).unwrap_or_default();
    out!(
        "anxin edge: MQTT broker on {}{tls}, appending to the cluster log {}, metrics on http://{http_addr}/metrics",
        broker.local_addr,
        settings.cluster_log.join(",")
    );
    let http_task = spawn_operations(http, metrics, settings, &store, &shutdown_watch);
    stop_signal().await;
    let _ = shutdown.send(true);
    broker.stop().await;
    let _ = http_task.await;
    store.close().await;
    out!("anxin edge: stopped");
    Ok(())
}

pub async fn console(settings: &Settings) -> anyhow::Result<()> {
    let metrics = metrics_recorder()?;
    let store = open_store(settings).await?;
    let http = bind_http(settings.http_listen, "--http-listen").await?;
    let (shutdown, shutdown_watch) = watch::channel(false);
    let first_start = first_admin(&store, settings).await?;
    let plain = http.local_addr()?;
    // Alert changes written by the gateways, read from the database.
    let (feed, feed_task) = delivery::start_feed(store.clone(), shutdown_watch.clone());
    let api = anxin_console::AppState::new(store.clone(), Arc::new(settings.policy.clone()), feed)
        .behind(&settings.trusted_proxies)
        .with_chain_times(settings.chain_times.clone())
        .with_evidence_days(settings.retention.visit_evidence_days);
    let (http_task, https) = spawn_console(
        http,
        anxin_console::router(anxin_console::Metrics::new(metrics, settings.metrics_token.clone()), api),
        settings,
        shutdown_watch,
    )
    .await?;
    match https {
        Some(https) => out!("anxin console: on https://{https} (http://{plain} redirects)"),
        None => out!("anxin console: on http://{plain}"),
    }
    if let Some(note) = first_start {
        out!("{note}");
    }
    stop_signal().await;
    let _ = shutdown.send(true);
    let _ = tokio::join!(http_task, feed_task);
    store.close().await;
    Ok(())
}
