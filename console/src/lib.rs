//! The caregiver console: the web pages, JSON API and live alert board that
//! on-call staff, visitors and civil-affairs officials use.
//!
//! It depends on the domain (`anxin_domain`) and the store (`anxin_store`)
//! and on nothing of the MQTT side: the alert feed it shows is handed to it
//! by whoever runs it. Its rooms, each depending only on those above it:
//!
//! - [`i18n`], [`web`]: words from the translation files, the page chrome,
//!   rendering, security headers, assets;
//! - [`state`]: the one [`AppState`] every handler shares;
//! - [`error`]: the one [`AppError`], rendered as JSON, htmx text or a page;
//! - [`auth`]: sessions, CSRF, the sign-in throttle, sign-in itself, and
//!   the extractors `Viewer` (pages) and `Caller` (API);
//! - [`scope`]: who may see what, asked the same way by pages and the API;
//! - [`views`], [`explain`]: rows, cards and charts in the reader's words;
//! - [`pages`] (server-rendered from templates checked at compile time)
//!   and [`api`] (`/api/v1`, JSON), which never import each other.

pub mod api;
pub mod auth;
pub mod error;
pub mod explain;
pub mod i18n;
pub mod pages;
pub mod scope;
pub mod state;
pub mod views;
pub mod web;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub use error::AppError;
pub use state::AppState;

/// The whole console: pages, `/api/v1`, `/static`, `/healthz` and `/metrics`.
/// Each room's routes share one [`AppState`], given here once.
pub fn router(metrics: PrometheusHandle, state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .merge(auth::login::router())
        .merge(api::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::session_layer))
        .with_state(state)
        .layer(axum::middleware::from_fn(error::render_errors))
        .route("/static/{name}", get(web::asset))
        .merge(operations_router(metrics))
        .layer(axum::middleware::from_fn(web::security_headers))
        // gzip where the browser accepts it; tower-http leaves event streams alone.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// `/healthz` and `/metrics` only: what a gateway without a console serves.
pub fn operations_router(metrics: PrometheusHandle) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn the_health_and_metrics_routes_answer() {
        let handle = PrometheusBuilder::new().build_recorder().handle();
        for (path, expected) in [("/healthz", "ok"), ("/metrics", "")] {
            let response = operations_router(handle.clone())
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            assert!(String::from_utf8_lossy(&body).contains(expected), "{path}");
        }
    }
}
