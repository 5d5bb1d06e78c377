//! The caregiver console: the web pages, JSON API and live alert board that
//! on-call staff, visitors and civil-affairs officials use.
//!
//! It depends on the domain (`anxin_domain`) and the store (`anxin_store`)
//! and on nothing of the MQTT side: the alert feed it shows is handed to it
//! by whoever runs it. Pages are rendered on the server from templates checked when the
//! console is compiled ([`pages`]); the JSON API under `/api/v1` ([`api`])
//! serves the same resources to scripts. Sign-in, sessions and CSRF are in
//! [`auth`]; every word shown comes from a translation file ([`i18n`]).

pub mod api;
pub mod auth;
pub mod explain;
pub mod i18n;
pub mod pages;
pub mod web;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

/// The whole console: pages, `/api/v1`, `/static`, `/healthz` and `/metrics`.
pub fn router(metrics: PrometheusHandle, state: api::ApiState) -> Router {
    Router::new()
        .merge(pages::router(state.clone()))
        .merge(auth::router(state.clone()))
        .merge(api::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, auth::session_layer))
        .layer(axum::middleware::from_fn(web::localize_errors))
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
