//! Signing in and staying signed in: server-side sessions behind an HttpOnly
//! cookie, CSRF tokens on every state-changing request, login throttling per
//! account and per address, and the first-login password change.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Router, routing::get};
use serde::Deserialize;

use anxin_domain::access::{Principal, Role};
use anxin_store::{Session, now_ms};

use crate::api::ApiState;
use crate::i18n::{Lang, cookie};
use crate::web::{Chrome, PageError, html};

/// The session cookie: a random id; the server keeps its hash.
pub const SESSION_COOKIE: &str = "anxin_session";
/// The login form's double-submit token (there is no session yet).
const LOGIN_COOKIE: &str = "anxin_login";
/// The header htmx and the console's script send the CSRF token in; plain
/// forms send it as the field `csrf`.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the session middleware found for this request.
#[derive(Debug, Clone, Default)]
pub struct CurrentSession {
    pub id: Option<String>,
    pub session: Option<Session>,
}

/// `/login`, `/logout`, `/password`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/password", get(password_page).post(change_password))
        .with_state(state)
}

/// Loads the session of every request and refuses a state-changing request
/// whose CSRF token is missing or wrong — before any handler runs.
pub async fn session_layer(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let id = cookie(request.headers(), SESSION_COOKIE).map(str::to_string);
    let session = match &id {
        Some(id) => match state.store.session(id, state.limits, now_ms()).await {
            Ok(session) => session,
            Err(error) => {
                tracing::error!(%error, "cannot read the session");
                return PageError::Unavailable.into_response();
            }
        },
        None => None,
    };
    let mut request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        let bearer = request.headers().get(header::AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
        let login = request.uri().path() == "/login";
        let expected = if login {
            cookie(request.headers(), LOGIN_COOKIE).map(str::to_string)
        } else {
            session.as_ref().map(|s| s.csrf_token.clone())
        };
        match expected {
            // The login form always carries its double-submit token.
            None if login => return csrf_refused(),
            Some(expected) => match csrf_checked(request, &expected).await {
                Ok(request) => request,
                Err(response) => return response,
            },
            // A bearer token is no ambient credential: no CSRF to fear.
            // Without either, the handler refuses the request as signed out.
            None if bearer || id.is_none() || session.is_none() => request,
            None => return csrf_refused(),
        }
    };
    request.extensions_mut().insert(CurrentSession { id, session });
    next.run(request).await
}

fn csrf_refused() -> Response {
    PageError::Refused.into_response()
}

/// Passes the request on if its `X-CSRF-Token` header or its form field
/// `csrf` equals `expected`.
async fn csrf_checked(request: Request, expected: &str) -> Result<Request, Response> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        return if constant_time_eq(value.as_bytes(), expected.as_bytes()) { Ok(request) } else { Err(csrf_refused()) };
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    if !form {
        return Err(csrf_refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "the form is larger than 1 MiB\n").into_response())?;
    let found = form_urlencoded::parse(&bytes).find(|(key, _)| key == "csrf").map(|(_, value)| value.into_owned());
    match found {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(csrf_refused()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Someone signed in to the console, on a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    pub lang: Lang,
    pub path: String,
    /// At first sign-in, until the one-time password is replaced.
    pub must_change_password: bool,
}

impl Viewer {
    pub fn chrome(&self, title: &'static str) -> Chrome {
        Chrome {
            lang: self.lang,
            title,
            user: Some(self.principal.name.clone()),
            role: Some(self.principal.role),
            csrf: self.csrf.clone(),
            path: self.path.clone(),
        }
    }
}

/// Where a signed-out reader is sent: the login page, coming back after.
fn to_login(parts: &Parts) -> Response {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!("/login?next={}", form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>());
    redirect_for(&parts.headers, &target)
}

/// A redirect a full page follows, and htmx too (`HX-Redirect`).
pub fn redirect_for(headers: &HeaderMap, target: &str) -> Response {
    if headers.contains_key("hx-request") {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    Redirect::to(target).into_response()
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &ApiState) -> Result<Self, Self::Rejection> {
        let current = parts.extensions.get::<CurrentSession>().cloned().unwrap_or_default();
        let Some(session) = current.session else {
            return Err(to_login(parts));
        };
        if session.must_change_password && parts.uri.path() != "/password" {
            return Err(redirect_for(&parts.headers, "/password"));
        }
        Ok(Viewer {
            principal: session.principal,
            csrf: session.csrf_token,
            lang: Lang::of_request(&parts.headers),
            path: parts.uri.path().to_string(),
            must_change_password: session.must_change_password,
        })
    }
}

/// Failed sign-ins are counted per account and per address over a window;
/// past the limit, sign-in is refused without looking at the password.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    pub const WINDOW_MS: i64 = 15 * 60_000;
    pub const PER_ACCOUNT: usize = 5;
    pub const PER_ADDRESS: usize = 20;

    fn keys(account: &str, address: &str) -> [(String, usize); 2] {
        [
            (format!("account:{}", account.trim().to_lowercase()), Self::PER_ACCOUNT),
            (format!("address:{address}"), Self::PER_ADDRESS),
        ]
    }

    /// Minutes to wait, if this account or address is over its limit.
    pub fn wait_minutes(&self, account: &str, address: &str, now: i64) -> Option<i64> {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = None;
        for (key, limit) in Self::keys(account, address) {
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|t| now - t > Self::WINDOW_MS) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    let minutes = ((oldest + Self::WINDOW_MS - now).max(60_000) + 59_999) / 60_000;
                    wait = Some(wait.map_or(minutes, |w: i64| w.max(minutes)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, account: &str, address: &str, now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| now - t <= Self::WINDOW_MS));
        }
        for (key, _) in Self::keys(account, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    pub fn succeeded(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&format!("account:{}", account.trim().to_lowercase()));
    }
}

/// The address a request came from (the TCP peer), or `unknown` where the
/// server was not told (tests that call the router directly).
#[derive(Debug)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(ClientAddress(peer.unwrap_or_else(|| "unknown".into())))
    }
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

/// Only a path of this console: never another site.
fn local_target(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next.to_string() } else { "/".into() }
}

fn signed_out_chrome(lang: Lang, title: &'static str, csrf: String) -> Chrome {
    Chrome { lang, title, user: None, role: None, csrf, path: "/login".into() }
}

fn login_form(headers: &HeaderMap, next: &str, name: &str, error: Option<String>, status: StatusCode) -> Response {
    let lang = Lang::of_request(headers);
    let nonce = anxin_domain::access::new_token();
    let page = LoginPage {
        c: signed_out_chrome(lang, "login.title", nonce.clone()),
        next: local_target(next),
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

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax")
}

async fn login(
    State(state): State<ApiState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    request_session: axum::Extension<CurrentSession>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let lang = Lang::of_request(&headers);
    let now = now_ms();
    if let Some(minutes) = state.throttle.wait_minutes(&form.name, &address, now) {
        let message = lang.t("login.throttled").replace("{minutes}", &minutes.to_string());
        return Ok(login_form(&headers, &form.next, &form.name, Some(message), StatusCode::TOO_MANY_REQUESTS));
    }
    let Some(principal) = state.store.authenticate(&form.name, &form.password).await? else {
        state.throttle.failed(&form.name, &address, now);
        tracing::info!(%address, "console sign-in refused");
        let message = lang.t("login.refused").to_string();
        return Ok(login_form(&headers, &form.next, &form.name, Some(message), StatusCode::UNAUTHORIZED));
    };
    state.throttle.succeeded(&form.name);
    // A new id at every sign-in; whatever session the browser had ends.
    if let Some(old) = &request_session.id {
        state.store.end_session(old).await?;
    }
    let id = state.store.start_session(principal.user_id, state.limits, now).await?;
    state.store.audit(now, &principal.name, "signed in", None, Some(&address)).await?;
    let mut response = Redirect::to(&local_target(&form.next)).into_response();
    set_cookie(&mut response, &session_cookie(&id));
    set_cookie(&mut response, &format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0; HttpOnly; Secure; SameSite=Strict"));
    Ok(response)
}

async fn logout(
    State(state): State<ApiState>,
    request_session: axum::Extension<CurrentSession>,
) -> Result<Response, PageError> {
    if let Some(id) = &request_session.id {
        state.store.end_session(id).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"));
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
    State(state): State<ApiState>,
    viewer: Viewer,
    request_session: axum::Extension<CurrentSession>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
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
    match state.store.change_password(viewer.principal.user_id, &form.current, &form.new, &keep, now_ms()).await {
        Ok(true) => Ok(Redirect::to(home_of(viewer.principal.role)).into_response()),
        Ok(false) => refuse("password.wrong_current", first),
        Err(anxin_store::StoreError::Invalid(_)) => refuse("password.same", first),
        Err(error) => Err(error.into()),
    }
}

/// Where each role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Oncall => "/board",
        Role::Visitor => "/my",
        Role::Official => "/elders",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_counts_per_account_and_per_address_within_its_window() {
        let throttle = Throttle::default();
        let t0 = 1_000_000;
        for i in 0..Throttle::PER_ACCOUNT {
            assert_eq!(throttle.wait_minutes("wang", "10.0.0.1", t0), None, "attempt {i}");
            throttle.failed("wang", "10.0.0.1", t0);
        }
        assert_eq!(throttle.wait_minutes("Wang ", "10.0.0.9", t0 + 1), Some(15), "the account is locked everywhere");
        assert_eq!(throttle.wait_minutes("li", "10.0.0.9", t0 + 1), None, "another account is not");
        assert_eq!(throttle.wait_minutes("wang", "10.0.0.1", t0 + Throttle::WINDOW_MS + 1), None, "the window passes");
        for i in 0..Throttle::PER_ADDRESS {
            throttle.failed(&format!("user{i}"), "10.0.0.2", t0);
        }
        assert!(throttle.wait_minutes("someone-new", "10.0.0.2", t0 + 1).is_some(), "the address is locked");
        throttle.succeeded("wang");
        assert_eq!(throttle.wait_minutes("wang", "10.0.0.3", t0 + 1), None);
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_target("/elders/7"), "/elders/7");
        for outside in ["//evil.example/", "https://evil.example/", "/\\evil.example", ""] {
            assert_eq!(local_target(outside), "/", "{outside}");
        }
    }
}
