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

/// The counties of the reader's regions, each once.
pub fn own_counties(who: &Principal) -> Vec<String> {
    let mut counties: Vec<String> = who.regions.iter().map(|r| r.county.clone()).collect();
    counties.sort();
    counties.dedup();
    counties
}

/// The duty roster's shifts overlapping `from..to` that `who` may see: the
/// registry all of them, on-call staff their counties'.
pub async fn roster_shifts(
    store: &Store,
    who: &Principal,
    from: i64,
    to: i64,
) -> Result<Vec<anxin_store::DutyShift>, StoreError> {
    if who.role == Role::Admin {
        return store.duty_shifts(None, from, to).await;
    }
    let mut shifts = Vec::new();
    for county in own_counties(who) {
        if who.can_see_roster(&county) {
            shifts.extend(store.duty_shifts(Some(&county), from, to).await?);
        }
    }
    shifts.sort_by_key(|shift| (shift.starts_at, shift.id));
    Ok(shifts)
}

/// Who is on call at `now` in the counties `who` handles: `(county, person,
/// phone)`, for the board and the handover.
pub async fn on_call_now(
    store: &Store,
    who: &Principal,
    now: i64,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut counties: Vec<String> = match who.role {
        Role::Admin => roster_shifts(store, who, now, now + 1).await?.into_iter().map(|s| s.county).collect(),
        _ => own_counties(who).into_iter().filter(|county| who.can_see_roster(county)).collect(),
    };
    counties.sort();
    counties.dedup();
    let mut on_call = Vec::new();
    for county in counties {
        if let Some(shift) = store.on_duty(&county, now).await? {
            on_call.push((county, shift.person, shift.phone));
        }
    }
    Ok(on_call)
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

/// During a heightened watch each elder of the region is due a visit by a
/// person (home, phone, video or other) every this many days.
pub const HEIGHTENED_VISIT_EVERY_DAYS: i64 = 3;

/// An elder due a visit by a person under a heightened watch.
#[derive(Debug)]
pub struct DueVisit {
    pub elder_id: i64,
    pub name: String,
    pub place: String,
    /// The last visit by a person, `YYYY-MM-DD`; empty if none.
    pub last_contact: String,
    /// The watch's reason.
    pub reason: String,
}

/// The elders `who` may see, in the programme, in regions under a heightened
/// watch now, with no visit by a person since the watch began or in the
/// last [`HEIGHTENED_VISIT_EVERY_DAYS`] days: the rate page's due list, and
/// a visitor's own on their page.
pub async fn heightened_due(
    state: &AppState,
    who: &Principal,
    today: chrono::NaiveDate,
) -> Result<Vec<DueVisit>, StoreError> {
    let now = state.now();
    let watches: Vec<_> =
        state.store.heightened_watches(now).await?.into_iter().filter(|w| w.starts_at <= now).collect();
    if watches.is_empty() {
        return Ok(Vec::new());
    }
    let offset = state.policy.utc_offset;
    let contacts = state.store.last_contacts(&today.format("%Y-%m-%d").to_string()).await?;
    let mut due = Vec::new();
    for elder in visible_elders(&state.store, who).await?.into_iter().filter(|e| e.left_on.is_none()) {
        let Some(watch) = watches.iter().find(|w| {
            w.county == elder.county
                && w.township.as_deref().is_none_or(|t| t == elder.township)
                && w.village.as_deref().is_none_or(|v| v == elder.village)
        }) else {
            continue;
        };
        let watch_day = anxin_domain::time::local_day(watch.starts_at, offset);
        let window_start =
            watch_day.max(today - chrono::Days::new(u64::try_from(HEIGHTENED_VISIT_EVERY_DAYS - 1).unwrap_or(0)));
        let last = contacts.get(&elder.id);
        let fresh =
            last.and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).is_some_and(|d| d >= window_start);
        if !fresh {
            due.push(DueVisit {
                elder_id: elder.id,
                name: elder.name.clone(),
                place: format!("{} {} {}", elder.county, elder.township, elder.village),
                last_contact: last.cloned().unwrap_or_default(),
                reason: watch.reason.clone(),
            });
        }
    }
    Ok(due)
}
