//! Sign-in attempts are counted per account and per client address. An
//! attempt is counted *before* its password is checked, so parallel guesses
//! cannot slip past the count: an account gets [`Throttle::FREE_PER_ACCOUNT`]
//! checks, then a delay that doubles with each further failure (1, 2, 4, 8,
//! then 15 minutes) during which every password waits, the right one too.
//! Other accounts are never held back by an account's failures; an address
//! (the real client's, behind a trusted proxy) gets
//! [`Throttle::FREE_PER_ADDRESS`] failures before it waits the same way.
//! Failures are forgotten a window after the last one.

use std::collections::HashMap;
use std::sync::Mutex;

/// One account's or address's record.
#[derive(Debug, Default, Clone, Copy)]
struct Record {
    /// Failures since the record was last forgotten.
    failures: u32,
    /// Attempts whose password is being checked now.
    in_flight: u32,
    last_failure: i64,
    /// No attempt before this time.
    waits_until: i64,
}

/// The attempts of each account and address.
#[derive(Debug, Default)]
pub struct Throttle {
    records: Mutex<HashMap<String, Record>>,
}

/// Which record: an account (by its name as typed, folded) or an address.
fn keys(account: &str, address: &str) -> [(String, u32); 2] {
    [
        (format!("account:{}", account.trim().to_lowercase()), Throttle::FREE_PER_ACCOUNT),
        (format!("address:{address}"), Throttle::FREE_PER_ADDRESS),
    ]
}

/// The delay after the `over`-th failure past the free ones (0 for the first).
fn delay_ms(over: u32) -> i64 {
    (Throttle::FIRST_DELAY_MS << over.min(10)).min(Throttle::LONGEST_DELAY_MS)
}

/// An attempt let through: its password may be checked. Say how it ended;
/// dropped without a word (the database failed), it counts as neither.
#[derive(Debug)]
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: [(String, u32); 2],
    settled: bool,
}

impl Throttle {
    /// Failures forgotten this long after the last one.
    pub const WINDOW_MS: i64 = 15 * 60_000;
    pub const FREE_PER_ACCOUNT: u32 = 5;
    pub const FREE_PER_ADDRESS: u32 = 20;
    pub const FIRST_DELAY_MS: i64 = 60_000;
    pub const LONGEST_DELAY_MS: i64 = 15 * 60_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets an attempt through, counted, or says how many minutes to wait.
    pub fn begin(&self, account: &str, address: &str, now: i64) -> Result<Attempt<'_>, i64> {
        let keys = keys(account, address);
        let mut records = self.lock();
        if records.len() > 100_000 {
            records.retain(|_, record| record.in_flight > 0 || now - record.last_failure <= Self::WINDOW_MS);
        }
        let mut wait_ms = 0;
        for (key, free) in &keys {
            let Some(record) = records.get_mut(key) else { continue };
            if record.in_flight == 0 && now - record.last_failure > Self::WINDOW_MS && now >= record.waits_until {
                *record = Record::default();
            }
            if now < record.waits_until {
                wait_ms = wait_ms.max(record.waits_until - now);
            } else if record.failures + record.in_flight >= *free && record.in_flight > 0 {
                // Past the free attempts, one at a time: the one in flight
                // decides the next delay.
                wait_ms = wait_ms.max(Self::FIRST_DELAY_MS);
            }
        }
        if wait_ms > 0 {
            return Err((wait_ms + 59_999) / 60_000);
        }
        for (key, _) in &keys {
            records.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt { throttle: self, keys, settled: false })
    }
}

impl Attempt<'_> {
    /// The password was wrong: counted, and past the free attempts the
    /// account (or address) waits.
    pub fn failed(mut self, now: i64) {
        self.settled = true;
        let mut records = self.throttle.lock();
        for (key, free) in &self.keys {
            let record = records.entry(key.clone()).or_default();
            record.in_flight = record.in_flight.saturating_sub(1);
            record.failures += 1;
            record.last_failure = now;
            if record.failures >= *free {
                record.waits_until = now + delay_ms(record.failures - free);
            }
        }
    }

    /// Signed in: the account's failures are forgotten (the address's stay).
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut records = self.throttle.lock();
        let [(account, _), (address, _)] = &self.keys;
        records.remove(account);
        if let Some(record) = records.get_mut(address) {
            record.in_flight = record.in_flight.saturating_sub(1);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let mut records = self.throttle.lock();
            for (key, _) in &self.keys {
                if let Some(record) = records.get_mut(key) {
                    record.in_flight = record.in_flight.saturating_sub(1);
                }
            }
        }
    }
}

/// The answer links' limit, per client address: a link is a credential in a
/// URL, so guessing one is the attack. [`LinkLimiter::PER_MINUTE`] requests a
/// minute, and after [`LinkLimiter::BAD_LINKS`] tampered or unknown links an
/// address is refused for the rest of [`LinkLimiter::WINDOW_MS`].
#[derive(Debug, Default)]
pub struct LinkLimiter {
    records: Mutex<HashMap<String, LinkRecord>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct LinkRecord {
    minute_start: i64,
    in_minute: u32,
    window_start: i64,
    bad: u32,
}

impl LinkLimiter {
    pub const PER_MINUTE: u32 = 30;
    pub const BAD_LINKS: u32 = 10;
    pub const WINDOW_MS: i64 = 15 * 60_000;
    /// Addresses remembered at most; the oldest are forgotten past it.
    const REMEMBERED: usize = 10_000;

    /// Whether `address` may open a link now; counts the request.
    pub fn allow(&self, address: &str, now: i64) -> bool {
        let mut records = self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() >= Self::REMEMBERED {
            records.retain(|_, record| now - record.window_start < Self::WINDOW_MS);
        }
        let record = records.entry(address.to_string()).or_default();
        if now - record.minute_start >= 60_000 {
            record.minute_start = now;
            record.in_minute = 0;
        }
        if now - record.window_start >= Self::WINDOW_MS {
            record.window_start = now;
            record.bad = 0;
        }
        record.in_minute += 1;
        record.in_minute <= Self::PER_MINUTE && record.bad < Self::BAD_LINKS
    }

    /// A tampered, unknown or made-up link came from `address`.
    pub fn bad_link(&self, address: &str, now: i64) {
        let mut records = self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let record = records.entry(address.to_string()).or_default();
        if now - record.window_start >= Self::WINDOW_MS {
            record.window_start = now;
            record.bad = 0;
        }
        record.bad += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000;

    #[test]
    fn parallel_guesses_get_the_free_checks_and_no_more() {
        let throttle = Throttle::default();
        let attempts: Vec<_> = (0..40).filter_map(|_| throttle.begin("wang", "10.0.0.1", T0).ok()).collect();
        assert_eq!(attempts.len(), 5, "counted before any password is checked");
        for attempt in attempts {
            attempt.failed(T0);
        }
        assert_eq!(throttle.begin("Wang ", "10.0.0.9", T0 + 1).err(), Some(1), "the right password waits too");
        assert!(throttle.begin("admin", "10.0.0.1", T0 + 1).is_ok(), "another account is not held back");
    }

    #[test]
    fn the_delay_doubles_with_each_failure_past_the_free_ones_and_the_window_forgets() {
        let throttle = Throttle::default();
        let mut now = T0;
        for _ in 0..Throttle::FREE_PER_ACCOUNT {
            throttle.begin("li", "10.0.0.1", now).unwrap().failed(now);
        }
        let mut waits = Vec::new();
        for _ in 0..5 {
            let minutes = throttle.begin("li", "10.0.0.1", now).unwrap_err();
            waits.push(minutes);
            now += minutes * 60_000;
            throttle.begin("li", "10.0.0.1", now).unwrap().failed(now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 15]);
        let later = now + Throttle::LONGEST_DELAY_MS + Throttle::WINDOW_MS + 1;
        throttle.begin("li", "10.0.0.1", later).unwrap().succeeded();
        assert!(throttle.begin("li", "10.0.0.1", later).is_ok(), "signed in: forgotten");
    }

    #[test]
    fn an_address_spraying_accounts_waits_and_an_unsettled_attempt_counts_for_nothing() {
        let throttle = Throttle::default();
        for i in 0..Throttle::FREE_PER_ADDRESS {
            throttle.begin(&format!("user{i}"), "10.0.0.2", T0).unwrap().failed(T0);
        }
        assert!(throttle.begin("someone-new", "10.0.0.2", T0 + 1).is_err(), "the address waits");
        assert!(throttle.begin("someone-new", "10.0.0.3", T0 + 1).is_ok(), "another address does not");
        for _ in 0..10 {
            drop(throttle.begin("zhao", "10.0.0.4", T0).unwrap());
        }
        assert!(throttle.begin("zhao", "10.0.0.4", T0).is_ok(), "a database error is not a failure");
    }

    #[test]
    fn an_address_guessing_links_is_refused_and_others_are_not() {
        let limiter = LinkLimiter::default();
        for _ in 0..LinkLimiter::BAD_LINKS {
            assert!(limiter.allow("203.0.113.7", 1_000));
            limiter.bad_link("203.0.113.7", 1_000);
        }
        assert!(!limiter.allow("203.0.113.7", 2_000), "ten bad links: refused");
        assert!(limiter.allow("198.51.100.1", 2_000), "another address is not held back");
        assert!(limiter.allow("203.0.113.7", 1_000 + LinkLimiter::WINDOW_MS), "the window forgets");
        let busy = LinkLimiter::default();
        let allowed = (0..40).filter(|_| busy.allow("198.51.100.2", 5_000)).count();
        assert_eq!(allowed, LinkLimiter::PER_MINUTE as usize);
        assert!(busy.allow("198.51.100.2", 65_000), "a new minute");
    }
}
