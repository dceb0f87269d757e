//! NDJSON, CSV and Arrow answers: once the first batch is there the response starts, and the
//! rest is encoded batch by batch as the engine produces it, within the row and byte limits.

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::{Collected, Running, accept_async, finished, with_query_id};
use crate::engine::Output;
use crate::error::{Error, Result};
use crate::http::AppState;
use crate::http::formats::{Encoder, Format};

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

/// Streams a query's batches in `format` once the first one is there.
pub(super) async fn stream_response(
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
