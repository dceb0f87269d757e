//! Operations endpoints every service serves (`/metrics`, `/health/livez`, `/health/readyz`), their
//! OpenAPI description, and the HTTP server.
//!
//! - `mod.rs`: readiness checks, the operations router (which also serves `/openapi.json`) and its
//!   handlers;
//! - `openapi.rs`: the operations endpoints' OpenAPI description, a bare description for services
//!   without endpoints of their own, and `/openapi.json` for a service's whole description;
//! - `server.rs`: [`serve`] and [`serve_while`], HTTP/1 with bounds on request heads and bodies.

mod openapi;
mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::sync::RwLockExt;

pub use openapi::service_api;
pub use server::{
    BODY_IDLE_TIMEOUT, BODY_TOTAL_TIMEOUT, BodyTimeout, DRAIN_TIMEOUT, HEADER_READ_TIMEOUT,
    MAX_HEAD_BYTES, serve, serve_while,
};

/// The state of one readiness check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckState {
    /// Whether the dependency is usable.
    pub ok: bool,
    /// What was seen, for operators.
    pub detail: String,
}

/// Named readiness checks; the service is ready when every registered check is ok.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, CheckState>>>,
}

impl Readiness {
    /// Records the outcome of check `name`.
    pub fn set(&self, name: &str, ok: bool, detail: impl Into<String>) {
        let state = CheckState {
            ok,
            detail: detail.into(),
        };
        self.checks.write_locked().insert(name.to_string(), state);
    }

    /// Whether at least one check is registered and all are ok.
    pub fn is_ready(&self) -> bool {
        let checks = self.checks.read_locked();
        !checks.is_empty() && checks.values().all(|check| check.ok)
    }

    /// A copy of every check's state.
    pub fn snapshot(&self) -> BTreeMap<String, CheckState> {
        self.checks.read_locked().clone()
    }
}

#[derive(Clone)]
struct OpsState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// Router with the operations endpoints and `GET /openapi.json`, which answers `api` (the
/// service's own endpoints) merged with the operations endpoints' description; services merge
/// their own routes into it. Taking the description here means no service can serve the
/// operations endpoints without describing them.
pub fn ops_router(
    readiness: Readiness,
    metrics: PrometheusHandle,
    mut api: utoipa::openapi::OpenApi,
) -> Router {
    api.merge(openapi::ops_api());
    Router::new()
        .route("/health/livez", get(livez))
        .route("/health/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { readiness, metrics })
        .merge(openapi::openapi_router(api))
}

/// `GET /health/livez`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveAnswer {
    /// Always `live`: the process answers.
    pub status: &'static str,
}

/// `GET /health/readyz`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadyAnswer {
    /// Whether every check is ok (and at least one is registered).
    pub ready: bool,
    /// Each check by name.
    pub checks: BTreeMap<String, CheckState>,
}

/// The process answers (it is not wedged); says nothing about its dependencies.
#[utoipa::path(
    get,
    path = "/health/livez",
    tag = "operations",
    responses((status = 200, description = "The process is live", body = LiveAnswer)),
)]
async fn livez() -> axum::Json<LiveAnswer> {
    axum::Json(LiveAnswer { status: "live" })
}

/// Whether the service can do its work: every readiness check with what it saw.
#[utoipa::path(
    get,
    path = "/health/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Every check is ok", body = ReadyAnswer),
        (status = 503, description = "A check failed or none has run yet", body = ReadyAnswer),
    ),
)]
async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let ready = state.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ReadyAnswer {
        ready,
        checks: state.readiness.snapshot(),
    };
    (status, axum::Json(body))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)),
)]
async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::telemetry::metrics_handle;

    /// A plain HTTP/1.1 GET on a blocking socket: the answer's status line and body.
    fn get(address: std::net::SocketAddr, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ops_router_describes_the_service_and_the_operations_endpoints() {
        let readiness = Readiness::default();
        readiness.set("kafka", true, "reachable");
        let api = service_api("stockstream-test", "A test service.");
        let router = ops_router(readiness, metrics_handle(), api);
        let shutdown = CancellationToken::new();
        let (address, task) = serve(
            "127.0.0.1:0".parse().expect("address"),
            router,
            shutdown.clone(),
        )
        .await
        .expect("serve");
        let (status, body) = tokio::task::spawn_blocking(move || get(address, "/openapi.json"))
            .await
            .expect("request");
        assert!(status.contains(" 200 "), "{status}");
        let document: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(document["info"]["title"], "stockstream-test");
        assert_eq!(document["info"]["description"], "A test service.");
        for path in ["/health/livez", "/health/readyz", "/metrics"] {
            assert!(
                document["paths"][path]["get"].is_object(),
                "{path} is not described: {body}"
            );
        }
        let (status, body) = tokio::task::spawn_blocking(move || get(address, "/health/readyz"))
            .await
            .expect("request");
        assert!(status.contains(" 200 "), "{status}");
        assert!(body.contains("\"ready\":true"), "{body}");
        shutdown.cancel();
        task.await.expect("server");
    }
}
