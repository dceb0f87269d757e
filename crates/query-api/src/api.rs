//! HTTP routes: `POST /v1/query`, `GET /v1/tables`, and the index at `/`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use stockstream_common::catalog::Catalog;
use stockstream_common::lake::LakeStore;

use crate::config::QueryConfig;
use crate::engine::QueryEngine;
use crate::error::Error;

/// What the routes share.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    pub(crate) engine: Arc<dyn QueryEngine>,
    pub(crate) store: Arc<dyn LakeStore>,
    pub(crate) query: QueryConfig,
}

/// Body of `POST /v1/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {"kind": self.kind(), "message": self.to_string(), "retryable": self.is_retryable()}
        });
        (self.status(), Json(body)).into_response()
    }
}

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/v1/query", post(query))
        .route("/v1/tables", get(tables))
        .with_state(state)
}

async fn index() -> impl IntoResponse {
    Json(json!({
        "service": "stockstream-query-api",
        "endpoints": {
            "POST /v1/query": "{\"sql\": \"SELECT …\"} → {columns, rows, stats}",
            "GET /v1/tables": "the catalog's databases, tables, columns and partitions",
            "GET /metrics": "Prometheus metrics",
            "GET /health/livez": "liveness",
            "GET /health/readyz": "readiness",
        },
        "example": "SELECT symbol, max(close) AS max_close FROM quotes WHERE year = 1987 GROUP BY symbol",
    }))
}

async fn query(
    State(state): State<ApiState>,
    body: Result<Json<QueryRequest>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let Json(request) = body.map_err(|rejection| {
            Error::BadRequest(format!(
                "body must be JSON {{\"sql\": \"…\"}}: {}",
                rejection.body_text()
            ))
        })?;
        let sql = request.sql.trim();
        if sql.is_empty() {
            return Err(Error::BadRequest("`sql` is empty".into()));
        }
        if sql.len() > state.query.max_sql_bytes.get() {
            return Err(Error::BadRequest(format!(
                "`sql` is {} bytes, over the {}-byte limit",
                sql.len(),
                state.query.max_sql_bytes
            )));
        }
        state
            .engine
            .execute(sql, state.query.max_rows.get(), state.query.timeout)
            .await
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(result) => {
            metrics::counter!("stockstream_query_requests_total", "outcome" => "ok").increment(1);
            metrics::histogram!("stockstream_query_duration_seconds").record(seconds);
            tracing::info!(
                rows = result.stats.rows,
                elapsed_ms = result.stats.elapsed_ms,
                "query answered"
            );
            (StatusCode::OK, Json(result)).into_response()
        }
        Err(error) => {
            metrics::counter!("stockstream_query_requests_total", "outcome" => error.kind())
                .increment(1);
            tracing::info!(kind = error.kind(), %error, "query rejected");
            error.into_response()
        }
    }
}

async fn tables(State(state): State<ApiState>) -> Response {
    match Catalog::load(state.store.as_ref()).await {
        Ok(catalog) => Json(catalog.unwrap_or_default()).into_response(),
        Err(error) => Error::from(error).into_response(),
    }
}
