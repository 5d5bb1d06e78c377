//! An alert as a row of the board, the elder page and the detail: kind,
//! severity and explanation in the reader's language.

use anxin_store::AlertRecord;

use crate::explain::alert_detail;
use crate::i18n::Lang;
use crate::web::local_time;

/// One open alert as the board shows it.
#[derive(Debug)]
pub struct AlertRow {
    pub id: i64,
    pub kind: &'static str,
    pub severity: String,
    pub severity_label: &'static str,
    pub acknowledged: bool,
    pub acknowledged_by: String,
    pub escalated: bool,
    pub elder_name: String,
    pub place: String,
    pub opened_at: i64,
    pub opened_local: String,
    pub detail: String,
    pub repeats: i64,
}

/// Not yet acknowledged first, then critical before warning before notice,
/// escalated first, then the oldest.
pub fn most_urgent_first(alerts: &mut [AlertRecord]) {
    alerts.sort_by_key(|a| (a.acknowledged_at.is_some(), std::cmp::Reverse(a.severity), -a.level, a.opened_at, a.id));
}

pub fn row(alert: &AlertRecord, lang: Lang, offset: chrono::FixedOffset) -> AlertRow {
    AlertRow {
        id: alert.id,
        kind: lang.t(&format!("kind.{}", alert.kind)),
        severity: alert.severity.to_string(),
        severity_label: lang.t(&format!("severity.{}", alert.severity)),
        acknowledged: alert.acknowledged_at.is_some(),
        acknowledged_by: alert.acknowledged_by.clone().unwrap_or_default(),
        escalated: alert.level > 0,
        elder_name: alert.elder_name.clone(),
        place: format!("{} {} {}", alert.county, alert.township, alert.village),
        opened_at: alert.opened_at,
        opened_local: local_time(alert.opened_at, offset),
        detail: alert_detail(alert.explanation.as_ref(), &alert.detail, lang),
        repeats: alert.repeats,
    }
}
