//! The visitor's view (我的探访对象): the elders assigned to them, each with
//! the month's remote check-in calendar and the latest activity.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::{Chrome, html, local_time};

/// One day of the calendar.
#[derive(Debug)]
pub(crate) struct CalendarDay {
    pub day: u32,
    /// `checked_in`, `visited`, `missed`, `future`, `before` (registration) or `open` (today, not yet closed).
    pub state: &'static str,
    pub label: String,
}

#[derive(Debug)]
pub(crate) struct ElderMonth {
    pub id: i64,
    pub name: String,
    pub place: String,
    pub latest: String,
    pub weeks: Vec<Vec<Option<CalendarDay>>>,
    pub checked_in: usize,
    pub visited: usize,
}

#[derive(Template)]
#[template(path = "my.html")]
struct MyPage {
    c: Chrome,
    month: String,
    previous: String,
    next: String,
    elders: Vec<ElderMonth>,
    weekdays: Vec<&'static str>,
    /// From the 20th of the current month: the elders with no visit of any
    /// mode yet, with the days left — the page leads with them.
    reminder: Option<(i64, Vec<(i64, String)>)>,
    /// The visitor's elders due a visit by a person under a heightened watch.
    due: Vec<crate::scope::DueVisit>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MonthQuery {
    /// `YYYY-MM`; this month when absent.
    #[serde(default)]
    month: Option<String>,
}

/// The first day of `YYYY-MM`.
pub(crate) fn month_start(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d").ok()
}

fn shift_month(first: NaiveDate, by: i32) -> NaiveDate {
    let months = first.year() * 12 + i32::try_from(first.month0()).unwrap_or(0) + by;
    NaiveDate::from_ymd_opt(months.div_euclid(12), u32::try_from(months.rem_euclid(12)).unwrap_or(0) + 1, 1)
        .unwrap_or(first)
}

/// The month laid out in weeks from Monday: what each day shows. Days
/// before `registered` are not counted against anyone.
pub(crate) fn calendar(
    first: NaiveDate,
    today: NaiveDate,
    registered: NaiveDate,
    checked_in: &[String],
    visited: &[String],
    lang: Lang,
) -> Vec<Vec<Option<CalendarDay>>> {
    let next = shift_month(first, 1);
    let mut weeks = Vec::new();
    let mut week: Vec<Option<CalendarDay>> = (0..first.weekday().num_days_from_monday()).map(|_| None).collect();
    let mut day = first;
    while day < next {
        let key = day.format("%Y-%m-%d").to_string();
        let state = if visited.contains(&key) {
            "visited"
        } else if checked_in.contains(&key) {
            "checked_in"
        } else if day > today {
            "future"
        } else if day < registered {
            "before"
        } else if day == today {
            "open"
        } else {
            "missed"
        };
        week.push(Some(CalendarDay { day: day.day(), state, label: lang.t(&format!("calendar.{state}")).to_string() }));
        if week.len() == 7 {
            weeks.push(std::mem::take(&mut week));
        }
        day = day.succ_opt().unwrap_or(next);
    }
    if !week.is_empty() {
        week.resize_with(7, || None);
        weeks.push(week);
    }
    weeks
}

pub(super) async fn my_elders(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<MonthQuery>,
) -> Result<Response, AppError> {
    let offset = state.policy.utc_offset;
    let now = state.now();
    let today = chrono::DateTime::from_timestamp_millis(now)
        .map_or_else(|| state.today(), |t| t.with_timezone(&offset).date_naive());
    let first = query
        .month
        .as_deref()
        .map(|m| month_start(m).ok_or_else(|| AppError::Invalid(viewer.lang.t("my.bad_month").to_string())))
        .transpose()?
        .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let prefix = first.format("%Y-%m").to_string();
    let mut elders = Vec::new();
    for &id in &viewer.principal.assigned_elders {
        let Some(elder) = state.store.elder(id).await? else { continue };
        let month_begins = first.format("%Y-%m-%d").to_string();
        if elder.left_on.as_ref().is_some_and(|left_on| *left_on < month_begins) {
            // Left the programme before this month: nobody is due to visit.
            continue;
        }
        let visits = state.store.visits(id).await?;
        let in_month = |remote: bool| -> Vec<String> {
            visits
                .iter()
                .filter(|v| v.day.starts_with(&prefix) && (v.mode == "remote") == remote)
                .map(|v| v.day.clone())
                .collect()
        };
        let checked_in = in_month(true);
        let visited = in_month(false);
        let latest = state.store.devices_of(id).await?.iter().map(|d| d.last_seen).max();
        let registered = chrono::DateTime::from_timestamp_millis(elder.created_at)
            .map_or(first, |t| t.with_timezone(&offset).date_naive());
        elders.push(ElderMonth {
            id,
            name: elder.name.clone(),
            place: format!("{} {} {}", elder.township, elder.village, elder.address),
            latest: latest.map(|t| local_time(t, offset)).unwrap_or_else(|| "—".into()),
            weeks: calendar(first, today, registered, &checked_in, &visited, viewer.lang),
            checked_in: checked_in.len(),
            visited: visited.len(),
        });
    }
    let current = first == today.with_day(1).unwrap_or(today);
    let reminder = (current && today.day() >= anxin_domain::visits::REMIND_FROM_DAY).then(|| {
        let month = anxin_domain::visits::Month::of(today);
        let unvisited =
            elders.iter().filter(|e| e.checked_in + e.visited == 0).map(|e| (e.id, e.name.clone())).collect();
        (month.days_left(today), unvisited)
    });
    state.store.audit(now, &viewer.principal.name, "visitor calendar read", None, Some(&prefix)).await?;
    let lang = viewer.lang;
    Ok(html(&MyPage {
        c: viewer.chrome("my.title"),
        month: prefix,
        previous: shift_month(first, -1).format("%Y-%m").to_string(),
        next: shift_month(first, 1).format("%Y-%m").to_string(),
        elders,
        weekdays: (1..=7).map(|d| lang.t(&format!("weekday.{d}"))).collect(),
        reminder,
        due: crate::scope::heightened_due(&state, &viewer.principal, today).await?,
    }))
}

/// One elder on the round.
#[derive(Debug)]
struct RoundEntry {
    id: i64,
    name: String,
    reason: anxin_domain::visits::RoundReason,
    reason_words: String,
    /// The address for the map app (`geo:` URI, RFC 5870 with a query).
    map: String,
    place: String,
    phone: String,
    last_visit: String,
    last_activity: String,
}

#[derive(Template)]
#[template(path = "round.html")]
struct RoundPage {
    c: Chrome,
    days_left: i64,
    entries: Vec<RoundEntry>,
}

/// The visitor's round (本月探访): their elders ordered by what is due — a
/// visit by a person under a heightened watch, no visit yet this month,
/// referrals waiting, seen only by the sensors for two months — each with
/// the address (opening the phone's map app), a `tel:` link, the last visit
/// and the last sensor activity.
pub(super) async fn round(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    use anxin_domain::visits::{Month, RoundReason, VisitMode, round_reason};
    let offset = state.policy.utc_offset;
    let now = state.now();
    let lang = viewer.lang;
    let today = state.today();
    let month = Month::of(today);
    let prefix = month.to_string();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let last_person = state.store.last_person_visits(&day(today)).await?;
    let watch_due: Vec<i64> =
        crate::scope::heightened_due(&state, &viewer.principal, today).await?.iter().map(|d| d.elder_id).collect();
    let mut entries = Vec::new();
    for &id in &viewer.principal.assigned_elders {
        let Some(elder) = state.store.elder(id).await? else { continue };
        if elder.left_on.is_some() {
            continue;
        }
        let visits = state.store.visits(id).await?;
        let visited_this_month = visits.iter().any(|v| v.day.starts_with(&prefix));
        let open_referrals = state.store.referrals(id).await?.iter().filter(|r| r.done_at.is_none()).count();
        let last_person_day = last_person.get(&id).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let reason = round_reason(watch_due.contains(&id), visited_this_month, open_referrals, last_person_day, today);
        let reason_words = match reason {
            RoundReason::Unvisited => lang.t("round.unvisited").replace("{days}", &month.days_left(today).to_string()),
            RoundReason::Referral => lang.t("round.referral").replace("{n}", &open_referrals.to_string()),
            other => lang.t(&format!("round.{}", other.code())).to_string(),
        };
        let last_visit = visits
            .iter()
            .max_by(|a, b| a.day.cmp(&b.day))
            .map(|v| {
                let mode = VisitMode::parse(&v.mode).map_or("", |m| lang.t(&format!("visit_mode.{}", m.code())));
                format!("{} {mode}", v.day)
            })
            .unwrap_or_else(|| lang.t("round.never").to_string());
        let latest = state.store.devices_of(id).await?.iter().map(|d| d.last_seen).max();
        let address = format!("{}{}{}{}", elder.county, elder.township, elder.village, elder.address);
        entries.push((
            (reason, last_person_day, elder.name.clone()),
            RoundEntry {
                id,
                name: elder.name.clone(),
                reason,
                reason_words,
                map: format!("geo:0,0?q={}", form_urlencoded::byte_serialize(address.as_bytes()).collect::<String>()),
                place: format!("{} {} {}", elder.township, elder.village, elder.address),
                phone: elder.phone.clone().unwrap_or_default(),
                last_visit,
                last_activity: latest.map(|t| local_time(t, offset)).unwrap_or_else(|| "—".into()),
            },
        ));
    }
    // Most pressing first; within a reason, the longest without a person's visit.
    entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    state.store.audit(now, &viewer.principal.name, "visitor round read", None, Some(&prefix)).await?;
    Ok(html(&RoundPage {
        c: viewer.chrome("round.title"),
        days_left: month.days_left(today),
        entries: entries.into_iter().map(|(_, entry)| entry).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_laid_out_from_monday_with_each_day_marked() {
        let first = month_start("2026-11").unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
        let registered = first;
        let weeks = calendar(
            first,
            today,
            registered,
            &["2026-11-01".into(), "2026-11-02".into()],
            &["2026-11-02".into()],
            Lang::En,
        );
        // 1 November 2026 is a Sunday: six blanks before it.
        assert_eq!(weeks[0].iter().filter(|d| d.is_none()).count(), 6);
        let days: Vec<_> = weeks.iter().flatten().flatten().collect();
        assert_eq!(days.len(), 30);
        let state = |n: u32| days.iter().find(|d| d.day == n).unwrap().state;
        assert_eq!(state(1), "checked_in");
        assert_eq!(state(2), "visited", "a visit in person outranks a remote check-in");
        assert_eq!(state(3), "missed");
        assert_eq!(state(4), "open");
        assert_eq!(state(5), "future");
        assert!(weeks.iter().all(|w| w.len() == 7));
        let later = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let weeks = calendar(first, today, later, &[], &[], Lang::En);
        let days: Vec<_> = weeks.iter().flatten().flatten().collect();
        assert_eq!((days[0].state, days[2].state), ("before", "missed"), "registered on the 3rd");
        assert_eq!(shift_month(first, -11).to_string(), "2025-12-01");
        assert_eq!(shift_month(first, 2).to_string(), "2027-01-01");
    }
}
