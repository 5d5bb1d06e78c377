//! The firmware's own MQTT path (node → link loop → rust-mqtt → TCP) against
//! a real Mosquitto, with a real subscriber decoding what arrived.

use std::time::{Duration, Instant};

use anxin_firmware::board::Sensors;
use anxin_firmware::link::{self, Clock, Parts};
use anxin_firmware::mqtt::{Credentials, Dial, MqttConnector};
use anxin_firmware::{Node, NodeConfig, Observation};
use anxin_protocol::{Channel, DeviceId, EventKind, Payload, StatusState, Topic, decode};
use anxin_testkit::Broker;
use embedded_io_adapters::tokio_1::FromTokio;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct TcpDial(std::net::SocketAddr);

impl Dial for TcpDial {
    type Connection = FromTokio<TcpStream>;
    type Error = std::io::Error;
    async fn dial(&mut self) -> Result<Self::Connection, Self::Error> {
        let stream = TcpStream::connect(self.0).await?;
        stream.set_nodelay(true)?;
        Ok(FromTokio::new(stream))
    }
}

struct HostClock(Instant);

impl Clock for HostClock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap()
    }
}

struct TokioDelay;

impl embedded_hal_async::delay::DelayNs for TokioDelay {
    async fn delay_ns(&mut self, ns: u32) {
        tokio::time::sleep(Duration::from_nanos(u64::from(ns))).await;
    }
}

/// A home where the elder presses the help button 200 ms after power-up.
struct HelpAfter200Ms {
    pressed: bool,
}

impl Sensors for HelpAfter200Ms {
    fn sample(&mut self, now_ms: u64, observe: &mut dyn FnMut(Observation)) {
        if now_ms >= 200 && !self.pressed {
            self.pressed = true;
            observe(Observation::Temperature(198));
            observe(Observation::HelpPressed);
        }
    }
}

/// Subscribes to every device topic and forwards (topic, payload).
async fn subscriber(broker: &Broker) -> (AsyncClient, mpsc::UnboundedReceiver<(Topic, Payload)>) {
    let mut options = MqttOptions::new("fw-it-subscriber", broker.host(), broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (sender, receiver) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed_rx) = mpsc::channel(1);
    // Only this test's device: the broker may be shared with other tests.
    client.subscribe("anxin/v1/dev/fw-it-node/+", QoS::AtLeastOnce).await.unwrap();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = subscribed_tx.try_send(());
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let topic = Topic::parse(&publish.topic).unwrap();
                    let payload = decode(topic.channel, &publish.payload).unwrap();
                    let _ = sender.send((topic, payload));
                }
                _ => {}
            }
        }
    });
    subscribed_rx.recv().await.unwrap();
    (client, receiver)
}

async fn next(receiver: &mut mpsc::UnboundedReceiver<(Topic, Payload)>) -> (Topic, Payload) {
    tokio::time::timeout(Duration::from_secs(15), receiver.recv()).await.expect("a message within 15 s").unwrap()
}

#[tokio::test]
async fn the_node_publishes_over_tcp_and_its_last_will_fires_when_it_vanishes() {
    let broker = Broker::start();
    let (_client, mut received) = subscriber(&broker).await;

    let device_id = DeviceId::parse("fw-it-node").unwrap();
    let mut node: Node = Node::new(device_id.clone(), 0x1234_5678, 0, NodeConfig::default());
    let mut connector = MqttConnector::new(TcpDial(broker.address), Credentials::default());
    let mut sensors = HelpAfter200Ms { pressed: false };
    let mut clock = HostClock(Instant::now());
    let mut delay = TokioDelay;
    let mut random = || 7u32;
    let parts = Parts {
        connector: &mut connector,
        sensors: &mut sensors,
        clock: &mut clock,
        delay: &mut delay,
        random: &mut random,
    };

    // Run until the help event has been acknowledged by the broker, then
    // vanish without a DISCONNECT (the future is dropped mid-session), as a
    // node does when its power or radio dies.
    let mut help_sent = false;
    let run = link::run(&mut node, parts, |node: &Node, _now| {
        help_sent |= node.outbox().is_empty() && node.is_connected() && node.next_publish().is_none();
        true
    });
    let _ = tokio::time::timeout(Duration::from_secs(3), run).await;

    let (topic, online) = next(&mut received).await;
    assert_eq!((topic.device_id.as_str(), topic.channel), ("fw-it-node", Channel::Status));
    assert!(matches!(online, Payload::Status(ref s) if s.state == StatusState::Online && s.boot == Some(0x1234_5678)));
    let (topic, help) = next(&mut received).await;
    assert_eq!(topic.channel, Channel::Event);
    assert!(matches!(help, Payload::Event(ref e) if e.kind == EventKind::Help && e.boot == 0x1234_5678 && e.seq == 0));
    drop(node);

    // Mosquitto publishes the Last Will once it notices the vanished client.
    let (topic, will) = next(&mut received).await;
    assert_eq!(topic.channel, Channel::Status);
    assert!(matches!(will, Payload::Status(ref s) if s.state == StatusState::Offline && s.boot.is_none()));
    assert!(help_sent);
}
