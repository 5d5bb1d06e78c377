//! The elder's usual getting-up time, learned from the days they were home.
//!
//! Each closed day contributes its wake time: the first human activity at or
//! after 03:00 local that follows at least three quiet hours (so a trip to the
//! bathroom at 01:00 or a night owl's last round at 04:00 is not mistaken for
//! getting up). With at least `min_days` wake times among the last
//! `window_days` days, the usual time is the one by which the elder was up on
//! 80% of them: late enough that an ordinary slow morning does not alarm,
//! early enough to act hours before a 12-hour timer would.

use serde::{Deserialize, Serialize};

/// Wake detection: the quiet that must come before getting up…
pub const WAKE_AFTER_QUIET_MS: i64 = 3 * 3_600_000;
/// …and the local window a getting-up time may fall in.
pub const WAKE_WINDOW_MIN: (i64, i64) = (3 * 60, 14 * 60);

/// A learned routine: up by `usual_by_min` (local minutes of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routine {
    pub usual_by_min: i64,
    /// How many days it was learned from.
    pub days: usize,
}

/// Learns from the wake times of recent days, oldest first (`None`: a day
/// away, offline, or with no getting-up seen).
pub fn learn(wakes: &[Option<i64>], min_days: usize, window_days: usize) -> Option<Routine> {
    let recent = &wakes[wakes.len().saturating_sub(window_days)..];
    let mut minutes: Vec<i64> = recent.iter().flatten().copied().collect();
    if minutes.len() < min_days {
        return None;
    }
    minutes.sort_unstable();
    // The 80th percentile, nearest rank.
    let rank = (minutes.len() * 4).div_ceil(5).max(1) - 1;
    Some(Routine { usual_by_min: minutes[rank], days: minutes.len() })
}

/// `07:40` from local minutes of the day.
pub fn clock(minutes: i64) -> String {
    let minutes = minutes.rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_two_weeks_and_takes_the_late_side_of_the_usual() {
        let thirteen = vec![Some(7 * 60); 13];
        assert_eq!(learn(&thirteen, 14, 28), None);
        // 20 days at 06:50–07:10, 5 lazier days at 08:00, 3 days away.
        let mut days: Vec<Option<i64>> = (0..20).map(|d| Some(7 * 60 - 10 + d % 21)).collect();
        days.extend([Some(8 * 60); 5]);
        days.extend([None; 3]);
        let routine = learn(&days, 14, 28).unwrap();
        assert_eq!(routine.days, 25);
        assert!((7 * 60..8 * 60).contains(&routine.usual_by_min), "{}", clock(routine.usual_by_min));
        assert_eq!(clock(7 * 60 + 40), "07:40");
    }

    #[test]
    fn only_the_window_counts() {
        let mut days = vec![Some(5 * 60); 28];
        days.extend(vec![Some(9 * 60); 28]);
        assert_eq!(learn(&days, 14, 28).unwrap().usual_by_min, 9 * 60);
    }
}
