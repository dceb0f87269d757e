//! Query engines behind one small trait: DataFusion over the local lake now, Athena later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::physical_plan::{ExecutionPlan, collect};
use serde::Serialize;
use serde_json::Value;
use stockstream_common::catalog::{Catalog, Table, arrow_type};
use stockstream_common::lake::LakeStore;

use crate::error::{Error, Result};
use crate::json::{column_values, sql_type_name};

/// A result column.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// SQL type name (`bigint`, `double`, `varchar`, `date`, …).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// Execution statistics returned with every answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryStats {
    /// Engine that answered.
    pub engine: &'static str,
    /// Rows returned.
    pub rows: usize,
    /// Whether rows beyond `query.max_rows` were cut.
    pub truncated: bool,
    /// Wall-clock time of planning and execution, in milliseconds.
    pub elapsed_ms: f64,
    /// Bytes read from data files (partition pruning keeps this small).
    pub bytes_scanned: u64,
}

/// A query's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryResult {
    /// Columns, in order.
    pub columns: Vec<ColumnInfo>,
    /// Rows, each a list of values in column order.
    pub rows: Vec<Vec<Value>>,
    /// How the query ran.
    pub stats: QueryStats,
}

/// Executes read-only SQL over the catalogued tables.
#[async_trait::async_trait]
pub trait QueryEngine: Send + Sync + std::fmt::Debug {
    /// Runs `sql`, returning at most `max_rows` rows, failing after `timeout`.
    async fn execute(&self, sql: &str, max_rows: usize, timeout: Duration) -> Result<QueryResult>;
}

/// DataFusion over the lake, with the tables of the local catalog.
#[derive(Debug)]
pub struct DataFusionEngine {
    store: Arc<dyn LakeStore>,
    database: String,
}

impl DataFusionEngine {
    /// Creates an engine reading the catalog and files of `store`, exposing `database`'s tables.
    pub fn new(store: Arc<dyn LakeStore>, database: String) -> Self {
        Self { store, database }
    }

    /// A fresh session with every table of the catalog registered, so each query sees the
    /// catalog as it is now (new partitions become visible as soon as the crawler adds them).
    async fn session(&self) -> Result<SessionContext> {
        let context = SessionContext::new();
        let catalog = Catalog::load(self.store.as_ref())
            .await?
            .unwrap_or_default();
        if let Some(database) = catalog.databases.get(&self.database) {
            for table in database.tables.values() {
                let provider = self.listing_table(table)?;
                context.register_table(table.name.as_str(), Arc::new(provider))?;
            }
        }
        Ok(context)
    }

    fn listing_table(&self, table: &Table) -> Result<ListingTable> {
        let typed =
            |columns: &[stockstream_common::catalog::Column]| -> Result<Vec<(String, DataType)>> {
                columns
                    .iter()
                    .map(|column| {
                        arrow_type(&column.data_type)
                            .map(|data_type| (column.name.clone(), data_type))
                            .ok_or_else(|| {
                                Error::Execution(format!(
                                    "table {}: column {} has unsupported type {}",
                                    table.name, column.name, column.data_type
                                ))
                            })
                    })
                    .collect()
            };
        let file_schema = Schema::new(
            typed(&table.columns)?
                .into_iter()
                .map(|(name, data_type)| Field::new(name, data_type, true))
                .collect::<Vec<_>>(),
        );
        let url = ListingTableUrl::parse(format!("{}{}", self.store.url(), table.location))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(typed(&table.partition_keys)?);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(Arc::new(file_schema));
        Ok(ListingTable::try_new(config)?)
    }
}

#[async_trait::async_trait]
impl QueryEngine for DataFusionEngine {
    async fn execute(&self, sql: &str, max_rows: usize, timeout: Duration) -> Result<QueryResult> {
        let started = Instant::now();
        let run = async {
            let context = self.session().await?;
            let read_only = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let frame = context.sql_with_options(sql, read_only).await?;
            let plan = frame.create_physical_plan().await?;
            let batches = collect(plan.clone(), context.task_ctx()).await?;
            Ok::<_, Error>((plan, batches))
        };
        let (plan, batches) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| Error::Timeout(timeout))??;

        let schema = plan.schema();
        let columns = schema
            .fields()
            .iter()
            .map(|field| ColumnInfo {
                name: field.name().clone(),
                data_type: sql_type_name(field.data_type()),
            })
            .collect();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut truncated = false;
        for batch in &batches {
            if rows.len() >= max_rows {
                truncated |= batch.num_rows() > 0;
                continue;
            }
            let take = (max_rows - rows.len()).min(batch.num_rows());
            truncated |= take < batch.num_rows();
            let converted: Vec<Vec<Value>> = batch
                .columns()
                .iter()
                .map(|column| column_values(&column.slice(0, take)))
                .collect();
            for row in 0..take {
                rows.push(converted.iter().map(|column| column[row].clone()).collect());
            }
        }
        Ok(QueryResult {
            columns,
            stats: QueryStats {
                engine: "datafusion",
                rows: rows.len(),
                truncated,
                elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
                bytes_scanned: metric_sum(plan.as_ref(), "bytes_scanned"),
            },
            rows,
        })
    }
}

/// Sums a named metric over every node of an executed plan.
fn metric_sum(plan: &dyn ExecutionPlan, name: &str) -> u64 {
    let own = plan
        .metrics()
        .and_then(|metrics| metrics.sum_by_name(name))
        .map_or(0, |value| value.as_usize() as u64);
    own + plan
        .children()
        .into_iter()
        .map(|child| metric_sum(child.as_ref(), name))
        .sum::<u64>()
}
