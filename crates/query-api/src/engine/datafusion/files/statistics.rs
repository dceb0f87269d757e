//! Statistics of the visible files: each file's Parquet footer is read once in the background
//! into its [`Statistics`] (row counts, min/max), which also warms DataFusion's metadata cache;
//! statistics already read survive a relisting while the file is unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use futures::StreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;
use stockstream_common::sync::RwLockExt;
use tokio_util::sync::CancellationToken;

use super::{FileIndex, IndexSnapshot, PartitionFiles, TableFiles};
use crate::error::Result;

/// Footers read at once by the statistics loader.
const FOOTER_CONCURRENCY: usize = 16;
/// A round of footer reading this large is logged at `info` (the first after start-up, say);
/// the few files of each commit at `debug`.
const LOG_FOOTERS_FROM: usize = 1000;

/// A visible file whose footer has not been read yet.
struct MissingFooter {
    /// The table it belongs to.
    table: String,
    /// The values of its partition (the key of `TableFiles::partitions`).
    partition: Vec<String>,
    /// The table's file columns.
    schema: SchemaRef,
    /// The file.
    meta: ObjectMeta,
}

/// The statistics read from one file's footer.
struct ReadFooter {
    table: String,
    partition: Vec<String>,
    location: ObjectPath,
    statistics: Statistics,
}

impl FileIndex {
    /// Reads the footers of files without statistics, until `shutdown`; each round starts when
    /// files were added. `shutdown` also stops a round in progress: the first round over a large
    /// lake reads every footer (minutes for 100,000 files), and an engine that is gone must not
    /// keep its cores busy.
    pub async fn load_statistics(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.stats_wanted.notified() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = self.load_missing_statistics() => {
                    if let Err(error) = outcome {
                        tracing::warn!(%error, "reading Parquet footers for statistics failed");
                    }
                }
            }
        }
    }

    /// One round: reads the footers of the current files without statistics and records them.
    async fn load_missing_statistics(&self) -> Result<()> {
        let missing = missing_footers(&self.snapshot());
        if missing.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let read = self.read_footers(missing).await;
        let read_count = read.len();
        let still_missing = self.record_statistics(read).await;
        log_footers_read(read_count, still_missing, started.elapsed());
        Ok(())
    }

    /// Reads `missing` footers, [`FOOTER_CONCURRENCY`] at once; unreadable ones (a file removed
    /// meanwhile) are skipped.
    async fn read_footers(&self, missing: Vec<MissingFooter>) -> Vec<ReadFooter> {
        let footers = &self.footers;
        futures::stream::iter(missing)
            .map(|file| async move {
                let MissingFooter {
                    table,
                    partition,
                    schema,
                    meta,
                } = file;
                let metadata = footers.metadata(&meta).await?;
                let statistics =
                    DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &schema)?;
                Ok::<_, datafusion::error::DataFusionError>(ReadFooter {
                    table,
                    partition,
                    location: meta.location,
                    statistics,
                })
            })
            .buffer_unordered(FOOTER_CONCURRENCY)
            .filter_map(|outcome| async move {
                match outcome {
                    Ok(read) => Some(read),
                    Err(error) => {
                        tracing::debug!(%error, "footer unreadable (file removed?)");
                        None
                    }
                }
            })
            .collect()
            .await
    }

    /// Sets the statistics `read` on the files of the current snapshot that still hold them, and
    /// returns how many visible files have none yet. The new snapshot is put in place without
    /// waking the loader again.
    async fn record_statistics(&self, read: Vec<ReadFooter>) -> usize {
        let _writer = self.writer.lock().await;
        let mut next = (*self.snapshot()).clone();
        for footer in read {
            set_statistics(&mut next, footer);
        }
        let still_missing = next.files_without_statistics();
        *self.current.write_locked() = Arc::new(next);
        still_missing
    }
}

/// The files of `snapshot` whose footer has not been read.
fn missing_footers(snapshot: &IndexSnapshot) -> Vec<MissingFooter> {
    let mut missing = Vec::new();
    for (name, table) in &snapshot.tables {
        for (values, partition) in &table.partitions {
            for entry in partition
                .files
                .values()
                .filter(|entry| entry.statistics.is_none())
            {
                missing.push(MissingFooter {
                    table: name.clone(),
                    partition: values.clone(),
                    schema: table.file_schema.clone(),
                    meta: entry.meta.clone(),
                });
            }
        }
    }
    missing
}

/// Sets one footer's statistics on its file in `snapshot`, if the file is still there: found by
/// its table and partition values in O(log n). (It used to look through every partition of the
/// table for the file, so recording the footers of a 39,000-partition lake took 39,000² map
/// lookups: minutes of CPU at start-up, competing with the first queries.)
fn set_statistics(snapshot: &mut IndexSnapshot, footer: ReadFooter) {
    let Some(files) = snapshot.tables.get_mut(&footer.table) else {
        return;
    };
    let Some(partition) = files.partitions.get(&footer.partition) else {
        return;
    };
    if !partition.files.contains_key(&footer.location) {
        return;
    }
    let files = Arc::make_mut(files);
    if let Some(partition) = files.partitions.get_mut(&footer.partition) {
        let partition = Arc::make_mut(partition);
        let statistics = table_statistics(footer.statistics, &partition.values);
        if let Some(entry) = partition.files.get_mut(&footer.location) {
            entry.statistics = statistics;
        }
    }
}

/// A file's statistics as its table sees them: the footer's columns, then the partition columns
/// (each exactly `values`' value: min = max, no nulls, one distinct), made by DataFusion's own
/// `PartitionedFile::with_statistics`. Made once here, so that a query's plan shares them:
/// calling `with_statistics` in every scan copied every file's statistics per query, 247 MB
/// for a full scan of the 39,000-file bench lake (heaptrack), held while the query ran.
///
/// The column list is cut to its length: `with_statistics` appends the partition columns to a
/// copy of the footer's list, whose capacity doubles (22 columns' room for 13 on the bench lake,
/// 2.6 KB a file).
fn table_statistics(footer: Statistics, values: &[ScalarValue]) -> Option<Arc<Statistics>> {
    let mut statistics = PartitionedFile::new(String::new(), 0)
        .with_partition_values(values.to_vec())
        .with_statistics(Arc::new(footer))
        .statistics?;
    Arc::make_mut(&mut statistics)
        .column_statistics
        .shrink_to_fit();
    Some(statistics)
}

/// Logs a round of footer reading: at `info` when large, at `debug` otherwise.
fn log_footers_read(read: usize, still_missing: usize, elapsed: Duration) {
    let elapsed_ms = elapsed.as_millis() as u64;
    if read >= LOG_FOOTERS_FROM {
        tracing::info!(
            files = read,
            missing = still_missing,
            elapsed_ms,
            "footers read"
        );
    } else {
        tracing::debug!(
            files = read,
            missing = still_missing,
            elapsed_ms,
            "footers read"
        );
    }
}

/// The statistics `previous` holds for the file `meta` of partition `values`, when its size is
/// unchanged.
pub(super) fn known_statistics(
    previous: &TableFiles,
    values: &[String],
    meta: &ObjectMeta,
) -> Option<Arc<Statistics>> {
    let entry = previous.partitions.get(values)?.files.get(&meta.location)?;
    (entry.meta.size == meta.size).then(|| entry.statistics.clone())?
}

/// Keeps in `target` (a partition just listed again) the statistics `before` (its previous entry)
/// had already read, for files whose size is unchanged.
pub(super) fn keep_read_statistics(target: &mut PartitionFiles, before: &PartitionFiles) {
    for (location, entry) in &before.files {
        if let Some(listed_entry) = target.files.get_mut(location)
            && listed_entry.statistics.is_none()
            && listed_entry.meta.size == entry.meta.size
        {
            listed_entry.statistics = entry.statistics.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::ColumnStatistics;
    use datafusion::common::stats::Precision;

    use super::*;

    #[test]
    fn a_files_statistics_end_with_its_partition_values_exactly() {
        let footer = Statistics {
            num_rows: Precision::Exact(10),
            total_byte_size: Precision::Absent,
            column_statistics: vec![ColumnStatistics::new_unknown()],
        };
        let symbol = ScalarValue::Utf8(Some("HSI".into()));
        let year = ScalarValue::Int32(Some(1987));
        let statistics =
            table_statistics(footer, &[symbol.clone(), year.clone()]).expect("statistics are set");
        assert_eq!(statistics.num_rows, Precision::Exact(10));
        assert_eq!(statistics.column_statistics.len(), 3);
        assert_eq!(statistics.column_statistics.capacity(), 3, "no room held");
        assert_eq!(
            statistics.column_statistics[0],
            ColumnStatistics::new_unknown()
        );
        for (column, value) in statistics.column_statistics[1..].iter().zip([symbol, year]) {
            assert_eq!(column.min_value, Precision::Exact(value.clone()));
            assert_eq!(column.max_value, Precision::Exact(value));
            assert_eq!(column.null_count, Precision::Exact(0));
            assert_eq!(column.distinct_count, Precision::Exact(1));
        }
    }
}
