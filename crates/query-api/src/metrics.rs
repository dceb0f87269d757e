//! The query API's Prometheus metrics (served on `/metrics`).
//!
//! - `stockstream_query_requests_total{engine,outcome}`: queries by engine and outcome
//!   (`ok`, `accepted` for 202, or the error kind);
//! - `stockstream_query_duration_seconds{engine}`: time from request to last row;
//! - `stockstream_query_bytes_scanned_total{engine}`: bytes read from the lake;
//! - `stockstream_query_in_flight{engine}`: queries executing;
//! - `stockstream_query_rejected_total{reason}`: requests refused before execution
//!   (`overloaded`, `unauthorized`, `forbidden_statement`, …);
//! - `stockstream_query_commit_events_total`, `stockstream_query_commit_events_unreadable_total`,
//!   `stockstream_query_following_commits`: the DataFusion engine's view of `lake.commits`;
//! - `stockstream_query_index_files`, `stockstream_query_metadata_cache_entries`,
//!   `stockstream_query_metadata_cache_bytes`, `stockstream_query_metadata_cache_limit_bytes`: the
//!   DataFusion engine's visible files and the Parquet footers it keeps (fewer entries than files
//!   means full scans read footers again; the bytes, as the cache accounts them, against its limit);
//! - `stockstream_query_scan_files_admitted`: files the running DataFusion scans hold of
//!   `query.max_scan_files`;
//! - `stockstream_live_tailing`, `stockstream_live_quotes_total`,
//!   `stockstream_live_quotes_skipped_total`: the tail of `quotes` behind the live view;
//! - `stockstream_live_tail_gaps_total`: real-time queries whose tail did not reach the lake;
//! - `stockstream_live_clients`, `stockstream_live_events_total`,
//!   `stockstream_live_clients_dropped_total{reason}`: its Server-Sent Events streams.

use std::time::Duration;

/// Records a finished query.
pub(crate) fn query_finished(
    engine: &'static str,
    outcome: &'static str,
    elapsed: Duration,
    bytes_scanned: u64,
) {
    metrics::counter!("stockstream_query_requests_total", "engine" => engine, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("stockstream_query_duration_seconds", "engine" => engine)
        .record(elapsed.as_secs_f64());
    metrics::counter!("stockstream_query_bytes_scanned_total", "engine" => engine)
        .increment(bytes_scanned);
}

/// Records a request refused before any engine ran it.
pub(crate) fn rejected(reason: &'static str) {
    metrics::counter!("stockstream_query_rejected_total", "reason" => reason).increment(1);
}

/// Adjusts the number of queries executing.
pub(crate) fn in_flight(engine: &'static str, delta: f64) {
    metrics::gauge!("stockstream_query_in_flight", "engine" => engine).increment(delta);
}

/// Adjusts the files the running DataFusion scans hold of the scan budget.
pub(crate) fn scan_files_admitted(delta: f64) {
    metrics::gauge!("stockstream_query_scan_files_admitted").increment(delta);
}

/// Records `count` applied `lake.commits` events.
pub(crate) fn commit_events_applied(count: usize) {
    metrics::counter!("stockstream_query_commit_events_total").increment(count as u64);
}

/// Records a `lake.commits` message that could not be decoded.
pub(crate) fn commit_event_unreadable() {
    metrics::counter!("stockstream_query_commit_events_unreadable_total").increment(1);
}

/// Whether the DataFusion engine currently follows `lake.commits`.
pub(crate) fn set_following_commits(following: bool) {
    metrics::gauge!("stockstream_query_following_commits").set(if following { 1.0 } else { 0.0 });
}

/// Whether the live view currently tails `quotes`.
pub(crate) fn set_live_tailing(tailing: bool) {
    metrics::gauge!("stockstream_live_tailing").set(if tailing { 1.0 } else { 0.0 });
}

/// Records a quote read by the live tail.
pub(crate) fn live_quote() {
    metrics::counter!("stockstream_live_quotes_total").increment(1);
}

/// Records a `quotes` message the live tail skipped (not a valid quote).
pub(crate) fn live_quote_skipped() {
    metrics::counter!("stockstream_live_quotes_skipped_total").increment(1);
}

/// Adjusts the number of open live streams.
pub(crate) fn live_clients(delta: f64) {
    metrics::gauge!("stockstream_live_clients").increment(delta);
}

/// Records `count` events sent on live streams.
pub(crate) fn live_events(count: u64) {
    metrics::counter!("stockstream_live_events_total").increment(count);
}

/// Records a live stream closed by the server (`slow`, `shutdown`).
pub(crate) fn live_dropped(reason: &'static str) {
    metrics::counter!("stockstream_live_clients_dropped_total", "reason" => reason).increment(1);
}

/// Records a real-time query whose live tail did not reach back to the lake.
pub(crate) fn live_tail_gap() {
    metrics::counter!("stockstream_live_tail_gaps_total").increment(1);
}

/// The DataFusion engine's visible files and its footer cache.
pub(crate) struct EngineCaches {
    /// Visible files in the index.
    pub(crate) index_files: usize,
    /// Footers cached.
    pub(crate) footers: usize,
    /// Bytes the cached footers take, as the cache accounts them.
    pub(crate) footer_bytes: usize,
    /// The cache's limit (`query.metadata_cache_bytes`).
    pub(crate) footer_limit_bytes: usize,
}

/// Sets the DataFusion engine's index and footer-cache gauges.
pub(crate) fn engine_caches(caches: EngineCaches) {
    metrics::gauge!("stockstream_query_index_files").set(caches.index_files as f64);
    metrics::gauge!("stockstream_query_metadata_cache_entries").set(caches.footers as f64);
    metrics::gauge!("stockstream_query_metadata_cache_bytes").set(caches.footer_bytes as f64);
    metrics::gauge!("stockstream_query_metadata_cache_limit_bytes")
        .set(caches.footer_limit_bytes as f64);
}
