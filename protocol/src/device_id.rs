//! Device identifiers: the only part of a topic a device chooses.

use core::fmt;

/// Longest device id the contract accepts.
pub const DEVICE_ID_MAX_LEN: usize = 64;

/// A device's identifier: 1–64 characters of `a-z 0-9 - _ .`.
///
/// The alphabet keeps MQTT wildcards (`+`, `#`), the level separator (`/`),
/// upper case (which would make two ids for one device), spaces and control
/// characters out, so a `DeviceId` can be used as a topic level and as a
/// broker username (ACL pattern `anxin/v1/dev/%u/#`) without escaping.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(heapless::String<DEVICE_ID_MAX_LEN>);

/// Why a string is not a [`DeviceId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("device id is empty")]
    Empty,
    #[error("device id is longer than {DEVICE_ID_MAX_LEN} characters")]
    TooLong,
    #[error("device id contains {0:?}; only a-z, 0-9, '-', '_' and '.' are allowed")]
    ForbiddenCharacter(char),
}

impl DeviceId {
    /// Parses a device id, accepting only the contract's alphabet.
    pub fn parse(text: &str) -> Result<Self, DeviceIdError> {
        if text.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if let Some(forbidden) = text.chars().find(|c| !is_allowed(*c)) {
            return Err(DeviceIdError::ForbiddenCharacter(forbidden));
        }
        // Length is checked after the alphabet, which is ASCII only, so the
        // byte length is the character count.
        let mut id = heapless::String::new();
        id.push_str(text).map_err(|_| DeviceIdError::TooLong)?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({:?})", self.as_str())
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_lowercase_id_is_accepted() {
        assert_eq!(DeviceId::parse("node-01.kitchen_a").unwrap().as_str(), "node-01.kitchen_a");
    }

    #[test]
    fn wildcards_separators_and_control_characters_are_refused() {
        for (text, bad) in [("a+b", '+'), ("a#", '#'), ("a/b", '/'), ("a\u{0}", '\u{0}'), ("A1", 'A'), ("a b", ' ')] {
            assert_eq!(DeviceId::parse(text), Err(DeviceIdError::ForbiddenCharacter(bad)), "{text:?}");
        }
    }

    #[test]
    fn the_length_is_bounded_at_64() {
        let longest = "a".repeat(DEVICE_ID_MAX_LEN);
        assert!(DeviceId::parse(&longest).is_ok());
        assert_eq!(DeviceId::parse(&(longest + "a")), Err(DeviceIdError::TooLong));
        assert_eq!(DeviceId::parse(""), Err(DeviceIdError::Empty));
    }
}
