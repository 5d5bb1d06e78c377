//! The monthly visit rate (月探访率) of the regions a reader may see: the
//! figures of a month for a county, township or village, the elders not
//! yet visited with the days left, a chart of the rate by township over the
//! last six months, who is due a visit under a heightened watch, and the
//! figures as `.xlsx` for supervision (督导检查).

use anxin_domain::time::day_start_ms;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::access::Placed;
use anxin_domain::access::Region;
use anxin_domain::ledger::sheet;
use anxin_domain::visits::{ElderMonth, ModeMix, Month, RateFigures, RegionLevel, VisitMode, VisitRate, VisitorKind};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::scope::{DueVisit, heightened_due, visible_elders, visit_rate};
use crate::state::AppState;
use crate::views::charts::visit_rate_chart;
use crate::views::records::choice;
use crate::web::{Chrome, html, local_time};

#[derive(Debug, Deserialize)]
pub(super) struct RateQuery {
    month: Option<String>,
    /// `COUNTY`, `COUNTY/TOWNSHIP` or `COUNTY/TOWNSHIP/VILLAGE`.
    region: Option<String>,
    /// Months without a visit by a person for the quiet list (default 2).
    quiet: Option<u32>,
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
    due: Vec<DueVisit>,
    query: String,
    /// Each county in view: closed or not, and whether the reader may close
    /// or reopen it.
    closings: Vec<ClosingLine>,
    late: Vec<LateLine>,
    /// How each township's visits were made.
    mix: Vec<(String, ModeMix, String)>,
    quiet_months: u32,
    quiet: Vec<QuietLine>,
    /// Visits by a person, by township and kind of visitor: (township, kind's words, count).
    by_kind: Vec<(String, String, i64)>,
    /// From the 20th of the current month the page leads with who is unvisited.
    remind: bool,
    /// How fast alerts were answered, per township: acknowledgement and the
    /// responder chain.
    response: Vec<ResponseLine>,
}

#[derive(Debug)]
struct ResponseLine {
    township: String,
    alerts: i64,
    within_60s: String,
    within_180s: String,
    chains: i64,
    accepted: i64,
    accept: String,
    arrived: i64,
    arrive: String,
    no_responder: i64,
}

#[derive(Debug)]
struct QuietLine {
    elder_id: i64,
    name: String,
    place: String,
    categories: Vec<&'static str>,
    last: String,
}

#[derive(Debug)]
struct ClosingLine {
    county: String,
    /// "closed by … at …", empty while open.
    closed: String,
    may_close: bool,
    may_reopen: bool,
}

#[derive(Debug)]
struct LateLine {
    elder_id: i64,
    name: String,
    place: String,
    day: String,
    mode: &'static str,
    recorded: String,
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
    let (closings, late) = closings(&state, &viewer, month, today, &rate).await?;
    let quiet_months = query.quiet.unwrap_or(2).clamp(1, 12);
    let page = RatePage {
        response: response(&state, &viewer, month, region.as_ref()).await?,
        mix: mix(&state, &viewer, month, region.as_ref()).await?,
        by_kind: by_kind(&state, &viewer, month, region.as_ref()).await?,
        remind: month == Month::of(today)
            && chrono::Datelike::day(&today) >= anxin_domain::visits::REMIND_FROM_DAY
            && rate.total.visited < rate.total.registered,
        quiet: quiet(&state, &viewer, today, quiet_months, region.as_ref()).await?,
        quiet_months,
        closings,
        late,
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
        due: heightened_due(&state, &viewer.principal, today).await?,
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

/// Whether a village's counts are the reader's: in their scope and in the
/// region asked for.
fn in_view(viewer: &Viewer, region: Option<&Region>, county: &str, township: &str, village: &str) -> bool {
    let place = anxin_domain::access::ElderPlace { elder_id: 0, county, township, village };
    viewer.principal.can_see_elder(&place) && region.is_none_or(|r| r.covers(county, township, village))
}

/// How the visits of `month` were made, by township, of the villages the
/// reader may see.
async fn mix(
    state: &AppState,
    viewer: &Viewer,
    month: Month,
    region: Option<&Region>,
) -> Result<Vec<(String, ModeMix, String)>, AppError> {
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let mut by_township: std::collections::BTreeMap<String, ModeMix> = std::collections::BTreeMap::new();
    for (county, township, village, mode, corroborated, n) in
        state.store.visit_mix(&day(month.first_day()), &day(month.last_day())).await?
    {
        if !in_view(viewer, region, &county, &township, &village) {
            continue;
        }
        if let Some(mode) = VisitMode::parse(&mode) {
            by_township.entry(format!("{county}/{township}")).or_default().add(mode, corroborated, n);
        }
    }
    Ok(by_township
        .into_iter()
        .map(|(township, mix)| {
            let share = mix.corroborated_share();
            (township, mix, share)
        })
        .collect())
}

/// Alerts of `month` per township the reader sees whole: the shares
/// acknowledged within 60 s and 180 s, and the responder chain's time to
/// the first acceptance and to an arrival (median / 90th percentile).
async fn response(
    state: &AppState,
    viewer: &Viewer,
    month: Month,
    region: Option<&Region>,
) -> Result<Vec<ResponseLine>, AppError> {
    let offset = state.policy.utc_offset;
    let who = &viewer.principal;
    let whole_township = |county: &str, township: &str| {
        who.role == anxin_domain::access::Role::Admin
            || who.regions.iter().any(|r| {
                r.county == county && r.village.is_none() && r.township.as_deref().is_none_or(|t| t == township)
            })
    };
    let share =
        |n: i64, of: i64| if of == 0 { "—".to_string() } else { format!("{:.1}%", 100.0 * n as f64 / of as f64) };
    let minutes = |median: Option<i64>, p90: Option<i64>| match (median, p90) {
        (Some(median), Some(p90)) => format!("{:.1} / {:.1}", median as f64 / 60_000.0, p90 as f64 / 60_000.0),
        _ => "—".to_string(),
    };
    let figures = state
        .store
        .response_figures(
            &anxin_store::RegionFilter::default(),
            day_start_ms(month.first_day(), offset),
            month.ends_at(offset),
        )
        .await?;
    Ok(figures
        .into_iter()
        .filter(|f| whole_township(&f.county, &f.township))
        .filter(|f| {
            region.is_none_or(|r| r.county == f.county && r.township.as_deref().is_none_or(|t| t == f.township))
        })
        .map(|f| ResponseLine {
            township: format!("{}/{}", f.county, f.township),
            alerts: f.ack.alerts,
            within_60s: share(f.ack.within_60s, f.ack.alerts),
            within_180s: share(f.ack.within_180s, f.ack.alerts),
            chains: f.chains,
            accepted: f.accepted,
            accept: minutes(f.accept_median_ms, f.accept_p90_ms),
            arrived: f.arrived,
            arrive: minutes(f.arrive_median_ms, f.arrive_p90_ms),
            no_responder: f.no_responder,
        })
        .collect())
}

/// Visits by a person of `month`, by township and the kind of visitor who
/// recorded them, of the villages the reader may see.
async fn by_kind(
    state: &AppState,
    viewer: &Viewer,
    month: Month,
    region: Option<&Region>,
) -> Result<Vec<(String, String, i64)>, AppError> {
    let lang = viewer.lang;
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let mut counts: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
    for (county, township, village, kind, n) in
        state.store.visits_by_kind(&day(month.first_day()), &day(month.last_day())).await?
    {
        if !in_view(viewer, region, &county, &township, &village) {
            continue;
        }
        let word = kind
            .as_deref()
            .and_then(VisitorKind::parse)
            .map_or_else(|| lang.t("rate.kind_unknown").to_string(), |k| choice(lang, k.code(), k.label()).to_string());
        *counts.entry((format!("{county}/{township}"), word)).or_default() += n;
    }
    Ok(counts.into_iter().map(|((township, word), n)| (township, word, n)).collect())
}

/// Elders in the programme, in the reader's scope, with no home, phone or
/// video visit for `months` months: 失能 and 重残 first, then the longest
/// without.
async fn quiet(
    state: &AppState,
    viewer: &Viewer,
    today: chrono::NaiveDate,
    months: u32,
    region: Option<&Region>,
) -> Result<Vec<QuietLine>, AppError> {
    use anxin_domain::alerts::Category;
    let since = today.checked_sub_months(chrono::Months::new(months)).unwrap_or(today);
    let last = state.store.last_person_visits(&today.format("%Y-%m-%d").to_string()).await?;
    let mut quiet: Vec<(bool, String, QuietLine)> = visible_elders(&state.store, &viewer.principal)
        .await?
        .into_iter()
        .filter(|e| e.left_on.is_none())
        .filter(|e| region.is_none_or(|r| r.covers(&e.county, &e.township, &e.village)))
        .filter_map(|e| {
            let last_day = last.get(&e.id).cloned().unwrap_or_default();
            let recent = chrono::NaiveDate::parse_from_str(&last_day, "%Y-%m-%d").is_ok_and(|d| d > since);
            if recent {
                return None;
            }
            let categories = Category::parse_list(&e.categories);
            let first = categories.iter().any(|c| matches!(c, Category::Dependent | Category::SeverelyDisabled));
            let line = QuietLine {
                elder_id: e.id,
                name: e.name.clone(),
                place: format!("{} {} {}", e.county, e.township, e.village),
                categories: categories.iter().map(|c| viewer.lang.t(&format!("category.{}", c.as_str()))).collect(),
                last: last_day.clone(),
            };
            Some((!first, last_day, line))
        })
        .collect();
    quiet.sort_by(|a, b| (a.0, &a.1, a.2.elder_id).cmp(&(b.0, &b.1, b.2.elder_id)));
    Ok(quiet.into_iter().map(|(_, _, line)| line).collect())
}

/// Whether each county of the rate has closed `month`, and the visits
/// recorded for it after closing (补录) that the reader may see.
async fn closings(
    state: &AppState,
    viewer: &Viewer,
    month: Month,
    today: chrono::NaiveDate,
    rate: &VisitRate,
) -> Result<(Vec<ClosingLine>, Vec<LateLine>), AppError> {
    let offset = state.policy.utc_offset;
    let lang = viewer.lang;
    let closed = state.store.closed_months(month).await?;
    let mut counties: Vec<String> = rate.by(RegionLevel::County).into_iter().map(|(county, _)| county).collect();
    for county in viewer.principal.closable_counties() {
        if !counties.contains(&county) {
            counties.push(county);
        }
    }
    let ended = month.last_day() < today;
    let lines = counties
        .into_iter()
        .map(|county| {
            let closing = closed.iter().find(|c| c.county == county);
            let may = viewer.principal.can_close_month(&county);
            ClosingLine {
                closed: closing.map_or_else(String::new, |c| {
                    lang.t("rate.closed_by")
                        .replace("{by}", &c.closed_by)
                        .replace("{at}", &local_time(c.closed_at, offset))
                }),
                may_close: may && ended && closing.is_none(),
                may_reopen: may && closing.is_some(),
                county,
            }
        })
        .collect();
    let late = state
        .store
        .late_visits(month)
        .await?
        .into_iter()
        .filter(|v| viewer.principal.can_see_elder(&v.place()))
        .map(|v| LateLine {
            elder_id: v.elder_id,
            place: format!("{} {} {}", v.county, v.township, v.village),
            mode: VisitMode::parse(&v.mode).map_or("", |m| choice(lang, m.code(), m.label())),
            recorded: format!("{} {}", v.recorded_by, local_time(v.recorded_at, offset)),
            name: v.name,
            day: v.day,
        })
        .collect();
    Ok((lines, late))
}

#[derive(Debug, Deserialize)]
pub(super) struct ClosingForm {
    #[serde(default)]
    month: String,
    #[serde(default)]
    county: String,
}

/// Closes a month for a county (关账): an official of the whole county,
/// once the month is over. Audited.
pub(super) async fn close(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ClosingForm>,
) -> Result<Response, AppError> {
    let (month, county) = closing_of(&viewer, &form)?;
    let lang = viewer.lang;
    if month.last_day() >= state.today() {
        return Err(AppError::Invalid(lang.t("rate.not_ended").replace("{month}", &month.to_string())));
    }
    if state.store.closed_months(month).await?.iter().any(|c| c.county == county) {
        return Err(AppError::Invalid(lang.t("rate.already_closed").replace("{month}", &month.to_string())));
    }
    state.store.close_month(&county, month, &viewer.principal.name, state.now(), state.policy.utc_offset).await?;
    Ok(Redirect::to(&rate_link(month, &county)).into_response())
}

/// Reopens a closed month: late visits count from now on. Audited.
pub(super) async fn reopen(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ClosingForm>,
) -> Result<Response, AppError> {
    let (month, county) = closing_of(&viewer, &form)?;
    if !state.store.closed_months(month).await?.iter().any(|c| c.county == county) {
        return Err(AppError::Invalid(viewer.lang.t("rate.not_closed").replace("{month}", &month.to_string())));
    }
    state.store.reopen_month(&county, month, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to(&rate_link(month, &county)).into_response())
}

fn closing_of(viewer: &Viewer, form: &ClosingForm) -> Result<(Month, String), AppError> {
    let county = form.county.trim().to_string();
    if !viewer.principal.can_close_month(&county) {
        return Err(AppError::Forbidden(None));
    }
    let month = Month::parse(&form.month).ok_or_else(|| AppError::Invalid(viewer.lang.t("my.bad_month").into()))?;
    Ok((month, county))
}

fn rate_link(month: Month, county: &str) -> String {
    format!(
        "/rate?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("month", &month.to_string())
            .append_pair("region", county)
            .finish()
    )
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
    let closed = state.store.closed_months(month).await?;
    let offset = state.policy.utc_offset;
    let mut rows = vec![
        [
            "月份",
            "地区",
            "在册人数",
            "已探访人数",
            "未探访人数",
            "月探访率",
            "本月剩余天数",
            "状态",
            "关账人",
            "关账时间",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    for level in [RegionLevel::County, RegionLevel::Township, RegionLevel::Village] {
        for line in lines(&rate, level) {
            let county = line.region.split('/').next().unwrap_or_default();
            let closing = closed.iter().find(|c| c.county == county);
            rows.push(vec![
                month.to_string(),
                line.region.clone(),
                line.figures.registered.to_string(),
                line.figures.visited.to_string(),
                line.unvisited.to_string(),
                line.percent,
                rate.days_left.to_string(),
                if closing.is_some() { "已关账" } else { "未关账" }.to_string(),
                closing.map(|c| c.closed_by.clone()).unwrap_or_default(),
                closing.map(|c| local_time(c.closed_at, offset)).unwrap_or_default(),
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
