//! An elder as pages show them: the profile card (numbers masked), their
//! devices, their visits.

use anxin_domain::alerts::Category;
use anxin_domain::registry::mask;
use anxin_store::{DeviceRecord, Elder};

use super::records::findings;
use crate::i18n::Lang;
use crate::web::local_time;

/// An elder's profile, ready to show: identifying numbers masked.
#[derive(Debug)]
pub struct ElderCard {
    pub id: i64,
    pub name: String,
    pub place: String,
    pub address: String,
    pub phone: String,
    pub emergency_contact: String,
    pub emergency_phone: String,
    pub categories: Vec<&'static str>,
    pub citizen_id: Option<String>,
    pub disability_cert: Option<String>,
    pub lives_at_registered: &'static str,
}

impl ElderCard {
    pub fn of(elder: &Elder, lang: Lang) -> ElderCard {
        ElderCard {
            id: elder.id,
            name: elder.name.clone(),
            place: format!("{} {} {}", elder.county, elder.township, elder.village),
            address: elder.address.clone(),
            phone: elder.phone.clone().unwrap_or_default(),
            emergency_contact: elder.emergency_contact.clone().unwrap_or_default(),
            emergency_phone: elder.emergency_phone.clone().unwrap_or_default(),
            categories: elder
                .categories
                .split(',')
                .filter_map(Category::parse)
                .map(|c| lang.t(&format!("category.{}", c.as_str())))
                .collect(),
            citizen_id: elder.citizen_id.as_deref().map(mask),
            disability_cert: elder.disability_cert.as_deref().map(mask),
            lives_at_registered: lang.t(if elder.lives_at_registered { "common.yes" } else { "common.no" }),
        }
    }
}

/// A device as the console shows it.
#[derive(Debug)]
pub struct DeviceView {
    pub device_id: String,
    pub online: bool,
    pub state: &'static str,
    pub since: String,
    pub battery: String,
    pub low_battery: bool,
    pub last_seen: String,
    pub firmware: String,
}

pub fn devices_view(devices: &[DeviceRecord], lang: Lang, offset: chrono::FixedOffset, _now: i64) -> Vec<DeviceView> {
    devices
        .iter()
        .map(|d| DeviceView {
            device_id: d.device_id.clone(),
            online: d.online,
            state: lang.t(if d.online { "device.online" } else { "device.offline" }),
            since: local_time(d.status_changed_at, offset),
            battery: d.battery.map(|b| format!("{b}%")).unwrap_or_else(|| "—".into()),
            low_battery: d.battery.is_some_and(|b| b < 20),
            last_seen: local_time(d.last_seen, offset),
            firmware: d.firmware.clone().unwrap_or_default(),
        })
        .collect()
}

#[derive(Debug)]
pub struct VisitLine {
    pub day: String,
    pub mode: &'static str,
    pub visitor: String,
    pub remote: bool,
    pub summary: String,
    /// The form's judgements ticked, each with whether it is a problem.
    pub findings: Vec<(String, bool)>,
    pub needs: String,
    /// 补录: recorded after its month was closed.
    pub late: bool,
    /// A home visit's corroboration, in words, and whether it holds.
    pub corroboration: Option<(&'static str, bool)>,
    /// The county's spot-check of it, in words, and whether it held.
    pub spot_check: Option<(&'static str, bool)>,
    /// What the phone recorded beside it, in words: signed, the times, the
    /// distance from the home (never the coordinates).
    pub evidence: Vec<String>,
    /// The visit's id when it has a photo.
    pub photo: Option<i64>,
}

/// A visit's evidence in words, for the elder's page.
fn evidence_words(
    visit: &anxin_store::VisitRecord,
    evidence: &anxin_store::StoredEvidence,
    home: Option<&anxin_domain::evidence::Location>,
    lang: Lang,
    offset: chrono::FixedOffset,
) -> Vec<String> {
    let clock = |at: i64| crate::web::local_clock(at, offset);
    let mut words = Vec::new();
    if let (Some(start), Some(end)) = (visit.started_at, evidence.ended_at) {
        words.push(format!("{}–{}", clock(start), clock(end)));
    }
    if evidence.elder_signature.is_some() {
        words.push(
            lang.t(if evidence.elder_mark == anxin_domain::evidence::ElderMark::Thumb {
                "evidence.shown_thumb"
            } else {
                "evidence.shown_elder_signed"
            })
            .to_string(),
        );
    }
    if evidence.visitor_signature.is_some() {
        words.push(lang.t("evidence.shown_visitor_signed").to_string());
    }
    if let Some(at) = &evidence.location {
        words.push(match home {
            Some(home) => lang
                .t("evidence.shown_distance")
                .replace("{distance}", &anxin_domain::evidence::distance_words(at.distance_m(home))),
            None => lang.t("evidence.shown_located").to_string(),
        });
    }
    words
}

pub fn visit_lines(
    visits: &[anxin_store::VisitRecord],
    evidence: &std::collections::HashMap<i64, anxin_store::StoredEvidence>,
    home: Option<&anxin_domain::evidence::Location>,
    lang: Lang,
    offset: chrono::FixedOffset,
) -> Vec<VisitLine> {
    visits
        .iter()
        .map(|v| VisitLine {
            evidence: evidence.get(&v.id).map(|e| evidence_words(v, e, home, lang, offset)).unwrap_or_default(),
            photo: evidence.get(&v.id).filter(|e| e.has_photo).map(|e| e.visit_id),
            day: v.day.clone(),
            mode: lang.t(&format!("visit_mode.{}", v.mode)),
            visitor: v.visitor.clone(),
            remote: v.mode == "remote",
            summary: v.summary.as_deref().map(summary_text).unwrap_or_default(),
            findings: v.assessment.as_ref().map(|a| findings(a, lang)).unwrap_or_default(),
            needs: v.needs.clone().unwrap_or_default(),
            late: v.late,
            corroboration: v
                .corroboration
                .as_deref()
                .map(|code| (lang.t(&format!("visit.{code}")), code == "corroborated")),
            spot_check: v
                .spot_check
                .as_deref()
                .map(|code| (lang.t(&format!("visit.spot_check_{code}")), code != "not_confirmed")),
        })
        .collect()
}

/// A remote check-in's summary (JSON) in a few words: first and last
/// activity and the active hours.
fn summary_text(json: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return String::new();
    };
    match value.as_object() {
        Some(fields) => fields.iter().map(|(key, value)| format!("{key}: {value}")).collect::<Vec<_>>().join(", "),
        None => value.to_string(),
    }
}
