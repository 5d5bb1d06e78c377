//! The monthly visit rate (月探访率) of the regions a reader may see: the
//! figures of a month for a county, township or village, the elders not
//! yet visited with the days left, a chart of the rate by township over the
//! last six months, who is due a visit under a heightened watch, and the
//! figures as `.xlsx` for supervision (督导检查).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use plotters::prelude::*;
use serde::Deserialize;

use anxin_domain::ledger::sheet;
use anxin_domain::visits::ElderMonth;
use anxin_domain::visits::{Month, RateFigures, RegionLevel, rate_by, rate_of};
use anxin_store::now_ms;

use crate::api::ApiState;
use crate::auth::Viewer;
use crate::web::{Chrome, PageError, html};

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
    region: Option<anxin_domain::access::Region>,
    today: chrono::NaiveDate,
}

fn select(state: &ApiState, viewer: &Viewer, query: &RateQuery) -> Result<Selection, PageError> {
    if !viewer.principal.can_read_figures() {
        return Err(PageError::Forbidden);
    }
    let today = state.policy.today();
    let month = match query.month.as_deref().filter(|m| !m.trim().is_empty()) {
        None => Month::of(today),
        Some(text) => Month::parse(text).ok_or_else(|| PageError::Invalid(viewer.lang.t("my.bad_month").into()))?,
    };
    let region = match query.region.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(text) => Some(
            anxin_domain::access::Region::parse(text)
                .map_err(|_| PageError::Invalid(viewer.lang.t("rate.bad_region").into()))?,
        ),
    };
    Ok(Selection { month, region, today })
}

/// The month's elders the reader may see, inside the chosen region.
async fn elders_of(
    state: &ApiState,
    viewer: &Viewer,
    month: Month,
    region: Option<&anxin_domain::access::Region>,
) -> Result<Vec<ElderMonth>, PageError> {
    Ok(month_elders(&state.store, state.policy.utc_offset, &viewer.principal, month, region).await?)
}

/// Each elder `who` may see in `region`, registered before the month ended,
/// with their visits of that month.
pub(crate) async fn month_elders(
    store: &anxin_store::Store,
    utc_offset: chrono::FixedOffset,
    who: &anxin_domain::access::Principal,
    month: Month,
    region: Option<&anxin_domain::access::Region>,
) -> Result<Vec<ElderMonth>, anxin_store::StoreError> {
    Ok(store
        .month_elders(month, utc_offset)
        .await?
        .into_iter()
        .filter(|e| {
            who.can_see_elder(&anxin_domain::access::ElderPlace {
                elder_id: e.elder_id,
                county: &e.county,
                township: &e.township,
                village: &e.village,
            })
        })
        .filter(|e| region.is_none_or(|r| r.covers(&e.county, &e.township, &e.village)))
        .collect())
}

#[derive(Debug)]
struct RegionLine {
    region: String,
    figures: RateFigures,
    percent: String,
    unvisited: i64,
}

fn lines(elders: &[ElderMonth], level: RegionLevel) -> Vec<RegionLine> {
    rate_by(elders, level)
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
    chart: String,
    due: Vec<DueLine>,
    query: String,
}

pub(super) async fn page(
    State(state): State<ApiState>,
    viewer: Viewer,
    Query(query): Query<RateQuery>,
) -> Result<Response, PageError> {
    let Selection { month, region, today } = select(&state, &viewer, &query)?;
    let elders = elders_of(&state, &viewer, month, region.as_ref()).await?;
    let total = rate_of(&elders);
    let level = match &region {
        Some(r) if r.township.is_some() => RegionLevel::Village,
        _ => RegionLevel::Township,
    };
    let mut history = Vec::new();
    let mut m = month;
    for _ in 0..6 {
        history.push((m, rate_by(&elders_of(&state, &viewer, m, region.as_ref()).await?, RegionLevel::Township)));
        m = m.previous();
    }
    history.reverse();
    let unvisited: Vec<ElderMonth> = elders.iter().filter(|e| e.visits == 0).cloned().collect();
    let region_text = region.as_ref().map(ToString::to_string).unwrap_or_default();
    let page = RatePage {
        c: viewer.chrome("rate.title"),
        month: month.to_string(),
        previous: month.previous().to_string(),
        next: month.next().to_string(),
        percent: total.percent(),
        days_left: month.days_left(today),
        by_region: lines(&elders, level),
        chart: chart(&history, viewer.lang.t("rate.chart_title")),
        due: due(&state, &viewer, today).await?,
        query: form_urlencoded::Serializer::new(String::new())
            .append_pair("month", &month.to_string())
            .append_pair("region", &region_text)
            .finish(),
        region: region_text,
        total,
        unvisited,
    };
    state
        .store
        .audit(now_ms(), &viewer.principal.name, "visit rate read", None, Some(&format!("{month} {}", page.region)))
        .await?;
    Ok(html(&page))
}

/// Elders of regions under heightened watch now who have had no visit by a
/// person since the watch began, or in the last few days.
async fn due(state: &ApiState, viewer: &Viewer, today: chrono::NaiveDate) -> Result<Vec<DueLine>, PageError> {
    let now = now_ms();
    let watches: Vec<_> =
        state.store.heightened_watches(now).await?.into_iter().filter(|w| w.starts_at <= now).collect();
    if watches.is_empty() {
        return Ok(Vec::new());
    }
    let offset = state.policy.utc_offset;
    let contacts = state.store.last_contacts(&today.format("%Y-%m-%d").to_string()).await?;
    let mut due = Vec::new();
    for elder in state.store.elders().await? {
        if !viewer.principal.can_see_elder(&super::place(&elder)) {
            continue;
        }
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

/// The rate of each township by month, as an SVG line chart.
fn chart(history: &[(Month, Vec<(String, RateFigures)>)], title: &str) -> String {
    let mut townships: Vec<String> =
        history.iter().flat_map(|(_, regions)| regions.iter().map(|(r, _)| r.clone())).collect();
    townships.sort();
    townships.dedup();
    let months = i64::try_from(history.len()).unwrap_or(6);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(44)
                .build_cartesian_2d(0i64..(months - 1).max(1), 0i64..100i64)?;
            chart
                .configure_mesh()
                .x_labels(history.len())
                .x_label_formatter(&|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| history.get(i))
                        .map(|(m, _)| m.to_string())
                        .unwrap_or_default()
                })
                .y_label_formatter(&|p| format!("{p}%"))
                .label_style(("sans-serif", 11))
                .draw()?;
            for (index, township) in townships.iter().enumerate() {
                let color = Palette99::pick(index).to_rgba();
                let points: Vec<(i64, i64)> = history
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, regions))| {
                        let figures = regions.iter().find(|(r, _)| r == township)?.1.clone();
                        Some((i64::try_from(i).ok()?, figures.per_mille()? / 10))
                    })
                    .collect();
                let name = township.rsplit('/').next().unwrap_or(township).to_string();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(%error, "cannot draw the visit-rate chart");
        }
    }
    svg
}

/// `/rate/export.xlsx`: the month's figures for every county, township and
/// village the reader may see, for supervision.
pub(super) async fn export(
    State(state): State<ApiState>,
    viewer: Viewer,
    Query(query): Query<RateQuery>,
) -> Result<Response, PageError> {
    let Selection { month, region, today } = select(&state, &viewer, &query)?;
    let elders = elders_of(&state, &viewer, month, region.as_ref()).await?;
    let mut rows = vec![
        ["月份", "地区", "登记人数", "已探访人数", "未探访人数", "月探访率", "本月剩余天数"]
            .map(str::to_string)
            .to_vec(),
    ];
    for level in [RegionLevel::County, RegionLevel::Township, RegionLevel::Village] {
        for line in lines(&elders, level) {
            rows.push(vec![
                month.to_string(),
                line.region,
                line.figures.registered.to_string(),
                line.figures.visited.to_string(),
                line.unvisited.to_string(),
                line.percent,
                month.days_left(today).to_string(),
            ]);
        }
    }
    let bytes =
        sheet::write(&rows, sheet::Format::Xlsx, "月探访率").map_err(|error| PageError::Invalid(error.to_string()))?;
    state.store.audit(now_ms(), &viewer.principal.name, "visit rate exported", None, Some(&month.to_string())).await?;
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
