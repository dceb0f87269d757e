//! `stockstream-glue-crawler`: keeps the catalog current the moment a file lands.
//!
//! In the original tutorial a person runs an AWS Glue crawler by hand so Athena sees new data.
//! Here the sink announces every committed file on `lake.commits`; this service applies those
//! events to the catalog (new tables from Parquet footers, new partitions from paths), in batches,
//! and commits its Kafka offsets only after the catalog is saved. Applying an event twice changes
//! nothing, so redelivery is harmless.
//!
//! - Local mode (the embedded default): a Glue-shaped JSON catalog in the lake
//!   (`_stockstream/catalog/catalog.json`), replaced atomically, read by the query API.
//! - Glue mode (`crawler.mode = "glue"`): the AWS Glue Data Catalog, with the strategies of
//!   [`glue`]: `partitions` (register partitions with `BatchCreatePartition`), `projection`
//!   (Athena partition projection, nothing to register) or `crawler` (a Glue crawler started,
//!   debounced, when new data arrive). A batch Glue refuses (throttling, an outage, missing
//!   permissions) is retried with backoff, its offsets stay uncommitted, and `/health/readyz`
//!   reports the error until it succeeds.
//! - `crawl` rebuilds the local catalog from the lake alone (repairing missed events); `sync`
//!   reconciles Glue with the lake; `show` prints the local catalog.
//!
//! The service serves `/metrics`, `/health/livez` and `/health/readyz` on `http.listen`
//! (default `127.0.0.1:9102`).
//!
//! Files: `lib.rs` (`run` and the consume → apply → commit loop), `main.rs` (commands: serve,
//! `crawl`, `sync`, `show`, `compact`), `maintain.rs` (the maintenance lease, the compaction task
//! and the one-shot command), `compaction/` (one round of compaction and retention), `config.rs`,
//! `error.rs`, `metrics.rs`, `apply.rs` (events → the local catalog), `poison.rs` (events set
//! aside on the dead-letter topic instead of stalling the service), `tables.rs` (table
//! definitions from Parquet footers), `crawl.rs` (the catalog rebuilt from the lake), `glue/` (the
//! Glue catalog: `mod.rs` settings, databases and tables; `partitions.rs`, `projection.rs`,
//! `crawler.rs`, one per strategy; `relocate.rs`, compaction's swaps).

mod apply;
pub mod compaction;
pub mod config;
mod crawl;
pub mod error;
pub mod glue;
mod maintain;
mod metrics;
mod poison;
mod tables;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::catalog::Catalog;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::http::{Readiness, openapi_router, ops_router, serve_while, service_api};
use stockstream_common::kafka::{consumer_config, ensure_topics, pipeline_topics};
use stockstream_common::lake::{LakeStore, open_store};
use stockstream_common::telemetry::metrics_handle;

use crate::poison::{Batch, DeadLetters, Received};
use tokio_util::sync::CancellationToken;

pub use crate::apply::{ApplyOutcome, apply_events};
pub use crate::config::{CatalogMode, Config};
pub use crate::crawl::{CrawlReport, crawl};
pub use crate::error::{Error, Result};
pub use crate::glue::{GlueCatalog, GlueOutcome, GlueSettings, Strategy};
pub use crate::maintain::{CompactReport, compact_once};

/// Most events applied in one catalog update.
const MAX_BATCH: usize = 1000;

/// Runs the catalog service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let readiness = Readiness::default();
    let router = ops_router(readiness.clone(), metrics_handle()).merge(openapi_router(service_api(
        "stockstream-glue-crawler",
        "The catalog service's operations endpoints: readiness (Kafka, the lake, the catalog), liveness and Prometheus metrics.",
    )));
    // HTTP stops last, so probes and metrics see the drain.
    serve_while(
        config.http.listen,
        router,
        follow_commits(&config, &readiness, &shutdown),
    )
    .await?
}

/// Rebuilds the catalog from the lake and saves it (unless `dry_run`); returns what changed.
pub async fn crawl_and_save(config: &Config, dry_run: bool) -> Result<CrawlReport> {
    let store = open_store(&config.lake).await?;
    let previous = Catalog::load(store.as_ref()).await?;
    let (catalog, report) =
        crawl(store.as_ref(), &config.crawler.database, previous.as_ref()).await?;
    if !dry_run {
        catalog.save(store.as_ref()).await?;
    }
    Ok(report)
}

/// What `sync` found in the lake and changed in Glue.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Tables found in the lake.
    pub tables: Vec<String>,
    /// Partitions in the lake that Glue lacked (registered unless `dry_run`).
    pub partitions_missing_in_glue: Vec<String>,
    /// Partitions Glue lists that the lake does not hold (reported, never deleted).
    pub partitions_missing_in_lake: Vec<String>,
    /// Files that do not fit their table.
    pub inconsistencies: Vec<String>,
    /// What was done in Glue.
    pub applied: Option<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// Reconciles AWS Glue with the lake: scans the lake like `crawl`, then (unless `dry_run`)
/// creates or updates the tables and registers every missing partition, as if each partition's
/// files had just been committed. Partitions Glue has but the lake lacks are only reported.
pub async fn sync_glue(config: &Config, dry_run: bool) -> Result<SyncReport> {
    let CatalogMode::Glue(settings) = &config.crawler.mode else {
        return Err(stockstream_common::Error::config(
            "crawler.mode",
            "sync reconciles AWS Glue; set crawler.mode = \"glue\" (locally, `crawl` rebuilds the catalog)",
        )
        .into());
    };
    let store = open_store(&config.lake).await?;
    let database = config.crawler.database.as_str();
    let (lake, crawl_report) = crawl(store.as_ref(), database, None).await?;
    let mut glue = GlueCatalog::connect(settings.clone(), database, store.clone()).await?;
    let mut report = SyncReport {
        tables: crawl_report.tables,
        inconsistencies: crawl_report.inconsistencies,
        dry_run,
        ..SyncReport::default()
    };
    let mut events = Vec::new();
    for table in lake.databases.values().flat_map(|db| db.tables.values()) {
        let in_glue = glue.registered_partitions(&table.name).await?;
        let fingerprint = table
            .parameters
            .get(tables::FINGERPRINT_PARAMETER)
            .cloned()
            .unwrap_or_default();
        let mut in_lake = std::collections::HashSet::new();
        for (path, partition) in &table.partitions {
            in_lake.insert(partition.values.clone());
            let missing = !in_glue.contains(&partition.values);
            if missing {
                report
                    .partitions_missing_in_glue
                    .push(format!("{}/{path}", table.name));
            }
            // One event per partition, naming one of its files (for the footer).
            let prefix = format!("{}{path}/", table.location);
            let Some(file) = store
                .list(&prefix)
                .await?
                .into_iter()
                .find(|object| object.key.ends_with(".parquet"))
            else {
                continue;
            };
            let values = stockstream_common::lake::parse_partition_path(
                table.location.trim_end_matches('/'),
                &file.key,
            )
            .unwrap_or_default();
            events.push(LakeCommitEvent {
                version: stockstream_common::events::LAKE_COMMIT_VERSION,
                table: table.name.clone(),
                table_location: table.location.clone(),
                object_key: file.key.clone(),
                partition_keys: table.partition_keys.clone(),
                partition: values,
                row_count: 0,
                size_bytes: file.size,
                min_trade_date: chrono::NaiveDate::MIN,
                max_trade_date: chrono::NaiveDate::MIN,
                schema_fingerprint: fingerprint.clone(),
                source_topic: String::new(),
                source_partition: -1,
                first_offset: -1,
                last_offset: -1,
                committed_at: Utc::now(),
            });
        }
        for values in in_glue.difference(&in_lake) {
            report
                .partitions_missing_in_lake
                .push(format!("{}/{}", table.name, values.join("/")));
        }
    }
    report.partitions_missing_in_glue.sort();
    report.partitions_missing_in_lake.sort();
    if !dry_run {
        let outcome = glue.apply(&events).await?;
        report.applied = Some(format!("{outcome:?}"));
    }
    Ok(report)
}

/// Reads the current catalog (empty if none was written yet).
pub async fn load_catalog(config: &Config) -> Result<Catalog> {
    let store = open_store(&config.lake).await?;
    Ok(Catalog::load(store.as_ref()).await?.unwrap_or_default())
}

/// Where events are applied: the local catalog in the lake, or AWS Glue.
#[derive(Debug)]
enum Backend {
    Local {
        store: Arc<dyn LakeStore>,
        database: String,
    },
    Glue(Box<GlueCatalog>),
}

impl Backend {
    async fn open(config: &Config, store: Arc<dyn LakeStore>) -> Result<Self> {
        let database = config.crawler.database.clone();
        Ok(match &config.crawler.mode {
            CatalogMode::Local => {
                if Catalog::load(store.as_ref()).await?.is_none() {
                    let (catalog, report) = crawl(store.as_ref(), &database, None).await?;
                    catalog.save(store.as_ref()).await?;
                    tracing::info!(tables = ?report.tables, partitions = report.partitions_added.len(), "no catalog yet: built one by crawling the lake");
                }
                Backend::Local { store, database }
            }
            CatalogMode::Glue(settings) => Backend::Glue(Box::new(
                GlueCatalog::connect(settings.clone(), &database, store).await?,
            )),
        })
    }

    fn describe(&self) -> String {
        match self {
            Backend::Local { store, .. } => format!("local catalog in {}", store.url()),
            Backend::Glue(_) => "AWS Glue Data Catalog".to_string(),
        }
    }

    async fn apply(&mut self, batch: &[LakeCommitEvent]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Backend::Local { store, database } => {
                apply_batch(store.clone(), database, batch).await?;
            }
            Backend::Glue(glue) => {
                let outcome = glue.apply(batch).await?;
                record_glue(&outcome);
                tracing::info!(events = batch.len(), ?outcome, "Glue catalog updated");
            }
        }
        let now = Utc::now();
        for event in batch {
            let lag = (now - event.committed_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::catalog_lag(lag);
        }
        metrics::events_applied(batch.len() as u64);
        Ok(())
    }

    async fn tick(&mut self) -> Result<()> {
        if let Backend::Glue(glue) = self {
            let outcome = glue.drive_crawler().await?;
            record_glue(&outcome);
        }
        Ok(())
    }
}

fn record_glue(outcome: &GlueOutcome) {
    metrics::partitions_registered(outcome.partitions_registered);
    metrics::tables_changed(outcome.tables_created + outcome.tables_updated);
    metrics::crawler_starts(outcome.crawler_starts);
    metrics::crawler_waits(outcome.crawler_waits);
}

/// Longest pause between attempts to apply a batch the catalog refused.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

async fn follow_commits(
    config: &Config,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Result<()> {
    let store = open_store(&config.lake).await?;
    let database = config.crawler.database.as_str();
    let mut backend = Backend::open(config, store.clone()).await?;
    readiness.set("maintenance", false, "waiting for the maintenance lease");
    let (maintenance, maintenance_task) =
        crate::maintain::Maintenance::start(config, store.clone(), shutdown).await?;
    readiness.set("maintenance", true, "holding the maintenance lease");
    readiness.set("catalog", true, backend.describe());
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let topic = config.kafka.topics.lake_commits.clone();
    let consumer: StreamConsumer = consumer_config(
        &config.kafka,
        "catalog-consumer",
        &config.crawler.group_id,
        &[],
    )
    .create()
    .map_err(|error| stockstream_common::Error::kafka("creating the catalog consumer", error))?;
    consumer
        .subscribe(&[topic.as_str()])
        .map_err(|error| Error::Consume {
            topic: topic.clone(),
            source: error,
        })?;
    readiness.set("kafka", true, format!("subscribed to {topic}"));
    let dead_letters = DeadLetters::new(&config.kafka)?;
    let announcer = compaction::Announcer::new(&config.kafka)?;
    tracing::info!(%topic, database, "following lake commits");
    let mut ticker = tokio::time::interval(config.crawler.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                match backend.tick().await {
                    Ok(()) => readiness.set("catalog", true, backend.describe()),
                    Err(error) => {
                        tracing::warn!(%error, "catalog upkeep failed");
                        readiness.set("catalog", false, error.to_string());
                    }
                }
                continue;
            }
            received = consumer.recv() => received,
        };
        let mut batch = Batch::default();
        let mut offsets = TopicPartitionList::new();
        let mut record = |message: &rdkafka::message::BorrowedMessage<'_>, batch: &mut Batch| {
            let _ = offsets.add_partition_offset(
                message.topic(),
                message.partition(),
                Offset::Offset(message.offset() + 1),
            );
            batch.push(Received::decode(message));
        };
        match first {
            Ok(message) => record(&message, &mut batch),
            Err(error) => {
                tracing::warn!(%error, %topic, "consumer error");
                readiness.set("kafka", false, error.to_string());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        let window = tokio::time::sleep(config.crawler.batch_window);
        tokio::pin!(window);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                () = &mut window => break,
                next = consumer.recv() => match next {
                    Ok(message) => record(&message, &mut batch),
                    Err(error) => {
                        tracing::warn!(%error, %topic, "consumer error");
                        break;
                    }
                },
            }
        }
        readiness.set("kafka", true, format!("subscribed to {topic}"));
        // The batch is applied before its offsets are committed; a refusal (throttling, an
        // outage, missing permissions) is retried with backoff and shows on /health/readyz. An
        // event at fault (see `poison`) is set aside instead, and the rest applied at once.
        let mut backoff = Duration::from_secs(1);
        loop {
            let applied = {
                // Compaction swaps locations under the same lock.
                let _guard = maintenance.lock.lock().await;
                match backend.apply(batch.events()).await {
                    Ok(()) => compaction::copy_late_files(
                        store.as_ref(),
                        &maintenance.generations,
                        Some(&announcer),
                        batch.events(),
                    )
                    .await
                    .map(metrics::late_files_copied),
                    Err(error) => Err(error),
                }
            };
            let failure = match applied {
                Ok(()) => match dead_letters.send(&batch.set_aside).await {
                    Ok(()) => {
                        readiness.set("catalog", true, backend.describe());
                        break;
                    }
                    // Sent again with the retry: dead letters are delivered at least once.
                    Err(error) => error,
                },
                Err(error) => {
                    if let Some(key) = poison::blamed_key(&error)
                        && batch.blame(key, &error.to_string())
                    {
                        continue;
                    }
                    error
                }
            };
            tracing::error!(error = %failure, retryable = failure.is_retryable(), retry_in = ?backoff, "applying lake commits failed");
            readiness.set("catalog", false, failure.to_string());
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = maintenance_task.await;
                    return Ok(());
                }
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            tracing::warn!(%error, "offset commit failed; the events will be applied again (harmlessly)");
        }
    }
    // The task gives the lease up once `shutdown` is cancelled.
    let _ = maintenance_task.await;
    Ok(())
}

async fn apply_batch(
    store: Arc<dyn LakeStore>,
    database: &str,
    batch: &[LakeCommitEvent],
) -> Result<()> {
    let mut catalog = Catalog::load(store.as_ref()).await?.unwrap_or_default();
    let outcome = apply_events(&mut catalog, database, batch, store.as_ref()).await?;
    if outcome.changed() {
        catalog.save(store.as_ref()).await?;
    }
    metrics::partitions_registered(outcome.partitions_added);
    metrics::tables_changed(outcome.tables_created + outcome.schemas_updated);
    tracing::info!(
        events = batch.len(),
        partitions_added = outcome.partitions_added,
        tables_created = outcome.tables_created,
        schemas_updated = outcome.schemas_updated,
        "catalog updated"
    );
    Ok(())
}
