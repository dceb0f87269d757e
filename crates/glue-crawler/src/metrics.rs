//! Prometheus metrics of the catalog service.

use metrics::{counter, histogram};

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
