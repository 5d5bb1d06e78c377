//! What a home's sensors mean, and what staff must do: the pure part of the
//! alert engine (its moving parts — timers and delivery — are the gateway's).
//!
//! - [`rules`]: pure functions of a home's state, one input and `now`; the
//!   clock is always passed in, so a day runs in milliseconds in tests.
//! - [`policy`]: thresholds — defaults, categories, per-elder overrides,
//!   heightened watch — resolved for one home at one moment.
//! - [`routine`]: the usual getting-up time, learned from the closed days.
//! - [`checkin`]: whether a closed day counts as a remote check-in (远程监测探访).
//! - [`explanation`]: why an alert was raised, as a sentence and its
//!   parameters (English for the CLI and MQTT; the console translates).
//! - [`engine`]: runs the rules over one home's inputs; the ingest pipeline
//!   reads the home and writes what it concludes.
//!
//! Invariants:
//! - A home's state and its next deadline live in one database row
//!   (`home_watch`), changed only in a transaction that holds that row; so a
//!   restart neither loses an overdue alert nor raises one twice, and two
//!   gateways racing on one home serialise on the row.
//! - Rules see only human activity as activity (motion, doors, the help
//!   button), never heartbeats or device faults.
//! - One open alert per (home, kind): a repeat adds to it.

pub mod checkin;
pub mod engine;
pub mod explanation;
pub mod policy;
pub mod routine;
pub mod rules;

use serde::{Deserialize, Serialize};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Smoke,
    Help,
    Inactivity,
    Cold,
    Heat,
    DoorNight,
    DeviceOffline,
    LowBattery,
    Tamper,
    /// An emergency a visitor found on a visit (紧急情况), opened from the
    /// visit form: handled like a sensor's critical alert.
    VisitEmergency,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        AlertKind::Smoke,
        AlertKind::Help,
        AlertKind::Inactivity,
        AlertKind::Cold,
        AlertKind::Heat,
        AlertKind::DoorNight,
        AlertKind::DeviceOffline,
        AlertKind::LowBattery,
        AlertKind::Tamper,
        AlertKind::VisitEmergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Smoke => "smoke",
            AlertKind::Help => "help",
            AlertKind::Inactivity => "inactivity",
            AlertKind::Cold => "cold",
            AlertKind::Heat => "heat",
            AlertKind::DoorNight => "door_night",
            AlertKind::DeviceOffline => "device_offline",
            AlertKind::LowBattery => "low_battery",
            AlertKind::Tamper => "tamper",
            AlertKind::VisitEmergency => "visit_emergency",
        }
    }

    pub fn parse(text: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// How urgent: notices are for maintenance, warnings for the day's work,
/// critical alerts for a person now (and escalate when not acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Notice,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [Severity::Notice, Severity::Warning, Severity::Critical].into_iter().find(|s| s.as_str() == text)
    }
}

/// Where an alert stands: open until someone acknowledges it, acknowledged
/// while it is being handled, resolved with its outcome (or when it cleared
/// by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<AlertStatus> {
        [AlertStatus::Open, AlertStatus::Acknowledged, AlertStatus::Resolved].into_iter().find(|s| s.as_str() == text)
    }
}

/// How an alert was handled (处置情况), from a fixed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Someone went to the home (上门查看).
    Visited,
    /// The elder answered the phone (电话联系本人).
    ReachedByPhone,
    /// Family or the emergency contact was reached (联系家属).
    FamilyReached,
    /// 120 / 119 / 110 were called (呼叫急救、消防或报警).
    EmergencyServices,
    /// Nothing was wrong (误报).
    FalseAlarm,
    /// The device was at fault (设备故障).
    DeviceFault,
    /// Anything else; the note says what (其他).
    Other,
    /// Cleared by itself — a device back online, a battery replaced. Set by
    /// the gateway only.
    ClearedItself,
    /// The elder left the programme (died, moved, …) while the alert was
    /// open. Set by Anxin only, with the exit.
    ElderLeft,
}

impl Outcome {
    /// What staff may choose when resolving.
    pub const FOR_STAFF: [Outcome; 7] = [
        Outcome::Visited,
        Outcome::ReachedByPhone,
        Outcome::FamilyReached,
        Outcome::EmergencyServices,
        Outcome::FalseAlarm,
        Outcome::DeviceFault,
        Outcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Visited => "visited",
            Outcome::ReachedByPhone => "reached_by_phone",
            Outcome::FamilyReached => "family_reached",
            Outcome::EmergencyServices => "emergency_services",
            Outcome::FalseAlarm => "false_alarm",
            Outcome::DeviceFault => "device_fault",
            Outcome::Other => "other",
            Outcome::ClearedItself => "cleared_itself",
            Outcome::ElderLeft => "elder_left",
        }
    }

    /// The outcomes staff may record; `cleared_itself` and `elder_left` are Anxin's.
    pub fn parse_for_staff(text: &str) -> Option<Outcome> {
        Outcome::FOR_STAFF.into_iter().find(|o| o.as_str() == text)
    }

    /// Any outcome, the gateway's included: for reading what was stored.
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::parse_for_staff(text)
            .or_else(|| [Outcome::ClearedItself, Outcome::ElderLeft].into_iter().find(|o| o.as_str() == text))
    }
}

/// The stored and wire spelling (`smoke`, `critical`, `open`, `false_alarm`).
macro_rules! display_as_str {
    ($($name:ty),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(AlertKind, Severity, AlertStatus, Outcome);

/// The elder categories of annex 2 (特殊困难老年人的类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 独居
    LivingAlone,
    /// 空巢
    EmptyNest,
    /// 留守
    LeftBehind,
    /// 失能
    Dependent,
    /// 重残
    SeverelyDisabled,
    /// 计划生育特殊家庭
    BereavedFamily,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::LivingAlone,
        Category::EmptyNest,
        Category::LeftBehind,
        Category::Dependent,
        Category::SeverelyDisabled,
        Category::BereavedFamily,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::LivingAlone => "living_alone",
            Category::EmptyNest => "empty_nest",
            Category::LeftBehind => "left_behind",
            Category::Dependent => "dependent",
            Category::SeverelyDisabled => "severely_disabled",
            Category::BereavedFamily => "bereaved_family",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text.trim())
    }

    /// A stored list (`living_alone,dependent`); unknown words are skipped.
    pub fn parse_list(text: &str) -> Vec<Category> {
        text.split(',').filter_map(Category::parse).collect()
    }

    pub fn join(categories: &[Category]) -> String {
        categories.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
        }
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
        }
        for outcome in Outcome::FOR_STAFF {
            assert_eq!(Outcome::parse_for_staff(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse_for_staff("cleared_itself"), None, "only the gateway clears alerts by itself");
        assert_eq!(
            Category::parse_list("living_alone, dependent,nonsense"),
            [Category::LivingAlone, Category::Dependent]
        );
    }
}
