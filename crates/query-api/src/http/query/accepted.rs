//! A query not done within its wait: answered `202` with its id, while a background task keeps
//! its rows (within the row limit and the registry's byte budget) for
//! `GET /v1/queries/{id}/results`.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stockstream_common::sync::MutexExt;
use tokio::sync::mpsc;

use super::{Collected, Running, finished, with_query_id};
use crate::engine::Output;
use crate::http::AppState;
use crate::http::model::Accepted;
use crate::registry::{Entry, StoredResults};

/// Hands a query that outlived `sync_wait` to a background collector and answers `202`.
pub(super) fn accept_async(app: &AppState, running: Running, collected: Collected) -> Response {
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
    *entry.results.locked() = Some(stored);
    entry.set_answered(stats);
}
