//! How a scan opens each Parquet file of the lake: footers (and page indexes) from
//! [`LakeFooters`] (the engine's shared metadata cache), bytes from the lake's store, and one
//! `bytes_scanned` counter per file.
//!
//! DataFusion's own reader factory does the same, but registers a full `ParquetFileMetrics` per
//! file: about twenty metrics, each labelled with the file's name, which the plan keeps until the
//! query ends (and which the opener registers once more for itself). On a lake of small files that
//! is memory outside the query's pool in proportion to the files scanned, and time spent building
//! and then summing them. The opener's set still gives `EXPLAIN ANALYZE` its per-file pruning
//! figures; the bytes read are all this reader needs to report.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::error::Result as DfResult;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::{ObjectStore, ObjectStoreExt};

use super::footers::{LakeFooters, external};

/// Opens the files of one scan.
#[derive(Debug)]
pub(crate) struct LakeReaderFactory {
    /// The lake's footers, and its store.
    footers: Arc<LakeFooters>,
}

impl LakeReaderFactory {
    /// A factory reading files and their footers through `footers`.
    pub(crate) fn new(footers: Arc<LakeFooters>) -> Self {
        Self { footers }
    }
}

impl ParquetFileReaderFactory for LakeReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        // The name DataFusion's reader uses, so the plan's `bytes_scanned` sums both alike.
        let bytes_scanned = MetricBuilder::new(metrics).counter("bytes_scanned", partition_index);
        Ok(Box::new(LakeFileReader {
            footers: self.footers.clone(),
            file,
            bytes_scanned,
        }))
    }
}

/// One file being read.
struct LakeFileReader {
    footers: Arc<LakeFooters>,
    file: PartitionedFile,
    bytes_scanned: Count,
}

impl AsyncFileReader for LakeFileReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        self.bytes_scanned.add(length(&range));
        self.footers
            .store()
            .get_range(&self.file.object_meta.location, range)
            .map(|read| read.map_err(external))
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        self.bytes_scanned.add(ranges.iter().map(length).sum());
        async move {
            self.footers
                .store()
                .get_ranges(&self.file.object_meta.location, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    /// The footer as [`LakeFooters`] keeps it, whatever page index `_options` asks for: the
    /// opener loads a page index it needs and the footer lacks, and one [`LakeFooters`] dropped
    /// is marked as absent from the file.
    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move { self.footers.metadata(&self.file.object_meta).await }.boxed()
    }
}

/// The bytes in `range`.
fn length(range: &Range<u64>) -> usize {
    usize::try_from(range.end - range.start).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
    use datafusion::execution::cache::default_cache::DefaultCache;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use object_store::path::Path as ObjectPath;

    use super::*;

    #[tokio::test]
    async fn reads_a_file_counting_its_bytes_and_caching_its_footer()
    -> Result<(), Box<dyn std::error::Error>> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )?;
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, None)?;
        writer.write(&batch)?;
        writer.close()?;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let location = ObjectPath::from("quotes/a.parquet");
        store
            .put(&location, PutPayload::from(bytes.clone()))
            .await?;
        let meta = store.head(&location).await?;

        let cache: Arc<FileMetadataCache> = Arc::new(DefaultCache::<
            ObjectPath,
            CachedFileMetadataEntry,
        >::new(1 << 20));
        let factory = LakeReaderFactory::new(Arc::new(LakeFooters::new(store, cache.clone())));
        let metrics = ExecutionPlanMetricsSet::new();
        let reader: Box<dyn AsyncFileReader> =
            factory.create_reader(3, PartitionedFile::from(meta.clone()), None, &metrics)?;
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await?
            .build()?;
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream).await?;

        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            1000
        );
        assert!(cache.contains_key(&meta.location), "the footer is cached");
        let counted = metrics
            .clone_inner()
            .sum_by_name("bytes_scanned")
            .map(|value| value.as_usize());
        let read = counted.unwrap_or_default();
        assert!(
            read > 0 && read <= bytes.len(),
            "bytes_scanned {read} of a {}-byte file",
            bytes.len()
        );
        Ok(())
    }
}
