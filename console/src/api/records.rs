//! `/api/v1`: visits with the record form's part 5, referrals, care
//! services, an elder's household (parts 2–4, member IDs masked) and the
//! monthly visit rate — under the same rules as the pages.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use anxin_domain::access::{Placed, Region};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::ledger::ElderDetails;
use anxin_domain::registry::mask;
use anxin_domain::visits::{
    Assessment, ElderMonth, Month, NewVisit, RateFigures, RegionLevel, Satisfaction, Service, VisitMode,
};
use anxin_store::{CareService, Referral, Store, StoreError, VisitRecord};

use anxin_domain::time::Clock;

use crate::auth::Caller;
use crate::error::AppError;
use crate::scope::{visible_elder_for, visit_rate};
use crate::state::AppState;

async fn elder_for_records(store: &Store, caller: &Caller, id: i64) -> Result<(), AppError> {
    let elder = visible_elder_for(store, &caller.0, id).await?.ok_or_else(not_found)?;
    if caller.0.can_record_visits(&elder.place()) { Ok(()) } else { Err(forbidden()) }
}

fn not_found() -> AppError {
    AppError::not_found("not found, or not the caller's to see")
}

fn forbidden() -> AppError {
    AppError::forbidden("the caller's role may not do this")
}

fn invalid(reason: impl ToString) -> AppError {
    AppError::invalid(reason)
}

/// A visit as staff record it (part 5 of the record form).
#[derive(Debug, Deserialize, ToSchema)]
pub struct VisitRequest {
    /// `YYYY-MM-DD`, not in the future.
    pub day: String,
    /// `home`, `phone`, `video` or `other` (`remote` is the gateway's).
    pub mode: VisitMode,
    /// When the visit began, `HH:MM` (local); required for `home`.
    pub started: Option<String>,
    /// Who visited.
    pub visitor: String,
    #[serde(default)]
    pub assessment: Assessment,
    pub needs: Option<String>,
    pub suggestions: Option<String>,
    /// 紧急情况: what was found. Opens a critical `visit_emergency` alert for
    /// the on-call staff (escalated like a sensor's; see `/api/v1/alerts`).
    pub emergency: Option<String>,
    /// The client's own id for the visit (8 to 64 letters, digits, `-`,
    /// `_`): sent again, the visit already recorded is answered with `200`
    /// and nothing is recorded twice.
    pub client_id: Option<String>,
}

/// Records a visit; `201` with the visit (`200` with it when its
/// `client_id` was recorded already).
#[utoipa::path(post, path = "/api/v1/elders/{id}/visits", params(("id" = i64, Path)), request_body = VisitRequest,
    responses((status = 201, body = VisitRecord), (status = 200, body = VisitRecord, description = "sent again: already recorded"), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn record_visit(
    State(store): State<Store>,
    State(clock): State<Clock>,
    State(policy): State<Arc<AlertPolicy>>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<VisitRequest>,
) -> Result<(StatusCode, Json<VisitRecord>), AppError> {
    elder_for_records(&store, &caller, id).await?;
    let day = chrono::NaiveDate::parse_from_str(&request.day, "%Y-%m-%d")
        .map_err(|_| invalid("day must be a date, YYYY-MM-DD"))?;
    let started = request
        .started
        .as_deref()
        .map(|text| chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M"))
        .transpose()
        .map_err(|_| invalid("started must be a time, HH:MM"))?;
    let visit = NewVisit {
        elder_id: id,
        day,
        mode: request.mode,
        started,
        visitor: request.visitor,
        assessment: request.assessment,
        needs: request.needs,
        suggestions: request.suggestions,
    }
    .check(clock.today(policy.utc_offset))
    .map_err(invalid)?;
    let emergency = request.emergency.as_deref().map(str::trim);
    if emergency.is_some_and(str::is_empty) {
        return Err(invalid("emergency must say what was found"));
    }
    let client_id = request
        .client_id
        .as_deref()
        .map(|text| {
            anxin_domain::visits::check_client_id(text)
                .ok_or_else(|| invalid("client_id must be 8 to 64 letters, digits, - or _"))
        })
        .transpose()?;
    let now = clock.now_ms();
    let (recorded, new) = store.record_visit_once(&visit, client_id, &caller.0.name, now, policy.utc_offset).await?;
    if !new {
        return Ok((StatusCode::OK, Json(recorded)));
    }
    if let Some(what) = emergency {
        let detail = anxin_domain::alerts::explanation::Explanation::new(
            anxin_domain::alerts::explanation::Sentence::VisitEmergency,
        )
        .with("by", visit.visitor.as_str())
        .with("at", anxin_domain::alerts::rules::when(now, now, &policy));
        store
            .open_visit_emergency(
                id,
                Some(recorded.id),
                what,
                &detail,
                &caller.0.name,
                now,
                now + policy.escalate_after_ms,
            )
            .await
            .map_err(|error| match error {
                anxin_store::AlertActionError::Invalid(reason) => invalid(reason),
                other => AppError::from(other),
            })?;
    }
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// A need referred to a service.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReferralRequest {
    pub service: Service,
    pub need: String,
    /// The visit that found it, if any: a visit of the same elder.
    pub visit_id: Option<i64>,
}

/// An elder's referrals, open ones first.
#[utoipa::path(get, path = "/api/v1/elders/{id}/referrals", params(("id" = i64, Path)),
    responses((status = 200, body = [Referral]), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn referrals(
    State(store): State<Store>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Referral>>, AppError> {
    visible_elder_for(&store, &caller.0, id).await?.ok_or_else(not_found)?;
    Ok(Json(store.referrals(id).await?))
}

fn refusal(error: StoreError) -> AppError {
    match error {
        StoreError::Invalid(reason) | StoreError::NotFound(reason) => invalid(reason),
        other => other.into(),
    }
}

/// Refers a need to a service; `201` with the referral.
#[utoipa::path(post, path = "/api/v1/elders/{id}/referrals", params(("id" = i64, Path)), request_body = ReferralRequest,
    responses((status = 201, body = Referral), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn raise_referral(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<ReferralRequest>,
) -> Result<(StatusCode, Json<Referral>), AppError> {
    elder_for_records(&store, &caller, id).await?;
    let referral = store
        .raise_referral(id, request.visit_id, request.service, &request.need, &caller.0.name, clock.now_ms())
        .await
        .map_err(refusal)?;
    Ok((StatusCode::CREATED, Json(referral)))
}

/// What came of a referral.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReferralDone {
    pub outcome: String,
}

/// Marks a referral done.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/done", params(("id" = i64, Path)), request_body = ReferralDone,
    responses((status = 200, body = Referral), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn complete_referral(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<ReferralDone>,
) -> Result<Json<Referral>, AppError> {
    let referral = store.referral(id).await?.ok_or_else(not_found)?;
    elder_for_records(&store, &caller, referral.elder_id).await?;
    Ok(Json(store.complete_referral(id, &request.outcome, &caller.0.name, clock.now_ms()).await.map_err(refusal)?))
}

/// A care service given (part 6).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ServiceRequest {
    /// `YYYY-MM-DD`, not in the future.
    pub day: String,
    pub description: String,
    pub served_by: String,
    pub satisfaction: Option<Satisfaction>,
}

/// An elder's care services, newest first.
#[utoipa::path(get, path = "/api/v1/elders/{id}/services", params(("id" = i64, Path)),
    responses((status = 200, body = [CareService]), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn services(
    State(store): State<Store>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<CareService>>, AppError> {
    visible_elder_for(&store, &caller.0, id).await?.ok_or_else(not_found)?;
    Ok(Json(store.care_services(id).await?))
}

/// Records a care service; `201` with it.
#[utoipa::path(post, path = "/api/v1/elders/{id}/services", params(("id" = i64, Path)), request_body = ServiceRequest,
    responses((status = 201, body = CareService), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn record_service(
    State(store): State<Store>,
    State(clock): State<Clock>,
    State(policy): State<Arc<AlertPolicy>>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<ServiceRequest>,
) -> Result<(StatusCode, Json<CareService>), AppError> {
    elder_for_records(&store, &caller, id).await?;
    let day = chrono::NaiveDate::parse_from_str(&request.day, "%Y-%m-%d")
        .map_err(|_| invalid("day must be a date, YYYY-MM-DD"))?;
    let service = store
        .record_care_service(
            id,
            day,
            clock.today(policy.utc_offset),
            &request.description,
            &request.served_by,
            request.satisfaction,
            &caller.0.name,
            clock.now_ms(),
        )
        .await
        .map_err(refusal)?;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Parts 2–4 of an elder's record form; household members' ID numbers masked.
#[utoipa::path(get, path = "/api/v1/elders/{id}/household", params(("id" = i64, Path)),
    responses((status = 200, body = ElderDetails), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn household(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ElderDetails>, AppError> {
    let store = &state.store;
    visible_elder_for(store, &caller.0, id).await?.ok_or_else(not_found)?;
    store.audit(state.now(), &caller.0.name, "household read (API)", Some(id), None).await?;
    let mut details = store.elder_details(id).await?.unwrap_or_default();
    for member in &mut details.members {
        member.citizen_id = member.citizen_id.as_deref().map(mask);
    }
    Ok(Json(details))
}

#[derive(Debug, Deserialize)]
pub(super) struct RateQuery {
    month: Option<String>,
    region: Option<String>,
}

/// One region's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionRate {
    /// `COUNTY/TOWNSHIP`.
    pub region: String,
    #[serde(flatten)]
    pub figures: RateFigures,
    /// Per mille, rounded down; absent with nobody registered.
    pub rate_per_mille: Option<i64>,
}

/// The monthly visit rate of the caller's regions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VisitRate)]
pub struct VisitRateBody {
    /// `YYYY-MM`.
    pub month: String,
    #[serde(flatten)]
    pub figures: RateFigures,
    pub rate_per_mille: Option<i64>,
    pub days_left: i64,
    pub by_township: Vec<RegionRate>,
    /// Registered elders with no visit of any mode yet this month.
    pub unvisited: Vec<ElderMonth>,
}

/// The monthly visit rate (月探访率) of the regions the caller may see.
#[utoipa::path(get, path = "/api/v1/rate", params(("month" = Option<String>, Query), ("region" = Option<String>, Query)),
    responses((status = 200, body = VisitRateBody), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn rate(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RateQuery>,
) -> Result<Json<VisitRateBody>, AppError> {
    if !caller.0.can_read_figures() {
        return Err(forbidden());
    }
    let month = match query.month.as_deref() {
        None => Month::of(state.today()),
        Some(text) => Month::parse(text).ok_or_else(|| invalid("month must be YYYY-MM"))?,
    };
    let region =
        query.region.as_deref().filter(|r| !r.trim().is_empty()).map(Region::parse).transpose().map_err(invalid)?;
    let rate = visit_rate(&state, &caller.0, month, region.as_ref()).await?;
    let read = format!("{month} {}", region.as_ref().map_or_else(|| "all".to_string(), ToString::to_string));
    state.store.audit(state.now(), &caller.0.name, "visit rate read (API)", None, Some(&read)).await?;
    Ok(Json(VisitRateBody {
        month: month.to_string(),
        rate_per_mille: rate.total.per_mille(),
        figures: rate.total.clone(),
        days_left: rate.days_left,
        by_township: rate
            .by(RegionLevel::Township)
            .into_iter()
            .map(|(region, figures)| RegionRate { region, rate_per_mille: figures.per_mille(), figures })
            .collect(),
        unvisited: rate.unvisited().cloned().collect(),
    }))
}
