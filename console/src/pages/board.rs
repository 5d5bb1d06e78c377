//! The alert board (告警台): open alerts of the reader's regions, most
//! urgent first, live over server-sent events; acknowledge in one click,
//! resolve with the handling form, the elder's details beside the alert.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::access::{Placed, Principal, Role};
use anxin_domain::alerts::Outcome;
use anxin_store::{AlertActionError, AlertFilter, AlertRecord, RegionFilter, Scope};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::scope::{handleable_alert, on_call_now, visible_elder};
use crate::state::AppState;
use crate::views::alerts::{AlertRow, most_urgent_first, row};
use crate::views::charts::activity_chart;
use crate::views::elders::{DeviceView, ElderCard, devices_view};
use crate::views::responders::{AttemptRow, ChainLine, attempt_rows, call_back_choices, call_backs, chain_line};
use crate::web::{Chrome, from_htmx, html};

/// How long a shift is, for the acknowledgement figure.
const SHIFT_MS: i64 = 12 * 3_600_000;

/// The open alerts the reader may handle, most urgent first.
async fn open_alerts(state: &AppState, who: &Principal) -> Result<Vec<AlertRecord>, AppError> {
    let mut alerts = state
        .store
        .alerts(&AlertFilter { unresolved_only: true, elder_id: None, limit: 5_000, scope: Scope::of(who) })
        .await?
        .into_iter()
        .filter(|alert| who.can_handle_alerts(&alert.place()))
        .collect::<Vec<_>>();
    most_urgent_first(&mut alerts);
    Ok(alerts)
}

/// Share of this shift's alerts acknowledged within 60 s, over the reader's
/// regions: `(within, alerts)`.
async fn shift_figure(state: &AppState, who: &Principal, now: i64) -> Result<(i64, i64), AppError> {
    let regions: Vec<RegionFilter> = match who.role {
        Role::Admin => vec![RegionFilter::default()],
        _ => who
            .regions
            .iter()
            .map(|r| RegionFilter {
                county: Some(r.county.clone()),
                township: r.township.clone(),
                village: r.village.clone(),
            })
            .collect(),
    };
    let (mut within, mut total) = (0, 0);
    for region in &regions {
        let stats = state.store.ack_stats(region, None, now - SHIFT_MS, now + 1).await?;
        within += stats.within_60s;
        total += stats.alerts;
    }
    Ok((within, total))
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    c: Chrome,
    rows: BoardRows,
    /// How often the open board refreshes itself (and so keeps its session).
    refresh_ms: i64,
}

/// Well inside the sessions' idle timeout.
pub(crate) const BOARD_REFRESH_MS: i64 = 5 * 60_000;

#[derive(Template)]
#[template(path = "board_rows.html")]
pub(crate) struct BoardRows {
    c: Chrome,
    /// Each open alert with where its responder chain stands.
    alerts: Vec<(AlertRow, Option<ChainLine>)>,
    /// Who is on call now: `(county, person, phone)`.
    on_call: Vec<(String, String, String)>,
    shift_within: i64,
    shift_total: i64,
    shift_percent: String,
    server_now: i64,
}

fn may_handle(viewer: &Viewer) -> Result<(), AppError> {
    match viewer.principal.role {
        Role::Admin | Role::Oncall => Ok(()),
        Role::Visitor | Role::Official => Err(AppError::Forbidden(None)),
    }
}

async fn board_rows(state: &AppState, viewer: &Viewer) -> Result<BoardRows, AppError> {
    let offset = state.policy.utc_offset;
    let alerts = open_alerts(state, &viewer.principal).await?;
    let now = state.now();
    let (within, total) = shift_figure(state, &viewer.principal, now).await?;
    let ids: Vec<i64> = alerts.iter().map(|alert| alert.id).collect();
    let chains = state.store.chains_of(&ids).await?;
    let messages = state.store.responder_messages_of(&ids).await?;
    Ok(BoardRows {
        c: viewer.chrome("board.title"),
        alerts: alerts
            .iter()
            .map(|alert| {
                let mine: Vec<_> = messages.iter().filter(|m| m.alert_id == alert.id).collect();
                let chain = chain_line(chains.iter().find(|c| c.alert_id == alert.id), &mine, viewer.lang, offset);
                (row(alert, viewer.lang, offset), chain)
            })
            .collect(),
        on_call: on_call_now(&state.store, &viewer.principal, now).await?,
        shift_within: within,
        shift_total: total,
        server_now: now,
        shift_percent: if total == 0 { "—".into() } else { format!("{:.0}%", 100.0 * within as f64 / total as f64) },
    })
}

pub(super) async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_handle(&viewer)?;
    let rows = board_rows(&state, &viewer).await?;
    Ok(html(&BoardPage { c: viewer.chrome("board.title"), rows, refresh_ms: BOARD_REFRESH_MS }))
}

/// The rows alone, for the live refresh.
pub(super) async fn rows(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_handle(&viewer)?;
    Ok(html(&board_rows(&state, &viewer).await?))
}

#[derive(Template)]
#[template(path = "alert_detail.html")]
struct AlertDetail {
    c: Chrome,
    alert: AlertRow,
    resolved: bool,
    outcome: String,
    elder: ElderCard,
    visitors: String,
    devices: Vec<DeviceView>,
    /// Yesterday and today, hour by hour (SVG).
    chart: String,
    outcomes: Vec<(&'static str, &'static str)>,
    error: Option<String>,
    /// For an emergency found on a visit: what the visitor found, in their words.
    found_on_visit: Option<String>,
    /// The responder chain: where it stands, every attempt, on-call's call-backs.
    chain: Option<ChainLine>,
    attempts: Vec<AttemptRow>,
    call_backs: Vec<String>,
    call_back_choices: Vec<(&'static str, &'static str)>,
}

async fn alert_detail(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    error: Option<String>,
) -> Result<AlertDetail, AppError> {
    let alert = handleable_alert(&state.store, &viewer.principal, id).await?;
    let elder = visible_elder(&state.store, &viewer.principal, alert.elder_id).await?;
    let offset = state.policy.utc_offset;
    let now = state.now();
    let lang = viewer.lang;
    state
        .store
        .audit(now, &viewer.principal.name, "elder details read (alert board)", Some(elder.id), Some(&id.to_string()))
        .await?;
    let history = state.store.alert_history(id).await?;
    let found_on_visit = if alert.kind == anxin_domain::alerts::AlertKind::VisitEmergency {
        history.iter().find(|e| e.action == "opened").and_then(|e| e.detail.clone())
    } else {
        None
    };
    let messages = state.store.responder_messages(id).await?;
    let chain = state.store.chain(id).await?;
    Ok(AlertDetail {
        chain: chain_line(chain.as_ref(), &messages.iter().collect::<Vec<_>>(), lang, offset),
        attempts: attempt_rows(&messages, lang, offset),
        call_backs: call_backs(&history, lang, offset),
        call_back_choices: call_back_choices(lang),
        found_on_visit,
        c: viewer.chrome("board.title"),
        resolved: alert.resolved_at.is_some(),
        outcome: alert.outcome.map(|o| lang.t(&format!("outcome.{o}")).to_string()).unwrap_or_default(),
        alert: row(&alert, lang, offset),
        visitors: state.store.visitors_of(elder.id).await?.join("、"),
        devices: devices_view(&state.store.devices_of(elder.id).await?, lang, offset, now),
        chart: activity_chart(
            &state.store.elder_activity(elder.id, now - 2 * 24 * 3_600_000).await?,
            2,
            offset,
            now,
            lang.t("board.last_24h"),
        ),
        elder: ElderCard::of(&elder, lang),
        outcomes: Outcome::FOR_STAFF.iter().map(|o| (o.as_str(), lang.t(&format!("outcome.{}", o.as_str())))).collect(),
        error,
    })
}

pub(super) async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    may_handle(&viewer)?;
    Ok(html(&alert_detail(&state, &viewer, id, None).await?))
}

/// Where a handled alert leaves the reader: the refreshed rows for htmx
/// (which also refreshes the detail), the board for a plain form.
fn after_action(headers: &HeaderMap, id: i64) -> Response {
    if from_htmx(headers) {
        let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = format!("{{\"board-changed\": {id}}}").parse() {
            response.headers_mut().insert("hx-trigger", value);
        }
        return response;
    }
    Redirect::to(&format!("/board?alert={id}")).into_response()
}

fn action_error(error: AlertActionError, lang: Lang) -> AppError {
    match error {
        AlertActionError::NotFound(_) => AppError::NotFound(None),
        AlertActionError::AlreadyAcknowledged { .. } => AppError::Invalid(lang.t("board.already_acknowledged").into()),
        AlertActionError::AlreadyResolved { .. } => AppError::Invalid(lang.t("board.already_resolved").into()),
        AlertActionError::Invalid(reason) => AppError::Invalid(reason),
        AlertActionError::Store(error) => error.into(),
    }
}

pub(super) async fn acknowledge(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    handleable_alert(&state.store, &viewer.principal, id).await?;
    let now = state.now();
    let alert = state
        .store
        .acknowledge_alert(id, &viewer.principal.name, now)
        .await
        .map_err(|e| action_error(e, viewer.lang))?;
    state
        .store
        .audit(now, &viewer.principal.name, "alert acknowledged", Some(alert.elder_id), Some(&id.to_string()))
        .await?;
    Ok(after_action(&headers, id))
}

#[derive(Debug, Deserialize)]
pub(super) struct ResolveForm {
    outcome: String,
    #[serde(default)]
    note: String,
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, AppError> {
    handleable_alert(&state.store, &viewer.principal, id).await?;
    let lang = viewer.lang;
    let refuse = async |key: &'static str| -> Result<Response, AppError> {
        let page = alert_detail(&state, &viewer, id, Some(lang.t(key).to_string())).await?;
        Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html(&page)).into_response())
    };
    let Some(outcome) = Outcome::parse_for_staff(&form.outcome) else {
        return refuse("board.choose_outcome").await;
    };
    if outcome == Outcome::Other && form.note.trim().is_empty() {
        return refuse("board.note_needed").await;
    }
    let now = state.now();
    let alert = state
        .store
        .resolve_alert(id, &viewer.principal.name, outcome, &form.note, now)
        .await
        .map_err(|e| action_error(e, lang))?;
    state
        .store
        .audit(now, &viewer.principal.name, "alert resolved", Some(alert.elder_id), Some(outcome.as_str()))
        .await?;
    Ok(after_action(&headers, id))
}
