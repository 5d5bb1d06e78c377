//! Simulated homes against a real Mosquitto, observed by a real subscriber.

use std::collections::BTreeMap;
use std::time::Duration;

use anxin_protocol::{DoorState, EventKind, Payload, SmokeState, StatusState, Topic, decode};
use anxin_simulator::{SimulateOptions, run};
use anxin_testkit::Broker;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// Everything the devices `{prefix}-00001` … `{prefix}-{homes}` publish, in
/// arrival order. Only those: the broker may be shared with other tests.
async fn record(broker: &Broker, prefix: &str, homes: usize) -> mpsc::UnboundedReceiver<(Topic, Payload)> {
    let mut options = MqttOptions::new(format!("sim-test-{prefix}-subscriber"), broker.host(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let filters = (1..=homes)
        .map(|home| rumqttc::SubscribeFilter::new(format!("anxin/v1/dev/{prefix}-{home:05}/+"), QoS::AtLeastOnce));
    client.subscribe_many(filters).await.unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let _client = client;
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = ready_tx.try_send(());
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let topic = Topic::parse(&publish.topic).expect("simulator topics follow the contract");
                    let payload =
                        decode(topic.channel, &publish.payload).expect("simulator payloads follow the contract");
                    let _ = sender.send((topic, payload));
                }
                _ => {}
            }
        }
    });
    ready_rx.recv().await.unwrap();
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_shows_on_the_wire_and_nothing_acknowledged_is_missing() {
    let broker = Broker::start();
    let mut received = record(&broker, "it", 12).await;
    let options = SimulateOptions {
        broker_host: broker.host(),
        broker_port: broker.port(),
        homes: 12,
        duration: Duration::from_secs(4),
        // 10 simulated minutes per real second: 40 minutes, 8 summaries each.
        speed: 600.0,
        id_prefix: "it".into(),
        scenarios: ["help:1", "smoke:2@1m", "offline:3@10m", "cold:4", "silent:5", "door-night:6@2m"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        ..SimulateOptions::default()
    };
    let report = run(options).await.unwrap();

    // Let the last deliveries and the Last Will arrive.
    let mut by_device: BTreeMap<String, Vec<Payload>> = BTreeMap::new();
    while let Ok(Some((topic, payload))) = tokio::time::timeout(Duration::from_secs(2), received.recv()).await {
        by_device.entry(topic.device_id.to_string()).or_default().push(payload);
    }
    let events = |device: &str| -> Vec<EventKind> {
        by_device[device].iter().filter_map(|p| if let Payload::Event(e) = p { Some(e.kind) } else { None }).collect()
    };
    let summaries = |device: &str| -> Vec<anxin_protocol::Summary> {
        by_device[device].iter().filter_map(|p| if let Payload::Summary(s) = p { Some(*s) } else { None }).collect()
    };

    assert!(events("it-00001").contains(&EventKind::Help));
    assert!(events("it-00002").contains(&EventKind::Smoke(SmokeState::Alarm)));
    // Home 3's node died at 10 minutes: its Last Will is the last thing heard.
    let last = by_device["it-00003"].last().unwrap();
    assert!(matches!(last, Payload::Status(s) if s.state == StatusState::Offline), "{last:?}");
    assert!(summaries("it-00003").len() <= 2);
    // Home 4's room is at 8 °C.
    assert!(summaries("it-00004").iter().all(|s| s.temp_dc == Some(80)));
    // Home 5 is silent but alive: summaries with no motion and no door.
    let silent = summaries("it-00005");
    assert!(silent.len() >= 6 && silent.iter().all(|s| s.motion == 0 && s.door_opens == 0));
    // Home 6's door was opened at 2 minutes and never closed again.
    let door = events("it-00006");
    let opened = door.iter().rposition(|k| *k == EventKind::Door(DoorState::Open)).unwrap();
    assert!(!door[opened..].contains(&EventKind::Door(DoorState::Closed)));
    // Every home but the dead one sent a summary every 5 simulated minutes.
    for home in [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12] {
        assert!(summaries(&format!("it-{home:05}")).len() >= 6, "home {home}");
    }

    // What the broker acknowledged to the nodes is what the subscriber got.
    let received_events: u64 = by_device.keys().map(|d| events(d).len() as u64).sum();
    let received_summaries: u64 = by_device.keys().map(|d| summaries(d).len() as u64).sum();
    assert_eq!((report.events, report.summaries), (received_events, received_summaries), "{report}");
    assert_eq!(report.homes, 12);
    assert_eq!(report.connection_failures, 0);
    let online =
        by_device.values().flatten().filter(|p| matches!(p, Payload::Status(s) if s.state == StatusState::Online));
    assert_eq!(online.count(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homes_keep_their_messages_while_the_broker_is_away_and_deliver_them_after() {
    // No broker at this port yet: the homes queue and back off.
    let port = anxin_testkit::free_port();
    let options = SimulateOptions {
        broker_host: "127.0.0.1".into(),
        broker_port: port,
        homes: 3,
        duration: Duration::from_secs(5),
        speed: 600.0,
        id_prefix: "away".into(),
        ..SimulateOptions::default()
    };
    let simulation = tokio::spawn(run(options));
    // After 2 s (20 simulated minutes, 4 summaries each) the broker comes up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let broker = tokio::task::spawn_blocking(move || Broker::start_private_on(Some(port))).await.unwrap();
    let mut received = record(&broker, "away", 3).await;
    let report = simulation.await.unwrap().unwrap();

    assert!(report.connection_failures >= 3, "{report}");
    assert!(report.to_string().contains("; the first failed attempt: "), "the report says why: {report}");
    assert_eq!((report.dropped_by_outbox, report.still_queued), (0, 0), "{report}");
    let mut seqs: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    while let Ok(Some((topic, payload))) = tokio::time::timeout(Duration::from_secs(2), received.recv()).await {
        let seq = match payload {
            Payload::Summary(summary) => summary.seq,
            Payload::Event(event) => event.seq,
            Payload::Status(_) => continue,
        };
        seqs.entry(topic.device_id.to_string()).or_default().push(seq);
    }
    // The subscriber joined after the homes connected, so it may miss the very
    // first deliveries; what it saw must be in order and without gaps, and
    // reach back to the summaries queued while the broker was away.
    assert_eq!(seqs.len(), 3, "{seqs:?}");
    for (device, seqs) in &seqs {
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1), "{device}: {seqs:?}");
        assert!(seqs.len() >= 5, "{device}: {seqs:?}");
    }
}

/// With a drain, a run whose broker comes back only after its duration is
/// over still delivers what its homes queued meanwhile (without one, it ends
/// with them queued, as above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_run_delivers_what_its_homes_hold_once_the_broker_is_back() {
    let port = anxin_testkit::free_port();
    let options = SimulateOptions {
        broker_host: "127.0.0.1".into(),
        broker_port: port,
        homes: 3,
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(30),
        speed: 600.0,
        id_prefix: "drain".into(),
        ..SimulateOptions::default()
    };
    let simulation = tokio::spawn(run(options));
    // The duration (20 simulated minutes, four summaries each) passes with
    // no broker; it comes up a second later, during the drain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _broker = tokio::task::spawn_blocking(move || Broker::start_private_on(Some(port))).await.unwrap();
    let report = simulation.await.unwrap().unwrap();

    assert!(report.connection_failures >= 3, "{report}");
    assert_eq!((report.dropped_by_outbox, report.still_queued), (0, 0), "{report}");
    assert!(report.summaries >= 9, "each home's summaries, delivered in the drain: {report}");
}

/// Each run is a power-up: the same homes (same seed) come back with a new
/// `boot`, so what they send is new to the gateway, not a redelivery of the
/// last run's `(boot, seq)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_boots_the_homes_afresh() {
    let broker = Broker::start();
    let options = SimulateOptions {
        broker_host: broker.host(),
        broker_port: broker.port(),
        homes: 2,
        duration: Duration::from_secs(1),
        speed: 600.0,
        id_prefix: "reboot".into(),
        ..SimulateOptions::default()
    };
    let mut boots = Vec::new();
    for _ in 0..2 {
        let mut received = record(&broker, "reboot", 2).await;
        run(options.clone()).await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        while let Ok(Some((_, payload))) = tokio::time::timeout(Duration::from_secs(1), received.recv()).await {
            if let Payload::Summary(summary) = payload {
                seen.insert(summary.boot);
            }
        }
        assert_eq!(seen.len(), 2, "each home boots once per run");
        boots.push(seen);
    }
    assert!(boots[0].is_disjoint(&boots[1]), "the second run reused a boot: {boots:?}");
}
