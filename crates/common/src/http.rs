//! Operations endpoints every service serves: `/metrics`, `/health/livez`, `/health/readyz`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// The state of one readiness check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
        if let Ok(mut checks) = self.checks.write() {
            checks.insert(name.to_string(), state);
        }
    }

    /// Whether at least one check is registered and all are ok.
    pub fn is_ready(&self) -> bool {
        self.checks
            .read()
            .map(|checks| !checks.is_empty() && checks.values().all(|check| check.ok))
            .unwrap_or(false)
    }

    /// A copy of every check's state.
    pub fn snapshot(&self) -> BTreeMap<String, CheckState> {
        self.checks
            .read()
            .map(|checks| checks.clone())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct OpsState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// Router with the operations endpoints; services merge their own routes into it.
pub fn ops_router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/health/livez",
            get(|| async { axum::Json(serde_json::json!({"status": "live"})) }),
        )
        .route("/health/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { readiness, metrics })
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let ready = state.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({"ready": ready, "checks": state.readiness.snapshot()});
    (status, axum::Json(body))
}

async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Binds `listen` and serves `router` until `shutdown` is cancelled; returns the bound address
/// (useful with port 0) and the server task.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Listen {
        addr: listen,
        source,
    })?;
    tracing::info!(address = %bound, "http listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "http server failed");
        }
    });
    Ok((bound, task))
}

/// Serves `router` on `listen` while `service` runs, and stops the listener only after `service`
/// returned, so health probes and metrics stay available through the drain.
pub async fn serve_while<T>(
    listen: SocketAddr,
    router: Router,
    service: impl std::future::Future<Output = T>,
) -> Result<T> {
    let http_shutdown = CancellationToken::new();
    let (_address, task) = serve(listen, router, http_shutdown.clone()).await?;
    let outcome = service.await;
    http_shutdown.cancel();
    let _ = task.await;
    Ok(outcome)
}
