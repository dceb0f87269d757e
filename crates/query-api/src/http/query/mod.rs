//! `POST /v1/query`, and the query runner every SQL-backed endpoint shares.
//!
//! A request is checked (size, guard, parameters), waits at most `query.queue_timeout` for one
//! of `query.max_concurrent` execution slots (else `503` with `Retry-After`), and starts on the
//! engine. Then:
//! - JSON: rows are collected up to the row and response-size limits; a query done within
//!   `query.sync_wait` answers `200`, a slower one `202` with its id while its rows are kept
//!   for `GET /v1/queries/{id}/results`;
//! - NDJSON, CSV, Arrow: once the first batch is there (within `sync_wait`, else `202`), rows are
//!   streamed batch by batch as the engine produces them; nothing holds the whole result.
//!
//! An error before the first byte is a proper status with a JSON body. A client that disconnects
//! from a synchronous query cancels it (the token's drop guard lives in the handler's future and
//! in the response stream).
//!
//! Files:
//! - `mod.rs`: the handler, the request checks ([`prepare`]) and the choice between a JSON answer
//!   and a stream;
//! - `submit.rs`: an execution slot, the start on the engine, the metrics of the query's end;
//! - `collect.rs`: rows collected for a JSON answer within the limits;
//! - `outcome.rs`: a finished query's stats or error;
//! - `accepted.rs`: a query that outlived its wait: `202`, and its rows kept for paging;
//! - `streamed.rs`: NDJSON, CSV and Arrow answers streamed batch by batch.

mod accepted;
mod collect;
mod outcome;
mod streamed;
mod submit;

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use self::accepted::accept_async;
pub(crate) use self::collect::{Collected, collect_until};
pub(crate) use self::outcome::{error_copy, finished};
pub(crate) use self::streamed::respond_streamed;
use self::streamed::stream_response;
pub(crate) use self::submit::{Running, submit};
use super::formats::{Format, negotiate};
use super::model::{Accepted, ErrorBody, QueryAnswer, QueryBody};
use super::{AppState, QUERY_ID_HEADER};
use crate::engine::{Param, QueryRequest};
use crate::error::{Error, Result};
use crate::guard;
use crate::metrics;

/// Runs SQL from the request body.
#[utoipa::path(
    post,
    path = "/v1/query",
    tag = "query",
    request_body = QueryBody,
    responses(
        (status = 200, description = "The complete answer (JSON), or rows streamed as NDJSON, CSV or an Arrow IPC stream, chosen by `Accept`", body = QueryAnswer,
            content(
                (QueryAnswer = "application/json"),
                (String = "application/x-ndjson"),
                (String = "text/csv"),
                (String = "application/vnd.apache.arrow.stream"),
            )),
        (status = 202, description = "Not done within `query.sync_wait`: poll `status_url`", body = Accepted),
        (status = 400, description = "Malformed request, refused statement, or SQL that does not parse or plan", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 409, description = "The query was cancelled", body = ErrorBody),
        (status = 413, description = "Body over `query.max_body_bytes`", body = ErrorBody),
        (status = 500, description = "The engine failed", body = ErrorBody),
        (status = 502, description = "Athena or Glue failed", body = ErrorBody),
        (status = 503, description = "All execution slots busy (see `Retry-After`) or out of memory", body = ErrorBody),
        (status = 422, description = "The query did not finish within its time limit and was cancelled", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn post_query(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Json<QueryBody>, JsonRejection>,
) -> Response {
    let received = Instant::now();
    let outcome = async {
        let format = negotiate(&headers)?;
        let Json(body) = body.map_err(|rejection| body_error(rejection, &app))?;
        let request = prepare(&app, body)?;
        let running = submit(&app, request).await?;
        respond(&app, running, format, received).await
    }
    .await;
    outcome.unwrap_or_else(|error| {
        metrics::rejected(error.kind());
        error.into_response()
    })
}

/// The error of a body that could not be read as [`QueryBody`].
pub(crate) fn body_error(rejection: JsonRejection, app: &AppState) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge {
            limit: app.config.max_body_bytes.get(),
        }
    } else {
        Error::BadRequest(format!(
            "body must be JSON {{\"sql\": \"…\", \"params\": […]}}: {}",
            rejection.body_text()
        ))
    }
}

/// Checks a request body and turns it into a [`QueryRequest`].
pub(crate) fn prepare(app: &AppState, body: QueryBody) -> Result<QueryRequest> {
    let config = &app.config;
    let sql = body.sql.trim();
    if sql.is_empty() {
        return Err(Error::BadRequest("`sql` is empty".into()));
    }
    if sql.len() > config.max_sql_bytes.get() {
        return Err(Error::BadRequest(format!(
            "`sql` is {} bytes, over the {}-byte limit (query.max_sql_bytes)",
            sql.len(),
            config.max_sql_bytes
        )));
    }
    let mut scope = app.catalog.snapshot().scope();
    if app.config.live_tail {
        // Table `quotes` is there before the catalog has it: the tail answers for it.
        scope
            .tables
            .insert(stockstream_common::lake::QUOTES_TABLE.to_string());
    }
    let checked = guard::check(sql, &scope)?;
    let params = body
        .params
        .iter()
        .enumerate()
        .map(|(position, value)| Param::from_json(position, value))
        .collect::<Result<Vec<_>>>()?;
    if params.len() != checked.placeholders {
        return Err(Error::BadRequest(format!(
            "the SQL has {} `?` placeholder(s) but {} params were given",
            checked.placeholders,
            params.len()
        )));
    }
    let max_rows = match body.max_rows {
        Some(0) => return Err(Error::BadRequest("`max_rows` must be at least 1".into())),
        Some(rows) => usize::try_from(rows)
            .unwrap_or(usize::MAX)
            .min(config.max_rows_limit.get()),
        None => config.max_rows.get(),
    };
    let timeout = match body.timeout_ms {
        Some(0) => return Err(Error::BadRequest("`timeout_ms` must be at least 1".into())),
        Some(millis) => Duration::from_millis(millis).min(config.timeout),
        None => config.timeout,
    };
    Ok(QueryRequest {
        id: uuid::Uuid::new_v4().to_string(),
        sql: sql.to_string(),
        checked,
        params,
        max_rows,
        timeout,
    })
}

/// Answers a started query in `format`.
async fn respond(
    app: &AppState,
    mut running: Running,
    format: Format,
    received: Instant,
) -> Result<Response> {
    let until = tokio::time::Instant::from_std(received + app.config.sync_wait);
    if format == Format::Json {
        let mut collected = Collected::default();
        let done = collect_until(
            &mut running.output,
            &mut collected,
            until,
            running.max_rows,
            app.config.max_response_bytes.get(),
        )
        .await;
        if !done {
            return Ok(accept_async(app, running, collected));
        }
        let mut stats = finished(&running.entry)?;
        stats.rows = collected.rows.len();
        stats.truncated = collected.truncated;
        stats.elapsed_ms = received.elapsed().as_secs_f64() * 1000.0;
        running.entry.set_answered(stats.clone());
        let answer = QueryAnswer {
            query_id: running.entry.id.clone(),
            columns: collected.columns(),
            rows: collected.rows,
            stats,
        };
        return Ok(with_query_id(
            Json(answer).into_response(),
            &running.entry.id,
        ));
    }
    stream_response(app, running, format, until, received).await
}

/// Adds the `x-stockstream-query-id` header.
pub(crate) fn with_query_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(QUERY_ID_HEADER, value);
    }
    response
}
