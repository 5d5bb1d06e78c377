//! Users, their sessions and tokens (admin only): who may use the console,
//! and the means to end their access — disable (sessions end at once,
//! tokens and open alert streams within seconds), enable, a new one-time
//! password (shown once), a token issued or revoked, a user added or their
//! role and regions changed. Every change is audited by the store.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use anxin_domain::visits::VisitorKind;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::state::AppState;
use crate::views::records::choice;
use crate::web::{Chrome, html, local_time};

#[derive(Debug)]
struct UserLine {
    name: String,
    /// `role.…`, for the words.
    role: String,
    /// The role's code, for the form.
    role_code: String,
    regions: String,
    /// `users.active`, `users.disabled` or `users.must_change`.
    state: &'static str,
    disabled: bool,
    sessions: i64,
    /// For visitors: the kind's code (empty until set).
    kind: Option<String>,
}

#[derive(Debug)]
struct TokenLine {
    id: String,
    user: String,
    issued: String,
    last_used: String,
    expires: String,
    live: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserLine>,
    tokens: Vec<TokenLine>,
    /// A new one-time password, shown once: (user, password).
    issued: Option<(String, String)>,
    /// A new API token, shown once: (user, token, days).
    token: Option<(String, String, u32)>,
    /// The visitor kinds: (code, words).
    kinds: Vec<(&'static str, &'static str)>,
}

fn admin_only(viewer: &Viewer) -> Result<(), AppError> {
    if viewer.principal.role == anxin_domain::access::Role::Admin { Ok(()) } else { Err(AppError::Forbidden(None)) }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    issued: Option<(String, String)>,
    token: Option<(String, String, u32)>,
) -> Result<Response, AppError> {
    let now = state.now();
    let offset = state.policy.utc_offset;
    let sessions = state.store.open_sessions(state.limits, now).await?;
    let users = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|user| UserLine {
            state: if user.disabled {
                "users.disabled"
            } else if user.must_change_password {
                "users.must_change"
            } else {
                "users.active"
            },
            disabled: user.disabled,
            sessions: sessions.get(&user.id).copied().unwrap_or(0),
            regions: user.regions.join("、"),
            role: format!("role.{}", user.role),
            kind: (user.role == "visitor").then(|| user.visitor_kind.clone().unwrap_or_default()),
            role_code: user.role.clone(),
            name: user.name,
        })
        .collect();
    let tokens = state
        .store
        .tokens(None)
        .await?
        .into_iter()
        .map(|token| {
            let live = token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now);
            TokenLine {
                expires: match (token.revoked_at, token.expires_at) {
                    (Some(at), _) => format!("✕ {}", local_time(at, offset)),
                    (None, Some(at)) => local_time(at, offset),
                    (None, None) => "—".into(),
                },
                last_used: token.last_used_at.map_or_else(|| "—".into(), |at| local_time(at, offset)),
                issued: local_time(token.created_at, offset),
                live,
                id: token.id,
                user: token.user,
            }
        })
        .collect();
    let kinds = VisitorKind::ALL.iter().map(|k| (k.code(), choice(viewer.lang, k.code(), k.label()))).collect();
    let page = UsersPage { c: viewer.chrome("users.title"), users, tokens, issued, token, kinds };
    Ok((StatusCode::OK, html(&page)).into_response())
}

pub(super) async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    render(&state, &viewer, None, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct KindForm {
    name: String,
    kind: String,
}

/// Sets a visitor's kind (民政办, 网格员, 志愿者, …); audited.
pub(super) async fn set_kind(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<KindForm>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    let kind =
        VisitorKind::parse(&form.kind).ok_or_else(|| AppError::Invalid(viewer.lang.t("users.bad_kind").into()))?;
    state.store.set_visitor_kind(form.name.trim(), kind, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct UserAction {
    name: String,
    /// `disable`, `enable` or `reset`.
    action: String,
}

pub(super) async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<UserAction>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    let by = &viewer.principal.name;
    match form.action.as_str() {
        "disable" if form.name.trim() == by.as_str() => {
            Err(AppError::Invalid(viewer.lang.t("users.not_yourself").to_string()))
        }
        "disable" | "enable" => {
            state.store.set_user_disabled(&form.name, form.action == "disable", by, state.now()).await?;
            Ok(Redirect::to("/users").into_response())
        }
        "reset" => {
            let password = state.store.reset_password(&form.name, by, state.now()).await?;
            render(&state, &viewer, Some((form.name.trim().to_string(), password)), None).await
        }
        other => Err(AppError::Invalid(format!("{other:?} is not disable, enable or reset"))),
    }
}

/// `振兴区, 振兴区/站前街道` (commas, 、 or spaces between them).
fn regions_of(text: &str, viewer: &Viewer) -> Result<Vec<anxin_domain::access::Region>, AppError> {
    text.split([',', '，', '、', ' '])
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            anxin_domain::access::Region::parse(part.trim())
                .map_err(|_| AppError::Invalid(format!("{}: {part}", viewer.lang.t("rate.bad_region"))))
        })
        .collect()
}

fn role_of(code: &str) -> Result<anxin_domain::access::Role, AppError> {
    anxin_domain::access::Role::parse(code)
        .ok_or_else(|| AppError::Invalid(format!("{code:?} is not admin, oncall, visitor or official")))
}

#[derive(Debug, Deserialize)]
pub(super) struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    regions: String,
}

/// Adds a user; their one-time password is shown once.
pub(super) async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<NewUser>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    let (role, regions) = (role_of(&form.role)?, regions_of(&form.regions, &viewer)?);
    let password = anxin_domain::access::one_time_password();
    let user =
        state.store.add_user_as(&viewer.principal.name, &form.name, role, &regions, &password, state.now()).await?;
    render(&state, &viewer, Some((user.name, password)), None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct Access {
    name: String,
    role: String,
    #[serde(default)]
    regions: String,
}

/// Sets a user's role and regions.
pub(super) async fn set_access(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<Access>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    let (role, regions) = (role_of(&form.role)?, regions_of(&form.regions, &viewer)?);
    if form.name.trim() == viewer.principal.name && role != anxin_domain::access::Role::Admin {
        return Err(AppError::Invalid(viewer.lang.t("users.not_yourself").to_string()));
    }
    state.store.set_user_access(&form.name, role, &regions, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct NewToken {
    name: String,
    days: u32,
}

/// Issues an API token for a user who has set their own password; shown once.
pub(super) async fn issue_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<NewToken>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    if !(1..=730).contains(&form.days) {
        return Err(AppError::Invalid(viewer.lang.t("users.days_range").to_string()));
    }
    let now = state.now();
    let expires_at = now + i64::from(form.days) * anxin_domain::time::DAY_MS;
    let token = state.store.issue_token(&form.name, expires_at, now).await?;
    render(&state, &viewer, None, Some((form.name.trim().to_string(), token, form.days))).await
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenAction {
    id: String,
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<TokenAction>,
) -> Result<Response, AppError> {
    admin_only(&viewer)?;
    state.store.revoke_token(&form.id, &viewer.principal.name, state.now()).await?;
    Ok(Redirect::to("/users").into_response())
}
