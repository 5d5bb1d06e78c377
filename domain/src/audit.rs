//! The audit log is a hash chain: each entry holds the hash of the one
//! before it and its own, SHA-256 over the previous hash and its fields
//! (each length-prefixed, so no two entries hash alike by shifting text
//! between fields). Editing, inserting or removing an entry breaks every
//! link after it; `anxin audit verify` finds the first break.

use sha2::{Digest, Sha256};

/// The hash the first entry of a chain follows.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry says, as hashed.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub elder_id: Option<i64>,
    pub detail: Option<&'a str>,
}

/// The hash of `entry` following `previous` (lowercase hex).
pub fn link(previous: &str, entry: &Entry<'_>) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(previous.as_bytes());
    field(&entry.at.to_be_bytes());
    field(entry.actor.as_bytes());
    field(entry.action.as_bytes());
    field(entry.elder_id.map_or_else(|| "-".to_string(), |id| id.to_string()).as_bytes());
    field(entry.detail.unwrap_or("\u{0}").as_bytes());
    hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_the_previous_hash_count() {
        let entry = Entry { at: 1, actor: "admin", action: "elder read", elder_id: Some(7), detail: None };
        let base = link(GENESIS, &entry);
        assert_eq!(base.len(), 64);
        assert_eq!(base, link(GENESIS, &entry), "the same entry hashes alike");
        let changed = [
            link(&base, &entry),
            link(GENESIS, &Entry { at: 2, ..entry }),
            link(GENESIS, &Entry { actor: "admim", ..entry }),
            link(GENESIS, &Entry { action: "elder reads", ..entry }),
            link(GENESIS, &Entry { elder_id: Some(8), ..entry }),
            link(GENESIS, &Entry { elder_id: None, ..entry }),
            link(GENESIS, &Entry { detail: Some(""), ..entry }),
            link(GENESIS, &Entry { actor: "admin elder", action: "read", ..entry }),
        ];
        for other in changed {
            assert_ne!(other, base);
        }
    }
}
