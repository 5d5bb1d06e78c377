//! Parts 2 to 4 of the record form in the console (admin): household
//! members, living conditions and help already received — the same fields a
//! ledger file carries. Members' ID numbers are never put back on screen:
//! left empty, the number on record stays.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use anxin_domain::ledger::{
    ElderDetails, HelpOrg, HelpReceived, HouseholdMember, LivingConditions, MEMBERS, Problem, Sex, Support,
    format_yuan, parse_yuan,
};
use anxin_domain::registry::{CitizenId, mask};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::records::choice;
use crate::web::{Chrome, html};

#[derive(Debug)]
struct MemberRow {
    index: usize,
    label: String,
    name: String,
    sex: String,
    masked_id: String,
    relation: String,
    health: String,
    support: String,
}

#[derive(Template)]
#[template(path = "household_form.html")]
struct HouseholdPage {
    c: Chrome,
    elder_id: i64,
    elder_name: String,
    members: Vec<MemberRow>,
    f: HashMap<String, String>,
    orgs: Vec<(&'static str, &'static str, bool)>,
    sexes: Vec<(&'static str, &'static str)>,
    supports: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

impl HouseholdPage {
    fn value(&self, key: &str) -> &str {
        self.f.get(key).map_or("", String::as_str)
    }
}

fn yes_no_code(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => String::new(),
    }
}

/// The form's fields as they stand on record.
fn fields_of(details: &ElderDetails) -> HashMap<String, String> {
    let mut f = HashMap::new();
    f.insert("disabled".into(), yes_no_code(Some(details.disabled)));
    f.insert("water_safe".into(), yes_no_code(details.living.water_safe));
    f.insert("power_safe".into(), yes_no_code(details.living.power_safe));
    f.insert("housing_safe".into(), yes_no_code(details.living.housing_safe));
    f.insert("income".into(), details.living.monthly_income_fen.map(format_yuan).unwrap_or_default());
    f.insert("benefits".into(), details.living.benefits.clone().unwrap_or_default());
    f.insert("help_person".into(), details.help.person.clone().unwrap_or_default());
    f.insert("help_measures".into(), details.help.measures.clone().unwrap_or_default());
    f.insert("help_orgs".into(), details.help.orgs.iter().map(|o| o.code()).collect::<Vec<_>>().join(","));
    for (i, m) in details.members.iter().enumerate() {
        let n = i + 1;
        f.insert(format!("m{n}_name"), m.name.clone());
        f.insert(format!("m{n}_sex"), m.sex.map(|s| s.code().to_string()).unwrap_or_default());
        f.insert(format!("m{n}_relation"), m.relation.clone().unwrap_or_default());
        f.insert(format!("m{n}_health"), m.health.clone().unwrap_or_default());
        f.insert(format!("m{n}_support"), m.support.code().to_string());
    }
    f
}

fn page(
    viewer: &Viewer,
    elder_id: i64,
    elder_name: String,
    on_record: &ElderDetails,
    f: HashMap<String, String>,
    error: Option<String>,
) -> Response {
    let lang = viewer.lang;
    let chosen_orgs: Vec<&str> = f.get("help_orgs").map(|v| v.split(',').collect()).unwrap_or_default();
    let members = (0..MEMBERS)
        .map(|i| {
            let n = i + 1;
            let get = |key: &str| f.get(&format!("m{n}_{key}")).cloned().unwrap_or_default();
            MemberRow {
                index: n,
                label: if i == 0 { lang.t("household.head").to_string() } else { n.to_string() },
                name: get("name"),
                sex: get("sex"),
                masked_id: on_record.members.get(i).and_then(|m| m.citizen_id.as_deref()).map(mask).unwrap_or_default(),
                relation: get("relation"),
                health: get("health"),
                support: get("support"),
            }
        })
        .collect();
    let page = HouseholdPage {
        c: viewer.chrome("household.title"),
        elder_id,
        elder_name,
        members,
        orgs: HelpOrg::ALL
            .iter()
            .map(|o| (o.code(), choice(lang, o.code(), o.label()), chosen_orgs.contains(&o.code())))
            .collect(),
        sexes: Sex::ALL.iter().map(|s| (s.code(), choice(lang, s.code(), s.label()))).collect(),
        supports: Support::ALL
            .iter()
            .map(|s| (s.code(), choice(lang, &format!("support_{}", s.code()), s.label())))
            .collect(),
        f,
        error,
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (status, html(&page)).into_response()
}

pub(super) async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !viewer.principal.can_edit_registry() {
        return Err(AppError::Forbidden(None));
    }
    let elder = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    let details = state.store.elder_details(id).await?.unwrap_or_default();
    Ok(page(&viewer, id, elder.name, &details, fields_of(&details), None))
}

/// The problem in the reader's language, after the field's name.
fn refusal(lang: Lang, field: &str, problem: &Problem) -> String {
    format!("{}: {}", lang.t(field), lang.problem(problem))
}

/// Reads the typed form; members' ID numbers left empty keep `on_record`'s.
fn read(f: &HashMap<String, String>, on_record: &ElderDetails, lang: Lang) -> Result<ElderDetails, String> {
    let get = |key: &str| f.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
    let text = |key: &str, label: &str, max: usize| -> Result<Option<String>, String> {
        match get(key) {
            Some(v) if v.chars().count() > max => Err(refusal(lang, label, &Problem::TooLong(max))),
            v => Ok(v),
        }
    };
    let safe = |key: &str| match get(key).as_deref() {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let n = i + 1;
        let key = |k: &str| format!("m{n}_{k}");
        let any = ["name", "sex", "citizen_id", "relation", "health"].iter().any(|k| get(&key(k)).is_some());
        if !any {
            continue;
        }
        let name = text(&key("name"), "household.member_name", 64)?
            .ok_or_else(|| refusal(lang, "household.member_name", &Problem::Required))?;
        let citizen_id = match get(&key("citizen_id")) {
            Some(typed) => Some(
                CitizenId::parse(&typed)
                    .map_err(|e| refusal(lang, "field.citizen_id", &Problem::CitizenId(e)))?
                    .as_str()
                    .to_string(),
            ),
            None => on_record.members.get(i).and_then(|m| m.citizen_id.clone()),
        };
        members.push(HouseholdMember {
            name,
            sex: get(&key("sex")).and_then(|s| Sex::parse(&s)),
            citizen_id,
            relation: text(&key("relation"), "household.relation", 32)?,
            health: text(&key("health"), "household.health", 100)?,
            support: get(&key("support")).and_then(|s| Support::parse(&s)).unwrap_or(Support::None),
        });
    }
    let monthly_income_fen = match get("income") {
        None => None,
        Some(v) => Some(parse_yuan(&v).ok_or_else(|| refusal(lang, "household.income", &Problem::NotAnAmount))?),
    };
    let orgs = HelpOrg::ALL
        .iter()
        .copied()
        .filter(|o| f.get("help_orgs").is_some_and(|v| v.split(',').any(|code| code == o.code())))
        .collect();
    Ok(ElderDetails {
        disabled: get("disabled").as_deref() == Some("yes"),
        members,
        living: LivingConditions {
            water_safe: safe("water_safe"),
            power_safe: safe("power_safe"),
            housing_safe: safe("housing_safe"),
            monthly_income_fen,
            benefits: text("benefits", "household.benefits", 500)?,
        },
        help: HelpReceived {
            orgs,
            person: text("help_person", "household.help_person", 64)?,
            measures: text("help_measures", "household.help_measures", 500)?,
        },
    })
}

pub(super) async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    if !viewer.principal.can_edit_registry() {
        return Err(AppError::Forbidden(None));
    }
    let elder = state.store.elder(id).await?.ok_or(AppError::NotFound(None))?;
    let on_record = state.store.elder_details(id).await?.unwrap_or_default();
    // Ticked help organisations come once each under one name.
    let mut f: HashMap<String, String> = HashMap::new();
    for (key, value) in pairs {
        match f.get_mut(&key) {
            Some(existing) if key == "help_orgs" => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                f.insert(key, value);
            }
        }
    }
    match read(&f, &on_record, viewer.lang) {
        Ok(details) => {
            state.store.set_elder_details(id, &details, &viewer.principal.name, state.now()).await?;
            Ok(Redirect::to(&format!("/elders/{id}#household")).into_response())
        }
        Err(reason) => Ok(page(&viewer, id, elder.name, &on_record, f, Some(reason))),
    }
}
