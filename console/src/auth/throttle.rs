//! Failed sign-ins are counted per account and per address over a window;
//! past the limit, sign-in is refused without looking at the password.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The failures of each account and address within the window.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    pub const WINDOW_MS: i64 = 15 * 60_000;
    pub const PER_ACCOUNT: usize = 5;
    pub const PER_ADDRESS: usize = 20;

    fn keys(account: &str, address: &str) -> [(String, usize); 2] {
        [
            (format!("account:{}", account.trim().to_lowercase()), Self::PER_ACCOUNT),
            (format!("address:{address}"), Self::PER_ADDRESS),
        ]
    }

    /// Minutes to wait, if this account or address is over its limit.
    pub fn wait_minutes(&self, account: &str, address: &str, now: i64) -> Option<i64> {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = None;
        for (key, limit) in Self::keys(account, address) {
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|t| now - t > Self::WINDOW_MS) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    let minutes = ((oldest + Self::WINDOW_MS - now).max(60_000) + 59_999) / 60_000;
                    wait = Some(wait.map_or(minutes, |w: i64| w.max(minutes)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, account: &str, address: &str, now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| now - t <= Self::WINDOW_MS));
        }
        for (key, _) in Self::keys(account, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    pub fn succeeded(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&format!("account:{}", account.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_counts_per_account_and_per_address_within_its_window() {
        let throttle = Throttle::default();
        let t0 = 1_000_000;
        for i in 0..Throttle::PER_ACCOUNT {
            assert_eq!(throttle.wait_minutes("wang", "10.0.0.1", t0), None, "attempt {i}");
            throttle.failed("wang", "10.0.0.1", t0);
        }
        assert_eq!(throttle.wait_minutes("Wang ", "10.0.0.9", t0 + 1), Some(15), "the account is locked everywhere");
        assert_eq!(throttle.wait_minutes("li", "10.0.0.9", t0 + 1), None, "another account is not");
        assert_eq!(throttle.wait_minutes("wang", "10.0.0.1", t0 + Throttle::WINDOW_MS + 1), None, "the window passes");
        for i in 0..Throttle::PER_ADDRESS {
            throttle.failed(&format!("user{i}"), "10.0.0.2", t0);
        }
        assert!(throttle.wait_minutes("someone-new", "10.0.0.2", t0 + 1).is_some(), "the address is locked");
        throttle.succeeded("wang");
        assert_eq!(throttle.wait_minutes("wang", "10.0.0.3", t0 + 1), None);
    }
}
