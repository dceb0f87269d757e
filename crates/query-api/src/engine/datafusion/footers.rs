//! The footers of the lake's files: read once, kept compact in the engine's metadata cache.
//!
//! Every scan and the statistics loader get a file's [`ParquetMetaData`] here. A footer decoded
//! as the `parquet` crate does by default is a tree of small allocations: on the bench lake a
//! 1 s flush leaves (94,015 files of about 100 rows, 11 columns) each footer held 13.9 KB in 130
//! allocations, and the process about 21 KB per cached footer once the allocator's share is
//! counted: 1.9 GB for the lake. Two things make a footer 5.8 KB in 9 allocations there:
//! - **One schema for all the files that have it.** Each footer carries its file's schema, which
//!   the `parquet` crate decodes into a [`SchemaDescriptor`] of its own (3.5 KB here). The schema
//!   alone is decoded first and compared with the schemas already known; the footer is then
//!   decoded against the known one ([`ParquetMetaDataOptions::with_schema`], which skips the
//!   footer's copy). The comparison is what makes that safe: the option trusts its caller.
//! - **No page index where it repeats the chunk statistics.** When every column chunk of a file
//!   is a single page (files up to 20,000 rows, the `parquet` crate's page row limit), the column
//!   index holds the chunks' own min/max again and the offset index one page location per chunk:
//!   4.5 KB here, and nothing a row-group filter does not already prune. They are dropped, and the
//!   chunks marked as having no page index, so a scan does not go and read it either. Files with
//!   several pages a chunk keep theirs.
//!
//! The cache's accounting (`ParquetMetaData::memory_size`) still counts the schema in every
//! footer: an upper bound of what the cache holds.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
use datafusion::parquet::arrow::async_reader::MetadataFetch;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::metadata::{
    FooterTail, PageIndexPolicy, ParquetMetaData, ParquetMetaDataOptions, ParquetMetaDataReader,
};
use datafusion::parquet::schema::types::{SchemaDescPtr, SchemaDescriptor};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use stockstream_common::sync::MutexExt;

/// Bytes read from the end of a file in the first request: the footer and page index of the
/// sink's files, which a second request would otherwise fetch.
const SUFFIX_BYTES: u64 = 64 * 1024;
/// Distinct schemas kept to share; a lake whose files have more (an unusual history of schema
/// changes) decodes the rest with schemas of their own.
const MAX_SHARED_SCHEMAS: usize = 64;
/// The length of a Parquet file's tail: footer length and magic.
const TAIL_BYTES: u64 = 8;

/// Reads footers from the lake, through the engine's metadata cache.
#[derive(Debug)]
pub(crate) struct LakeFooters {
    store: Arc<dyn ObjectStore>,
    cache: Arc<FileMetadataCache>,
    /// Schemas shared by the cached footers that have them.
    schemas: Mutex<Vec<SchemaDescPtr>>,
}

impl LakeFooters {
    /// Footers of files in `store`, cached in `cache`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, cache: Arc<FileMetadataCache>) -> Self {
        Self {
            store,
            cache,
            schemas: Mutex::new(Vec::new()),
        }
    }

    /// The store the files are read from.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The metadata cache the footers are kept in.
    pub(crate) fn cache(&self) -> &Arc<FileMetadataCache> {
        &self.cache
    }

    /// The footer of `file` (with its page index, unless it repeats the chunk statistics): from
    /// the cache when it holds the file as it is now, else read and cached.
    pub(crate) async fn metadata(&self, file: &ObjectMeta) -> ParquetResult<Arc<ParquetMetaData>> {
        if let Some(cached) = self.cached(file) {
            return Ok(cached);
        }
        let metadata = Arc::new(self.read(file).await.map_err(|error| {
            ParquetError::General(format!("reading the footer of {}: {error}", file.location))
        })?);
        self.cache.put(
            &file.location,
            CachedFileMetadataEntry::new(
                file.clone(),
                Arc::new(CachedParquetMetaData::new(metadata.clone())),
            ),
        );
        Ok(metadata)
    }

    fn cached(&self, file: &ObjectMeta) -> Option<Arc<ParquetMetaData>> {
        let entry = self.cache.get(&file.location)?;
        if !entry.is_valid_for(file) {
            return None;
        }
        let cached = entry
            .file_metadata
            .as_any()
            .downcast_ref::<CachedParquetMetaData>()?;
        Some(cached.parquet_metadata().clone())
    }

    /// Reads and decodes the footer of `file`, then its page index.
    async fn read(&self, file: &ObjectMeta) -> ParquetResult<ParquetMetaData> {
        let size = file.size;
        if size < TAIL_BYTES {
            return Err(ParquetError::General(format!(
                "{size} bytes is too short for a Parquet file"
            )));
        }
        let start = size.saturating_sub(SUFFIX_BYTES);
        let suffix = self
            .store
            .get_range(&file.location, start..size)
            .await
            .map_err(external)?;
        let mut fetch = SuffixFetch {
            store: self.store.clone(),
            location: file.location.clone(),
            start,
            suffix,
        };
        let tail_at = usize::try_from(size - TAIL_BYTES - start).map_err(external)?;
        let tail: &[u8; 8] = fetch.suffix[tail_at..]
            .try_into()
            .map_err(|_| ParquetError::General("the file's tail is not 8 bytes".into()))?;
        let footer_length = FooterTail::try_new(tail)?.metadata_length() as u64;
        let footer_start = (size - TAIL_BYTES)
            .checked_sub(footer_length)
            .ok_or_else(|| {
                ParquetError::General(format!(
                    "a footer of {footer_length} bytes in a {size}-byte file"
                ))
            })?;
        let footer = fetch.fetch(footer_start..size - TAIL_BYTES).await?;

        let schema = self.shared_schema(ParquetMetaDataReader::decode_schema(&footer)?);
        let options = ParquetMetaDataOptions::new().with_schema(schema);
        let metadata =
            ParquetMetaDataReader::decode_metadata_with_options(&footer, Some(&options))?;
        let mut reader = ParquetMetaDataReader::new_with_metadata(metadata)
            .with_page_index_policy(PageIndexPolicy::Optional);
        reader.load_page_index(fetch).await?;
        without_repeated_page_index(reader.finish()?)
    }

    /// The known schema equal to `schema`, or `schema` itself (kept for the next footers while
    /// fewer than [`MAX_SHARED_SCHEMAS`] are known).
    fn shared_schema(&self, schema: Arc<SchemaDescriptor>) -> SchemaDescPtr {
        let mut known = self.schemas.locked();
        if let Some(same) = known
            .iter()
            .find(|known| known.root_schema() == schema.root_schema())
        {
            return same.clone();
        }
        if known.len() < MAX_SHARED_SCHEMAS {
            known.push(schema.clone());
        }
        schema
    }
}

/// `metadata` without its page index when every column chunk is one page with statistics of
/// its own (the index says nothing more), the chunks then marked as having none.
fn without_repeated_page_index(metadata: ParquetMetaData) -> ParquetResult<ParquetMetaData> {
    let Some(offsets) = metadata.offset_index() else {
        return Ok(metadata);
    };
    let one_page_each = offsets
        .iter()
        .flatten()
        .all(|chunk| chunk.page_locations().len() <= 1);
    let chunk_statistics = metadata
        .row_groups()
        .iter()
        .flat_map(|row_group| row_group.columns())
        .all(|chunk| chunk.statistics().is_some());
    if !(one_page_each && chunk_statistics) {
        return Ok(metadata);
    }
    let mut builder = metadata
        .into_builder()
        .set_column_index(None)
        .set_offset_index(None);
    let row_groups = builder
        .take_row_groups()
        .into_iter()
        .map(|row_group| {
            let mut row_group = row_group.into_builder();
            let columns = row_group
                .take_columns()
                .into_iter()
                .map(|chunk| {
                    chunk
                        .into_builder()
                        .set_column_index_offset(None)
                        .set_column_index_length(None)
                        .set_offset_index_offset(None)
                        .set_offset_index_length(None)
                        .build()
                })
                .collect::<ParquetResult<Vec<_>>>()?;
            row_group.set_column_metadata(columns).build()
        })
        .collect::<ParquetResult<Vec<_>>>()?;
    Ok(builder.set_row_groups(row_groups).build())
}

/// Serves ranges from the bytes already read from the end of a file, and the rest from the
/// store.
struct SuffixFetch {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    /// Where `suffix` starts in the file.
    start: u64,
    suffix: Bytes,
}

impl MetadataFetch for SuffixFetch {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        async move {
            if range.start >= self.start {
                let from = usize::try_from(range.start - self.start).map_err(external)?;
                let to = usize::try_from(range.end - self.start).map_err(external)?;
                if to <= self.suffix.len() {
                    return Ok(self.suffix.slice(from..to));
                }
            }
            self.store
                .get_range(&self.location, range)
                .await
                .map_err(external)
        }
        .boxed()
    }
}

/// An I/O error as the `parquet` crate's readers return it.
pub(crate) fn external(error: impl std::error::Error + Send + Sync + 'static) -> ParquetError {
    ParquetError::External(Box::new(error))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::cache::default_cache::DefaultCache;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    /// Writes `rows` rows of columns `names` to `location`, `page_rows` rows a page and ten pages
    /// a row group.
    async fn put_file(
        store: &Arc<dyn ObjectStore>,
        location: &str,
        names: &[&str],
        rows: i64,
        page_rows: usize,
    ) -> Result<ObjectMeta, Box<dyn std::error::Error>> {
        let schema = Arc::new(Schema::new(
            names
                .iter()
                .map(|name| Field::new(*name, DataType::Int64, false))
                .collect::<Vec<_>>(),
        ));
        let columns = names
            .iter()
            .map(|_| Arc::new(Int64Array::from_iter_values(0..rows)) as _)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let properties = WriterProperties::builder()
            .set_data_page_row_count_limit(page_rows)
            .set_write_batch_size(page_rows)
            .set_max_row_group_row_count(Some(page_rows * 10))
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(properties))?;
        writer.write(&batch)?;
        writer.close()?;
        let location = ObjectPath::from(location);
        store.put(&location, PutPayload::from(bytes)).await?;
        Ok(store.head(&location).await?)
    }

    fn footers(store: &Arc<dyn ObjectStore>) -> LakeFooters {
        let cache: Arc<FileMetadataCache> = Arc::new(DefaultCache::<
            ObjectPath,
            CachedFileMetadataEntry,
        >::new(1 << 20));
        LakeFooters::new(store.clone(), cache)
    }

    #[tokio::test]
    async fn files_with_the_same_schema_share_it_and_others_keep_their_own()
    -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = put_file(&store, "t/a.parquet", &["x", "y"], 10, 1000).await?;
        let b = put_file(&store, "t/b.parquet", &["x", "y"], 20, 1000).await?;
        let c = put_file(&store, "t/c.parquet", &["x", "z"], 30, 1000).await?;
        let footers = footers(&store);

        let a = footers.metadata(&a).await?;
        let b = footers.metadata(&b).await?;
        let c = footers.metadata(&c).await?;

        let schema = |metadata: &ParquetMetaData| metadata.file_metadata().schema_descr_ptr();
        assert!(
            Arc::ptr_eq(&schema(&a), &schema(&b)),
            "same schema, one copy"
        );
        assert!(!Arc::ptr_eq(&schema(&a), &schema(&c)));
        assert_eq!(c.file_metadata().schema_descr().column(1).name(), "z");
        assert_eq!(
            [&a, &b, &c].map(|metadata| metadata.file_metadata().num_rows()),
            [10, 20, 30]
        );
        assert!(
            Arc::ptr_eq(
                &footers
                    .metadata(&store.head(&ObjectPath::from("t/a.parquet")).await?)
                    .await?,
                &a
            ),
            "the second read is the cached footer"
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_page_index_is_dropped_only_when_it_repeats_the_chunk_statistics()
    -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let one_page = put_file(&store, "t/one.parquet", &["x"], 100, 1000).await?;
        let pages = put_file(&store, "t/pages.parquet", &["x"], 100, 10).await?;
        let footers = footers(&store);

        let one_page = footers.metadata(&one_page).await?;
        assert!(one_page.column_index().is_none() && one_page.offset_index().is_none());
        let chunk = one_page.row_group(0).column(0);
        assert_eq!(
            (chunk.column_index_offset(), chunk.offset_index_offset()),
            (None, None),
            "scans see no page index to read"
        );
        assert!(chunk.statistics().is_some(), "the chunk statistics remain");

        let pages = footers.metadata(&pages).await?;
        let offsets = pages.offset_index().ok_or("the page index is kept")?;
        assert_eq!(offsets[0][0].page_locations().len(), 10);
        assert!(pages.column_index().is_some());
        assert!(pages.row_group(0).column(0).offset_index_offset().is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_footer_beyond_the_first_read_is_fetched_and_a_truncated_file_is_an_error()
    -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        // 50 row groups of 200 columns: a footer beyond the first 64 KiB read.
        let names: Vec<String> = (0..200).map(|column| format!("c{column}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let wide = put_file(&store, "t/wide.parquet", &names, 5000, 10).await?;
        let tail = store
            .get_range(&wide.location, wide.size - TAIL_BYTES..wide.size)
            .await?;
        let tail: &[u8; 8] = tail.as_ref().try_into()?;
        let footer_length = FooterTail::try_new(tail)?.metadata_length() as u64;
        assert!(
            footer_length > SUFFIX_BYTES,
            "a {footer_length}-byte footer"
        );
        let footers = footers(&store);
        let metadata = footers.metadata(&wide).await?;
        assert_eq!(metadata.file_metadata().schema_descr().num_columns(), 200);
        assert_eq!(
            metadata.offset_index().map(|index| index[0].len()),
            Some(200)
        );

        store
            .put(
                &ObjectPath::from("t/short.parquet"),
                PutPayload::from_static(b"PAR1"),
            )
            .await?;
        let short = store.head(&ObjectPath::from("t/short.parquet")).await?;
        let error = footers.metadata(&short).await.err().ok_or("an error")?;
        assert!(error.to_string().contains("t/short.parquet"), "{error}");
        Ok(())
    }
}
