//! Topic readers of the query API (the DataFusion engine's `lake.commits` follower and the live
//! view's tail of `quotes`): consumers that join no group and commit nothing, assigned to every
//! partition of a topic at offsets chosen from its watermarks.
//!
//! The watermarks are taken with a separate client before the consumer fetches: tansu holds a
//! fetch at the end of a partition, which would stall a metadata request on the same connection
//! (with Apache Kafka this order costs nothing).

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::config::KafkaConfig;
use stockstream_common::kafka::{consumer_config, topic_watermarks};

/// A consumer of `topic` (client id role `role`, extra librdkafka `settings`) assigned to each
/// partition at `start(partition, low, high)`; an error while the topic does not exist.
pub(crate) async fn assign(
    kafka: &KafkaConfig,
    topic: &str,
    role: &str,
    settings: &[(&str, &str)],
    start: impl Fn(i32, i64, i64) -> i64,
) -> Result<StreamConsumer, String> {
    let watermarks = {
        let kafka = kafka.clone();
        let topic = topic.to_string();
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
    let group = format!("stockstream-{role}-{}", uuid::Uuid::new_v4());
    let consumer: StreamConsumer = consumer_config(kafka, role, &group, settings)
        .create()
        .map_err(|error| error.to_string())?;
    let mut assignment = TopicPartitionList::new();
    for (partition, low, high) in &watermarks {
        assignment
            .add_partition_offset(
                topic,
                *partition,
                Offset::Offset(start(*partition, *low, *high)),
            )
            .map_err(|error| error.to_string())?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| error.to_string())?;
    Ok(consumer)
}
