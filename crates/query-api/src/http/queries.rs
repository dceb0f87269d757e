//! `GET /v1/queries/{id}`, `GET /v1/queries/{id}/results`, `DELETE /v1/queries/{id}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stockstream_common::sync::MutexExt;

use super::AppState;
use super::formats::{columns_of, json_rows};
use super::model::{ErrorBody, ErrorDetail, PageParams, QueryInfo, ResultsPage};
use super::query::{error_copy, with_query_id};
use crate::engine::QueryState;
use crate::error::{Error, Result};
use crate::registry::{Entry, StoredResults};

/// Most rows on one results page.
const MAX_PAGE: usize = 1000;

fn entry(app: &AppState, id: &str) -> Result<std::sync::Arc<Entry>> {
    app.registry.get(id).ok_or_else(|| {
        Error::NotFound(format!(
            "no query `{id}` (unknown, or forgotten {:?} after it ended)",
            app.config.result_ttl
        ))
    })
}

fn info(entry: &Entry) -> QueryInfo {
    let status = entry.status();
    QueryInfo {
        query_id: entry.id.clone(),
        state: status.state,
        sql: entry.sql.clone(),
        submitted_at: entry.submitted_at.to_rfc3339(),
        stats: entry.stats(),
        error: status.error.map(|error| ErrorDetail {
            kind: error.kind().to_string(),
            message: error.to_string(),
            retryable: error.is_retryable(),
        }),
    }
}

/// The state and statistics of a query.
#[utoipa::path(
    get,
    path = "/v1/queries/{id}",
    tag = "query",
    params(("id" = String, Path, description = "Query id")),
    responses(
        (status = 200, description = "The query's state", body = QueryInfo),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown or forgotten query", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn get_query(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match entry(&app, &id) {
        Ok(entry) => with_query_id(Json(info(&entry)).into_response(), &id),
        Err(error) => error.into_response(),
    }
}

/// Cancels a query (on Athena: `StopQueryExecution`); a finished query stays as it was.
#[utoipa::path(
    delete,
    path = "/v1/queries/{id}",
    tag = "query",
    params(("id" = String, Path, description = "Query id")),
    responses(
        (status = 200, description = "The query's state after the request", body = QueryInfo),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown or forgotten query", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn delete_query(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let entry = match entry(&app, &id) {
        Ok(entry) => entry,
        Err(error) => return error.into_response(),
    };
    if !entry.status().state.is_terminal() {
        entry.cancel.cancel();
        // The engine confirms; wait briefly so the answer shows the new state.
        let mut status = entry.status.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            status.wait_for(|status| status.state.is_terminal()),
        )
        .await;
    }
    with_query_id(Json(info(&entry)).into_response(), &id)
}

/// A page of an asynchronous query's rows.
#[utoipa::path(
    get,
    path = "/v1/queries/{id}/results",
    tag = "query",
    params(("id" = String, Path, description = "Query id"), PageParams),
    responses(
        (status = 200, description = "One page of rows", body = ResultsPage),
        (status = 400, description = "Bad page token or size; or the query failed because of its SQL", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown query, or one answered synchronously (its rows were in that answer)", body = ErrorBody),
        (status = 409, description = "Still running, or cancelled", body = ErrorBody),
        (status = 500, description = "The query failed", body = ErrorBody),
        (status = 502, description = "Athena or Glue failed", body = ErrorBody),
        (status = 503, description = "The query ran out of memory", body = ErrorBody),
        (status = 422, description = "The query did not finish within its time limit and was cancelled", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn get_results(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: std::result::Result<Query<PageParams>, QueryRejection>,
) -> Response {
    match results_page(&app, &id, params) {
        Ok(page) => with_query_id(Json(page).into_response(), &id),
        Err(error) => error.into_response(),
    }
}

/// One page of the rows an asynchronous query kept, as `params` ask.
fn results_page(
    app: &AppState,
    id: &str,
    params: std::result::Result<Query<PageParams>, QueryRejection>,
) -> Result<ResultsPage> {
    let Query(params) = params.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let (start, size) = page_bounds(&params)?;
    let entry = entry(app, id)?;
    ensure_succeeded(&entry, id)?;
    let results = entry.results.locked();
    let Some(results) = results.as_ref() else {
        return Err(no_stored_results(&entry, id));
    };
    if start > results.rows {
        return Err(Error::BadRequest(format!(
            "page_token `{start}` is past the {} rows",
            results.rows
        )));
    }
    let rows = page_rows(results, start, size);
    let end = start + rows.len();
    Ok(ResultsPage {
        query_id: id.to_string(),
        columns: results
            .schema
            .as_ref()
            .map(|schema| columns_of(schema))
            .unwrap_or_default(),
        rows,
        next_page_token: (end < results.rows).then(|| end.to_string()),
        truncated: results.truncated,
    })
}

/// The first row (`page_token`) and the number of rows (`page_size`) a page asks for.
fn page_bounds(params: &PageParams) -> Result<(usize, usize)> {
    let size = match params.page_size {
        None => MAX_PAGE,
        Some(size @ 1..=1000) => size as usize,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "page_size {other} is outside 1..=1000"
            )));
        }
    };
    let start = match params.page_token.as_deref() {
        None | Some("") => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| Error::BadRequest(format!("page_token `{token}` is not one we issued")))?,
    };
    Ok((start, size))
}

/// Only a query that succeeded has rows to page: one still running is not finished, a failed or
/// cancelled one answers its error.
fn ensure_succeeded(entry: &Entry, id: &str) -> Result<()> {
    let status = entry.status();
    match (status.state, &status.error) {
        (QueryState::Succeeded, _) => Ok(()),
        (QueryState::Queued | QueryState::Running, _) => Err(Error::NotFinished {
            id: id.to_string(),
            state: status.state.name(),
        }),
        (_, Some(error)) => Err(error_copy(error)),
        (state, None) => Err(Error::Internal(format!(
            "query ended {} without a reason",
            state.name()
        ))),
    }
}

/// Why a succeeded query has no stored rows: answered in full in its response, or not yet handed
/// to the registry by its collector.
fn no_stored_results(entry: &Entry, id: &str) -> Error {
    if entry.answered.locked().is_some() {
        Error::NotFound(format!(
            "query `{id}` was answered in its response; only queries answered with 202 keep their rows"
        ))
    } else {
        Error::NotFinished {
            id: id.to_string(),
            state: "SUCCEEDED (rows being stored)",
        }
    }
}

/// Up to `size` rows from row `start` on: the JSON rows collected before the hand-over first,
/// then the stored batches.
fn page_rows(results: &StoredResults, start: usize, size: usize) -> Vec<Vec<Value>> {
    let mut rows = Vec::with_capacity(size.min(results.rows - start));
    let mut position = 0;
    for row in &results.prefix_rows {
        if rows.len() == size {
            break;
        }
        if position >= start {
            rows.push(row.clone());
        }
        position += 1;
    }
    for batch in &results.batches {
        if rows.len() == size {
            break;
        }
        let batch_rows = batch.num_rows();
        if position + batch_rows <= start {
            position += batch_rows;
            continue;
        }
        let skip = start.saturating_sub(position);
        let take = (batch_rows - skip).min(size - rows.len());
        rows.extend(json_rows(&batch.slice(skip, take)));
        position += batch_rows;
    }
    rows
}
