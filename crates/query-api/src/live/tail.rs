//! The tail of `quotes`: a consumer that joins no group and commits nothing, assigned to every
//! partition from `live.history` records before its end, feeding a [`LiveFeed`].
//!
//! The watermarks are taken with a separate client before the consumer fetches (tansu holds
//! fetches at the end of a partition, which would stall a metadata request on the same
//! connection; with Apache Kafka this order costs nothing). Messages that are not quotes are
//! counted and skipped: the sink dead-letters them, the live view only shows quotes.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::config::KafkaConfig;
use stockstream_common::kafka::{consumer_config, topic_watermarks};
use stockstream_common::record::Quote;
use tokio_util::sync::CancellationToken;

use super::{LiveFeed, LiveQuote};
use crate::metrics;

/// Wait before trying again when the topic cannot be read.
const RETRY: Duration = Duration::from_secs(5);

/// Tails `quotes` into `feed` until `shutdown`, reconnecting every few seconds on failure.
pub async fn run(kafka: KafkaConfig, feed: LiveFeed, history: usize, shutdown: CancellationToken) {
    let topic = kafka.topics.quotes.clone();
    while !shutdown.is_cancelled() {
        match assign(&kafka, &feed, history).await {
            Ok(consumer) => {
                metrics::set_live_tailing(true);
                tracing::info!(%topic, "tailing quotes for the live view");
                consume(&consumer, &feed, &shutdown).await;
            }
            Err(error) => {
                metrics::set_live_tailing(false);
                tracing::warn!(%topic, %error, "cannot tail quotes yet; the live view waits");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
    metrics::set_live_tailing(false);
}

/// A consumer assigned to every partition of `quotes`, `history` records before the end or
/// after what `feed` already holds (after a reconnect).
async fn assign(
    kafka: &KafkaConfig,
    feed: &LiveFeed,
    history: usize,
) -> Result<StreamConsumer, String> {
    let topic = kafka.topics.quotes.clone();
    let watermarks = {
        let kafka = kafka.clone();
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            topic_watermarks(&kafka, &topic, Duration::from_secs(10))
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?
    };
    if watermarks.is_empty() {
        return Err(format!("topic `{topic}` does not exist yet"));
    }
    let group = format!("stockstream-query-api-live-{}", uuid::Uuid::new_v4());
    // A short fetch wait: tansu answers a fetch at the end of a partition only when the wait is
    // over, not when a record arrives (Apache Kafka answers at once); 50 ms keeps the live view
    // and real-time SQL fresh on both, at the cost of a few idle fetches per second.
    let consumer: StreamConsumer = consumer_config(
        kafka,
        "query-api-live",
        &group,
        &[("fetch.wait.max.ms", "50")],
    )
    .create()
    .map_err(|error| error.to_string())?;
    let position = feed.position();
    let mut assignment = TopicPartitionList::new();
    for (partition, low, high) in &watermarks {
        let recent = (*high - history as i64).max(*low);
        let start = match position.next_offset(*partition) {
            Some(next) => next.clamp(*low, *high),
            None => recent,
        };
        assignment
            .add_partition_offset(&topic, *partition, Offset::Offset(start))
            .map_err(|error| error.to_string())?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| error.to_string())?;
    Ok(consumer)
}

/// Publishes every quote until `shutdown`; returns on a fatal consumer error.
async fn consume(consumer: &StreamConsumer, feed: &LiveFeed, shutdown: &CancellationToken) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                let decoded = message
                    .payload()
                    .map(|payload| Quote::from_any_json(payload).map(|(quote, _format)| quote));
                match decoded {
                    Some(Ok(quote)) if quote.validate().is_ok() => {
                        metrics::live_quote();
                        feed.publish(LiveQuote::new(
                            quote,
                            message.partition(),
                            message.offset(),
                            message.timestamp().to_millis(),
                        ));
                    }
                    _ => {
                        metrics::live_quote_skipped();
                        tracing::debug!(
                            partition = message.partition(),
                            offset = message.offset(),
                            "skipping a quotes message that is not a valid quote"
                        );
                    }
                }
            }
            Err(error) => {
                let fatal = matches!(
                    error.rdkafka_error_code(),
                    Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)
                );
                tracing::warn!(%error, "quotes tail consumer error");
                if fatal {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
