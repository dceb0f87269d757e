//! Prometheus metrics of the sink.

use metrics::{counter, gauge, histogram};

/// Records written into committed files.
pub(crate) fn records_written(count: u64) {
    counter!("stockstream_sink_records_written_total").increment(count);
}

/// Bytes of committed files.
pub(crate) fn bytes_written(bytes: u64) {
    counter!("stockstream_sink_bytes_written_total").increment(bytes);
}

/// Files committed to the lake, and the time of the last commit (Unix seconds).
pub(crate) fn files_committed(count: u64) {
    counter!("stockstream_sink_files_committed_total").increment(count);
    if count > 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        gauge!("stockstream_sink_last_commit_timestamp_seconds").set(now);
    }
}

/// Flushes by reason (`records`, `interval`, `shutdown`, `recovery`).
pub(crate) fn flush(reason: &'static str) {
    counter!("stockstream_sink_flushes_total", "reason" => reason).increment(1);
}

/// Messages in the original tutorial producer's format (the CSV's column names), decoded and
/// written like the rest: a count that shows when the old producer can be retired.
pub(crate) fn tutorial_format() {
    counter!("stockstream_sink_tutorial_messages_total").increment(1);
}

/// Messages sent to the dead-letter topic.
pub(crate) fn dead_letter() {
    counter!("stockstream_sink_dead_letters_total").increment(1);
}

/// Messages skipped because the lake already holds them (replays after a restart).
pub(crate) fn skipped_already_in_lake(count: u64) {
    counter!("stockstream_sink_records_skipped_total").increment(count);
}

/// Offset commits that failed (the lake stays the source of truth; see docs/exactly-once.md).
pub(crate) fn commit_failed() {
    counter!("stockstream_sink_offset_commit_failures_total").increment(1);
}

/// Records buffered in memory, not yet in the lake.
pub(crate) fn buffered_records(count: usize) {
    gauge!("stockstream_sink_buffered_records").set(count as f64);
}

/// Consumer lag of one partition (high watermark minus next offset).
pub(crate) fn consumer_lag(partition: i32, lag: i64) {
    gauge!("stockstream_sink_consumer_lag_records", "partition" => partition.to_string())
        .set(lag as f64);
}

/// Time from a record's Kafka timestamp to the commit of the file holding it.
pub(crate) fn commit_latency(seconds: f64) {
    histogram!("stockstream_sink_commit_latency_seconds").record(seconds);
}

/// Lake operations retried after a retryable failure (S3 unreachable, throttled, 5xx).
pub(crate) fn lake_retry() {
    metrics::counter!("stockstream_sink_lake_retries_total").increment(1);
}

/// Bytes buffered across partitions (estimated size of the decoded rows).
pub(crate) fn buffered_bytes(bytes: usize) {
    gauge!("stockstream_sink_buffered_bytes").set(bytes as f64);
}

/// Flushes dropped because another sink had claimed their range (zombie fencing).
pub(crate) fn fenced_flush() {
    counter!("stockstream_sink_fenced_flushes_total").increment(1);
}
