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
//! - `crawl` rebuilds the catalog from the lake alone (repairing missed events); `show` prints it.
//!
//! The service serves `/metrics`, `/health/livez` and `/health/readyz` on `http.listen`
//! (default `127.0.0.1:9102`).

mod apply;
pub mod config;
mod crawl;
pub mod error;
mod metrics;
mod tables;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::catalog::Catalog;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::http::{Readiness, ops_router, serve_while};
use stockstream_common::kafka::{consumer_config, ensure_topics, pipeline_topics};
use stockstream_common::lake::{LakeStore, open_store};
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

pub use crate::apply::{ApplyOutcome, apply_events};
pub use crate::config::{CatalogMode, Config};
pub use crate::crawl::{CrawlReport, crawl};
pub use crate::error::{Error, Result};

/// Most events applied in one catalog update.
const MAX_BATCH: usize = 1000;

/// Runs the catalog service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let readiness = Readiness::default();
    let router = ops_router(readiness.clone(), metrics_handle());
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
    let store = open_store(&config.lake)?;
    let previous = Catalog::load(store.as_ref()).await?;
    let (catalog, report) =
        crawl(store.as_ref(), &config.crawler.database, previous.as_ref()).await?;
    if !dry_run {
        catalog.save(store.as_ref()).await?;
    }
    Ok(report)
}

/// Reads the current catalog (empty if none was written yet).
pub async fn load_catalog(config: &Config) -> Result<Catalog> {
    let store = open_store(&config.lake)?;
    Ok(Catalog::load(store.as_ref()).await?.unwrap_or_default())
}

async fn follow_commits(
    config: &Config,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Result<()> {
    let CatalogMode::Local = config.crawler.mode;
    let store = open_store(&config.lake)?;
    let database = config.crawler.database.as_str();
    if Catalog::load(store.as_ref()).await?.is_none() {
        let (catalog, report) = crawl(store.as_ref(), database, None).await?;
        catalog.save(store.as_ref()).await?;
        tracing::info!(tables = ?report.tables, partitions = report.partitions_added.len(), "no catalog yet: built one by crawling the lake");
    }
    readiness.set("catalog", true, format!("local catalog in {}", store.url()));
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
    tracing::info!(%topic, database, "following lake commits");

    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        let mut batch = Vec::new();
        let mut offsets = TopicPartitionList::new();
        let mut record = |message: &rdkafka::message::BorrowedMessage<'_>,
                          batch: &mut Vec<LakeCommitEvent>| {
            let _ = offsets.add_partition_offset(
                message.topic(),
                message.partition(),
                Offset::Offset(message.offset() + 1),
            );
            match message
                .payload()
                .map(serde_json::from_slice::<LakeCommitEvent>)
            {
                Some(Ok(event)) => batch.push(event),
                Some(Err(error)) => {
                    metrics::events_rejected(1);
                    tracing::warn!(partition = message.partition(), offset = message.offset(), %error, "skipping an undecodable lake commit event");
                }
                None => metrics::events_rejected(1),
            }
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
                received = consumer.recv() => match received {
                    Ok(message) => record(&message, &mut batch),
                    Err(error) => {
                        tracing::warn!(%error, %topic, "consumer error");
                        break;
                    }
                },
            }
        }
        readiness.set("kafka", true, format!("subscribed to {topic}"));
        apply_batch(store.clone(), database, &batch).await?;
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            tracing::warn!(%error, "offset commit failed; the events will be applied again (harmlessly)");
        }
    }
    Ok(())
}

async fn apply_batch(
    store: Arc<dyn LakeStore>,
    database: &str,
    batch: &[LakeCommitEvent],
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut catalog = Catalog::load(store.as_ref()).await?.unwrap_or_default();
    let outcome = apply_events(&mut catalog, database, batch, store.as_ref()).await?;
    if outcome.changed() {
        catalog.save(store.as_ref()).await?;
    }
    let now = Utc::now();
    for event in batch {
        let lag = (now - event.committed_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::catalog_lag(lag);
    }
    metrics::events_applied(batch.len() as u64);
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
