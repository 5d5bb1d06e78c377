//! `status`: retained online/offline. The node's Last Will is the offline one.

use serde::{Deserialize, Serialize};

use super::{EncodeError, Rejection, U32_RANGE, check_version, encode_with, optional_integer, parse_raw, required};
use crate::SCHEMA_VERSION;

/// Longest firmware version string accepted.
pub const FIRMWARE_MAX_LEN: usize = 32;

/// A firmware version string such as `0.1.0`: printable ASCII without quotes
/// or backslashes, so that it reads back exactly as it was written.
pub type Firmware = heapless::String<FIRMWARE_MAX_LEN>;

fn is_firmware_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '"' && c != '\\'
}

/// `{"v":1,"boot":…,"state":"online","fw":"0.1.0"}`, or the Last Will
/// `{"v":1,"state":"offline"}`, which the broker publishes for a node that
/// vanished and so cannot carry a boot id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub boot: Option<u32>,
    pub state: StatusState,
    pub fw: Option<Firmware>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusState {
    Online,
    Offline,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Online => "online",
            StatusState::Offline => "offline",
        }
    }
}

#[derive(Deserialize)]
struct RawStatus<'a> {
    v: Option<f64>,
    boot: Option<f64>,
    #[serde(borrow)]
    state: Option<&'a str>,
    #[serde(borrow)]
    fw: Option<&'a str>,
}

#[derive(Serialize)]
struct WireStatus<'a> {
    v: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    boot: Option<u32>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fw: Option<&'a str>,
}

impl Status {
    /// The Last Will a node registers when it connects.
    pub const LAST_WILL: Status = Status { boot: None, state: StatusState::Offline, fw: None };

    pub fn online(boot: u32, fw: &str) -> Self {
        let mut firmware = Firmware::new();
        // A version too long or with odd characters is cut rather than
        // refused: the node must still be able to say it is online.
        for c in fw.chars().filter(|c| is_firmware_char(*c)) {
            if firmware.push(c).is_err() {
                break;
            }
        }
        Self { boot: Some(boot), state: StatusState::Online, fw: Some(firmware) }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let raw: RawStatus<'_> = parse_raw(bytes)?;
        check_version(raw.v)?;
        let state = match required(raw.state, "state")? {
            "online" => StatusState::Online,
            "offline" => StatusState::Offline,
            _ => return Err(Rejection::UnknownState),
        };
        let boot = optional_integer(raw.boot, "boot", U32_RANGE)?;
        let fw = match raw.fw {
            Some(fw) if !fw.chars().all(is_firmware_char) => return Err(Rejection::OutOfRange("fw")),
            Some(fw) => Some(Firmware::try_from(fw).map_err(|_| Rejection::OutOfRange("fw"))?),
            None => None,
        };
        Ok(Self { boot, state, fw })
    }

    pub fn encode(&self, buffer: &mut [u8]) -> Result<usize, EncodeError> {
        let wire =
            WireStatus { v: SCHEMA_VERSION, boot: self.boot, state: self.state.as_str(), fw: self.fw.as_deref() };
        encode_with(&wire, buffer)
    }
}
