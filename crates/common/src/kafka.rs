//! librdkafka client settings and topic administration.
//!
//! Every client is built from [`KafkaConfig`]: stockstream's own settings first, then the
//! pass-through `kafka.options` map, so SASL/TLS for Amazon MSK needs configuration, not code.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::{Error, Result};

/// How long administrative calls and metadata requests may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Base client configuration for a client playing `role` (e.g. `sink-consumer`).
pub fn client_config(kafka: &KafkaConfig, role: &str) -> ClientConfig {
    client_config_with(kafka, role, &[])
}

/// Client configuration for `role`: bootstrap servers and client id, then `settings`, then the
/// pass-through `kafka.options`, which win over both.
pub fn client_config_with(
    kafka: &KafkaConfig,
    role: &str,
    settings: &[(&str, &str)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", format!("{}-{role}", kafka.client_id));
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    config
}

/// Settings of every stockstream producer: idempotent, `acks=all`, lz4 batches.
const PRODUCER_SETTINGS: [(&str, &str); 4] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
];

/// Configuration of an idempotent producer ([`PRODUCER_SETTINGS`], then `settings`, then
/// `kafka.options`).
pub fn producer_config(kafka: &KafkaConfig, role: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let all: Vec<(&str, &str)> = PRODUCER_SETTINGS.iter().chain(settings).copied().collect();
    client_config_with(kafka, role, &all)
}

/// Configuration of a group consumer that never commits or stores offsets on its own.
pub fn consumer_config(
    kafka: &KafkaConfig,
    role: &str,
    group_id: &str,
    settings: &[(&str, &str)],
) -> ClientConfig {
    let all: Vec<(&str, &str)> = [
        ("group.id", group_id),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]
    .iter()
    .chain(settings)
    .copied()
    .collect();
    client_config_with(kafka, role, &all)
}

/// The topics stockstream uses, with the partition count each is created with.
pub fn pipeline_topics(kafka: &KafkaConfig) -> Vec<(String, i32)> {
    vec![
        (kafka.topics.quotes.clone(), kafka.topics.partitions),
        (kafka.topics.dlq.clone(), 1),
        (kafka.topics.lake_commits.clone(), 1),
    ]
}

/// Creates the given topics if they do not exist (brokers such as tansu do not auto-create).
///
/// A topic that already exists is left as it is; when all exist, no admin request is made (so a
/// principal without `CreateTopics` permission, common on MSK, works with pre-created topics).
pub async fn ensure_topics(kafka: &KafkaConfig, topics: &[(String, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, "admin")
        .create()
        .map_err(|error| Error::kafka("creating the admin client", error))?;
    let existing: std::collections::BTreeSet<String> = {
        let metadata = admin
            .inner()
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(|error| Error::kafka("fetching cluster metadata", error))?;
        metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none() && !topic.partitions().is_empty())
            .map(|topic| topic.name().to_string())
            .collect()
    };
    let missing: Vec<&(String, i32)> = topics
        .iter()
        .filter(|(name, _)| !existing.contains(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(
                name,
                *partitions,
                TopicReplication::Fixed(kafka.topics.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|error| Error::kafka("creating topics", error))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(%topic, "topic exists")
            }
            Err((topic, code)) => {
                return Err(Error::TopicCreation {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Number of records currently held by `topic`: the sum over partitions of high minus low watermark.
pub fn topic_record_count(kafka: &KafkaConfig, topic: &str, timeout: Duration) -> Result<i64> {
    Ok(topic_watermarks(kafka, topic, timeout)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum())
}

/// `(partition, low, high)` watermarks of every partition of `topic`.
pub fn topic_watermarks(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>> {
    let consumer: BaseConsumer = client_config(kafka, "watermarks")
        .create()
        .map_err(|error| Error::kafka("creating a watermark client", error))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|error| Error::kafka(format!("fetching metadata of `{topic}`"), error))?;
    let mut watermarks = Vec::new();
    for found in metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic)
    {
        for partition in found.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .map_err(|error| {
                    Error::kafka(
                        format!("fetching watermarks of `{topic}` [{}]", partition.id()),
                        error,
                    )
                })?;
            watermarks.push((partition.id(), low, high));
        }
    }
    watermarks.sort_unstable();
    Ok(watermarks)
}

/// A message whose delivery failed after librdkafka's own retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The caller's id of the message (e.g. a CSV line number).
    pub id: u64,
    /// What the broker or client reported.
    pub error: String,
}

/// Tracks the deliveries of a [`Producer`]: which ids are still in flight and which failed.
///
/// It also remembers where acknowledged messages landed, per topic partition and in
/// acknowledgement order, until [`Producer::take_landed_through`] consumes them: a replay uses
/// this to know from which offsets its unacknowledged tail could be on the log after a crash.
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    in_flight: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    failures: std::sync::Mutex<Vec<DeliveryFailure>>,
    landed: std::sync::Mutex<Landed>,
    track_landing: bool,
}

/// Acknowledged (id, offset) pairs per (topic, partition), in acknowledgement order.
type Landed = std::collections::BTreeMap<(String, i32), std::collections::VecDeque<(u64, i64)>>;

impl rdkafka::ClientContext for DeliveryTracker {}

impl rdkafka::producer::ProducerContext for DeliveryTracker {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, id: Self::DeliveryOpaque) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&id);
        }
        match result {
            Ok(message) => {
                if self.track_landing
                    && let Ok(mut landed) = self.landed.lock()
                {
                    use rdkafka::Message as _;
                    landed
                        .entry((message.topic().to_string(), message.partition()))
                        .or_default()
                        .push_back((*id, message.offset()));
                }
            }
            Err((error, _message)) => {
                if let Ok(mut failures) = self.failures.lock() {
                    failures.push(DeliveryFailure {
                        id: *id,
                        error: error.to_string(),
                    });
                }
            }
        }
    }
}

/// An idempotent producer that polls in the background and tracks every delivery.
pub struct Producer {
    inner: rdkafka::producer::ThreadedProducer<DeliveryTracker>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates a producer from a client configuration (see [`producer_config`]).
    pub fn new(config: &ClientConfig) -> Result<Self> {
        Self::with_tracker(config, DeliveryTracker::default())
    }

    /// Creates a producer that also records where each acknowledged message landed (see
    /// [`Producer::take_landed_through`]). Ids must then be sent in increasing order.
    pub fn tracking_offsets(config: &ClientConfig) -> Result<Self> {
        Self::with_tracker(
            config,
            DeliveryTracker {
                track_landing: true,
                ..DeliveryTracker::default()
            },
        )
    }

    fn with_tracker(config: &ClientConfig, tracker: DeliveryTracker) -> Result<Self> {
        let inner = config
            .create_with_context(tracker)
            .map_err(|error| Error::kafka("creating a producer", error))?;
        Ok(Self { inner })
    }

    /// For each (topic, partition), the offset of the last acknowledged message whose id is at
    /// most `id`; forgets those messages. Within a partition an idempotent producer's messages
    /// land in the order they were sent, so every later message of increasing id lies after it.
    pub fn take_landed_through(&self, id: u64) -> std::collections::BTreeMap<(String, i32), i64> {
        let mut last = std::collections::BTreeMap::new();
        if let Ok(mut landed) = self.inner.context().landed.lock() {
            for (partition, acks) in landed.iter_mut() {
                while let Some(&(acked, offset)) = acks.front() {
                    if acked > id {
                        break;
                    }
                    acks.pop_front();
                    last.insert(partition.clone(), offset);
                }
            }
        }
        last
    }

    /// The number of messages queued or in flight in librdkafka.
    pub fn in_flight_count(&self) -> i32 {
        self.inner.in_flight_count()
    }

    /// Queues one message; waits while librdkafka's queue is full. `id` identifies it in
    /// [`Producer::take_failures`] and [`Producer::lowest_in_flight`].
    pub fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: rdkafka::message::OwnedHeaders,
        id: u64,
    ) -> Result<()> {
        use rdkafka::error::KafkaError;
        use rdkafka::producer::BaseRecord;
        if let Ok(mut in_flight) = self.inner.context().in_flight.lock() {
            in_flight.insert(id);
        }
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(id))
            .key(key)
            .payload(payload)
            .headers(headers);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => {
                    if let Ok(mut in_flight) = self.inner.context().in_flight.lock() {
                        in_flight.remove(&id);
                    }
                    return Err(Error::kafka(format!("producing to `{topic}`"), error));
                }
            }
        }
    }

    /// Waits until every queued message is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner
            .flush(timeout)
            .map_err(|error| Error::kafka("flushing the producer", error))
    }

    /// Failed deliveries since the last call.
    pub fn take_failures(&self) -> Vec<DeliveryFailure> {
        self.inner
            .context()
            .failures
            .lock()
            .map(|mut failures| std::mem::take(&mut *failures))
            .unwrap_or_default()
    }

    /// The smallest id whose delivery failed and was not yet taken by [`Producer::take_failures`].
    pub fn lowest_failed(&self) -> Option<u64> {
        self.inner
            .context()
            .failures
            .lock()
            .ok()
            .and_then(|failures| failures.iter().map(|failure| failure.id).min())
    }

    /// The smallest id not yet acknowledged, if any.
    pub fn lowest_in_flight(&self) -> Option<u64> {
        self.inner
            .context()
            .in_flight
            .lock()
            .ok()
            .and_then(|in_flight| in_flight.first().copied())
    }
}

/// Builds message headers from name/value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> rdkafka::message::OwnedHeaders {
    pairs.iter().fold(
        rdkafka::message::OwnedHeaders::new_with_capacity(pairs.len()),
        |headers, (key, value)| {
            headers.insert(rdkafka::message::Header {
                key,
                value: Some(value.as_bytes()),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon MSK needs TLS (port 9094) and SASL/SCRAM over TLS (port 9096): the linked
    /// librdkafka must be built with them, or `kafka.options` naming them fail at start.
    #[test]
    fn librdkafka_supports_what_msk_needs() {
        let native = ClientConfig::new()
            .create_native_config()
            .expect("a native configuration");
        let features = native.get("builtin.features").expect("builtin.features");
        let features: Vec<&str> = features.split(',').collect();
        for needed in ["ssl", "sasl_scram", "sasl_oauthbearer", "zstd", "lz4"] {
            assert!(
                features.contains(&needed),
                "librdkafka lacks {needed}: {features:?}"
            );
        }
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", "stockstream")
            .set("sasl.password", "secret");
        let consumer: std::result::Result<BaseConsumer, _> = config.create();
        assert!(consumer.is_ok(), "SASL_SSL with SCRAM-SHA-512 is accepted");
    }
}
