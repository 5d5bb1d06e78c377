//! Topics: `anxin/v1/dev/{device_id}/{channel}`.

use core::fmt;

use crate::device_id::{DEVICE_ID_MAX_LEN, DeviceId, DeviceIdError};

/// Every device topic starts with this.
pub const TOPIC_PREFIX: &str = "anxin/v1/dev/";

/// The longest topic the contract can produce.
pub const TOPIC_MAX_LEN: usize = TOPIC_PREFIX.len() + DEVICE_ID_MAX_LEN + 1 + "summary".len();

/// The three channels a device publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Immediate things: door, smoke, help, tamper.
    Event,
    /// Every few minutes: motion count, door openings, temperature, battery.
    /// It doubles as the heartbeat.
    Summary,
    /// Retained online/offline; the node's Last Will publishes `offline` here.
    Status,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Event, Channel::Summary, Channel::Status];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Event => "event",
            Channel::Summary => "summary",
            Channel::Status => "status",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|channel| channel.as_str() == text)
    }
}

/// A parsed device topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    pub device_id: DeviceId,
    pub channel: Channel,
}

/// Why a topic is outside the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic does not start with {TOPIC_PREFIX}")]
    OutsideContract,
    #[error("topic has no device id and channel after the prefix")]
    Incomplete,
    #[error("bad device id in topic: {0}")]
    BadDeviceId(DeviceIdError),
    #[error("unknown channel; expected event, summary or status")]
    UnknownChannel,
}

impl TopicError {
    /// A short stable name for counting rejections by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::OutsideContract | TopicError::Incomplete => "topic_outside_contract",
            TopicError::BadDeviceId(_) => "bad_device_id",
            TopicError::UnknownChannel => "unknown_channel",
        }
    }
}

impl Topic {
    pub fn new(device_id: DeviceId, channel: Channel) -> Self {
        Self { device_id, channel }
    }

    /// Parses `anxin/v1/dev/{device_id}/{channel}`; anything else is refused.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let rest = topic.strip_prefix(TOPIC_PREFIX).ok_or(TopicError::OutsideContract)?;
        let (device_id, channel) = rest.split_once('/').ok_or(TopicError::Incomplete)?;
        let device_id = DeviceId::parse(device_id).map_err(TopicError::BadDeviceId)?;
        // A trailing level (`.../event/x`) is not a channel we know.
        let channel = Channel::parse(channel).ok_or(TopicError::UnknownChannel)?;
        Ok(Self { device_id, channel })
    }

    /// The topic as a bounded string, for a node that has no allocator.
    pub fn to_heapless(&self) -> heapless::String<TOPIC_MAX_LEN> {
        let mut text = heapless::String::new();
        // Cannot fail: TOPIC_MAX_LEN is the longest a valid topic can be.
        let _ = fmt::write(&mut text, format_args!("{self}"));
        text
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOPIC_PREFIX}{}/{}", self.device_id, self.channel.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_text() {
        let device_id = DeviceId::parse("node-7").unwrap();
        for channel in Channel::ALL {
            let topic = Topic::new(device_id.clone(), channel);
            let text = topic.to_heapless();
            assert_eq!(text.as_str(), format!("anxin/v1/dev/node-7/{}", channel.as_str()));
            assert_eq!(Topic::parse(&text).unwrap(), topic);
        }
    }

    #[test]
    fn the_longest_device_id_fits_the_bound() {
        let device_id = DeviceId::parse(&"z".repeat(64)).unwrap();
        let topic = Topic::new(device_id, Channel::Summary);
        assert_eq!(topic.to_heapless().len(), TOPIC_MAX_LEN);
    }

    #[test]
    fn topics_outside_the_contract_are_refused_with_a_reason() {
        assert_eq!(Topic::parse("home/1/event"), Err(TopicError::OutsideContract));
        assert_eq!(Topic::parse("anxin/v2/dev/a/event"), Err(TopicError::OutsideContract));
        assert_eq!(Topic::parse("anxin/v1/dev/a"), Err(TopicError::Incomplete));
        assert_eq!(Topic::parse("anxin/v1/dev/a/alarm"), Err(TopicError::UnknownChannel));
        assert_eq!(Topic::parse("anxin/v1/dev/a/event/x"), Err(TopicError::UnknownChannel));
        assert_eq!(
            Topic::parse("anxin/v1/dev/a+b/event"),
            Err(TopicError::BadDeviceId(DeviceIdError::ForbiddenCharacter('+')))
        );
        assert_eq!(Topic::parse("anxin/v1/dev//event"), Err(TopicError::BadDeviceId(DeviceIdError::Empty)));
        assert_eq!(Topic::parse(""), Err(TopicError::OutsideContract));
    }
}
