//! What every page shares: the page chrome (language, user, CSRF token),
//! rendering, security headers, the embedded assets and local times.

use askama::Template;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use anxin_domain::access::Role;

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
    /// An official of a whole county: closes its months, runs its spot-checks.
    pub closes_months: bool,
    /// The database has no room to write: every page says so.
    pub storage_full: bool,
}

impl Chrome {
    pub fn closes_months(&self) -> bool {
        self.closes_months
    }

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

/// Whether the request came from htmx (it wants a fragment, not a page).
/// `target` if it is a path of this console, else `/`: never another site.
/// Browsers read `/\\host` as `//host` and drop tabs and line breaks, so
/// neither may appear anywhere.
pub fn local_path(target: &str) -> String {
    let local =
        target.starts_with('/') && !target.starts_with("//") && !target.chars().any(|c| c == '\\' || c.is_control());
    if local { target.to_string() } else { "/".into() }
}

pub fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
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
    ("icon.svg", "image/svg+xml", include_bytes!("../static/icon.svg")),
    ("offline.js", "text/javascript; charset=utf-8", include_bytes!("../static/offline.js")),
    ("evidence.js", "text/javascript; charset=utf-8", include_bytes!("../static/evidence.js")),
];

/// The visitors' app: its service worker, served from the root so its scope
/// covers the pages, and its manifest.
pub async fn service_worker() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_bytes!("../static/sw.js").as_slice())
        .into_response()
}

pub async fn manifest() -> Response {
    ([(header::CONTENT_TYPE, "application/manifest+json")], include_bytes!("../static/manifest.webmanifest").as_slice())
        .into_response()
}

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

/// `HH:MM` of an epoch-ms time at the deployment's offset.
pub fn local_clock(ms: i64, offset: chrono::FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&offset).format("%H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/elders/7?x=1"), "/elders/7?x=1");
        for outside in
            ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "\\\\evil", ""]
        {
            assert_eq!(local_path(outside), "/", "{outside:?}");
        }
    }
}
