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

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use super::formats::{Encoder, Format, columns_of, json_rows, negotiate};
use super::model::{Accepted, ColumnInfo, ErrorBody, QueryAnswer, QueryBody};
use super::{AppState, QUERY_ID_HEADER};
use crate::engine::{Output, Param, QueryRequest, QueryState, QueryStats};
use crate::error::{Error, Result};
use crate::guard;
use crate::metrics;
use crate::registry::{Entry, StoredResults};

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

/// A started query.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) entry: Arc<Entry>,
    pub(crate) output: mpsc::Receiver<Output>,
    pub(crate) max_rows: usize,
    /// Cancels the query if dropped while armed (a client that went away).
    pub(crate) cancel_on_drop: DropGuard,
}

/// Takes an execution slot and starts `request` on the engine.
pub(crate) async fn submit(app: &AppState, request: QueryRequest) -> Result<Running> {
    let permit =
        match tokio::time::timeout(app.config.queue_timeout, app.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(Error::Internal("execution slots closed".into())),
            Err(_elapsed) => {
                return Err(Error::Overloaded {
                    running: app.config.max_concurrent.get(),
                    retry_after: Duration::from_secs(1),
                });
            }
        };
    let max_rows = request.max_rows;
    let id = request.id.clone();
    let sql = request.sql.clone();
    let execution = app.engine.start(request).await?;
    let entry = app
        .registry
        .insert(id, sql, execution.status.clone(), execution.cancel.clone());
    let engine = app.engine.kind().name();
    metrics::in_flight(engine, 1.0);
    let mut status = execution.status.clone();
    tokio::spawn(async move {
        // The slot is held until the engine is done with the query.
        let _permit = permit;
        let final_status = status
            .wait_for(|status| status.state.is_terminal())
            .await
            .map(|status| status.clone());
        metrics::in_flight(engine, -1.0);
        if let Ok(final_status) = final_status {
            let outcome = match &final_status.error {
                Some(error) => error.kind(),
                None => "ok",
            };
            metrics::query_finished(
                engine,
                outcome,
                execution.started.elapsed(),
                final_status.stats.bytes_scanned,
            );
        }
    });
    Ok(Running {
        entry,
        output: execution.output,
        max_rows,
        cancel_on_drop: execution.cancel.drop_guard(),
    })
}

/// Rows collected for a JSON answer.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) schema: Option<SchemaRef>,
    pub(crate) rows: Vec<Vec<Value>>,
    pub(crate) bytes: usize,
    pub(crate) truncated: bool,
}

impl Collected {
    /// Columns of the answer.
    pub(crate) fn columns(&self) -> Vec<ColumnInfo> {
        self.schema
            .as_ref()
            .map(|schema| columns_of(schema))
            .unwrap_or_default()
    }

    fn add(&mut self, batch: &RecordBatch, max_rows: usize, max_bytes: usize) {
        if self.truncated {
            return;
        }
        for row in json_rows(batch) {
            if self.rows.len() >= max_rows {
                self.truncated = true;
                return;
            }
            let size = serde_json::to_vec(&row).map_or(0, |encoded| encoded.len() + 1);
            if self.bytes + size > max_bytes {
                self.truncated = true;
                return;
            }
            self.bytes += size;
            self.rows.push(row);
        }
    }
}

/// Reads `output` into `collected` until it closes (`true`) or `until` passes (`false`).
pub(crate) async fn collect_until(
    output: &mut mpsc::Receiver<Output>,
    collected: &mut Collected,
    until: tokio::time::Instant,
    max_rows: usize,
    max_bytes: usize,
) -> bool {
    loop {
        match tokio::time::timeout_at(until, output.recv()).await {
            Ok(Some(Output::Schema(schema))) => collected.schema = Some(schema),
            Ok(Some(Output::Batch(batch))) => collected.add(&batch, max_rows, max_bytes),
            Ok(None) => return true,
            Err(_elapsed) => return false,
        }
    }
}

/// The final status of a query whose output closed: its stats, or its error.
pub(crate) fn finished(entry: &Entry) -> Result<QueryStats> {
    let status = entry.status();
    match (status.state, status.error) {
        (QueryState::Succeeded, _) => Ok(status.stats),
        (_, Some(error)) => Err(error_copy(&error)),
        (state, None) => Err(Error::Internal(format!(
            "the engine stopped in state {}",
            state.name()
        ))),
    }
}

/// Rebuilds an error from a shared one (the registry keeps `Arc<Error>`).
pub(crate) fn error_copy(error: &Error) -> Error {
    match error {
        Error::Timeout(limit) => Error::Timeout(*limit),
        Error::Cancelled(reason) => Error::Cancelled(reason.clone()),
        Error::Forbidden(message) => Error::Forbidden(message.clone()),
        Error::InvalidQuery(message) => Error::InvalidQuery(message.clone()),
        Error::BadRequest(message) => Error::BadRequest(message.clone()),
        Error::ResourcesExhausted(message) => Error::ResourcesExhausted(message.clone()),
        Error::AthenaUser(message) => Error::AthenaUser(message.clone()),
        Error::Aws {
            service,
            operation,
            message,
            retryable,
        } => Error::Aws {
            service,
            operation,
            message: message.clone(),
            retryable: *retryable,
        },
        Error::Internal(message) => Error::Internal(message.clone()),
        other => Error::Execution(other.to_string()),
    }
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

/// Streams a started query in `format`, waiting up to `wait` for its first batch before
/// answering `202` instead.
pub(crate) async fn respond_streamed(
    app: &AppState,
    running: Running,
    format: Format,
    received: Instant,
    wait: Duration,
) -> Result<Response> {
    let until = tokio::time::Instant::from_std(received + wait);
    stream_response(app, running, format, until, received).await
}

/// Hands a query that outlived `sync_wait` to a background collector and answers `202`.
fn accept_async(app: &AppState, running: Running, collected: Collected) -> Response {
    let Running {
        entry,
        output,
        max_rows,
        cancel_on_drop,
    } = running;
    // The query now belongs to the registry, not to this request.
    let _ = cancel_on_drop.disarm();
    let state = entry.status().state;
    let id = entry.id.clone();
    tokio::spawn(store_results(
        app.clone(),
        entry,
        output,
        collected,
        max_rows,
    ));
    let accepted = Accepted {
        status_url: format!("/v1/queries/{id}"),
        results_url: format!("/v1/queries/{id}/results"),
        query_id: id.clone(),
        state,
    };
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/queries/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    with_query_id(response, &id)
}

/// Keeps an asynchronous query's rows (within the row limit and the registry's byte budget).
async fn store_results(
    app: AppState,
    entry: Arc<Entry>,
    mut output: mpsc::Receiver<Output>,
    collected: Collected,
    max_rows: usize,
) {
    let started = entry.submitted_at;
    // Rows collected before the hand-over stay as JSON rows ahead of the batches.
    let mut stored = StoredResults {
        schema: collected.schema,
        truncated: collected.truncated,
        rows: collected.rows.len(),
        bytes: collected.bytes,
        prefix_rows: collected.rows,
        ..StoredResults::default()
    };
    if !app.registry.reserve(stored.bytes) {
        stored.bytes = 0;
        stored.rows = 0;
        stored.prefix_rows.clear();
        stored.truncated = true;
    }
    while let Some(item) = output.recv().await {
        match item {
            Output::Schema(schema) => stored.schema = Some(schema),
            Output::Batch(batch) => {
                if stored.truncated {
                    continue;
                }
                let room = max_rows.saturating_sub(stored.rows);
                let batch = if batch.num_rows() > room {
                    stored.truncated = true;
                    batch.slice(0, room)
                } else {
                    batch
                };
                let bytes = batch.get_array_memory_size();
                if !app.registry.reserve(bytes) {
                    stored.truncated = true;
                    continue;
                }
                stored.bytes += bytes;
                stored.rows += batch.num_rows();
                stored.batches.push(batch);
            }
        }
    }
    let mut stats = finished(&entry).unwrap_or_else(|_| entry.status().stats);
    stats.rows = stored.rows;
    stats.truncated = stored.truncated;
    stats.elapsed_ms = (chrono::Utc::now() - started)
        .to_std()
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0);
    if let Ok(mut results) = entry.results.lock() {
        *results = Some(stored);
    }
    entry.set_answered(stats);
}

/// Streams a query's batches in `format` once the first one is there.
async fn stream_response(
    app: &AppState,
    mut running: Running,
    format: Format,
    until: tokio::time::Instant,
    received: Instant,
) -> Result<Response> {
    // Wait for the schema and the first batch (or the end) before committing to a 200.
    let mut schema = None;
    let mut first = None;
    loop {
        match tokio::time::timeout_at(until, running.output.recv()).await {
            Ok(Some(Output::Schema(found))) => schema = Some(found),
            Ok(Some(Output::Batch(batch))) => {
                first = Some(batch);
                break;
            }
            Ok(None) => {
                finished(&running.entry)?;
                break;
            }
            Err(_elapsed) => {
                return Ok(accept_async(
                    app,
                    running,
                    Collected {
                        schema,
                        ..Collected::default()
                    },
                ));
            }
        }
    }
    let schema = schema.ok_or_else(|| Error::Internal("the engine sent no schema".into()))?;
    let (encoder, head) = Encoder::start(format, &schema)?;
    let id = running.entry.id.clone();
    let stream = BatchStream {
        running,
        encoder,
        head: Some(head),
        first,
        sent_rows: 0,
        sent_bytes: 0,
        max_bytes: app.config.max_response_bytes.get(),
        truncated: false,
        received,
        done: false,
    };
    let body = Body::from_stream(futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((chunk, stream))
    }));
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(with_query_id(response, &id))
}

/// The state of a streamed answer.
struct BatchStream {
    running: Running,
    encoder: Encoder,
    head: Option<bytes::Bytes>,
    first: Option<RecordBatch>,
    sent_rows: usize,
    sent_bytes: usize,
    max_bytes: usize,
    truncated: bool,
    received: Instant,
    done: bool,
}

impl BatchStream {
    /// The next chunk of the body; `None` at the end; an `Err` aborts the response.
    async fn next_chunk(&mut self) -> Option<std::result::Result<bytes::Bytes, Error>> {
        if self.done {
            return None;
        }
        if let Some(head) = self.head.take()
            && !head.is_empty()
        {
            return Some(Ok(head));
        }
        loop {
            let batch = match self.first.take() {
                Some(batch) => Some(batch),
                None => loop {
                    match self.running.output.recv().await {
                        Some(Output::Batch(batch)) => break Some(batch),
                        Some(Output::Schema(_)) => continue,
                        None => break None,
                    }
                },
            };
            let Some(batch) = batch else {
                return self.end();
            };
            if self.truncated {
                continue;
            }
            let room = self.running.max_rows.saturating_sub(self.sent_rows);
            let batch = if batch.num_rows() > room {
                self.truncated = true;
                batch.slice(0, room)
            } else {
                batch
            };
            if batch.num_rows() == 0 {
                continue;
            }
            match self.encoder.batch(&batch) {
                Ok(chunk) if self.sent_bytes + chunk.len() > self.max_bytes => {
                    self.truncated = true;
                }
                Ok(chunk) => {
                    self.sent_rows += batch.num_rows();
                    self.sent_bytes += chunk.len();
                    return Some(Ok(chunk));
                }
                Err(error) => return Some(Err(error)),
            }
        }
    }

    fn end(&mut self) -> Option<std::result::Result<bytes::Bytes, Error>> {
        self.done = true;
        match finished(&self.running.entry) {
            Ok(mut stats) => {
                stats.rows = self.sent_rows;
                stats.truncated = self.truncated;
                stats.elapsed_ms = self.received.elapsed().as_secs_f64() * 1000.0;
                self.running.entry.set_answered(stats);
                match self.encoder.finish() {
                    Ok(tail) if tail.is_empty() => None,
                    Ok(tail) => Some(Ok(tail)),
                    Err(error) => Some(Err(error)),
                }
            }
            // A failure after the first byte can only abort the response.
            Err(error) => {
                tracing::warn!(query_id = %self.running.entry.id, %error, "query failed while streaming");
                Some(Err(error))
            }
        }
    }
}

/// Adds the `x-stockstream-query-id` header.
pub(crate) fn with_query_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(QUERY_ID_HEADER, value);
    }
    response
}
