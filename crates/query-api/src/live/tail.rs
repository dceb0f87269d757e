//! The tail of `quotes`: a consumer that joins no group and commits nothing, assigned to every
//! partition from `live.history` records before its end, feeding a [`LiveFeed`].
//!
//! (See [`crate::reader`].) Messages that are not quotes are counted and skipped: the sink
//! dead-letters them, the live view only shows quotes.

use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use stockstream_common::config::KafkaConfig;
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
    let position = feed.position();
    // A short fetch wait: tansu answers a fetch at the end of a partition only when the wait is
    // over, not when a record arrives (Apache Kafka answers at once); 50 ms keeps the live view
    // and real-time SQL fresh on both, at the cost of a few idle fetches per second.
    crate::reader::assign(
        kafka,
        &kafka.topics.quotes,
        "query-api-live",
        &[("fetch.wait.max.ms", "50")],
        |partition, low, high| match position.next_offset(partition) {
            Some(next) => next.clamp(low, high),
            None => (high - history as i64).max(low),
        },
    )
    .await
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
