//! Scripted scenarios: what the demo and the tests ask a home to do.
//!
//! Written `KIND:HOME[@TIME]`, TIME in simulated time since the start
//! (`90s`, `10m`, `2h`; default 0): `smoke:3@10m`, `help:1`, `silent:2@1h`,
//! `door-night:4`, `cold:5@30m`, `offline:6@20m`.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioKind {
    /// The smoke detector goes into alarm and stays there.
    Smoke,
    /// The help button is pressed once.
    Help,
    /// No motion and no door from then on; the node keeps reporting.
    Silent,
    /// The door is opened and left open, at TIME or else at 23:00.
    DoorLeftOpenAtNight,
    /// The room drops to 8 °C (a heating failure in winter).
    Cold,
    /// The node dies: its connection drops without a goodbye, so the broker
    /// publishes its Last Will, and it sends nothing more.
    DeviceSilent,
}

/// One scripted happening in one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub kind: ScenarioKind,
    /// 1-based home index.
    pub home: usize,
    /// Simulated time since the start; `None`: the scenario's default.
    pub at: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario {0:?}: expected KIND:HOME[@TIME], e.g. smoke:3@10m")]
    Shape(String),
    #[error("scenario {0:?}: unknown kind; use smoke, help, silent, door-night, cold or offline")]
    UnknownKind(String),
    #[error("scenario {0:?}: HOME must be a number from 1")]
    BadHome(String),
    #[error("scenario {0:?}: TIME must be a number followed by s, m or h, e.g. 90s, 10m, 2h")]
    BadTime(String),
    #[error("scenario for home {home}, but only {homes} homes are simulated")]
    NoSuchHome { home: usize, homes: usize },
}

impl Scenario {
    pub fn check(&self, homes: usize) -> Result<(), ScenarioError> {
        if self.home > homes {
            return Err(ScenarioError::NoSuchHome { home: self.home, homes });
        }
        Ok(())
    }
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = text.split_once(':').ok_or_else(|| ScenarioError::Shape(text.into()))?;
        let kind = match kind {
            "smoke" => ScenarioKind::Smoke,
            "help" => ScenarioKind::Help,
            "silent" => ScenarioKind::Silent,
            "door-night" => ScenarioKind::DoorLeftOpenAtNight,
            "cold" => ScenarioKind::Cold,
            "offline" => ScenarioKind::DeviceSilent,
            _ => return Err(ScenarioError::UnknownKind(text.into())),
        };
        let (home, at) = match rest.split_once('@') {
            Some((home, at)) => (home, Some(parse_duration(at).ok_or_else(|| ScenarioError::BadTime(text.into()))?)),
            None => (rest, None),
        };
        let home: usize = home.parse().map_err(|_| ScenarioError::BadHome(text.into()))?;
        if home == 0 {
            return Err(ScenarioError::BadHome(text.into()));
        }
        Ok(Scenario { kind, home, at })
    }
}

/// `90s`, `10m`, `2h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3_600)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_with_and_without_a_time() {
        assert_eq!(
            "smoke:3@10m".parse(),
            Ok(Scenario { kind: ScenarioKind::Smoke, home: 3, at: Some(Duration::from_secs(600)) })
        );
        assert_eq!("door-night:4".parse(), Ok(Scenario { kind: ScenarioKind::DoorLeftOpenAtNight, home: 4, at: None }));
        assert_eq!("offline:1@90s".parse::<Scenario>().unwrap().at, Some(Duration::from_secs(90)));
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        assert_eq!("smoke".parse::<Scenario>(), Err(ScenarioError::Shape("smoke".into())));
        assert_eq!("fire:1".parse::<Scenario>(), Err(ScenarioError::UnknownKind("fire:1".into())));
        assert_eq!("help:0".parse::<Scenario>(), Err(ScenarioError::BadHome("help:0".into())));
        assert_eq!("help:x".parse::<Scenario>(), Err(ScenarioError::BadHome("help:x".into())));
        assert_eq!("help:1@soon".parse::<Scenario>(), Err(ScenarioError::BadTime("help:1@soon".into())));
        let scenario: Scenario = "help:9".parse().unwrap();
        assert_eq!(scenario.check(3), Err(ScenarioError::NoSuchHome { home: 9, homes: 3 }));
    }
}
