//! Remote check-ins (远程监测探访): when a closed day counts as a visit.
//!
//! The rule, as written in ARCHITECTURE.md and the console's help:
//! a day counts for an elder when
//! 1. the elder was active: motion or a door in at least two different
//!    hours of the day;
//! 2. the home's sensors were online: they reported in at least 20 of the
//!    day's 24 hours, and none was offline when the day ended;
//! 3. no critical alert (smoke, help, lasting inactivity) was open at any
//!    moment of the day;
//! 4. the elder was not marked away at any moment of the day.
//!
//! A day that does not count says which condition it failed, so an auditor
//! can see why.

use serde::Serialize;

use super::rules::Day;

/// Activity needed in this many different hours.
pub const MIN_ACTIVE_HOURS: u32 = 2;
/// Sensors must have reported in this many hours of the day.
pub const MIN_REPORTED_HOURS: u32 = 20;

/// What the database knows about the day besides its tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFacts {
    /// A critical alert was open at some moment of the day.
    pub critical_alert_open: bool,
    /// Alerts opened during the day.
    pub alerts_opened: i64,
}

/// The summary recorded with a remote visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySummary {
    pub first_activity_at: Option<i64>,
    pub last_activity_at: Option<i64>,
    pub active_hours: u32,
    pub reported_hours: u32,
    pub door_opens: i64,
    pub motion: i64,
    pub temp_min_dc: Option<i32>,
    pub temp_max_dc: Option<i32>,
    pub alerts: i64,
}

/// Whether the day counts, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Counts,
    DoesNotCount(&'static str),
}

impl Verdict {
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Counts => "active, sensors online, no critical alert, at home",
            Verdict::DoesNotCount(reason) => reason,
        }
    }
}

pub fn summary(day: &Day, facts: &DayFacts) -> DaySummary {
    DaySummary {
        first_activity_at: day.first_activity,
        last_activity_at: day.last_activity,
        active_hours: day.active_hours.count_ones(),
        reported_hours: day.reported_hours.count_ones(),
        door_opens: day.door_opens,
        motion: day.motion,
        temp_min_dc: day.temp_min_dc,
        temp_max_dc: day.temp_max_dc,
        alerts: facts.alerts_opened,
    }
}

pub fn judge(day: &Day, facts: &DayFacts) -> Verdict {
    if day.away {
        Verdict::DoesNotCount("the elder was marked away")
    } else if facts.critical_alert_open {
        Verdict::DoesNotCount("a critical alert was open")
    } else if day.reported_hours.count_ones() < MIN_REPORTED_HOURS || day.offline_at_close {
        Verdict::DoesNotCount("the sensors were not online enough (under 20 hours, or offline at the day's end)")
    } else if day.active_hours.count_ones() < MIN_ACTIVE_HOURS {
        Verdict::DoesNotCount("too little activity (under 2 active hours)")
    } else {
        Verdict::Counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_day() -> Day {
        Day { active_hours: 0b11 << 8, reported_hours: (1 << 24) - 1, ..Day::default() }
    }

    #[test]
    fn each_condition_can_stop_a_day_from_counting() {
        let facts = DayFacts::default();
        assert_eq!(judge(&good_day(), &facts), Verdict::Counts);
        assert!(matches!(judge(&Day { away: true, ..good_day() }, &facts), Verdict::DoesNotCount(_)));
        assert!(matches!(
            judge(&good_day(), &DayFacts { critical_alert_open: true, ..facts }),
            Verdict::DoesNotCount("a critical alert was open")
        ));
        assert!(matches!(judge(&Day { offline_at_close: true, ..good_day() }, &facts), Verdict::DoesNotCount(_)));
        let nineteen_hours = Day { reported_hours: (1 << 19) - 1, ..good_day() };
        assert!(matches!(judge(&nineteen_hours, &facts), Verdict::DoesNotCount(_)));
        let twenty_hours = Day { reported_hours: (1 << 20) - 1, ..good_day() };
        assert_eq!(judge(&twenty_hours, &facts), Verdict::Counts);
        let one_hour = Day { active_hours: 1 << 9, ..good_day() };
        assert!(matches!(
            judge(&one_hour, &facts),
            Verdict::DoesNotCount("too little activity (under 2 active hours)")
        ));
    }
}
