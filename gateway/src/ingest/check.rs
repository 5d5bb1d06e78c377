//! The pure first step of ingest: topic and payload in, an accepted message
//! or a rejection with its reason out. No I/O, so every rule is unit-tested.

use anxin_protocol::{DeviceId, Payload, Topic, decode};

/// A message that follows the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub device_id: DeviceId,
    pub payload: Payload,
    /// The payload as received, for the raw message table (it is valid JSON,
    /// hence UTF-8).
    pub text: String,
}

/// A message refused, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub topic: String,
    /// A stable reason name, e.g. `not_json`, `bad_device_id` (the metric label).
    pub reason: &'static str,
    /// The human sentence: what exactly was wrong.
    pub detail: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Accepted(Accepted),
    Rejected(Rejected),
}

/// Checks one received message against the contract.
pub fn check(topic: &str, payload: &[u8]) -> Checked {
    let reject = |reason, detail: String| {
        Checked::Rejected(Rejected { topic: topic.to_string(), reason, detail, payload: payload.to_vec() })
    };
    let parsed = match Topic::parse(topic) {
        Ok(parsed) => parsed,
        Err(error) => return reject(error.reason(), error.to_string()),
    };
    match decode(parsed.channel, payload) {
        Ok(decoded) => match std::str::from_utf8(payload) {
            Ok(text) => {
                Checked::Accepted(Accepted { device_id: parsed.device_id, payload: decoded, text: text.to_string() })
            }
            // Unreachable for a payload that decoded, but not worth a panic.
            Err(_) => reject("not_json", "payload is not UTF-8".into()),
        },
        Err(rejection) => reject(rejection.reason(), rejection.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use anxin_protocol::EventKind;

    use super::*;

    #[test]
    fn a_good_event_is_accepted_with_its_device() {
        let payload = br#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"help","state":"pressed"}"#;
        let Checked::Accepted(accepted) = check("anxin/v1/dev/n-1/event", payload) else { panic!("rejected") };
        assert_eq!(accepted.device_id.as_str(), "n-1");
        assert!(matches!(accepted.payload, Payload::Event(e) if e.kind == EventKind::Help));
        assert_eq!(accepted.text.as_bytes(), payload);
    }

    #[test]
    fn every_kind_of_bad_input_is_rejected_under_its_reason() {
        let good = br#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"help","state":"pressed"}"#;
        let cases: &[(&str, &[u8], &str)] = &[
            ("home/1/event", good, "topic_outside_contract"),
            ("anxin/v1/dev/Bad/event", good, "bad_device_id"),
            ("anxin/v1/dev/n-1/alarm", good, "unknown_channel"),
            ("anxin/v1/dev/n-1/event", b"{oops", "not_json"),
            ("anxin/v1/dev/n-1/event", br#"{"v":9}"#, "unsupported_version"),
            ("anxin/v1/dev/n-1/event", br#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"fire","state":"x"}"#, "unknown_kind"),
            ("anxin/v1/dev/n-1/summary", br#"{"v":1,"boot":1,"seq":2,"up":3}"#, "missing_field"),
            ("anxin/v1/dev/n-1/event", &[b' '; 600], "too_large"),
        ];
        for (topic, payload, reason) in cases {
            match check(topic, payload) {
                Checked::Rejected(rejected) => {
                    assert_eq!(rejected.reason, *reason, "{topic}");
                    assert!(!rejected.detail.is_empty());
                }
                Checked::Accepted(_) => panic!("{topic} accepted"),
            }
        }
    }
}
