//! Thresholds: the defaults, what an elder's categories and a per-elder
//! override change, and what heightened watch tightens. Figures follow
//! telecare practice (`shared/research/mission-anchors.md`): 12 h rolling
//! inactivity, temperature re-arming only after 1 °C and a minute back inside
//! the band, at most one low and one high a day, no temperature alarm in the
//! first hour after power-up.

use chrono::FixedOffset;

use super::Category;

use crate::time::{HOUR_MS, MINUTE_MS};

/// Every knob of the rules, for all homes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    /// The homes' local time (China: UTC+8, no daylight saving).
    pub utc_offset: FixedOffset,
    /// No human activity for this long raises an inactivity warning…
    pub inactivity_ms: i64,
    /// …or this long for dependent (失能) and severely disabled (重残) elders.
    pub inactivity_strict_ms: i64,
    /// The warning turns critical when the silence lasts this many times the threshold.
    pub critical_factor_percent: i64,
    /// "Not up by the usual time plus this": the learned-routine warning.
    pub routine_margin_ms: i64,
    /// Days of history before the routine is trusted, and days it looks back.
    pub routine_min_days: usize,
    pub routine_window_days: usize,
    /// Indoor temperature band, in 0.1 °C: below `cold_below_dc` is cold,
    /// above `heat_above_dc` is heat…
    pub cold_below_dc: i32,
    pub heat_above_dc: i32,
    /// …for at least this long.
    pub temp_sustain_ms: i64,
    /// Back inside the band by this much (0.1 °C)…
    pub temp_rearm_margin_dc: i32,
    /// …for this long before the temperature rule arms again.
    pub temp_rearm_hold_ms: i64,
    /// No temperature alarm this soon after a node powers up.
    pub power_up_inhibit_ms: i64,
    /// Night, in local minutes of the day: from `night_start_min` to `night_end_min`.
    pub night_start_min: i64,
    pub night_end_min: i64,
    /// A door open this long at night raises `door_night`.
    pub door_night_ms: i64,
    /// Battery (%) at or below which `low_battery` is raised, and at or above
    /// which it clears itself (a new battery).
    pub low_battery_percent: i64,
    pub battery_ok_percent: i64,
    /// A critical alert not acknowledged this long escalates…
    pub escalate_after_ms: i64,
    /// …and reminds again this often until acknowledged.
    pub remind_every_ms: i64,
    /// Heightened watch: thresholds (inactivity, temperature duration) are
    /// this percentage of normal, and the band narrows by this much each side.
    pub heightened_percent: i64,
    pub heightened_band_dc: i32,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            utc_offset: FixedOffset::east_opt(8 * 3_600).unwrap_or(FixedOffset::east_opt(0).expect("UTC")),
            inactivity_ms: 12 * HOUR_MS,
            inactivity_strict_ms: 8 * HOUR_MS,
            critical_factor_percent: 150,
            routine_margin_ms: 60 * MINUTE_MS,
            routine_min_days: 14,
            routine_window_days: 28,
            cold_below_dc: 100,
            heat_above_dc: 320,
            temp_sustain_ms: 30 * MINUTE_MS,
            temp_rearm_margin_dc: 10,
            temp_rearm_hold_ms: MINUTE_MS,
            power_up_inhibit_ms: HOUR_MS,
            night_start_min: 22 * 60,
            night_end_min: 6 * 60,
            door_night_ms: 30 * MINUTE_MS,
            low_battery_percent: 15,
            battery_ok_percent: 30,
            escalate_after_ms: MINUTE_MS,
            remind_every_ms: MINUTE_MS,
            heightened_percent: 50,
            heightened_band_dc: 20,
        }
    }
}

/// What is known of one elder that changes the thresholds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElderFacts {
    pub categories: Vec<Category>,
    /// Per-elder override of the inactivity threshold, in hours.
    pub inactivity_hours: Option<i64>,
}

/// The thresholds for one home at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HomePolicy {
    pub inactivity_ms: i64,
    pub critical_ms: i64,
    pub cold_below_dc: i32,
    pub heat_above_dc: i32,
    pub temp_sustain_ms: i64,
    /// Under heightened watch (extreme weather).
    pub heightened: bool,
    /// Away until this moment (hospital, family): alerts other than smoke and
    /// help are paused.
    pub away_until: Option<i64>,
}

impl AlertPolicy {
    /// Today's date in the deployment's time zone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&self.utc_offset).date_naive()
    }

    /// Resolves the thresholds for one elder.
    pub fn for_home(&self, elder: &ElderFacts, heightened: bool, away_until: Option<i64>) -> HomePolicy {
        let strict = elder.categories.iter().any(|c| matches!(c, Category::Dependent | Category::SeverelyDisabled));
        let base = match elder.inactivity_hours {
            Some(hours) if hours > 0 => hours.saturating_mul(HOUR_MS),
            _ if strict => self.inactivity_strict_ms,
            _ => self.inactivity_ms,
        };
        let tighten = |ms: i64| if heightened { ms * self.heightened_percent / 100 } else { ms };
        let inactivity_ms = tighten(base);
        let band = if heightened { self.heightened_band_dc } else { 0 };
        HomePolicy {
            inactivity_ms,
            critical_ms: inactivity_ms * self.critical_factor_percent / 100,
            cold_below_dc: self.cold_below_dc + band,
            heat_above_dc: self.heat_above_dc - band,
            temp_sustain_ms: tighten(self.temp_sustain_ms),
            heightened,
            away_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_override_and_heightened_watch_set_the_threshold() {
        let policy = AlertPolicy::default();
        let plain = policy.for_home(&ElderFacts::default(), false, None);
        assert_eq!(plain.inactivity_ms, 12 * HOUR_MS);
        assert_eq!(plain.critical_ms, 18 * HOUR_MS);
        let dependent =
            ElderFacts { categories: vec![Category::LivingAlone, Category::Dependent], ..ElderFacts::default() };
        assert_eq!(policy.for_home(&dependent, false, None).inactivity_ms, 8 * HOUR_MS);
        let overridden = ElderFacts { inactivity_hours: Some(5), ..dependent.clone() };
        assert_eq!(policy.for_home(&overridden, false, None).inactivity_ms, 5 * HOUR_MS);
        let storm = policy.for_home(&dependent, true, None);
        assert_eq!(storm.inactivity_ms, 4 * HOUR_MS);
        assert_eq!((storm.cold_below_dc, storm.heat_above_dc), (120, 300));
        assert_eq!(storm.temp_sustain_ms, 15 * MINUTE_MS);
    }
}
