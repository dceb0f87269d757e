//! The service's loop: `lake.commits` consumed in batches, each applied to the catalog (events at
//! fault set aside on the dead-letter topic, late files copied into compacted generations), and
//! its Kafka offsets committed only after that. A batch the catalog refuses is retried with
//! backoff and shows on `/health/readyz`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::http::Readiness;
use stockstream_common::kafka::{consumer_config, ensure_topics, pipeline_topics};
use stockstream_common::lake::{LakeStore, open_store};
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::compaction;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::maintain::Maintenance;
use crate::metrics;
use crate::poison::{self, Batch, DeadLetters, Received};

/// Most events applied in one catalog update.
const MAX_BATCH: usize = 1000;
/// Longest pause between attempts to apply a batch the catalog refused.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Follows `lake.commits` (with the maintenance task alongside) until `shutdown` is cancelled.
pub(crate) async fn follow_commits(
    config: &Config,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Result<()> {
    let store = open_store(&config.lake).await?;
    let database = config.crawler.database.as_str();
    let backend = Backend::open(config, store.clone()).await?;
    readiness.set("maintenance", false, "waiting for the maintenance lease");
    let (maintenance, maintenance_task) =
        Maintenance::start(config, store.clone(), shutdown).await?;
    readiness.set("maintenance", true, "holding the maintenance lease");
    readiness.set("catalog", true, backend.describe());
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let topic = config.kafka.topics.lake_commits.clone();
    let consumer = subscribe(config, &topic)?;
    readiness.set("kafka", true, format!("subscribed to {topic}"));
    let mut follower = Follower {
        config,
        readiness,
        shutdown,
        store,
        backend,
        maintenance,
        dead_letters: DeadLetters::new(&config.kafka)?,
        announcer: compaction::Announcer::new(&config.kafka)?,
        consumer,
        topic,
    };
    let topic = &follower.topic;
    tracing::info!(%topic, database, "following lake commits");
    follower.follow().await;
    // The task gives the lease up once `shutdown` is cancelled.
    let _ = maintenance_task.await;
    Ok(())
}

/// A consumer of `topic` in the catalog service's consumer group.
fn subscribe(config: &Config, topic: &str) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = consumer_config(
        &config.kafka,
        "catalog-consumer",
        &config.crawler.group_id,
        &[],
    )
    .create()
    .map_err(|error| stockstream_common::Error::kafka("creating the catalog consumer", error))?;
    consumer
        .subscribe(&[topic])
        .map_err(|error| Error::Consume {
            topic: topic.to_string(),
            source: error,
        })?;
    Ok(consumer)
}

/// What the consume → apply → commit loop works with.
struct Follower<'a> {
    config: &'a Config,
    readiness: &'a Readiness,
    shutdown: &'a CancellationToken,
    store: Arc<dyn LakeStore>,
    backend: Backend,
    maintenance: Maintenance,
    dead_letters: DeadLetters,
    announcer: compaction::Announcer,
    consumer: StreamConsumer,
    topic: String,
}

impl Follower<'_> {
    /// Consumes, applies and commits batch after batch until `shutdown` is cancelled; while no
    /// event arrives, drives the catalog's upkeep every `poll_interval`.
    async fn follow(&mut self) {
        let mut ticker = tokio::time::interval(self.config.crawler.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    upkeep(&mut self.backend, self.readiness).await;
                    continue;
                }
                received = self.consumer.recv() => received,
            };
            let mut batch = Batch::default();
            let mut offsets = TopicPartitionList::new();
            match first {
                Ok(message) => record(&message, &mut batch, &mut offsets),
                Err(error) => {
                    tracing::warn!(%error, topic = %self.topic, "consumer error");
                    self.readiness.set("kafka", false, error.to_string());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            self.fill(&mut batch, &mut offsets).await;
            self.readiness
                .set("kafka", true, format!("subscribed to {}", self.topic));
            if !self.apply(&mut batch).await {
                return;
            }
            if let Err(error) = self.consumer.commit(&offsets, CommitMode::Sync) {
                tracing::warn!(%error, "offset commit failed; the events will be applied again (harmlessly)");
            }
        }
    }

    /// Adds the events that arrive within `batch_window` to `batch`, up to [`MAX_BATCH`].
    async fn fill(&self, batch: &mut Batch, offsets: &mut TopicPartitionList) {
        let window = tokio::time::sleep(self.config.crawler.batch_window);
        tokio::pin!(window);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                () = &mut window => break,
                next = self.consumer.recv() => match next {
                    Ok(message) => record(&message, batch, offsets),
                    Err(error) => {
                        tracing::warn!(%error, topic = %self.topic, "consumer error");
                        break;
                    }
                },
            }
        }
    }

    /// Applies `batch` before its offsets are committed; returns `false` if `shutdown` came
    /// first. A failure of the catalog (throttling, an outage, missing permissions) is retried
    /// with backoff and shows on `/health/readyz`. An event at fault (see `poison`) is set aside
    /// instead, and the rest applied at once; when the catalog refuses the batch as invalid
    /// without naming an event, the events are applied one at a time to find it.
    async fn apply(&mut self, batch: &mut Batch) -> bool {
        let mut backoff = Duration::from_secs(1);
        loop {
            let applied = match self.apply_events(batch.events()).await {
                Err(error) if poison::rejected_by_catalog(&error) => {
                    tracing::warn!(%error, events = batch.events().len(), "the catalog refused the batch; applying its events one at a time");
                    self.apply_one_by_one(batch).await
                }
                other => other,
            };
            let failure = match applied {
                Ok(()) => match self.dead_letters.send(&batch.set_aside).await {
                    Ok(()) => {
                        self.readiness.set("catalog", true, self.backend.describe());
                        return true;
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
            self.readiness.set("catalog", false, failure.to_string());
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Applies `batch`'s events one at a time, setting aside each the catalog refuses on its own
    /// (see [`poison::judge_alone`]).
    async fn apply_one_by_one(&mut self, batch: &mut Batch) -> Result<()> {
        for event in batch.events().to_vec() {
            let outcome = self.apply_events(std::slice::from_ref(&event)).await;
            poison::judge_alone(batch, &event, outcome)?;
        }
        Ok(())
    }

    /// Applies `events` to the catalog, then copies late files into compacted generations, under
    /// the lock compaction swaps locations with.
    async fn apply_events(&mut self, events: &[LakeCommitEvent]) -> Result<()> {
        let _guard = self.maintenance.lock.lock().await;
        self.backend.apply(events).await?;
        let copied = compaction::copy_late_files(
            self.store.as_ref(),
            &self.maintenance.generations,
            Some(&self.announcer),
            events,
        )
        .await?;
        metrics::late_files_copied(copied);
        Ok(())
    }
}

/// The catalog's periodic upkeep (a debounced Glue crawler); its outcome shows on readiness.
async fn upkeep(backend: &mut Backend, readiness: &Readiness) {
    match backend.tick().await {
        Ok(()) => readiness.set("catalog", true, backend.describe()),
        Err(error) => {
            tracing::warn!(%error, "catalog upkeep failed");
            readiness.set("catalog", false, error.to_string());
        }
    }
}

/// Adds `message` to `batch`, and the offset after it to `offsets`.
fn record(message: &BorrowedMessage<'_>, batch: &mut Batch, offsets: &mut TopicPartitionList) {
    let _ = offsets.add_partition_offset(
        message.topic(),
        message.partition(),
        Offset::Offset(message.offset() + 1),
    );
    batch.push(Received::decode(message));
}
