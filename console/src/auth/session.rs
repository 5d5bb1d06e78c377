//! Server-side sessions behind an HttpOnly cookie: [`session_layer`] loads
//! the session of every request and refuses a state-changing request whose
//! CSRF token is missing or wrong, before any handler runs.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use anxin_store::Session;

use super::csrf::{self, LOGIN_COOKIE};
use crate::error::AppError;
use crate::i18n::cookie;
use crate::state::AppState;

/// The session cookie: a random id; the server keeps its hash.
pub const SESSION_COOKIE: &str = "anxin_session";

/// What the session layer found for this request.
#[derive(Debug, Clone, Default)]
pub struct CurrentSession {
    pub id: Option<String>,
    pub session: Option<Session>,
}

/// Loads the session and checks the CSRF token of a state change.
pub async fn session_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = cookie(request.headers(), SESSION_COOKIE).map(str::to_string);
    let session = match &id {
        Some(id) => match state.store.session(id, state.limits, state.now()).await {
            Ok(session) => session,
            Err(error) => {
                tracing::error!(%error, "cannot read the session");
                return AppError::Unavailable.into_response();
            }
        },
        None => None,
    };
    if let (Some(id), None) = (&id, &session) {
        match revoked(&state, id).await {
            Ok(Some(response)) => return response,
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read the session");
                return AppError::Unavailable.into_response();
            }
        }
    }
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
            None if login => return csrf::refused(),
            Some(expected) => match csrf::checked(request, &expected).await {
                Ok(request) => request,
                Err(response) => return response,
            },
            // A bearer token is no ambient credential: no CSRF to fear.
            // Without either, the handler refuses the request as signed out.
            None if bearer || id.is_none() || session.is_none() => request,
            None => return csrf::refused(),
        }
    };
    request.extensions_mut().insert(CurrentSession { id, session });
    next.run(request).await
}

/// A revoked session's browser, at its next contact: signed out, and told
/// to wipe what the site kept (the app's pages, the visits waiting on a
/// lost phone). Told once; the session is then removed.
async fn revoked(state: &AppState, id: &str) -> Result<Option<Response>, anxin_store::StoreError> {
    if !state.store.session_revoked(id).await? {
        return Ok(None);
    }
    state.store.end_session(id).await?;
    let mut response = axum::response::Redirect::to("/login").into_response();
    set_cookie(&mut response, &ended_session_cookie());
    response.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\", \"storage\""));
    Ok(Some(response))
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(crate) fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax")
}

pub(crate) fn ended_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}
