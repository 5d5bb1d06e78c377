//! Registry basics (admin): create and edit elders with the fields of the
//! record form's part 1, provision and revoke devices on the broker, pair
//! an unclaimed device, assign a visitor, record an elder's exit from the
//! programme and their re-entry.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::alerts::Category;
use anxin_domain::enrolment::{EnrolmentError, Exit, ExitReason, check_reentry};
use anxin_domain::identity::IdentityKind;
use anxin_domain::registry::{CertificateError, CitizenId, ElderForm, RegistryError};
use anxin_domain::time::local_day;
use anxin_store::{Elder, NewIdentity, PairRefusal, Store, StoreError};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::{Chrome, html, local_time};

fn may_edit(viewer: &Viewer) -> Result<(), AppError> {
    if viewer.principal.can_edit_registry() { Ok(()) } else { Err(AppError::Forbidden(None)) }
}

/// The form as typed (a browser sends every field as text).
#[derive(Debug, Default, Deserialize)]
pub(super) struct ElderFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    county: String,
    #[serde(default)]
    township: String,
    #[serde(default)]
    village: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    emergency_contact: String,
    #[serde(default)]
    emergency_phone: String,
    /// One field per ticked category, all named `categories`.
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    citizen_id: String,
    #[serde(default)]
    disability_cert: String,
    /// `yes` or `no`.
    #[serde(default)]
    lives_at_registered: String,
    #[serde(default)]
    inactivity_hours: String,
    /// For 留守: the date the children left, `YYYY-MM-DD`.
    #[serde(default)]
    left_behind_since: String,
}

impl ElderFields {
    fn of(elder: &Elder) -> ElderFields {
        ElderFields {
            name: elder.name.clone(),
            county: elder.county.clone(),
            township: elder.township.clone(),
            village: elder.village.clone(),
            address: elder.address.clone(),
            phone: elder.phone.clone().unwrap_or_default(),
            emergency_contact: elder.emergency_contact.clone().unwrap_or_default(),
            emergency_phone: elder.emergency_phone.clone().unwrap_or_default(),
            categories: elder.categories.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
            // Identifying numbers are not put back on screen: left empty, they stay as they are.
            citizen_id: String::new(),
            disability_cert: String::new(),
            lives_at_registered: if elder.lives_at_registered { "yes" } else { "no" }.into(),
            inactivity_hours: elder.inactivity_hours.map(|h| h.to_string()).unwrap_or_default(),
            left_behind_since: elder.left_behind_since.clone().unwrap_or_default(),
        }
    }

    fn check(&self, lang: Lang, today: chrono::NaiveDate) -> Result<anxin_domain::registry::NewElder, String> {
        let inactivity_hours = match self.inactivity_hours.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| lang.t("registry.bad_hours").to_string())?),
        };
        let categories = self.categories.join(",");
        ElderForm {
            name: &self.name,
            county: &self.county,
            township: &self.township,
            village: &self.village,
            address: &self.address,
            phone: Some(&self.phone),
            emergency_contact: Some(&self.emergency_contact),
            emergency_phone: Some(&self.emergency_phone),
            categories: Some(&categories),
            inactivity_hours,
            citizen_id: Some(&self.citizen_id),
            disability_cert: Some(&self.disability_cert),
            lives_at_registered: Some(self.lives_at_registered != "no"),
            left_behind_since: Some(&self.left_behind_since),
        }
        .check_on(today)
        .map_err(|error| registry_error(&error, lang))
    }

    fn has(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
}

/// Why `new` cannot be saved if another elder than `this_one` holds its
/// citizen ID, in the reader's language.
async fn taken(
    store: &Store,
    new: &anxin_domain::registry::NewElder,
    this_one: Option<i64>,
    lang: Lang,
) -> Result<Option<String>, StoreError> {
    let Some(citizen_id) = new.citizen_id.as_ref().map(CitizenId::as_str) else { return Ok(None) };
    Ok(store
        .citizen_id_holder(citizen_id)
        .await?
        .filter(|holder| Some(*holder) != this_one)
        .map(|holder| lang.t("registry.citizen_id_taken").replace("{id}", &holder.to_string())))
}

/// The reason, in the reader's language, naming the field.
fn registry_error(error: &RegistryError, lang: Lang) -> String {
    let field = |name: &str| lang.t(&format!("field.{}", name.replace(' ', "_")));
    match error {
        RegistryError::Missing(name) => lang.t("registry.missing").replace("{field}", field(name)),
        RegistryError::TooLong { field: name, max } => {
            lang.t("registry.too_long").replace("{field}", field(name)).replace("{max}", &max.to_string())
        }
        RegistryError::BadPhone { field: name, value } => {
            lang.t("registry.bad_phone").replace("{field}", field(name)).replace("{value}", value)
        }
        RegistryError::BadThreshold(_) => lang.t("registry.bad_hours").to_string(),
        RegistryError::BadCategory(value) => lang.t("registry.bad_category").replace("{value}", value),
        // The precise reason (length, check digit, birth date) stays as the
        // checker words it, after the translated field name.
        RegistryError::BadCitizenId(reason) => format!("{}: {reason}", field("citizen_id")),
        RegistryError::TooYoung(birth) => lang.t("registry.too_young").replace("{birth}", birth),
        RegistryError::BadCertificate(CertificateError::NotSevere(grade)) => {
            lang.t("registry.cert_not_severe").replace("{grade}", &grade.to_string())
        }
        RegistryError::BadCertificate(CertificateError::NotTheElders) => lang.t("registry.cert_not_the_elders").into(),
        RegistryError::BadCertificate(CertificateError::Shape | CertificateError::BadCitizenId(_)) => {
            lang.t("registry.cert_shape").into()
        }
        RegistryError::NoCategory => lang.t("registry.no_category").into(),
        RegistryError::LeftBehindSince => lang.t("registry.left_behind_since").into(),
        RegistryError::LeftBehindInFuture(day) => {
            lang.t("registry.left_behind_future").replace("{date}", &day.to_string())
        }
    }
}

#[derive(Template)]
#[template(path = "elder_form.html")]
struct ElderFormPage {
    c: Chrome,
    /// `None`: a new elder.
    id: Option<i64>,
    f: ElderFields,
    /// On an edit: the numbers on record, masked, shown as placeholders.
    masked_citizen_id: String,
    masked_disability_cert: String,
    categories: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

fn form_page(viewer: &Viewer, id: Option<i64>, f: ElderFields, error: Option<String>) -> Response {
    form_page_with(viewer, id, f, None, error)
}

fn form_page_with(
    viewer: &Viewer,
    id: Option<i64>,
    f: ElderFields,
    on_record: Option<&Elder>,
    error: Option<String>,
) -> Response {
    let masked = |value: Option<&String>| value.map(|v| anxin_domain::registry::mask(v)).unwrap_or_default();
    let lang = viewer.lang;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = ElderFormPage {
        c: viewer.chrome(if id.is_some() { "registry.edit_title" } else { "registry.new_title" }),
        id,
        f,
        masked_citizen_id: masked(on_record.and_then(|e| e.citizen_id.as_ref())),
        masked_disability_cert: masked(on_record.and_then(|e| e.disability_cert.as_ref())),
        categories: Category::ALL.iter().map(|c| (c.as_str(), lang.t(&format!("category.{}", c.as_str())))).collect(),
        error,
    };
    (status, html(&page)).into_response()
}

pub(super) async fn new_form(viewer: Viewer) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let fields = ElderFields { lives_at_registered: "yes".into(), ..Default::default() };
    Ok(form_page(&viewer, None, fields, None))
}

pub(super) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let fields = collect(fields);
    let new = match fields.check(viewer.lang, state.today()) {
        Ok(new) => new,
        Err(reason) => return Ok(form_page(&viewer, None, fields, Some(reason))),
    };
    let now = state.now();
    if let Some(reason) = taken(&state.store, &new, None, viewer.lang).await? {
        return Ok(form_page(&viewer, None, fields, Some(reason)));
    }
    let elder = state.store.add_elder(&new, now).await?;
    state.store.audit(now, &viewer.principal.name, "elder registered", Some(elder.id), None).await?;
    Ok(Redirect::to(&format!("/elders/{}", elder.id)).into_response())
}

/// A form's fields, where `categories` comes once per ticked box.
fn collect(pairs: Vec<(String, String)>) -> ElderFields {
    let mut f = ElderFields::default();
    for (key, value) in pairs {
        match key.as_str() {
            "name" => f.name = value,
            "county" => f.county = value,
            "township" => f.township = value,
            "village" => f.village = value,
            "address" => f.address = value,
            "phone" => f.phone = value,
            "emergency_contact" => f.emergency_contact = value,
            "emergency_phone" => f.emergency_phone = value,
            "categories" => f.categories.push(value),
            "citizen_id" => f.citizen_id = value,
            "disability_cert" => f.disability_cert = value,
            "lives_at_registered" => f.lives_at_registered = value,
            "inactivity_hours" => f.inactivity_hours = value,
            "left_behind_since" => f.left_behind_since = value,
            _ => {}
        }
    }
    f
}

pub(super) async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let elder = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    state.store.audit(state.now(), &viewer.principal.name, "elder record opened for editing", Some(id), None).await?;
    Ok(form_page_with(&viewer, Some(id), ElderFields::of(&elder), Some(&elder), None))
}

pub(super) async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let on_record = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    let mut fields = collect(fields);
    let typed = (fields.citizen_id.clone(), fields.disability_cert.clone());
    // Left empty: the numbers on record stay.
    if fields.citizen_id.trim().is_empty() {
        fields.citizen_id = on_record.citizen_id.clone().unwrap_or_default();
    }
    if fields.disability_cert.trim().is_empty() {
        fields.disability_cert = on_record.disability_cert.clone().unwrap_or_default();
    }
    let new = match fields.check(viewer.lang, state.today()) {
        Ok(new) => new,
        Err(reason) => {
            (fields.citizen_id, fields.disability_cert) = typed;
            return Ok(form_page_with(&viewer, Some(id), fields, Some(&on_record), Some(reason)));
        }
    };
    if let Some(reason) = taken(&state.store, &new, Some(id), viewer.lang).await? {
        (fields.citizen_id, fields.disability_cert) = typed;
        return Ok(form_page_with(&viewer, Some(id), fields, Some(&on_record), Some(reason)));
    }
    state.store.update_elder(id, &new, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct AssignForm {
    visitor: String,
}

pub(super) async fn assign(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<AssignForm>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    match state.store.assign_visitor(id, &form.visitor, &viewer.principal.name, state.now()).await {
        Ok(()) => Ok(Redirect::to(&format!("/elders/{id}")).into_response()),
        Err(StoreError::NotFound(_) | StoreError::Invalid(_)) => {
            Err(AppError::Invalid(viewer.lang.t("registry.not_a_visitor").replace("{name}", form.visitor.trim())))
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ExitFields {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    on: String,
}

fn enrolment_error(lang: Lang, error: &EnrolmentError) -> AppError {
    let date = error.date().map(|d| d.to_string()).unwrap_or_default();
    AppError::Invalid(lang.t(error.key()).replace("{date}", &date))
}

fn form_date(lang: Lang, text: &str) -> Result<chrono::NaiveDate, AppError> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::Invalid(lang.t("enrolment.bad_date").into()))
}

/// Records that an elder left the programme: checked here in the reader's
/// language, then by the store in the transaction that releases the
/// home's devices and resolves its alerts.
pub(super) async fn leave(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<ExitFields>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let lang = viewer.lang;
    let elder = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    let reason =
        ExitReason::parse(&form.reason).ok_or_else(|| AppError::Invalid(lang.t("enrolment.bad_reason").into()))?;
    let exit = Exit { reason, on: form_date(lang, &form.on)? };
    let offset = state.policy.utc_offset;
    if let Some(left_on) = elder.left_on_date() {
        return Err(enrolment_error(lang, &EnrolmentError::AlreadyLeft(left_on)));
    }
    let enrolled_at = state.store.enrolments(id).await?.last().map_or(elder.created_at, |p| p.enrolled_at);
    exit.check(local_day(enrolled_at, offset), state.today()).map_err(|e| enrolment_error(lang, &e))?;
    state.store.record_exit(id, exit, &viewer.principal.name, state.now(), offset).await?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}

/// Brings back an elder who left: a new period begins.
pub(super) async fn reenter(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<ExitFields>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let lang = viewer.lang;
    let elder = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    let day = form_date(lang, &form.on)?;
    let left_on = elder.left_on_date().ok_or_else(|| enrolment_error(lang, &EnrolmentError::NotLeft))?;
    check_reentry(day, left_on, state.today()).map_err(|e| enrolment_error(lang, &e))?;
    state.store.reenter(id, day, &viewer.principal.name, state.now(), state.policy.utc_offset).await?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}

#[derive(Debug)]
struct UnclaimedDevice {
    device_id: String,
    first_seen: String,
    last_seen: String,
    state: &'static str,
}

/// A device on the broker, as the admin sees it (never its secret).
struct BrokerDevice {
    device_id: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    c: Chrome,
    devices: Vec<UnclaimedDevice>,
    elders: Vec<(i64, String)>,
    provisioned: Vec<BrokerDevice>,
}

#[derive(Template)]
#[template(path = "devices_provisioned.html")]
struct ProvisionedPage {
    c: Chrome,
    /// (device id, secret): shown on this page only.
    secrets: Vec<(String, String)>,
}

/// Devices heard from and not yet paired, with the pairing form.
pub(super) async fn devices(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let offset = state.policy.utc_offset;
    let lang = viewer.lang;
    let devices = state
        .store
        .devices(true)
        .await?
        .into_iter()
        .map(|d| UnclaimedDevice {
            first_seen: local_time(d.first_seen, offset),
            last_seen: local_time(d.last_seen, offset),
            state: lang.t(if d.online { "device.online" } else { "device.offline" }),
            device_id: d.device_id,
        })
        .collect();
    let elders = state
        .store
        .elders()
        .await?
        .into_iter()
        .map(|e| (e.id, format!("{} — {} {}", e.name, e.township, e.village)))
        .collect();
    let provisioned = state
        .store
        .broker_identities(Some(IdentityKind::Device))
        .await?
        .into_iter()
        .map(|identity| BrokerDevice {
            created: local_time(identity.created_at, offset),
            revoked: identity.revoked_at.map(|at| local_time(at, offset)),
            device_id: identity.name,
        })
        .collect();
    Ok(html(&DevicesPage { c: viewer.chrome("devices.title"), devices, elders, provisioned }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ProvisionForm {
    /// Device ids, separated by spaces, commas or lines.
    device_ids: String,
}

/// Creates devices on the broker with new secrets, shown once on the page
/// that answers (never stored, never logged).
pub(super) async fn provision(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ProvisionForm>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let names: Vec<String> = form
        .device_ids
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() || names.len() > MAX_PROVISIONED_AT_ONCE {
        return Err(AppError::Invalid(
            viewer.lang.t("devices.provision_count").replace("{max}", &MAX_PROVISIONED_AT_ONCE.to_string()),
        ));
    }
    // Hashing is CPU work: off the runtime that serves everyone else.
    let issued = tokio::task::spawn_blocking(move || NewIdentity::issue(IdentityKind::Device, &names, &[], None))
        .await
        .map_err(|_| AppError::Unavailable)?;
    let (identities, secrets) = issued.map_err(|error| AppError::Invalid(error.to_string()))?;
    state.store.create_identities(&identities, &viewer.principal.name, state.now()).await?;
    Ok(html(&ProvisionedPage { c: viewer.chrome("devices.provisioned"), secrets: secrets.into_iter().collect() }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ImportForm {
    /// A vendor's list as pasted: CSV `device_id,secret` lines or provision's JSON.
    list: String,
}

/// Takes a vendor's devices and secrets (whole, or nothing with the line at
/// fault), stores only the hashes, and goes back to the devices page.
pub(super) async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ImportForm>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    let credentials = anxin_domain::identity::parse_credentials(&form.list).map_err(AppError::Invalid)?;
    let identities = tokio::task::spawn_blocking(move || {
        credentials
            .into_iter()
            .map(|(name, secret)| NewIdentity {
                secret_hash: anxin_domain::identity::hash_secret(&secret),
                name,
                kind: IdentityKind::Device,
                rate_per_s: None,
                devices: Vec::new(),
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| AppError::Unavailable)?;
    state.store.create_identities(&identities, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/devices").into_response())
}

/// At most this many devices provisioned from one form (a carton's labels).
const MAX_PROVISIONED_AT_ONCE: usize = 500;

/// Revokes a device on the broker.
pub(super) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(device_id): Path<String>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    state.store.revoke_identity(&device_id, IdentityKind::Device, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/devices").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct PairForm {
    elder_id: i64,
}

pub(super) async fn pair(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(device_id): Path<String>,
    Form(form): Form<PairForm>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    match state.store.pair_unclaimed(&device_id, form.elder_id, &viewer.principal.name, state.now()).await {
        Ok(()) => Ok(Redirect::to(&format!("/elders/{}", form.elder_id)).into_response()),
        Err(PairRefusal::NoDevice(_) | PairRefusal::NoElder(_)) => Err(AppError::NotFound(None)),
        Err(PairRefusal::AlreadyPaired(_)) => {
            Err(AppError::Invalid(viewer.lang.t("devices.already_paired").replace("{device}", &device_id)))
        }
        Err(PairRefusal::Store(error)) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct HomeLocationForm {
    /// `latitude,longitude` (WGS 84, as a map app copies it); empty clears it.
    #[serde(default)]
    at: String,
}

/// Sets the home's recorded location: a visit's location is shown to
/// officials as its distance from here. The registry's to keep.
pub(super) async fn set_home_location(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<HomeLocationForm>,
) -> Result<Response, AppError> {
    may_edit(&viewer)?;
    crate::scope::visible_elder(&state.store, &viewer.principal, id).await?;
    let text = form.at.trim();
    let location = if text.is_empty() {
        None
    } else {
        let (latitude, longitude) = text.split_once([',', '，', ' ']).unwrap_or((text, ""));
        anxin_domain::evidence::Location::parse(latitude, longitude, "")
            .ok()
            .flatten()
            .map(Some)
            .ok_or_else(|| AppError::Invalid(viewer.lang.t("evidence.bad_home_location").to_string()))?
    };
    state.store.set_home_location(id, location, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}
