//! The monthly visit rate (月探访率) of the regions a reader may see: the
//! figures of a month for a county, township or village, the elders not
//! yet visited with the days left, a chart of the rate by township over the
//! last six months, who is due a visit under a heightened watch, and the
//! figures as `.xlsx` for supervision (督导检查).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use anxin_domain::access::Region;
use anxin_domain::ledger::sheet;
use anxin_domain::visits::{ElderMonth, Month, RateFigures, RegionLevel, VisitRate};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::scope::{visible_elders, visit_rate};
use crate::state::AppState;
use crate::views::charts::visit_rate_chart;
use crate::web::{Chrome, html};

/// During a heightened watch each elder of the region is due a visit by a
/// person (home, phone, video or other) every this many days.
pub const HEIGHTENED_VISIT_EVERY_DAYS: i64 = 3;

#[derive(Debug, Deserialize)]
pub(super) struct RateQuery {
    month: Option<String>,
    /// `COUNTY`, `COUNTY/TOWNSHIP` or `COUNTY/TOWNSHIP/VILLAGE`.
    region: Option<String>,
}

struct Selection {
    month: Month,
    region: Option<Region>,
    today: chrono::NaiveDate,
}

fn select(state: &AppState, viewer: &Viewer, query: &RateQuery) -> Result<Selection, AppError> {
    if !viewer.principal.can_read_figures() {
        return Err(AppError::Forbidden(None));
    }
    let today = state.today();
    let month = match query.month.as_deref().filter(|m| !m.trim().is_empty()) {
        None => Month::of(today),
        Some(text) => Month::parse(text).ok_or_else(|| AppError::Invalid(viewer.lang.t("my.bad_month").into()))?,
    };
    let region = match query.region.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(text) => {
            Some(Region::parse(text).map_err(|_| AppError::Invalid(viewer.lang.t("rate.bad_region").into()))?)
        }
    };
    Ok(Selection { month, region, today })
}

#[derive(Debug)]
struct RegionLine {
    region: String,
    figures: RateFigures,
    percent: String,
    unvisited: i64,
}

fn lines(rate: &VisitRate, level: RegionLevel) -> Vec<RegionLine> {
    rate.by(level)
        .into_iter()
        .map(|(region, figures)| RegionLine {
            percent: figures.percent(),
            unvisited: figures.registered - figures.visited,
            region,
            figures,
        })
        .collect()
}

#[derive(Debug)]
struct DueLine {
    elder_id: i64,
    name: String,
    place: String,
    last_contact: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "rate.html")]
struct RatePage {
    c: Chrome,
    month: String,
    previous: String,
    next: String,
    region: String,
    total: RateFigures,
    percent: String,
    days_left: i64,
    by_region: Vec<RegionLine>,
    unvisited: Vec<ElderMonth>,
    /// Left during the month before a visit: not counted.
    left_unvisited: Vec<ElderMonth>,
    chart: String,
    due: Vec<DueLine>,
    query: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<RateQuery>,
) -> Result<Response, AppError> {
    let Selection { month, region, today } = select(&state, &viewer, &query)?;
    let rate = visit_rate(&state, &viewer.principal, month, region.as_ref()).await?;
    let level = match &region {
        Some(r) if r.township.is_some() => RegionLevel::Village,
        _ => RegionLevel::Township,
    };
    let mut history = Vec::new();
    let mut m = month;
    for _ in 0..6 {
        history.push((m, visit_rate(&state, &viewer.principal, m, region.as_ref()).await?.by(RegionLevel::Township)));
        m = m.previous();
    }
    history.reverse();
    let region_text = region.as_ref().map(ToString::to_string).unwrap_or_default();
    let page = RatePage {
        c: viewer.chrome("rate.title"),
        month: month.to_string(),
        previous: month.previous().to_string(),
        next: month.next().to_string(),
        percent: rate.total.percent(),
        days_left: rate.days_left,
        by_region: lines(&rate, level),
        unvisited: rate.unvisited().cloned().collect(),
        left_unvisited: rate.left_unvisited.clone(),
        chart: visit_rate_chart(&history, viewer.lang.t("rate.chart_title")),
        due: due(&state, &viewer, today).await?,
        query: form_urlencoded::Serializer::new(String::new())
            .append_pair("month", &month.to_string())
            .append_pair("region", &region_text)
            .finish(),
        region: region_text,
        total: rate.total,
    };
    state
        .store
        .audit(state.now(), &viewer.principal.name, "visit rate read", None, Some(&format!("{month} {}", page.region)))
        .await?;
    Ok(html(&page))
}

/// Elders of regions under heightened watch now who have had no visit by a
/// person since the watch began, or in the last few days.
async fn due(state: &AppState, viewer: &Viewer, today: chrono::NaiveDate) -> Result<Vec<DueLine>, AppError> {
    let now = state.now();
    let watches: Vec<_> =
        state.store.heightened_watches(now).await?.into_iter().filter(|w| w.starts_at <= now).collect();
    if watches.is_empty() {
        return Ok(Vec::new());
    }
    let offset = state.policy.utc_offset;
    let contacts = state.store.last_contacts(&today.format("%Y-%m-%d").to_string()).await?;
    let mut due = Vec::new();
    for elder in visible_elders(&state.store, &viewer.principal).await?.into_iter().filter(|e| e.left_on.is_none()) {
        let Some(watch) = watches.iter().find(|w| {
            w.county == elder.county
                && w.township.as_deref().is_none_or(|t| t == elder.township)
                && w.village.as_deref().is_none_or(|v| v == elder.village)
        }) else {
            continue;
        };
        let watch_day = chrono::DateTime::from_timestamp_millis(watch.starts_at)
            .map_or(today, |t| t.with_timezone(&offset).date_naive());
        let window_start =
            watch_day.max(today - chrono::Days::new(u64::try_from(HEIGHTENED_VISIT_EVERY_DAYS - 1).unwrap_or(0)));
        let last = contacts.get(&elder.id);
        let fresh =
            last.and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).is_some_and(|d| d >= window_start);
        if !fresh {
            due.push(DueLine {
                elder_id: elder.id,
                name: elder.name.clone(),
                place: format!("{} {} {}", elder.county, elder.township, elder.village),
                last_contact: last.cloned().unwrap_or_default(),
                reason: watch.reason.clone(),
            });
        }
    }
    Ok(due)
}

/// `/rate/export.xlsx`: the month's figures for every county, township and
/// village the reader may see, for supervision.
pub(super) async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<RateQuery>,
) -> Result<Response, AppError> {
    let Selection { month, region, today: _ } = select(&state, &viewer, &query)?;
    let rate = visit_rate(&state, &viewer.principal, month, region.as_ref()).await?;
    let mut rows = vec![
        ["月份", "地区", "登记人数", "已探访人数", "未探访人数", "月探访率", "本月剩余天数"]
            .map(str::to_string)
            .to_vec(),
    ];
    for level in [RegionLevel::County, RegionLevel::Township, RegionLevel::Village] {
        for line in lines(&rate, level) {
            rows.push(vec![
                month.to_string(),
                line.region,
                line.figures.registered.to_string(),
                line.figures.visited.to_string(),
                line.unvisited.to_string(),
                line.percent,
                rate.days_left.to_string(),
            ]);
        }
    }
    let bytes =
        sheet::write(&rows, sheet::Format::Xlsx, "月探访率").map_err(|error| AppError::Invalid(error.to_string()))?;
    state
        .store
        .audit(state.now(), &viewer.principal.name, "visit rate exported", None, Some(&month.to_string()))
        .await?;
    let disposition = format!("attachment; filename=\"visit-rate-{month}.xlsx\"");
    Ok((
        [
            (header::CONTENT_TYPE, sheet::Format::Xlsx.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
