//! `/login`, `/logout` and `/password`: signing in (throttled), signing out,
//! and the password change every account makes at its first sign-in.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Router, routing::get};
use serde::Deserialize;

use super::csrf::LOGIN_COOKIE;
use super::session::{CurrentSession, ended_session_cookie, session_cookie, set_cookie};
use super::{ClientAddress, Viewer, home_of};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::{Chrome, html};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/password", get(password_page).post(change_password))
        .route("/sessions", get(sessions_page))
        .route("/sessions/revoke", axum::routing::post(revoke_session))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    name: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

fn signed_out_chrome(lang: Lang, title: &'static str, csrf: String) -> Chrome {
    Chrome {
        lang,
        title,
        user: None,
        role: None,
        csrf,
        path: "/login".into(),
        closes_months: false,
        storage_full: false,
    }
}

fn login_form(headers: &HeaderMap, next: &str, name: &str, error: Option<String>, status: StatusCode) -> Response {
    let lang = Lang::of_request(headers);
    let nonce = anxin_domain::access::new_token();
    let page = LoginPage {
        c: signed_out_chrome(lang, "login.title", nonce.clone()),
        next: crate::web::local_path(next),
        name: name.to_string(),
        error,
    };
    let mut response = (status, html(&page)).into_response();
    set_cookie(&mut response, &format!("{LOGIN_COOKIE}={nonce}; Path=/login; HttpOnly; Secure; SameSite=Strict"));
    response
}

async fn login_page(headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    login_form(&headers, &query.next, "", None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
    /// "This is my phone": a visitor's session then lasts a working week.
    #[serde(default)]
    phone: Option<String>,
}

/// The browser in a few words, from its `User-Agent`: enough for its user
/// to tell their phone from the office computer (nothing else is kept).
pub(crate) fn device_of(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(axum::http::header::USER_AGENT)?.to_str().ok()?;
    let system = [
        ("HarmonyOS", "HarmonyOS"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "Mac"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| agent.contains(mark))
    .map_or("?", |(_, name)| name);
    let browser = [
        ("MicroMessenger", "WeChat"),
        ("HeadlessChrome", "Headless Chrome"),
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(mark, _)| agent.contains(mark))
    .map_or("?", |(_, name)| name);
    Some(format!("{system} · {browser}"))
}

async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    request_session: axum::Extension<CurrentSession>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let lang = Lang::of_request(&headers);
    let now = state.now();
    let attempt = match state.throttle.begin(&form.name, &address, now) {
        Ok(attempt) => attempt,
        Err(minutes) => {
            let message = lang.t("login.throttled").replace("{minutes}", &minutes.to_string());
            return Ok(login_form(&headers, &form.next, &form.name, Some(message), StatusCode::TOO_MANY_REQUESTS));
        }
    };
    let Some(principal) = state.store.authenticate(&form.name, &form.password).await? else {
        attempt.failed(state.now());
        tracing::info!(%address, "console sign-in refused");
        let message = lang.t("login.refused").to_string();
        return Ok(login_form(&headers, &form.next, &form.name, Some(message), StatusCode::UNAUTHORIZED));
    };
    attempt.succeeded();
    // A new id at every sign-in; whatever session the browser had ends.
    if let Some(old) = &request_session.id {
        state.store.end_session(old).await?;
    }
    // A week-long session only for a visitor's own phone (the app); every
    // other sign-in keeps the desktop's 30 minutes.
    let phone = form.phone.is_some_and(|v| !v.is_empty()) && principal.role == anxin_domain::access::Role::Visitor;
    let place = anxin_store::SessionPlace { phone, device: device_of(&headers) };
    let id = state.store.start_session_at(principal.user_id, &place, state.limits, now).await?;
    let detail = if phone { format!("{address} (phone, a working week)") } else { address.to_string() };
    state.store.audit(now, &principal.name, "signed in", None, Some(&detail)).await?;
    let mut response = Redirect::to(&crate::web::local_path(&form.next)).into_response();
    set_cookie(&mut response, &session_cookie(&id));
    set_cookie(&mut response, &format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0; HttpOnly; Secure; SameSite=Strict"));
    Ok(response)
}

async fn logout(
    State(state): State<AppState>,
    request_session: axum::Extension<CurrentSession>,
) -> Result<Response, AppError> {
    if let Some(id) = &request_session.id {
        state.store.end_session(id).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, &ended_session_cookie());
    // A phone keeps the pages a visitor opened (the service worker's cache):
    // signing out wipes them, with the app's storage.
    response.headers_mut().insert("clear-site-data", axum::http::HeaderValue::from_static("\"cache\", \"storage\""));
    Ok(response)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    c: Chrome,
    first: bool,
    error: Option<String>,
}

async fn password_page(viewer: Viewer) -> Response {
    let first = viewer.must_change_password;
    html(&PasswordPage { c: viewer.chrome("password.title"), first, error: None }).into_response()
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    request_session: axum::Extension<CurrentSession>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let lang = viewer.lang;
    let refuse = |key: &'static str, first: bool| {
        let page = PasswordPage { c: viewer.chrome("password.title"), first, error: Some(lang.t(key).to_string()) };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)).into_response())
    };
    let first = viewer.must_change_password;
    if form.new != form.confirm {
        return refuse("password.mismatch", first);
    }
    if form.new.chars().count() < 12 {
        return refuse("password.too_short", first);
    }
    let keep = request_session.id.clone().unwrap_or_default();
    match state.store.change_password(viewer.principal.user_id, &form.current, &form.new, &keep, state.now()).await {
        Ok(true) => Ok(Redirect::to(home_of(viewer.principal.role)).into_response()),
        Ok(false) => refuse("password.wrong_current", first),
        Err(anxin_store::StoreError::Invalid(_)) => refuse("password.same", first),
        Err(error) => Err(error.into()),
    }
}

/// One session on the sessions page.
#[derive(Debug)]
struct SessionLine {
    handle: String,
    device: String,
    kind: &'static str,
    since: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    c: Chrome,
    own: bool,
    user: String,
    sessions: Vec<SessionLine>,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SessionsQuery {
    /// Another user's sessions (admins only).
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    revoked: Option<String>,
}

/// Whose sessions: the viewer's own, or for an admin anyone's by name.
async fn session_owner(state: &AppState, viewer: &Viewer, user: Option<&str>) -> Result<(i64, String), AppError> {
    match user.map(str::trim).filter(|u| !u.is_empty() && *u != viewer.principal.name) {
        None => Ok((viewer.principal.user_id, viewer.principal.name.clone())),
        Some(name) => {
            if viewer.principal.role != anxin_domain::access::Role::Admin {
                return Err(AppError::Forbidden(None));
            }
            let user =
                state.store.users().await?.into_iter().find(|u| u.name == name).ok_or(AppError::NotFound(None))?;
            Ok((user.id, user.name))
        }
    }
}

/// `/sessions` (登录设备): where one is signed in — the phone with its
/// week, the desktop with its 30 minutes — each revocable; an admin sees
/// anyone's with `?user=`. A revoked phone is wiped at its next contact.
async fn sessions_page(
    State(state): State<AppState>,
    viewer: Viewer,
    request_session: axum::Extension<CurrentSession>,
    Query(query): Query<SessionsQuery>,
) -> Result<Response, AppError> {
    let (user_id, user) = session_owner(&state, &viewer, query.user.as_deref()).await?;
    let lang = viewer.lang;
    let offset = state.policy.utc_offset;
    let current = request_session.id.as_deref().map(anxin_store::Store::session_handle);
    let sessions = state
        .store
        .sessions_of(user_id, state.limits, state.now())
        .await?
        .into_iter()
        .map(|s| SessionLine {
            current: current.as_deref() == Some(s.handle.as_str()),
            device: s.device.unwrap_or_else(|| "—".into()),
            kind: lang.t(if s.phone { "sessions.phone" } else { "sessions.desktop" }),
            since: crate::web::local_time(s.created_at, offset),
            last_seen: crate::web::local_time(s.last_seen_at, offset),
            handle: s.handle,
        })
        .collect();
    Ok(html(&SessionsPage {
        c: viewer.chrome("sessions.title"),
        own: user_id == viewer.principal.user_id,
        user,
        sessions,
        notice: query.revoked.map(|_| lang.t("sessions.revoked").to_string()),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    #[serde(default)]
    user: String,
    handle: String,
}

async fn revoke_session(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<RevokeForm>,
) -> Result<Response, AppError> {
    let (user_id, user) = session_owner(&state, &viewer, Some(&form.user)).await?;
    if !state.store.revoke_session(user_id, form.handle.trim(), &viewer.principal.name, state.now()).await? {
        return Err(AppError::NotFound(None));
    }
    let back = if user_id == viewer.principal.user_id {
        "/sessions?revoked=1".to_string()
    } else {
        format!("/sessions?revoked=1&user={}", form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>())
    };
    Ok(Redirect::to(&back).into_response())
}
