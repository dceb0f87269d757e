//! The HTTP API: routes, shared state, authentication, CORS and error bodies.
//!
//! Files:
//! - `mod.rs`: the router, [`AppState`], bearer-token authentication, CORS, the error body;
//! - [`query`]: `POST /v1/query` and the query runner (limits, slots, sync/async, streaming);
//! - [`queries`]: `GET`/`DELETE /v1/queries/{id}` and `GET /v1/queries/{id}/results`;
//! - [`market`]: `/v1/symbols…` (parameterized queries) and `/v1/tables…` (the catalog);
//! - [`formats`]: `Accept` negotiation and the NDJSON, CSV and Arrow encoders;
//! - [`model`]: request and response bodies;
//! - [`openapi`]: `/openapi.json`, generated from the handlers and bodies;
//! - [`assets`]: the dashboard page at `/` and its embedded files under `/assets/`;
//! - [`stream`]: `GET /v1/stream/quotes`, live quotes as Server-Sent Events;
//! - [`status`]: `GET /v1/status`, the lake and the pipeline's services.

pub mod assets;
pub(crate) mod formats;
pub(crate) mod market;
pub mod model;
pub(crate) mod openapi;
pub(crate) mod queries;
pub(crate) mod query;
pub mod status;
pub(crate) mod stream;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::model::{ErrorBody, ErrorDetail};
use crate::catalog::CatalogView;
use crate::config::QueryConfig;
use crate::engine::QueryEngine;
use crate::error::Error;
use crate::live::Live;
use crate::metrics;
use crate::registry::Registry;
use crate::status::StatusBoard;

/// Header carrying the query id on every query answer.
pub const QUERY_ID_HEADER: HeaderName = HeaderName::from_static("x-stockstream-query-id");

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine answering SQL.
    pub engine: Arc<dyn QueryEngine>,
    /// The catalog (tables for the guard and `/v1/tables`).
    pub catalog: CatalogView,
    /// Query settings.
    pub config: Arc<QueryConfig>,
    /// Remembered queries.
    pub registry: Arc<Registry>,
    /// Execution slots (`query.max_concurrent`).
    pub slots: Arc<Semaphore>,
    /// The live view (`None` with `live.enabled = false`).
    pub live: Option<Live>,
    /// The sampled status of the pipeline's services.
    pub status: StatusBoard,
    /// Cancelled when the server shuts down (ends the live streams).
    pub shutdown: CancellationToken,
    /// SHA-256 digests of the accepted bearer tokens.
    token_digests: Arc<Vec<[u8; 32]>>,
}

/// What [`AppState`] is made of besides the engine and catalog.
#[derive(Debug)]
pub struct Services {
    /// The live view, when on.
    pub live: Option<Live>,
    /// The status board.
    pub status: StatusBoard,
    /// The server's shutdown token.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State for `engine` and `catalog` under `config`.
    pub fn new(
        engine: Arc<dyn QueryEngine>,
        catalog: CatalogView,
        config: QueryConfig,
        services: Services,
    ) -> Self {
        let token_digests = config
            .auth_tokens
            .iter()
            .map(|token| digest(token.expose().as_bytes()))
            .collect();
        Self {
            registry: Arc::new(Registry::new(
                config.result_ttl,
                config.max_stored_queries.get(),
                config.max_stored_result_bytes.get(),
            )),
            slots: Arc::new(Semaphore::new(config.max_concurrent.get())),
            token_digests: Arc::new(token_digests),
            config: Arc::new(config),
            engine,
            catalog,
            live: services.live,
            status: services.status,
            shutdown: services.shutdown,
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind().to_string(),
                message: self.to_string(),
                retryable: self.is_retryable(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(after) = self.retry_after()
            && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if matches!(self, Error::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stockstream\""),
            );
        }
        response
    }
}

/// The `/v1` routes (authentication, body limit) and the dashboard merged with `ops` (the
/// operations endpoints and `/openapi.json`), all with CORS.
pub fn routes(state: AppState, ops: Router) -> Router {
    let v1 = Router::new()
        .route("/v1/query", post(query::post_query))
        .route(
            "/v1/queries/{id}",
            get(queries::get_query).delete(queries::delete_query),
        )
        .route("/v1/queries/{id}/results", get(queries::get_results))
        .route("/v1/symbols", get(market::symbols))
        .route("/v1/symbols/{symbol}/quotes", get(market::quotes))
        .route("/v1/symbols/{symbol}/candles", get(market::candles))
        .route("/v1/tables", get(market::tables))
        .route("/v1/tables/{name}", get(market::table))
        .route("/v1/status", get(status::status))
        .route("/v1/stream/quotes", get(stream::quotes))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes.get()))
        .fallback(|| async { Error::NotFound("no such endpoint; see /openapi.json".into()) })
        .with_state(state.clone());
    let router = Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .merge(ops)
        .merge(v1);
    match cors(&state.config.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// Requires `Authorization: Bearer <token>` with one of `query.auth_tokens`, if any are set.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.token_digests.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| digest(token.trim().as_bytes()));
    // Compare digests in constant time, against every token, so timing reveals nothing.
    let accepted = presented.is_some_and(|presented| {
        state
            .token_digests
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.ct_eq(&presented)
            })
            .into()
    });
    if accepted {
        next.run(request).await
    } else {
        metrics::rejected("unauthorized");
        Error::Unauthorized.into_response()
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([QUERY_ID_HEADER, header::LOCATION, header::RETRY_AFTER]),
    )
}
