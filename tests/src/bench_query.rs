//! What `make bench-query` shares with its smoke test: the generated lakes (built once and cached
//! under `$STOCKSTREAM_CACHE/bench-query/`), the query list (`tests/data/bench-queries.json`,
//! also read by `scripts/bench_query.py`) and the embedded engine driven in process, without HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use stockstream_common::config::LakeConfig;
use stockstream_common::http::Readiness;
use stockstream_common::lake::PartitionTemplate;
use stockstream_ingest::generate::{GenerateOptions, QuoteGenerator};
use stockstream_query_api::catalog::CatalogView;
use stockstream_query_api::catalog::local::LocalCatalog;
use stockstream_query_api::engine::datafusion::store::open_lake;
use stockstream_query_api::engine::datafusion::{DataFusionEngine, DataFusionSettings};
use stockstream_query_api::engine::{Output, QueryEngine, QueryRequest, QueryState};
use stockstream_query_api::guard;
use tokio_util::sync::CancellationToken;

use crate::lake::{LakeShape, LakeWriter, catalog_lake};

/// The catalog database of the bench lakes.
pub const DATABASE: &str = "stockstream";
/// Bumped when the way lakes are generated changes, so cached lakes are rebuilt.
const GENERATION: u32 = 1;
/// Name of the file that marks a finished lake (hidden from engines: `_` and not `.parquet`).
const DONE_MARKER: &str = "_bench-lake.json";

/// A generated lake: `symbols` symbols (`S0000`, `S0001`, …) over `days` trading days.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchLake {
    /// Short name in reports.
    pub name: String,
    /// Number of symbols.
    pub symbols: usize,
    /// Trading days per symbol.
    pub days: u32,
    /// First day.
    pub start: NaiveDate,
    /// Generator seed.
    pub seed: u64,
    /// Rows of one Kafka partition per flush (the files a flush leaves), or `None` for one file
    /// per partition path (a compacted lake, or a sink whose flushes never cut a path).
    pub rows_per_flush: Option<usize>,
}

/// What a built lake holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuiltLake {
    /// How it was generated.
    pub lake: BenchLake,
    /// Its root directory.
    pub root: PathBuf,
    /// Rows.
    pub rows: u64,
    /// Data files.
    pub files: usize,
    /// Bytes of data files.
    pub bytes: u64,
    /// Seconds it took to build (when it was built).
    pub build_seconds: f64,
}

impl BenchLake {
    /// The benchmark's two lakes: 1,000 symbols × 10,000 trading days (10 M rows, 39,000
    /// `symbol=…/year=…` partitions) once with one file per partition and once cut as 1 s
    /// flushes of a replay leave it (60,000 rows per Kafka partition and flush: the replay's
    /// ~180k rows/s over 3 partitions).
    pub fn benchmark() -> Vec<BenchLake> {
        let base = BenchLake {
            name: String::new(),
            symbols: 1000,
            days: 10_000,
            start: NaiveDate::from_ymd_opt(1985, 1, 1).unwrap_or_default(),
            seed: 10,
            rows_per_flush: None,
        };
        vec![
            BenchLake {
                name: "partition-files".into(),
                ..base.clone()
            },
            BenchLake {
                name: "1s-flush-files".into(),
                rows_per_flush: Some(60_000),
                ..base
            },
        ]
    }

    /// A small lake for the smoke test: 50 symbols × 400 days from mid-2007, files of 1,000-row
    /// flushes; holds every symbol and day the bench queries name.
    pub fn smoke() -> BenchLake {
        BenchLake {
            name: "smoke".into(),
            symbols: 50,
            days: 400,
            start: NaiveDate::from_ymd_opt(2007, 6, 1).unwrap_or_default(),
            seed: 10,
            rows_per_flush: Some(1000),
        }
    }

    /// Directory name: every parameter, so a changed parameter builds another lake.
    pub fn key(&self) -> String {
        let flush = self
            .rows_per_flush
            .map_or("per-partition".to_string(), |rows| format!("flush{rows}"));
        format!(
            "{}-{}sym-{}d-{}-seed{}-{flush}-g{GENERATION}-v{}",
            self.name,
            self.symbols,
            self.days,
            self.start,
            self.seed,
            env!("CARGO_PKG_VERSION")
        )
    }

    /// Rows the lake holds.
    pub fn rows(&self) -> u64 {
        self.symbols as u64 * u64::from(self.days)
    }

    /// The lake under `cache`, built first if it is not there yet (with progress on stderr).
    pub async fn ensure(&self, cache: &Path) -> Result<BuiltLake> {
        let root = cache.join(self.key());
        if let Some(built) = read_marker(&root)? {
            eprintln!(
                "bench-query: lake {} cached at {} ({} rows, {} files)",
                self.name,
                root.display(),
                built.rows,
                built.files
            );
            return Ok(built);
        }
        if root.exists() {
            // An interrupted build: start over.
            std::fs::remove_dir_all(&root).with_context(|| root.display().to_string())?;
        }
        self.build(&root).await
    }

    /// Builds the lake at `root` (which must not exist) and its catalog.
    pub async fn build(&self, root: &Path) -> Result<BuiltLake> {
        let started = Instant::now();
        let lake = self.clone();
        let target = root.to_path_buf();
        let written = tokio::task::spawn_blocking(move || lake.write_files(&target)).await??;
        eprintln!("bench-query: lake {}: cataloguing", self.name);
        catalog_lake(root, DATABASE).await?;
        let built = BuiltLake {
            lake: self.clone(),
            root: root.to_path_buf(),
            rows: written.rows,
            files: written.files,
            bytes: written.bytes,
            build_seconds: started.elapsed().as_secs_f64(),
        };
        std::fs::write(root.join(DONE_MARKER), serde_json::to_vec_pretty(&built)?)?;
        eprintln!(
            "bench-query: lake {} built in {:.0} s: {} rows, {} files, {} MiB",
            self.name,
            built.build_seconds,
            built.rows,
            built.files,
            built.bytes >> 20
        );
        Ok(built)
    }

    fn write_files(&self, root: &Path) -> Result<crate::lake::LakeWritten> {
        let symbols = (0..self.symbols)
            .map(|index| format!("S{index:04}"))
            .collect();
        let generator = QuoteGenerator::new(&GenerateOptions {
            symbols,
            days: self.days,
            start: self.start,
            seed: self.seed,
        })?;
        let shape = LakeShape {
            kafka_partitions: 3,
            rows_per_flush: self.rows_per_flush.unwrap_or(usize::MAX),
        };
        let ingested_at = Utc
            .with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
            .single()
            .context("a fixed ingestion time")?;
        let mut writer = LakeWriter::new(
            root,
            "quotes",
            PartitionTemplate::default(),
            shape,
            ingested_at,
        );
        let total = self.rows();
        let step = (total / 20).max(1);
        let mut year = None;
        for (count, quote) in generator.enumerate() {
            // Quotes come in date order: a new year completes every partition of the last one.
            if self.rows_per_flush.is_none() && year != Some(quote.trade_date.year()) {
                writer.flush_all()?;
                year = Some(quote.trade_date.year());
            }
            writer.push(quote)?;
            if (count as u64 + 1).is_multiple_of(step) {
                eprintln!(
                    "bench-query: lake {}: {} of {total} rows generated, {} files written",
                    self.name,
                    count + 1,
                    writer.written().files
                );
            }
        }
        writer.finish()
    }
}

fn read_marker(root: &Path) -> Result<Option<BuiltLake>> {
    match std::fs::read(root.join(DONE_MARKER)) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Where the bench keeps its lakes: `$STOCKSTREAM_CACHE/bench-query` (default
/// `~/.cache/stockstream/bench-query`).
pub fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("STOCKSTREAM_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/stockstream"),
    };
    Ok(base.join("bench-query"))
}

/// One query of the benchmark.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BenchQuery {
    /// Short name.
    pub name: String,
    /// `selective` (one symbol), `full-scan` or `filter`.
    pub kind: String,
    /// What a user asks with it.
    pub about: String,
    /// SQL for stockstream (DataFusion).
    pub sql: String,
    /// The same question in DuckDB's dialect, when it differs.
    #[serde(default)]
    pub duckdb: Option<String>,
}

/// The query list, `tests/data/bench-queries.json`.
pub fn queries() -> Result<Vec<BenchQuery>> {
    let path = queries_path();
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

/// Path of the query list.
pub fn queries_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bench-queries.json")
}

/// The embedded engine over a lake, in this process (no HTTP), as the query API builds it.
#[derive(Debug)]
pub struct InProcessEngine {
    engine: Arc<DataFusionEngine>,
    catalog: CatalogView,
    config: stockstream_query_api::Config,
    shutdown: CancellationToken,
}

impl InProcessEngine {
    /// Starts the engine over the local lake at `root` with the query API's default settings
    /// (no `lake.commits` to follow), except the time limit: 10 minutes, as the bench gives the
    /// HTTP side, so a cold full scan of a 94,000-file lake is measured instead of cancelled.
    pub async fn start(root: &Path) -> Result<Self> {
        let mut config = stockstream_query_api::Config::load(None)?;
        config.lake = LakeConfig::Local {
            root: root.to_path_buf(),
        };
        config.query.follow_commits = false;
        config.query.database = DATABASE.into();
        config.query.timeout = std::time::Duration::from_secs(600);
        let shutdown = CancellationToken::new();
        let lake = open_lake(&config.lake).await?;
        let source = Arc::new(LocalCatalog::new(lake.store, lake.url, DATABASE.into()));
        let catalog = CatalogView::start(
            source,
            config.query.catalog_refresh,
            config.query.relist_interval,
            Readiness::default(),
            shutdown.clone(),
        )
        .await?;
        let engine = DataFusionEngine::start(
            DataFusionSettings {
                lake: config.lake.clone(),
                kafka: config.kafka.clone(),
                query: config.query.clone(),
                live_tail: None,
            },
            catalog.clone(),
            shutdown.clone(),
        )
        .await?;
        Ok(Self {
            engine,
            catalog,
            config,
            shutdown,
        })
    }

    /// Waits until every visible file's footer has been read (the engine does it in the
    /// background after it starts), at most `limit`.
    pub async fn wait_for_statistics(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let missing = self.engine.index().snapshot().files_without_statistics();
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{missing} footers still unread after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `sql` to the end; returns the rows it produced.
    pub async fn run(&self, sql: &str) -> Result<usize> {
        let checked = guard::check(sql, &self.catalog.snapshot().scope())?;
        let request = QueryRequest {
            id: format!(
                "bench-{}",
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
            sql: sql.to_string(),
            checked,
            params: Vec::new(),
            max_rows: self.config.query.max_rows.get(),
            timeout: self.config.query.timeout,
        };
        let mut execution = self.engine.start(request).await?;
        let mut rows = 0;
        while let Some(output) = execution.output.recv().await {
            if let Output::Batch(batch) = output {
                rows += batch.num_rows();
            }
        }
        let status = execution.status.borrow().clone();
        if status.state != QueryState::Succeeded {
            bail!("{sql}: {:?} {:?}", status.state, status.error);
        }
        Ok(rows)
    }
}

impl Drop for InProcessEngine {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
