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
    Chrome { lang, title, user: None, role: None, csrf, path: "/login".into(), closes_months: false }
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
    let id = state.store.start_session(principal.user_id, state.limits, now).await?;
    state.store.audit(now, &principal.name, "signed in", None, Some(&address)).await?;
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
