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
