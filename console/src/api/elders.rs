//! `/api/v1/elders`, `/api/v1/devices` and `/api/v1/audit`: the registry,
//! the elder's activity and visits, under the same rules as the pages —
//! an elder outside the caller's scope is 404, a change their role may not
//! make is 403, identifying numbers are masked unless revealed (audited).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use anxin_domain::registry::{ElderForm, mask};
use anxin_store::{
    Absence, AuditEntry, DeviceRecord, Elder, HourActivity, PairRefusal, Store, StoreError, VisitRecord,
};

use anxin_domain::time::Clock;

use crate::auth::Caller;
use crate::error::AppError;
use crate::scope::{identifying_number, may_reveal, visible_elder, visible_elders};

/// An elder as the API shows them: ID and certificate numbers masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElderView {
    pub id: i64,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub address: String,
    pub phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// Annex 2 categories, comma-separated.
    pub categories: String,
    pub inactivity_hours: Option<i64>,
    /// Masked: `2106**********123X`.
    pub citizen_id: Option<String>,
    /// Masked.
    pub disability_cert: Option<String>,
    pub lives_at_registered: bool,
}

impl From<&Elder> for ElderView {
    fn from(elder: &Elder) -> Self {
        ElderView {
            id: elder.id,
            name: elder.name.clone(),
            county: elder.county.clone(),
            township: elder.township.clone(),
            village: elder.village.clone(),
            address: elder.address.clone(),
            phone: elder.phone.clone(),
            emergency_contact: elder.emergency_contact.clone(),
            emergency_phone: elder.emergency_phone.clone(),
            categories: elder.categories.clone(),
            inactivity_hours: elder.inactivity_hours,
            citizen_id: elder.citizen_id.as_deref().map(mask),
            disability_cert: elder.disability_cert.as_deref().map(mask),
            lives_at_registered: elder.lives_at_registered,
        }
    }
}

/// An elder with what the elder page shows beside the profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElderDetail {
    pub elder: ElderView,
    /// 探访责任人, by user name.
    pub visitors: Vec<String>,
    pub devices: Vec<DeviceRecord>,
    /// The absence the elder is on now, if any.
    pub absence: Option<Absence>,
}

/// An elder's registration (the record form's part 1).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ElderInput {
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub address: String,
    pub phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// living_alone, empty_nest, left_behind, dependent, severely_disabled, bereaved_family; comma-separated
    pub categories: Option<String>,
    pub inactivity_hours: Option<i64>,
    /// 18 characters, GB 11643 check digit; 60 or older.
    pub citizen_id: Option<String>,
    pub disability_cert: Option<String>,
    /// Default: yes.
    pub lives_at_registered: Option<bool>,
    /// For left_behind: the date the children left, YYYY-MM-DD.
    pub left_behind_since: Option<String>,
}

impl ElderInput {
    fn check(&self, today: chrono::NaiveDate) -> Result<anxin_domain::registry::NewElder, AppError> {
        ElderForm {
            name: &self.name,
            county: &self.county,
            township: &self.township,
            village: &self.village,
            address: &self.address,
            phone: self.phone.as_deref(),
            emergency_contact: self.emergency_contact.as_deref(),
            emergency_phone: self.emergency_phone.as_deref(),
            categories: self.categories.as_deref(),
            inactivity_hours: self.inactivity_hours,
            citizen_id: self.citizen_id.as_deref(),
            disability_cert: self.disability_cert.as_deref(),
            lives_at_registered: self.lives_at_registered,
            left_behind_since: self.left_behind_since.as_deref(),
        }
        .check_on(today)
        .map_err(|error| AppError::invalid(error.to_string()))
    }
}

fn registry_editor(caller: &Caller) -> Result<(), AppError> {
    if caller.0.can_edit_registry() {
        Ok(())
    } else {
        Err(AppError::forbidden(format!("the {} role cannot change the registry", caller.0.role.as_str())))
    }
}

async fn elder_in_scope(store: &Store, caller: &Caller, id: i64) -> Result<Elder, AppError> {
    visible_elder(store, &caller.0, id).await
}

/// The elders the caller may see. The read is audited.
#[utoipa::path(get, path = "/api/v1/elders", responses((status = 200, body = [ElderView])))]
pub(super) async fn list_elders(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
) -> Result<Json<Vec<ElderView>>, AppError> {
    let elders = visible_elders(&store, &caller.0).await?;
    let count = elders.len().to_string();
    store.audit(clock.now_ms(), &caller.0.name, "elder list read (API)", None, Some(&count)).await?;
    Ok(Json(elders.iter().map(ElderView::from).collect()))
}

/// One elder: profile (masked), visitors, devices, absence. The read is audited.
#[utoipa::path(get, path = "/api/v1/elders/{id}", params(("id" = i64, Path)), responses(
    (status = 200, body = ElderDetail),
    (status = 404, body = crate::error::ErrorBody, description = "no such elder, or not the caller's to see"),
))]
pub(super) async fn show_elder(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ElderDetail>, AppError> {
    let elder = elder_in_scope(&store, &caller, id).await?;
    let now = clock.now_ms();
    store.audit(now, &caller.0.name, "elder read (API)", Some(id), None).await?;
    Ok(Json(ElderDetail {
        elder: ElderView::from(&elder),
        visitors: store.visitors_of(id).await?,
        devices: store.devices_of(id).await?,
        absence: store.current_absence(id, now).await?,
    }))
}

/// Registers an elder (admin).
#[utoipa::path(post, path = "/api/v1/elders", request_body = ElderInput, responses(
    (status = 201, body = ElderView),
    (status = 403, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody, description = "a field is wrong; the reason names it"),
))]
pub(super) async fn create_elder(
    State(store): State<Store>,
    State(clock): State<Clock>,
    State(policy): State<std::sync::Arc<anxin_domain::alerts::policy::AlertPolicy>>,
    caller: Caller,
    Json(input): Json<ElderInput>,
) -> Result<(StatusCode, Json<ElderView>), AppError> {
    registry_editor(&caller)?;
    let new = input.check(clock.today(policy.utc_offset))?;
    let now = clock.now_ms();
    let elder = store.add_elder(&new, now).await?;
    store.audit(now, &caller.0.name, "elder registered", Some(elder.id), None).await?;
    Ok((StatusCode::CREATED, Json(ElderView::from(&elder))))
}

/// Replaces an elder's registration (admin).
#[utoipa::path(put, path = "/api/v1/elders/{id}", params(("id" = i64, Path)), request_body = ElderInput, responses(
    (status = 200, body = ElderView),
    (status = 403, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub(super) async fn update_elder(
    State(store): State<Store>,
    State(clock): State<Clock>,
    State(policy): State<std::sync::Arc<anxin_domain::alerts::policy::AlertPolicy>>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(input): Json<ElderInput>,
) -> Result<Json<ElderView>, AppError> {
    registry_editor(&caller)?;
    let new = input.check(clock.today(policy.utc_offset))?;
    let elder = store.update_elder(id, &new, &caller.0.name, clock.now_ms()).await?;
    Ok(Json(ElderView::from(&elder)))
}

#[derive(Debug, Deserialize)]
pub(super) struct DaysQuery {
    days: Option<i64>,
}

/// Hourly activity (summed over the elder's devices) of the last `days` days (default 14, at most 90).
#[utoipa::path(get, path = "/api/v1/elders/{id}/activity", params(("id" = i64, Path), ("days" = Option<i64>, Query)), responses(
    (status = 200, body = [HourActivity]),
    (status = 404, body = crate::error::ErrorBody),
))]
pub(super) async fn activity(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<DaysQuery>,
) -> Result<Json<Vec<HourActivity>>, AppError> {
    elder_in_scope(&store, &caller, id).await?;
    let days = query.days.unwrap_or(14).clamp(1, 90);
    store.audit(clock.now_ms(), &caller.0.name, "activity read (API)", Some(id), None).await?;
    Ok(Json(store.elder_activity(id, clock.now_ms() - days * 24 * 3_600_000).await?))
}

/// Visits, remote check-ins included, newest first.
#[utoipa::path(get, path = "/api/v1/elders/{id}/visits", params(("id" = i64, Path)), responses(
    (status = 200, body = [VisitRecord]),
    (status = 404, body = crate::error::ErrorBody),
))]
pub(super) async fn visits(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<VisitRecord>>, AppError> {
    elder_in_scope(&store, &caller, id).await?;
    store.audit(clock.now_ms(), &caller.0.name, "visits read (API)", Some(id), None).await?;
    Ok(Json(store.visits(id).await?))
}

/// Which number to reveal: `citizen_id` or `disability_cert`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevealRequest {
    pub field: String,
}

/// A whole identifying number.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revealed {
    pub value: String,
}

/// Reveals one identifying number whole — a deliberate act, written to the audit log.
#[utoipa::path(post, path = "/api/v1/elders/{id}/reveal", params(("id" = i64, Path)), request_body = RevealRequest, responses(
    (status = 200, body = Revealed),
    (status = 403, body = crate::error::ErrorBody, description = "visitors and officials may not reveal numbers"),
    (status = 404, body = crate::error::ErrorBody),
))]
pub(super) async fn reveal(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<RevealRequest>,
) -> Result<Json<Revealed>, AppError> {
    let elder = elder_in_scope(&store, &caller, id).await?;
    if !may_reveal(caller.0.role) {
        return Err(AppError::forbidden(format!("the {} role may not reveal ID numbers", caller.0.role.as_str())));
    }
    let Some((value, action)) = identifying_number(elder, &request.field) else {
        let field = &request.field;
        return Err(AppError::invalid(format!("field {field:?} is not citizen_id or disability_cert")));
    };
    let value = value.ok_or_else(|| AppError::not_found(format!("elder {id} has no {}", request.field)))?;
    store.audit(clock.now_ms(), &caller.0.name, action, Some(id), Some("API")).await?;
    Ok(Json(Revealed { value }))
}

/// The visitor to name as responsible (探访责任人).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Assignment {
    pub visitor: String,
}

/// Names a visitor responsible for the elder (admin).
#[utoipa::path(post, path = "/api/v1/elders/{id}/visitor", params(("id" = i64, Path)), request_body = Assignment, responses(
    (status = 204),
    (status = 403, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody, description = "no such user, or not a visitor"),
))]
pub(super) async fn assign_visitor(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(assignment): Json<Assignment>,
) -> Result<StatusCode, AppError> {
    registry_editor(&caller)?;
    elder_in_scope(&store, &caller, id).await?;
    match store.assign_visitor(id, &assignment.visitor, &caller.0.name, clock.now_ms()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(reason) | StoreError::Invalid(reason)) => Err(AppError::invalid(reason)),
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DevicesQuery {
    #[serde(default)]
    unclaimed: bool,
}

/// Devices, or only those heard from and not yet paired (admin).
#[utoipa::path(get, path = "/api/v1/devices", params(("unclaimed" = Option<bool>, Query)), responses(
    (status = 200, body = [DeviceRecord]),
    (status = 403, body = crate::error::ErrorBody),
))]
pub(super) async fn devices(
    State(store): State<Store>,
    caller: Caller,
    Query(query): Query<DevicesQuery>,
) -> Result<Json<Vec<DeviceRecord>>, AppError> {
    registry_editor(&caller)?;
    Ok(Json(store.devices(query.unclaimed).await?))
}

/// The elder a device is to be paired to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Pairing {
    pub elder_id: i64,
}

/// Pairs an unclaimed device to an elder (admin).
#[utoipa::path(post, path = "/api/v1/devices/{device_id}/pair", params(("device_id" = String, Path)), request_body = Pairing, responses(
    (status = 204),
    (status = 403, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "the device is paired already"),
))]
pub(super) async fn pair_device(
    State(store): State<Store>,
    State(clock): State<Clock>,
    caller: Caller,
    Path(device_id): Path<String>,
    Json(pairing): Json<Pairing>,
) -> Result<StatusCode, AppError> {
    registry_editor(&caller)?;
    let elder_id = pairing.elder_id;
    match store.pair_unclaimed(&device_id, elder_id, &caller.0.name, clock.now_ms()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(refusal @ (PairRefusal::NoDevice(_) | PairRefusal::NoElder(_))) => {
            Err(AppError::not_found(refusal.to_string()))
        }
        Err(refusal @ PairRefusal::AlreadyPaired(_)) => Err(AppError::Conflict(refusal.to_string())),
        Err(PairRefusal::Store(error)) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    elder: Option<i64>,
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", params(("elder" = Option<i64>, Query)), responses(
    (status = 200, body = [AuditEntry]),
    (status = 403, body = crate::error::ErrorBody),
))]
pub(super) async fn audit(
    State(store): State<Store>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    if !caller.0.can_read_audit() {
        return Err(AppError::forbidden("only administrators read the audit log"));
    }
    Ok(Json(store.audit_entries(query.elder, 1_000).await?))
}
