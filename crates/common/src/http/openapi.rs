//! The operations endpoints' OpenAPI description, and `GET /openapi.json` serving a service's
//! whole description (its own endpoints merged with these), so every endpoint a service serves is
//! documented and can be checked against its description (schemathesis does in `make test`).

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;

use super::{CheckState, LiveAnswer, ReadyAnswer};

#[derive(OpenApi)]
#[openapi(
    paths(super::livez, super::readyz, super::render_metrics),
    components(schemas(LiveAnswer, ReadyAnswer, CheckState)),
    tags((name = "operations", description = "Health probes and Prometheus metrics, served by every stockstream service")),
)]
struct OpsDoc;

/// The operations endpoints (`/health/livez`, `/health/readyz`, `/metrics`).
pub fn ops_api() -> utoipa::openapi::OpenApi {
    OpsDoc::openapi()
}

/// The description of a service that serves only the operations endpoints: `title` (the
/// binary's name), this release's version and `description`.
pub fn service_api(title: &str, description: &str) -> utoipa::openapi::OpenApi {
    let mut api = ops_api();
    api.info.title = title.to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(description.to_string());
    api
}

/// `GET /openapi.json` answering `api`.
pub fn openapi_router(api: utoipa::openapi::OpenApi) -> Router {
    let api = Arc::new(api);
    Router::new().route(
        "/openapi.json",
        get(move || {
            let api = api.clone();
            async move { axum::Json(api.as_ref().clone()).into_response() }
        }),
    )
}
