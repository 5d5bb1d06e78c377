//! The elder list and the elder page: profile, categories, devices, the
//! activity chart, alerts with their handling, visits, absence and
//! heightened watch. Identifying numbers are masked until revealed, and
//! every reveal and every page read is written to the audit log.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use plotters::prelude::*;
use serde::Deserialize;

use anxin_domain::access::Role;
use anxin_domain::alerts::Category;
use anxin_domain::registry::mask;
use anxin_domain::time::{DAY_MS, HOUR_MS};
use anxin_domain::visits::{Satisfaction, Service};
use anxin_store::{AlertFilter, DeviceRecord, Elder, HourActivity, now_ms};

use super::{place, visible_elder};
use crate::api::ApiState;
use crate::auth::Viewer;
use crate::i18n::Lang;
use crate::pages::board::{AlertRow, row};
use crate::web::{Chrome, PageError, html, local_time};

/// An elder's profile, ready to show: identifying numbers masked.
#[derive(Debug)]
pub(crate) struct ElderCard {
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
pub(crate) struct DeviceView {
    pub device_id: String,
    pub online: bool,
    pub state: &'static str,
    pub since: String,
    pub battery: String,
    pub low_battery: bool,
    pub last_seen: String,
    pub firmware: String,
}

pub(crate) fn devices_view(
    devices: &[DeviceRecord],
    lang: Lang,
    offset: chrono::FixedOffset,
    _now: i64,
) -> Vec<DeviceView> {
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

/// The hour × day activity chart of the `days` local days up to `now`, as
/// SVG drawn by plotters: one cell per hour, darker with more movement,
/// grey where no device reported.
pub fn activity_chart(
    activity: &[HourActivity],
    days: i64,
    offset: chrono::FixedOffset,
    now: i64,
    title: &str,
) -> String {
    let offset_ms = i64::from(offset.local_minus_utc()) * 1_000;
    let today_start = (now + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms;
    let first_day = today_start - (days - 1) * DAY_MS;
    let max_motion = activity.iter().map(|a| a.motion).max().unwrap_or(0).max(1);
    let day_label = |index: i64| {
        chrono::DateTime::from_timestamp_millis(first_day + index * DAY_MS + offset_ms)
            .map(|t| t.format("%m-%d").to_string())
            .unwrap_or_default()
    };
    let height = u32::try_from(40 + 18 * days).unwrap_or(300);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(48)
                .build_cartesian_2d(0i64..24i64, 0i64..days)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(12)
                .y_labels(usize::try_from(days).unwrap_or(14))
                .x_label_formatter(&|hour| format!("{hour:02}"))
                .y_label_formatter(&|row| day_label(days - 1 - row))
                .y_label_offset(-8)
                .label_style(("sans-serif", 11))
                .draw()?;
            // Row 0 is drawn at the bottom: put today on top.
            let mut cells = Vec::with_capacity(usize::try_from(days * 24).unwrap_or(0));
            for day in 0..days {
                for hour in 0..24 {
                    let start = first_day + day * DAY_MS + hour * HOUR_MS;
                    let found = activity.iter().find(|a| a.hour_start == start);
                    // Movement shades one green from pale to full, over white.
                    let color = match found {
                        _ if start > now => WHITE.mix(1.0),
                        None => RGBColor(225, 225, 225).mix(1.0),
                        Some(a) if a.motion == 0 && a.door_opens == 0 => RGBColor(232, 244, 234).mix(1.0),
                        Some(a) => {
                            let share = (a.motion + a.door_opens).min(max_motion) as f64 / max_motion as f64;
                            RGBColor(30, 130, 70).mix(0.25 + 0.75 * share.sqrt())
                        }
                    };
                    let row = days - 1 - day;
                    cells.push(Rectangle::new([(hour, row), (hour + 1, row + 1)], color.filled()));
                }
            }
            chart.draw_series(cells)?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(%error, "cannot draw the activity chart");
        }
    }
    // An accessible name for the picture.
    svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", askama_escape(title)), 1)
}

fn askama_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[derive(Debug)]
pub(crate) struct ElderLine {
    pub id: i64,
    pub name: String,
    pub place: String,
    pub categories: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "elders.html")]
struct ElderList {
    c: Chrome,
    elders: Vec<ElderLine>,
    query: String,
    can_edit: bool,
    /// All the elders found, of which `elders` is one page.
    found: usize,
    page: usize,
    pages: usize,
}

/// Elders listed per page: a township's ledger runs to thousands.
pub const ELDERS_PER_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    q: String,
    /// 1-based.
    page: Option<usize>,
}

pub(super) async fn list(
    State(state): State<ApiState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let needle = query.q.trim().to_string();
    let found: Vec<Elder> = state
        .store
        .elders()
        .await?
        .into_iter()
        .filter(|e| viewer.principal.can_see_elder(&place(e)))
        .filter(|e| {
            needle.is_empty() || e.name.contains(&needle) || e.village.contains(&needle) || e.township.contains(&needle)
        })
        .collect();
    let pages = found.len().div_ceil(ELDERS_PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let elders = found
        .iter()
        .skip((page - 1) * ELDERS_PER_PAGE)
        .take(ELDERS_PER_PAGE)
        .map(|e| ElderCard::of(e, viewer.lang))
        .map(|card| ElderLine { id: card.id, name: card.name, place: card.place, categories: card.categories })
        .collect();
    Ok(html(&ElderList {
        c: viewer.chrome("elders.title"),
        elders,
        query: needle,
        can_edit: viewer.principal.can_edit_registry(),
        found: found.len(),
        page,
        pages,
    }))
}

#[derive(Debug)]
pub(crate) struct VisitLine {
    pub day: String,
    pub mode: &'static str,
    pub visitor: String,
    pub remote: bool,
    pub summary: String,
    /// The form's judgements ticked, each with whether it is a problem.
    pub findings: Vec<(String, bool)>,
    pub needs: String,
}

#[derive(Debug)]
struct ReferralLine {
    id: i64,
    service: &'static str,
    need: String,
    raised: String,
    done: Option<String>,
}

#[derive(Debug)]
struct ServiceLine {
    day: String,
    description: String,
    served_by: String,
    satisfaction: &'static str,
}

#[derive(Debug, Deserialize)]
pub(super) struct ElderPageQuery {
    /// A visit just recorded that found a problem: offer its referral.
    found: Option<i64>,
}

#[derive(Debug)]
struct HandledAlert {
    row: AlertRow,
    status: &'static str,
    acknowledged: String,
    resolved: String,
    outcome: String,
    note: String,
}

#[derive(Template)]
#[template(path = "elder.html")]
struct ElderPage {
    c: Chrome,
    elder: ElderCard,
    visitors: String,
    devices: Vec<DeviceView>,
    chart: String,
    alerts: Vec<HandledAlert>,
    visits: Vec<VisitLine>,
    absence: Option<String>,
    watches: Vec<String>,
    can_edit: bool,
    visitor_names: Vec<String>,
    can_record: bool,
    referrals: Vec<ReferralLine>,
    services: Vec<ServiceLine>,
    service_kinds: Vec<(&'static str, &'static str)>,
    satisfactions: Vec<(&'static str, &'static str)>,
    found: Option<i64>,
    today: String,
    household: super::household::HouseholdView,
}

pub(crate) fn visit_lines(visits: &[anxin_store::VisitRecord], lang: Lang) -> Vec<VisitLine> {
    visits
        .iter()
        .map(|v| VisitLine {
            day: v.day.clone(),
            mode: lang.t(&format!("visit_mode.{}", v.mode)),
            visitor: v.visitor.clone(),
            remote: v.mode == "remote",
            summary: v.summary.as_deref().map(summary_text).unwrap_or_default(),
            findings: v.assessment.as_ref().map(|a| super::records::findings(a, lang)).unwrap_or_default(),
            needs: v.needs.clone().unwrap_or_default(),
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

pub(super) async fn page(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<ElderPageQuery>,
) -> Result<Response, PageError> {
    let elder = visible_elder(&state.store, &viewer.principal, id).await?;
    let now = now_ms();
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    state.store.audit(now, &viewer.principal.name, "elder page read", Some(id), None).await?;
    let activity = state.store.elder_activity(id, now - 15 * DAY_MS).await?;
    let alerts = state.store.alerts(&AlertFilter { unresolved_only: false, elder_id: Some(id), limit: 100 }).await?;
    let alerts = alerts
        .iter()
        .map(|a| HandledAlert {
            row: row(a, lang, offset),
            status: lang.t(&format!("status.{}", a.status)),
            acknowledged: match (&a.acknowledged_by, a.ack_ms) {
                (Some(by), Some(ms)) => format!("{by} ({} s)", ms / 1_000),
                _ => String::new(),
            },
            resolved: match (&a.resolved_by, a.resolved_at) {
                (Some(by), Some(at)) => format!("{by} {}", local_time(at, offset)),
                _ => String::new(),
            },
            outcome: a.outcome.as_deref().map(|o| lang.t(&format!("outcome.{o}")).to_string()).unwrap_or_default(),
            note: a.note.clone().unwrap_or_default(),
        })
        .collect();
    let mut visits = state.store.visits(id).await?;
    visits.truncate(90);
    let absence = state
        .store
        .current_absence(id, now)
        .await?
        .map(|a| format!("{} — {} ({})", a.reason, local_time(a.ends_at, offset), a.created_by));
    let watches = state
        .store
        .heightened_watches(now)
        .await?
        .into_iter()
        .filter(|w| {
            w.county == elder.county
                && w.township.as_deref().is_none_or(|t| t == elder.township)
                && w.village.as_deref().is_none_or(|v| v == elder.village)
                && w.starts_at <= now
        })
        .map(|w| format!("{} — {}", w.reason, local_time(w.ends_at, offset)))
        .collect();
    let can_edit = viewer.principal.can_edit_registry();
    let visitor_names = if can_edit {
        state
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Visitor.as_str() && !u.disabled)
            .map(|u| u.name)
            .collect()
    } else {
        Vec::new()
    };
    let choice = super::records::choice;
    let referrals = state
        .store
        .referrals(id)
        .await?
        .into_iter()
        .map(|r| ReferralLine {
            id: r.id,
            service: choice(lang, r.service.code(), r.service.label()),
            need: r.need,
            raised: format!("{} {}", r.created_by, local_time(r.created_at, offset)),
            done: r.done_at.map(|at| {
                format!(
                    "{} — {} {}",
                    r.outcome.unwrap_or_default(),
                    r.done_by.unwrap_or_default(),
                    local_time(at, offset)
                )
            }),
        })
        .collect();
    let services = state
        .store
        .care_services(id)
        .await?
        .into_iter()
        .map(|s| ServiceLine {
            day: s.day,
            description: s.description,
            served_by: s.served_by,
            satisfaction: s.satisfaction.map_or("", |v| choice(lang, v.code(), v.label())),
        })
        .collect();
    Ok(html(&ElderPage {
        can_record: viewer.principal.can_record_visits(&place(&elder)),
        referrals,
        services,
        service_kinds: Service::ALL.iter().map(|s| (s.code(), choice(lang, s.code(), s.label()))).collect(),
        satisfactions: Satisfaction::ALL.iter().map(|s| (s.code(), choice(lang, s.code(), s.label()))).collect(),
        found: query.found,
        household: super::household::HouseholdView::of(&state.store.elder_details(id).await?.unwrap_or_default(), lang),
        today: state.policy.today().format("%Y-%m-%d").to_string(),
        c: viewer.chrome("elder.title"),
        visitors: state.store.visitors_of(id).await?.join("、"),
        devices: devices_view(&state.store.devices_of(id).await?, lang, offset, now),
        chart: activity_chart(&activity, 14, offset, now, lang.t("elder.chart_title")),
        alerts,
        visits: visit_lines(&visits, lang),
        absence,
        watches,
        elder: ElderCard::of(&elder, lang),
        can_edit,
        visitor_names,
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct RevealForm {
    field: String,
}

/// Shows one identifying number whole — a deliberate act, audited. Visitors
/// see the elder but not their numbers.
pub(super) async fn reveal(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<RevealForm>,
) -> Result<Response, PageError> {
    let elder = visible_elder(&state.store, &viewer.principal, id).await?;
    if !may_reveal(viewer.principal.role) {
        return Err(PageError::Forbidden);
    }
    let Some((value, action)) = identifying_number(elder, &form.field) else {
        return Err(PageError::Invalid("field must be citizen_id or disability_cert".into()));
    };
    let value = value.ok_or(PageError::NotFound)?;
    state.store.audit(now_ms(), &viewer.principal.name, action, Some(id), None).await?;
    Ok(Html(format!("<span class=\"revealed\">{}</span>", askama_escape(&value))).into_response())
}

/// The whole number behind `field` (`citizen_id` or `disability_cert`),
/// if the elder has one, and the audit action its reveal is written as;
/// `None` for any other field.
pub(crate) fn identifying_number(elder: Elder, field: &str) -> Option<(Option<String>, &'static str)> {
    match field {
        "citizen_id" => Some((elder.citizen_id, "citizen ID revealed")),
        "disability_cert" => Some((elder.disability_cert, "disability certificate number revealed")),
        _ => None,
    }
}

/// Who may reveal a whole ID number: those who keep the registry and those
/// who may need it in an emergency (oncall).
pub(crate) fn may_reveal(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Oncall)
}
