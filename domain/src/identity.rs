//! Who may speak on the broker: the identities that connect to it, their
//! secrets, and what each kind may publish and subscribe to.
//!
//! Every client connects with username = its identity's name = its client id
//! and the secret issued when the identity was created:
//! - a **device** (sensor node) publishes only on `anxin/v1/dev/{its id}/…`
//!   and subscribes to nothing;
//! - a **bridge** (a vendor's cloud, a LoRaWAN network server, a building hub)
//!   publishes for the devices assigned to it, and nothing else;
//! - a **consumer** (a dispatch centre, an SMS gateway) only subscribes to
//!   `anxin/v1/alerts/#`;
//! - a **gateway** (`anxin gateway` against an external broker) reads device
//!   topics and publishes alerts.
//!
//! Secrets are 128-bit random values, given out once; what is stored is
//! Mosquitto's own `$7$` PBKDF2-SHA512 form, so `anxin devices export
//! --mosquitto` can hand the same hashes to a Mosquitto deployment. A secret
//! has 128 bits of entropy, so the iteration count that protects human
//! passwords adds nothing: Mosquitto's default (101) keeps a city's
//! reconnecting nodes cheap to check.
//!
//! This module is pure: no database, no runtime. The embedded broker's
//! `anxin_gateway::broker::auth` applies it; [`mosquitto_acl`] writes it for
//! Mosquitto.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use password_hash::rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq as _;

use anxin_protocol::{DeviceId, TOPIC_PREFIX};

/// Where alerts are published (`anxin/v1/alerts/{county}/{alert id}`).
pub const ALERTS_TOPIC_PREFIX: &str = "anxin/v1/alerts/";

/// Mosquitto's default PBKDF2 iteration count for `$7$` hashes.
const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;

/// What an identity is, which decides what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    Device,
    Bridge,
    Consumer,
    Gateway,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Device => "device",
            IdentityKind::Bridge => "bridge",
            IdentityKind::Consumer => "consumer",
            IdentityKind::Gateway => "gateway",
        }
    }

    pub fn parse(text: &str) -> Option<IdentityKind> {
        Some(match text {
            "device" => IdentityKind::Device,
            "bridge" => IdentityKind::Bridge,
            "consumer" => IdentityKind::Consumer,
            "gateway" => IdentityKind::Gateway,
            _ => return None,
        })
    }
}

impl std::fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name cannot be an identity's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{name:?} cannot be a name on the broker: {reason}")]
    Invalid { name: String, reason: String },
}

/// Checks a name: the device id alphabet (`a-z 0-9 - _ .`, 1–64), which keeps
/// MQTT wildcards and `/` out of usernames, client ids and ACL patterns.
pub fn check_name(name: &str) -> Result<(), NameError> {
    DeviceId::parse(name)
        .map(|_| ())
        .map_err(|error| NameError::Invalid { name: name.to_string(), reason: error.to_string() })
}

/// A new secret: 128 bits from the operating system, as 32 hex digits (easy to
/// print on a label or a QR code, nothing to confuse when typed).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `secret` hashed as Mosquitto's `$7$` form: `$7$101$<salt>$<hash>`, with a
/// fresh 12-byte salt and a 64-byte PBKDF2-HMAC-SHA512, both standard base64.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    hash_with(secret, &salt, ITERATIONS)
}

fn hash_with(secret: &str, salt: &[u8], iterations: u32) -> String {
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(secret.as_bytes(), salt, iterations, &mut hash);
    format!("$7${iterations}${}${}", BASE64.encode(salt), BASE64.encode(hash))
}

/// Whether `secret` matches a `$7$` hash (compared in constant time). A
/// malformed hash, or one with an absurd iteration count, never matches.
/// Costs about as much as Mosquitto's own check: run it off the async runtime.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(""), Some("7"), Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(expected)) =
        (iterations.parse::<u32>(), BASE64.decode(salt), BASE64.decode(hash))
    else {
        return false;
    };
    if iterations == 0 || iterations > 1_000_000 || expected.len() != HASH_LEN {
        return false;
    }
    let mut actual = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(secret.as_bytes(), &salt, iterations, &mut actual);
    bool::from(actual.ct_eq(expected.as_slice()))
}

/// The shortest secret a vendor may bring (`anxin devices import`).
pub const MIN_IMPORTED_SECRET: usize = 16;

/// A vendor's list of devices and their secrets: CSV `device_id,secret`
/// lines (a `device_id` header optional) or the JSON object `anxin devices
/// provision --out` writes. Every problem is named with its line (CSV) or
/// device (JSON); nothing is taken from a list with a problem.
pub fn parse_credentials(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let pairs: Vec<(String, String, String)> = if text.trim_start().starts_with('{') {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|error| format!("not a JSON object of device id → secret: {error}"))?;
        map.into_iter().map(|(id, secret)| (format!("{id:?}"), id, secret)).collect()
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut pairs = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|error| format!("not CSV: {error}"))?;
            let line_number = record.position().map_or(0, csv::Position::line);
            let (2, Some(id), Some(secret)) = (record.len(), record.get(0), record.get(1)) else {
                if record.iter().all(str::is_empty) {
                    continue;
                }
                return Err(format!("line {line_number}: expected two columns, device_id,secret"));
            };
            if pairs.is_empty() && id.eq_ignore_ascii_case("device_id") {
                continue;
            }
            pairs.push((format!("line {line_number}"), id.to_string(), secret.to_string()));
        }
        pairs
    };
    let mut credentials = std::collections::BTreeMap::new();
    for (place, id, secret) in pairs {
        check_name(&id).map_err(|error| format!("{place}: {error}"))?;
        if secret.chars().count() < MIN_IMPORTED_SECRET || !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "{place}: the secret of {id} must be at least {MIN_IMPORTED_SECRET} printable ASCII characters without spaces"
            ));
        }
        if credentials.insert(id.clone(), secret).is_some() {
            return Err(format!("{place}: {id} is listed twice"));
        }
    }
    if credentials.is_empty() {
        return Err("the list names no device".into());
    }
    Ok(credentials)
}

/// What a connected identity may do: its kind, and for a bridge the devices
/// it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub kind: IdentityKind,
    /// A bridge's devices (empty for the other kinds).
    pub devices: BTreeSet<String>,
}

impl Grant {
    /// Whether this identity may publish on `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        match self.kind {
            IdentityKind::Device => device_of(topic) == Some(self.name.as_str()),
            IdentityKind::Bridge => device_of(topic).is_some_and(|device| self.devices.contains(device)),
            IdentityKind::Gateway => topic.starts_with(ALERTS_TOPIC_PREFIX),
            IdentityKind::Consumer => false,
        }
    }

    /// Whether this identity may subscribe to `filter` (a shared
    /// subscription, `$share/GROUP/…`, is judged by the filter it shares).
    pub fn may_subscribe(&self, filter: &str) -> bool {
        let filter = unshared(filter);
        match self.kind {
            IdentityKind::Device | IdentityKind::Bridge => false,
            IdentityKind::Consumer => within(filter, ALERTS_TOPIC_PREFIX),
            IdentityKind::Gateway => within(filter, TOPIC_PREFIX) || within(filter, ALERTS_TOPIC_PREFIX),
        }
    }
}

/// The device a device topic speaks for: `anxin/v1/dev/{id}/…` → `id`
/// (as the ACL pattern `anxin/v1/dev/%u/#` reads it).
fn device_of(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(TOPIC_PREFIX)?;
    let (device, channel) = rest.split_once('/')?;
    (!device.is_empty() && !channel.is_empty()).then_some(device)
}

/// `$share/GROUP/filter` → `filter`.
fn unshared(filter: &str) -> &str {
    filter.strip_prefix("$share/").and_then(|rest| rest.split_once('/')).map_or(filter, |(_, shared)| shared)
}

/// Whether every topic `filter` can match lies under `prefix` (which ends in
/// `/`): the filter starts with the prefix's levels literally, or is the
/// prefix's own `…/#`.
fn within(filter: &str, prefix: &str) -> bool {
    filter.starts_with(prefix) || filter.strip_suffix('#') == Some(prefix)
}

/// An identity as Mosquitto is told about it.
#[derive(Debug, Clone)]
pub struct ExportedIdentity {
    pub grant: Grant,
    pub secret_hash: String,
}

/// A Mosquitto password file (`mosquitto_passwd` format) for `identities`:
/// one `name:$7$…` line each. A gateway gets three names — its own and
/// `-events` and `-alerts` for its other two connections — because with
/// `use_username_as_clientid true` each connection's client id is its
/// username.
pub fn mosquitto_passwords(identities: &[ExportedIdentity]) -> String {
    let mut file = String::new();
    for identity in identities {
        for name in broker_names(&identity.grant) {
            let _ = writeln!(file, "{name}:{}", identity.secret_hash);
        }
    }
    file
}

/// The names an identity connects with.
pub fn broker_names(grant: &Grant) -> Vec<String> {
    match grant.kind {
        IdentityKind::Gateway => {
            vec![grant.name.clone(), format!("{}-events", grant.name), format!("{}-alerts", grant.name)]
        }
        _ => vec![grant.name.clone()],
    }
}

/// A Mosquitto ACL file giving each identity what [`Grant`] gives it on the
/// embedded broker: devices by the `%u` pattern, bridges, consumers and
/// gateways by name. Mosquitto applies patterns to every user; names are
/// unique across kinds, so a pattern grant to a non-device names no device.
pub fn mosquitto_acl(identities: &[ExportedIdentity]) -> String {
    let mut file = String::from(
        "# Written by `anxin devices export --mosquitto`; do not edit, export again.\n\
         # Devices: each publishes only on its own topics (username = device id = client id).\n\
         pattern write anxin/v1/dev/%u/#\n",
    );
    for identity in identities {
        let grant = &identity.grant;
        match grant.kind {
            IdentityKind::Device => {}
            IdentityKind::Bridge => {
                let _ = writeln!(file, "\n# bridge {}: the devices it carries", grant.name);
                let _ = writeln!(file, "user {}", grant.name);
                for device in &grant.devices {
                    let _ = writeln!(file, "topic write {TOPIC_PREFIX}{device}/#");
                }
            }
            IdentityKind::Consumer => {
                let _ = writeln!(file, "\n# consumer {}: alerts only", grant.name);
                let _ = writeln!(file, "user {}\ntopic read {ALERTS_TOPIC_PREFIX}#", grant.name);
            }
            IdentityKind::Gateway => {
                for name in broker_names(grant) {
                    let _ = writeln!(file, "\n# gateway {}", grant.name);
                    let _ = writeln!(
                        file,
                        "user {name}\ntopic read {TOPIC_PREFIX}#\ntopic read $share/+/{TOPIC_PREFIX}#\n\
                         topic readwrite {ALERTS_TOPIC_PREFIX}#"
                    );
                }
            }
        }
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(name: &str, kind: IdentityKind, devices: &[&str]) -> Grant {
        Grant { name: name.into(), kind, devices: devices.iter().map(|d| (*d).to_string()).collect() }
    }

    #[test]
    fn a_secret_is_128_random_bits_in_hex() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_are_mosquitto_s_own_form() {
        // Made by `mosquitto_passwd -c -b pw dev-1 0123456789abcdef0123456789abcdef` (Mosquitto 2.0.11).
        let mosquitto = "$7$101$fpBFQBPB6pz34dum$vd7E1xpQ7hzxmlH2sks7584LtwqHCoSzUIj5WfoNDxVv4yb8WKVQWDfwPozh6En71B4IAGxybpm66g/OCapbQw==";
        assert!(verify_secret("0123456789abcdef0123456789abcdef", mosquitto));
        assert!(!verify_secret("0123456789abcdef0123456789abcdee", mosquitto));

        let ours = hash_secret("s3cret");
        assert!(ours.starts_with("$7$101$"));
        let parts: Vec<&str> = ours.split('$').collect();
        assert_eq!(BASE64.decode(parts[3]).unwrap().len(), SALT_LEN);
        assert_eq!(BASE64.decode(parts[4]).unwrap().len(), HASH_LEN);
        assert!(verify_secret("s3cret", &ours));
        assert!(!verify_secret("s3cret ", &ours));
        assert_ne!(hash_secret("s3cret"), ours, "each hash has its own salt");
    }

    #[test]
    fn a_malformed_hash_never_matches() {
        for stored in ["", "$7$", "$7$101$AAAA$AAAA", "$6$101$fpBFQBPB6pz34dum$AAAA", "$7$x$a$b", "$7$0$AAAA$AAAA"] {
            assert!(!verify_secret("", stored), "{stored:?}");
        }
    }

    #[test]
    fn a_device_publishes_only_on_its_own_topics() {
        let device = grant("dev-a", IdentityKind::Device, &[]);
        assert!(device.may_publish("anxin/v1/dev/dev-a/summary"));
        assert!(device.may_publish("anxin/v1/dev/dev-a/event"));
        assert!(!device.may_publish("anxin/v1/dev/dev-b/event"));
        assert!(!device.may_publish("anxin/v1/dev/dev-a"));
        assert!(!device.may_publish("anxin/v1/dev/dev-ab/event"));
        assert!(!device.may_publish("anxin/v1/alerts/丹东市/1"));
        assert!(!device.may_subscribe("#"));
        assert!(!device.may_subscribe("anxin/v1/dev/dev-a/#"));
    }

    #[test]
    fn a_bridge_publishes_for_its_devices_and_no_other() {
        let bridge = grant("lora-1", IdentityKind::Bridge, &["dev-a", "dev-b"]);
        assert!(bridge.may_publish("anxin/v1/dev/dev-a/summary"));
        assert!(bridge.may_publish("anxin/v1/dev/dev-b/event"));
        assert!(!bridge.may_publish("anxin/v1/dev/dev-c/event"));
        assert!(!bridge.may_publish("anxin/v1/dev/lora-1/event"));
        assert!(!bridge.may_subscribe("anxin/v1/dev/dev-a/#"));
    }

    #[test]
    fn a_consumer_only_reads_alerts() {
        let consumer = grant("dispatch", IdentityKind::Consumer, &[]);
        assert!(consumer.may_subscribe("anxin/v1/alerts/#"));
        assert!(consumer.may_subscribe("anxin/v1/alerts/振安区/+"));
        assert!(consumer.may_subscribe("$share/sms/anxin/v1/alerts/#"));
        for filter in ["#", "anxin/#", "anxin/v1/+/#", "anxin/v1/dev/#", "$share/x/#", "+/v1/alerts/#"] {
            assert!(!consumer.may_subscribe(filter), "{filter}");
        }
        assert!(!consumer.may_publish("anxin/v1/alerts/振安区/1"));
        assert!(!consumer.may_publish("anxin/v1/dev/dispatch/event"));
    }

    #[test]
    fn a_gateway_reads_devices_and_publishes_alerts() {
        let gateway = grant("gw-1", IdentityKind::Gateway, &[]);
        assert!(gateway.may_subscribe("$share/anxin-gateways/anxin/v1/dev/#"));
        assert!(gateway.may_subscribe("anxin/v1/dev/+/event"));
        assert!(!gateway.may_subscribe("#"));
        assert!(gateway.may_publish("anxin/v1/alerts/振安区/1"));
        assert!(!gateway.may_publish("anxin/v1/dev/dev-a/event"));
    }

    #[test]
    fn a_vendor_list_is_read_whole_or_refused_with_its_line() {
        let csv = "device_id,secret\nnode-1, 0123456789abcdef\n\n\"node-2\",fedcba9876543210fedc\n";
        let read = parse_credentials(csv).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read["node-1"], "0123456789abcdef");
        let json = r#"{"node-3": "0123456789abcdef0123"}"#;
        assert_eq!(parse_credentials(json).unwrap()["node-3"], "0123456789abcdef0123");
        for (bad, why) in [
            ("node-1,short\n", "line 1: the secret of node-1"),
            ("node-1,0123456789abcdef\nNode/2,0123456789abcdef\n", "line 2:"),
            ("node-1,0123456789abcdef\nnode-1,0123456789abcdeg\n", "line 2: node-1 is listed twice"),
            ("node-1,0123456789abcdef,x\n", "line 1: expected two columns"),
            ("", "names no device"),
            ("{\"a\": 1}", "not a JSON object"),
        ] {
            let error = parse_credentials(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn names_keep_wildcards_out() {
        assert!(check_name("dev-0001").is_ok());
        for bad in ["", "a/b", "a+", "#", "Dev", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mosquitto_gets_the_same_rules() {
        let hash = hash_secret("x");
        let identities = [
            ExportedIdentity { grant: grant("dev-a", IdentityKind::Device, &[]), secret_hash: hash.clone() },
            ExportedIdentity { grant: grant("lora-1", IdentityKind::Bridge, &["dev-b"]), secret_hash: hash.clone() },
            ExportedIdentity { grant: grant("dispatch", IdentityKind::Consumer, &[]), secret_hash: hash.clone() },
            ExportedIdentity { grant: grant("gw", IdentityKind::Gateway, &[]), secret_hash: hash.clone() },
        ];
        let passwords = mosquitto_passwords(&identities);
        let names: Vec<&str> = passwords.lines().map(|line| line.split_once(':').unwrap().0).collect();
        assert_eq!(names, ["dev-a", "lora-1", "dispatch", "gw", "gw-events", "gw-alerts"]);
        assert!(passwords.lines().all(|line| line.ends_with(&hash)));
        let acl = mosquitto_acl(&identities);
        assert!(acl.contains("pattern write anxin/v1/dev/%u/#\n"));
        assert!(acl.contains("user lora-1\ntopic write anxin/v1/dev/dev-b/#\n"));
        assert!(acl.contains("user dispatch\ntopic read anxin/v1/alerts/#\n"));
        assert!(acl.contains("user gw-events\ntopic read anxin/v1/dev/#\n"));
    }
}
