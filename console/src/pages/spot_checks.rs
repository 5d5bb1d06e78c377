//! Spot-checks (抽查), for an official of a whole county: draw a
//! reproducible sample of a township's visits of a month, phone each elder
//! from the list, record 属实 / 不属实 / 联系不上 with a note. The results of
//! each township's sample are counted on the list.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::visits::{Month, SpotCheckResult, VisitMode, new_seed};
use anxin_store::SpotCheck;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::state::AppState;
use crate::views::records::choice;
use crate::web::{Chrome, html, local_time};

/// Visits a draw takes unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 10;

/// A referral open longer than this is overdue in the self-check report.
pub const REFERRAL_OVERDUE_DAYS: i64 = 30;

#[derive(Debug)]
struct CheckLine {
    check: SpotCheck,
    drawn: String,
    confirmed: usize,
    not_confirmed: usize,
    unreachable: usize,
    pending: usize,
}

#[derive(Template)]
#[template(path = "spot_checks.html")]
struct SpotChecksPage {
    c: Chrome,
    checks: Vec<CheckLine>,
    counties: Vec<String>,
    last_month: String,
    default_size: usize,
}

#[derive(Debug)]
struct ItemLine {
    visit_id: i64,
    elder_id: i64,
    name: String,
    village: String,
    phone: String,
    day: String,
    mode: &'static str,
    visitor: String,
    corroboration: String,
    result: String,
    note: String,
    checked: String,
}

#[derive(Template)]
#[template(path = "spot_check.html")]
struct SpotCheckPage {
    c: Chrome,
    check: SpotCheck,
    items: Vec<ItemLine>,
    results: Vec<(&'static str, &'static str)>,
}

fn county_official(viewer: &Viewer) -> Result<Vec<String>, AppError> {
    let counties = viewer.principal.closable_counties();
    if counties.is_empty() { Err(AppError::Forbidden(None)) } else { Ok(counties) }
}

pub(super) async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    let counties = county_official(&viewer)?;
    let offset = state.policy.utc_offset;
    let mut checks = Vec::new();
    for check in state.store.spot_checks().await?.into_iter().filter(|c| counties.contains(&c.county)) {
        let items = state.store.spot_check_items(check.id).await?;
        let count = |result: Option<SpotCheckResult>| {
            items.iter().filter(|i| i.result.as_deref().and_then(SpotCheckResult::parse) == result).count()
        };
        checks.push(CheckLine {
            drawn: format!("{} {}", check.drawn_by, local_time(check.drawn_at, offset)),
            confirmed: count(Some(SpotCheckResult::Confirmed)),
            not_confirmed: count(Some(SpotCheckResult::NotConfirmed)),
            unreachable: count(Some(SpotCheckResult::Unreachable)),
            pending: count(None),
            check,
        });
    }
    Ok(html(&SpotChecksPage {
        c: viewer.chrome("spot_check.title"),
        checks,
        counties,
        last_month: Month::of(state.today()).previous().to_string(),
        default_size: DEFAULT_SAMPLE,
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct DrawForm {
    #[serde(default)]
    county: String,
    #[serde(default)]
    township: String,
    #[serde(default)]
    month: String,
    #[serde(default)]
    size: String,
    /// Empty: a fresh seed; given: the draw of that seed again.
    #[serde(default)]
    seed: String,
}

/// Draws a township's sample for a month; the seed is recorded.
pub(super) async fn draw(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<DrawForm>,
) -> Result<Response, AppError> {
    let county = form.county.trim();
    if !viewer.principal.can_close_month(county) {
        return Err(AppError::Forbidden(None));
    }
    let lang = viewer.lang;
    let township = form.township.trim();
    if township.is_empty() {
        return Err(AppError::Invalid(lang.t("spot_check.township_needed").into()));
    }
    let month = Month::parse(&form.month).ok_or_else(|| AppError::Invalid(lang.t("my.bad_month").into()))?;
    let size = match form.size.trim() {
        "" => DEFAULT_SAMPLE,
        text => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| AppError::Invalid(lang.t("spot_check.bad_size").into()))?,
    };
    let seed = match form.seed.trim() {
        "" => new_seed(),
        given if given.len() <= 64 && given.chars().all(|c| c.is_ascii_alphanumeric()) => given.to_string(),
        _ => return Err(AppError::Invalid(lang.t("spot_check.bad_seed").into())),
    };
    let check = state
        .store
        .draw_spot_check(county, township, month, &seed, size, &viewer.principal.name, state.now())
        .await
        .map_err(|error| match error {
            anxin_store::StoreError::Invalid(_) => AppError::Invalid(
                lang.t("spot_check.nothing_to_draw")
                    .replace("{region}", &format!("{county}/{township}"))
                    .replace("{month}", &month.to_string()),
            ),
            other => other.into(),
        })?;
    Ok(Redirect::to(&format!("/spot-checks/{}", check.id)).into_response())
}

async fn own_check(state: &AppState, viewer: &Viewer, id: i64) -> Result<SpotCheck, AppError> {
    let counties = county_official(viewer)?;
    match state.store.spot_check(id).await? {
        Some(check) if counties.contains(&check.county) => Ok(check),
        _ => Err(AppError::NotFound(None)),
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let check = own_check(&state, &viewer, id).await?;
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    let items = state
        .store
        .spot_check_items(id)
        .await?
        .into_iter()
        .map(|item| ItemLine {
            visit_id: item.visit_id,
            elder_id: item.elder_id,
            name: item.name,
            village: item.village,
            phone: item.phone.unwrap_or_default(),
            day: item.day,
            mode: VisitMode::parse(&item.mode).map_or("", |m| choice(lang, m.code(), m.label())),
            visitor: item.visitor,
            corroboration: item.corroboration.map(|c| lang.t(&format!("visit.{c}")).to_string()).unwrap_or_default(),
            result: item.result.unwrap_or_default(),
            note: item.note.unwrap_or_default(),
            checked: match (item.checked_by, item.checked_at) {
                (Some(by), Some(at)) => format!("{by} {}", local_time(at, offset)),
                _ => String::new(),
            },
        })
        .collect();
    // Reading the sample shows elders' names and phones: audited.
    state.store.audit(state.now(), &viewer.principal.name, "spot-check read", None, Some(&id.to_string())).await?;
    Ok(html(&SpotCheckPage {
        c: viewer.chrome("spot_check.title"),
        check,
        items,
        results: SpotCheckResult::ALL.iter().map(|r| (r.code(), choice(lang, r.code(), r.label()))).collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ResultForm {
    visit_id: i64,
    #[serde(default)]
    result: String,
    #[serde(default)]
    note: String,
}

/// Records what the phone call found about one sampled visit.
pub(super) async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<ResultForm>,
) -> Result<Response, AppError> {
    own_check(&state, &viewer, id).await?;
    let lang = viewer.lang;
    let result = SpotCheckResult::parse(&form.result)
        .ok_or_else(|| AppError::Invalid(lang.t("spot_check.bad_result").into()))?;
    if result == SpotCheckResult::NotConfirmed && form.note.trim().is_empty() {
        return Err(AppError::Invalid(lang.t("spot_check.note_needed").into()));
    }
    state
        .store
        .record_spot_check(id, form.visit_id, result, &form.note, &viewer.principal.name, state.now())
        .await
        .map_err(|error| match error {
            anxin_store::StoreError::NotFound(_) => AppError::NotFound(None),
            other => other.into(),
        })?;
    Ok(Redirect::to(&format!("/spot-checks/{id}#visit-{}", form.visit_id)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ReportQuery {
    month: Option<String>,
}

/// The townships' self-check report (自查: 摸底, 台账, 机制) for a month, as
/// `.xlsx`: per township of the official's counties, the elders in the
/// programme and visited, the rate, those without a visitor responsible,
/// the month's exits, referrals open over 30 days, and the spot-checks'
/// results. Audited.
pub(super) async fn report(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Result<Response, AppError> {
    use anxin_domain::ledger::sheet;
    use anxin_domain::visits::{RegionLevel, VisitRate};
    use std::collections::BTreeMap;
    let counties = county_official(&viewer)?;
    let lang = viewer.lang;
    let today = state.today();
    let month = match query.month.as_deref().filter(|m| !m.trim().is_empty()) {
        None => Month::of(today).previous(),
        Some(text) => Month::parse(text).ok_or_else(|| AppError::Invalid(lang.t("my.bad_month").into()))?,
    };
    let in_scope = |county: &str| counties.iter().any(|c| c == county);
    let elders = state.store.month_elders(month, state.policy.utc_offset).await?;
    let rate = VisitRate::of(month, today, elders.into_iter().filter(|e| in_scope(&e.county)), None);
    #[derive(Default)]
    struct Line {
        registered: i64,
        visited: i64,
        percent: String,
        without_visitor: i64,
        exits: i64,
        overdue: i64,
        sampled: i64,
        not_confirmed: i64,
        unreachable: i64,
    }
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for (township, figures) in rate.by(RegionLevel::Township) {
        let line = lines.entry(township).or_default();
        line.percent = figures.percent();
        (line.registered, line.visited) = (figures.registered, figures.visited);
    }
    let all = state.store.elders().await?;
    let township_of = |elder_id: i64| {
        all.iter().find(|e| e.id == elder_id && in_scope(&e.county)).map(|e| format!("{}/{}", e.county, e.township))
    };
    for id in state.store.elders_without_visitor().await? {
        if let Some(key) = township_of(id).filter(|_| all.iter().any(|e| e.id == id && e.left_on.is_none())) {
            lines.entry(key).or_default().without_visitor += 1;
        }
    }
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    for exit in state.store.exits(&day(month.first_day()), &day(month.last_day())).await? {
        if in_scope(&exit.county) {
            lines.entry(format!("{}/{}", exit.county, exit.township)).or_default().exits += 1;
        }
    }
    let overdue_before = state.now() - REFERRAL_OVERDUE_DAYS * anxin_domain::time::DAY_MS;
    for referral in state.store.open_referrals().await?.into_iter().filter(|r| r.created_at < overdue_before) {
        if let Some(key) = township_of(referral.elder_id) {
            lines.entry(key).or_default().overdue += 1;
        }
    }
    for check in
        state.store.spot_checks().await?.into_iter().filter(|c| in_scope(&c.county) && c.month == month.to_string())
    {
        let items = state.store.spot_check_items(check.id).await?;
        let line = lines.entry(format!("{}/{}", check.county, check.township)).or_default();
        line.sampled += i64::try_from(items.len()).unwrap_or(0);
        for item in items {
            match item.result.as_deref().and_then(SpotCheckResult::parse) {
                Some(SpotCheckResult::NotConfirmed) => line.not_confirmed += 1,
                Some(SpotCheckResult::Unreachable) => line.unreachable += 1,
                _ => {}
            }
        }
    }
    let mut rows = vec![
        [
            "月份",
            "地区",
            "在册老人",
            "已探访",
            "月探访率",
            "无探访责任人",
            "本月退出",
            "逾期未办结转介(30天)",
            "抽查条数",
            "抽查不属实",
            "抽查联系不上",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    for (township, l) in lines {
        rows.push(vec![
            month.to_string(),
            township,
            l.registered.to_string(),
            l.visited.to_string(),
            l.percent,
            l.without_visitor.to_string(),
            l.exits.to_string(),
            l.overdue.to_string(),
            l.sampled.to_string(),
            l.not_confirmed.to_string(),
            l.unreachable.to_string(),
        ]);
    }
    let bytes =
        sheet::write(&rows, sheet::Format::Xlsx, "自查报告").map_err(|error| AppError::Invalid(error.to_string()))?;
    state
        .store
        .audit(state.now(), &viewer.principal.name, "self-check report exported", None, Some(&month.to_string()))
        .await?;
    let disposition = format!("attachment; filename=\"self-check-{month}.xlsx\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, sheet::Format::Xlsx.content_type().to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
