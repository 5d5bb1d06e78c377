//! One error type for the whole console, pages and API alike: [`AppError`].
//!
//! A handler returns `Err(AppError::…)`; the response it makes carries a
//! [`Refusal`] that [`render_errors`] (a layer over every route) turns into
//! what the caller reads: `{"error": "…"}` under `/api/`, the message alone
//! for htmx, and a small page in the reader's language otherwise. The cause
//! of a store failure is logged, never shown: the reader sees that the
//! database is unavailable, not SQL.

use askama::Template;
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use anxin_store::{AlertActionError, StoreError};

use crate::i18n::Lang;
use crate::web::html;

/// Why a request is not served.
#[derive(Debug)]
pub enum AppError {
    /// No valid session or bearer token (401). Pages send the reader to
    /// sign in before a handler runs; this is the API's answer.
    Unauthorized(String),
    /// Not there, or not the reader's to see: one answer for both (404),
    /// with a reason for the API where there is one.
    NotFound(Option<String>),
    /// The reader may see it, but their role may not do this (403).
    Forbidden(Option<String>),
    /// A state change without the session's CSRF token (403).
    Refused,
    /// Not in a state that allows it: an alert already acknowledged (409).
    Conflict(String),
    /// What was sent is wrong, and why, in the reader's words (422).
    Invalid(String),
    /// The database cannot be reached; try again (503).
    Unavailable,
    /// The database has no room to write (the data disk is full): nothing
    /// was saved (507).
    StorageFull,
}

impl AppError {
    pub fn not_found(reason: impl Into<String>) -> AppError {
        AppError::NotFound(Some(reason.into()))
    }

    pub fn forbidden(reason: impl Into<String>) -> AppError {
        AppError::Forbidden(Some(reason.into()))
    }

    pub fn invalid(reason: impl ToString) -> AppError {
        AppError::Invalid(reason.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(reason) => AppError::NotFound(Some(reason)),
            StoreError::Invalid(reason) => AppError::Invalid(reason),
            error if error.is_storage_full() => {
                tracing::error!(%error, "console: nothing saved, the database has no room to write");
                AppError::StorageFull
            }
            error => {
                tracing::error!(%error, "console: store error");
                AppError::Unavailable
            }
        }
    }
}

impl From<AlertActionError> for AppError {
    fn from(error: AlertActionError) -> Self {
        match error {
            AlertActionError::NotFound(_) => AppError::NotFound(Some(error.to_string())),
            AlertActionError::AlreadyAcknowledged { .. } | AlertActionError::AlreadyResolved { .. } => {
                AppError::Conflict(error.to_string())
            }
            AlertActionError::Invalid(reason) => AppError::Invalid(reason),
            AlertActionError::Store(error) => error.into(),
        }
    }
}

/// A refusal as [`render_errors`] finds it on the response.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The translation key of the general message.
    key: &'static str,
    /// The specific reason, where there is one.
    reason: Option<String>,
}

impl AppError {
    fn parts(self) -> (StatusCode, Refusal) {
        let (status, key, reason) = match self {
            AppError::Unauthorized(reason) => (StatusCode::UNAUTHORIZED, "error.unauthorized", Some(reason)),
            AppError::NotFound(reason) => (StatusCode::NOT_FOUND, "error.not_found", reason),
            AppError::Forbidden(reason) => (StatusCode::FORBIDDEN, "error.forbidden", reason),
            AppError::Refused => (StatusCode::FORBIDDEN, "error.csrf", None),
            AppError::Conflict(reason) => (StatusCode::CONFLICT, "error.conflict", Some(reason)),
            AppError::Invalid(reason) => (StatusCode::UNPROCESSABLE_ENTITY, "error.invalid", Some(reason)),
            AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "error.unavailable", None),
            AppError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "error.storage_full", None),
        };
        (status, Refusal { key, reason })
    }
}

impl IntoResponse for AppError {
    /// A plain-text answer (what a caller outside the console's layers
    /// gets), marked for [`render_errors`].
    fn into_response(self) -> Response {
        let (status, refusal) = self.parts();
        let text = refusal.reason.clone().unwrap_or_else(|| Lang::En.t(refusal.key).to_string());
        let mut response = (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text + "\n").into_response();
        response.extensions_mut().insert(refusal);
        response
    }
}

/// `{"error": "…"}`: why an API call was refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    lang: Lang,
    status: u16,
    message: String,
}

impl ErrorPage {
    fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
}

/// Renders every [`AppError`] for its reader: JSON under `/api/` (in
/// English, with `WWW-Authenticate` on a 401), the message alone for htmx,
/// a small page in the reader's language for a browser.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let lang = Lang::of_request(request.headers());
    let htmx = request.headers().contains_key("hx-request");
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let Some(refusal) = response.extensions().get::<Refusal>().cloned() else {
        return response;
    };
    let status = response.status();
    if api {
        let error = refusal.reason.unwrap_or_else(|| Lang::En.t(refusal.key).to_string());
        let mut response = (status, Json(ErrorBody { error })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return response;
    }
    // A page shows the reason of a form's refusal (already in the reader's
    // words); a 404 or 403 says only what it is, in the reader's language.
    let specific = matches!(refusal.key, "error.invalid" | "error.conflict");
    let message = refusal.reason.filter(|_| specific).unwrap_or_else(|| lang.t(refusal.key).to_string());
    if htmx {
        return (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response();
    }
    (status, html(&ErrorPage { lang, status: status.as_u16(), message })).into_response()
}
