//! [`Producer`]: a producer that tracks each message's delivery by the caller's id.

use std::time::Duration;

use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaClientConfig;
use crate::sync::MutexExt;
use crate::{Error, Result};

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
        self.in_flight.locked().remove(&id);
        match result {
            Ok(message) => {
                if self.track_landing {
                    use rdkafka::Message as _;
                    self.landed
                        .locked()
                        .entry((message.topic().to_string(), message.partition()))
                        .or_default()
                        .push_back((*id, message.offset()));
                }
            }
            Err((error, _message)) => {
                self.failures.locked().push(DeliveryFailure {
                    id: *id,
                    error: error.to_string(),
                });
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
    pub fn new(config: &KafkaClientConfig) -> Result<Self> {
        Self::with_tracker(config, DeliveryTracker::default())
    }

    /// Creates a producer that also records where each acknowledged message landed (see
    /// [`Producer::take_landed_through`]). Ids must then be sent in increasing order.
    pub fn tracking_offsets(config: &KafkaClientConfig) -> Result<Self> {
        Self::with_tracker(
            config,
            DeliveryTracker {
                track_landing: true,
                ..DeliveryTracker::default()
            },
        )
    }

    fn with_tracker(config: &KafkaClientConfig, tracker: DeliveryTracker) -> Result<Self> {
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
        let mut landed = self.inner.context().landed.locked();
        for (partition, acks) in landed.iter_mut() {
            while let Some(&(acked, offset)) = acks.front() {
                if acked > id {
                    break;
                }
                acks.pop_front();
                last.insert(partition.clone(), offset);
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
        self.inner.context().in_flight.locked().insert(id);
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
                    self.inner.context().in_flight.locked().remove(&id);
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
        self.inner.context().failures.locked().drain(..).collect()
    }

    /// The smallest id whose delivery failed and was not yet taken by [`Producer::take_failures`].
    pub fn lowest_failed(&self) -> Option<u64> {
        self.inner
            .context()
            .failures
            .locked()
            .iter()
            .map(|failure| failure.id)
            .min()
    }

    /// The smallest id not yet acknowledged, if any.
    pub fn lowest_in_flight(&self) -> Option<u64> {
        self.inner.context().in_flight.locked().first().copied()
    }
}
