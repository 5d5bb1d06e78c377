//! Issue 20: a province's store writers as processes — `anxin gateway
//! --cluster-log` on PostgreSQL, reading a real three-node NATS JetStream
//! cluster that the test appends to as an edge would.

use std::time::Duration;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::registry::NewElder;
use anxin_gateway::broker::log::{Log, LogConfig};
use anxin_store::{AlertFilter, Database, Store, now_ms};
use anxin_testkit::{NatsCluster, PostgresDatabase};

use crate::serve::Process;
use crate::{anxin, text};

fn writer(database: &str, cluster: &NatsCluster) -> Process {
    let servers = cluster.urls().join(",");
    let process =
        Process::start(&["--database", database, "gateway", "--cluster-log", &servers, "--http-listen", "127.0.0.1:0"]);
    assert!(process.ready.contains("store writer on the cluster log"), "{}", process.ready);
    process
}

/// Appends as an edge does, sending again what the log did not take.
async fn append(log: &Log, topic: &str, payload: &[u8]) {
    for _attempt in 0..50 {
        if log.append(topic, payload, now_ms()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the log never took {topic}: {}", String::from_utf8_lossy(payload));
}

/// An elder living alone (振兴区/站前街道/锦山社区) with `device` paired.
async fn home(store: &Store, name: &str, address: &str, device: &str) -> i64 {
    let elder = NewElder {
        name: name.into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: address.into(),
        categories: "living_alone".into(),
        ..NewElder::default()
    };
    let elder = store.add_elder(&elder, now_ms()).await.unwrap().id;
    store.pair_device(device, elder, now_ms()).await.unwrap();
    elder
}

/// Waits (up to 90 s) until every message the simulated devices had
/// PUBACKed is in the database.
async fn every_acknowledged_message_stored(store: &Store, report: &anxin_simulator::Report) {
    let acked: std::collections::BTreeSet<(String, i64, i64)> =
        report.acked.iter().map(|a| (a.device_id.clone(), i64::from(a.boot), i64::from(a.seq))).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let stored: std::collections::BTreeSet<(String, i64, i64)> =
            store.message_keys().await.unwrap().into_iter().collect();
        let missing = acked.difference(&stored).count();
        if missing == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} acknowledged messages not stored",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 30 s) until the database holds at least `count` messages.
async fn until_stored(store: &Store, count: i64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.message_count().await.unwrap() < count {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn one_smoke_alert(store: &Store, elder: i64) {
    let alerts = store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap();
    assert_eq!(alerts.iter().filter(|a| a.kind.as_str() == "smoke").count(), 1, "one smoke alert: {alerts:?}");
}

/// `scripts/cluster ARGS…` with the binary the tests built.
fn scripts_cluster(args: &[&str]) -> std::process::Output {
    std::process::Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster"))
        .args(args)
        .env("ANXIN", env!("CARGO_BIN_EXE_anxin"))
        .env("ANXIN_LOG", "warn")
        .output()
        .unwrap()
}

/// How many times an inactivity alert was opened, by elder.
async fn inactivity_opened(store: &Store) -> std::collections::BTreeMap<i64, usize> {
    let changes = store.alert_changes_after(0, 100_000).await.unwrap();
    let mut per_elder = std::collections::BTreeMap::<i64, usize>::new();
    for change in changes.iter().filter(|c| c.kind.as_str() == "inactivity" && c.action == "opened") {
        *per_elder.entry(change.elder_id).or_default() += 1;
    }
    per_elder
}

/// Stops the province `scripts/cluster up` started in its folder when
/// dropped: a test that fails half-way leaves no log nodes, edges, writers
/// or PostgreSQL running (`down` a second time does nothing).
struct Province<'a>(&'a std::path::Path);

impl Drop for Province<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the province's processes said, for a failure seen only in
            // CI's output: the last lines of each one's log.
            let logs = std::fs::read_dir(self.0.join("logs")).into_iter().flatten().flatten();
            for log in logs {
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("--- the last of {} ---\n{tail}", log.path().display());
            }
        }
        if let Some(dir) = self.0.to_str() {
            let _ = scripts_cluster(&["down", "--dir", dir]);
        }
    }
}

/// A value of the `env` file `scripts/cluster up` wrote in `folder`.
fn province_env(folder: &std::path::Path, key: &str) -> String {
    let env = std::fs::read_to_string(folder.join("env")).unwrap();
    env.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {env}"))
        .to_string()
}

/// Two writer processes share the log's lanes. One is frozen (SIGSTOP) and
/// then killed (SIGKILL) while it holds messages taken from the log and
/// never acknowledged, and a log node is killed too: every appended message is stored exactly once,
/// the smoke alarm among them opens one alert, the log ends empty, and the
/// surviving writer stops in order on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_the_cluster_log_store_every_message_once_when_one_is_killed() {
    let mut cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let elder = home(&store, "赵玉兰", "锦山大街 5 号", "writer-smoke").await;
    let first = writer(&database.url, &cluster);
    let second = writer(&database.url, &cluster);
    let edge = Log::open(LogConfig { servers: cluster.urls(), ..LogConfig::default() }).await.unwrap();

    // Both writers wait on both lanes; then the first is frozen (SIGSTOP)
    // with its pulls standing: the log hands it messages it will never
    // acknowledge. It is killed (SIGKILL) a little later.
    let waiting = tokio::time::Instant::now() + Duration::from_secs(30);
    while edge.waiting_pulls().await.map_or(true, |lanes| lanes.iter().any(|&pulls| pulls < 2)) {
        assert!(tokio::time::Instant::now() < waiting, "both writers pull: {:?}", edge.waiting_pulls().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.freeze();
    let total: u32 = 2_000;
    let mut first = Some(first);
    for n in 0..total {
        let payload = format!(
            r#"{{"v":1,"boot":1,"seq":{},"up":{n},"interval_s":300,"motion":1,"door_opens":0,"battery":88}}"#,
            n / 20
        );
        let device = format!("writer-{:02}", n % 20);
        append(&edge, &format!("anxin/v1/dev/{device}/summary"), payload.as_bytes()).await;
        if n == 800 {
            first.take().unwrap().kill();
        }
        if n == 1_000 {
            let smoke = r#"{"v":1,"boot":2,"seq":4,"up":40,"kind":"smoke","state":"alarm"}"#;
            append(&edge, "anxin/v1/dev/writer-smoke/event", smoke.as_bytes()).await;
        }
        if n == 1_300 {
            cluster.kill(2);
        }
    }
    let expected = i64::from(total) + 1;
    // The killed writer's messages come back after the log's ack wait (30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while store.message_count().await.unwrap() < expected || edge.pending().await.map_or(true, |left| left > 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected} stored, {:?} left in the log",
            store.message_count().await.unwrap(),
            edge.pending().await.map_err(|e| e.to_string())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.message_count().await.unwrap(), expected, "each message once");
    let deliveries = edge.deliveries().await.unwrap();
    assert!(deliveries > expected.cast_unsigned(), "the killed writer held messages, handed out again: {deliveries}");
    let alerts = store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap();
    assert_eq!(alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), ["smoke"], "one alert");
    let (said, status) = second.terminate();
    assert!(status.success() && said.iter().any(|line| line.contains("stopped")), "{status}: {said:?}");
    store.close().await;
}

/// Devices provisioned in the province's database, their secrets.
fn provision(database: &str, prefix: &str, homes: usize) -> std::collections::HashMap<String, String> {
    let file = anxin_testkit::private_folder("edge-secrets").join("secrets.json");
    let ids: Vec<String> = (1..=homes).map(|home| format!("{prefix}-{home:05}")).collect();
    let mut args = vec!["--database", database, "devices", "provision"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--out", file.to_str().unwrap()]);
    let provisioned = anxin(&args);
    assert!(provisioned.status.success(), "{}", text(&provisioned.stderr));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// The whole province path with processes: simulated homes connect to an
/// edge (`anxin edge`), which appends to the three-node log and PUBACKs
/// after the quorum; a writer (`anxin gateway --cluster-log`) stores. The
/// edge is killed with SIGKILL under load and started again on its port:
/// every message a device had PUBACKed is stored exactly once, and the smoke
/// alarm one home raises becomes one alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_edge_killed_under_load_every_acknowledged_message_is_stored_once() {
    let cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let homes = 30;
    let credentials = provision(&database.url, "edge", homes);
    let elder = home(&store, "孙桂芝", "锦山大街 9 号", "edge-00001").await;
    let writer = writer(&database.url, &cluster);
    let port = anxin_testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    let servers = cluster.urls().join(",");
    let edge_args = [
        "--database",
        &database.url,
        "edge",
        "--cluster-log",
        &servers,
        "--mqtt-listen",
        &listen,
        "--http-listen",
        "127.0.0.1:0",
    ];
    let edge = Process::start(&edge_args);
    assert!(edge.ready.contains("appending to the cluster log"), "{}", edge.ready);

    let options = anxin_simulator::SimulateOptions {
        credentials,
        broker_host: "127.0.0.1".into(),
        broker_port: port,
        homes,
        duration: Duration::from_secs(8),
        speed: 3_000.0,
        id_prefix: "edge".into(),
        record_acks: true,
        scenarios: vec!["smoke:1@2h".parse().unwrap()],
        ..anxin_simulator::SimulateOptions::default()
    };
    let simulation = tokio::spawn(anxin_simulator::run(options));
    // Killed once the load is under way; back on the same port a second later.
    until_stored(&store, 200, "the load reached the database").await;
    edge.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let edge = Process::start(&edge_args);
    let report = simulation.await.unwrap().unwrap();
    assert!(report.acked.len() > 1_000, "{report}");
    assert!(report.connection_failures > 0 || report.connections > homes as u64, "the homes saw the edge go: {report}");

    every_acknowledged_message_stored(&store, &report).await;
    one_smoke_alert(&store, elder).await;
    let (said, status) = edge.terminate();
    assert!(status.success() && said.iter().any(|line| line.contains("anxin edge: stopped")), "{status}: {said:?}");
    let _ = writer.terminate();
    store.close().await;
}

/// An edge acknowledges only what the log's quorum holds. Two of the three
/// log nodes are killed while homes publish (no quorum: nothing can be
/// kept), then the edge itself is killed, then all come back: every message
/// a device had PUBACKed is stored. An edge that acknowledged on sending to
/// the log, not on the quorum's answer, fails this: what it acknowledged
/// during the outage is nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_log_has_lost_its_quorum_the_edge_acknowledges_nothing_it_cannot_keep() {
    let mut cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let homes = 10;
    let credentials = provision(&database.url, "quorum", homes);
    let writer = writer(&database.url, &cluster);
    let port = anxin_testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    // The edge knows only the first node, which stays up: the outage is the
    // quorum's, not the edge's connection.
    let first_node = cluster.urls()[0].clone();
    let edge_args = [
        "--database",
        &database.url,
        "edge",
        "--cluster-log",
        &first_node,
        "--mqtt-listen",
        &listen,
        "--http-listen",
        "127.0.0.1:0",
    ];
    let edge = Process::start(&edge_args);
    let options = anxin_simulator::SimulateOptions {
        credentials,
        broker_host: "127.0.0.1".into(),
        broker_port: port,
        homes,
        duration: Duration::from_secs(14),
        speed: 3_000.0,
        id_prefix: "quorum".into(),
        record_acks: true,
        ..anxin_simulator::SimulateOptions::default()
    };
    let simulation = tokio::spawn(anxin_simulator::run(options));
    until_stored(&store, 100, "the load reached the database").await;
    cluster.kill(1);
    cluster.kill(2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    edge.kill();
    cluster.restart(1);
    cluster.restart(2);
    let edge = Process::start(&edge_args);
    let report = simulation.await.unwrap().unwrap();
    assert!(report.acked.len() >= 100, "{report}");
    every_acknowledged_message_stored(&store, &report).await;
    let _ = edge.terminate();
    let _ = writer.terminate();
    store.close().await;
}

/// `scripts/cluster`: the province on loopback from one command — three log
/// nodes, two edges, two writers, a console (here on a fresh database of the
/// test's PostgreSQL) — takes homes through an edge into the database, and
/// `down` stops every process it started and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_cluster_runs_a_province_on_loopback_and_stops_only_what_it_started() {
    let database = PostgresDatabase::create().await;
    let folder = anxin_testkit::private_folder("province");
    let dir = folder.to_str().unwrap();
    let up = scripts_cluster(&["up", "--dir", dir, "--database", &database.url]);
    assert!(up.status.success(), "{}{}", text(&up.stdout), text(&up.stderr));
    let province = Province(&folder);
    assert!(text(&up.stdout).contains("edges (MQTT)"), "{}", text(&up.stdout));
    let value = |key: &str| province_env(&folder, key);
    let edge: std::net::SocketAddr = value("EDGE_2").parse().unwrap();
    let credentials = provision(&database.url, "province", 2);
    let report = anxin_simulator::run(anxin_simulator::SimulateOptions {
        credentials,
        broker_host: edge.ip().to_string(),
        broker_port: edge.port(),
        homes: 2,
        duration: Duration::from_secs(2),
        speed: 600.0,
        id_prefix: "province".into(),
        record_acks: true,
        ..anxin_simulator::SimulateOptions::default()
    })
    .await
    .unwrap();
    assert!(!report.acked.is_empty(), "{report}");
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let acked = i64::try_from(report.acked.len()).unwrap();
    until_stored(&store, acked, "the writers stored what the edge acknowledged").await;
    store.close().await;
    let console = value("CONSOLE").trim_start_matches("http://").parse().unwrap();
    assert!(crate::http(console, "GET /healthz", "", "").await.contains("schema"), "the console answers");

    let pids: Vec<String> = std::fs::read_to_string(folder.join("pids"))
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(pids.len(), 8, "3 log nodes, 2 writers, 2 edges, a console");
    let down = scripts_cluster(&["down", "--dir", dir]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    for pid in &pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{pid} stopped");
    }
    drop(province);
    let _ = std::fs::remove_dir_all(folder);
}

/// The province's PostgreSQL crashes (`pg_ctl restart -m immediate`) while
/// homes publish through an edge: the writers' commits fail and are tried
/// again, nothing is acknowledged to the log uncommitted, and when the
/// database is back every message a device had PUBACKed is stored, the
/// smoke alarm among them one alert. On `scripts/cluster`'s own PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_postgresql_crashes_under_load_every_acknowledged_message_is_stored_once_it_is_back() {
    let folder = anxin_testkit::private_folder("province-pg");
    let dir = folder.to_str().unwrap();
    let up = scripts_cluster(&["up", "--dir", dir]);
    assert!(up.status.success(), "{}{}", text(&up.stdout), text(&up.stderr));
    let province = Province(&folder);
    let value = |key: &str| province_env(&folder, key);
    let database = value("DATABASE").to_string();
    let edge: std::net::SocketAddr = value("EDGE_1").parse().unwrap();
    let homes = 20;
    let credentials = provision(&database, "crash", homes);
    let store = Store::open(&Database::Postgres(database.clone())).await.unwrap();
    let elder = home(&store, "钱秀兰", "锦山大街 11 号", "crash-00001").await;
    store.close().await;
    let simulation = tokio::spawn(anxin_simulator::run(anxin_simulator::SimulateOptions {
        credentials,
        broker_host: edge.ip().to_string(),
        broker_port: edge.port(),
        homes,
        duration: Duration::from_secs(10),
        speed: 3_000.0,
        id_prefix: "crash".into(),
        record_acks: true,
        scenarios: vec!["smoke:1@4h".parse().unwrap()],
        ..anxin_simulator::SimulateOptions::default()
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A crash, not a shutdown: no checkpoint, connections cut.
    tokio::task::block_in_place(|| crash_and_restart_postgres(&folder));
    let report = simulation.await.unwrap().unwrap();
    assert!(report.acked.len() > 500, "{report}");

    let store = Store::open(&Database::Postgres(database.clone())).await.unwrap();
    every_acknowledged_message_stored(&store, &report).await;
    one_smoke_alert(&store, elder).await;
    store.close().await;
    let down = scripts_cluster(&["down", "--dir", dir]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    drop(province);
    let _ = std::fs::remove_dir_all(folder);
}

/// Appends `messages` as edges do, many waiting for the quorum at once.
async fn append_all(log: &Log, messages: impl IntoIterator<Item = (String, Vec<u8>)>) {
    use futures_util::StreamExt;
    let mut waiting = futures_util::stream::FuturesUnordered::new();
    for (topic, payload) in messages {
        waiting.push(log.append_in_order(&topic, &payload, now_ms()).await.expect("the log takes the message"));
        while waiting.len() >= 2_048 {
            waiting.next().await.unwrap().expect("the quorum holds the message");
        }
    }
    while let Some(acked) = waiting.next().await {
        acked.expect("the quorum holds the message");
    }
}

/// A backlog of 50,000 summaries waits in the log (no writer was running)
/// with a smoke alarm queued in the middle of it. Two writers start: the
/// alarm's alert is committed while most of the backlog is still to be
/// stored — the hazard lane is read beside the bulk one, not behind it —
/// and every message is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_50000_drains_with_the_smoke_alarm_inside_it_alerted_before_the_drain_ends() {
    let cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let elder = home(&store, "钱淑珍", "锦山大街 21 号", "backlog-smoke").await;
    let log = Log::open(LogConfig { servers: cluster.urls(), ..LogConfig::default() }).await.unwrap();
    let total: u32 = 50_000;
    let summary = |n: u32| {
        let device = format!("backlog-{:03}", n % 500);
        let payload = format!(
            r#"{{"v":1,"boot":1,"seq":{},"up":{n},"interval_s":300,"motion":1,"door_opens":0,"battery":88}}"#,
            n / 500
        );
        (format!("anxin/v1/dev/{device}/summary"), payload.into_bytes())
    };
    let smoke = (
        "anxin/v1/dev/backlog-smoke/event".to_string(),
        br#"{"v":1,"boot":7,"seq":1,"up":10,"kind":"smoke","state":"alarm"}"#.to_vec(),
    );
    append_all(&log, (0..total / 2).map(summary)).await;
    append_all(&log, [smoke]).await;
    append_all(&log, (total / 2..total).map(summary)).await;

    let writers = [writer(&database.url, &cluster), writer(&database.url, &cluster)];
    let expected = i64::from(total) + 1;
    let mut stored_when_alerted = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let stored = store.message_count().await.unwrap();
        if stored_when_alerted.is_none() {
            let alerts = store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap();
            if alerts.iter().any(|alert| alert.kind.as_str() == "smoke") {
                stored_when_alerted = Some(stored);
            }
        }
        if stored >= expected && log.pending().await.is_ok_and(|left| left == 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stored} of {expected} stored in five minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.message_count().await.unwrap(), expected, "each message once");
    let stored_when_alerted = stored_when_alerted.expect("the smoke alarm became an alert");
    assert!(
        stored_when_alerted < expected / 2,
        "the alert was committed with {stored_when_alerted} of {expected} stored: it waited behind the backlog"
    );
    one_smoke_alert(&store, elder).await;
    for writer in writers {
        let _ = writer.terminate();
    }
    store.close().await;
}

/// Homes whose inactivity deadline passed while no writer ran. Two writers
/// start together, and both run the alert timers: each home gets one
/// inactivity alert, opened once — the timers claim a home in the database
/// (its row locked), not in a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_homes_fire_once_with_two_writers_running_the_timers() {
    let cluster = NatsCluster::start(3);
    let database = PostgresDatabase::create().await;
    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    let policy = AlertPolicy::default();
    let now = now_ms();
    let homes = 400;
    // Silent for three days, the deadline long past: due at once.
    let elders = store
        .populate_for_benchmark(homes, "overdue", now, |_, device| {
            anxin_bench::watched_home(&policy, now - 3 * 24 * 3_600_000, device, now)
        })
        .await
        .unwrap();
    assert_eq!(elders.len(), homes);

    let writers = [writer(&database.url, &cluster), writer(&database.url, &cluster)];
    let opened = || inactivity_opened(&store);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while opened().await.len() < homes {
        assert!(tokio::time::Instant::now() < deadline, "{} of {homes} overdue homes alerted", opened().await.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both writers' timers have looked again since.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_elder = opened().await;
    assert_eq!(per_elder.len(), homes);
    let twice: Vec<_> = per_elder.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "opened more than once: {twice:?}");
    let alerts = store.alerts(&AlertFilter { limit: 10_000, ..AlertFilter::default() }).await.unwrap();
    let inactivity = alerts.iter().filter(|alert| alert.kind.as_str() == "inactivity").count();
    assert_eq!(inactivity, homes, "one inactivity alert per home");
    for writer in writers {
        let _ = writer.terminate();
    }
    store.close().await;
}

/// One process of the province, as `scripts/cluster` started it: its
/// command line, folder and environment, read from `/proc`, so that it can
/// be started again as it was.
struct Started {
    name: String,
    pid: i32,
    argv: Vec<String>,
    cwd: std::path::PathBuf,
    env: Vec<(String, String)>,
}

fn started(folder: &std::path::Path, name: &str) -> Started {
    let pids = std::fs::read_to_string(folder.join("pids")).unwrap();
    let pid: i32 = pids
        .lines()
        .filter_map(|line| line.split_once(' '))
        .rfind(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} in {pids}"))
        .1
        .parse()
        .unwrap();
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let split = |bytes: Vec<u8>| -> Vec<String> {
        bytes.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
    };
    let argv = split(std::fs::read(proc.join("cmdline")).unwrap());
    let env = split(std::fs::read(proc.join("environ")).unwrap())
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Started { name: name.to_string(), pid, argv, cwd: std::fs::read_link(proc.join("cwd")).unwrap(), env }
}

impl Started {
    /// `kill -9`, then, after `pause`, the same command again — an edge on
    /// `listen_on`, the address it had — (its output
    /// to `DIR/logs/NAME.restarted`; added to `DIR/pids`, so `scripts/cluster
    /// down` stops it).
    async fn kill_and_restart(&self, folder: &std::path::Path, pause: Duration, listen_on: Option<&str>) {
        let killed = std::process::Command::new("kill").args(["-9", &self.pid.to_string()]).status().unwrap();
        assert!(killed.success(), "kill -9 {}", self.name);
        while std::path::Path::new(&format!("/proc/{}/cmdline", self.pid)).exists()
            && !std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default().is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(pause).await;
        let log = std::fs::File::create(folder.join("logs").join(format!("{}.restarted", self.name))).unwrap();
        // An edge comes back on the address its devices know.
        let mut args = self.argv[1..].to_vec();
        if let (Some(address), Some(at)) = (listen_on, args.iter().position(|arg| arg == "--mqtt-listen")) {
            args[at + 1] = address.to_string();
        }
        let mut child = std::process::Command::new(&self.argv[0])
            .args(&args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut pids = std::fs::OpenOptions::new().append(true).open(folder.join("pids")).unwrap();
        writeln!(pids, "{} {}", self.name, child.id()).unwrap();
        // Reaped when `scripts/cluster down` stops it.
        std::thread::spawn(move || child.wait());
    }
}

/// `pg_ctl restart -m immediate` of the province's own PostgreSQL: a crash,
/// not a shutdown (no checkpoint, every connection cut). The server started
/// again writes to its log file, not to this test's pipes.
fn crash_and_restart_postgres(folder: &std::path::Path) {
    let data = folder.join("postgres/data");
    let log = folder.join("postgres/postgres.log");
    let pg_ctl = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin/pg_ctl"))
        .max()
        .unwrap();
    let as_root = text(&std::process::Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
    let mut restart =
        std::process::Command::new(if as_root { std::path::PathBuf::from("runuser") } else { pg_ctl.clone() });
    if as_root {
        restart.args(["-u", "postgres", "--"]).arg(&pg_ctl);
    }
    restart.arg("-D").arg(&data).arg("-l").arg(&log).args(["-m", "immediate", "-w", "restart"]);
    let restarted = restart.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().unwrap();
    assert!(restarted.success(), "pg_ctl restart: see {}", log.display());
}

/// The province of `scripts/cluster up` under 2,000 homes (1,000 through
/// each edge, at ten times real speed: 67 summaries a second) loses, in
/// turn, a log
/// node, an edge, a store writer (each `kill -9`, each started again) and
/// its PostgreSQL (crashed and restarted), while 200 homes fall overdue one
/// after another across the faults: every message a device had PUBACKed is
/// stored exactly once, each of the eight smoke alarms raised across the
/// faults is one alert, and each overdue home fired once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_of_2000_homes_loses_a_log_node_an_edge_a_writer_and_postgresql_in_turn_and_keeps_its_promises() {
    const HOMES_PER_EDGE: usize = 1_000;
    let folder = anxin_testkit::private_folder("province-faults");
    let dir = folder.to_str().unwrap();
    let up = scripts_cluster(&["up", "--dir", dir]);
    assert!(up.status.success(), "{}{}", text(&up.stdout), text(&up.stderr));
    let province = Province(&folder);
    let database = province_env(&folder, "DATABASE");
    let store = Store::open(&Database::Postgres(database.clone())).await.unwrap();

    // 200 homes silent for nearly 12 h: one falls due every 150 ms from now
    // on, across all the faults.
    let policy = AlertPolicy::default();
    let now = now_ms();
    let overdue = 200;
    store
        .populate_for_benchmark(overdue, "overdue", now, |nth, device| {
            let silent_since = now - 12 * 3_600_000 + 2_000 + i64::try_from(nth).unwrap() * 150;
            anxin_bench::watched_home(&policy, silent_since, device, now)
        })
        .await
        .unwrap();

    // "pa-…" through the first edge, "pb-…" through the second; homes 1–4
    // of each raise a smoke alarm, one before each fault and one after
    // (speed 10: ten simulated seconds a second — and the devices' reconnect
    // backoff, 1–60 s, a tenth of it; faster, their reconnects after a kill
    // came as a storm no fleet makes).
    let mut smoke_elders = Vec::new();
    let mut simulations = Vec::new();
    for (prefix, edge, seconds) in [("pa", "EDGE_1", [20, 80, 140, 200]), ("pb", "EDGE_2", [50, 110, 170, 260])] {
        let credentials = provision(&database, prefix, HOMES_PER_EDGE);
        for home_number in 1..=4 {
            let device = format!("{prefix}-{home_number:05}");
            smoke_elders.push(home(&store, &format!("测试{device}"), "锦山大街 1 号", &device).await);
        }
        let edge: std::net::SocketAddr = province_env(&folder, edge).parse().unwrap();
        simulations.push(tokio::spawn(anxin_simulator::run(anxin_simulator::SimulateOptions {
            credentials,
            broker_host: edge.ip().to_string(),
            broker_port: edge.port(),
            homes: HOMES_PER_EDGE,
            duration: Duration::from_secs(32),
            // Then each home delivers what it still holds: every smoke
            // alarm raised is acknowledged, or the run says it is queued.
            drain: Duration::from_secs(60),
            speed: 10.0,
            id_prefix: prefix.into(),
            record_acks: true,
            scenarios: (1..=4).map(|home| format!("smoke:{home}@{}s", seconds[home - 1]).parse().unwrap()).collect(),
            ..anxin_simulator::SimulateOptions::default()
        })));
    }

    // The faults, six seconds apart.
    tokio::time::sleep(Duration::from_secs(4)).await;
    started(&folder, "nats-n1").kill_and_restart(&folder, Duration::from_secs(2), None).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let edge_1 = province_env(&folder, "EDGE_1");
    started(&folder, "edge-1").kill_and_restart(&folder, Duration::from_secs(1), Some(&edge_1)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    started(&folder, "writer-1").kill_and_restart(&folder, Duration::from_secs(1), None).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    tokio::task::block_in_place(|| crash_and_restart_postgres(&folder));

    let mut acked = 0;
    for simulation in simulations {
        let report = simulation.await.unwrap().unwrap();
        assert!(report.acked.len() > HOMES_PER_EDGE / 4, "{report}");
        assert_eq!(
            (report.dropped_by_outbox, report.still_queued),
            (0, 0),
            "every home delivered all it held: {report}"
        );
        acked += report.acked.len();
        // A fresh pool: the crash cut the old one's connections.
        let store = Store::open(&Database::Postgres(database.clone())).await.unwrap();
        every_acknowledged_message_stored(&store, &report).await;
        store.close().await;
    }
    let store = Store::open(&Database::Postgres(database.clone())).await.unwrap();
    let keys = store.message_keys().await.unwrap();
    let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "no message stored twice ({acked} acknowledged)");
    for elder in smoke_elders {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "elder {elder}'s smoke alarm was acknowledged and stored but never became an alert"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        one_smoke_alert(&store, elder).await;
    }
    let opened = || inactivity_opened(&store);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while opened().await.len() < overdue {
        assert!(tokio::time::Instant::now() < deadline, "{} of {overdue} overdue homes alerted", opened().await.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let twice: Vec<_> = opened().await.into_iter().filter(|(_, count)| *count > 1).collect();
    assert!(twice.is_empty(), "opened more than once: {twice:?}");
    store.close().await;
    let down = scripts_cluster(&["down", "--dir", dir]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    drop(province);
    let _ = std::fs::remove_dir_all(folder);
}
