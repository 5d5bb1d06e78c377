//! The record form's parts 5 and 6 in the console: recording a visit with
//! the form's own judgements, referring a need it found (需求转介) and
//! tracking it to done, recording care services, and the whole record form
//! of an elder as one printable page set (annex 1, kept on paper 一式两份).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::evidence::{Evidence, EvidenceError};
use anxin_domain::registry::RegistryError;

use anxin_domain::access::{Placed, Principal};
use anxin_domain::ledger::{ElderDetails, HelpOrg, format_yuan};
use anxin_domain::visits::{
    Assessment, Change, HouseholdChange, Illness, NewVisit, Safety, Satisfaction, Service, VisitError, VisitMode,
};
use anxin_store::{Elder, Store, StoreError, VisitRecord};

use anxin_domain::alerts::explanation::{Explanation, Sentence};
use anxin_domain::alerts::rules::when;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::scope::{may_reveal, visible_elder, visible_elder_for};
use crate::state::AppState;
use crate::views::records::choice;
use crate::web::{Chrome, html};

/// The elder, if the reader may see them and record visits for them.
async fn recordable_elder(store: &Store, who: &Principal, id: i64) -> Result<Elder, AppError> {
    let elder = visible_elder(store, who, id).await?;
    if who.can_record_visits(&elder.place()) { Ok(elder) } else { Err(AppError::Forbidden(None)) }
}

#[derive(Debug, Deserialize)]
pub(super) struct AwayForm {
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
}

/// Marks an elder away (hospital, with family) until the end of a day:
/// alerts other than smoke and help pause. Whoever records the elder's
/// visits may.
pub(super) async fn mark_away(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<AwayForm>,
) -> Result<Response, AppError> {
    recordable_elder(&state.store, &viewer.principal, id).await?;
    let lang = viewer.lang;
    let last_day = chrono::NaiveDate::parse_from_str(form.until.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::Invalid(lang.t("enrolment.bad_date").into()))?;
    if last_day < state.today() {
        return Err(AppError::Invalid(lang.t("elder.away_in_past").into()));
    }
    let offset = state.policy.utc_offset;
    let ends_at = anxin_domain::time::day_start_ms(last_day + chrono::Days::new(1), offset);
    if form.reason.trim().is_empty() {
        return Err(AppError::Invalid(lang.t("elder.away_reason_needed").into()));
    }
    state.store.mark_away(id, ends_at, &form.reason, &viewer.principal.name, state.now()).await.map_err(|error| {
        match error {
            StoreError::Invalid(reason) => AppError::Invalid(reason),
            other => other.into(),
        }
    })?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}

/// The elder is back early: watched as usual from now.
pub(super) async fn mark_back(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    recordable_elder(&state.store, &viewer.principal, id).await?;
    state.store.end_absence(id, state.now()).await?;
    state.store.audit(state.now(), &viewer.principal.name, "elder back", Some(id), None).await?;
    Ok(Redirect::to(&format!("/elders/{id}")).into_response())
}

/// Adds a contact to an elder's call list, with how they agreed to be
/// called. Whoever records the elder's visits may.
pub(super) async fn add_contact(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    use anxin_domain::responders::{ContactError, ContactForm, Relation};
    recordable_elder(&state.store, &viewer.principal, id).await?;
    let lang = viewer.lang;
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let kinds = pairs
        .iter()
        .filter(|(k, _)| k == "kinds")
        .filter_map(|(_, v)| anxin_domain::alerts::AlertKind::parse(v))
        .collect();
    let form = ContactForm {
        name: get("name").unwrap_or_default(),
        relation: get("relation").and_then(Relation::parse),
        phone: get("phone").unwrap_or_default(),
        from: get("from"),
        to: get("to"),
        kinds,
        consent: get("consent"),
    };
    let (contact, consent) = form.check().map_err(|error| {
        AppError::Invalid(match error {
            ContactError::NoConsent => lang.t("contact.consent_needed").to_string(),
            ContactError::Hours => lang.t("contact.bad_hours").to_string(),
            ContactError::Registry(RegistryError::BadPhone { value, .. }) => {
                lang.t("registry.bad_phone").replace("{field}", lang.t("field.phone")).replace("{value}", &value)
            }
            ContactError::Registry(_) => lang.t("contact.name_relation_needed").to_string(),
        })
    })?;
    state.store.add_contact(id, &contact, &consent, &viewer.principal.name, state.now()).await.map_err(|error| {
        match error {
            StoreError::Invalid(reason) => AppError::Invalid(reason),
            other => other.into(),
        }
    })?;
    Ok(Redirect::to(&format!("/elders/{id}#contacts")).into_response())
}

/// Removes a contact from, or moves one up, an elder's call list.
pub(super) async fn change_contact(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, contact, action)): Path<(i64, i64, String)>,
) -> Result<Response, AppError> {
    recordable_elder(&state.store, &viewer.principal, id).await?;
    let (by, now) = (&viewer.principal.name, state.now());
    let done = match action.as_str() {
        "remove" => state.store.remove_contact(id, contact, by, now).await,
        "up" => state.store.move_contact_up(id, contact, by, now).await,
        _ => return Err(AppError::NotFound(None)),
    };
    done.map_err(|error| match error {
        StoreError::NotFound(_) => AppError::NotFound(None),
        other => other.into(),
    })?;
    Ok(Redirect::to(&format!("/elders/{id}#contacts")).into_response())
}

/// One judgement of part 5 as radio buttons.
#[derive(Debug)]
pub(crate) struct Judgement {
    pub field: &'static str,
    pub label: &'static str,
    pub options: Vec<(&'static str, &'static str)>,
    pub chosen: String,
}

/// A group of judgements under one heading of part 5 (健康状况, 安全情况, …).
#[derive(Debug)]
pub(crate) struct JudgementGroup {
    pub heading: &'static str,
    pub judgements: Vec<Judgement>,
}

macro_rules! options {
    ($lang:expr, $kind:ty) => {
        <$kind>::ALL.iter().map(|c| (c.code(), choice($lang, c.code(), c.label()))).collect::<Vec<_>>()
    };
}

fn groups(lang: Lang, fields: &std::collections::HashMap<String, String>) -> Vec<JudgementGroup> {
    let judgement = |field: &'static str, options: Vec<(&'static str, &'static str)>| Judgement {
        field,
        label: lang.t(&format!("visit.{field}")),
        options,
        chosen: fields.get(field).cloned().unwrap_or_default(),
    };
    vec![
        JudgementGroup {
            heading: lang.t("visit.group_household"),
            judgements: vec![judgement("household", options!(lang, HouseholdChange))],
        },
        JudgementGroup {
            heading: lang.t("visit.group_health"),
            judgements: vec![
                judgement("speech", options!(lang, Change)),
                judgement("mobility", options!(lang, Change)),
                judgement("illness", options!(lang, Illness)),
            ],
        },
        JudgementGroup {
            heading: lang.t("visit.group_mind"),
            judgements: vec![judgement("mood", options!(lang, Change))],
        },
        JudgementGroup {
            heading: lang.t("visit.group_safety"),
            judgements: vec![
                judgement("gas", options!(lang, Safety)),
                judgement("water_heating", options!(lang, Safety)),
                judgement("electricity", options!(lang, Safety)),
                judgement("fire", options!(lang, Safety)),
            ],
        },
        JudgementGroup {
            heading: lang.t("visit.group_hygiene"),
            judgements: vec![
                judgement("personal_hygiene", options!(lang, Change)),
                judgement("home_hygiene", options!(lang, Change)),
            ],
        },
        JudgementGroup {
            heading: lang.t("visit.group_environment"),
            judgements: vec![judgement("indoor", options!(lang, Change))],
        },
    ]
}

#[derive(Template)]
#[template(path = "visit_form.html")]
struct VisitFormPage {
    c: Chrome,
    elder_id: i64,
    elder_name: String,
    modes: Vec<(&'static str, &'static str)>,
    groups: Vec<JudgementGroup>,
    f: std::collections::HashMap<String, String>,
    error: Option<String>,
    /// The deployment's offset from UTC, minutes: the phone reckons the
    /// visit's day and times by it, whatever its own time zone.
    offset_minutes: i32,
    /// What is kept of the evidence, for whom, and how long (the
    /// deployment's retention).
    consent_text: String,
}

impl VisitFormPage {
    fn value(&self, field: &str) -> &str {
        self.f.get(field).map_or("", String::as_str)
    }

    /// Whether any of the plan's other contents was typed: the fold opens.
    fn has_emergency(&self) -> bool {
        !self.value("emergency").trim().is_empty()
    }

    fn has_plan(&self) -> bool {
        ["livelihood", "family_contact", "production_help", "other_situation", "smoking", "high_power_appliances"]
            .iter()
            .any(|field| !self.value(field).trim().is_empty())
    }
}

fn visit_form(
    viewer: &Viewer,
    elder: &Elder,
    state: &AppState,
    fields: std::collections::HashMap<String, String>,
    error: Option<String>,
) -> Response {
    let lang = viewer.lang;
    let kept = match state.evidence_days {
        0 => lang.t("evidence.kept_with_record").to_string(),
        days => lang.t("evidence.kept_days").replace("{days}", &days.to_string()),
    };
    let page = VisitFormPage {
        c: viewer.chrome("visit.new_title"),
        elder_id: elder.id,
        elder_name: elder.name.clone(),
        modes: VisitMode::ALL
            .iter()
            .filter(|mode| **mode != VisitMode::Remote)
            .map(|m| (m.code(), choice(lang, m.code(), m.label())))
            .collect(),
        groups: groups(lang, &fields),
        f: fields,
        error,
        offset_minutes: state.policy.utc_offset.local_minus_utc() / 60,
        consent_text: lang.t("evidence.consent_text").replace("{kept}", &kept),
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (status, html(&page)).into_response()
}

pub(super) async fn new_visit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let elder = recordable_elder(&state.store, &viewer.principal, id).await?;
    let fields = [
        ("day".to_string(), state.today().format("%Y-%m-%d").to_string()),
        ("mode".to_string(), "home".to_string()),
        ("started".to_string(), crate::web::local_clock(state.now(), state.policy.utc_offset)),
        ("visitor".to_string(), viewer.principal.name.clone()),
        // The visit's own id: submitted twice (a double tap, a resend), it is recorded once.
        ("client_id".to_string(), anxin_domain::responders::link::nonce()),
    ]
    .into();
    Ok(visit_form(&viewer, &elder, &state, fields, None))
}

/// Reads the typed form into a visit; the reason in the reader's language.
fn read_visit(
    elder_id: i64,
    f: &std::collections::HashMap<String, String>,
    lang: Lang,
    today: chrono::NaiveDate,
) -> Result<NewVisit, String> {
    let get = |key: &str| f.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let bad = |key: &str| lang.t("visit.bad_choice").replace("{field}", lang.t(&format!("visit.{key}")));
    macro_rules! pick {
        ($key:literal, $kind:ty) => {
            match get($key) {
                None => None,
                Some(code) => Some(<$kind>::parse(code).ok_or_else(|| bad($key))?),
            }
        };
    }
    let day = get("day")
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| lang.t("visit.bad_day").to_string())?;
    let mode = pick!("mode", VisitMode).ok_or_else(|| bad("mode"))?;
    let started = match get("started") {
        None => None,
        Some(text) => Some(
            chrono::NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| lang.t("visit.start_time_needed").to_string())?,
        ),
    };
    let household_delta = match get("household_delta") {
        None => None,
        Some(n) => Some(n.parse::<i64>().map_err(|_| lang.t("visit.bad_delta").to_string())?),
    };
    let assessment = Assessment {
        household: pick!("household", HouseholdChange),
        household_delta,
        speech: pick!("speech", Change),
        mobility: pick!("mobility", Change),
        illness: pick!("illness", Illness),
        illness_name: get("illness_name").map(str::to_string),
        mood: pick!("mood", Change),
        gas: pick!("gas", Safety),
        water_heating: pick!("water_heating", Safety),
        electricity: pick!("electricity", Safety),
        fire: pick!("fire", Safety),
        personal_hygiene: pick!("personal_hygiene", Change),
        home_hygiene: pick!("home_hygiene", Change),
        indoor: pick!("indoor", Change),
        livelihood: get("livelihood").map(str::to_string),
        family_contact: get("family_contact").map(str::to_string),
        production_help: get("production_help").map(str::to_string),
        other_situation: get("other_situation").map(str::to_string),
        smoking: get("smoking").is_some(),
        high_power_appliances: get("high_power_appliances").is_some(),
    };
    NewVisit {
        elder_id,
        day,
        mode,
        started,
        visitor: get("visitor").unwrap_or_default().to_string(),
        assessment,
        needs: get("needs").map(str::to_string),
        suggestions: get("suggestions").map(str::to_string),
    }
    .check(today)
    .map_err(|error| visit_error(&error, lang))
}

/// Reads what the phone recorded beside the form: the end time, the two
/// signatures and — only where its consent box is ticked — the location
/// and the photo (without consent they are not kept, whatever was sent).
fn read_evidence(
    f: &std::collections::HashMap<String, String>,
    started: Option<chrono::NaiveTime>,
    lang: Lang,
) -> Result<Evidence, String> {
    use anxin_domain::evidence::{ElderMark, Location, Signature};
    let get = |key: &str| f.get(key).map_or("", |v| v.trim());
    let consented = |key: &str| !get(key).is_empty();
    let ended = match get("ended") {
        "" => None,
        text => {
            Some(chrono::NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| lang.t("evidence.bad_end").to_string())?)
        }
    };
    let signature = |key: &str| Signature::parse(get(key)).map_err(|e| evidence_error(&e, lang));
    let location = if consented("consent_location") {
        Location::parse(get("latitude"), get("longitude"), get("accuracy")).map_err(|e| evidence_error(&e, lang))?
    } else {
        None
    };
    let photo = if consented("consent_photo") {
        crate::photo::from_form(get("photo")).map_err(|e| match e {
            crate::photo::PhotoError::TooLarge => lang.t("evidence.photo_too_large").to_string(),
            crate::photo::PhotoError::NotAnImage => lang.t("evidence.photo_not_image").to_string(),
        })?
    } else {
        None
    };
    Evidence {
        ended,
        elder_signature: signature("elder_signature")?,
        elder_mark: ElderMark::parse(get("elder_mark")).ok_or_else(|| lang.t("evidence.bad_signature").to_string())?,
        visitor_signature: signature("visitor_signature")?,
        location,
        photo,
    }
    .check(started)
    .map_err(|e| evidence_error(&e, lang))
}

fn evidence_error(error: &EvidenceError, lang: Lang) -> String {
    match error {
        EvidenceError::Signature | EvidenceError::SignatureTooLong => lang.t("evidence.bad_signature").to_string(),
        EvidenceError::Location => lang.t("evidence.bad_location").to_string(),
        EvidenceError::EndBeforeStart => lang.t("evidence.end_before_start").to_string(),
    }
}

fn visit_error(error: &VisitError, lang: Lang) -> String {
    match error {
        VisitError::RemoteByHand => lang.t("visit.remote_by_hand").to_string(),
        VisitError::FutureDay(day) => lang.t("visit.future_day").replace("{day}", &day.to_string()),
        VisitError::Missing(_) => lang.t("visit.missing_visitor").to_string(),
        VisitError::TooLong { max, .. } => lang.t("visit.too_long").replace("{max}", &max.to_string()),
        VisitError::HouseholdDelta => lang.t("visit.bad_delta").to_string(),
        VisitError::IllnessName => lang.t("visit.illness_name_needed").to_string(),
        VisitError::StartTime => lang.t("visit.start_time_needed").to_string(),
    }
}

pub(super) async fn record_visit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let elder = recordable_elder(&state.store, &viewer.principal, id).await?;
    let fields: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    let visit = match read_visit(id, &fields, viewer.lang, state.today()) {
        Ok(visit) => visit,
        Err(reason) => return Ok(visit_form(&viewer, &elder, &state, fields, Some(reason))),
    };
    // Judged by the visit's own date: made before the elder left, it stands.
    let day = visit.day.format("%Y-%m-%d").to_string();
    if let Some(left_on) = elder.left_on.as_ref().filter(|left_on| day > **left_on) {
        let reason = viewer.lang.t("visit.after_exit").replace("{left_on}", left_on).replace("{day}", &day);
        return Ok(visit_form(&viewer, &elder, &state, fields, Some(reason)));
    }
    let evidence = match read_evidence(&fields, visit.started, viewer.lang) {
        Ok(evidence) => evidence,
        Err(reason) => return Ok(visit_form(&viewer, &elder, &state, fields, Some(reason))),
    };
    // 紧急情况: what was found is required before anything is saved.
    let emergency = fields.get("emergency").is_some_and(|v| !v.trim().is_empty());
    let what = fields.get("emergency_what").map(|v| v.trim().to_string()).unwrap_or_default();
    if emergency && what.is_empty() {
        let reason = viewer.lang.t("visit.emergency_what_needed").to_string();
        return Ok(visit_form(&viewer, &elder, &state, fields, Some(reason)));
    }
    let client_id = match fields.get("client_id").map(String::as_str).filter(|id| !id.is_empty()) {
        None => None,
        Some(text) => match anxin_domain::visits::check_client_id(text) {
            Some(id) => Some(id.to_string()),
            None => {
                let reason = viewer.lang.t("visit.bad_client_id").to_string();
                return Ok(visit_form(&viewer, &elder, &state, fields, Some(reason)));
            }
        },
    };
    let now = state.now();
    let (recorded, new) = state
        .store
        .record_visit_with(
            &visit,
            &evidence,
            client_id.as_deref(),
            &viewer.principal.name,
            now,
            state.policy.utc_offset,
        )
        .await?;
    // The elder's page names the visit saved (and 补录 when its month is
    // closed): the phone's outbox reads it there.
    let saved = recorded.id;
    if !new {
        // Sent again: already recorded (with its emergency, if it had one).
        return Ok(Redirect::to(&format!("/elders/{id}?saved={saved}#visits")).into_response());
    }
    if emergency {
        let detail = Explanation::new(Sentence::VisitEmergency)
            .with("by", visit.visitor.as_str())
            .with("at", when(now, now, &state.policy));
        let remind_at = now + state.policy.escalate_after_ms;
        let alert = state
            .store
            .open_visit_emergency(id, Some(recorded.id), &what, &detail, &viewer.principal.name, now, remind_at)
            .await
            .map_err(|error| match error {
                anxin_store::AlertActionError::Invalid(reason) => AppError::Invalid(reason),
                other => AppError::from(other),
            })?;
        return Ok(Redirect::to(&format!("/elders/{id}?saved={saved}&emergency={}#alerts", alert.id)).into_response());
    }
    // A visit that found a problem opens the referral form for it.
    let target = if visit.assessment.finds_a_problem() {
        format!("/elders/{id}?saved={saved}&found={saved}#referrals")
    } else {
        format!("/elders/{id}?saved={saved}#visits")
    };
    Ok(Redirect::to(&target).into_response())
}

fn store_refusal(error: StoreError, lang: Lang) -> AppError {
    match error {
        StoreError::Invalid(reason) => AppError::Invalid(reason),
        StoreError::NotFound(_) => AppError::Invalid(lang.t("referral.bad_visit").to_string()),
        other => other.into(),
    }
}

pub(super) async fn raise_referral(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    recordable_elder(&state.store, &viewer.principal, id).await?;
    let fields: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    let lang = viewer.lang;
    let service = fields
        .get("service")
        .and_then(|s| Service::parse(s))
        .ok_or_else(|| AppError::Invalid(lang.t("referral.bad_service").to_string()))?;
    let visit_id = match fields.get("visit_id").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            Some(text.parse::<i64>().map_err(|_| AppError::Invalid(lang.t("referral.bad_visit").to_string()))?)
        }
    };
    let need = fields.get("need").map_or("", String::as_str);
    if need.trim().is_empty() {
        return Err(AppError::Invalid(lang.t("referral.need_required").to_string()));
    }
    state
        .store
        .raise_referral(id, visit_id, service, need, &viewer.principal.name, state.now())
        .await
        .map_err(|e| store_refusal(e, lang))?;
    Ok(Redirect::to(&format!("/elders/{id}#referrals")).into_response())
}

pub(super) async fn complete_referral(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(referral_id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let referral = state.store.referral(referral_id).await?.ok_or(AppError::NotFound(None))?;
    recordable_elder(&state.store, &viewer.principal, referral.elder_id).await?;
    let fields: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    let outcome = fields.get("outcome").map_or("", String::as_str);
    if outcome.trim().is_empty() {
        return Err(AppError::Invalid(viewer.lang.t("referral.outcome_required").to_string()));
    }
    state
        .store
        .complete_referral(referral_id, outcome, &viewer.principal.name, state.now())
        .await
        .map_err(|e| store_refusal(e, viewer.lang))?;
    Ok(Redirect::to(&format!("/elders/{}#referrals", referral.elder_id)).into_response())
}

pub(super) async fn record_service(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    recordable_elder(&state.store, &viewer.principal, id).await?;
    let lang = viewer.lang;
    let fields: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    let get = |key: &str| fields.get(key).map_or("", |v| v.trim());
    let day = chrono::NaiveDate::parse_from_str(get("day"), "%Y-%m-%d")
        .map_err(|_| AppError::Invalid(lang.t("visit.bad_day").to_string()))?;
    let satisfaction = match get("satisfaction") {
        "" => None,
        code => Some(
            Satisfaction::parse(code).ok_or_else(|| AppError::Invalid(lang.t("service.bad_satisfaction").into()))?,
        ),
    };
    if get("description").is_empty() || get("served_by").is_empty() {
        return Err(AppError::Invalid(lang.t("service.required").to_string()));
    }
    state
        .store
        .record_care_service(
            id,
            day,
            state.today(),
            get("description"),
            get("served_by"),
            satisfaction,
            &viewer.principal.name,
            state.now(),
        )
        .await
        .map_err(|e| store_refusal(e, lang))?;
    Ok(Redirect::to(&format!("/elders/{id}#services")).into_response())
}

/// A row of part 5: its group's heading and the rows it spans (on the
/// group's first row only), the item, the boxes, what is written beside them.
#[derive(Debug)]
struct PrintedRow {
    group: Option<(&'static str, usize)>,
    item: &'static str,
    boxes: Vec<(&'static str, bool)>,
    extra: String,
}

fn row(group: Option<(&'static str, usize)>, item: &'static str, boxes: Vec<(&'static str, bool)>) -> PrintedRow {
    PrintedRow { group, item, boxes, extra: String::new() }
}

/// One visit of part 5 on the printed form: every box, ticked or not.
#[derive(Debug)]
struct PrintedVisit {
    number: usize,
    day: String,
    modes: Vec<(&'static str, bool)>,
    household: Vec<(&'static str, bool)>,
    household_delta: String,
    rows: Vec<PrintedRow>,
    needs: String,
    /// The plan's other contents, printed in the needs box (annex 1's
    /// layout has no row of its own for them).
    plan: Vec<String>,
    suggestions: String,
    visitor: String,
    recorded_by: String,
    /// 探访人员(签字) and 被探访人(签字), drawn (SVG paths), the elder's a
    /// thumb mark or not; the visit's start and end.
    visitor_signature: Option<String>,
    elder_signature: Option<String>,
    elder_thumb: bool,
    times: String,
    /// 补录: recorded after its month was closed.
    late: bool,
}

fn boxes<T: Copy + PartialEq>(
    all: &[T],
    chosen: Option<T>,
    word: impl Fn(T) -> &'static str,
) -> Vec<(&'static str, bool)> {
    all.iter().map(|c| (word(*c), chosen == Some(*c))).collect()
}

fn printed_visit(
    number: usize,
    visit: &VisitRecord,
    evidence: Option<&anxin_store::StoredEvidence>,
    offset: chrono::FixedOffset,
) -> PrintedVisit {
    let clock = |at: i64| crate::web::local_clock(at, offset);
    let times = match (visit.started_at, evidence.and_then(|e| e.ended_at)) {
        (Some(start), Some(end)) => format!("{}–{}", clock(start), clock(end)),
        (Some(start), None) => clock(start),
        (None, Some(end)) => format!("–{}", clock(end)),
        (None, None) => String::new(),
    };
    let a = visit.assessment.clone().unwrap_or_default();
    let mode = VisitMode::parse(&visit.mode);
    let change = |v: Option<Change>| boxes(Change::ALL, v, Change::label);
    let safety = |v: Option<Safety>| boxes(Safety::ALL, v, Safety::label);
    PrintedVisit {
        number,
        day: visit.day.clone(),
        modes: boxes(&[VisitMode::Phone, VisitMode::Home, VisitMode::Video, VisitMode::Other], mode, VisitMode::label),
        household: boxes(HouseholdChange::ALL, a.household, HouseholdChange::label),
        household_delta: a.household_delta.map(|n| n.to_string()).unwrap_or_default(),
        rows: vec![
            row(Some(("健康状况", 3)), "表达能力", change(a.speech)),
            row(None, "行动能力", change(a.mobility)),
            PrintedRow {
                extra: a.illness_name.clone().unwrap_or_default(),
                ..row(None, "疾病状况", boxes(Illness::ALL, a.illness, Illness::label))
            },
            row(Some(("精神状态", 1)), "情绪状态", change(a.mood)),
            row(Some(("安全情况", 4)), "燃气安全", safety(a.gas)),
            row(None, "水暖安全", safety(a.water_heating)),
            row(None, "用电安全", safety(a.electricity)),
            row(None, "消防安全", safety(a.fire)),
            row(Some(("卫生状况", 2)), "个人卫生", change(a.personal_hygiene)),
            row(None, "家庭卫生", change(a.home_hygiene)),
            row(Some(("居住环境", 1)), "室内环境", change(a.indoor)),
        ],
        needs: visit.needs.clone().unwrap_or_default(),
        plan: a.plan_contents(),
        suggestions: visit.suggestions.clone().unwrap_or_default(),
        visitor: visit.visitor.clone(),
        recorded_by: visit.recorded_by.clone().unwrap_or_default(),
        visitor_signature: evidence.and_then(|e| e.visitor_signature.as_ref()).map(|s| s.svg_path()),
        elder_signature: evidence.and_then(|e| e.elder_signature.as_ref()).map(|s| s.svg_path()),
        elder_thumb: evidence.is_some_and(|e| e.elder_mark == anxin_domain::evidence::ElderMark::Thumb),
        times,
        late: visit.late,
    }
}

/// The record form of annex 1, filled in: always in the form's own
/// language, as the paper archive keeps it.
#[derive(Template)]
#[template(path = "record_form.html")]
struct RecordForm {
    elder: Elder,
    citizen_id: String,
    disability_cert: String,
    categories: Vec<(&'static str, bool)>,
    details: ElderDetails,
    members: Vec<(String, Vec<String>)>,
    income: String,
    orgs: Vec<(&'static str, bool)>,
    visits: Vec<PrintedVisit>,
    /// Remote check-ins per month, `("2026-11", 27)`.
    remote_months: Vec<(String, usize)>,
    services: Vec<(usize, anxin_store::CareService, &'static str)>,
    printed_on: String,
}

fn yes_no(value: bool) -> (&'static str, &'static str) {
    if value { ("☑", "☐") } else { ("☐", "☑") }
}

impl RecordForm {
    fn tick(&self, value: &bool) -> (&'static str, &'static str) {
        yes_no(*value)
    }

    fn safe(&self, value: &Option<bool>) -> &'static str {
        match value {
            Some(true) => "是",
            Some(false) => "否",
            None => "",
        }
    }
}

/// `/elders/{id}/form`: the whole record form, for printing. Identifying
/// numbers are masked unless the reader may reveal them, and the print is
/// audited either way.
pub(super) async fn record_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let elder = visible_elder(&state.store, &viewer.principal, id).await?;
    let details = state.store.elder_details(id).await?.unwrap_or_default();
    let whole = may_reveal(viewer.principal.role);
    let shown = |value: &Option<String>| {
        value
            .as_deref()
            .map(|v| if whole { v.to_string() } else { anxin_domain::registry::mask(v) })
            .unwrap_or_default()
    };
    state
        .store
        .audit(
            state.now(),
            &viewer.principal.name,
            if whole { "record form printed with whole ID numbers" } else { "record form printed" },
            Some(id),
            None,
        )
        .await?;
    let categories = anxin_domain::alerts::Category::parse_list(&elder.categories);
    let members = (0..anxin_domain::ledger::MEMBERS)
        .map(|i| {
            let label = if i == 0 { "户主".to_string() } else { (i + 1).to_string() };
            let cells = details.members.get(i).map_or_else(
                || vec![String::new(); 6],
                |m| {
                    vec![
                        m.name.clone(),
                        m.sex.map(|s| s.label().to_string()).unwrap_or_default(),
                        shown(&m.citizen_id),
                        m.relation.clone().unwrap_or_default(),
                        m.health.clone().unwrap_or_default(),
                        m.support.label().to_string(),
                    ]
                },
            );
            (label, cells)
        })
        .collect();
    let mut visits = state.store.visits(id).await?;
    visits.reverse();
    // Remote check-ins are daily: the paper form counts them by month.
    let mut remote_months: Vec<(String, usize)> = Vec::new();
    for visit in visits.iter().filter(|v| v.mode == VisitMode::Remote.code()) {
        let month = visit.day.get(..7).unwrap_or_default().to_string();
        match remote_months.last_mut() {
            Some((last, count)) if *last == month => *count += 1,
            _ => remote_months.push((month, 1)),
        }
    }
    visits.retain(|v| v.mode != VisitMode::Remote.code());
    let evidence = state.store.evidence_of(id).await?;
    let mut services = state.store.care_services(id).await?;
    services.reverse();
    let page = RecordForm {
        citizen_id: shown(&elder.citizen_id),
        disability_cert: shown(&elder.disability_cert),
        categories: anxin_domain::alerts::Category::ALL.iter().map(|c| (c.as_str(), categories.contains(c))).collect(),
        income: details.living.monthly_income_fen.map(format_yuan).unwrap_or_default(),
        orgs: HelpOrg::ALL.iter().map(|o| (o.label(), details.help.orgs.contains(o))).collect(),
        members,
        details,
        visits: visits
            .iter()
            .enumerate()
            .map(|(i, v)| printed_visit(i + 1, v, evidence.get(&v.id), state.policy.utc_offset))
            .collect(),
        remote_months,
        services: services
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let satisfaction = s.satisfaction.map(Satisfaction::label).unwrap_or("");
                (i + 1, s, satisfaction)
            })
            .collect(),
        printed_on: state.today().format("%Y 年 %m 月 %d 日").to_string(),
        elder,
    };
    Ok(html(&page))
}

#[derive(Debug)]
struct OpenReferral {
    elder_id: i64,
    name: String,
    place: String,
    service: &'static str,
    need: String,
    raised: String,
    waiting_days: i64,
}

#[derive(Template)]
#[template(path = "referrals.html")]
struct ReferralsPage {
    c: Chrome,
    open: Vec<OpenReferral>,
}

/// `/referrals`: every referral not yet done, of the elders the reader may
/// see, oldest first — what services still owe.
pub(super) async fn open_referrals(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    let now = state.now();
    let mut open = Vec::new();
    for referral in state.store.open_referrals().await? {
        let Some(elder) = visible_elder_for(&state.store, &viewer.principal, referral.elder_id).await? else {
            continue;
        };
        open.push(OpenReferral {
            elder_id: elder.id,
            place: format!("{} {} {}", elder.county, elder.township, elder.village),
            name: elder.name,
            service: choice(lang, referral.service.code(), referral.service.label()),
            need: referral.need,
            raised: format!("{} {}", referral.created_by, crate::web::local_time(referral.created_at, offset)),
            waiting_days: (now - referral.created_at) / 86_400_000,
        });
    }
    Ok(html(&ReferralsPage { c: viewer.chrome("referral.open_title"), open }))
}

/// `/visits/{id}/photo`: a visit's photo, for those who may see the elder;
/// every viewing audited (a photo of a home is personal data).
pub(super) async fn visit_photo(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(visit_id): Path<i64>,
) -> Result<Response, AppError> {
    let (elder_id, photo) = state.store.visit_photo(visit_id).await?.ok_or(AppError::NotFound(None))?;
    visible_elder(&state.store, &viewer.principal, elder_id).await?;
    let detail = format!("visit {visit_id}");
    state.store.audit(state.now(), &viewer.principal.name, "visit photo viewed", Some(elder_id), Some(&detail)).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/jpeg")], photo).into_response())
}
