//! The call list (呼叫顺序): who is reached, in what order, when an alert
//! opens — family, neighbours, the village, the visitor responsible, the
//! on-call staff. Each contact has the hours they can be reached (never
//! applied to smoke and help) and the alert kinds they get; without a choice
//! of kinds, each kind's default applies: smoke and help go to the first
//! three at once and to on-call; inactivity to the family first, then the
//! village; the rest to on-call.

use serde::{Deserialize, Serialize};

use crate::alerts::AlertKind;
use crate::ledger::choices;
use crate::registry::{PhoneNumber, RegistryError};

choices! {
    /// 与老人关系: a contact's place in the elder's life.
    Relation {
        Family = ("family", "家属"),
        Neighbour = ("neighbour", "邻居", "邻里"),
        VillageCommittee = ("village_committee", "村(居)委会", "村委会", "居委会"),
        GridWorker = ("grid_worker", "网格员"),
        Visitor = ("visitor", "探访责任人"),
        Oncall = ("oncall", "值班人员"),
    }
}

/// A contact of an elder's call list, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub relation: Relation,
    /// In the registry's normal form ([`PhoneNumber`]).
    pub phone: String,
    /// The hours they can be reached, local (`from` after `to` spans
    /// midnight); `None`: any time.
    pub hours: Option<(chrono::NaiveTime, chrono::NaiveTime)>,
    /// The kinds they get; empty: each kind's default.
    pub kinds: Vec<AlertKind>,
}

/// Why a contact was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("{0}")]
    Registry(RegistryError),
    #[error("the contact's consent must be recorded (who agreed, how) before they are called")]
    NoConsent,
    #[error("the hours must be HH:MM to HH:MM, and not the same time")]
    Hours,
}

/// A contact as typed, with the consent to be called.
#[derive(Debug, Clone, Default)]
pub struct ContactForm<'a> {
    pub name: &'a str,
    pub relation: Option<Relation>,
    pub phone: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub kinds: Vec<AlertKind>,
    /// How the contact agreed to be called (口头, 书面, 电话确认 …).
    pub consent: Option<&'a str>,
}

impl ContactForm<'_> {
    /// Checks the contact; returns it with the consent's words.
    pub fn check(&self) -> Result<(Contact, String), ContactError> {
        let name = crate::registry::text("name", self.name, 64).map_err(ContactError::Registry)?;
        let phone = PhoneNumber::parse("phone", self.phone).map_err(ContactError::Registry)?;
        let relation = self.relation.ok_or(ContactError::Registry(RegistryError::Missing("relation")))?;
        let consent = self.consent.map(str::trim).filter(|c| !c.is_empty()).ok_or(ContactError::NoConsent)?;
        let time = |text: Option<&str>| {
            text.map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| ContactError::Hours))
                .transpose()
        };
        let hours = match (time(self.from)?, time(self.to)?) {
            (None, None) => None,
            (Some(from), Some(to)) if from != to => Some((from, to)),
            _ => return Err(ContactError::Hours),
        };
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds.dedup();
        let contact = Contact { name, relation, phone: phone.as_str().to_string(), hours, kinds };
        Ok((contact, consent.chars().take(100).collect()))
    }
}

impl Contact {
    /// Whether they can be reached at `time` (local) for `kind`: smoke and
    /// help ignore the hours.
    pub fn reachable(&self, kind: AlertKind, time: chrono::NaiveTime) -> bool {
        if matches!(kind, AlertKind::Smoke | AlertKind::Help) {
            return true;
        }
        match self.hours {
            None => true,
            Some((from, to)) if from < to => from <= time && time < to,
            Some((from, to)) => time >= from || time < to,
        }
    }

    /// Whether they get `kind`: their own choice, else the kind's default.
    pub fn gets(&self, kind: AlertKind) -> bool {
        if !self.kinds.is_empty() {
            return self.kinds.contains(&kind);
        }
        match kind {
            AlertKind::Smoke | AlertKind::Help | AlertKind::VisitEmergency | AlertKind::Inactivity => true,
            _ => self.relation == Relation::Oncall,
        }
    }
}

/// The order an alert of `kind` reaches an elder's contacts at `time`:
/// steps, each a set reached at once, the next tried when nobody of the
/// last accepts. Smoke, help and an emergency found on a visit: the first
/// three at once, with on-call; inactivity: the family, then the village
/// (neighbours, committee, grid worker, visitor), then on-call; the rest:
/// on-call. Contacts not reachable then, or not getting the kind, are left
/// out. Indexes are into `contacts` (the elder's order).
pub fn call_order(kind: AlertKind, contacts: &[Contact], time: chrono::NaiveTime) -> Vec<Vec<usize>> {
    let eligible: Vec<usize> =
        (0..contacts.len()).filter(|i| contacts[*i].gets(kind) && contacts[*i].reachable(kind, time)).collect();
    let of = |relations: &[Relation]| -> Vec<usize> {
        eligible.iter().copied().filter(|i| relations.contains(&contacts[*i].relation)).collect()
    };
    let oncall = of(&[Relation::Oncall]);
    let mut steps: Vec<Vec<usize>> = match kind {
        AlertKind::Smoke | AlertKind::Help | AlertKind::VisitEmergency => {
            let people: Vec<usize> =
                eligible.iter().copied().filter(|i| contacts[*i].relation != Relation::Oncall).collect();
            let mut first: Vec<usize> = people.iter().copied().take(3).collect();
            first.extend(&oncall);
            let rest: Vec<usize> = people.iter().copied().skip(3).collect();
            vec![first, rest]
        }
        AlertKind::Inactivity => vec![
            of(&[Relation::Family]),
            of(&[Relation::Neighbour, Relation::VillageCommittee, Relation::GridWorker, Relation::Visitor]),
            oncall,
        ],
        _ => vec![oncall],
    };
    steps.retain(|step| !step.is_empty());
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, relation: Relation, hours: Option<(&str, &str)>) -> Contact {
        let time = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").unwrap();
        Contact {
            name: name.into(),
            relation,
            phone: "13904150001".into(),
            hours: hours.map(|(from, to)| (time(from), time(to))),
            kinds: Vec::new(),
        }
    }

    fn at(text: &str) -> chrono::NaiveTime {
        chrono::NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    #[test]
    fn smoke_reaches_the_first_three_and_on_call_at_once_whatever_the_hour() {
        let list = [
            contact("女儿", Relation::Family, Some(("08:00", "20:00"))),
            contact("邻居", Relation::Neighbour, None),
            contact("网格员", Relation::GridWorker, Some(("09:00", "17:00"))),
            contact("儿子", Relation::Family, None),
            contact("值班", Relation::Oncall, None),
        ];
        assert_eq!(call_order(AlertKind::Smoke, &list, at("03:00")), vec![vec![0, 1, 2, 4], vec![3]]);
        assert_eq!(call_order(AlertKind::Help, &list, at("03:00"))[0].len(), 4);
        // Inactivity at 03:00: the daughter and the grid worker are not called at night.
        assert_eq!(call_order(AlertKind::Inactivity, &list, at("03:00")), vec![vec![3], vec![1], vec![4]]);
        assert_eq!(call_order(AlertKind::Inactivity, &list, at("10:00")), vec![vec![0, 3], vec![1, 2], vec![4]]);
        assert_eq!(call_order(AlertKind::LowBattery, &list, at("10:00")), vec![vec![4]]);
    }

    #[test]
    fn a_contact_s_own_kinds_and_hours_across_midnight_are_kept() {
        let mut night_neighbour = contact("夜班邻居", Relation::Neighbour, Some(("22:00", "06:00")));
        assert!(night_neighbour.reachable(AlertKind::Inactivity, at("23:30")));
        assert!(night_neighbour.reachable(AlertKind::Inactivity, at("05:59")));
        assert!(!night_neighbour.reachable(AlertKind::Inactivity, at("12:00")));
        night_neighbour.kinds = vec![AlertKind::Cold];
        assert!(night_neighbour.gets(AlertKind::Cold) && !night_neighbour.gets(AlertKind::Smoke));
    }

    #[test]
    fn a_contact_needs_a_phone_a_relation_and_consent() {
        let form = ContactForm {
            name: "王建国",
            relation: Some(Relation::Family),
            phone: "+86 139 0415 0002",
            consent: Some("电话确认"),
            ..ContactForm::default()
        };
        let (contact, consent) = form.check().unwrap();
        assert_eq!((contact.phone.as_str(), consent.as_str()), ("13904150002", "电话确认"));
        assert_eq!(ContactForm { consent: None, ..form.clone() }.check(), Err(ContactError::NoConsent));
        assert_eq!(ContactForm { from: Some("08:00"), ..form.clone() }.check(), Err(ContactError::Hours));
        assert!(matches!(ContactForm { phone: "12345", ..form.clone() }.check(), Err(ContactError::Registry(_))));
        assert_eq!(Relation::parse("村委会"), Some(Relation::VillageCommittee));
    }
}
