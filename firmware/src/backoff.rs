//! Reconnect backoff: exponential, capped, with jitter.
//!
//! Jitter matters here: after a district-wide power or network cut, a
//! thousand nodes come back in the same second, and without it they would
//! retry in lockstep and hammer the broker together.

/// Exponential backoff from `base_ms`, doubling per failure up to `max_ms`;
/// each delay is drawn uniformly from the upper half of the current step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    failures: u32,
}

impl Backoff {
    pub const fn new(base_ms: u64, max_ms: u64) -> Self {
        Self { base_ms, max_ms, failures: 0 }
    }

    /// The delay before the next attempt after another failure. `random` is
    /// any random 32-bit value (the board's RNG).
    pub fn next_delay_ms(&mut self, random: u32) -> u64 {
        let step = self.base_ms.saturating_mul(1u64 << self.failures.min(32)).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        half + u64::from(random) % (step - half + 1)
    }

    /// A connection succeeded: start from `base_ms` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Default for Backoff {
    /// 1 s doubling to 5 min.
    fn default() -> Self {
        Self::new(1_000, 300_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_stay_capped_and_reset_after_success() {
        let mut backoff = Backoff::new(1_000, 8_000);
        let highest: Vec<u64> = (0..6).map(|_| backoff.next_delay_ms(u32::MAX)).collect();
        let mut fresh = Backoff::new(1_000, 8_000);
        let lowest: Vec<u64> = (0..6).map(|_| fresh.next_delay_ms(0)).collect();
        // random % (step/2 + 1) with u32::MAX lands somewhere in the upper half.
        for (low, high) in lowest.iter().zip(&highest) {
            assert!(low <= high);
        }
        assert_eq!(lowest, vec![500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(0), 500);
    }

    #[test]
    fn every_delay_stays_within_its_step() {
        let mut backoff = Backoff::new(1_000, 300_000);
        for failure in 0..40u32 {
            let step = (1_000u64 << failure.min(32)).min(300_000);
            let delay = backoff.next_delay_ms(failure.wrapping_mul(2_654_435_761));
            assert!((step / 2..=step).contains(&delay), "failure {failure}: {delay} not in {}..={step}", step / 2);
        }
    }
}
