use proptest::prelude::*;

use super::*;

/// DESIGN.md's examples, verbatim: the contract a vendor integrates against.
const GOLDEN_EVENT: &str = r#"{"v":1,"boot":3405691582,"seq":17,"up":86400123,"kind":"door","state":"open"}"#;
const GOLDEN_SUMMARY: &str = r#"{"v":1,"boot":3405691582,"seq":18,"up":86700123,"interval_s":300,"motion":12,"door_opens":1,"temp_dc":215,"battery":87,"rssi":-61}"#;
const GOLDEN_STATUS: &str = r#"{"v":1,"boot":3405691582,"state":"online","fw":"0.1.0"}"#;
const GOLDEN_LAST_WILL: &str = r#"{"v":1,"state":"offline"}"#;

fn encoded(payload: &Payload) -> String {
    let mut buffer = [0u8; MAX_PAYLOAD_LEN];
    let len = payload.encode(&mut buffer).unwrap();
    String::from_utf8(buffer[..len].to_vec()).unwrap()
}

#[test]
fn the_golden_event_decodes_verbatim_and_encodes_back_byte_for_byte() {
    let payload = decode(Channel::Event, GOLDEN_EVENT.as_bytes()).unwrap();
    assert_eq!(
        payload,
        Payload::Event(Event { boot: 3_405_691_582, seq: 17, up: 86_400_123, kind: EventKind::Door(DoorState::Open) })
    );
    assert_eq!(encoded(&payload), GOLDEN_EVENT);
}

#[test]
fn the_golden_summary_decodes_verbatim_and_encodes_back_byte_for_byte() {
    let payload = decode(Channel::Summary, GOLDEN_SUMMARY.as_bytes()).unwrap();
    assert_eq!(
        payload,
        Payload::Summary(Summary {
            boot: 3_405_691_582,
            seq: 18,
            up: 86_700_123,
            interval_s: 300,
            motion: 12,
            door_opens: 1,
            temp_dc: Some(215),
            battery: Some(87),
            rssi: Some(-61),
        })
    );
    assert_eq!(encoded(&payload), GOLDEN_SUMMARY);
}

#[test]
fn the_golden_status_and_last_will_decode_verbatim_and_encode_back() {
    let online = decode(Channel::Status, GOLDEN_STATUS.as_bytes()).unwrap();
    assert_eq!(online, Payload::Status(Status::online(3_405_691_582, "0.1.0")));
    assert_eq!(encoded(&online), GOLDEN_STATUS);

    let will = decode(Channel::Status, GOLDEN_LAST_WILL.as_bytes()).unwrap();
    assert_eq!(will, Payload::Status(Status::LAST_WILL));
    assert_eq!(encoded(&will), GOLDEN_LAST_WILL);
}

#[test]
fn every_event_kind_and_state_of_the_contract_decodes() {
    for (kind, state, expected) in [
        ("door", "open", EventKind::Door(DoorState::Open)),
        ("door", "closed", EventKind::Door(DoorState::Closed)),
        ("smoke", "alarm", EventKind::Smoke(SmokeState::Alarm)),
        ("smoke", "clear", EventKind::Smoke(SmokeState::Clear)),
        ("help", "pressed", EventKind::Help),
        ("tamper", "opened", EventKind::Tamper(TamperState::Opened)),
        ("tamper", "closed", EventKind::Tamper(TamperState::Closed)),
    ] {
        let json = format!(r#"{{"v":1,"boot":1,"seq":2,"up":3,"kind":"{kind}","state":"{state}"}}"#);
        assert_eq!(Event::decode(json.as_bytes()).unwrap().kind, expected, "{json}");
    }
}

#[test]
fn optional_summary_fields_may_be_left_out() {
    let json = r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":0,"door_opens":0}"#;
    let summary = Summary::decode(json.as_bytes()).unwrap();
    assert_eq!((summary.temp_dc, summary.battery, summary.rssi), (None, None, None));
    assert_eq!(encoded(&Payload::Summary(summary)), json);
}

#[test]
fn fields_added_by_a_later_minor_revision_are_ignored() {
    let json =
        r#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"help","state":"pressed","zone":"bedroom","extra":[1,{"a":null}]}"#;
    assert_eq!(Event::decode(json.as_bytes()).unwrap().kind, EventKind::Help);
}

#[test]
fn each_bad_input_gets_its_own_reason() {
    let cases: &[(Channel, &str, Rejection)] = &[
        (Channel::Event, "not json", Rejection::NotJson),
        (Channel::Event, "[1,2,3]", Rejection::NotJson),
        (Channel::Event, "", Rejection::NotJson),
        (Channel::Event, r#"{"v":1,"boot":1"#, Rejection::NotJson),
        (
            Channel::Event,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"door","state":"open"} trailing"#,
            Rejection::NotJson,
        ),
        (
            Channel::Event,
            r#"{"v":2,"boot":1,"seq":2,"up":3,"kind":"door","state":"open"}"#,
            Rejection::UnsupportedVersion(2),
        ),
        (Channel::Event, r#"{"v":2,"boot":"now","seq":"x"}"#, Rejection::UnsupportedVersion(2)),
        (Channel::Event, r#"{"boot":1,"seq":2,"up":3,"kind":"door","state":"open"}"#, Rejection::MissingField("v")),
        (Channel::Event, r#"{"v":1,"seq":2,"up":3,"kind":"door","state":"open"}"#, Rejection::MissingField("boot")),
        (Channel::Event, r#"{"v":1,"boot":1,"up":3,"kind":"door","state":"open"}"#, Rejection::MissingField("seq")),
        (Channel::Event, r#"{"v":1,"boot":1,"seq":2,"kind":"door","state":"open"}"#, Rejection::MissingField("up")),
        (Channel::Event, r#"{"v":1,"boot":1,"seq":2,"up":3,"state":"open"}"#, Rejection::MissingField("kind")),
        (Channel::Event, r#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"door"}"#, Rejection::MissingField("state")),
        (Channel::Event, r#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"flood","state":"on"}"#, Rejection::UnknownKind),
        (Channel::Event, r#"{"v":1,"boot":1,"seq":2,"up":3,"kind":"smoke","state":"open"}"#, Rejection::UnknownState),
        (
            Channel::Event,
            r#"{"v":1,"boot":4294967296,"seq":2,"up":3,"kind":"help","state":"pressed"}"#,
            Rejection::OutOfRange("boot"),
        ),
        (
            Channel::Event,
            r#"{"v":1,"boot":-1,"seq":2,"up":3,"kind":"help","state":"pressed"}"#,
            Rejection::OutOfRange("boot"),
        ),
        (
            Channel::Event,
            r#"{"v":1,"boot":1,"seq":2,"up":9007199254740992,"kind":"help","state":"pressed"}"#,
            Rejection::OutOfRange("up"),
        ),
        (
            Channel::Event,
            r#"{"v":1,"boot":1,"seq":2,"up":1e400,"kind":"help","state":"pressed"}"#,
            Rejection::OutOfRange("up"),
        ),
        (Channel::Event, r#"{"v":1,"boot":"1","seq":2,"up":3,"kind":"help","state":"pressed"}"#, Rejection::WrongType),
        (
            Channel::Event,
            r#"{"v":1,"v":1,"boot":1,"seq":2,"up":3,"kind":"help","state":"pressed"}"#,
            Rejection::WrongType,
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":0,"motion":0,"door_opens":0}"#,
            Rejection::OutOfRange("interval_s"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":70000,"door_opens":0}"#,
            Rejection::OutOfRange("motion"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":1,"door_opens":0,"battery":101}"#,
            Rejection::OutOfRange("battery"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":1,"door_opens":0,"temp_dc":9999}"#,
            Rejection::OutOfRange("temp_dc"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":1,"door_opens":0,"rssi":12}"#,
            Rejection::OutOfRange("rssi"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"door_opens":0}"#,
            Rejection::MissingField("motion"),
        ),
        (
            Channel::Summary,
            r#"{"v":1,"boot":1,"seq":2,"up":3,"interval_s":300,"motion":1.5,"door_opens":0}"#,
            Rejection::OutOfRange("motion"),
        ),
        (Channel::Status, r#"{"v":1,"state":"sleeping"}"#, Rejection::UnknownState),
        (Channel::Status, r#"{"v":1}"#, Rejection::MissingField("state")),
        (
            Channel::Status,
            r#"{"v":1,"state":"online","fw":"0123456789012345678901234567890123456789"}"#,
            Rejection::OutOfRange("fw"),
        ),
    ];
    for (channel, json, expected) in cases {
        assert_eq!(decode(*channel, json.as_bytes()), Err(*expected), "{channel:?} {json}");
    }
}

#[test]
fn an_oversized_payload_is_refused_before_it_is_read() {
    let mut big = String::from(r#"{"v":1,"pad":""#);
    big.push_str(&"x".repeat(MAX_PAYLOAD_LEN));
    big.push_str(r#""}"#);
    assert_eq!(decode(Channel::Event, big.as_bytes()), Err(Rejection::TooLarge { len: big.len() }));
}

#[test]
fn invalid_utf8_and_deep_nesting_are_refused_without_panicking() {
    assert!(decode(Channel::Event, b"{\"v\":1,\"kind\":\"\xff\xfe\"}").is_err());
    let nested = format!(r#"{{"v":1,"x":{}{}}}"#, "[".repeat(240), "]".repeat(240));
    assert!(decode(Channel::Summary, nested.as_bytes()).is_err());
}

#[test]
fn every_rejection_has_a_distinct_reason_name() {
    let all = [
        Rejection::TooLarge { len: 0 },
        Rejection::NotJson,
        Rejection::WrongType,
        Rejection::MissingField("v"),
        Rejection::UnsupportedVersion(2),
        Rejection::UnknownKind,
        Rejection::UnknownState,
        Rejection::OutOfRange("v"),
    ];
    let mut names: Vec<_> = all.iter().map(Rejection::reason).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        Just(EventKind::Door(DoorState::Open)),
        Just(EventKind::Door(DoorState::Closed)),
        Just(EventKind::Smoke(SmokeState::Alarm)),
        Just(EventKind::Smoke(SmokeState::Clear)),
        Just(EventKind::Help),
        Just(EventKind::Tamper(TamperState::Opened)),
        Just(EventKind::Tamper(TamperState::Closed)),
    ]
}

fn any_payload() -> impl Strategy<Value = Payload> {
    let up = || 0..=MAX_SAFE_INTEGER as u64;
    let event = (any::<u32>(), any::<u32>(), up(), event_kind())
        .prop_map(|(boot, seq, up, kind)| Payload::Event(Event { boot, seq, up, kind }));
    let summary = (
        (any::<u32>(), any::<u32>(), up(), 1..=summary::MAX_INTERVAL_S),
        (any::<u16>(), any::<u16>()),
        (proptest::option::of(-400i16..=1250), proptest::option::of(0u8..=100), proptest::option::of(-150i16..=0)),
    )
        .prop_map(|((boot, seq, up, interval_s), (motion, door_opens), (temp_dc, battery, rssi))| {
            Payload::Summary(Summary { boot, seq, up, interval_s, motion, door_opens, temp_dc, battery, rssi })
        });
    let status = (proptest::option::of(any::<u32>()), any::<bool>(), proptest::option::of("[0-9a-z.+-]{0,32}"))
        .prop_map(|(boot, online, fw)| {
            Payload::Status(Status {
                boot,
                state: if online { StatusState::Online } else { StatusState::Offline },
                fw: fw.map(|fw| Firmware::try_from(fw.as_str()).unwrap()),
            })
        });
    prop_oneof![event, summary, status]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic_on_any_channel(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        for channel in Channel::ALL {
            let _ = decode(channel, &bytes);
        }
    }

    #[test]
    fn json_shaped_noise_never_panics(text in r#"\{("[a-z_]{1,10}":(-?[0-9]{1,22}|"[a-z]{0,8}"|null|true|\[[0-9,]{0,6}\]|\{\}),?){0,12}\}"#) {
        for channel in Channel::ALL {
            let _ = decode(channel, text.as_bytes());
        }
    }

    #[test]
    fn every_valid_payload_round_trips_and_fits_the_limit(payload in any_payload()) {
        let mut buffer = [0u8; MAX_PAYLOAD_LEN];
        let len = payload.encode(&mut buffer).unwrap();
        prop_assert!(len <= MAX_PAYLOAD_LEN);
        prop_assert_eq!(decode(payload.channel(), &buffer[..len]), Ok(payload));
    }
}
