//! Anxin's time: UTC epoch milliseconds (`i64`) everywhere; the deployment's
//! day is local (`AlertPolicy::utc_offset`, +08:00 by default).

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// What time it is: the system's, or, in a test, an instant that stands
/// still until the test moves it. The rules take `now` as an argument; a
/// clock is where the edges (the console's handlers) read it, so a test of
/// an idle timeout moves the clock instead of sleeping.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system's clock.
    set: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { set: None }
    }

    /// A clock standing at `ms` (UTC epoch milliseconds) until moved.
    pub fn set_at(ms: i64) -> Clock {
        Clock { set: Some(Arc::new(AtomicI64::new(ms))) }
    }

    /// UTC epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.set {
            Some(at) => at.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Moves a set clock on by `ms`, for every holder of it; the system's
    /// clock moves by itself, and this leaves it alone.
    pub fn advance(&self, ms: i64) {
        if let Some(at) = &self.set {
            at.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// The local date now at `offset` (the deployment's day, not the machine's).
    pub fn today(&self, offset: chrono::FixedOffset) -> chrono::NaiveDate {
        local_day(self.now_ms(), offset)
    }
}

/// The instant a local date begins at `offset`, epoch ms (a fixed offset has
/// one midnight a day).
pub fn day_start_ms(day: chrono::NaiveDate, offset: chrono::FixedOffset) -> i64 {
    day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis() - i64::from(offset.local_minus_utc()) * 1_000
}

/// The local date of an instant at `offset`.
pub fn local_day(ms: i64, offset: chrono::FixedOffset) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&offset).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn china_day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_set_clock_stands_still_until_moved_and_its_day_is_the_deployments() {
        // 2026-12-06 17:30 UTC is already the 7th at +08:00.
        let clock = Clock::set_at(1_796_578_200_000);
        let held = clock.clone();
        assert_eq!(clock.now_ms(), 1_796_578_200_000);
        let china = chrono::FixedOffset::east_opt(8 * 3_600).unwrap();
        assert_eq!(clock.today(china).to_string(), "2026-12-07");
        assert_eq!(clock.today(chrono::FixedOffset::east_opt(0).unwrap()).to_string(), "2026-12-06");
        clock.advance(7 * HOUR_MS);
        assert_eq!(held.now_ms(), 1_796_578_200_000 + 7 * HOUR_MS, "every holder sees it move");
        assert_eq!(day_start_ms(china_day("2026-12-07"), china), 1_796_572_800_000, "16:00 UTC the day before");
        assert_eq!(local_day(day_start_ms(china_day("2026-12-07"), china), china).to_string(), "2026-12-07");
        let system = Clock::system();
        system.advance(DAY_MS);
        assert!((system.now_ms() - chrono::Utc::now().timestamp_millis()).abs() < HOUR_MS, "the system's is not moved");
    }
}
