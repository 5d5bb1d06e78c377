//! The JSON API, `/api/v1`: bearer tokens (`anxin tokens issue USER`), and
//! every call checked against the caller's role and regions on the server —
//! an alert outside the caller's scope is 404, one they may see but not
//! handle is 403. `/api/v1/alerts/events` streams the changes the caller may
//! see (server-sent events), replaying from the database after a reconnect.

mod elders;
mod records;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::{OpenApi, ToSchema};

use anxin_domain::access::{Placed, Principal};
use anxin_domain::alerts::Outcome;
use anxin_store::{AlertChange, AlertEventRecord, AlertFilter, AlertRecord, Scope, Store};

use anxin_domain::time::Clock;

use crate::auth::Caller;
use crate::error::{AppError, ErrorBody};
use crate::scope::{handleable_alert, visible_alert};
use crate::state::AppState;

/// `/api/v1/…`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/events", get(alert_events))
        .route("/api/v1/alerts/{id}", get(show_alert))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/elders", get(elders::list_elders).post(elders::create_elder))
        .route("/api/v1/elders/{id}", get(elders::show_elder).put(elders::update_elder))
        .route("/api/v1/elders/{id}/activity", get(elders::activity))
        .route("/api/v1/elders/{id}/visits", get(elders::visits).post(records::record_visit))
        .route("/api/v1/elders/{id}/reveal", post(elders::reveal))
        .route("/api/v1/elders/{id}/visitor", post(elders::assign_visitor))
        .route("/api/v1/devices", get(elders::devices))
        .route("/api/v1/devices/{device_id}/pair", post(elders::pair_device))
        .route("/api/v1/audit", get(elders::audit))
        .route("/api/v1/elders/{id}/referrals", get(records::referrals).post(records::raise_referral))
        .route("/api/v1/referrals/{id}/done", post(records::complete_referral))
        .route("/api/v1/elders/{id}/services", get(records::services).post(records::record_service))
        .route("/api/v1/elders/{id}/household", get(records::household))
        .route("/api/v1/rate", get(records::rate))
        .route("/api/v1/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

/// The OpenAPI document of `/api/v1`, generated from the handlers and types.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Anxin API", description = "Alerts, elders, devices, visits and the audit log, each as far as the caller's role and regions allow; bearer tokens from `anxin tokens issue USER`."),
    paths(
        list_alerts, show_alert, acknowledge, resolve, alert_events,
        elders::list_elders, elders::show_elder, elders::create_elder, elders::update_elder, elders::activity,
        elders::visits, elders::reveal, elders::assign_visitor, elders::devices, elders::pair_device, elders::audit,
        records::record_visit, records::referrals, records::raise_referral, records::complete_referral,
        records::services, records::record_service, records::household, records::rate,
    ),
    components(schemas(
        AlertRecord,
        AlertEventRecord,
        AlertChange,
        AlertWithHistory,
        anxin_store::ChainRecord,
        anxin_store::ResponderMessage,
        Resolution,
        ErrorBody
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An alert and its whole history.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AlertWithHistory {
    pub alert: AlertRecord,
    pub history: Vec<AlertEventRecord>,
    /// The responder chain, if the alert started one.
    pub chain: Option<anxin_store::ChainRecord>,
    /// Every message of the chain in order: to whom, how sending went, the
    /// answer. Names and phones only for those who handle the alert.
    pub attempts: Vec<anxin_store::ResponderMessage>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Only alerts not yet resolved.
    #[serde(default)]
    open: bool,
}

/// Alerts of the homes the caller may see, open ones and the most urgent first.
#[utoipa::path(get, path = "/api/v1/alerts", params(
    ("open" = Option<bool>, Query, description = "only alerts not yet resolved"),
), responses(
    (status = 200, body = [AlertRecord]),
    (status = 401, body = ErrorBody, description = "no valid bearer token"),
))]
async fn list_alerts(
    State(store): State<Store>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<AlertRecord>>, AppError> {
    let scope = Scope::of(&caller);
    let alerts =
        store.alerts(&AlertFilter { unresolved_only: query.open, elder_id: None, limit: 1_000, scope }).await?;
    Ok(Json(alerts.into_iter().filter(|alert| caller.can_see_elder(&alert.place())).collect()))
}

/// One alert with its history: opened, repeated, escalated, acknowledged, resolved.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", params(("id" = i64, Path)), responses(
    (status = 200, body = AlertWithHistory),
    (status = 404, body = ErrorBody, description = "no such alert, or not the caller's to see"),
))]
async fn show_alert(
    State(store): State<Store>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertWithHistory>, AppError> {
    let alert = visible_alert(&store, &caller, id).await?;
    let history = store.alert_history(id).await?;
    let chain = store.chain(id).await?;
    let mut attempts = store.responder_messages(id).await?;
    if !caller.can_handle_alerts(&alert.place()) {
        for attempt in &mut attempts {
            attempt.name.clear();
            attempt.phone.clear();
        }
    }
    Ok(Json(AlertWithHistory { alert, history, chain, attempts }))
}

/// Acknowledge: the caller has it in hand; escalation stops.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", params(("id" = i64, Path)), responses(
    (status = 200, body = AlertRecord),
    (status = 403, body = ErrorBody, description = "the caller's role cannot handle alerts"),
    (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "already acknowledged or resolved"),
))]
async fn acknowledge(
    State(store): State<Store>,
    State(clock): State<Clock>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertRecord>, AppError> {
    handleable_alert(&store, &caller, id).await?;
    let alert = store.acknowledge_alert(id, &caller.name, clock.now_ms()).await?;
    store
        .audit(clock.now_ms(), &caller.name, "alert acknowledged", Some(alert.elder_id), Some(&id.to_string()))
        .await?;
    Ok(Json(alert))
}

/// How an alert was handled (处置情况).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Resolution {
    /// visited, reached_by_phone, family_reached, emergency_services, false_alarm, device_fault or other
    outcome: String,
    /// What was done; required with `other`.
    #[serde(default)]
    note: String,
}

/// Resolve with the handling record.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", params(("id" = i64, Path)), request_body = Resolution, responses(
    (status = 200, body = AlertRecord),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "already resolved"),
    (status = 422, body = ErrorBody, description = "unknown outcome, or `other` without a note"),
))]
async fn resolve(
    State(store): State<Store>,
    State(clock): State<Clock>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(resolution): Json<Resolution>,
) -> Result<Json<AlertRecord>, AppError> {
    handleable_alert(&store, &caller, id).await?;
    let outcome = Outcome::parse_for_staff(&resolution.outcome).ok_or_else(|| {
        let choices = Outcome::FOR_STAFF.map(Outcome::as_str).join(", ");
        AppError::invalid(format!("outcome {:?} is not one of: {choices}", resolution.outcome))
    })?;
    let alert = store.resolve_alert(id, &caller.name, outcome, &resolution.note, clock.now_ms()).await?;
    store.audit(clock.now_ms(), &caller.name, "alert resolved", Some(alert.elder_id), Some(outcome.as_str())).await?;
    Ok(Json(alert))
}

fn sse_event(change: &AlertChange) -> Event {
    Event::default()
        .id(change.position.to_string())
        .event("alert")
        .json_data(change)
        .unwrap_or_else(|_| Event::default().comment("unencodable change"))
}

/// Where a stream resumes and what it still has to replay.
/// How often an open stream checks that its session or token still stands:
/// signed out, disabled or revoked, the stream ends within this.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(3);

/// What opened a stream: a bearer token or the console's session.
enum Credential {
    Token(String),
    Session(String),
}

impl Credential {
    async fn still_stands(&self, state: &AppState) -> bool {
        let now = state.now();
        let live = match self {
            Credential::Token(token) => state.store.token_live(token, now).await,
            Credential::Session(id) => state.store.session_live(id, state.limits, now).await,
        };
        // A database that cannot answer ends the stream; the browser reconnects.
        live.unwrap_or(false)
    }
}

struct Resume {
    store: Store,
    state: AppState,
    credential: Credential,
    recheck: tokio::time::Interval,
    caller: Principal,
    live: broadcast::Receiver<Arc<AlertChange>>,
    /// The newest event id sent.
    sent: i64,
    backlog: std::collections::VecDeque<AlertChange>,
    replaying: bool,
}

/// Server-sent events (`event: alert`, `id`: the change's id, `data`: an
/// `AlertChange`) of every alert change the caller may see.
#[utoipa::path(get, path = "/api/v1/alerts/events", params(
    ("Last-Event-ID" = Option<i64>, Header, description = "replay the changes after this one"),
), responses(
    (status = 200, content_type = "text/event-stream", body = AlertChange),
))]
/// `text/event-stream` of alert changes the caller may see. With
/// `Last-Event-ID` (a browser sends it when it reconnects) the changes missed
/// since are replayed from the database first; without it the stream starts
/// now.
async fn alert_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    current: axum::Extension<crate::auth::session::CurrentSession>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let bearer = crate::auth::bearer_token(&headers);
    let credential = match (bearer, &current.id) {
        (Some(token), _) => Credential::Token(token.to_string()),
        (None, Some(id)) => Credential::Session(id.clone()),
        (None, None) => return Err(AppError::Unauthorized("a valid bearer token is required".into())),
    };
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Subscribe before reading the newest id, so nothing falls in between.
    let live = state.feed.subscribe();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let sent = match last {
        Some(id) => id,
        None => state.store.newest_alert_event().await?,
    };
    let resume = Resume {
        store: state.store.clone(),
        state: state.clone(),
        credential,
        recheck,
        caller,
        live,
        sent,
        backlog: Default::default(),
        replaying: last.is_some(),
    };
    let stream = futures_util::stream::unfold(resume, |mut resume| async move {
        loop {
            if let Some(change) = resume.backlog.pop_front() {
                resume.sent = change.position;
                if resume.caller.can_see_elder(&change.place()) {
                    return Some((Ok(sse_event(&change)), resume));
                }
                continue;
            }
            if resume.replaying {
                match resume.store.alert_changes_after(resume.sent, 500).await {
                    Ok(changes) if !changes.is_empty() => {
                        resume.backlog.extend(changes);
                        continue;
                    }
                    Ok(_) => resume.replaying = false,
                    Err(error) => {
                        tracing::warn!(%error, "alert stream cannot replay");
                        return None;
                    }
                }
            }
            let received = tokio::select! {
                received = resume.live.recv() => received,
                _ = resume.recheck.tick() => {
                    if resume.credential.still_stands(&resume.state).await {
                        continue;
                    }
                    return None;
                }
            };
            match received {
                Ok(change) if change.position > resume.sent => resume.backlog.push_back((*change).clone()),
                Ok(_) => {}
                // Fell behind the live feed: catch up from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => resume.replaying = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
