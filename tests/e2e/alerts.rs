//! The alert engine end to end: a simulated smoke alarm through the embedded
//! broker becomes one open critical alert and one MQTT alert message; staff
//! handle it from the command line and every change goes out on MQTT.

use std::sync::mpsc;
use std::time::Duration;

use anxin_testkit::{Broker, free_port, private_folder};

use crate::serve::{Process, gateway_args, start_connected};
use crate::{ADD_WANG_XIUYING, anxin, anxin_at, text};

fn anxin_in(data: &str, args: &[&str]) -> String {
    let output = anxin_at(data, args);
    assert!(output.status.success(), "anxin {args:?}: {}", text(&output.stderr));
    text(&output.stdout)
}

/// A plain HTTP GET (optionally with a bearer token); the whole response.
fn http_get(address: &str, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Every alert change published on the broker, as JSON.
/// `secret`: the consumer's, on `serve`'s own broker.
fn watch_alerts(port: u16, client_id: &str, filter: &str, secret: Option<&str>) -> mpsc::Receiver<serde_json::Value> {
    let (sender, received) = mpsc::channel();
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(secret) = secret {
        options.set_credentials(client_id, secret);
    }
    let (client, mut connection) = rumqttc::Client::new(options, 100);
    client.subscribe(filter, rumqttc::QoS::AtLeastOnce).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _client = client;
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                    let mut change: serde_json::Value = serde_json::from_slice(&publish.payload).unwrap();
                    change["topic"] = publish.topic.clone().into();
                    let _ = sender.send(change);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscribed to alerts");
    received
}

#[test]
fn a_simulated_smoke_alarm_becomes_one_critical_alert_handled_from_the_command_line() {
    let folder = private_folder("e2e-alerts");
    let data = folder.to_str().unwrap();
    anxin_in(data, &ADD_WANG_XIUYING);
    anxin_in(data, &["devices", "pair", "e2e-00001", "--elder", "1"]);
    let mqtt_port = free_port();
    let mqtt = format!("127.0.0.1:{mqtt_port}");
    let http = format!("127.0.0.1:{}", free_port());
    let serve = Process::start(&["--data-dir", data, "serve", "--mqtt-listen", &mqtt, "--http-listen", &http]);
    let consumer = crate::issue(data, "consumers", &["e2e-alert-watcher".to_string()]);
    let changes =
        watch_alerts(mqtt_port, "e2e-alert-watcher", "anxin/v1/alerts/#", Some(&consumer["e2e-alert-watcher"]));

    let output = anxin(&[
        "--data-dir",
        data,
        "simulate",
        "--broker",
        &format!("mqtt://{mqtt}"),
        "--homes",
        "3",
        "--speed",
        "600",
        "--duration",
        "2s",
        "--id-prefix",
        "e2e",
        "--scenario",
        "smoke:1@1m",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let opened = changes.recv_timeout(Duration::from_secs(15)).expect("an alert message on MQTT");
    assert_eq!(opened["action"], "opened");
    assert_eq!(opened["kind"], "smoke");
    assert_eq!(opened["severity"], "critical");
    assert_eq!(opened["elder_id"], 1);
    let id = opened["alert_id"].as_i64().unwrap();
    assert_eq!(opened["topic"], format!("anxin/v1/alerts/振兴区/{id}"));
    assert!(opened.get("elder_name").is_none(), "no names on the broker");

    let open: Vec<serde_json::Value> =
        serde_json::from_str(&anxin_in(data, &["alerts", "list", "--open", "--json"])).unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0]["kind"].as_str(), open[0]["status"].as_str()), (Some("smoke"), Some("open")));

    // The same alert through the JSON API of the running serve, for an on-call worker of the county.
    let oncall = crate::user_with_own_password(data, &["值班员 王", "--role", "oncall", "--region", "振兴区"]);
    tokio::runtime::Runtime::new().unwrap().block_on(oncall);
    let token = anxin_in(data, &["tokens", "issue", "值班员 王"]).trim().to_string();
    let listed = http_get(&http, "/api/v1/alerts?open=true", Some(&token));
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(listed.contains(r#""kind":"smoke""#) && listed.contains("王秀英"), "{listed}");
    assert!(http_get(&http, "/api/v1/alerts", None).starts_with("HTTP/1.1 401"));

    assert!(
        anxin_in(data, &["alerts", "ack", &id.to_string(), "--by", "值班员 李"]).contains("acknowledged by 值班员 李")
    );
    let acknowledged = changes.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!((acknowledged["action"].as_str(), acknowledged["alert_id"].as_i64()), (Some("acknowledged"), Some(id)));

    let refused =
        anxin(&["--data-dir", data, "alerts", "resolve", &id.to_string(), "--by", "李", "--outcome", "burnt"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--outcome \"burnt\" is not one of: visited, reached_by_phone"));
    anxin_in(
        data,
        &["alerts", "resolve", &id.to_string(), "--by", "值班员 李", "--outcome", "false_alarm", "--note", "做饭油烟"],
    );
    let resolved = changes.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!((resolved["action"].as_str(), resolved["outcome"].as_str()), (Some("resolved"), Some("false_alarm")));
    let shown = anxin_in(data, &["alerts", "show", &id.to_string()]);
    for line in ["opened", "acknowledged", "resolved", "false_alarm: 做饭油烟"] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    assert!(anxin_in(data, &["alerts", "list", "--open"]).contains("no open alerts"));

    assert!(
        anxin_in(data, &["elders", "away", "1", "--until", "2099-01-31", "--reason", "住院"])
            .contains("away until 2099-02-01 00:00")
    );
    assert!(anxin_in(data, &["visits", "list", "--elder", "1"]).contains("no visits recorded for elder 1"));
    let (_, status) = serve.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_publishes_alert_changes_on_an_external_broker() {
    let broker = Broker::start();
    let folder = private_folder("e2e-gateway-alerts");
    let data = folder.to_str().unwrap();
    // A county of its own: the broker may be shared with other tests.
    anxin_in(
        data,
        &[
            "elders",
            "add",
            "--name",
            "李桂兰",
            "--county",
            "网关测试县",
            "--township",
            "一乡",
            "--village",
            "一村",
            "--address",
            "一号",
            "--categories",
            "empty_nest",
        ],
    );
    anxin_in(data, &["devices", "pair", "e2e-gw-node", "--elder", "1"]);
    let changes = watch_alerts(broker.port(), "e2e-gateway-alert-watcher", "anxin/v1/alerts/网关测试县/#", None);
    let gateway = start_connected(&gateway_args(data, &broker.url(), "e2e-gateway-alerts")).await;

    let mut options = rumqttc::MqttOptions::new("e2e-gw-node", broker.host(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (node, mut connection) = rumqttc::AsyncClient::new(options, 10);
    let payload = r#"{"v":1,"boot":9,"seq":1,"up":100,"kind":"help","state":"pressed"}"#;
    node.publish("anxin/v1/dev/e2e-gw-node/event", rumqttc::QoS::AtLeastOnce, false, payload).await.unwrap();
    tokio::spawn(async move { while connection.poll().await.is_ok() {} });

    let opened = tokio::task::spawn_blocking(move || changes.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the help alert on the external broker");
    assert_eq!((opened["action"].as_str(), opened["kind"].as_str()), (Some("opened"), Some("help")));
    assert_eq!(opened["severity"], "critical");
    assert!(opened.get("detail").is_none(), "codes and ids on the broker, no sentences: {opened}");
    let (_, status) = gateway.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(folder);
}
