//! The node through scripted days: time is a number, the broker is a loop
//! that acknowledges what it is given.

use anxin_protocol::{Payload, Topic, decode};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction};

use super::*;
use crate::drivers::{ActiveLevel, DoorContact, POLL_INTERVAL_MS};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

fn node<const N: usize>() -> Node<N> {
    Node::new(DeviceId::parse("node-1").unwrap(), 0xCAFE_BABE, 0, NodeConfig::default())
}

/// Acknowledges everything the node wants to send, and returns it decoded.
fn deliver_all<const N: usize>(node: &mut Node<N>) -> std::vec::Vec<(Publish, Payload)> {
    let mut delivered = std::vec::Vec::new();
    while let Some(publish) = node.next_publish() {
        let topic = Topic::parse(&publish.topic).unwrap();
        let payload = decode(topic.channel, &publish.payload).unwrap();
        node.on_published(publish.seq);
        delivered.push((publish, payload));
    }
    delivered
}

fn seqs(delivered: &[(Publish, Payload)]) -> std::vec::Vec<u32> {
    delivered.iter().filter_map(|(publish, _)| publish.seq).collect()
}

#[test]
fn after_connecting_the_node_first_announces_itself_online_retained() {
    let mut node = node::<64>();
    assert!(node.wants_connection(0));
    assert_eq!(node.next_publish(), None, "nothing goes out before the link is up");
    node.on_connected();
    let delivered = deliver_all(&mut node);
    assert_eq!(delivered.len(), 1);
    let (publish, payload) = &delivered[0];
    assert_eq!(publish.topic.as_str(), "anxin/v1/dev/node-1/status");
    assert!(publish.retain);
    assert_eq!(payload, &Payload::Status(Status::online(0xCAFE_BABE, env!("CARGO_PKG_VERSION"))));
}

#[test]
fn the_last_will_is_the_retained_offline_status() {
    let will = node::<64>().last_will();
    assert_eq!(will.topic.as_str(), "anxin/v1/dev/node-1/status");
    assert!(will.retain);
    assert_eq!(core::str::from_utf8(&will.payload).unwrap(), r#"{"v":1,"state":"offline"}"#);
}

#[test]
fn a_quiet_hour_is_twelve_summaries_with_motion_counted_per_interval() {
    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    let mut summaries = std::vec::Vec::new();
    for second in 0..=3_600u64 {
        let now = second * 1_000;
        // Someone moves once every 100 s in the first half hour.
        if second < 1_800 && second % 100 == 50 {
            node.observe(now, Observation::Motion);
        }
        if second == 30 {
            node.observe(now, Observation::Temperature(205));
            node.observe(now, Observation::Battery(91));
        }
        node.tick(now);
        for (_, payload) in deliver_all(&mut node) {
            if let Payload::Summary(summary) = payload {
                summaries.push(summary);
            }
        }
    }
    assert_eq!(summaries.len(), 12);
    assert!(summaries.iter().all(|s| s.interval_s == 300 && s.temp_dc == Some(205) && s.battery == Some(91)));
    let motion: std::vec::Vec<u16> = summaries.iter().map(|s| s.motion).collect();
    assert_eq!(motion, [3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0]);
    let seq: std::vec::Vec<u32> = summaries.iter().map(|s| s.seq).collect();
    assert_eq!(seq, (0..12).collect::<std::vec::Vec<_>>());
}

#[test]
fn a_bouncing_door_is_one_open_event_and_one_opening_in_the_summary() {
    // Door contact sampled every 10 ms: closed, 60 ms of bounce, open 2 s, closed.
    let mut levels = vec![State::Low; 10];
    levels.extend([State::High, State::Low, State::High, State::Low, State::High, State::Low]);
    levels.extend(std::iter::repeat_n(State::High, 200));
    levels.extend(std::iter::repeat_n(State::Low, 20));
    let transactions: std::vec::Vec<_> = levels.iter().map(|level| Transaction::get(*level)).collect();
    let mut door = DoorContact::new(PinMock::new(&transactions), ActiveLevel::High, false);

    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    let mut events = std::vec::Vec::new();
    for (index, _) in levels.iter().enumerate() {
        let now = index as u64 * POLL_INTERVAL_MS;
        if let Some(state) = door.poll().unwrap() {
            node.observe(now, Observation::Door(state));
        }
        events.extend(deliver_all(&mut node).into_iter().map(|(_, payload)| payload));
    }
    door.release().done();
    let kinds: std::vec::Vec<EventKind> =
        events.iter().filter_map(|p| if let Payload::Event(e) = p { Some(e.kind) } else { None }).collect();
    assert_eq!(kinds, [EventKind::Door(DoorState::Open), EventKind::Door(DoorState::Closed)]);
    node.tick(5 * MINUTE);
    let summary =
        deliver_all(&mut node).into_iter().find_map(|(_, p)| if let Payload::Summary(s) = p { Some(s) } else { None });
    assert_eq!(summary.unwrap().door_opens, 1);
}

#[test]
fn an_hour_without_the_link_is_delivered_in_order_when_it_returns() {
    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    node.on_connection_lost(0, 0);
    let mut now = 0;
    while now <= HOUR {
        if now % (7 * MINUTE) == 0 {
            node.observe(now, Observation::Motion);
        }
        if now == 20 * MINUTE {
            node.observe(now, Observation::Door(DoorState::Open));
            node.observe(now + 1_000, Observation::Door(DoorState::Closed));
        }
        if now == 40 * MINUTE {
            node.observe(now, Observation::HelpPressed);
        }
        node.tick(now);
        assert_eq!(node.next_publish(), None, "nothing is sent while the link is down");
        now += 10_000;
    }
    assert_eq!(node.outbox().len(), 12 + 3);
    assert_eq!(node.dropped(), 0);

    assert!(node.wants_connection(now));
    node.on_connected();
    let delivered = deliver_all(&mut node);
    assert!(matches!(delivered[0].1, Payload::Status(_)), "online status goes first");
    assert_eq!(seqs(&delivered), (0..15).collect::<std::vec::Vec<_>>(), "every message, in order");
    assert!(delivered.iter().any(|(_, p)| matches!(p, Payload::Event(e) if e.kind == EventKind::Help)));
    assert!(node.outbox().is_empty());
}

#[test]
fn a_message_in_flight_when_the_link_drops_is_resent_with_the_same_seq() {
    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    node.observe(1_000, Observation::Smoke(SmokeState::Alarm));
    let first = node.next_publish().unwrap();
    // No PUBACK: the connection breaks.
    node.on_connection_lost(2_000, 0);
    assert_eq!(node.next_publish(), None);
    node.on_connected();
    let delivered = deliver_all(&mut node);
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].0, first);
}

#[test]
fn when_the_outbox_overflows_during_a_long_outage_the_smoke_alarm_survives() {
    let mut node = node::<8>();
    node.on_connected();
    deliver_all(&mut node);
    node.on_connection_lost(0, 0);
    let mut now = 0;
    while now <= 3 * HOUR {
        if now == HOUR {
            node.observe(now, Observation::Smoke(SmokeState::Alarm));
        }
        if now == HOUR + 10 * MINUTE {
            node.observe(now, Observation::Smoke(SmokeState::Clear));
        }
        if now % (15 * MINUTE) == 0 {
            node.observe(now, Observation::Door(DoorState::Open));
        }
        node.tick(now);
        now += 10_000;
    }
    assert!(node.dropped() > 0, "36 summaries and 13 door events cannot fit in 8");
    node.on_connected();
    let delivered = deliver_all(&mut node);
    let smoke: std::vec::Vec<SmokeState> = delivered
        .iter()
        .filter_map(|(_, p)| match p {
            Payload::Event(Event { kind: EventKind::Smoke(state), .. }) => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(smoke, [SmokeState::Alarm, SmokeState::Clear]);
    let seqs = seqs(&delivered);
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "order is kept: {seqs:?}");
    // The newest summary is among what survived: the gateway sees the node is alive.
    assert!(matches!(delivered.last().unwrap().1, Payload::Summary(_)));
}

#[test]
fn reconnect_attempts_wait_for_the_backoff() {
    let mut node = node::<64>();
    node.on_connection_lost(0, 0);
    // Backoff::default(): first delay in 500..=1_000 ms; with random 0 it is 500.
    assert!(!node.wants_connection(499));
    assert!(node.wants_connection(500));
    node.on_connection_lost(500, 0);
    assert!(!node.wants_connection(1_499));
    assert!(node.wants_connection(1_500));
    node.on_connected();
    node.on_connection_lost(2_000, 0);
    assert!(node.wants_connection(2_500), "a success resets the backoff");
}

#[test]
fn a_summary_after_a_long_stall_covers_the_elapsed_time_then_the_cadence_resumes() {
    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    node.tick(2 * HOUR);
    let summary =
        deliver_all(&mut node).into_iter().find_map(|(_, p)| if let Payload::Summary(s) = p { Some(s) } else { None });
    assert_eq!(summary.unwrap().interval_s, 7_200);
    assert_eq!(node.next_summary_at(), 2 * HOUR + 5 * MINUTE);
}

#[test]
fn events_carry_the_boot_and_the_uptime_they_happened_at() {
    let mut node = node::<64>();
    node.on_connected();
    deliver_all(&mut node);
    node.observe(12_345, Observation::Tamper(TamperState::Opened));
    let delivered = deliver_all(&mut node);
    assert_eq!(
        delivered[0].1,
        Payload::Event(Event { boot: 0xCAFE_BABE, seq: 0, up: 12_345, kind: EventKind::Tamper(TamperState::Opened) })
    );
}
