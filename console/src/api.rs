//! The JSON API, `/api/v1`: bearer tokens (`anxin tokens issue USER`), and
//! every call checked against the caller's role and regions on the server —
//! an alert outside the caller's scope is 404, one they may see but not
//! handle is 403.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use anxin_gateway::access::{ElderPlace, Principal};
use anxin_gateway::alerts::Outcome;
use anxin_gateway::store::{AlertActionError, AlertFilter, AlertRecord, Store, StoreError, now_ms};

/// `/api/v1/…` on `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(show_alert))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .with_state(store)
}

/// An API error: a status and a one-line reason, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "API: store error");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the database is not available; try again".into())
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

/// The caller, from `Authorization: Bearer …`.
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<Store> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Store) -> Result<Self, Self::Rejection> {
        let unauthorized = || ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into());
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
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

async fn list_alerts(
    State(store): State<Store>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<AlertRecord>>, ApiError> {
    let alerts = store.alerts(&AlertFilter { unresolved_only: query.open, elder_id: None, limit: 1_000 }).await?;
    Ok(Json(alerts.into_iter().filter(|alert| caller.can_see_elder(&place(alert))).collect()))
}

async fn show_alert(
    State(store): State<Store>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let alert = visible(&store, &caller, id).await?;
    let history = store.alert_history(id).await?;
    Ok(Json(serde_json::json!({ "alert": alert, "history": history })))
}

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

#[derive(Debug, Deserialize)]
struct Resolution {
    outcome: String,
    #[serde(default)]
    note: String,
}

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
