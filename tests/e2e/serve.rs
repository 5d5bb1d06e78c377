//! `anxin serve` and `anxin gateway` as processes: start-up, errors,
//! shutdown, and durability when killed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anxin_simulator::{SimulateOptions, run};
use anxin_store::{Database, Store};
use anxin_testkit::{Broker, free_port, private_folder};

use crate::{anxin, anxin_at, text};

/// A running `anxin serve` or `anxin gateway`; killed if the test ends first.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The first line it printed: where it listens.
    pub ready: String,
}

impl Process {
    pub fn start(args: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_anxin"));
        command.args(args).env("ANXIN_LOG", std::env::var("ANXIN_TEST_WRITER_LOG").unwrap_or("error".into()));
        let mut process = Process::spawn(command);
        process.ready = process.lines.recv_timeout(Duration::from_secs(30)).expect("anxin printed its ready line");
        process
    }

    /// Starts `command` with its output read line by line; `ready` stays empty.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the process");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Process { child, lines, ready: String::new() }
    }

    /// What it printed since the last look.
    pub fn printed_so_far(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The address after `marker` in the ready line, e.g. "MQTT broker on ".
    pub fn address_after(&self, marker: &str) -> SocketAddr {
        let rest = &self.ready
            [self.ready.find(marker).unwrap_or_else(|| panic!("{marker:?} in {:?}", self.ready)) + marker.len()..];
        let address: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
        address.parse().unwrap()
    }

    /// The next line it prints after those already read.
    pub fn next_line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(30)).expect("anxin printed another line")
    }

    /// SIGTERM, then waits: returns the lines printed after the ready line and the exit status.
    pub fn terminate(mut self) -> (Vec<String>, std::process::ExitStatus) {
        // Drop would kill it; terminate waits for the orderly exit instead.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().unwrap();
        // Everything it printed, up to the end of its output (the reader
        // thread may not have passed the last lines on yet).
        let mut said = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            said.push(line);
        }
        (said, status)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(self) {}

    /// SIGSTOP: frozen where it stands, holding what it holds.
    pub fn freeze(&self) {
        let _ = Command::new("kill").arg("-STOP").arg(self.child.id().to_string()).status();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn store_in(data_dir: &Path) -> Store {
    Store::open(&Database::in_data_dir(data_dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stores_what_devices_publish_and_stops_cleanly_on_sigterm() {
    let data = private_folder("serve");
    let data_arg = data.to_str().unwrap();
    let serve = Process::start(&[
        "--data-dir",
        data_arg,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let mqtt = serve.address_after("MQTT broker on ");
    let http = serve.address_after("console on http://");
    assert!(serve.ready.contains("database SQLite"), "{}", serve.ready);

    let options = SimulateOptions {
        broker_host: mqtt.ip().to_string(),
        broker_port: mqtt.port(),
        homes: 5,
        duration: Duration::from_secs(2),
        speed: 600.0,
        id_prefix: "serve-e2e".into(),
        record_acks: true,
        scenarios: vec!["help:2@1m".parse().unwrap()],
        credentials: crate::provision_homes(data_arg, "serve-e2e", 5),
        ..SimulateOptions::default()
    };
    let report = run(options).await.unwrap();
    assert!(report.acked.len() >= 5 * 3, "{report}");

    // Every acknowledged message is there, read by another process while serve runs.
    let listed = anxin(&["--data-dir", data_arg, "devices", "list", "--unclaimed", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let devices: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 5);
    let store = store_in(&data).await;
    let stored = store.message_keys().await.unwrap();
    for acked in &report.acked {
        assert!(
            stored.contains(&(acked.device_id.clone(), i64::from(acked.boot), i64::from(acked.seq))),
            "{acked:?} lost"
        );
    }
    store.close().await;

    let metrics = http_get(http, "/metrics").await;
    assert!(metrics.contains("anxin_messages_stored_total"), "{metrics}");

    let (lines, status) = serve.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.last().map(String::as_str), Some("anxin serve: stopped"));
    let _ = std::fs::remove_dir_all(data);
}

pub async fn http_get(address: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[test]
fn serve_names_the_flag_to_change_when_a_port_is_taken_or_the_data_folder_is_unusable() {
    let data = private_folder("serve-errors");
    let data_arg = data.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();

    let output =
        anxin(&["--data-dir", data_arg, "serve", "--mqtt-listen", &taken_addr, "--http-listen", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains(&taken_addr) && error.contains("--mqtt-listen"), "{error}");

    let output =
        anxin(&["--data-dir", data_arg, "serve", "--mqtt-listen", "127.0.0.1:0", "--http-listen", &taken_addr]);
    let error = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        error.starts_with(&format!("error: cannot listen for HTTP on {taken_addr}")) && error.contains("--http-listen"),
        "{error}"
    );

    // A data folder under a plain file cannot be created, even by root.
    let file = data.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let under_file = file.join("data");
    let output = anxin(&["--data-dir", under_file.to_str().unwrap(), "serve", "--mqtt-listen", "127.0.0.1:0"]);
    let error = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("is not writable") && error.contains("--data-dir"), "{error}");
    drop(taken);
    let _ = std::fs::remove_dir_all(data);
}

/// Every message the broker acknowledged to a node is stored exactly once
/// (the primary key makes "once" structural; this checks "none missing").
async fn assert_nothing_acknowledged_is_missing(data: &Path, report: &anxin_simulator::Report) {
    let store = store_in(data).await;
    let stored = store.message_keys().await.unwrap();
    let missing: Vec<_> = report
        .acked
        .iter()
        .filter(|a| stored.binary_search(&(a.device_id.clone(), i64::from(a.boot), i64::from(a.seq))).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages missing, e.g. {:?}",
        missing.len(),
        report.acked.len(),
        missing.first()
    );
    store.close().await;
}

/// After a fault under load: the load was real, the backlog drains, and
/// nothing the broker acknowledged to a node is missing.
async fn after_the_fault(data: &Path, report: &anxin_simulator::Report, gateway: Process) {
    assert!(report.acked.len() > 2_000, "{report}");
    drained(data, report.acked.len()).await;
    let _ = gateway.terminate();
    assert_nothing_acknowledged_is_missing(data, report).await;
    let _ = std::fs::remove_dir_all(data);
}

/// `anxin gateway` arguments for a test: its data, the broker, a fixed id.
pub fn gateway_args(data: &str, url: &str, gateway_id: &str) -> [String; 9] {
    ["--data-dir", data, "gateway", "--broker", url, "--gateway-id", gateway_id, "--http-listen", "127.0.0.1:0"]
        .map(String::from)
}

/// Starts the gateway and waits until its metrics say it is connected.
pub async fn start_connected(args: &[String; 9]) -> Process {
    let gateway = Process::start(&args.each_ref().map(String::as_str));
    let metrics = gateway.address_after("metrics on http://");
    for _ in 0..250 {
        if http_get(metrics, "/metrics").await.contains("anxin_broker_connected 1") {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway did not connect to the broker");
}

/// Waits (up to 60 s: the whole suite loads this machine) until at least `expected` messages are stored: the
/// broker's backlog has reached the gateway, or a load is under way.
async fn drained(data: &Path, expected: usize) {
    let store = store_in(data).await;
    for _ in 0..300 {
        if store.message_keys().await.unwrap().len() >= expected {
            store.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the backlog did not drain: {} of {expected} stored", store.message_keys().await.unwrap().len());
}

/// Stored messages that show a load is under way (about a third of a second of it).
const UNDER_WAY: usize = 300;

/// How long a killed gateway stays away while the load goes on.
const AWAY: Duration = Duration::from_secs(1);

/// How many messages are stored now.
async fn stored(data: &Path) -> usize {
    let store = store_in(data).await;
    let count = store.message_keys().await.unwrap().len();
    store.close().await;
    count
}

/// `credentials`: the homes' secrets when the broker is `serve`'s own.
fn load(port: u16, prefix: &str, duration: Duration, credentials: Option<&str>) -> SimulateOptions {
    SimulateOptions {
        credentials: credentials.map(|data| crate::provision_homes(data, prefix, 100)).unwrap_or_default(),
        broker_host: "127.0.0.1".into(),
        broker_port: port,
        homes: 100,
        duration,
        // A summary per home every 0.1 s: about 1,000 messages a second in all.
        speed: 3_000.0,
        id_prefix: prefix.into(),
        record_acks: true,
        ..SimulateOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_serve_under_load_loses_nothing_it_acknowledged() {
    let data = private_folder("serve-kill");
    let data_arg = data.to_str().unwrap().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve_args = ["--data-dir", &data_arg, "serve", "--mqtt-listen", &listen, "--http-listen", "127.0.0.1:0"];
    let serve = Process::start(&serve_args);
    let simulation = tokio::spawn(run(load(port, "kill-serve", Duration::from_secs(7), Some(&data_arg))));

    // Killed once the load is under way, and again once it has resumed.
    drained(&data, UNDER_WAY).await;
    serve.kill();
    let serve = Process::start(&serve_args);
    let resumed = stored(&data).await + UNDER_WAY;
    drained(&data, resumed).await;
    serve.kill();
    let serve = Process::start(&serve_args);

    let report = simulation.await.unwrap().unwrap();
    assert!(report.acked.len() > 2_000, "{report}");
    assert!(report.connection_failures > 0 || report.connections > 100, "the nodes saw the gateway go: {report}");
    let _ = serve.terminate();
    assert_nothing_acknowledged_is_missing(&data, &report).await;
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_under_load_loses_nothing_the_broker_acknowledged() {
    let broker = Broker::start_persistent();
    let data = private_folder("gateway-kill");
    let data_arg = data.to_str().unwrap().to_string();
    let url = broker.url();
    let gateway_args = gateway_args(&data_arg, &url, "e2e-kill-gw");
    // The session must exist before the load starts, or the broker has no queue to keep.
    let gateway = start_connected(&gateway_args).await;
    let simulation = tokio::spawn(run(load(broker.port(), "kill-gw", Duration::from_secs(6), None)));
    drained(&data, UNDER_WAY).await;
    gateway.kill();
    // Away while the load goes on: the broker queues for the gateway's session.
    tokio::time::sleep(AWAY).await;
    let gateway = Process::start(&gateway_args.each_ref().map(String::as_str));
    let report = simulation.await.unwrap().unwrap();
    // The broker delivers what it queued while the gateway was away.
    after_the_fault(&data, &report, gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_broker_under_load_loses_nothing() {
    let mut broker = Broker::start_persistent();
    let data = private_folder("broker-restart");
    let data_arg = data.to_str().unwrap().to_string();
    let url = broker.url();
    let gateway_args = gateway_args(&data_arg, &url, "e2e-restart-gw");
    // The session must exist before the load starts, or the broker has no queue to keep.
    let gateway = start_connected(&gateway_args).await;
    let simulation = tokio::spawn(run(load(broker.port(), "restart", Duration::from_secs(6), None)));
    drained(&data, UNDER_WAY).await;
    tokio::task::block_in_place(|| broker.restart());
    let report = simulation.await.unwrap().unwrap();
    // The broker delivers what it queued while the gateway was away.
    after_the_fault(&data, &report, gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_commands_register_pair_and_tail_while_serve_runs() {
    let data = private_folder("admin");
    let data_arg = data.to_str().unwrap().to_string();
    let serve = Process::start(&[
        "--data-dir",
        &data_arg,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let mqtt = serve.address_after("MQTT broker on ");
    let admin = |args: &[&str]| anxin_at(&data_arg, args);

    let bad = admin(&[
        "elders",
        "add",
        "--name",
        "王秀英",
        "--county",
        "振兴区",
        "--township",
        "站前街道",
        "--village",
        "锦山社区",
        "--address",
        "锦山大街 12 号",
        "--phone",
        "call me",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("phone \"call me\" is not a phone number"), "{}", text(&bad.stderr));
    let added = admin(&[
        "elders",
        "add",
        "--name",
        "王秀英",
        "--county",
        "振兴区",
        "--township",
        "站前街道",
        "--village",
        "锦山社区",
        "--address",
        "锦山大街 12 号",
        "--phone",
        "139 0415 0001",
        "--emergency-contact",
        "王建国",
        "--emergency-phone",
        "13904150002",
        "--categories",
        "living_alone",
    ]);
    assert_eq!(text(&added.stdout).trim(), "added elder 1: 王秀英", "{}", text(&added.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&admin(&["elders", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["phone"], "13904150001");

    let unknown = admin(&["devices", "pair", "node-7", "--elder", "42"]);
    assert_eq!(text(&unknown.stderr).trim(), "error: there is no elder with id 42");
    let paired = admin(&["devices", "pair", "node-7", "--elder", "1"]);
    let said = text(&paired.stdout);
    assert_eq!(said.lines().next(), Some("paired node-7 with elder 1"));
    assert!(said.contains("node-7 has no secret on the broker yet"), "not provisioned yet: {said}");

    // `events tail`, started before the node publishes, prints the event (it
    // needs no head start: what lands between its first look and its first
    // poll is followed too).
    let mut tail_command = Command::new(env!("CARGO_BIN_EXE_anxin"));
    tail_command.args(["--data-dir", &data_arg, "events", "tail", "--device", "node-7"]);
    let tail = Process::spawn(tail_command);
    let secret = crate::issue(&data_arg, "devices", &["node-7".to_string()]).remove("node-7").unwrap();
    let mut options = rumqttc::MqttOptions::new("node-7", mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_credentials("node-7", secret);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .publish(
            "anxin/v1/dev/node-7/event",
            rumqttc::QoS::AtLeastOnce,
            false,
            r#"{"v":1,"boot":1,"seq":0,"up":5,"kind":"help","state":"pressed"}"#,
        )
        .await
        .unwrap();
    loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
            break;
        }
    }
    let line = tail.next_line();
    assert!(line.contains("node-7") && line.contains(r#""kind":"help""#), "{line}");
    tail.kill();

    let devices: serde_json::Value = serde_json::from_slice(&admin(&["devices", "list", "--json"]).stdout).unwrap();
    assert_eq!((devices[0]["device_id"].as_str(), devices[0]["elder_id"].as_i64()), (Some("node-7"), Some(1)));
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn settings_come_from_the_config_file_unless_a_flag_or_variable_says_otherwise() {
    let folder = private_folder("config");
    let from_file = folder.join("from-file");
    let config = folder.join("anxin.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", from_file.to_str().unwrap())).unwrap();
    let config_arg = config.to_str().unwrap();

    let output = anxin(&["--config", config_arg, "elders", "list"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(from_file.join("anxin.sqlite3").exists(), "the file's data_dir was used");

    let from_flag = folder.join("from-flag");
    let output = anxin(&["--config", config_arg, "--data-dir", from_flag.to_str().unwrap(), "elders", "list"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(from_flag.join("anxin.sqlite3").exists(), "the flag beat the file");

    let from_variable = folder.join("from-variable");
    let output = Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(["--config", config_arg, "elders", "list"])
        .env("ANXIN_DATA_DIR", &from_variable)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(from_variable.join("anxin.sqlite3").exists(), "the variable beat the file");

    std::fs::write(&config, "data_dri = \"typo\"\n").unwrap();
    let output = anxin(&["--config", config_arg, "elders", "list"]);
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(error.contains("is not valid") && error.contains("data_dri"), "{error}");
    let _ = std::fs::remove_dir_all(folder);
}

/// Issue 19: a backup taken while `serve` runs under ingest load is one
/// consistent snapshot: restored into a fresh data folder, it holds every
/// message committed before it began, its audit log holds, and `serve`
/// starts from it (at this build's schema, as `/healthz` says). A restore
/// never overwrites a database without --replace, which keeps the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_into_a_fresh_folder_with_all_committed_before_it() {
    let data = private_folder("backup-live");
    let data_arg = data.to_str().unwrap().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve =
        Process::start(&["--data-dir", &data_arg, "serve", "--mqtt-listen", &listen, "--http-listen", "127.0.0.1:0"]);
    let simulation = tokio::spawn(run(load(port, "backup-live", Duration::from_secs(4), Some(&data_arg))));
    drained(&data, UNDER_WAY).await;

    // Committed before the backup begins (the load goes on meanwhile).
    let before = store_in(&data).await.message_keys().await.unwrap();
    let file = private_folder("backup-files").join("anxin-backup.sqlite3");
    let file_arg = file.to_str().unwrap();
    let taken = anxin_at(&data_arg, &["backup", file_arg]);
    assert!(taken.status.success(), "{}", text(&taken.stderr));
    assert!(text(&taken.stdout).contains("integrity ok"), "{}", text(&taken.stdout));
    let again = anxin_at(&data_arg, &["backup", file_arg]);
    assert!(!again.status.success() && text(&again.stderr).contains("never overwrites"), "{}", text(&again.stderr));
    // The daily timer's way: a new file named by the time, the newest kept.
    let scheduled = private_folder("backup-scheduled");
    for _ in 0..3 {
        let timer = anxin_at(&data_arg, &["backup", "--into", scheduled.to_str().unwrap(), "--keep", "2"]);
        assert!(timer.status.success(), "{}", text(&timer.stderr));
    }
    let kept: Vec<_> = std::fs::read_dir(&scheduled).unwrap().filter_map(Result::ok).collect();
    assert_eq!(kept.len(), 2, "the newest two kept: {kept:?}");
    let report = simulation.await.unwrap().unwrap();
    assert!(report.acked.len() > before.len(), "the load went on during the backup: {report}");
    let _ = serve.terminate();

    // Restored into a fresh folder: everything committed before it is there.
    let fresh = private_folder("backup-restored");
    let fresh_arg = fresh.to_str().unwrap();
    let restored = anxin_at(fresh_arg, &["restore", file_arg]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(text(&restored.stdout).contains("the audit log holds"), "{}", text(&restored.stdout));
    let kept = store_in(&fresh).await.message_keys().await.unwrap();
    let missing = before.iter().filter(|key| kept.binary_search(key).is_err()).count();
    assert_eq!(missing, 0, "{missing} of {} messages committed before the backup are missing", before.len());
    let verified = anxin_at(fresh_arg, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));

    // Not over a database without --replace; with it, the old one is kept.
    let refused = anxin_at(fresh_arg, &["restore", file_arg]);
    assert!(!refused.status.success() && text(&refused.stderr).contains("--replace"), "{}", text(&refused.stderr));
    let replaced = anxin_at(fresh_arg, &["restore", file_arg, "--replace"]);
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    let kept_aside = std::fs::read_dir(&fresh)
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().contains(".before-restore-"));
    assert!(kept_aside, "the database replaced is kept beside");
    // A file that is not a backup is refused, nothing changed.
    let junk = fresh.join("junk.sqlite3");
    std::fs::write(&junk, b"not a database").unwrap();
    let junked = anxin_at(fresh_arg, &["restore", junk.to_str().unwrap(), "--replace"]);
    assert!(!junked.status.success(), "{}", text(&junked.stdout));

    // `serve` starts from it, at this build's schema.
    let serve = Process::start(&[
        "--data-dir",
        fresh_arg,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let http = serve.address_after("console on http://");
    let health = http_get(http, "/healthz").await;
    assert!(health.contains(&format!("schema {}", anxin_store::newest_schema())), "{health}");
    let version = anxin(&["--version"]);
    assert!(text(&version.stdout).contains(&format!("database schema {}", anxin_store::newest_schema())));
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&fresh);
}

/// A tmpfs of a few MiB mounted on a fresh folder (unmounted when dropped):
/// a data disk that can really fill, ENOSPC and all. Mounting needs root
/// (CAP_SYS_ADMIN), as the README's test command has.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(name: &str, mib: u32) -> SmallDisk {
        let path = private_folder(name);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            mounted.status.success(),
            "this test mounts a tmpfs as a small data disk, which needs root: {}",
            text(&mounted.stderr)
        );
        SmallDisk { path }
    }

    /// Writes a file until the disk is full; deleting it gives the space back.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write_all(&block).and_then(|()| file.sync_data()) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        // The last partial block.
        for _ in 0..64 {
            let _ = file.write_all(&[0u8; 1024]);
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A metric's value in a `/metrics` page (the first sample of `name`).
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} on /metrics:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_load_stops_acknowledgements_says_so_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("disk-full", 48);
    let data = disk.path.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    crate::user_with_own_password(&data_arg, &["admin", "--role", "admin"]).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve =
        Process::start(&["--data-dir", &data_arg, "serve", "--mqtt-listen", &listen, "--http-listen", "127.0.0.1:0"]);
    let console = serve.address_after("console on http://");
    let (session, csrf) = crate::sign_in_http(console, "admin", "a password of their own").await;
    let simulation = tokio::spawn(run(load(port, "disk-full", Duration::from_secs(16), Some(&data_arg))));
    drained(&data, UNDER_WAY).await;

    // The disk fills under the load: ingest stops acknowledging.
    let filler = disk.fill();
    let health = until_health(console, "503 Service Unavailable").await;
    assert!(health.contains("storage full since "), "{health}");
    let acknowledged = |page: &str| metric(page, "anxin_ingest_ack_lag_seconds_count");
    let first = http_get(console, "/metrics").await;
    assert_eq!(metric(&first, "anxin_storage_full"), 1.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = http_get(console, "/metrics").await;
    assert_eq!(acknowledged(&later), acknowledged(&first), "nothing is acknowledged while the disk is full");
    assert!(metric(&later, "anxin_ingest_waiting") > 0.0, "messages wait for their acknowledgement:\n{later}");

    // The console says so on every page, and refuses a change with the reason.
    let cookie = format!("Cookie: {session}\r\n");
    let board = crate::http(console, "GET /board", &cookie, "").await;
    assert!(board.starts_with("HTTP/1.1 200") && board.contains("id=\"storage-full\""), "{board}");
    assert!(board.contains("数据盘已满"), "{board}");
    let form = format!("{cookie}Content-Type: application/x-www-form-urlencoded\r\n");
    let body =
        format!("csrf={csrf}&current=a+password+of+their+own&new=another+long+password&confirm=another+long+password");
    let refused = crate::http(console, "POST /password", &form, &body).await;
    assert!(refused.starts_with("HTTP/1.1 507"), "{refused}");
    assert!(refused.contains("没有保存") && refused.contains("数据盘已满"), "{refused}");

    // Space returns: ingest goes on by itself, the console's warning goes.
    std::fs::remove_file(filler).unwrap();
    let health = until_health(console, "200 OK").await;
    assert!(health.contains("\r\n\r\nok\n"), "{health}");
    let recovered = http_get(console, "/metrics").await;
    assert_eq!(metric(&recovered, "anxin_storage_full"), 0.0);
    let board = crate::http(console, "GET /board", &cookie, "").await;
    assert!(!board.contains("storage-full"), "{board}");

    let report = simulation.await.unwrap().unwrap();
    let after = http_get(console, "/metrics").await;
    assert!(acknowledged(&after) > acknowledged(&later), "acknowledged again once space returned: {report}");
    drained(&data, report.acked.len()).await;
    let _ = serve.terminate();
    assert_nothing_acknowledged_is_missing(&data, &report).await;
    let verified = anxin_at(&data_arg, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
}

/// Waits (up to 30 s) for `/healthz` to answer with `status`; the answer.
async fn until_health(console: SocketAddr, status: &str) -> String {
    for _ in 0..300 {
        let health = http_get(console, "/healthz").await;
        if health.starts_with(&format!("HTTP/1.1 {status}")) {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/healthz did not answer {status} within 30 s: {}", http_get(console, "/healthz").await);
}
