//! The consume → buffer → flush → commit loop, on a blocking thread.
//!
//! A `BaseConsumer` is polled on a dedicated thread (rebalance callbacks are synchronous). Records
//! are buffered per Kafka partition; a partition is flushed when its buffer holds
//! `sink.flush_records` records or its oldest record waited `sink.flush_interval`, and on shutdown.
//! A flush writes its intent, then the files, announces them on `lake.commits`, and only then
//! commits the Kafka offset. See `docs/exactly-once.md` for why this gives exactly-once files.
//!
//! Files: `mod.rs` (this: the [`Sink`], its poll loop and the lake-retry policy),
//! `rebalance.rs` (the consumer context: assignments, revocations and high watermarks from
//! librdkafka's callbacks), `partition.rs` (where each partition stands against the lake: resume,
//! redo of an unfinished flush, seeking, buffering), `dead_letter.rs` (decoding and dead-lettering
//! bad messages), `flush.rs` (flush triggers, fencing, writing files, announcing them and
//! committing offsets).

mod dead_letter;
mod flush;
mod partition;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use stockstream_common::catalog::{columns_of, schema_fingerprint};
use stockstream_common::http::Readiness;
use stockstream_common::kafka::{Producer, consumer_config, producer_config};
use stockstream_common::lake::LakeStore;
use stockstream_common::sync::MutexExt;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use self::partition::PartitionState;
use self::rebalance::{SinkConsumer, SinkContext};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics;

/// How long delivery of dead letters and commit events may take before the flush fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// At most one consumer-error log line per interval (librdkafka repeats them every poll).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often consumer lag is published.
const LAG_INTERVAL: Duration = Duration::from_secs(5);
/// How long a lake operation is retried before the sink gives up (below librdkafka's
/// `max.poll.interval.ms` of 5 minutes, so the group keeps the sink meanwhile).
const LAKE_RETRY_BUDGET: Duration = Duration::from_secs(240);

/// The sink's state, apart from the consumer it reads from.
pub(crate) struct Sink {
    config: Config,
    store: Arc<dyn LakeStore>,
    runtime: Handle,
    producer: Producer,
    readiness: Readiness,
    schema_fingerprint: String,
    assigned: BTreeSet<i32>,
    partitions: BTreeMap<i32, PartitionState>,
    message_ids: u64,
    /// Messages dead-lettered since start.
    dead_letters: u64,
    last_lag_report: Instant,
    consumer_errors: u64,
    last_error_log: Option<Instant>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sink")
            .field("assigned", &self.assigned)
            .finish_non_exhaustive()
    }
}

/// Runs the sink until `shutdown` is cancelled, then flushes every buffer and commits.
pub(crate) fn run_blocking(
    config: Config,
    store: Arc<dyn LakeStore>,
    runtime: Handle,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<()> {
    let consumer = subscribe(&config)?;
    let mut sink = Sink::new(config, store, runtime, readiness)?;
    let topic = sink.topic().to_string();
    tracing::info!(%topic, group = %sink.config.sink.group_id, "sink consuming");
    sink.readiness
        .set("kafka", true, format!("subscribed to {topic}"));
    let poll_timeout = sink.config.sink.poll_timeout;
    while !shutdown.is_cancelled() {
        let polled = consumer.poll(poll_timeout);
        sink.apply_rebalances(&consumer);
        match polled {
            None => {}
            Some(Ok(message)) => {
                sink.consumer_recovered();
                sink.handle(&consumer, &message)?
            }
            Some(Err(error)) => sink.consumer_error(&error),
        }
        sink.flush_due(&consumer)?;
        sink.report_lag(&consumer);
    }
    tracing::info!("sink draining: flushing every buffer");
    sink.flush_all(&consumer, "shutdown")?;
    Ok(())
}

/// The sink's consumer, in its group and subscribed to the quotes topic; statistics every
/// [`LAG_INTERVAL`] feed the consumer-lag metric without extra requests (see
/// [`Sink::report_lag`]).
fn subscribe(config: &Config) -> Result<SinkConsumer> {
    let topic = &config.kafka.topics.quotes;
    let statistics_interval = LAG_INTERVAL.as_millis().to_string();
    let session_timeout = config.sink.session_timeout.as_millis().to_string();
    let heartbeat_interval = (config.sink.session_timeout / 3).as_millis().to_string();
    let consumer: SinkConsumer = consumer_config(
        &config.kafka,
        "sink-consumer",
        &config.sink.group_id,
        &[
            ("statistics.interval.ms", &statistics_interval),
            ("session.timeout.ms", &session_timeout),
            ("heartbeat.interval.ms", &heartbeat_interval),
        ],
    )
    .create_with_context(SinkContext::default())
    .map_err(|error| stockstream_common::Error::kafka("creating the sink consumer", error))?;
    consumer
        .subscribe(&[topic.as_str()])
        .map_err(|error| Error::Consume {
            topic: topic.clone(),
            source: error,
        })?;
    Ok(consumer)
}

impl Sink {
    /// A sink with no partition assigned yet, its producer (dead letters, commit events) and the
    /// fingerprint of the files' schema.
    fn new(
        config: Config,
        store: Arc<dyn LakeStore>,
        runtime: Handle,
        readiness: Readiness,
    ) -> Result<Self> {
        let producer = Producer::new(&producer_config(&config.kafka, "sink-producer", &[]))?;
        let columns = columns_of(&config.sink.partition_template.file_schema())?;
        Ok(Self {
            schema_fingerprint: schema_fingerprint(&columns),
            config,
            store,
            runtime,
            producer,
            readiness,
            assigned: BTreeSet::new(),
            partitions: BTreeMap::new(),
            message_ids: 0,
            dead_letters: 0,
            last_lag_report: Instant::now(),
            consumer_errors: 0,
            last_error_log: None,
        })
    }

    /// Reports Kafka ready again when a message arrives after consumer errors.
    fn consumer_recovered(&mut self) {
        if self.last_error_log.take().is_some() {
            let consuming = format!("consuming {}", self.topic());
            self.readiness.set("kafka", true, consuming);
        }
    }

    /// Counts a consumer error, logs at most one line per [`ERROR_LOG_INTERVAL`] (librdkafka
    /// repeats them every poll) and reports Kafka not ready until a message arrives again.
    fn consumer_error(&mut self, error: &KafkaError) {
        self.consumer_errors += 1;
        if self
            .last_error_log
            .is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL)
        {
            tracing::warn!(%error, topic = %self.topic(), errors = self.consumer_errors, "consumer error");
            self.last_error_log = Some(Instant::now());
            self.consumer_errors = 0;
        }
        self.readiness.set("kafka", false, error.to_string());
    }

    fn topic(&self) -> &str {
        &self.config.kafka.topics.quotes
    }

    /// Runs one lake operation, retrying retryable failures (S3 unreachable, throttled, 5xx) with
    /// backoff for up to [`LAKE_RETRY_BUDGET`] while `/health/readyz` reports the lake not ready.
    /// Every lake operation of a flush is idempotent, so a retry is safe; offsets stay
    /// uncommitted until the flush completes. Past the budget the error stops the sink, whose
    /// restart resumes from the lake.
    fn lake_call<T, E, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: Into<Error>,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(500);
        let mut failing = false;
        loop {
            match self.runtime.block_on(call()).map_err(Into::into) {
                Ok(value) => {
                    if failing {
                        tracing::info!(operation = what, outage = ?started.elapsed(), "the lake answers again");
                        self.readiness.set(
                            "lake",
                            true,
                            format!("writable at {}", self.store.url()),
                        );
                    }
                    return Ok(value);
                }
                Err(error) if error.is_retryable() && started.elapsed() < LAKE_RETRY_BUDGET => {
                    failing = true;
                    metrics::lake_retry();
                    tracing::warn!(operation = what, %error, retry_in = ?backoff, "lake operation failed; retrying");
                    self.readiness
                        .set("lake", false, format!("{what} failed: {error}"));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
                Err(error) => {
                    self.readiness
                        .set("lake", false, format!("{what} failed: {error}"));
                    return Err(error);
                }
            }
        }
    }

    fn publish_buffered(&self) {
        metrics::buffered_records(
            self.partitions
                .values()
                .map(|state| state.buffer.len())
                .sum(),
        );
    }

    fn report_lag(&mut self, consumer: &SinkConsumer) {
        if self.last_lag_report.elapsed() < LAG_INTERVAL {
            return;
        }
        self.last_lag_report = Instant::now();
        let marks = consumer.context().high_watermarks.locked().clone();
        for partition in &self.assigned {
            // From the statistics callback: a blocking `fetch_watermarks` here would queue a
            // ListOffsets behind the long-poll Fetch on the same connection; when it timed out,
            // librdkafka reset the connection and the Fetch with it — with a broker slow to answer
            // fetches (tansu 0.6), over and over, so no record arrived.
            let Some(high) = marks.get(partition).copied() else {
                continue;
            };
            let next = match self.partitions.get(partition) {
                Some(PartitionState {
                    pending: Some((_, last)),
                    ..
                }) => last + 1,
                Some(state) => state.resume.next_offset(),
                None => continue,
            };
            metrics::consumer_lag(*partition, (high - next).max(0));
        }
    }
}
