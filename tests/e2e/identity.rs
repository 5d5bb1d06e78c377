//! Who may speak on the broker, tried as an attacker would, on both broker
//! paths: `anxin serve`'s embedded broker, and a real Mosquitto run from
//! `deploy/mosquitto.conf` with what `anxin devices export --mosquitto`
//! wrote, read by `anxin gateway`. The identities are made with the
//! operator's commands; the devices, the bridge and the consumer are plain
//! MQTT 5 clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anxin_store::{AlertFilter, Database, Store};
use anxin_testkit::{Broker, private_folder};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};

use crate::serve::Process;
use crate::{ADD_WANG_XIUYING, anxin_at, issue, text};

const SMOKE: &str = r#"{"v":1,"boot":3,"seq":1,"up":10,"kind":"smoke","state":"alarm"}"#;

fn summary(seq: u32) -> String {
    format!(
        r#"{{"v":1,"boot":3,"seq":{seq},"up":{seq},"interval_s":300,"motion":999,"door_opens":0,"temp_dc":-400,"battery":1}}"#
    )
}

/// An MQTT 5 client of the test, as a node, a bridge or a consumer.
struct Client {
    client: AsyncClient,
    eventloop: EventLoop,
}

/// Connects as `client_id` with `username` and `secret`; the broker's
/// refusal, if it refuses.
async fn connect(
    mqtt: SocketAddr,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<Client, ConnectReturnCode> {
    let mut options = MqttOptions::new(client_id, mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((username, secret)) = credentials {
        options.set_credentials(username, secret);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.expect("an answer to CONNECT") {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(Client { client, eventloop }),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(error) => panic!("connecting as {client_id}: {error}"),
        }
    }
}

impl Client {
    /// Publishes at QoS 1 and returns the PUBACK's reason (`None`: the
    /// connection closed instead).
    async fn publish(&mut self, topic: &str, payload: &str) -> Option<PubAckReason> {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.to_string()).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.eventloop.poll()).await.expect("a PUBACK") {
                Ok(Event::Incoming(Packet::PubAck(ack))) => return Some(ack.reason),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.eventloop.poll()).await.expect("a SUBACK") {
                Ok(Event::Incoming(Packet::SubAck(ack))) => return ack.return_codes[0],
                Ok(_) => {}
                Err(error) => panic!("subscribing to {filter}: {error}"),
            }
        }
    }

    /// The next message delivered within `within`, as (topic, payload).
    async fn next_message(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                    return Some((
                        String::from_utf8_lossy(&publish.topic).into_owned(),
                        String::from_utf8_lossy(&publish.payload).into_owned(),
                    ));
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

/// The identities both paths use, made with the operator's commands; the
/// elder whose home dev-b watches. Returns every name's secret.
fn set_up_identities(data: &str) -> HashMap<String, String> {
    let added = anxin_at(data, &ADD_WANG_XIUYING);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let mut secrets = issue(data, "devices", &["dev-a".into()]);
    // dev-b comes on a vendor's list, with the secret the vendor gave it.
    let list = format!("{data}/vendor.csv");
    std::fs::write(&list, "device_id,secret\ndev-b,vendor-secret-dev-b-0001\n").unwrap();
    let bad = format!("{data}/vendor-bad.csv");
    std::fs::write(&bad, "device_id,secret\ndev-b,vendor-secret-dev-b-0001\ndev-x,short\n").unwrap();
    let refused = anxin_at(data, &["devices", "import", &bad]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("vendor-bad.csv: line 3: the secret of dev-x"), "{}", text(&refused.stderr));
    let imported = anxin_at(data, &["devices", "import", &list]);
    assert_eq!(text(&imported.stdout).trim(), format!("imported 1 device from {list}"), "{}", text(&imported.stderr));
    secrets.insert("dev-b".into(), "vendor-secret-dev-b-0001".into());
    secrets.extend(issue(data, "consumers", &["watcher".into()]));
    let bridge =
        anxin_at(data, &["bridges", "add", "br-1", "--devices", "dev-c", "--out", &format!("{data}/br-1.json")]);
    assert!(bridge.status.success(), "{}", text(&bridge.stderr));
    let bridge: HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(format!("{data}/br-1.json")).unwrap()).unwrap();
    secrets.extend(bridge);
    let paired = anxin_at(data, &["devices", "pair", "dev-b", "--elder", "1"]);
    assert!(paired.status.success(), "{}", text(&paired.stderr));
    secrets
}

/// What both broker paths must do. `embedded`: the broker is Anxin's own
/// (it also refuses a client id that is not the username, and a device's
/// subscriptions; Mosquitto makes the client id the username and grants a
/// subscription but delivers nothing the ACL does not allow).
async fn attacks(mqtt: SocketAddr, data: &str, secrets: &HashMap<String, String>, embedded: bool) {
    let secret = |name: &str| secrets[name].as_str();

    // Nobody gets in without an identity.
    assert!(connect(mqtt, "anon", None).await.is_err(), "anonymous refused");
    assert!(connect(mqtt, "dev-z", Some(("dev-z", secret("dev-a")))).await.is_err(), "unprovisioned id refused");
    assert!(connect(mqtt, "dev-a", Some(("dev-a", "0123456789abcdef0123456789abcdef"))).await.is_err(), "wrong secret");
    if embedded {
        let taken = connect(mqtt, "dev-b", Some(("dev-a", secret("dev-a")))).await.err();
        assert_eq!(taken, Some(ConnectReturnCode::ClientIdentifierNotValid), "no one takes over dev-b's client id");
        // Nor the alert publisher's: its secret exists only in serve's memory.
        let publisher = "ANXIN-ALERTS";
        assert!(
            connect(mqtt, publisher, Some((publisher, secret("dev-a")))).await.is_err(),
            "the alert publisher's id"
        );
        assert!(
            connect(mqtt, "anxin-alerts", Some(("anxin-alerts", secret("dev-a")))).await.is_err(),
            "the old fixed id"
        );
    }

    // Each attempt on a connection of its own: Mosquitto 2.0.11 closes an
    // MQTT 5 connection right after refusing a publish (PUBACK 0x87), and a
    // client may see the close before the PUBACK.
    let publish = |name: &'static str, topic: &'static str, payload: String| async move {
        let mut client = connect(mqtt, name, Some((name, secret(name)))).await.expect("a provisioned client connects");
        client.publish(topic, &payload).await
    };
    let refused = |answer: Option<PubAckReason>| matches!(answer, None | Some(PubAckReason::NotAuthorized));
    let taken = |answer: Option<PubAckReason>| {
        matches!(answer, Some(PubAckReason::Success | PubAckReason::NoMatchingSubscribers))
    };

    // A speaks for B: refused, nothing stored for B; no fake alerts either.
    assert!(refused(publish("dev-a", "anxin/v1/dev/dev-b/event", SMOKE.into()).await), "A's smoke alarm for B");
    assert!(refused(publish("dev-a", "anxin/v1/dev/dev-b/summary", summary(1)).await), "A's summary for B");
    assert!(refused(publish("dev-a", "anxin/v1/alerts/振兴区/999", "{}".into()).await), "A's fake alert");
    assert!(taken(publish("dev-a", "anxin/v1/dev/dev-a/summary", summary(1)).await), "A's own summary");
    // A device reads nothing.
    let mut a = connect(mqtt, "dev-a", Some(("dev-a", secret("dev-a")))).await.expect("dev-a connects");
    let everything = a.subscribe("#").await;
    let alerts = a.subscribe("anxin/v1/alerts/#").await;
    if embedded {
        assert_eq!((everything, alerts), (SubscribeReasonCode::NotAuthorized, SubscribeReasonCode::NotAuthorized));
    }

    // The consumer cannot publish for a device, and reads alerts (one
    // connection per client id: a second one would take over the first).
    assert!(refused(publish("watcher", "anxin/v1/dev/dev-b/event", SMOKE.into()).await), "the consumer's smoke alarm");
    let mut watcher = connect(mqtt, "watcher", Some(("watcher", secret("watcher")))).await.expect("watcher connects");
    assert_eq!(watcher.subscribe("anxin/v1/alerts/#").await, SubscribeReasonCode::Success(QoS::AtLeastOnce));

    // The bridge publishes for its device and for no other.
    assert!(taken(publish("br-1", "anxin/v1/dev/dev-c/summary", summary(1)).await), "the bridge for its device");
    assert!(refused(publish("br-1", "anxin/v1/dev/dev-b/event", SMOKE.into()).await), "the bridge for another");

    // B's own smoke alarm: one alert, which reaches the consumer and not A.
    assert!(taken(publish("dev-b", "anxin/v1/dev/dev-b/event", SMOKE.into()).await), "B's own smoke alarm");
    let (topic, change) = watcher.next_message(Duration::from_secs(20)).await.expect("the consumer gets the alert");
    assert!(topic.starts_with("anxin/v1/alerts/振兴区/"), "{topic}");
    assert!(change.contains(r#""kind":"smoke""#), "{change}");
    assert_eq!(a.next_message(Duration::from_millis(500)).await, None, "a device reads no alerts");

    // What was acknowledged is stored (through Mosquitto, once the gateway has it).
    let store = Store::open(&Database::in_data_dir(std::path::Path::new(data))).await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..100 {
        keys = store.message_keys().await.unwrap();
        if keys.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |device: &str| keys.iter().filter(|(d, _, _)| d == device).count();
    assert_eq!((of("dev-a"), of("dev-b"), of("dev-c")), (1, 1, 1), "only what each may send is stored: {keys:?}");
    let alerts = store.alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(alerts.len(), 1, "one alert, B's own: {alerts:?}");
    assert!(store.device("dev-z").await.unwrap().is_none(), "no unclaimed device from an invented id");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_serve_s_broker_only_a_home_s_own_sensors_speak_for_it() {
    let folder = private_folder("e2e-identity-serve");
    let data = folder.to_str().unwrap();
    let secrets = set_up_identities(data);
    let app = crate::spawn_app(&folder).await;
    let mqtt = app.mqtt;
    attacks(mqtt, data, &secrets, true).await;

    // An MQTT 3.1.1 node cannot be told "refused": it is disconnected, never acknowledged.
    let mut options = rumqttc::MqttOptions::new("dev-a", mqtt.ip().to_string(), mqtt.port());
    options.set_credentials("dev-a", secrets["dev-a"].as_str());
    let (v3, mut v3_loop) = rumqttc::AsyncClient::new(options, 10);
    v3.publish("anxin/v1/dev/dev-b/event", rumqttc::QoS::AtLeastOnce, false, SMOKE).await.unwrap();
    let acknowledged = loop {
        match tokio::time::timeout(Duration::from_secs(10), v3_loop.poll()).await.expect("an answer") {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => break true,
            Ok(_) => {}
            Err(_) => break false,
        }
    };
    assert!(!acknowledged, "the MQTT 3.1.1 connection is closed before any PUBACK");

    // Revoked while connected: its next publish is refused, and it cannot come back.
    let mut a = connect(mqtt, "dev-a", Some(("dev-a", &secrets["dev-a"]))).await.expect("dev-a connects");
    let revoked = anxin_at(data, &["devices", "revoke", "dev-a"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let mut refused = false;
    for seq in 10..40 {
        if a.publish("anxin/v1/dev/dev-a/summary", &summary(seq)).await == Some(PubAckReason::NotAuthorized) {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refused, "the revoked device's publish is refused once the broker notices (within seconds)");
    assert_eq!(
        connect(mqtt, "dev-a", Some(("dev-a", &secrets["dev-a"]))).await.err(),
        Some(ConnectReturnCode::BadUserNamePassword)
    );

    let listed = text(&anxin_at(data, &["devices", "list"]).stdout);
    let state_of = |device: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(&format!("{device} ")))
            .map(|line| line.split_whitespace().nth(1).unwrap_or("").to_string())
    };
    assert_eq!(
        (state_of("dev-a").as_deref(), state_of("dev-b").as_deref()),
        (Some("revoked"), Some("provisioned")),
        "{listed}"
    );

    // Issued anew (a replacement node): the old connection stays refused, the new secret gets in.
    let renewed = issue(data, "devices", &["dev-a".to_string()]);
    for seq in 40..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = a.publish("anxin/v1/dev/dev-a/summary", &summary(seq)).await;
        assert_eq!(
            answer,
            Some(PubAckReason::NotAuthorized),
            "the old secret's connection, after the new one is issued"
        );
    }
    let mut renewed_a = connect(mqtt, "dev-a", Some(("dev-a", &renewed["dev-a"]))).await.expect("the new secret");
    let answer = renewed_a.publish("anxin/v1/dev/dev-a/summary", &summary(60)).await;
    assert_eq!(answer, Some(PubAckReason::Success));

    // Every refusal is counted by reason.
    let metrics = crate::serve::http_get(app.http, "/metrics").await;
    for reason in ["anonymous", "bad_credentials", "client_id_mismatch", "publish_not_allowed", "subscribe_not_allowed"]
    {
        assert!(metrics.contains(&format!("anxin_broker_refused_total{{reason=\"{reason}\"}}")), "{reason}: {metrics}");
    }
    app.stop().await;
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mosquitto_configured_from_the_export_only_a_home_s_own_sensors_speak_for_it() {
    let folder = private_folder("e2e-identity-mosquitto");
    let data = folder.to_str().unwrap();
    let mut secrets = set_up_identities(data);
    secrets.extend(issue(data, "gateways", &["gw-1".into()]));
    let export = folder.join("mosquitto");
    let exported = anxin_at(data, &["devices", "export", "--mosquitto", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let settings = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/mosquitto.conf")).unwrap();
    let broker = Broker::start_deployment(&settings, &export);

    // The gateway with its own identity (its other connections are gw-1-events and gw-1-alerts).
    let gateway = Process::start(&[
        "--data-dir",
        data,
        "gateway",
        "--broker",
        &broker.url(),
        "--broker-username",
        "gw-1",
        "--broker-password",
        &secrets["gw-1"],
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let metrics = gateway.address_after("metrics on http://");
    let mut connected = false;
    for _ in 0..250 {
        if crate::serve::http_get(metrics, "/metrics").await.contains("anxin_broker_connected 1") {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(connected, "the gateway connected with its identity");
    attacks(broker.address, data, &secrets, false).await;

    // Revoked: exported again and reloaded, the device cannot come back.
    let revoked = anxin_at(data, &["devices", "revoke", "dev-a"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let exported = anxin_at(data, &["devices", "export", "--mosquitto", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    broker.reload();
    let mut refused = false;
    for _ in 0..50 {
        if connect(broker.address, "dev-a", Some(("dev-a", &secrets["dev-a"]))).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a revoked device is refused once Mosquitto has reloaded the export");
    let _ = gateway.terminate();
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reach_serve_over_tls_and_a_plain_listener_off_this_machine_is_refused() {
    let folder = private_folder("e2e-identity-tls");
    let data = folder.to_str().unwrap();
    anxin_testkit::make_test_certificates(&folder);
    let file = |name: &str| folder.join(name).to_str().unwrap().to_string();

    // Plain MQTT off loopback: refused at start, with the way out.
    let refused = anxin_at(data, &["serve", "--mqtt-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"]);
    assert_eq!(refused.status.code(), Some(2));
    let message = text(&refused.stderr);
    assert!(
        message.contains("refusing plain MQTT on 0.0.0.0:0") && message.contains("--allow-plaintext-mqtt"),
        "{message}"
    );
    let half = anxin_at(
        data,
        &[
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--mqtt-tls-cert",
            &file("server.crt"),
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    assert!(text(&half.stderr).contains("needs both --mqtt-tls-cert and --mqtt-tls-key"), "{}", text(&half.stderr));
    let not_pem = anxin_at(
        data,
        &[
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--mqtt-tls-listen",
            "127.0.0.1:0",
            "--mqtt-tls-cert",
            &file("ext.cnf"),
            "--mqtt-tls-key",
            &file("server.key"),
        ],
    );
    assert!(text(&not_pem.stderr).contains("ext.cnf for MQTT over TLS"), "{}", text(&not_pem.stderr));

    let serve = Process::start(&[
        "--data-dir",
        data,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--mqtt-tls-listen",
        "127.0.0.1:0",
        "--mqtt-tls-cert",
        &file("server.crt"),
        "--mqtt-tls-key",
        &file("server.key"),
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let tls = serve.address_after("(TLS on ");
    // The simulator's nodes, over TLS, trusting the test CA.
    let simulated = anxin_at(
        data,
        &[
            "simulate",
            "--broker",
            &format!("mqtts://{tls}"),
            "--broker-ca",
            &file("ca.crt"),
            "--homes",
            "3",
            "--speed",
            "600",
            "--duration",
            "2s",
            "--id-prefix",
            "tls",
        ],
    );
    assert!(simulated.status.success(), "{}", text(&simulated.stderr));
    let report = text(&simulated.stdout);
    assert!(report.starts_with("provisioned 3 devices for this run"), "{report}");
    assert!(report.contains("\n3 homes: ") && report.contains("0 failed connection attempts"), "{report}");
    // Without the CA, nothing connects, and the report says why.
    let untrusting = anxin_at(
        data,
        &[
            "simulate",
            "--broker",
            &format!("mqtts://{tls}"),
            "--homes",
            "1",
            "--duration",
            "1s",
            "--id-prefix",
            "untrusting",
        ],
    );
    let report = text(&untrusting.stdout);
    assert!(report.contains(" 0 connections") && report.contains("; the first failed attempt: "), "{report}");
    assert!(report.to_lowercase().contains("certificate"), "the reason names the certificate: {report}");
    let store = Store::open(&Database::in_data_dir(&folder)).await.unwrap();
    let keys = store.message_keys().await.unwrap();
    assert!(["tls-00001", "tls-00002", "tls-00003"].iter().all(|d| keys.iter().any(|(k, _, _)| k == d)), "{keys:?}");
    store.close().await;
    // Plain MQTT on the TLS port gets nowhere, nor does a client that does not trust the CA.
    let mut options = MqttOptions::new("tls-00001", tls.ip().to_string(), tls.port());
    options.set_credentials("tls-00001", "plain on the TLS port");
    let (_plain, mut plain_loop) = AsyncClient::new(options, 10);
    let answer = tokio::time::timeout(Duration::from_secs(10), plain_loop.poll()).await.expect("an answer");
    assert!(!matches!(answer, Ok(Event::Incoming(Packet::ConnAck(_)))), "plain MQTT on the TLS port: {answer:?}");
    let untrusted = anxin_at(
        data,
        &["simulate", "--broker", &format!("mqtts://{tls}"), "--homes", "1", "--duration", "1s", "--id-prefix", "tls"],
    );
    assert!(text(&untrusted.stdout).contains("0 messages acknowledged"), "{}", text(&untrusted.stdout));
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(folder);
}

/// `serve` started under an open-file limit of 256 (soft) raises it itself:
/// 600 idle TCP connections then starve nothing, and a device's publish is
/// acknowledged. Past --mqtt-max-connections a connection is closed at once,
/// counted, and the clients already in go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_starves_no_device() {
    let folder = private_folder("e2e-identity-flood");
    let data = folder.to_str().unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("flood-{i}")).collect();
    let secrets = issue(data, "devices", &names);
    let mut child = std::process::Command::new("sh")
        .args(["-c", r#"ulimit -Sn 256 && exec "$0" "$@""#, env!("CARGO_BIN_EXE_anxin")])
        .args(["--data-dir", data, "serve", "--mqtt-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--mqtt-max-connections", "5"])
        .env("ANXIN_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut ready).unwrap();
    // Read on: serve ends quietly when its output is closed.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let find = |marker: &str| -> SocketAddr {
        let rest = &ready[ready.find(marker).unwrap_or_else(|| panic!("{marker} in {ready}")) + marker.len()..];
        rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect::<String>().parse().unwrap()
    };
    let (mqtt, http) = (find("MQTT broker on "), find("console on http://"));

    // It raised its own limit to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files: Vec<&str> =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_eq!(open_files[3], open_files[4], "soft open-file limit raised to the hard one: {limits}");
    assert_ne!(open_files[3], "256", "{limits}");

    let idle: Vec<std::net::TcpStream> = (0..600).map(|_| std::net::TcpStream::connect(mqtt).unwrap()).collect();
    let mut clients = Vec::new();
    for name in &names[..5] {
        let mut client = connect(mqtt, name, Some((name, &secrets[name]))).await.expect("a device connects");
        let answer = client.publish(&format!("anxin/v1/dev/{name}/summary"), &summary(1)).await;
        assert_eq!(answer, Some(PubAckReason::Success), "{name} acknowledged beside 600 idle connections");
        clients.push(client);
    }
    drop(idle);
    // The sixth is over the maximum: closed at once; the five go on.
    let mut options = MqttOptions::new("flood-5", mqtt.ip().to_string(), mqtt.port());
    options.set_credentials("flood-5", secrets["flood-5"].as_str());
    let (_sixth, mut sixth_loop) = AsyncClient::new(options, 10);
    let answer = tokio::time::timeout(Duration::from_secs(10), sixth_loop.poll()).await.expect("an answer");
    assert!(!matches!(answer, Ok(Event::Incoming(Packet::ConnAck(_)))), "past --mqtt-max-connections: {answer:?}");
    let answer = clients[0].publish("anxin/v1/dev/flood-0/summary", &summary(2)).await;
    assert_eq!(answer, Some(PubAckReason::Success), "the ones in go on");
    let mut counted = false;
    for _ in 0..50 {
        let metrics = crate::serve::http_get(http, "/metrics").await;
        if metrics
            .lines()
            .any(|line| line.starts_with("anxin_broker_connections_refused_total") && !line.ends_with(" 0"))
        {
            assert!(metrics.contains("anxin_open_files_limit"), "{metrics}");
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "the refused connection is counted");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(folder);
}

/// One plain HTTP/1.1 exchange with `address`; the whole response.
async fn exchange(address: SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// A wrong password for `name` through the login form, as a browser sends
/// it; the status line.
async fn wrong_sign_in(http: SocketAddr, name: String) -> String {
    let form = exchange(http, "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    let login = form
        .lines()
        .filter_map(|line| line.strip_prefix("set-cookie: anxin_login="))
        .find_map(|value| value.split(';').next())
        .unwrap_or_default()
        .to_string();
    let csrf = form.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    let body = format!("csrf={csrf}&name={name}&password=not+the+password+at+all&next=%2F");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: anxin_login={login}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(http, request).await.lines().next().unwrap_or_default().to_string()
}

/// The median of some latencies, in milliseconds.
fn median_ms(latencies: &mut [Duration]) -> f64 {
    latencies.sort_unstable();
    latencies.get(latencies.len() / 2).map_or(f64::NAN, |median| median.as_secs_f64() * 1_000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacks_keep_coming_during_a_sign_in_flood() {
    let folder = private_folder("e2e-sign-in-flood");
    let data = folder.to_str().unwrap();
    let secrets = issue(data, "devices", &["flood-node".to_string()]);
    let app = crate::spawn_app(&folder).await;
    let mut node = connect(app.mqtt, "flood-node", Some(("flood-node", &secrets["flood-node"]))).await.unwrap();
    // A summary every 20 ms, within the node's burst (256) for the whole test.
    let pace = Duration::from_millis(20);
    let mut seq = 0;
    let mut idle = Vec::new();
    for _ in 0..30 {
        seq += 1;
        let sent = std::time::Instant::now();
        assert_eq!(node.publish("anxin/v1/dev/flood-node/summary", &summary(seq)).await, Some(PubAckReason::Success));
        idle.push(sent.elapsed());
        tokio::time::sleep(pace).await;
    }
    // Sixty wrong passwords at once, for sixty names: argon2 for each that
    // is not held back by the throttle.
    let http = app.http;
    let flood =
        tokio::spawn(futures_util::future::join_all((0..60).map(|i| wrong_sign_in(http, format!("guess-{i}")))));
    let mut during = Vec::new();
    while !flood.is_finished() || during.is_empty() {
        seq += 1;
        let sent = std::time::Instant::now();
        let answer = node.publish("anxin/v1/dev/flood-node/summary", &summary(seq)).await;
        assert_eq!(answer, Some(PubAckReason::Success), "a PUBACK during the flood");
        during.push(sent.elapsed());
        assert!(during.len() < 200, "the flood ends");
        tokio::time::sleep(pace).await;
    }
    let answers = flood.await.unwrap();
    assert!(
        answers.iter().all(|status| status.contains(" 401 ") || status.contains(" 429 ")),
        "every sign-in answered, refused: {answers:?}"
    );
    let (idle_ms, during_ms) = (median_ms(&mut idle), median_ms(&mut during));
    // A figure for the README, not a threshold: these machines are shared.
    eprintln!(
        "PUBACK median {idle_ms:.2} ms idle, {during_ms:.2} ms during a sign-in flood ({:.1}×; {} publishes during it)",
        during_ms / idle_ms,
        during.len()
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(folder);
}
