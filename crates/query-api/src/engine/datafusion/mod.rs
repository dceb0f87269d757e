//! The embedded engine: Apache DataFusion over the lake, in the query API's process.
//!
//! One long-lived session: the lake's object store (local disk or S3) is registered once, the
//! database's tables are one [`LakeSchema`] that always reflects the [`FileIndex`], and the
//! runtime has a bounded memory pool (`FairSpillPool`, `query.memory_limit`: sorts and
//! aggregations spill to disk past their fair share) and a Parquet metadata cache
//! (`query.metadata_cache_bytes`). Filters are pushed into the Parquet scan (row groups and pages
//! pruned by statistics and the page index, rows filtered while decoding).
//!
//! Files:
//! - `mod.rs`: the engine (session, planning, execution task);
//! - `admission.rs`: the scan budget (`query.max_scan_files`), which queries wait for before
//!   they execute;
//! - [`files`] (`files/`): the index of visible files, following the catalog and `lake.commits`:
//!   `mod.rs` (the index and its snapshot), `listing.rs` (listing as the catalog changes, the
//!   relist), `committed.rs` (files from commit events), `carry_over.rs` (files kept visible when
//!   compaction moves a partition), `layout.rs` (which partition owns a key), `statistics.rs`
//!   (footers read into statistics);
//! - [`table`]: the schema and table providers over the index;
//! - `footers.rs`: each file's footer, read once and kept compact in the metadata cache (one
//!   schema shared by the files that have it; no page index where it repeats the chunks'
//!   statistics);
//! - `parquet_reader.rs`: how a scan opens each file (footers from `footers.rs`, bytes counted);
//! - [`commits`]: the `lake.commits` follower;
//! - [`store`]: the lake as an `object_store` (local or S3 with the AWS credential chain);
//! - `local_store.rs`: the local lake's store, reading small ranges without a blocking-pool hop;
//! - [`tail`]: real-time SQL, table `quotes` as the lake plus the live view's tail.

mod admission;
mod commits;
pub mod files;
mod footers;
mod local_store;
mod parquet_reader;
pub mod store;
pub mod table;
pub mod tail;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::execution::cache::Cache;
use datafusion::execution::cache::cache_manager::{
    CacheManagerConfig, CachedFileMetadataEntry, FileMetadataCache,
};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value, VisitMut, VisitorMut};
use futures::StreamExt;
use stockstream_common::config::{KafkaConfig, LakeConfig};
use tokio_util::sync::CancellationToken;

use self::admission::ScanBudget;
pub use self::files::FileIndex;
use self::footers::LakeFooters;
use self::store::open_lake;
use self::table::{LAKE_STORE_URL, LakeSchema};
use self::tail::TailRows;
use super::{Execution, ExecutionSink, Output, Param, QueryEngine, QueryRequest, QueryState};
use crate::catalog::CatalogView;
use crate::config::{EngineKind, QueryConfig};
use crate::error::{Error, Result};
use crate::guard::DATA_CATALOG;

/// How often the index and footer-cache gauges are set.
const CACHE_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// DataFusion's cache of Parquet footers (with their page indexes), by file.
type FooterCache = DefaultCache<object_store::path::Path, CachedFileMetadataEntry>;

/// DataFusion over the lake.
pub struct DataFusionEngine {
    context: SessionContext,
    index: Arc<FileIndex>,
    /// The catalog the guard checks table names against; the index follows it.
    catalog: CatalogView,
    /// Whether table `quotes` includes the live tail.
    live_tail: bool,
    /// Files the running scans may hold at once (`query.max_scan_files`).
    scan_budget: ScanBudget,
}

impl std::fmt::Debug for DataFusionEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DataFusionEngine")
            .field("session", &self.context.session_id())
            .field("index", &self.index)
            .finish()
    }
}

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct DataFusionSettings {
    /// The lake.
    pub lake: LakeConfig,
    /// The broker, to follow `lake.commits` (if `query.follow_commits`).
    pub kafka: KafkaConfig,
    /// Query settings (database, memory, refresh intervals).
    pub query: QueryConfig,
    /// The live tail table `quotes` adds (`query.live_tail`).
    pub live_tail: Option<Arc<tail::LiveTail>>,
}

impl DataFusionEngine {
    /// Opens the lake, lists the visible files of `catalog` and starts following changes until
    /// `shutdown`.
    pub async fn start(
        settings: DataFusionSettings,
        catalog: CatalogView,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>> {
        let query = &settings.query;
        let lake = open_lake(&settings.lake).await?;
        // Our own handle on the footer cache, for the bytes it holds (`/metrics`).
        let footers: Arc<FooterCache> = Arc::new(
            DefaultCache::new(query.metadata_cache_bytes.get()).with_name("parquet footers"),
        );
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(query.memory_limit.get())))
            .with_cache_manager(
                CacheManagerConfig::default()
                    .with_file_metadata_cache(Some(footers.clone() as Arc<FileMetadataCache>))
                    .with_metadata_cache_limit(query.metadata_cache_bytes.get()),
            )
            .build_arc()?;
        runtime.register_object_store(
            ObjectStoreUrl::parse(LAKE_STORE_URL)?.as_ref(),
            lake.store.clone(),
        );
        let lake_footers = Arc::new(LakeFooters::new(
            lake.store.clone(),
            runtime.cache_manager.get_file_metadata_cache(),
        ));
        let index = Arc::new(FileIndex::new(lake, catalog.clone(), lake_footers));

        let assigned = if query.follow_commits {
            match commits::assign(&settings.kafka).await {
                Ok(consumer) => Some(consumer),
                Err(error) => {
                    tracing::warn!(%error, "lake.commits cannot be followed yet; retrying in the background");
                    None
                }
            }
        } else {
            None
        };
        index.apply_catalog(&catalog.snapshot()).await?;

        let context = SessionContext::new_with_config_rt(session_config(query), runtime);
        let data_catalog = MemoryCatalogProvider::new();
        data_catalog.register_schema(
            &query.database,
            Arc::new(LakeSchema::new(index.clone(), settings.live_tail.clone())),
        )?;
        context.register_catalog(DATA_CATALOG, Arc::new(data_catalog));

        tokio::spawn(index.clone().load_statistics(shutdown.clone()));
        tokio::spawn(report_caches(index.clone(), footers, shutdown.clone()));
        tokio::spawn(follow_catalog(
            index.clone(),
            catalog.clone(),
            query.relist_interval,
            shutdown.clone(),
        ));
        if query.follow_commits {
            tokio::spawn(commits::follow(
                settings.kafka.clone(),
                index.clone(),
                catalog.clone(),
                assigned,
                shutdown,
            ));
        }
        let live_tail = settings.live_tail.is_some();
        Ok(Arc::new(Self {
            context,
            index,
            catalog,
            live_tail,
            scan_budget: ScanBudget::new(query.max_scan_files.get()),
        }))
    }

    /// The index of visible files (for status and tests).
    pub fn index(&self) -> &Arc<FileIndex> {
        &self.index
    }

    /// Applies the catalog to the index now when the catalog lists a table the index has not
    /// built yet. The index follows the catalog in the background, but the guard let the query
    /// through because the catalog has the table: without this, a query right after a table
    /// appears failed with DataFusion's "table not found".
    async fn catch_up_with_catalog(&self) -> Result<()> {
        let catalog = self.catalog.snapshot();
        let index = self.index.snapshot();
        if catalog
            .tables
            .keys()
            .all(|name| index.tables.contains_key(name))
        {
            return Ok(());
        }
        self.index.apply_catalog(&catalog).await
    }

    /// Plans `request` into a physical plan.
    /// With `tail_rows`, the scan of `quotes` counts the rows it adds from the live tail there.
    async fn plan(
        &self,
        request: &QueryRequest,
        tail_rows: Option<Arc<TailRows>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.catch_up_with_catalog().await?;
        let mut state = self.context.state();
        if let Some(counter) = tail_rows {
            state.config_mut().set_extension(counter);
        }
        let mut statement = request.checked.statement.clone();
        let is_query = matches!(statement, Statement::Query(_));
        number_placeholders(&mut statement);
        let mut plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        if !request.params.is_empty() {
            plan = bind(plan, &request.params)?;
        }
        if is_query {
            // Stop producing rows after the first one the client will not read.
            plan = LogicalPlanBuilder::from(plan)
                .limit(0, Some(request.max_rows.saturating_add(1)))?
                .build()?;
        }
        Ok(state.create_physical_plan(&plan).await?)
    }
}

fn session_config(query: &QueryConfig) -> SessionConfig {
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(DATA_CATALOG, &query.database)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true)
        .with_target_partitions(cores);
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    parquet.enable_page_index = true;
    parquet.pruning = true;
    config
}

/// Applies catalog changes to the index, and lists everything again every `relist`.
async fn follow_catalog(
    index: Arc<FileIndex>,
    catalog: CatalogView,
    relist: Duration,
    shutdown: CancellationToken,
) {
    let mut changes = catalog.subscribe();
    let mut relist_timer = tokio::time::interval(relist);
    relist_timer.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let snapshot = changes.borrow_and_update().clone();
                if let Err(error) = index.apply_catalog(&snapshot).await {
                    tracing::warn!(%error, "applying a catalog change to the file index failed");
                }
            }
            _ = relist_timer.tick() => {
                if let Err(error) = index.relist(&catalog.snapshot()).await {
                    tracing::warn!(%error, "listing the lake again failed");
                }
            }
        }
    }
}

/// Every few seconds, drops the footers of files no longer visible that the cache still holds
/// (see [`FileIndex::forget_stale_footers`]) and sets the gauges of visible files and cached
/// footers, until `shutdown`.
async fn report_caches(
    index: Arc<FileIndex>,
    footers: Arc<FooterCache>,
    shutdown: CancellationToken,
) {
    let mut timer = tokio::time::interval(CACHE_REPORT_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = timer.tick() => {}
        }
        let stale = index.forget_stale_footers();
        if stale > 0 {
            tracing::debug!(stale, "dropped cached footers of files no longer visible");
        }
        crate::metrics::engine_caches(crate::metrics::EngineCaches {
            index_files: index.snapshot().file_count(),
            footers: footers.len(),
            footer_bytes: footers.memory_used(),
            footer_limit_bytes: footers.cache_limit(),
        });
    }
}

/// Rewrites `?` placeholders to DataFusion's `$1`, `$2`, … in order of appearance.
fn number_placeholders(statement: &mut Statement) {
    struct Numbering(usize);
    impl VisitorMut for Numbering {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(value) = expr
                && let Value::Placeholder(text) = &mut value.value
                && text == "?"
            {
                self.0 += 1;
                *text = format!("${}", self.0);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Numbering(0));
}

/// Binds `params` to the plan's placeholders, cast to the types the planner inferred for them.
fn bind(plan: LogicalPlan, params: &[Param]) -> Result<LogicalPlan> {
    let types = plan.get_parameter_types()?;
    let values = params
        .iter()
        .enumerate()
        .map(|(position, param)| {
            let value = match param {
                Param::Null => ScalarValue::Null,
                Param::Bool(flag) => ScalarValue::Boolean(Some(*flag)),
                Param::Int(integer) => ScalarValue::Int64(Some(*integer)),
                Param::Float(float) => ScalarValue::Float64(Some(*float)),
                Param::Text(text) => ScalarValue::Utf8(Some(text.clone())),
            };
            let wanted = types.get(&format!("${}", position + 1)).cloned().flatten();
            match wanted {
                Some(data_type) if !value.is_null() && value.data_type() != data_type => {
                    value.cast_to(&data_type).map_err(|_| {
                        Error::BadRequest(format!(
                            "params[{position}]: {value} cannot be read as {data_type}"
                        ))
                    })
                }
                _ => Ok(value),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(plan.with_param_values(ParamValues::from(values))?)
}

#[async_trait::async_trait]
impl QueryEngine for DataFusionEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::DataFusion
    }

    async fn start(&self, request: QueryRequest) -> Result<Execution> {
        let tail_rows = self.live_tail.then(|| Arc::new(TailRows::default()));
        let plan = self.plan(&request, tail_rows.clone()).await?;
        let (sink, execution) = ExecutionSink::channel(EngineKind::DataFusion);
        let task_context = self.context.task_ctx();
        tokio::spawn(drive(
            sink,
            plan,
            task_context,
            request.timeout,
            tail_rows,
            self.scan_budget.clone(),
        ));
        Ok(execution)
    }

    fn visible_files(&self, table: &str) -> Option<u64> {
        self.index
            .snapshot()
            .tables
            .get(table)
            .map(|files| files.file_count() as u64)
    }
}

/// Runs `plan`, sending its batches to `sink`, until done, cancelled or past `timeout`: first
/// waits for its files' share of `scan_budget` (queued), then executes (running).
async fn drive(
    sink: ExecutionSink,
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    timeout: Duration,
    tail_rows: Option<Arc<TailRows>>,
    scan_budget: ScanBudget,
) {
    let started = tokio::time::Instant::now();
    let (files, partitions) = scanned_files(plan.as_ref());
    // Held until the plan, whose per-file state it stands for, is no longer needed.
    let mut admission = None;
    let mut queued = None;
    let outcome = tokio::select! {
        outcome = async {
            admission = Some(scan_budget.admit(files).await);
            queued = Some(started.elapsed());
            sink.update(|status| status.state = QueryState::Running);
            produce(&sink, plan.clone(), context).await
        } => outcome,
        () = tokio::time::sleep(timeout) => Err(Error::Timeout(timeout)),
        () = sink.cancel.cancelled() => Err(Error::Cancelled(String::new())),
    };
    let bytes = metric_sum(plan.as_ref(), "bytes_scanned");
    sink.update(|status| {
        status.stats.bytes_scanned = bytes;
        status.stats.files_scanned = Some(files);
        status.stats.partitions_scanned = Some(partitions);
        status.stats.queue_ms = queued.map(|queued| queued.as_millis() as u64);
        status.stats.tail_rows = tail_rows
            .as_ref()
            .map(|rows| rows.0.load(std::sync::atomic::Ordering::Relaxed));
        status.stats.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    });
    drop(plan);
    drop(admission);
    sink.finish(outcome);
}

async fn produce(
    sink: &ExecutionSink,
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
) -> Result<()> {
    if !sink.send(Output::Schema(plan.schema())).await {
        return Err(Error::Cancelled(": the client left".into()));
    }
    let mut stream = execute_stream(plan, context)?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let rows = batch.num_rows();
        if !sink.send(Output::Batch(batch)).await {
            return Err(Error::Cancelled(": the client left".into()));
        }
        sink.update(|status| status.stats.rows += rows);
    }
    Ok(())
}

/// Files and distinct partitions the plan's Parquet scans read.
fn scanned_files(plan: &dyn ExecutionPlan) -> (u64, u64) {
    let mut files = 0;
    let mut partitions = HashSet::new();
    let mut pending: Vec<&dyn ExecutionPlan> = vec![plan];
    while let Some(node) = pending.pop() {
        if let Some(source) = node.downcast_ref::<DataSourceExec>()
            && let Some(scan) = source.data_source().downcast_ref::<FileScanConfig>()
        {
            for group in &scan.file_groups {
                for file in group.iter() {
                    files += 1;
                    partitions.insert(format!("{:?}", file.partition_values));
                }
            }
        }
        pending.extend(node.children().into_iter().map(|child| child.as_ref()));
    }
    (files, partitions.len() as u64)
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
