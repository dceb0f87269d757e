//! `GET /v1/stream/quotes?symbols=…`: live quotes as Server-Sent Events.
//!
//! A stream opens with `event: snapshot` (the latest quote per symbol, and whether a resume was
//! exact), then sends `event: quote` for each new quote with the stream's [`Cursor`] as its `id`,
//! and `: heartbeat` comments while idle. A client that reconnects with `Last-Event-ID` (or
//! `?last_event_id=`) first gets the quotes it missed. A client that falls more than
//! `live.client_buffer` quotes (or `live.max_lag`) behind gets `event: dropped` with the reason
//! and the stream ends;
//! so does every stream when the server shuts down.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures::Stream;
use serde::Deserialize;
use stockstream_common::record::is_valid_symbol;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::AppState;
use crate::error::{Error, Result};
use crate::live::{Cursor, Live, LiveQuote, Subscription};
use crate::metrics;

/// How long a client refused for too many streams should wait.
const RETRY_STREAM: Duration = Duration::from_secs(5);
/// The reconnection delay suggested to browsers (`retry:`).
const RECONNECT: Duration = Duration::from_secs(1);
/// Bytes of waiting quotes sent together at most.
const MAX_CHUNK: usize = 64 * 1024;

/// Query parameters of `GET /v1/stream/quotes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamParams {
    /// Comma-separated symbols to follow (all when absent).
    pub(crate) symbols: Option<String>,
    /// Resume after this event id (for clients that cannot send `Last-Event-ID`).
    pub(crate) last_event_id: Option<String>,
}

/// Live quotes as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/stream/quotes",
    tag = "live",
    params(StreamParams),
    responses(
        (status = 200, description = "An event stream: `snapshot`, then `quote` events (id = cursor), `dropped` before the server ends it", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad symbol or event id", body = super::model::ErrorBody),
        (status = 404, description = "The live view is off (`live.enabled = false`)", body = super::model::ErrorBody),
        (status = 503, description = "Too many open streams", body = super::model::ErrorBody),
    )
)]
pub(crate) async fn quotes(
    State(state): State<AppState>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(live) = &state.live else {
        return Err(Error::NotFound(
            "the live view is off (live.enabled = false)".into(),
        ));
    };
    let filter = symbols(params.symbols.as_deref())?;
    let last_event_id = last_event_id(&headers, params.last_event_id);
    let after = resume_cursor(last_event_id.as_deref())?;
    ensure_room(live)?;
    let subscription = live.feed.subscribe(after.as_ref());
    let (first, cursor) = first_chunk(
        &subscription,
        filter.as_ref(),
        after,
        last_event_id.is_some(),
    );
    let stream = LiveStream {
        first: Some(first),
        receiver: subscription.receiver,
        filter,
        cursor,
        buffer: live.config.client_buffer,
        max_lag: live.config.max_lag,
        heartbeat: live.config.heartbeat,
        shutdown: state.shutdown.clone(),
        done: false,
        _open: OpenStream::new(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        // Proxies (nginx) must not buffer the stream.
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream.into_stream()))
        .map_err(|error| Error::Internal(error.to_string()))
}

/// The event id to resume after: the `Last-Event-ID` header, else `?last_event_id=`.
fn last_event_id(headers: &HeaderMap, from_query: Option<String>) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or(from_query)
}

/// The cursor a resuming client names; `None` for a fresh stream (no id, or a blank one).
fn resume_cursor(last_event_id: Option<&str>) -> Result<Option<Cursor>> {
    match last_event_id.map(str::trim) {
        Some(text) if !text.is_empty() => Ok(Some(Cursor::parse(text).map_err(Error::BadRequest)?)),
        _ => Ok(None),
    }
}

/// Refuses a new stream while `live.max_clients` are open.
fn ensure_room(live: &Live) -> Result<()> {
    if live.feed.clients() >= live.config.max_clients {
        metrics::rejected("too_many_streams");
        return Err(Error::Unavailable {
            reason: format!(
                "{} live streams are open (live.max_clients)",
                live.config.max_clients
            ),
            retry_after: RETRY_STREAM,
        });
    }
    Ok(())
}

/// The stream's first chunk: the reconnection delay, the `snapshot` event and the quotes missed
/// since `after`; with the cursor after them (where the broadcast continues).
fn first_chunk(
    subscription: &Subscription,
    filter: Option<&BTreeSet<String>>,
    after: Option<Cursor>,
    resuming: bool,
) -> (String, Cursor) {
    let snapshot: Vec<&LiveQuote> = subscription
        .snapshot
        .iter()
        .map(Arc::as_ref)
        .filter(|quote| is_wanted(filter, quote))
        .collect();
    let snapshot_data = serde_json::json!({
        "quotes": snapshot,
        "resumed": resuming.then_some(subscription.resumed),
        "position": subscription.position.to_string(),
    });
    let mut first = format!("retry: {}\n", RECONNECT.as_millis());
    let position = subscription.position.to_string();
    write_event(
        &mut first,
        "snapshot",
        Some(&position),
        &snapshot_data.to_string(),
    );
    let mut cursor = after.unwrap_or_else(|| subscription.position.clone());
    let mut events = 1;
    for quote in &subscription.missed {
        cursor.advance(quote.partition, quote.offset);
        if is_wanted(filter, quote) {
            write_event(&mut first, "quote", Some(&cursor.to_string()), &quote.json);
            events += 1;
        }
    }
    metrics::live_events(events);
    (first, cursor)
}

/// Whether the stream follows `quote`'s symbol (`None`: every symbol).
fn is_wanted(filter: Option<&BTreeSet<String>>, quote: &LiveQuote) -> bool {
    filter.is_none_or(|set| set.contains(&quote.quote.symbol))
}

/// The symbols of `?symbols=`, checked; `None` means every symbol.
fn symbols(text: Option<&str>) -> Result<Option<BTreeSet<String>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let mut set = BTreeSet::new();
    for symbol in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        if !is_valid_symbol(symbol) {
            return Err(Error::BadRequest(format!("`{symbol}` is not a symbol")));
        }
        set.insert(symbol.to_string());
    }
    Ok((!set.is_empty()).then_some(set))
}

/// Appends one event; `data` is one line (JSON written by serde_json never holds a newline).
fn write_event(out: &mut String, event: &str, id: Option<&str>, data: &str) {
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
}

fn write_dropped(out: &mut String, reason: &str) {
    let data = serde_json::json!({ "reason": reason }).to_string();
    write_event(out, "dropped", None, &data);
}

/// Counts an open stream while it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::live_clients(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::live_clients(-1.0);
    }
}

/// What the broadcast gave: a quote, or how the client fell behind or the feed closed.
type Received = std::result::Result<Arc<LiveQuote>, RecvError>;

/// What waiting on the broadcast gave.
enum Waited {
    /// A chunk to send as is (a heartbeat, or `dropped` at shutdown).
    Chunk(String),
    /// The next item of the broadcast.
    Received(Received),
}

/// One client's stream: the first chunk (snapshot and missed quotes), then the broadcast.
/// Quotes that are already waiting go out together in one chunk (one write, not one per quote).
struct LiveStream {
    first: Option<String>,
    receiver: broadcast::Receiver<Arc<LiveQuote>>,
    filter: Option<BTreeSet<String>>,
    cursor: Cursor,
    buffer: usize,
    max_lag: Duration,
    heartbeat: Duration,
    shutdown: CancellationToken,
    done: bool,
    _open: OpenStream,
}

impl LiveStream {
    fn into_stream(self) -> impl Stream<Item = std::result::Result<Bytes, Infallible>> {
        futures::stream::unfold(self, |mut stream| async move {
            let chunk = stream.next_chunk().await?;
            Some((Ok(Bytes::from(chunk)), stream))
        })
    }

    /// The next chunk of the body: the first chunk, the quotes waiting, a heartbeat or the
    /// `dropped` event; `None` at the end.
    async fn next_chunk(&mut self) -> Option<String> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.done {
            return None;
        }
        let received = match self.wait().await {
            Waited::Chunk(chunk) => return Some(chunk),
            Waited::Received(received) => received,
        };
        let out = self.write_waiting(received);
        if out.is_empty() && !self.done {
            // Only quotes of other symbols arrived: wait again (an empty chunk would end nothing).
            return Box::pin(self.next_chunk()).await;
        }
        (!out.is_empty()).then_some(out)
    }

    /// Waits for the broadcast; on shutdown answers the `dropped` event (and ends the stream),
    /// after `heartbeat` idle a heartbeat comment.
    async fn wait(&mut self) -> Waited {
        tokio::select! {
            () = self.shutdown.cancelled() => {
                self.done = true;
                metrics::live_dropped("shutdown");
                let mut out = String::new();
                write_dropped(&mut out, "the server is shutting down");
                Waited::Chunk(out)
            }
            () = tokio::time::sleep(self.heartbeat) => Waited::Chunk(": heartbeat\n\n".to_string()),
            received = self.receiver.recv() => Waited::Received(received),
        }
    }

    /// Writes `received` and the quotes already waiting behind it (until the chunk reaches
    /// [`MAX_CHUNK`] bytes) as one chunk.
    fn write_waiting(&mut self, received: Received) -> String {
        let mut out = String::new();
        let mut next = Some(received);
        let mut events = 0;
        while let Some(received) = next.take() {
            match self.write_received(&mut out, received) {
                ControlFlow::Continue(written) => events += written,
                ControlFlow::Break(()) => break,
            }
            if out.len() < MAX_CHUNK {
                next = self.try_next();
            }
        }
        metrics::live_events(events);
        out
    }

    /// Writes one received quote if its symbol is followed (`Continue` with the events written);
    /// a client too far behind gets `dropped`, a closed feed ends the stream (`Break`).
    fn write_received(&mut self, out: &mut String, received: Received) -> ControlFlow<(), u64> {
        match received {
            Ok(quote) => {
                let behind = quote.read_at.elapsed();
                if behind > self.max_lag {
                    self.drop_slow(
                        out,
                        format!(
                            "the client is {:.1} s behind the stream (live.max_lag = {:?})",
                            behind.as_secs_f64(),
                            self.max_lag
                        ),
                    );
                    return ControlFlow::Break(());
                }
                self.cursor.advance(quote.partition, quote.offset);
                if !is_wanted(self.filter.as_ref(), &quote) {
                    return ControlFlow::Continue(0);
                }
                write_event(out, "quote", Some(&self.cursor.to_string()), &quote.json);
                ControlFlow::Continue(1)
            }
            Err(RecvError::Lagged(missed)) => {
                self.drop_slow(
                    out,
                    format!(
                        "the client fell {missed} quotes behind the stream (live.client_buffer = {})",
                        self.buffer
                    ),
                );
                ControlFlow::Break(())
            }
            Err(RecvError::Closed) => {
                self.done = true;
                ControlFlow::Break(())
            }
        }
    }

    /// A quote already waiting in the broadcast, without waiting; `None` when there is none.
    fn try_next(&mut self) -> Option<Received> {
        match self.receiver.try_recv() {
            Ok(quote) => Some(Ok(quote)),
            Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        }
    }

    fn drop_slow(&mut self, out: &mut String, reason: String) {
        self.done = true;
        metrics::live_dropped("slow");
        write_dropped(
            out,
            &format!("{reason}; reconnect with the last event id to resume"),
        );
    }
}
