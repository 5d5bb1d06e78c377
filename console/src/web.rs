//! What every page shares: the page chrome (language, user, CSRF token),
//! rendering, errors as pages, security headers and the embedded assets.

use askama::Template;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use anxin_domain::access::Role;
use anxin_store::StoreError;

use crate::i18n::Lang;

/// The frame around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    /// The translation key of the page title.
    pub title: &'static str,
    pub user: Option<String>,
    pub role: Option<Role>,
    pub csrf: String,
    pub path: String,
}

impl Chrome {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    /// The link that switches to the other language and comes back here.
    pub fn other_lang(&self) -> (&'static str, &'static str) {
        match self.lang {
            Lang::ZhCn => ("en", "English"),
            Lang::En => ("zh-CN", "中文"),
        }
    }

    pub fn is(&self, role: &str) -> bool {
        self.role.is_some_and(|r| r.as_str() == role)
    }

    pub fn handles_alerts(&self) -> bool {
        matches!(self.role, Some(Role::Admin | Role::Oncall))
    }

    pub fn sees_registry(&self) -> bool {
        matches!(self.role, Some(Role::Admin | Role::Oncall | Role::Official))
    }

    pub fn role_name(&self) -> &'static str {
        match self.role {
            Some(role) => self.lang.t(&format!("role.{}", role.as_str())),
            None => "",
        }
    }
}

/// Renders a template, or a plain 500 if it cannot (it always can: the
/// templates are checked when the console is compiled).
pub fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered\n").into_response()
        }
    }
}

/// Why a page is not shown.
#[derive(Debug)]
pub enum PageError {
    /// Not there, or not the reader's to see: the same answer.
    NotFound,
    /// The reader may see it but their role may not do this.
    Forbidden,
    /// What was sent is wrong, and why (already translated).
    Invalid(String),
    /// A state change without the session's CSRF token.
    Refused,
    Unavailable,
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => PageError::NotFound,
            StoreError::Invalid(reason) => PageError::Invalid(reason),
            error => {
                tracing::error!(%error, "console: store error");
                PageError::Unavailable
            }
        }
    }
}

/// A refusal, as [`localize_errors`] finds it on the response to put it in
/// the reader's language.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The translation key of the message.
    key: &'static str,
    /// A reason already in the reader's words (a form's error), if any.
    reason: Option<String>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, key, reason) = match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "error.not_found", None),
            PageError::Forbidden => (StatusCode::FORBIDDEN, "error.forbidden", None),
            PageError::Invalid(reason) => (StatusCode::UNPROCESSABLE_ENTITY, "error.invalid", Some(reason)),
            PageError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "error.unavailable", None),
            PageError::Refused => (StatusCode::FORBIDDEN, "error.csrf", None),
        };
        let text = reason.clone().unwrap_or_else(|| Lang::ZhCn.t(key).to_string());
        let mut response = (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text + "\n").into_response();
        response.extensions_mut().insert(Refusal { key, reason });
        response
    }
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

/// Puts a page's refusal (404, 403, 422, 503) in the reader's language, as
/// a small page; htmx requests get the message alone.
pub async fn localize_errors(request: Request, next: Next) -> Response {
    let lang = Lang::of_request(request.headers());
    let htmx = request.headers().contains_key("hx-request");
    let response = next.run(request).await;
    let Some(refusal) = response.extensions().get::<Refusal>().cloned() else {
        return response;
    };
    let status = response.status();
    let message = refusal.reason.unwrap_or_else(|| lang.t(refusal.key).to_string());
    if htmx {
        return (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response();
    }
    let page = ErrorPage { lang, status: status.as_u16(), message };
    (status, html(&page)).into_response()
}

/// The content security policy: scripts and styles only from the console
/// itself, nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; media-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Security headers on every response; `Cache-Control: no-store` on all but
/// the versioned static assets, since pages and the API carry personal data.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if is_static {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The console's own script and stylesheet and the vendored htmx, compiled
/// into the binary: nothing is fetched from elsewhere.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../static/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../static/app.js")),
    ("record-form.css", "text/css; charset=utf-8", include_bytes!("../static/record-form.css")),
    ("htmx-2.0.11.min.js", "text/javascript; charset=utf-8", include_bytes!("../static/vendor/htmx-2.0.11.min.js")),
];

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type)], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// Local time of an epoch-millisecond instant, `YYYY-MM-DD HH:MM`.
pub fn local_time(ms: i64, offset: chrono::FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
