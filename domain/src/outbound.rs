//! What leaves the process is signed: a webhook's receiver checks that a
//! request comes from this Anxin and is fresh.
//!
//! `X-Anxin-Signature: t=1796522400,v1=<hex>`, where `v1` is
//! HMAC-SHA256(secret, `"{t}.{body}"`) and `t` the sending time in Unix
//! seconds, as Stripe and Slack sign theirs. The receiver recomputes `v1`
//! over the raw body, compares in constant time, and refuses a `t` more than
//! [`TOLERANCE_S`] from its own clock (a replayed request).

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-anxin-signature";

/// How far a request's time may be from the receiver's clock.
pub const TOLERANCE_S: i64 = 300;

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not t=…,v1=…")]
    Malformed,
    #[error("the request was signed {0} s from now, more than {TOLERANCE_S} s")]
    Stale(i64),
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac(secret: &str, timestamp_s: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header's value for `body` sent at `timestamp_s`.
pub fn sign(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_s, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp_s},v1={hex}")
}

/// The receiver's check of `header` over `body` at its own time `now_s`.
pub fn verify(secret: &str, header: &str, body: &[u8], now_s: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut tag = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => tag = decode_hex(value),
            _ => {}
        }
    }
    let (Some(timestamp), Some(tag)) = (timestamp, tag) else { return Err(SignatureError::Malformed) };
    let skew = now_s - timestamp;
    if skew.abs() > TOLERANCE_S {
        return Err(SignatureError::Stale(skew));
    }
    // Constant time: `verify_slice` compares without an early exit.
    mac(secret, timestamp, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_or_delay_is_refused() {
        let body = br#"{"event_id":7,"kind":"smoke"}"#;
        let header = sign("a shared secret!", 1_796_522_400, body);
        assert!(header.starts_with("t=1796522400,v1=") && header.len() == "t=1796522400,v1=".len() + 64, "{header}");
        assert_eq!(verify("a shared secret!", &header, body, 1_796_522_460), Ok(()));
        assert_eq!(verify("another secret!!", &header, body, 1_796_522_460), Err(SignatureError::Mismatch));
        assert_eq!(verify("a shared secret!", &header, b"{}", 1_796_522_460), Err(SignatureError::Mismatch));
        assert_eq!(verify("a shared secret!", &header, body, 1_796_523_400), Err(SignatureError::Stale(1_000)));
        assert_eq!(verify("a shared secret!", "v1=00", body, 1_796_522_400), Err(SignatureError::Malformed));
    }

    /// RFC 4231 test case 2, through the same MAC: the scheme is plain HMAC-SHA256.
    #[test]
    fn the_mac_is_hmac_sha256() {
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
