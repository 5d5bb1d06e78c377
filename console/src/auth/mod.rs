//! Who is asking: signing in and staying signed in, and the two extractors
//! every handler starts from — [`Viewer`] (a signed-in person on a page) and
//! [`Caller`] (a bearer token, or the console's own script in a session).
//!
//! - `session`: server-side sessions behind an HttpOnly cookie, loaded for
//!   every request by [`session::session_layer`];
//! - `csrf`: the token every state change of a session carries;
//! - `throttle`: failed sign-ins counted per account and per address;
//! - `login`: `/login`, `/logout`, `/password`.
//!
//! Architecture invariant: `auth` depends on `state`, `error`, `web` and
//! `i18n` only; pages and the API depend on it, never the other way round.

pub mod csrf;
pub mod login;
pub mod session;
pub mod throttle;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use anxin_domain::access::{Principal, Role};

pub use csrf::CSRF_HEADER;
pub use session::{CurrentSession, SESSION_COOKIE, session_layer};
pub use throttle::Throttle;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::Chrome;

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

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
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

/// The caller of `/api/v1`, from `Authorization: Bearer …` — or, for the
/// console's own pages, the signed-in session (whose state changes carry
/// the CSRF token; see [`session::session_layer`]).
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = || AppError::Unauthorized("a valid bearer token is required".into());
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let Some(token) = token else {
            let session = parts.extensions.get::<CurrentSession>().and_then(|current| current.session.clone());
            return match session {
                Some(session) if !session.must_change_password => Ok(Caller(session.principal)),
                Some(_) => Err(AppError::forbidden("change the one-time password first")),
                None => Err(unauthorized()),
            };
        };
        state.store.principal_for_token(token.trim(), state.now()).await?.map(Caller).ok_or_else(unauthorized)
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

/// Where each role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Oncall => "/board",
        Role::Visitor => "/my",
        Role::Official => "/elders",
    }
}
