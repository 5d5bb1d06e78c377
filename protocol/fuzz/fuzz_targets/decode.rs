//! Feeds arbitrary bytes to everything the gateway parses from a device: the
//! topic and the payload of each channel. Any panic, hang or runaway
//! allocation is a finding.
#![no_main]

use anxin_protocol::{Channel, Payload, Topic, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Topic::parse(text);
    }
    for channel in Channel::ALL {
        if let Ok(payload) = decode(channel, data) {
            // Whatever decodes must encode again and decode to the same value.
            let mut buffer = [0u8; anxin_protocol::MAX_PAYLOAD_LEN];
            let len = payload.encode(&mut buffer).expect("a decoded payload re-encodes");
            let again: Payload = decode(channel, &buffer[..len]).expect("a re-encoded payload decodes");
            assert_eq!(again, payload);
        }
    }
});
