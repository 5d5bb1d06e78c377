//! Who may see what, asked in one place by pages and the API alike: an
//! elder or an alert outside the reader's scope is "not found" (whether or
//! not it exists), one they may see but not act on is "forbidden". The
//! rules themselves are the domain's ([`anxin_domain::access`]); this
//! room applies them to what the store returns.

use anxin_domain::access::{Placed, Principal, Region, Role};
use anxin_domain::visits::{Month, VisitRate};
use anxin_store::{AlertRecord, Elder, Store, StoreError};

use crate::error::AppError;
use crate::state::AppState;

/// The elder, if the reader may see them; 404 otherwise.
pub async fn visible_elder(store: &Store, who: &Principal, id: i64) -> Result<Elder, AppError> {
    visible_elder_for(store, who, id).await?.ok_or_else(|| AppError::not_found(format!("there is no elder {id}")))
}

/// The elder, if they exist and `who` may see them.
pub async fn visible_elder_for(store: &Store, who: &Principal, id: i64) -> Result<Option<Elder>, StoreError> {
    Ok(store.elder(id).await?.filter(|elder| who.can_see_elder(&elder.place())))
}

/// Every elder `who` may see, in the store's order.
pub async fn visible_elders(store: &Store, who: &Principal) -> Result<Vec<Elder>, StoreError> {
    Ok(store.elders().await?.into_iter().filter(|elder| who.can_see_elder(&elder.place())).collect())
}

/// The alert, if the reader may see it; 404 otherwise.
pub async fn visible_alert(store: &Store, who: &Principal, id: i64) -> Result<AlertRecord, AppError> {
    match store.alert(id).await? {
        Some(alert) if who.can_see_elder(&alert.place()) => Ok(alert),
        _ => Err(AppError::not_found(format!("there is no alert {id}"))),
    }
}

/// …and 403 when they may see but not handle it.
pub async fn handleable_alert(store: &Store, who: &Principal, id: i64) -> Result<AlertRecord, AppError> {
    let alert = visible_alert(store, who, id).await?;
    if !who.can_handle_alerts(&alert.place()) {
        return Err(AppError::forbidden(format!("the {} role cannot handle alerts", who.role.as_str())));
    }
    Ok(alert)
}

/// Who may reveal a whole ID number: those who keep the registry and those
/// who may need it in an emergency (oncall).
pub fn may_reveal(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Oncall)
}

/// The whole number behind `field` (`citizen_id` or `disability_cert`),
/// if the elder has one, and the audit action its reveal is written as;
/// `None` for any other field.
pub fn identifying_number(elder: Elder, field: &str) -> Option<(Option<String>, &'static str)> {
    match field {
        "citizen_id" => Some((elder.citizen_id, "citizen ID revealed")),
        "disability_cert" => Some((elder.disability_cert, "disability certificate number revealed")),
        _ => None,
    }
}

/// The visit rate of `month` over the elders `who` may see in `region`.
pub async fn visit_rate(
    state: &AppState,
    who: &Principal,
    month: Month,
    region: Option<&Region>,
) -> Result<VisitRate, StoreError> {
    let elders = state.store.month_elders(month, state.policy.utc_offset).await?;
    let seen = elders.into_iter().filter(|e| who.can_see_elder(&e.place()));
    Ok(VisitRate::of(month, state.today(), seen, region))
}
