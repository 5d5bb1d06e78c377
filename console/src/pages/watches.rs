//! Heightened watch (重点关注), from the console: an official starts one for
//! a region inside their own — for a festival of the plan (春节, 中秋, 重阳,
//! listed ahead with their solar dates), a weather warning, a public-health
//! event — and ends it. While it lasts, inactivity and temperature
//! thresholds tighten in its homes and its elders are due a visit by a
//! person every few days (the rate page lists who).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::access::{Principal, Region, Role};
use anxin_domain::festivals::{Festival, upcoming};
use anxin_domain::time::day_start_ms;
use anxin_store::RegionFilter;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::state::AppState;
use crate::views::records::choice;
use crate::web::{Chrome, html, local_time};

/// How far ahead the page lists festivals.
pub const FESTIVALS_AHEAD_DAYS: u64 = 60;

#[derive(Debug)]
struct WatchLine {
    id: i64,
    region: String,
    reason: String,
    from: String,
    until: String,
    begun: bool,
}

#[derive(Debug)]
struct FestivalLine {
    name: &'static str,
    day: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "watches.html")]
struct WatchesPage {
    c: Chrome,
    watches: Vec<WatchLine>,
    festivals: Vec<FestivalLine>,
    regions: Vec<String>,
    today: String,
    kinds: Vec<(&'static str, &'static str)>,
}

fn may_watch(principal: &Principal) -> Result<(), AppError> {
    if matches!(principal.role, Role::Admin | Role::Official) { Ok(()) } else { Err(AppError::Forbidden(None)) }
}

fn region_of(county: &str, township: Option<&str>, village: Option<&str>) -> Region {
    Region { county: county.into(), township: township.map(Into::into), village: village.map(Into::into) }
}

pub(super) async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_watch(&viewer.principal)?;
    let (lang, offset, now, today) = (viewer.lang, state.policy.utc_offset, state.now(), state.today());
    let watches = state
        .store
        .heightened_watches(now)
        .await?
        .into_iter()
        .map(|w| (region_of(&w.county, w.township.as_deref(), w.village.as_deref()), w))
        .filter(|(region, _)| viewer.principal.can_watch_region(region))
        .map(|(region, w)| WatchLine {
            id: w.id,
            region: region.to_string(),
            reason: w.reason,
            from: local_time(w.starts_at, offset),
            until: local_time(w.ends_at, offset),
            begun: w.starts_at <= now,
        })
        .collect();
    let festivals = upcoming(today, FESTIVALS_AHEAD_DAYS)
        .into_iter()
        .map(|(festival, day)| {
            let (from, to) = festival.watch(day);
            FestivalLine {
                name: choice(lang, festival.code(), festival.label()),
                day: day.to_string(),
                from: from.max(today).to_string(),
                to: to.to_string(),
            }
        })
        .collect();
    let regions = match viewer.principal.role {
        Role::Admin => Vec::new(),
        _ => viewer.principal.regions.iter().map(ToString::to_string).collect(),
    };
    Ok(html(&WatchesPage {
        c: viewer.chrome("watch.title"),
        watches,
        festivals,
        regions,
        today: today.to_string(),
        kinds: ["festival", "weather", "public_health", "other"]
            .into_iter()
            .map(|kind| (kind, lang.t(&format!("watch.kind_{kind}"))))
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct WatchForm {
    #[serde(default)]
    region: String,
    /// festival, weather, public_health, other
    #[serde(default)]
    kind: String,
    /// 中秋, 寒潮蓝色预警, …
    #[serde(default)]
    reason: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// Starts (or schedules) a heightened watch: from the first day's start to
/// the last day's end, local.
pub(super) async fn start(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<WatchForm>,
) -> Result<Response, AppError> {
    may_watch(&viewer.principal)?;
    let lang = viewer.lang;
    let region = Region::parse(form.region.trim()).map_err(|_| AppError::Invalid(lang.t("rate.bad_region").into()))?;
    if !viewer.principal.can_watch_region(&region) {
        return Err(AppError::Forbidden(None));
    }
    let day = |text: &str| {
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| AppError::Invalid(lang.t("enrolment.bad_date").into()))
    };
    let (from, to) = (day(&form.from)?, day(&form.to)?);
    let today = state.today();
    if to < from || to < today {
        return Err(AppError::Invalid(lang.t("watch.bad_days").into()));
    }
    let kind = form.kind.trim();
    if !["festival", "weather", "public_health", "other"].contains(&kind) {
        return Err(AppError::Invalid(lang.t("watch.bad_kind").into()));
    }
    let what = form.reason.trim();
    if what.is_empty() || what.chars().count() > 100 {
        return Err(AppError::Invalid(lang.t("watch.reason_needed").into()));
    }
    if kind == "festival" && !Festival::ALL.iter().any(|f| f.label() == what || f.code() == what) {
        return Err(AppError::Invalid(lang.t("watch.not_a_festival").into()));
    }
    let offset = state.policy.utc_offset;
    let (starts_at, ends_at) = (day_start_ms(from, offset), day_start_ms(to + chrono::Days::new(1), offset));
    let filter =
        RegionFilter { county: Some(region.county.clone()), township: region.township, village: region.village };
    let reason = format!("{}：{what}", lang.t(&format!("watch.kind_{kind}")));
    state
        .store
        .schedule_heightened_watch(&filter, starts_at, ends_at, &reason, &viewer.principal.name, state.now())
        .await
        .map_err(|error| match error {
            anxin_store::StoreError::Invalid(reason) => AppError::Invalid(reason),
            other => other.into(),
        })?;
    Ok(Redirect::to("/watches").into_response())
}

/// Ends a watch now (or calls off one not begun).
pub(super) async fn end(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    may_watch(&viewer.principal)?;
    let now = state.now();
    let watch = state.store.heightened_watches(now).await?.into_iter().find(|w| w.id == id);
    let Some(watch) = watch else { return Err(AppError::NotFound(None)) };
    if !viewer.principal.can_watch_region(&region_of(
        &watch.county,
        watch.township.as_deref(),
        watch.village.as_deref(),
    )) {
        return Err(AppError::NotFound(None));
    }
    state.store.end_heightened_watch(id, &viewer.principal.name, now).await?;
    Ok(Redirect::to("/watches").into_response())
}
