//! The elder list and the elder page: profile, categories, devices, the
//! activity chart, alerts with their handling, visits, absence and
//! heightened watch. Identifying numbers are masked until revealed, and
//! every reveal and every page read is written to the audit log.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use anxin_domain::access::{Placed, Role};
use anxin_domain::enrolment::ExitReason;
use anxin_domain::responders::Relation;
use anxin_domain::time::{DAY_MS, local_day};
use anxin_domain::visits::{Satisfaction, Service};
use anxin_store::AlertFilter;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::scope::{identifying_number, may_reveal, visible_elder, visible_elders};
use crate::state::AppState;
use crate::views::alerts::{AlertRow, row};
use crate::views::charts::{activity_chart, escape};
use crate::views::elders::{DeviceView, ElderCard, VisitLine, devices_view, visit_lines};
use crate::views::household::HouseholdView;
use crate::views::records::choice;
use crate::web::{Chrome, html, local_time};

#[derive(Debug)]
struct ElderLine {
    pub id: i64,
    pub name: String,
    pub place: String,
    pub categories: Vec<&'static str>,
    /// The exit date, for an elder who left the programme.
    pub left_on: Option<String>,
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
    /// 留守 elders whose children left six months ago or more.
    recheck: Vec<ElderLine>,
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
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let needle = query.q.trim().to_string();
    let found: Vec<_> = visible_elders(&state.store, &viewer.principal)
        .await?
        .into_iter()
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
        .map(|e| (ElderCard::of(e, viewer.lang), e.left_on.clone()))
        .map(|(card, left_on)| ElderLine {
            id: card.id,
            name: card.name,
            place: card.place,
            categories: card.categories,
            left_on,
        })
        .collect();
    let today = state.today();
    let recheck = found
        .iter()
        .filter(|e| e.left_on.is_none())
        .filter(|e| {
            e.left_behind_since
                .as_deref()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|since| anxin_domain::registry::left_behind_recheck_due(since, today))
        })
        .map(|e| {
            let card = ElderCard::of(e, viewer.lang);
            ElderLine {
                id: card.id,
                name: card.name,
                place: card.place,
                categories: card.categories,
                left_on: e.left_behind_since.clone(),
            }
        })
        .collect();
    Ok(html(&ElderList {
        recheck,
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

#[derive(Debug)]
struct ContactLine {
    id: i64,
    position: i64,
    name: String,
    relation: &'static str,
    phone: String,
    hours: String,
    kinds: String,
    consent: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ElderPageQuery {
    /// A visit just recorded that found a problem: offer its referral.
    found: Option<i64>,
    /// An emergency alert just opened from a visit.
    emergency: Option<i64>,
    /// A visit just committed: named on the page as saved.
    saved: Option<i64>,
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
    emergency: Option<i64>,
    /// Whether the home's location is recorded (visits' distances are measured from it).
    home_located: bool,
    /// The visit just committed: its day, and whether it was recorded late (补录).
    saved: Option<(i64, String, bool)>,
    today: String,
    household: HouseholdView,
    /// Each period in the programme, the first first.
    enrolment: Vec<String>,
    /// Set when the elder has left: the banner's text.
    left: Option<String>,
    /// The call list, in order.
    contacts: Vec<ContactLine>,
    relations: Vec<(&'static str, &'static str)>,
    alert_kinds: Vec<(&'static str, &'static str)>,
    exit_reasons: Vec<(&'static str, &'static str)>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<ElderPageQuery>,
) -> Result<Response, AppError> {
    let elder = visible_elder(&state.store, &viewer.principal, id).await?;
    let now = state.now();
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    state.store.audit(now, &viewer.principal.name, "elder page read", Some(id), None).await?;
    let activity = state.store.elder_activity(id, now - 15 * DAY_MS).await?;
    let alerts = state
        .store
        .alerts(&AlertFilter { unresolved_only: false, elder_id: Some(id), limit: 100, ..AlertFilter::default() })
        .await?;
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
            outcome: a.outcome.map(|o| lang.t(&format!("outcome.{o}")).to_string()).unwrap_or_default(),
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
    let home = state.store.home_location(id).await?;
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
    let reason_word = |code: &str| {
        ExitReason::parse(code).map_or_else(|| code.to_string(), |r| choice(lang, r.code(), r.label()).to_string())
    };
    let mut enrolment = Vec::new();
    for period in state.store.enrolments(id).await? {
        let since = local_day(period.enrolled_at, offset).to_string();
        enrolment
            .push(lang.t("enrolment.enrolled_since").replace("{date}", &since).replace("{by}", &period.enrolled_by));
        if let Some(exited_on) = &period.exited_on {
            enrolment.push(
                lang.t("enrolment.left")
                    .replace("{date}", exited_on)
                    .replace("{reason}", &reason_word(period.exit_reason.as_deref().unwrap_or_default()))
                    .replace("{by}", period.exit_recorded_by.as_deref().unwrap_or_default()),
            );
        }
    }
    let left = elder.left_on.as_ref().map(|on| {
        lang.t("enrolment.left_banner")
            .replace("{date}", on)
            .replace("{reason}", &reason_word(elder.exit_reason.as_deref().unwrap_or_default()))
    });
    let contacts = state
        .store
        .contacts(id)
        .await?
        .into_iter()
        .map(|c| ContactLine {
            id: c.id,
            position: c.position,
            relation: Relation::parse(&c.relation).map_or("", |r| choice(lang, r.code(), r.label())),
            hours: match (&c.available_from, &c.available_to) {
                (Some(from), Some(to)) => format!("{from}–{to}"),
                _ => lang.t("contact.any_time").to_string(),
            },
            kinds: if c.kinds.is_empty() {
                lang.t("contact.default_kinds").to_string()
            } else {
                c.kinds.iter().map(|k| lang.t(&format!("kind.{k}"))).collect::<Vec<_>>().join("、")
            },
            consent: format!("{} — {} {}", c.consent, c.consent_recorded_by, local_time(c.consent_recorded_at, offset)),
            name: c.name,
            phone: c.phone,
        })
        .collect();
    Ok(html(&ElderPage {
        contacts,
        relations: Relation::ALL.iter().map(|r| (r.code(), choice(lang, r.code(), r.label()))).collect(),
        alert_kinds: anxin_domain::alerts::AlertKind::ALL
            .iter()
            .map(|k| (k.as_str(), lang.t(&format!("kind.{}", k.as_str()))))
            .collect(),
        enrolment,
        left,
        exit_reasons: ExitReason::ALL.iter().map(|r| (r.code(), choice(lang, r.code(), r.label()))).collect(),
        can_record: viewer.principal.can_record_visits(&elder.place()) && elder.left_on.is_none(),
        referrals,
        services,
        service_kinds: Service::ALL.iter().map(|s| (s.code(), choice(lang, s.code(), s.label()))).collect(),
        satisfactions: Satisfaction::ALL.iter().map(|s| (s.code(), choice(lang, s.code(), s.label()))).collect(),
        found: query.found,
        emergency: query.emergency,
        saved: query.saved.and_then(|id| visits.iter().find(|v| v.id == id)).map(|v| (v.id, v.day.clone(), v.late)),
        household: HouseholdView::of(&state.store.elder_details(id).await?.unwrap_or_default(), lang),
        today: state.today().format("%Y-%m-%d").to_string(),
        c: viewer.chrome("elder.title"),
        visitors: state.store.visitors_of(id).await?.join("、"),
        devices: devices_view(&state.store.devices_of(id).await?, lang, offset, now),
        chart: activity_chart(&activity, 14, offset, now, lang.t("elder.chart_title")),
        alerts,
        visits: visit_lines(&visits, &state.store.evidence_of(id).await?, home.as_ref(), lang, offset),
        home_located: home.is_some(),
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
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<RevealForm>,
) -> Result<Response, AppError> {
    let elder = visible_elder(&state.store, &viewer.principal, id).await?;
    if !may_reveal(viewer.principal.role) {
        return Err(AppError::Forbidden(None));
    }
    let Some((value, action)) = identifying_number(elder, &form.field) else {
        return Err(AppError::Invalid("field must be citizen_id or disability_cert".into()));
    };
    let value = value.ok_or(AppError::NotFound(None))?;
    state.store.audit(state.now(), &viewer.principal.name, action, Some(id), None).await?;
    Ok(Html(format!("<span class=\"revealed\">{}</span>", escape(&value))).into_response())
}
