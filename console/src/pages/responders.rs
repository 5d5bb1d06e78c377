//! The responder chain's pages.
//!
//! - `/r/{token}`: what a message's link opens, without an account — on a
//!   phone, only what the responder needs (what happened, when, where, whom
//!   to phone) and three answers: 我去处理 / 已到达 / 无法前往. The token is
//!   signed for one message (one contact, one alert); it answers until the
//!   alert is resolved, each answer once. Rate-limited per address, every
//!   opening and answer audited; anything tampered gets a plain refusal.
//! - `/duty`: the county's duty roster (值班表), who is on call when.
//! - `/handover`: the shift handover — every alert still open with what was
//!   tried and what was answered.
//! - `/alerts/{id}/callback`: on-call called the elder back, and heard…

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::access::{Placed, Role};
use anxin_domain::alerts::AlertStatus;
use anxin_domain::responders::{Answer, CallBack, link};
use anxin_store::{AlertFilter, AnswerError, LinkView, Scope};

use crate::auth::{ClientAddress, Viewer};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::scope::{handleable_alert, on_call_now, own_counties, roster_shifts};
use crate::state::AppState;
use crate::views::alerts::{AlertRow, most_urgent_first, row};
use crate::views::responders::{AttemptRow, ChainLine, attempt_rows, chain_line, history_word};
use crate::web::{Chrome, html, local_time};

fn signed_out(lang: Lang, title: &'static str, path: String) -> Chrome {
    Chrome { lang, title, user: None, role: None, csrf: String::new(), path, closes_months: false, storage_full: false }
}

#[derive(Template)]
#[template(path = "responder.html")]
struct ResponderPage {
    c: Chrome,
    token: String,
    kind: &'static str,
    opened: String,
    place: String,
    address: String,
    elder_phone: String,
    oncall: Option<(String, String)>,
    accepted: Option<String>,
    arrived: Option<String>,
    declined: Option<String>,
    open: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// A refusal in the plainest words: no detail of what exists.
fn refusal(lang: Lang, status: StatusCode, key: &'static str) -> Response {
    #[derive(Template)]
    #[template(path = "responder_refused.html")]
    struct Refused {
        c: Chrome,
        message: &'static str,
    }
    let page = Refused { c: signed_out(lang, "responder.title", "/".into()), message: lang.t(key) };
    (status, html(&page)).into_response()
}

/// The link's message, or the refusal to send.
async fn linked(state: &AppState, address: &str, token: &str, lang: Lang) -> Result<LinkView, Response> {
    let now = state.now();
    if !state.link_limiter.allow(address, now) {
        return Err(refusal(lang, StatusCode::TOO_MANY_REQUESTS, "responder.too_many"));
    }
    let key = state
        .link_key
        .get_or_try_init(|| state.store.link_key())
        .await
        .map_err(|e| AppError::from(e).into_response())?;
    let Some(id) = link::verify(key, token) else {
        state.link_limiter.bad_link(address, now);
        return Err(refusal(lang, StatusCode::NOT_FOUND, "responder.bad_link"));
    };
    match state.store.link_view(id, now).await {
        Ok(Some(view)) if view.status == AlertStatus::Resolved => {
            Err(refusal(lang, StatusCode::GONE, "responder.expired"))
        }
        Ok(Some(view)) => Ok(view),
        Ok(None) => {
            state.link_limiter.bad_link(address, now);
            Err(refusal(lang, StatusCode::NOT_FOUND, "responder.bad_link"))
        }
        Err(error) => Err(AppError::from(error).into_response()),
    }
}

fn responder_page(
    state: &AppState,
    view: &LinkView,
    token: &str,
    lang: Lang,
    notice: Option<String>,
    error: Option<String>,
) -> ResponderPage {
    let offset = state.policy.utc_offset;
    let at = |ms: Option<i64>| ms.map(|ms| local_time(ms, offset));
    ResponderPage {
        c: signed_out(lang, "responder.title", format!("/r/{token}")),
        token: token.to_string(),
        kind: lang.t(&format!("kind.{}", view.kind)),
        opened: local_time(view.opened_at, offset),
        place: view.village.clone(),
        address: view.address.clone(),
        elder_phone: view.elder_phone.clone().unwrap_or_default(),
        oncall: view.oncall.as_ref().map(|shift| (shift.person.clone(), shift.phone.clone())),
        accepted: at(view.message.accepted_at),
        arrived: at(view.message.arrived_at),
        declined: at(view.message.declined_at),
        open: view.status != AlertStatus::Resolved,
        notice,
        error,
    }
}

pub(super) async fn open_link(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let lang = Lang::of_request(&headers);
    let view = match linked(&state, &address, &token, lang).await {
        Ok(view) => view,
        Err(refused) => return Ok(refused),
    };
    // A sensitive read: the page shows an address and phone numbers.
    state.store.audit_link_opened(view.message.id, view.elder_id, state.now()).await?;
    Ok(html(&responder_page(&state, &view, &token, lang, None, None)))
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerForm {
    answer: String,
}

pub(super) async fn answer_link(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Result<Response, AppError> {
    let lang = Lang::of_request(&headers);
    let view = match linked(&state, &address, &token, lang).await {
        Ok(view) => view,
        Err(refused) => return Ok(refused),
    };
    let Some(answer) = Answer::parse(&form.answer) else {
        let page = responder_page(&state, &view, &token, lang, None, Some(lang.t("responder.pick").into()));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)).into_response());
    };
    match state.store.answer(view.message.id, answer, &state.chain_times, state.now()).await {
        Ok(_) => Ok(Redirect::to(&format!("/r/{token}?answered={}", answer.code())).into_response()),
        Err(AnswerError::Closed) => Ok(refusal(lang, StatusCode::GONE, "responder.expired")),
        Err(AnswerError::AlreadyGiven) => {
            let page =
                responder_page(&state, &view, &token, lang, None, Some(lang.t("responder.already_given").into()));
            Ok((StatusCode::CONFLICT, html(&page)).into_response())
        }
        Err(AnswerError::NotAnswerable) => Ok(refusal(lang, StatusCode::NOT_FOUND, "responder.bad_link")),
        Err(AnswerError::Store(error)) => Err(error.into()),
    }
}

/// Shifts shown: from half a day ago to a week ahead.
const ROSTER_BEHIND_MS: i64 = 12 * 3_600_000;
const ROSTER_AHEAD_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Template)]
#[template(path = "duty.html")]
struct DutyPage {
    c: Chrome,
    shifts: Vec<ShiftRow>,
    counties: Vec<String>,
    error: Option<String>,
}

#[derive(Debug)]
struct ShiftRow {
    id: i64,
    county: String,
    person: String,
    phone: String,
    from: String,
    to: String,
    now: bool,
    may_cancel: bool,
}

fn may_see_roster(viewer: &Viewer) -> Result<(), AppError> {
    match viewer.principal.role {
        Role::Admin | Role::Oncall => Ok(()),
        Role::Visitor | Role::Official => Err(AppError::Forbidden(None)),
    }
}

async fn duty_page(state: &AppState, viewer: &Viewer, error: Option<String>) -> Result<DutyPage, AppError> {
    let now = state.now();
    let offset = state.policy.utc_offset;
    let shifts = roster_shifts(&state.store, &viewer.principal, now - ROSTER_BEHIND_MS, now + ROSTER_AHEAD_MS).await?;
    Ok(DutyPage {
        c: viewer.chrome("duty.title"),
        shifts: shifts
            .into_iter()
            .map(|shift| ShiftRow {
                may_cancel: viewer.principal.can_keep_roster(&shift.county),
                now: shift.starts_at <= now && now < shift.ends_at,
                id: shift.id,
                from: local_time(shift.starts_at, offset),
                to: local_time(shift.ends_at, offset),
                county: shift.county,
                person: shift.person,
                phone: shift.phone,
            })
            .collect(),
        counties: own_counties(&viewer.principal).into_iter().filter(|c| viewer.principal.can_keep_roster(c)).collect(),
        error,
    })
}

pub(super) async fn roster(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_see_roster(&viewer)?;
    Ok(html(&duty_page(&state, &viewer, None).await?))
}

#[derive(Debug, Deserialize)]
pub(super) struct ShiftForm {
    county: String,
    person: String,
    phone: String,
    /// `YYYY-MM-DDTHH:MM`, local (a datetime-local input).
    from: String,
    to: String,
}

pub(super) async fn add_shift(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ShiftForm>,
) -> Result<Response, AppError> {
    may_see_roster(&viewer)?;
    let county = form.county.trim();
    if !viewer.principal.can_keep_roster(county) {
        return Err(AppError::forbidden(format!("{} cannot keep {county}'s duty roster", viewer.principal.name)));
    }
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    let local = |text: &str| {
        chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M")
            .ok()
            .and_then(|t| t.and_local_timezone(offset).single())
            .map(|t| t.timestamp_millis())
    };
    let refuse = async |message: String| -> Result<Response, AppError> {
        let page = duty_page(&state, &viewer, Some(message)).await?;
        Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)).into_response())
    };
    let person = form.person.trim();
    if person.is_empty() || person.chars().count() > 64 {
        return refuse(lang.t("duty.person_needed").into()).await;
    }
    let phone = match anxin_domain::registry::PhoneNumber::parse("phone", &form.phone) {
        Ok(phone) => phone,
        Err(error) => return refuse(error.to_string()).await,
    };
    let (Some(from), Some(to)) = (local(&form.from), local(&form.to)) else {
        return refuse(lang.t("duty.bad_times").into()).await;
    };
    if to <= from || to - from > 7 * 24 * 3_600_000 {
        return refuse(lang.t("duty.bad_times").into()).await;
    }
    state.store.add_shift(county, person, phone.as_str(), (from, to), &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/duty").into_response())
}

pub(super) async fn cancel_shift(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    may_see_roster(&viewer)?;
    let now = state.now();
    let shifts = roster_shifts(&state.store, &viewer.principal, i64::MIN / 2, i64::MAX / 2).await?;
    let Some(shift) = shifts.into_iter().find(|shift| shift.id == id) else { return Err(AppError::NotFound(None)) };
    if !viewer.principal.can_keep_roster(&shift.county) {
        return Err(AppError::Forbidden(None));
    }
    state.store.cancel_shift(id, &viewer.principal.name, now).await?;
    Ok(Redirect::to("/duty").into_response())
}

#[derive(Template)]
#[template(path = "handover.html")]
struct HandoverPage {
    c: Chrome,
    on_call: Vec<(String, String, String)>,
    alerts: Vec<HandoverAlert>,
}

#[derive(Debug)]
struct HandoverAlert {
    alert: AlertRow,
    chain: Option<ChainLine>,
    attempts: Vec<AttemptRow>,
    acknowledged: String,
}

pub(super) async fn handover(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_see_roster(&viewer)?;
    let who = &viewer.principal;
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    let mut alerts = state
        .store
        .alerts(&AlertFilter { unresolved_only: true, elder_id: None, limit: 5_000, scope: Scope::of(who) })
        .await?
        .into_iter()
        .filter(|alert| who.can_handle_alerts(&alert.place()))
        .collect::<Vec<_>>();
    most_urgent_first(&mut alerts);
    let ids: Vec<i64> = alerts.iter().map(|alert| alert.id).collect();
    let chains = state.store.chains_of(&ids).await?;
    let messages = state.store.responder_messages_of(&ids).await?;
    let page = HandoverPage {
        c: viewer.chrome("handover.title"),
        on_call: on_call_now(&state.store, &viewer.principal, state.now()).await?,
        alerts: alerts
            .iter()
            .map(|alert| {
                let mine: Vec<_> = messages.iter().filter(|m| m.alert_id == alert.id).cloned().collect();
                let refs: Vec<_> = mine.iter().collect();
                HandoverAlert {
                    chain: chain_line(chains.iter().find(|c| c.alert_id == alert.id), &refs, lang, offset),
                    attempts: attempt_rows(&mine, lang, offset),
                    acknowledged: match (&alert.acknowledged_by, alert.acknowledged_at) {
                        (Some(by), Some(at)) => format!("{by} {}", local_time(at, offset)),
                        _ => String::new(),
                    },
                    alert: row(alert, lang, offset),
                }
            })
            .collect(),
    };
    Ok(html(&page))
}

#[derive(Debug, Deserialize)]
pub(super) struct CallBackForm {
    outcome: String,
}

/// On-call called the elder back: the outcome goes into the alert's record.
pub(super) async fn call_back(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<CallBackForm>,
) -> Result<Response, AppError> {
    let alert = handleable_alert(&state.store, &viewer.principal, id).await?;
    let Some(outcome) = CallBack::parse(&form.outcome) else {
        return Err(AppError::Invalid(viewer.lang.t("responder.pick_callback").into()));
    };
    let now = state.now();
    state.store.record_call_back(id, alert.elder_id, outcome.code(), &viewer.principal.name, now).await?;
    Ok(Redirect::to(&format!("/board?alert={id}")).into_response())
}

#[derive(Template)]
#[template(path = "alert_print.html")]
struct AlertPrint {
    alert: anxin_store::AlertRecord,
    printed_at: String,
    kind: &'static str,
    severity: &'static str,
    opened: String,
    place: String,
    address: String,
    acknowledged: String,
    resolved: String,
    outcome: String,
    note: String,
    chain: String,
    /// (time, what, who, detail)
    timeline: Vec<(String, &'static str, String, String)>,
    attempts: Vec<AttemptRow>,
}

/// The handling record of one alert, for printing and the archive
/// (事后做好处置情况记录归档): what happened, who was reached, what they
/// answered, who acknowledged and resolved it. In Chinese, as filed.
pub(super) async fn print_record(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let alert = handleable_alert(&state.store, &viewer.principal, id).await?;
    let elder = crate::scope::visible_elder(&state.store, &viewer.principal, alert.elder_id).await?;
    let offset = state.policy.utc_offset;
    let lang = Lang::ZhCn;
    let now = state.now();
    state
        .store
        .audit(now, &viewer.principal.name, "alert record printed", Some(elder.id), Some(&id.to_string()))
        .await?;
    let history = state.store.alert_history(id).await?;
    let messages = state.store.responder_messages(id).await?;
    let chain = state.store.chain(id).await?;
    let at = |ms: Option<i64>, who: &Option<String>| match ms {
        Some(ms) => format!("{} {}", local_time(ms, offset), who.clone().unwrap_or_default()),
        None => "—".into(),
    };
    let page = AlertPrint {
        printed_at: local_time(now, offset),
        kind: lang.t(&format!("kind.{}", alert.kind)),
        severity: lang.t(&format!("severity.{}", alert.severity)),
        opened: local_time(alert.opened_at, offset),
        place: format!("{} {} {}", alert.county, alert.township, alert.village),
        address: elder.address.clone(),
        acknowledged: match alert.ack_ms {
            Some(ms) => format!("{}（{} 秒）", at(alert.acknowledged_at, &alert.acknowledged_by), ms / 1_000),
            None => at(alert.acknowledged_at, &alert.acknowledged_by),
        },
        resolved: at(alert.resolved_at, &alert.resolved_by),
        outcome: alert.outcome.map(|o| lang.t(&format!("outcome.{o}")).to_string()).unwrap_or_default(),
        note: alert.note.clone().unwrap_or_default(),
        chain: chain_line(chain.as_ref(), &messages.iter().collect::<Vec<_>>(), lang, offset)
            .map(|line| line.text)
            .unwrap_or_else(|| "未启动（无呼叫顺序或未配置短信）".into()),
        timeline: history
            .iter()
            .map(|event| {
                let detail = if event.action == "called_back" {
                    event.detail.as_deref().and_then(CallBack::parse).map(|o| o.label().to_string()).unwrap_or_default()
                } else {
                    event.detail.clone().unwrap_or_default()
                };
                (
                    local_time(event.at, offset),
                    history_word(&event.action),
                    event.actor.clone().unwrap_or_default(),
                    detail,
                )
            })
            .collect(),
        attempts: attempt_rows(&messages, lang, offset),
        alert,
    };
    Ok(html(&page))
}
