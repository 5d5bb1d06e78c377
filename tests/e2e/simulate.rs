//! `anxin simulate`, as the demo driver and load generator is used.

use std::time::Duration;

use anxin_protocol::{EventKind, Payload, SmokeState, Topic, decode};
use anxin_testkit::Broker;

use crate::{anxin, text};

#[test]
fn simulate_drives_homes_into_a_real_broker_and_reports_what_was_acknowledged() {
    let broker = Broker::start();
    let (sender, received) = std::sync::mpsc::channel();
    let mut options = rumqttc::MqttOptions::new("e2e-subscriber", broker.host(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = rumqttc::Client::new(options, 100);
    client.subscribe("anxin/v1/dev/e2e-00001/event", rumqttc::QoS::AtLeastOnce).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                    let topic = Topic::parse(&publish.topic).unwrap();
                    let _ = sender.send(decode(topic.channel, &publish.payload).unwrap());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // The simulator provisions its own devices in the database it is given.
    let data = anxin_testkit::private_folder("e2e-simulate");
    let output = anxin(&[
        "--data-dir",
        data.to_str().unwrap(),
        "simulate",
        "--broker",
        &broker.url(),
        "--homes",
        "5",
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
    let report = text(&output.stdout);
    let (provisioned, report) = report.split_once('\n').unwrap();
    assert_eq!(provisioned, "provisioned 5 devices for this run, e2e-00001 … e2e-00005, each with a fresh secret");
    assert!(report.starts_with("5 homes: "), "{report}");
    assert!(report.contains("0 dropped by full outboxes"), "{report}");

    let smoke = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(smoke, Payload::Event(e) if e.kind == EventKind::Smoke(SmokeState::Alarm)), "{smoke:?}");
    drop(client);
}

#[test]
fn a_broker_elsewhere_is_refused_without_allow_remote() {
    let output = anxin(&["simulate", "--broker", "mqtt://192.0.2.7:1883", "--duration", "1s"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        "error: broker 192.0.2.7:1883 is not on this machine; pass --allow-remote to simulate against it"
    );
}

#[test]
fn bad_arguments_say_what_is_wrong() {
    let output = anxin(&["simulate", "--scenario", "flood:1"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unknown kind; use smoke, help, silent, door-night, cold or offline"));

    let output = anxin(&["simulate", "--homes", "2", "--scenario", "help:3", "--duration", "1s"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("scenario for home 3, but only 2 homes are simulated"));

    let output = anxin(&["simulate", "--duration", "soon"]);
    assert!(text(&output.stderr).contains("is not a duration"));

    let output = anxin(&["simulate", "--broker", "tcp://localhost"]);
    assert!(text(&output.stderr).contains("is not of the form mqtt://HOST:PORT"));
}

#[test]
fn help_describes_the_simulator() {
    let output = anxin(&["simulate", "--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for flag in
        ["--broker", "--broker-ca", "--credentials", "--homes", "--speed", "--duration", "--scenario", "--allow-remote"]
    {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
