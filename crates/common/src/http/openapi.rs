//! The operations endpoints' OpenAPI description, and `GET /openapi.json` serving a service's
//! whole description (its own endpoints merged with these), so every endpoint a service serves is
//! documented and can be checked against its description (schemathesis does in `make test`).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
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
pub(super) fn ops_api() -> utoipa::openapi::OpenApi {
    OpsDoc::openapi()
}

/// The description of a service without endpoints of its own (only the operations endpoints,
/// which [`super::ops_router`] adds): `title` (the binary's name), this release's version and
/// `description`.
pub fn service_api(title: &str, description: &str) -> utoipa::openapi::OpenApi {
    let mut api = utoipa::openapi::OpenApiBuilder::new().build();
    api.info.title = title.to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(description.to_string());
    api
}

/// `GET /openapi.json` answering `api`, serialized once: the description does not change while
/// the service runs.
pub(super) fn openapi_router(api: utoipa::openapi::OpenApi) -> Router {
    let document = serde_json::to_vec(&api)
        .map(Bytes::from)
        .map_err(|error| error.to_string());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move {
                match document {
                    Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
                    Err(message) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(serde_json::json!({"error": {
                            "kind": "internal",
                            "message": format!("the OpenAPI description cannot be serialized: {message}"),
                            "retryable": false,
                        }})),
                    )
                        .into_response(),
                }
            }
        }),
    )
}
