//! The caregiver console: the web pages, JSON API and live alert board that
//! on-call staff, visitors and civil-affairs officials use.
//!
//! It depends on the gateway's domain and store and never the other way
//! round. Today it serves the JSON API for alerts ([`api`]), a placeholder
//! page, a health check and the Prometheus metrics; the console issue fills
//! in the pages.

pub mod api;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub use anxin_gateway as gateway;

/// `/` (placeholder), `/api/v1`, `/healthz` and `/metrics`.
pub fn router(metrics: PrometheusHandle, api: api::ApiState) -> Router {
    Router::new().route("/", get(placeholder)).merge(api::router(api)).merge(operations_router(metrics))
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

async fn placeholder() -> impl IntoResponse {
    Html(concat!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>安心 Anxin</title></head>",
        "<body><h1>安心 Anxin</h1><p>网关运行中。控制台（值班告警、老人档案、探访记录）即将上线。</p>",
        "<p lang=\"en\">The gateway is running. The console (alert board, elder pages, visits) comes next.</p>",
        "<p><a href=\"/metrics\">/metrics</a></p></body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn the_placeholder_health_and_metrics_routes_answer() {
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
