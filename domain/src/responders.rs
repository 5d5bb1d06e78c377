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

choices! {
    /// A responder's answer through their link.
    Answer {
        Accepted = ("accepted", "我去处理"),
        Arrived = ("arrived", "已到达"),
        Declined = ("declined", "无法前往"),
    }
}

choices! {
    /// Where an alert's responder chain stands.
    ChainState {
        /// Messages are out; nobody has accepted yet.
        Calling = ("calling", "正在通知"),
        /// Someone is on their way.
        Accepted = ("accepted", "已有人前往"),
        Arrived = ("arrived", "已有人到达"),
        /// Every step was tried and nobody accepted: no responder.
        NoResponder = ("no_responder", "无人响应"),
        /// The alert was resolved: links no longer answer.
        Closed = ("closed", "已结束"),
    }
}

choices! {
    /// What on-call heard when they called the elder back (回访结果).
    CallBack {
        AnsweredWell = ("answered_well", "已接通，老人平安"),
        NoAnswer = ("no_answer", "无人接听"),
        HelpNeeded = ("help_needed", "需要帮助"),
    }
}

/// How long the chain waits: for someone to accept (per kind), then for
/// them to arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTimes {
    /// Kinds not listed take [`ChainTimes::default_accept_ms`].
    pub accept_ms: std::collections::BTreeMap<AlertKind, i64>,
    pub default_accept_ms: i64,
    pub arrive_ms: i64,
}

impl Default for ChainTimes {
    /// Smoke, help and an emergency found on a visit: 3 minutes to accept;
    /// inactivity: 15; the rest 10; 30 minutes to arrive.
    fn default() -> ChainTimes {
        let minute = crate::time::MINUTE_MS;
        let accept_ms = [
            (AlertKind::Smoke, 3 * minute),
            (AlertKind::Help, 3 * minute),
            (AlertKind::VisitEmergency, 3 * minute),
            (AlertKind::Inactivity, 15 * minute),
        ]
        .into_iter()
        .collect();
        ChainTimes { accept_ms, default_accept_ms: 10 * minute, arrive_ms: 30 * minute }
    }
}

impl ChainTimes {
    pub fn accept_ms(&self, kind: AlertKind) -> i64 {
        self.accept_ms.get(&kind).copied().unwrap_or(self.default_accept_ms)
    }
}

/// What a chain does when its timer runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainMove {
    /// Reach the contacts of this step (0-based).
    Next(usize),
    /// Somebody accepted but has not arrived: tell on-call, and reach this
    /// step too when there is one.
    Late(Option<usize>),
    /// Every step was tried: no responder.
    NoResponder,
    /// Nothing to do.
    Stay,
}

/// The chain's move at its deadline: at step `step` of `steps`, in `state`.
pub fn on_deadline(state: ChainState, step: usize, steps: usize) -> ChainMove {
    let next = (step + 1 < steps).then_some(step + 1);
    match state {
        ChainState::Calling => next.map_or(ChainMove::NoResponder, ChainMove::Next),
        ChainState::Accepted => ChainMove::Late(next),
        ChainState::Arrived | ChainState::NoResponder | ChainState::Closed => ChainMove::Stay,
    }
}

/// The chain's move after a decline: when everybody reached so far has
/// declined, the next step at once (or no responder); otherwise wait.
pub fn on_decline(state: ChainState, step: usize, steps: usize, everyone_declined: bool) -> ChainMove {
    if state != ChainState::Calling || !everyone_declined {
        return ChainMove::Stay;
    }
    on_deadline(state, step, steps)
}

/// Whether an alert of `kind` starts a responder chain: what a person must
/// go and see. A low battery, a device offline or tampered with stay with
/// on-call on the console.
pub fn chained(kind: AlertKind) -> bool {
    !matches!(kind, AlertKind::DeviceOffline | AlertKind::LowBattery | AlertKind::Tamper)
}

/// The words an alert's kind has in a message: short, with no health
/// detail beyond what the kind itself says.
pub fn kind_words(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Smoke => "烟雾报警",
        AlertKind::Help => "一键呼救",
        AlertKind::Inactivity => "长时间无活动",
        AlertKind::Cold => "室温过低",
        AlertKind::Heat => "室温过高",
        AlertKind::DoorNight => "夜间开门",
        AlertKind::DeviceOffline => "设备离线",
        AlertKind::LowBattery => "设备电量低",
        AlertKind::Tamper => "设备被拆动",
        AlertKind::VisitEmergency => "探访发现紧急情况",
    }
}

/// Why a message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An alert, to a contact: please answer through the link.
    Alert,
    /// To on-call: the one who accepted has not arrived in time.
    Late,
}

impl Purpose {
    pub fn code(self) -> &'static str {
        match self {
            Purpose::Alert => "alert",
            Purpose::Late => "late",
        }
    }

    pub fn parse(code: &str) -> Option<Purpose> {
        match code {
            "alert" => Some(Purpose::Alert),
            "late" => Some(Purpose::Late),
            _ => None,
        }
    }
}

/// A message as it leaves the process: the village, the kind and the link,
/// and nothing else — never a name, an ID number or a health detail. A
/// provider with approved templates takes the parts; one that takes text
/// takes [`Message::text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub village: String,
    /// [`kind_words`].
    pub kind: String,
    pub link: String,
    pub purpose: Purpose,
}

impl Message {
    /// The whole text, for providers that take text (and for the record).
    pub fn text(&self) -> String {
        match self.purpose {
            Purpose::Late => {
                format!("【安心】{}{}：已接单人员未按时到达，请值班人员跟进。{}", self.village, self.kind, self.link)
            }
            Purpose::Alert => format!("【安心】{}{}，请尽快回复能否前往：{}", self.village, self.kind, self.link),
        }
    }
}

/// Signed answer links: `{public_url}/r/{token}`, where the token is the
/// message's id and an HMAC-SHA256 tag over it (truncated to 128 bits),
/// base64url. A token belongs to one message, so one contact and one alert;
/// it cannot be made or changed without the deployment's link key.
pub mod link {
    use base64::Engine;
    use hmac::{KeyInit, Mac};

    type HmacSha256 = hmac::Hmac<sha2::Sha256>;

    const TAG_BYTES: usize = 16;

    /// A new deployment's link key, as kept (base64 of 32 random bytes).
    pub fn new_key() -> String {
        use password_hash::rand_core::{OsRng, RngCore};
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// A request's unique random value (a provider's nonce): 32 hex digits.
    pub fn nonce() -> String {
        use password_hash::rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// A kept key's bytes.
    pub fn decode_key(text: &str) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(text).ok().filter(|key| key.len() >= 16)
    }

    fn tag(key: &[u8], message_id: i64) -> [u8; TAG_BYTES] {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(b"anxin responder link v1:");
        mac.update(&message_id.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(&full[..TAG_BYTES]);
        out
    }

    /// The token of `message_id` under `key`.
    pub fn token(key: &[u8], message_id: i64) -> String {
        let mut bytes = message_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag(key, message_id));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The message a token names, when its tag is right (compared in
    /// constant time); `None` for anything tampered or made up.
    pub fn verify(key: &[u8], token: &str) -> Option<i64> {
        if token.len() > 64 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 8 + TAG_BYTES {
            return None;
        }
        let message_id = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        let expected = tag(key, message_id);
        bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &bytes[8..])).then_some(message_id)
    }
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

    #[test]
    fn the_chain_moves_on_when_nobody_accepts_and_tells_on_call_when_nobody_arrives() {
        assert_eq!(on_deadline(ChainState::Calling, 0, 3), ChainMove::Next(1));
        assert_eq!(on_deadline(ChainState::Calling, 2, 3), ChainMove::NoResponder);
        assert_eq!(on_deadline(ChainState::Accepted, 0, 3), ChainMove::Late(Some(1)));
        assert_eq!(on_deadline(ChainState::Accepted, 2, 3), ChainMove::Late(None));
        assert_eq!(on_deadline(ChainState::Arrived, 0, 3), ChainMove::Stay);
        assert_eq!(on_decline(ChainState::Calling, 0, 2, false), ChainMove::Stay);
        assert_eq!(on_decline(ChainState::Calling, 0, 2, true), ChainMove::Next(1));
        assert_eq!(on_decline(ChainState::Calling, 1, 2, true), ChainMove::NoResponder);
        assert_eq!(on_decline(ChainState::Accepted, 0, 2, true), ChainMove::Stay);
        let times = ChainTimes::default();
        assert_eq!((times.accept_ms(AlertKind::Smoke), times.accept_ms(AlertKind::Cold)), (180_000, 600_000));
    }

    #[test]
    fn a_link_names_one_message_and_any_change_is_refused() {
        let key = b"a deployment's link key, 32 byte";
        let token = link::token(key, 42);
        assert_eq!(link::verify(key, &token), Some(42));
        assert_eq!(link::verify(b"another deployment's key........", &token), None);
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(link::verify(key, &String::from_utf8(tampered).unwrap()), None);
        assert_eq!(link::verify(key, "not a token"), None);
        assert_eq!(link::verify(key, ""), None);
        // The id cannot be swapped for another under the same tag.
        assert_ne!(link::token(key, 43)[11..], token[11..]);
    }

    #[test]
    fn a_message_names_the_village_the_kind_and_the_link_only() {
        let message = Message {
            village: "河口村".into(),
            kind: kind_words(AlertKind::Smoke).into(),
            link: "https://anxin.example/r/abc".into(),
            purpose: Purpose::Alert,
        };
        assert_eq!(message.text(), "【安心】河口村烟雾报警，请尽快回复能否前往：https://anxin.example/r/abc");
    }
}
