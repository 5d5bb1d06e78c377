//! Logging bad input without letting a broken device flood the log: the
//! first rejection of each reason is logged, then at most one line per
//! reason per interval, saying how many were not logged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    reasons: HashMap<&'static str, Window>,
}

#[derive(Debug)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self { interval, reasons: HashMap::new() }
    }

    /// `Some(n)`: log now, mentioning the `n` rejections not logged since the
    /// last line for this reason. `None`: stay quiet.
    pub fn admit(&mut self, reason: &'static str, now: Instant) -> Option<u64> {
        match self.reasons.get_mut(reason) {
            None => {
                self.reasons.insert(reason, Window { logged_at: now, suppressed: 0 });
                Some(0)
            }
            Some(window) if now.duration_since(window.logged_at) >= self.interval => {
                let suppressed = window.suppressed;
                *window = Window { logged_at: now, suppressed: 0 };
                Some(suppressed)
            }
            Some(window) => {
                window.suppressed += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_each_reason_is_logged_then_one_line_per_interval() {
        let start = Instant::now();
        let mut limiter = LogLimiter::new(Duration::from_secs(60));
        assert_eq!(limiter.admit("not_json", start), Some(0));
        assert_eq!(limiter.admit("too_large", start), Some(0));
        for second in 1..60 {
            assert_eq!(limiter.admit("not_json", start + Duration::from_secs(second)), None);
        }
        assert_eq!(limiter.admit("not_json", start + Duration::from_secs(60)), Some(59));
        assert_eq!(limiter.admit("not_json", start + Duration::from_secs(61)), None);
    }
}
