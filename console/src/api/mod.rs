//! The JSON API, `/api/v1`: bearer tokens (`anxin tokens issue USER`), and
//! every call checked against the caller's role and regions on the server —
//! an alert outside the caller's scope is 404, one they may see but not
//! handle is 403. `/api/v1/alerts/events` streams the changes the caller may
//! see (server-sent events), replaying from the database after a reconnect.

mod elders;
mod records;

use std::convert::Infallible;
use std::sync::Arc;

use anxin_domain::alerts::policy::AlertPolicy;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;

use anxin_domain::access::{ElderPlace, Principal};
use anxin_domain::alerts::Outcome;
use anxin_store::{
    AlertActionError, AlertChange, AlertEventRecord, AlertFilter, AlertRecord, SessionLimits, Store, StoreError, now_ms,
};

use crate::auth::{CurrentSession, Throttle};
use utoipa::{OpenApi, ToSchema};

/// What the console's handlers share: the store, the live feed of alert
/// changes (the gateway's `alerts::delivery::start_feed`), how long
/// sessions last and the sign-in throttle.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    /// The deployment's thresholds and time zone (the console's "today").
    pub policy: Arc<AlertPolicy>,
    pub feed: broadcast::Sender<Arc<AlertChange>>,
    pub limits: SessionLimits,
    pub throttle: Arc<Throttle>,
}

impl ApiState {
    pub fn new(store: Store, policy: Arc<AlertPolicy>, feed: broadcast::Sender<Arc<AlertChange>>) -> ApiState {
        ApiState { store, policy, feed, limits: SessionLimits::default(), throttle: Arc::new(Throttle::default()) }
    }
}

impl FromRef<ApiState> for Store {
    fn from_ref(state: &ApiState) -> Store {
        state.store.clone()
    }
}

impl FromRef<ApiState> for Arc<AlertPolicy> {
    fn from_ref(state: &ApiState) -> Arc<AlertPolicy> {
        state.policy.clone()
    }
}

/// `/api/v1/…`.
pub fn router(state: ApiState) -> Router {
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
        .with_state(state)
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
    components(schemas(AlertRecord, AlertEventRecord, AlertChange, AlertWithHistory, Resolution, ErrorBody)),
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

/// `{"error": "…"}`: why a call was refused.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// An alert and its whole history.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AlertWithHistory {
    pub alert: AlertRecord,
    pub history: Vec<AlertEventRecord>,
}

/// An API error: a status and a one-line reason, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl From<crate::web::PageError> for ApiError {
    fn from(error: crate::web::PageError) -> Self {
        use crate::web::PageError;
        match error {
            PageError::NotFound => ApiError(StatusCode::NOT_FOUND, "not found, or not the caller's to see".into()),
            PageError::Forbidden => ApiError(StatusCode::FORBIDDEN, "the caller's role may not do this".into()),
            PageError::Refused => ApiError(StatusCode::FORBIDDEN, "CSRF token missing or wrong".into()),
            PageError::Invalid(reason) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, reason),
            PageError::Unavailable => {
                ApiError(StatusCode::SERVICE_UNAVAILABLE, "the database is not available; try again".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(reason) => ApiError(StatusCode::NOT_FOUND, reason),
            StoreError::Invalid(reason) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, reason),
            error => {
                tracing::error!(%error, "API: store error");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the database is not available; try again".into())
            }
        }
    }
}

impl From<AlertActionError> for ApiError {
    fn from(error: AlertActionError) -> Self {
        match error {
            AlertActionError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, error.to_string()),
            AlertActionError::AlreadyAcknowledged { .. } | AlertActionError::AlreadyResolved { .. } => {
                ApiError(StatusCode::CONFLICT, error.to_string())
            }
            AlertActionError::Invalid(reason) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, reason),
            AlertActionError::Store(error) => error.into(),
        }
    }
}

/// The caller, from `Authorization: Bearer …` — or, for the console's own
/// pages, the signed-in session (whose state changes carry the CSRF token;
/// see [`crate::auth::session_layer`]).
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let store = &state.store;
        let unauthorized = || ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into());
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let Some(token) = token else {
            let session = parts.extensions.get::<CurrentSession>().and_then(|current| current.session.clone());
            return match session {
                Some(session) if !session.must_change_password => Ok(Caller(session.principal)),
                Some(_) => Err(ApiError(StatusCode::FORBIDDEN, "change the one-time password first".into())),
                None => Err(unauthorized()),
            };
        };
        store.principal_for_token(token.trim(), now_ms()).await?.map(Caller).ok_or_else(unauthorized)
    }
}

fn place(alert: &AlertRecord) -> ElderPlace<'_> {
    ElderPlace { elder_id: alert.elder_id, county: &alert.county, township: &alert.township, village: &alert.village }
}

fn not_found(id: i64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("there is no alert {id}"))
}

/// The alert, if the caller may see it; 404 otherwise (whether or not it exists).
async fn visible(store: &Store, caller: &Principal, id: i64) -> Result<AlertRecord, ApiError> {
    match store.alert(id).await? {
        Some(alert) if caller.can_see_elder(&place(&alert)) => Ok(alert),
        _ => Err(not_found(id)),
    }
}

/// …and 403 when they may see but not handle it.
async fn handleable(store: &Store, caller: &Principal, id: i64) -> Result<AlertRecord, ApiError> {
    let alert = visible(store, caller, id).await?;
    if !caller.can_handle_alerts(&place(&alert)) {
        return Err(ApiError(StatusCode::FORBIDDEN, format!("the {} role cannot handle alerts", caller.role.as_str())));
    }
    Ok(alert)
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
) -> Result<Json<Vec<AlertRecord>>, ApiError> {
    let alerts = store.alerts(&AlertFilter { unresolved_only: query.open, elder_id: None, limit: 1_000 }).await?;
    Ok(Json(alerts.into_iter().filter(|alert| caller.can_see_elder(&place(alert))).collect()))
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
) -> Result<Json<AlertWithHistory>, ApiError> {
    let alert = visible(&store, &caller, id).await?;
    let history = store.alert_history(id).await?;
    Ok(Json(AlertWithHistory { alert, history }))
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
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertRecord>, ApiError> {
    handleable(&store, &caller, id).await?;
    let alert = store.acknowledge_alert(id, &caller.name, now_ms()).await?;
    store.audit(now_ms(), &caller.name, "alert acknowledged", Some(alert.elder_id), Some(&id.to_string())).await?;
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
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(resolution): Json<Resolution>,
) -> Result<Json<AlertRecord>, ApiError> {
    handleable(&store, &caller, id).await?;
    let outcome = Outcome::parse_for_staff(&resolution.outcome).ok_or_else(|| {
        let choices = Outcome::FOR_STAFF.map(Outcome::as_str).join(", ");
        ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("outcome {:?} is not one of: {choices}", resolution.outcome))
    })?;
    let alert = store.resolve_alert(id, &caller.name, outcome, &resolution.note, now_ms()).await?;
    store.audit(now_ms(), &caller.name, "alert resolved", Some(alert.elder_id), Some(outcome.as_str())).await?;
    Ok(Json(alert))
}

fn change_place(change: &AlertChange) -> ElderPlace<'_> {
    ElderPlace {
        elder_id: change.elder_id,
        county: &change.county,
        township: &change.township,
        village: &change.village,
    }
}

fn sse_event(change: &AlertChange) -> Event {
    Event::default()
        .id(change.event_id.to_string())
        .event("alert")
        .json_data(change)
        .unwrap_or_else(|_| Event::default().comment("unencodable change"))
}

/// Where a stream resumes and what it still has to replay.
struct Resume {
    store: Store,
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
    State(state): State<ApiState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the newest id, so nothing falls in between.
    let live = state.feed.subscribe();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let sent = match last {
        Some(id) => id,
        None => state.store.newest_alert_event().await?,
    };
    let resume = Resume {
        store: state.store.clone(),
        caller,
        live,
        sent,
        backlog: Default::default(),
        replaying: last.is_some(),
    };
    let stream = futures_util::stream::unfold(resume, |mut resume| async move {
        loop {
            if let Some(change) = resume.backlog.pop_front() {
                resume.sent = change.event_id;
                if resume.caller.can_see_elder(&change_place(&change)) {
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
            match resume.live.recv().await {
                Ok(change) if change.event_id > resume.sent => resume.backlog.push_back((*change).clone()),
                Ok(_) => {}
                // Fell behind the live feed: catch up from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => resume.replaying = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
