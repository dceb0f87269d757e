//! The catalogued tables as DataFusion sees them.
//!
//! [`LakeSchema`] is registered once as the schema of the configured database; whenever a query
//! names a table it hands out a [`LakeTable`] over the [`FileIndex`]'s current files, so a new
//! partition or file is visible to the next query without re-registering anything. A scan prunes
//! the catalogued partitions with the query's filters on partition columns (evaluated on all
//! partitions at once), then reads the surviving files with DataFusion's Parquet source
//! (statistics, page-index and row-filter pushdown, footers from the shared metadata cache).

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::common::{DFSchema, ScalarValue, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion_datasource::compute_all_files_statistics;

use super::files::{FileIndex, PartitionFiles, TableFiles};

/// The URL the lake's object store is registered under in the session.
pub(crate) const LAKE_STORE_URL: &str = "stockstream://lake/";

/// The database's tables, always those of the index's latest snapshot.
#[derive(Debug)]
pub struct LakeSchema {
    index: Arc<FileIndex>,
}

impl LakeSchema {
    /// A schema over `index`.
    pub fn new(index: Arc<FileIndex>) -> Self {
        Self { index }
    }
}

#[async_trait::async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.index.snapshot().tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .index
            .snapshot()
            .tables
            .get(name)
            .map(|files| Arc::new(LakeTable::new(files.clone())) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.index.snapshot().tables.contains_key(name)
    }
}

/// One table at one moment: its schema and the files visible when the query was planned.
#[derive(Debug)]
pub struct LakeTable {
    files: Arc<TableFiles>,
}

impl LakeTable {
    /// A provider over `files`.
    pub fn new(files: Arc<TableFiles>) -> Self {
        Self { files }
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
                if self.is_partition_filter(filter) {
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
                if let Some(statistics) = &entry.statistics {
                    file = file.with_statistics(statistics.clone());
                }
                files.push(file);
            }
        }
        if files.is_empty() {
            let schema = match projection {
                Some(indices) => Arc::new(self.files.schema.project(indices)?),
                None => self.files.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let (groups, statistics) =
            compute_all_files_statistics(groups, self.files.schema.clone(), true, false)?;
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let table_schema = TableSchema::builder(self.files.file_schema.clone())
            .with_table_partition_cols(self.files.partition_fields.clone())
            .build();
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::parse(LAKE_STORE_URL)?,
            format.file_source(table_schema),
        )
        .with_file_groups(groups)
        .with_statistics(statistics)
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .build();
        format.create_physical_plan(state, config).await
    }
}
