//! Why the engine raised, noted or cleared an alert, as data: a [`Sentence`]
//! and its parameters, each a plain value or a sentence of its own ("nothing
//! since {at}" holds "{time} yesterday").
//!
//! The CLI, logs, MQTT and the webhook read its English (`Display`); the
//! console renders the same sentence from its translation files (the
//! `[engine]` keys, named as [`Sentence::key`], with the same placeholders).
//! Nothing is parsed back out of text, so a new sentence is one variant here
//! and one line in each translation file (a console test checks both).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Every sentence the engine writes, with its English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentence {
    NoActivity,
    NoActivityHeightened,
    StillNoActivity,
    StillNoActivityHeightened,
    UsuallyActiveBy,
    NothingSince,
    NothingSinceWatching,
    ActivityAgain,
    OfflineSince,
    OfflineAt,
    ConnectionDropped,
    SummariesMissed,
    ReportedOffline,
    OnlineAgain,
    Smoke,
    SmokeStopped,
    Help,
    Tamper,
    TamperClosed,
    Battery,
    BatteryAgain,
    Temperature,
    Below,
    Above,
    DoorNight,
    DoorClosed,
    Hours,
    Celsius,
    Today,
    Yesterday,
    OnDate,
    VisitEmergency,
}

impl Sentence {
    pub const ALL: [Sentence; 32] = [
        Sentence::NoActivity,
        Sentence::NoActivityHeightened,
        Sentence::StillNoActivity,
        Sentence::StillNoActivityHeightened,
        Sentence::UsuallyActiveBy,
        Sentence::NothingSince,
        Sentence::NothingSinceWatching,
        Sentence::ActivityAgain,
        Sentence::OfflineSince,
        Sentence::OfflineAt,
        Sentence::ConnectionDropped,
        Sentence::SummariesMissed,
        Sentence::ReportedOffline,
        Sentence::OnlineAgain,
        Sentence::Smoke,
        Sentence::SmokeStopped,
        Sentence::Help,
        Sentence::Tamper,
        Sentence::TamperClosed,
        Sentence::Battery,
        Sentence::BatteryAgain,
        Sentence::Temperature,
        Sentence::Below,
        Sentence::Above,
        Sentence::DoorNight,
        Sentence::DoorClosed,
        Sentence::Hours,
        Sentence::Celsius,
        Sentence::Today,
        Sentence::Yesterday,
        Sentence::OnDate,
        Sentence::VisitEmergency,
    ];

    /// The English, with `{name}` where each parameter goes.
    pub fn english(self) -> &'static str {
        match self {
            Sentence::NoActivity => "no activity for {hours}: {since}",
            Sentence::NoActivityHeightened => "no activity for {hours} (heightened watch): {since}",
            Sentence::StillNoActivity => "still no activity after {hours}: {since}",
            Sentence::StillNoActivityHeightened => "still no activity after {hours} (heightened watch): {since}",
            Sentence::UsuallyActiveBy => "usually active by {time}; {since}",
            Sentence::NothingSince => "nothing since {at}",
            Sentence::NothingSinceWatching => "nothing since watching began at {at}",
            Sentence::ActivityAgain => "activity again at {at}",
            Sentence::OfflineSince => {
                "sensor {device} offline since {at}; inactivity cannot be judged while it is silent"
            }
            Sentence::OfflineAt => {
                "sensor {device} offline at {at} ({why}); inactivity cannot be judged while it is silent"
            }
            Sentence::ConnectionDropped => "its connection dropped",
            Sentence::SummariesMissed => "{n} summaries missed",
            Sentence::ReportedOffline => "reported offline",
            Sentence::OnlineAgain => "all sensors online again at {at}",
            Sentence::Smoke => "smoke alarm on sensor {device} at {at}",
            Sentence::SmokeStopped => "smoke alarm on sensor {device} stopped at {at}",
            Sentence::Help => "help button pressed at {at}",
            Sentence::Tamper => "sensor {device} was opened or removed at {at}",
            Sentence::TamperClosed => "sensor {device} closed again at {at}",
            Sentence::Battery => "battery of sensor {device} at {n}%",
            Sentence::BatteryAgain => "battery of sensor {device} at {n}% again",
            Sentence::Temperature => "indoor {temp}, {limit} since {at}",
            Sentence::Below => "below {temp}",
            Sentence::Above => "above {temp}",
            Sentence::DoorNight => "door open since {at}, at night for over {n} min",
            Sentence::DoorClosed => "door closed at {at}",
            Sentence::Hours => "{n} h",
            Sentence::Celsius => "{n} °C",
            Sentence::Today => "{time} today",
            Sentence::Yesterday => "{time} yesterday",
            Sentence::OnDate => "{time} on {date}",
            Sentence::VisitEmergency => "emergency found on a visit by {by} at {at}",
        }
    }

    /// Its name in the translation files: `[engine] {key} = "…"`.
    pub fn key(self) -> &'static str {
        match self {
            Sentence::NoActivity => "no_activity",
            Sentence::NoActivityHeightened => "no_activity_heightened",
            Sentence::StillNoActivity => "still_no_activity",
            Sentence::StillNoActivityHeightened => "still_no_activity_heightened",
            Sentence::UsuallyActiveBy => "usually_active_by",
            Sentence::NothingSince => "nothing_since",
            Sentence::NothingSinceWatching => "nothing_since_watching",
            Sentence::ActivityAgain => "activity_again",
            Sentence::OfflineSince => "offline_since",
            Sentence::OfflineAt => "offline_at",
            Sentence::ConnectionDropped => "connection_dropped",
            Sentence::SummariesMissed => "summaries_missed",
            Sentence::ReportedOffline => "reported_offline",
            Sentence::OnlineAgain => "online_again",
            Sentence::Smoke => "smoke",
            Sentence::SmokeStopped => "smoke_stopped",
            Sentence::Help => "help",
            Sentence::Tamper => "tamper",
            Sentence::TamperClosed => "tamper_closed",
            Sentence::Battery => "battery",
            Sentence::BatteryAgain => "battery_again",
            Sentence::Temperature => "temperature",
            Sentence::Below => "below",
            Sentence::Above => "above",
            Sentence::DoorNight => "door_night",
            Sentence::DoorClosed => "door_closed",
            Sentence::Hours => "hours",
            Sentence::Celsius => "celsius",
            Sentence::Today => "today",
            Sentence::Yesterday => "yesterday",
            Sentence::OnDate => "on_date",
            Sentence::VisitEmergency => "visit_emergency",
        }
    }

    /// The names of its parameters, in the order the English has them.
    pub fn placeholders(self) -> Vec<&'static str> {
        placeholders_of(self.english())
    }
}

/// The `{name}`s of a template, in order.
pub fn placeholders_of(template: &str) -> Vec<&str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name)).collect()
}

/// One parameter: a value shown as it is (a device id, a time, a number),
/// or a sentence of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Part {
    Text(String),
    Sentence(Explanation),
}

impl From<String> for Part {
    fn from(text: String) -> Part {
        Part::Text(text)
    }
}

impl From<&str> for Part {
    fn from(text: &str) -> Part {
        Part::Text(text.to_string())
    }
}

impl From<Explanation> for Part {
    fn from(explanation: Explanation) -> Part {
        Part::Sentence(explanation)
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Text(text) => f.write_str(text),
            Part::Sentence(explanation) => explanation.fmt(f),
        }
    }
}

/// A sentence with its parameters. Stored beside the alert as JSON
/// (`{"sentence":"smoke","params":{"device":"node-1","at":{…}}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub sentence: Sentence,
    pub params: BTreeMap<String, Part>,
}

impl Explanation {
    pub fn new(sentence: Sentence) -> Explanation {
        Explanation { sentence, params: BTreeMap::new() }
    }

    /// …with `{name}` set.
    pub fn with(mut self, name: &str, value: impl Into<Part>) -> Explanation {
        self.params.insert(name.to_string(), value.into());
        self
    }

    /// The sentence in another language: `template(sentence)` gives its
    /// words with the same placeholders; a parameter missing leaves its
    /// placeholder as written.
    pub fn render(&self, template: &dyn Fn(Sentence) -> String) -> String {
        let mut out = template(self.sentence);
        for (name, part) in &self.params {
            let value = match part {
                Part::Text(text) => text.clone(),
                Part::Sentence(inner) => inner.render(template),
            };
            out = out.replace(&format!("{{{name}}}"), &value);
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for text that is not an explanation (an alert of before they
    /// were stored: its English is shown as written).
    pub fn from_json(text: &str) -> Option<Explanation> {
        serde_json::from_str(text).ok()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&|sentence| sentence.english().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_reads_as_its_english_with_the_parts_inside_out() {
        let at = Explanation::new(Sentence::Yesterday).with("time", "21:40");
        let since = Explanation::new(Sentence::NothingSince).with("at", at);
        let explanation = Explanation::new(Sentence::NoActivity)
            .with("hours", Explanation::new(Sentence::Hours).with("n", "12"))
            .with("since", since);
        assert_eq!(explanation.to_string(), "no activity for 12 h: nothing since 21:40 yesterday");
        let back = Explanation::from_json(&explanation.to_json()).unwrap();
        assert_eq!(back, explanation, "stored and read back whole");
        assert_eq!(Explanation::from_json("no activity for 12 h"), None, "old English is not an explanation");
    }

    #[test]
    fn every_sentence_has_a_distinct_key_and_its_own_placeholders() {
        let mut keys: Vec<&str> = Sentence::ALL.iter().map(|s| s.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Sentence::ALL.len());
        for sentence in Sentence::ALL {
            let json = serde_json::to_string(&sentence).unwrap();
            assert_eq!(json, format!("\"{}\"", sentence.key()), "the stored name is the key");
        }
    }
}
