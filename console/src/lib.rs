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
pub mod photo;
pub mod scope;
pub mod state;
pub mod tls;
pub mod views;
pub mod web;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub use error::AppError;
pub use state::AppState;

/// The process's figures and who may read them: with a token, a scraper
/// that sends it as `Authorization: Bearer …`; without, only a client on this
/// machine that came through no proxy.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    token: Option<std::sync::Arc<str>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("token", &self.token.as_ref().map(|_| "…")).finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(handle: PrometheusHandle, token: Option<String>) -> Metrics {
        Metrics { handle, token: token.map(Into::into) }
    }

    fn may_read(&self, headers: &axum::http::HeaderMap, peer: Option<std::net::SocketAddr>) -> bool {
        match &self.token {
            Some(token) => auth::bearer_token(headers)
                .is_some_and(|sent| bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), token.as_bytes()))),
            None => peer.is_some_and(|peer| peer.ip().is_loopback()) && !headers.contains_key("x-forwarded-for"),
        }
    }
}

/// The whole console: pages, `/api/v1`, `/static`, `/healthz` and `/metrics`.
/// Each room's routes share one [`AppState`], given here once.
pub fn router(metrics: Metrics, state: AppState) -> Router {
    let storage = state.store.storage().clone();
    Router::new()
        .merge(pages::router())
        .merge(auth::login::router())
        .merge(api::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::session_layer))
        .merge(pages::links_router())
        .with_state(state)
        .layer(axum::middleware::from_fn(error::render_errors))
        .route("/static/{name}", get(web::asset))
        .route("/sw.js", get(web::service_worker))
        .route("/manifest.webmanifest", get(web::manifest))
        .merge(operations_router(metrics, storage))
        .layer(axum::middleware::from_fn(web::security_headers))
        // gzip where the browser accepts it; tower-http leaves event streams alone.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// `/healthz` and `/metrics` only: what a gateway without a console serves.
///
/// `/healthz` answers `ok` and the schema the database was brought to at
/// start (a store opens only once it is at this build's newest migration);
/// 503 `storage full` while the database has no room to write.
pub fn operations_router(metrics: Metrics, storage: anxin_store::Storage) -> Router {
    use axum::response::IntoResponse;
    let schema = anxin_store::newest_schema();
    let health = move || {
        let storage = storage.clone();
        async move {
            match storage.full_since() {
                None => (axum::http::StatusCode::OK, format!("ok\nschema {schema}\n")),
                Some(since) => {
                    let since = chrono::DateTime::from_timestamp_millis(since).unwrap_or_default();
                    let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        format!("storage full since {since}\nschema {schema}\n"),
                    )
                }
            }
        }
    };
    Router::new().route("/healthz", get(health)).route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap, request: axum::extract::Request| {
            let metrics = metrics.clone();
            async move {
                let peer = request
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|axum::extract::ConnectInfo(peer)| *peer);
                if !metrics.may_read(&headers, peer) {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        "metrics: send the bearer token (ANXIN_METRICS_TOKEN)\n",
                    )
                        .into_response();
                }
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.handle.render()).into_response()
            }
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
        let local = axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)));
        let schema = format!("ok\nschema {}\n", anxin_store::newest_schema());
        for (path, expected) in [("/healthz", schema.as_str()), ("/metrics", "")] {
            let mut request = Request::get(path).body(Body::empty()).unwrap();
            request.extensions_mut().insert(local);
            let response = operations_router(Metrics::new(handle.clone(), None), anxin_store::Storage::default())
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            assert!(String::from_utf8_lossy(&body).contains(expected), "{path}");
        }
        // A disk full: the health check says so, and since when.
        let storage = anxin_store::Storage::default();
        assert!(storage.full_at(1_796_000_000_000));
        let router = operations_router(Metrics::new(handle.clone(), None), storage.clone());
        let response = router.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).starts_with("storage full since 2026-11-30T00:53:20Z"), "{body:?}");
        assert!(storage.room_again());
        let response = router.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "room again");
    }

    #[tokio::test]
    async fn metrics_answer_off_this_machine_only_to_the_token() {
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let status = async |token: Option<&str>, peer: [u8; 4], headers: &[(&str, &str)]| {
            let mut request = Request::get("/metrics");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let mut request = request.body(Body::empty()).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((peer, 40_000))));
            let metrics = Metrics::new(handle.clone(), token.map(String::from));
            operations_router(metrics, anxin_store::Storage::default()).oneshot(request).await.unwrap().status()
        };
        let token = "a scraper's token, long enough";
        let bearer = format!("Bearer {token}");
        assert_eq!(status(None, [203, 0, 113, 7], &[]).await, StatusCode::UNAUTHORIZED, "off this machine");
        assert_eq!(
            status(None, [127, 0, 0, 1], &[("x-forwarded-for", "203.0.113.7")]).await,
            StatusCode::UNAUTHORIZED,
            "through a proxy on this machine"
        );
        assert_eq!(status(Some(token), [203, 0, 113, 7], &[("authorization", &bearer)]).await, StatusCode::OK);
        assert_eq!(
            status(Some(token), [127, 0, 0, 1], &[("authorization", "Bearer wrong")]).await,
            StatusCode::UNAUTHORIZED,
            "with a token set, even loopback sends it"
        );
    }
}
