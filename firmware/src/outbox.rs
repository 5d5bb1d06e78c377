//! The node's bounded store-and-forward queue.
//!
//! While the link is down, messages wait here in order. When it is full the
//! oldest summary goes first (a summary is a heartbeat: a newer one says the
//! same and more), then the oldest door or tamper event. A hazard event
//! (smoke, help) is never lost: when nothing but hazards is queued, the oldest
//! hazard that a later one repeats exactly (same kind and state) makes room,
//! which the pigeonhole principle guarantees exists. The gateway still learns
//! every kind of hazard that happened, in order, and the smoke detector's
//! last state.

use anxin_protocol::{Event, Summary};
use heapless::Vec;

/// A message waiting to be published. Status messages are not queued: the
/// node announces itself afresh on every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    Event(Event),
    Summary(Summary),
}

impl Outgoing {
    pub fn seq(&self) -> u32 {
        match self {
            Outgoing::Event(event) => event.seq,
            Outgoing::Summary(summary) => summary.seq,
        }
    }

    pub fn is_hazard(&self) -> bool {
        matches!(self, Outgoing::Event(event) if event.kind.is_hazard())
    }
}

/// What a push had to give up to stay within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Nothing,
    /// An older message was dropped to make room.
    Older(Outgoing),
    /// The new message itself was dropped (a door or tamper event when only
    /// hazards are queued).
    Incoming(Outgoing),
}

/// A FIFO of at most `N` messages (`N` ≥ 4).
#[derive(Debug, Default)]
pub struct Outbox<const N: usize> {
    queue: Vec<Outgoing, N>,
}

impl<const N: usize> Outbox<N> {
    const ROOM_FOR_EVERY_HAZARD: () = assert!(N >= 4, "the outbox must hold more than the 3 distinct hazard events");

    pub fn new() -> Self {
        let () = Self::ROOM_FOR_EVERY_HAZARD;
        Self { queue: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn front(&self) -> Option<&Outgoing> {
        self.queue.first()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Outgoing> {
        self.queue.iter()
    }

    /// Removes the front message if it is the one with `seq` (its PUBACK came).
    pub fn acknowledge(&mut self, seq: u32) -> bool {
        if self.front().is_some_and(|front| front.seq() == seq) {
            self.queue.remove(0);
            return true;
        }
        false
    }

    pub fn push(&mut self, message: Outgoing) -> Dropped {
        let dropped = if self.queue.is_full() {
            match self.victim_for(&message) {
                Some(index) => Dropped::Older(self.queue.remove(index)),
                None => return Dropped::Incoming(message),
            }
        } else {
            Dropped::Nothing
        };
        // Cannot fail: there is room now.
        let _ = self.queue.push(message);
        dropped
    }

    fn victim_for(&self, incoming: &Outgoing) -> Option<usize> {
        let oldest_summary = self.queue.iter().position(|m| matches!(m, Outgoing::Summary(_)));
        let oldest_minor_event = || self.queue.iter().position(|m| !m.is_hazard());
        if let Some(index) = oldest_summary.or_else(oldest_minor_event) {
            return Some(index);
        }
        // Only hazards are queued.
        let Outgoing::Event(incoming) = incoming else { return None };
        if !incoming.kind.is_hazard() {
            return None;
        }
        // Drop the oldest hazard that a later one (queued or incoming) repeats
        // exactly. There are 3 distinct hazards and N ≥ 4 slots plus the
        // incoming one, so such a repeat always exists.
        let kind_of = |message: &Outgoing| match message {
            Outgoing::Event(event) => Some(event.kind),
            Outgoing::Summary(_) => None,
        };
        (0..self.queue.len()).find(|&index| {
            let kind = kind_of(&self.queue[index]);
            kind == Some(incoming.kind) || self.queue[index + 1..].iter().any(|later| kind_of(later) == kind)
        })
    }
}

#[cfg(test)]
mod tests {
    use anxin_protocol::{DoorState, EventKind, SmokeState};

    use super::*;

    fn event(seq: u32, kind: EventKind) -> Outgoing {
        Outgoing::Event(Event { boot: 1, seq, up: u64::from(seq), kind })
    }

    fn summary(seq: u32) -> Outgoing {
        Outgoing::Summary(Summary {
            boot: 1,
            seq,
            up: u64::from(seq),
            interval_s: 300,
            motion: 0,
            door_opens: 0,
            temp_dc: None,
            battery: None,
            rssi: None,
        })
    }

    fn seqs<const N: usize>(outbox: &Outbox<N>) -> std::vec::Vec<u32> {
        outbox.iter().map(Outgoing::seq).collect()
    }

    #[test]
    fn when_full_the_oldest_summary_goes_first() {
        let mut outbox = Outbox::<4>::new();
        outbox.push(event(1, EventKind::Door(DoorState::Open)));
        outbox.push(summary(2));
        outbox.push(summary(3));
        outbox.push(event(4, EventKind::Help));
        assert_eq!(outbox.push(summary(5)), Dropped::Older(summary(2)));
        assert_eq!(seqs(&outbox), [1, 3, 4, 5]);
    }

    #[test]
    fn with_no_summary_left_the_oldest_door_event_goes() {
        let mut outbox = Outbox::<4>::new();
        outbox.push(event(1, EventKind::Help));
        outbox.push(event(2, EventKind::Door(DoorState::Open)));
        outbox.push(event(3, EventKind::Door(DoorState::Closed)));
        outbox.push(event(4, EventKind::Smoke(SmokeState::Alarm)));
        assert_eq!(outbox.push(summary(5)), Dropped::Older(event(2, EventKind::Door(DoorState::Open))));
        assert_eq!(seqs(&outbox), [1, 3, 4, 5]);
    }

    #[test]
    fn only_repeated_hazards_make_room_and_the_last_smoke_state_survives() {
        let mut outbox = Outbox::<4>::new();
        outbox.push(event(1, EventKind::Help));
        outbox.push(event(2, EventKind::Smoke(SmokeState::Alarm)));
        outbox.push(event(3, EventKind::Smoke(SmokeState::Clear)));
        outbox.push(event(4, EventKind::Help));
        // A door event cannot displace a hazard.
        let door = event(5, EventKind::Door(DoorState::Open));
        assert_eq!(outbox.push(door), Dropped::Incoming(door));
        // A new alarm makes room by dropping the oldest repeated hazard (help 1, repeated by help 4).
        assert_eq!(
            outbox.push(event(6, EventKind::Smoke(SmokeState::Alarm))),
            Dropped::Older(event(1, EventKind::Help))
        );
        assert_eq!(seqs(&outbox), [2, 3, 4, 6]);
        // Then the older alarm, repeated by the new one.
        assert_eq!(
            outbox.push(event(7, EventKind::Smoke(SmokeState::Clear))),
            Dropped::Older(event(2, EventKind::Smoke(SmokeState::Alarm)))
        );
        assert_eq!(seqs(&outbox), [3, 4, 6, 7]);
        assert!(outbox.iter().all(Outgoing::is_hazard));
    }

    #[test]
    fn only_the_front_message_is_acknowledged() {
        let mut outbox = Outbox::<4>::new();
        outbox.push(summary(1));
        outbox.push(summary(2));
        assert!(!outbox.acknowledge(2));
        assert!(outbox.acknowledge(1));
        assert_eq!(seqs(&outbox), [2]);
    }

    proptest::proptest! {
        #[test]
        fn whatever_arrives_no_hazard_kind_is_ever_lost(kinds in proptest::collection::vec(0u8..5, 1..200)) {
            let mut outbox = Outbox::<8>::new();
            let mut last_hazard_states = std::collections::BTreeMap::new();
            for (seq, k) in (0u32..).zip(kinds.iter()) {
                let kind = match k {
                    0 => EventKind::Help,
                    1 => EventKind::Smoke(SmokeState::Alarm),
                    2 => EventKind::Smoke(SmokeState::Clear),
                    3 => EventKind::Door(DoorState::Open),
                    _ => EventKind::Door(DoorState::Closed),
                };
                let message = if *k == 4 && seq % 2 == 0 { summary(seq) } else { event(seq, kind) };
                outbox.push(message);
                if kind.is_hazard() && !matches!(message, Outgoing::Summary(_)) {
                    last_hazard_states.insert(kind.kind_str(), kind);
                }
                proptest::prop_assert!(outbox.len() <= 8);
            }
            // The last state of each hazard kind is still queued, and order is kept.
            for (kind, last) in &last_hazard_states {
                let queued_last = outbox.iter().rev().find_map(|m| match m {
                    Outgoing::Event(e) if e.kind.kind_str() == *kind => Some(e.kind),
                    _ => None,
                });
                proptest::prop_assert_eq!(queued_last, Some(*last));
            }
            let order: std::vec::Vec<u32> = outbox.iter().map(Outgoing::seq).collect();
            proptest::prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
