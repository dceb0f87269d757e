//! Follows `lake.commits` so a committed file is readable as soon as its partition is catalogued.
//!
//! The follower reads the topic with its own consumer that joins no group and commits nothing
//! ([`crate::reader`]), assigned to every partition at the topic's high watermarks, and then lists
//! the lake once: a file committed before the watermark is in that listing, one committed after it
//! arrives as an event, so none is missed.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use stockstream_common::config::KafkaConfig;
use stockstream_common::events::LakeCommitEvent;
use tokio_util::sync::CancellationToken;

use super::files::FileIndex;
use crate::catalog::CatalogView;
use crate::metrics;

/// Events applied together at most.
const MAX_BATCH: usize = 1000;
/// How long to gather a batch after its first event.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Wait before trying again when the topic cannot be followed.
const RETRY: Duration = Duration::from_secs(5);

/// Follows `lake.commits` into `index` until `shutdown`, starting with `assigned` (a consumer
/// assigned before the index's first listing) or, if there is none, a new consumer followed by
/// a listing. Retries every few seconds while the topic cannot be followed.
pub(crate) async fn follow(
    kafka: KafkaConfig,
    index: Arc<FileIndex>,
    catalog: CatalogView,
    mut assigned: Option<StreamConsumer>,
    shutdown: CancellationToken,
) {
    let topic = kafka.topics.lake_commits.clone();
    while !shutdown.is_cancelled() {
        let consumer = match assigned.take() {
            Some(consumer) => consumer,
            None => match assign(&kafka).await {
                Ok(consumer) => {
                    // Files committed before the watermarks: one listing finds them.
                    if let Err(error) = index.relist(&catalog.snapshot()).await {
                        tracing::warn!(%error, "listing the lake after assigning lake.commits failed");
                    }
                    consumer
                }
                Err(error) => {
                    metrics::set_following_commits(false);
                    tracing::warn!(%topic, %error, "cannot follow lake.commits yet; new files appear with the next full listing");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                    continue;
                }
            },
        };
        metrics::set_following_commits(true);
        tracing::info!(%topic, "following lake.commits for new files");
        consume(&consumer, &index, &shutdown).await;
    }
}

/// A consumer assigned to every partition of `lake.commits` at its current end.
pub(crate) async fn assign(kafka: &KafkaConfig) -> Result<StreamConsumer, String> {
    let topic = kafka.topics.lake_commits.clone();
    crate::reader::assign(kafka, &topic, "query-api-commits", &[], |_, _, high| high).await
}

/// Applies events in small batches until `shutdown` or a consumer error.
async fn consume(consumer: &StreamConsumer, index: &FileIndex, shutdown: &CancellationToken) {
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            message = consumer.recv() => message,
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while let Some(message) = next.take() {
            match message {
                Ok(message) => match message
                    .payload()
                    .map(serde_json::from_slice::<LakeCommitEvent>)
                {
                    Some(Ok(event)) => batch.push(event),
                    Some(Err(error)) => {
                        metrics::commit_event_unreadable();
                        tracing::warn!(
                            partition = message.partition(),
                            offset = message.offset(),
                            %error,
                            "skipping an unreadable lake.commits event"
                        );
                    }
                    None => metrics::commit_event_unreadable(),
                },
                Err(error) => {
                    tracing::warn!(%error, "lake.commits consumer error");
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .ok();
        }
        if batch.is_empty() {
            continue;
        }
        metrics::commit_events_applied(batch.len());
        if let Err(error) = index.add_committed(&batch).await {
            tracing::warn!(%error, "applying lake.commits events failed; the next listing repairs it");
        }
    }
}
