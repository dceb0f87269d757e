//! Prometheus metrics of the catalog service.

use metrics::{counter, gauge, histogram};

/// `lake.commits` events applied to the catalog.
pub(crate) fn events_applied(count: u64) {
    counter!("stockstream_catalog_events_applied_total").increment(count);
}

/// Messages set aside on the dead-letter topic (undecodable, inconsistent, or naming a file that
/// is missing or unreadable).
pub(crate) fn events_dead_lettered(count: u64) {
    counter!("stockstream_catalog_events_dead_lettered_total").increment(count);
}

/// Partitions newly registered.
pub(crate) fn partitions_registered(count: u64) {
    counter!("stockstream_catalog_partitions_registered_total").increment(count);
}

/// Table definitions created or updated after a schema change.
pub(crate) fn tables_changed(count: u64) {
    counter!("stockstream_catalog_table_changes_total").increment(count);
}

/// Time from a file's commit to its partition being visible in the catalog.
pub(crate) fn catalog_lag(seconds: f64) {
    histogram!("stockstream_catalog_lag_seconds").record(seconds);
}

/// Glue crawler runs started.
pub(crate) fn crawler_starts(count: u64) {
    counter!("stockstream_catalog_crawler_starts_total").increment(count);
}

/// Times a crawler start found a crawl running and waited for it.
pub(crate) fn crawler_waits(count: u64) {
    counter!("stockstream_catalog_crawler_waits_total").increment(count);
}

/// Data files and bytes a table shows readers (measured by each compaction round).
pub(crate) fn lake_files(table: &str, files: u64, bytes: u64) {
    gauge!("stockstream_lake_files", "table" => table.to_string()).set(files as f64);
    gauge!("stockstream_lake_bytes", "table" => table.to_string()).set(bytes as f64);
}

/// Files merged by compaction, and bytes written.
pub(crate) fn compacted(files: u64, bytes_rewritten: u64) {
    counter!("stockstream_compaction_files_total").increment(files);
    counter!("stockstream_compaction_bytes_rewritten_total").increment(bytes_rewritten);
    counter!("stockstream_compaction_partitions_total").increment(1);
}

/// Age of the oldest file of a partition that qualifies for compaction but waits.
pub(crate) fn compaction_lag(seconds: f64) {
    gauge!("stockstream_compaction_lag_seconds").set(seconds);
}

/// Late files copied into a compacted partition's generation.
pub(crate) fn late_files_copied(count: u64) {
    counter!("stockstream_compaction_late_files_total").increment(count);
}

/// Partitions dropped by retention.
pub(crate) fn partitions_dropped(count: u64) {
    counter!("stockstream_retention_partitions_dropped_total").increment(count);
}

/// Compaction rounds that failed.
pub(crate) fn compaction_failures(count: u64) {
    counter!("stockstream_compaction_failures_total").increment(count);
}
