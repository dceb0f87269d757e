//! The catalogued tables as DataFusion sees them.
//!
//! [`LakeSchema`] is registered once as the schema of the configured database; whenever a query
//! names a table it hands out a [`LakeTable`] over the [`FileIndex`]'s current files, so a new
//! partition or file is visible to the next query without re-registering anything. A scan prunes
//! the catalogued partitions with the query's filters on partition columns (evaluated on all
//! partitions at once), then reads the surviving files with DataFusion's Parquet source
//! (statistics, page-index and row-filter pushdown), each file opened by
//! [`LakeReaderFactory`] (footers from the shared metadata cache).

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::common::{DFSchema, ScalarValue, Statistics, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion_datasource::compute_all_files_statistics;

use datafusion::physical_plan::union::UnionExec;
use datafusion_datasource::memory::MemorySourceConfig;
use stockstream_common::lake::QUOTES_TABLE;

use super::files::{FileIndex, PartitionFiles, TableFiles};
use super::footers::LakeFooters;
use super::parquet_reader::LakeReaderFactory;
use super::tail::{LiveTail, TailRows, count_rows};

/// The URL the lake's object store is registered under in the session.
pub(crate) const LAKE_STORE_URL: &str = "stockstream://lake/";

/// The database's tables, always those of the index's latest snapshot.
#[derive(Debug)]
pub struct LakeSchema {
    index: Arc<FileIndex>,
    /// The live tail added to table `quotes` (`query.live_tail`).
    tail: Option<Arc<LiveTail>>,
}

impl LakeSchema {
    /// A schema over `index`, with `tail` added to table `quotes` when given.
    pub fn new(index: Arc<FileIndex>, tail: Option<Arc<LiveTail>>) -> Self {
        Self { index, tail }
    }
}

#[async_trait::async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.index.snapshot().tables.keys().cloned().collect();
        if self.tail.is_some() && !names.iter().any(|name| name == QUOTES_TABLE) {
            names.push(QUOTES_TABLE.to_string());
        }
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let files = self.index.snapshot().tables.get(name).cloned();
        let tail = (name == QUOTES_TABLE).then(|| self.tail.clone()).flatten();
        // With the live tail, `quotes` exists before its first file is catalogued.
        let files = files.or_else(|| tail.as_ref().map(|tail| tail.uncatalogued()));
        Ok(files.map(|files| {
            Arc::new(LakeTable::new(files, self.index.footers().clone(), tail))
                as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.index.snapshot().tables.contains_key(name)
            || (self.tail.is_some() && name == QUOTES_TABLE)
    }
}

/// One table at one moment: its schema and the files visible when the query was planned (and,
/// for `quotes` with `query.live_tail`, the tail records those files do not hold).
#[derive(Debug)]
pub struct LakeTable {
    files: Arc<TableFiles>,
    footers: Arc<LakeFooters>,
    tail: Option<Arc<LiveTail>>,
}

impl LakeTable {
    /// A provider over `files` (footers read through `footers`), plus `tail`'s records not in
    /// them.
    pub(crate) fn new(
        files: Arc<TableFiles>,
        footers: Arc<LakeFooters>,
        tail: Option<Arc<LiveTail>>,
    ) -> Self {
        Self {
            files,
            footers,
            tail,
        }
    }

    fn partition_names(&self) -> Vec<&str> {
        self.files
            .partition_fields
            .iter()
            .map(|field| field.name().as_str())
            .collect()
    }

    fn is_partition_filter(&self, filter: &Expr) -> bool {
        let names = self.partition_names();
        !names.is_empty() && expr_applicable_for_cols(&names, filter)
    }

    /// The partitions whose values satisfy every filter in `filters`.
    fn pruned_partitions(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> DfResult<Vec<&Arc<PartitionFiles>>> {
        let partitions: Vec<&Arc<PartitionFiles>> = self.files.partitions.values().collect();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(partitions);
        };
        if partitions.is_empty() {
            return Ok(partitions);
        }
        let schema = Arc::new(Schema::new(self.files.partition_fields.clone()));
        let columns = (0..schema.fields().len())
            .map(|column| {
                ScalarValue::iter_to_array(
                    partitions
                        .iter()
                        .map(|partition| partition.values[column].clone()),
                )
            })
            .collect::<DfResult<Vec<_>>>()?;
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let df_schema = DFSchema::try_from(schema)?;
        let physical = state.create_physical_expr(predicate, &df_schema)?;
        let mask = physical.evaluate(&batch)?.into_array(batch.num_rows())?;
        let mask = mask.as_boolean_opt().ok_or_else(|| {
            DataFusionError::Internal("partition filter is not boolean".to_string())
        })?;
        Ok(partitions
            .into_iter()
            .enumerate()
            .filter(|(row, _)| mask.is_valid(*row) && mask.value(*row))
            .map(|(_, partition)| partition)
            .collect())
    }
}

/// The scan's statistics: exact sums when every file's footer has been read, unknown otherwise.
///
/// DataFusion merges the statistics of the files that have them and skips the others, so a mix
/// (new files whose footers the index has not read yet) would claim an exact row count that leaves
/// those files out, and `count(*)` would be answered from it short of their rows.
fn scan_statistics(
    groups: Vec<FileGroup>,
    schema: &SchemaRef,
) -> DfResult<(Vec<FileGroup>, Statistics)> {
    let complete = groups
        .iter()
        .flat_map(|group| group.iter())
        .all(|file| file.statistics.is_some());
    if complete {
        compute_all_files_statistics(groups, schema.clone(), true, false)
    } else {
        Ok((groups, Statistics::new_unknown(schema)))
    }
}

#[async_trait::async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.files.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                // With a tail, DataFusion filters again above the union (the tail is not pruned).
                if self.is_partition_filter(filter) && self.tail.is_none() {
                    // Pruning partitions answers these filters completely.
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(reason) = &self.files.unreadable {
            return plan_err!("{reason}");
        }
        let (partition_filters, _row_filters): (Vec<Expr>, Vec<Expr>) = filters
            .iter()
            .cloned()
            .partition(|filter| self.is_partition_filter(filter));
        let mut files = Vec::new();
        for partition in self.pruned_partitions(state, &partition_filters)? {
            for entry in partition.files.values() {
                let mut file = PartitionedFile::from(entry.meta.clone());
                file.partition_values = partition.values.clone();
                // Already extended with the partition columns (not `with_statistics`, which
                // would copy them for every file of every query).
                file.statistics = entry.statistics.clone();
                files.push(file);
            }
        }
        let lake = self.scan_files(state, files, projection, limit).await?;
        let Some(tail) = &self.tail else {
            return Ok(lake);
        };
        if !tail.catch_up().await {
            tracing::debug!(
                "the live tail did not reach the topic's end in time; querying what it has"
            );
        }
        let batch = tail.batch(&self.files)?;
        count_rows(state.config().get_extension::<TailRows>(), batch.num_rows());
        let live = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.files.schema.clone(),
            projection.cloned(),
        )?;
        UnionExec::try_new(vec![lake, live])
    }
}

impl LakeTable {
    /// The plan reading `files` (an empty plan when there are none).
    async fn scan_files(
        &self,
        state: &dyn Session,
        files: Vec<PartitionedFile>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if files.is_empty() {
            let schema = match projection {
                Some(indices) => Arc::new(self.files.schema.project(indices)?),
                None => self.files.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let (groups, statistics) = scan_statistics(groups, &self.files.schema)?;
        let table_schema = TableSchema::builder(self.files.file_schema.clone())
            .with_table_partition_cols(self.files.partition_fields.clone())
            .build();
        let options = state.table_options().parquet.clone();
        let url = ObjectStoreUrl::parse(LAKE_STORE_URL)?;
        // What `ParquetFormat::create_physical_plan` builds, with our reader factory.
        let source = ParquetSource::new(table_schema)
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(LakeReaderFactory::new(
                self.footers.clone(),
            )));
        let config = FileScanConfigBuilder::new(url, Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};
    use datafusion::common::stats::Precision;

    use super::*;

    fn file(name: &str, rows: Option<usize>, schema: &Schema) -> PartitionedFile {
        let file = PartitionedFile::new(name, 100);
        match rows {
            Some(rows) => file.with_statistics(Arc::new(
                Statistics::new_unknown(schema).with_num_rows(Precision::Exact(rows)),
            )),
            None => file,
        }
    }

    #[test]
    fn statistics_are_exact_only_when_every_file_has_them() -> DfResult<()> {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
            "close",
            DataType::Float64,
            true,
        )]));
        let all = vec![FileGroup::new(vec![
            file("a.parquet", Some(10), &schema),
            file("b.parquet", Some(5), &schema),
        ])];
        let (_, statistics) = scan_statistics(all, &schema)?;
        assert_eq!(statistics.num_rows, Precision::Exact(15));
        // One footer not read yet: the 10 rows known must not pass for the whole count.
        let mixed = vec![
            FileGroup::new(vec![file("a.parquet", Some(10), &schema)]),
            FileGroup::new(vec![file("new.parquet", None, &schema)]),
        ];
        let (groups, statistics) = scan_statistics(mixed, &schema)?;
        assert_eq!(statistics.num_rows, Precision::Absent);
        assert_eq!(groups.len(), 2);
        Ok(())
    }
}
