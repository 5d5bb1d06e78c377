//! The traditional festivals the plan names for more frequent visits
//! (传统节日: 春节, 中秋, 重阳), on the solar calendar, with the days a
//! heightened watch around each covers.

use chinese_lunisolar_calendar::{LunarDay, LunarMonth, LunisolarDate, LunisolarYear, SolarYear};
use serde::{Deserialize, Serialize};

use crate::ledger::choices;

choices! {
    /// A festival of the lunar calendar.
    Festival {
        /// 春节: the first day of the first lunar month.
        SpringFestival = ("spring_festival", "春节"),
        /// 中秋: the 15th of the eighth lunar month.
        MidAutumn = ("mid_autumn", "中秋"),
        /// 重阳: the 9th of the ninth lunar month, the elders' day.
        DoubleNinth = ("double_ninth", "重阳"),
    }
}

impl Festival {
    /// Its solar date in the lunar year that begins in solar `year`.
    pub fn day(self, year: i32) -> Option<chrono::NaiveDate> {
        let (month, day) = match self {
            Festival::SpringFestival => (LunarMonth::First, LunarDay::First),
            Festival::MidAutumn => (LunarMonth::Eighth, LunarDay::Fifteen),
            Festival::DoubleNinth => (LunarMonth::Ninth, LunarDay::Ninth),
        };
        let year = LunisolarYear::from_solar_year(SolarYear::from_u16(u16::try_from(year).ok()?)).ok()?;
        let date = LunisolarDate::from_lunisolar_year_lunar_month_day(year, month, day).ok()?;
        Some(date.to_solar_date().to_naive_date())
    }

    /// The days a heightened watch for it covers: 除夕 to 初六 for 春节 (the
    /// holiday week, when families travel and homes are busy or empty), the
    /// eve to the day after for the others.
    pub fn watch(self, day: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
        let (before, after) = match self {
            Festival::SpringFestival => (1, 5),
            Festival::MidAutumn | Festival::DoubleNinth => (1, 1),
        };
        (day - chrono::Days::new(before), day + chrono::Days::new(after))
    }
}

/// The festivals from `today` to `days` days on, soonest first, with their
/// dates (a festival whose watch has begun still shows).
pub fn upcoming(today: chrono::NaiveDate, days: u64) -> Vec<(Festival, chrono::NaiveDate)> {
    use chrono::Datelike;
    let until = today + chrono::Days::new(days);
    let mut found: Vec<(Festival, chrono::NaiveDate)> = [today.year() - 1, today.year(), today.year() + 1]
        .into_iter()
        .flat_map(|year| Festival::ALL.iter().filter_map(move |f| Some((*f, f.day(year)?))))
        .filter(|(festival, day)| festival.watch(*day).1 >= today && *day <= until)
        .collect();
    found.sort_by_key(|(_, day)| *day);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_festivals_fall_on_their_lunar_dates() {
        // As the calendar of the State Council's holiday notices has them.
        assert_eq!(Festival::SpringFestival.day(2026), Some(day("2026-02-17")));
        assert_eq!(Festival::MidAutumn.day(2026), Some(day("2026-09-25")));
        assert_eq!(Festival::DoubleNinth.day(2026), Some(day("2026-10-18")));
        assert_eq!(Festival::SpringFestival.day(2027), Some(day("2027-02-06")));
        assert_eq!(Festival::MidAutumn.day(2025), Some(day("2025-10-06")));
        assert_eq!(Festival::SpringFestival.watch(day("2026-02-17")), (day("2026-02-16"), day("2026-02-22")));
    }

    #[test]
    fn the_upcoming_festivals_are_listed_soonest_first() {
        let soon = upcoming(day("2026-09-01"), 60);
        assert_eq!(soon, vec![(Festival::MidAutumn, day("2026-09-25")), (Festival::DoubleNinth, day("2026-10-18"))]);
        // On the festival's last watched day it still shows.
        assert_eq!(upcoming(day("2026-09-26"), 10), vec![(Festival::MidAutumn, day("2026-09-25"))]);
        assert_eq!(upcoming(day("2026-12-06"), 90), vec![(Festival::SpringFestival, day("2027-02-06"))]);
    }
}
