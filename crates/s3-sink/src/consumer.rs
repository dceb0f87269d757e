//! The consume → buffer → flush → commit loop, on a blocking thread.
//!
//! A `BaseConsumer` is polled on a dedicated thread (rebalance callbacks are synchronous). Records
//! are buffered per Kafka partition; a partition is flushed when its buffer holds
//! `sink.flush_records` records or its oldest record waited `sink.flush_interval`, and on shutdown.
//! A flush writes its intent, then the files, announces them on `lake.commits`, and only then
//! commits the Kafka offset. See `docs/exactly-once.md` for why this gives exactly-once files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use stockstream_common::catalog::{columns_of, schema_fingerprint};
use stockstream_common::http::Readiness;
use stockstream_common::kafka::{Producer, consumer_config, headers, producer_config};
use stockstream_common::lake::{LakeRow, LakeStore};
use stockstream_common::record::{Quote, SCHEMA_VERSION, SCHEMA_VERSION_HEADER};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics;
use crate::progress::{Claim, FlushIntent, claim_intent, latest_intent};
use crate::writer::{FLUSH_WORKSPACE_PER_ROW, encode_files};

/// How long delivery of dead letters and commit events may take before the flush fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// At most one consumer-error log line per interval (librdkafka repeats them every poll).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often consumer lag is published.
const LAG_INTERVAL: Duration = Duration::from_secs(5);
/// How long a lake operation is retried before the sink gives up (below librdkafka's
/// `max.poll.interval.ms` of 5 minutes, so the group keeps the sink meanwhile).
const LAKE_RETRY_BUDGET: Duration = Duration::from_secs(240);

/// Partition changes seen by the rebalance callbacks, applied by the loop after each poll.
#[derive(Debug)]
enum RebalanceNote {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

#[derive(Debug, Default)]
pub(crate) struct SinkContext {
    notes: Mutex<Vec<RebalanceNote>>,
    /// High watermark per partition, from librdkafka's periodic statistics (no extra requests).
    high_watermarks: Mutex<BTreeMap<i32, i64>>,
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements()
        .iter()
        .map(|element| element.partition())
        .collect()
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Ok(mut marks) = self.high_watermarks.lock() {
            for topic in statistics.topics.values() {
                for (partition, state) in &topic.partitions {
                    if *partition >= 0 && state.hi_offset >= 0 {
                        marks.insert(*partition, state.hi_offset);
                    }
                }
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance
            && let Ok(mut notes) = self.notes.lock()
        {
            notes.push(RebalanceNote::Revoked(partitions_of(list)));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance
            && let Ok(mut notes) = self.notes.lock()
        {
            notes.push(RebalanceNote::Assigned(partitions_of(list)));
        }
    }
}

type SinkConsumer = BaseConsumer<SinkContext>;

/// What to do with a consumed message.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The lake already holds it.
    Skip,
    /// It belongs to an unfinished flush being replayed; `last` completes the range.
    CollectRedo { last: bool },
    /// It lies past an unfinished flush whose range had gaps: finish that flush, then buffer it.
    FinishRedoThenBuffer,
    /// Buffer it for the next flush.
    Buffer,
}

/// Where a partition stands relative to the lake.
#[derive(Debug)]
enum Resume {
    /// Offsets below this are in the lake already.
    From(i64),
    /// The latest flush did not finish: re-read its range and write its files again.
    Redo {
        intent: FlushIntent,
        rows: BTreeMap<i64, Option<LakeRow>>,
    },
}

impl Resume {
    /// The first offset the sink still needs from Kafka.
    fn next_offset(&self) -> i64 {
        match self {
            Resume::From(next) => *next,
            Resume::Redo { intent, .. } => intent.start_offset,
        }
    }
}

/// Moves the consumer of `topic`/`partition` to `target`; false (logged) if the seek failed.
fn seek(consumer: &SinkConsumer, topic: &str, partition: i32, from: i64, target: i64) -> bool {
    match consumer.seek(
        topic,
        partition,
        Offset::Offset(target),
        Duration::from_secs(10),
    ) {
        Ok(()) => {
            tracing::info!(
                partition,
                from,
                to = target,
                "seeked to the lake's position"
            );
            true
        }
        Err(error) => {
            tracing::warn!(partition, %error, "seek failed, filtering records instead");
            false
        }
    }
}

#[derive(Debug)]
struct PartitionState {
    resume: Resume,
    /// Whether the loop already decided to seek on this partition's first message.
    positioned: bool,
    buffer: Vec<LakeRow>,
    /// Memory held by `buffer`: its allocated capacity plus the symbols' heap blocks.
    buffered_bytes: usize,
    /// The symbols' heap blocks alone.
    symbol_bytes: usize,
    /// First and last offsets consumed since the last flush (dead letters included).
    pending: Option<(i64, i64)>,
    pending_since: Option<Instant>,
    oldest_timestamp_ms: Option<i64>,
}

impl PartitionState {
    fn new(resume: Resume) -> Self {
        Self {
            resume,
            positioned: false,
            buffer: Vec::new(),
            buffered_bytes: 0,
            symbol_bytes: 0,
            pending: None,
            pending_since: None,
            oldest_timestamp_ms: None,
        }
    }
}

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
    let topic = config.kafka.topics.quotes.clone();
    // Statistics feed the consumer-lag metric without extra requests (see `report_lag`).
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
    let producer = Producer::new(&producer_config(&config.kafka, "sink-producer", &[]))?;
    let columns = columns_of(&config.sink.partition_template.file_schema())?;
    let mut sink = Sink {
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
    };
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
                if sink.last_error_log.take().is_some() {
                    sink.readiness
                        .set("kafka", true, format!("consuming {topic}"));
                }
                sink.handle(&consumer, &message)?
            }
            Some(Err(error)) => {
                sink.consumer_errors += 1;
                if sink
                    .last_error_log
                    .is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL)
                {
                    tracing::warn!(%error, %topic, errors = sink.consumer_errors, "consumer error");
                    sink.last_error_log = Some(Instant::now());
                    sink.consumer_errors = 0;
                }
                sink.readiness.set("kafka", false, error.to_string());
            }
        }
        sink.flush_due(&consumer)?;
        sink.report_lag(&consumer);
    }
    tracing::info!("sink draining: flushing every buffer");
    sink.flush_all(&consumer, "shutdown")?;
    Ok(())
}

impl Sink {
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

    fn apply_rebalances(&mut self, consumer: &SinkConsumer) {
        let notes = consumer
            .context()
            .notes
            .lock()
            .map(|mut notes| std::mem::take(&mut *notes))
            .unwrap_or_default();
        for note in notes {
            match note {
                RebalanceNote::Assigned(partitions) => {
                    tracing::info!(?partitions, "partitions assigned");
                    self.assigned.extend(partitions);
                }
                RebalanceNote::Revoked(partitions) => {
                    for partition in partitions {
                        self.assigned.remove(&partition);
                        // Unflushed records are dropped, not flushed: the partition's next owner
                        // re-reads them from the last commit, so no two sinks write one range.
                        if let Some(state) = self.partitions.remove(&partition) {
                            tracing::info!(
                                partition,
                                dropped = state.buffer.len(),
                                "partition revoked, dropping its unflushed records"
                            );
                        }
                    }
                }
            }
        }
        self.publish_buffered();
    }

    /// Loads where `partition` stands in the lake; re-announces its latest files (idempotent).
    fn load_state(&mut self, partition: i32) -> Result<PartitionState> {
        let topic = self.topic().to_string();
        let store = self.store.clone();
        let latest = self.lake_call("reading flush intents", || {
            latest_intent(store.as_ref(), &topic, partition)
        })?;
        let Some(intent) = latest else {
            tracing::info!(partition, "no flush of this partition in the lake yet");
            return Ok(PartitionState::new(Resume::From(0)));
        };
        let complete = self.lake_call("checking a flush's files", || {
            intent.is_complete(store.as_ref())
        })?;
        if complete {
            tracing::info!(
                partition,
                next_offset = intent.end_offset + 1,
                "resuming after the lake's last flush"
            );
            self.announce(&intent)?;
            Ok(PartitionState::new(Resume::From(intent.end_offset + 1)))
        } else {
            tracing::warn!(
                partition,
                start_offset = intent.start_offset,
                end_offset = intent.end_offset,
                "the last flush did not finish, replaying its range"
            );
            Ok(PartitionState::new(Resume::Redo {
                intent,
                rows: BTreeMap::new(),
            }))
        }
    }

    fn handle(&mut self, consumer: &SinkConsumer, message: &BorrowedMessage<'_>) -> Result<()> {
        let partition = message.partition();
        let offset = message.offset();
        if !self.assigned.contains(&partition) {
            return Ok(());
        }
        if !self.partitions.contains_key(&partition) {
            let state = self.load_state(partition)?;
            self.partitions.insert(partition, state);
        }
        if self.position(consumer, partition, offset) {
            return Ok(());
        }
        let step = match self.partitions.get(&partition).map(|state| &state.resume) {
            Some(Resume::Redo { intent, .. }) if offset < intent.start_offset => Step::Skip,
            Some(Resume::Redo { intent, .. }) if offset <= intent.end_offset => Step::CollectRedo {
                last: offset == intent.end_offset,
            },
            Some(Resume::Redo { .. }) => Step::FinishRedoThenBuffer,
            Some(Resume::From(next)) if offset < *next => Step::Skip,
            _ => Step::Buffer,
        };
        match step {
            Step::Skip => {
                metrics::skipped_already_in_lake(1);
                return Ok(());
            }
            Step::CollectRedo { last } => {
                let row = self.decode_or_dead_letter(message)?;
                if let Some(Resume::Redo { rows, .. }) = self
                    .partitions
                    .get_mut(&partition)
                    .map(|state| &mut state.resume)
                {
                    rows.insert(offset, row);
                }
                if last {
                    self.finish_redo(consumer, partition)?;
                }
                return Ok(());
            }
            Step::FinishRedoThenBuffer => {
                tracing::warn!(
                    partition,
                    offset,
                    "the unfinished flush's range has gaps; finishing it with what Kafka holds"
                );
                self.finish_redo(consumer, partition)?;
            }
            Step::Buffer => {}
        }
        let row = self.decode_or_dead_letter(message)?;
        let timestamp = message.timestamp().to_millis();
        if let Some(state) = self.partitions.get_mut(&partition) {
            if let Some(row) = row {
                state.symbol_bytes += heap_block(row.quote.symbol.capacity());
                state.buffer.push(row);
                // The vector's capacity, not its length: growth doubles the allocation.
                state.buffered_bytes = state.buffer.capacity()
                    * (std::mem::size_of::<LakeRow>() + FLUSH_WORKSPACE_PER_ROW)
                    + state.symbol_bytes;
            }
            state.pending = Some(match state.pending {
                Some((first, _)) => (first, offset),
                None => (offset, offset),
            });
            state.pending_since.get_or_insert_with(Instant::now);
            if state.oldest_timestamp_ms.is_none() {
                state.oldest_timestamp_ms = timestamp;
            }
        }
        Ok(())
    }

    /// On a partition's first message, seeks to where the lake says to start, if that is elsewhere.
    /// Returns true when the message must be ignored because the consumer moved.
    fn position(&mut self, consumer: &SinkConsumer, partition: i32, offset: i64) -> bool {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return false;
        };
        if state.positioned {
            return false;
        }
        state.positioned = true;
        let target = match &state.resume {
            Resume::From(next) if offset < *next => *next,
            Resume::Redo { intent, .. } if offset != intent.start_offset => intent.start_offset,
            _ => return false,
        };
        if !seek(consumer, self.topic(), partition, offset, target) {
            return false;
        }
        if target > offset {
            // Records jumped over because the lake already holds them.
            metrics::skipped_already_in_lake((target - offset) as u64);
        }
        true
    }

    /// Decodes a message; a bad one goes to the dead-letter topic and yields `None`.
    fn decode_or_dead_letter(&mut self, message: &BorrowedMessage<'_>) -> Result<Option<LakeRow>> {
        match decode(message) {
            Ok(quote) => Ok(Some(LakeRow {
                quote,
                kafka_partition: message.partition(),
                kafka_offset: message.offset(),
            })),
            Err(reason) => {
                if let Some(limit) = self.config.sink.dead_letter_tolerance
                    && self.dead_letters >= limit
                {
                    // Not dead-lettered and not committed: after the fix, a restart reads it again.
                    // The dead letters already sent are delivered before the sink stops.
                    self.producer.flush(DELIVERY_TIMEOUT)?;
                    return Err(Error::Tolerance {
                        partition: message.partition(),
                        offset: message.offset(),
                        limit,
                        reason,
                    });
                }
                self.dead_letters += 1;
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    %reason,
                    "dead-lettering an undecodable message"
                );
                let partition = message.partition().to_string();
                let offset = message.offset().to_string();
                let dead_letter_headers = headers(&[
                    ("stockstream-error", reason.as_str()),
                    ("stockstream-stage", "s3-sink"),
                    ("stockstream-source-topic", message.topic()),
                    ("stockstream-source-partition", partition.as_str()),
                    ("stockstream-source-offset", offset.as_str()),
                ]);
                self.message_ids += 1;
                self.producer.send(
                    &self.config.kafka.topics.dlq,
                    message.key().unwrap_or_default(),
                    message.payload().unwrap_or_default(),
                    dead_letter_headers,
                    self.message_ids,
                )?;
                metrics::dead_letter();
                Ok(None)
            }
        }
    }

    fn finish_redo(&mut self, consumer: &SinkConsumer, partition: i32) -> Result<()> {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Ok(());
        };
        let Resume::Redo { intent, rows } = std::mem::replace(&mut state.resume, Resume::From(0))
        else {
            return Ok(());
        };
        let rows: Vec<LakeRow> = rows.into_values().flatten().collect();
        let files = encode_files(
            &self.config.sink.partition_template,
            &intent.topic,
            partition,
            rows,
            intent.ingested_at,
            self.config.sink.row_group_size.get(),
            &self.schema_fingerprint,
        )?;
        let planned: Vec<&str> = intent
            .files
            .iter()
            .map(|file| file.object_key.as_str())
            .collect();
        let rebuilt: Vec<&str> = files
            .iter()
            .map(|file| file.event.object_key.as_str())
            .collect();
        if planned != rebuilt {
            tracing::warn!(
                partition,
                ?planned,
                ?rebuilt,
                "replayed range yields other files than the intent named"
            );
        }
        // Older intents left by the crash are listed, and removed, by the next regular flush.
        self.write_and_commit(consumer, &intent, files, &[], "recovery")?;
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.resume = Resume::From(intent.end_offset + 1);
        }
        Ok(())
    }

    fn flush_due(&mut self, consumer: &SinkConsumer) -> Result<()> {
        let flush_records = self.config.sink.flush_records.get();
        let flush_bytes = self.config.sink.flush_bytes.get();
        let flush_interval = self.config.sink.flush_interval;
        let due: Vec<(i32, &'static str)> = self
            .partitions
            .iter()
            .filter_map(|(partition, state)| {
                if state.buffer.len() >= flush_records {
                    Some((*partition, "records"))
                } else if state.buffered_bytes >= flush_bytes {
                    Some((*partition, "bytes"))
                } else if state
                    .pending_since
                    .is_some_and(|since| since.elapsed() >= flush_interval)
                {
                    Some((*partition, "interval"))
                } else {
                    None
                }
            })
            .collect();
        for (partition, reason) in due {
            self.flush_partition(consumer, partition, reason)?;
        }
        // The global budget: flush the largest buffers until the total fits again.
        let budget = self.config.sink.memory_budget.get();
        loop {
            let total: usize = self
                .partitions
                .values()
                .map(|state| state.buffered_bytes)
                .sum();
            metrics::buffered_bytes(total);
            if total <= budget {
                return Ok(());
            }
            let Some(largest) = self
                .partitions
                .iter()
                .filter(|(_, state)| state.pending.is_some())
                .max_by_key(|(_, state)| state.buffered_bytes)
                .map(|(partition, _)| *partition)
            else {
                return Ok(());
            };
            self.flush_partition(consumer, largest, "memory")?;
        }
    }

    fn flush_all(&mut self, consumer: &SinkConsumer, reason: &'static str) -> Result<()> {
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for partition in partitions {
            self.flush_partition(consumer, partition, reason)?;
        }
        self.producer.flush(DELIVERY_TIMEOUT)?;
        Ok(())
    }

    fn flush_partition(
        &mut self,
        consumer: &SinkConsumer,
        partition: i32,
        reason: &'static str,
    ) -> Result<()> {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Ok(());
        };
        let Some((start_offset, end_offset)) = state.pending.take() else {
            return Ok(());
        };
        let rows = std::mem::take(&mut state.buffer);
        state.buffered_bytes = 0;
        state.symbol_bytes = 0;
        state.pending_since = None;
        let oldest_timestamp_ms = state.oldest_timestamp_ms.take();
        let topic = self.topic().to_string();
        let store = self.store.clone();

        let ingested_at: DateTime<Utc> = Utc::now().trunc_subsecs(6);
        let files = encode_files(
            &self.config.sink.partition_template,
            &topic,
            partition,
            rows,
            ingested_at,
            self.config.sink.row_group_size.get(),
            &self.schema_fingerprint,
        )?;
        let events = files.iter().map(|file| file.event.clone()).collect();
        let intent = FlushIntent::new(
            &topic,
            partition,
            start_offset,
            end_offset,
            ingested_at,
            events,
        );
        // Fencing: the intent claims the range; if another sink flushed it first (we were a
        // paused zombie whose partition moved, or the zombie beat us), drop ours and continue
        // from where the lake stands.
        let claim = self.lake_call("writing a flush intent", || {
            claim_intent(store.as_ref(), &intent)
        })?;
        let superseded = match claim {
            Claim::Won { superseded } => superseded,
            Claim::Lost => {
                tracing::warn!(
                    partition,
                    start_offset,
                    end_offset,
                    "another sink already flushed this range; dropping the buffer"
                );
                metrics::fenced_flush();
                return self.reload_from_lake(consumer, partition, end_offset + 1);
            }
        };
        self.write_and_commit(consumer, &intent, files, &superseded, reason)?;
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.resume = Resume::From(end_offset + 1);
        }
        if let Some(oldest) = oldest_timestamp_ms {
            let seconds = (Utc::now().timestamp_millis() - oldest).max(0) as f64 / 1000.0;
            metrics::commit_latency(seconds);
        }
        self.publish_buffered();
        Ok(())
    }

    /// Forgets what the sink holds of `partition` and moves the consumer to where the lake says
    /// the partition stands (forwards or backwards).
    /// `from` is the offset after the dropped buffer, where the consumer stands.
    fn reload_from_lake(
        &mut self,
        consumer: &SinkConsumer,
        partition: i32,
        from: i64,
    ) -> Result<()> {
        let mut state = self.load_state(partition)?;
        // If the seek fails, the next message's offset decides, like after an assignment.
        state.positioned = seek(
            consumer,
            self.topic(),
            partition,
            from,
            state.resume.next_offset(),
        );
        self.partitions.insert(partition, state);
        self.publish_buffered();
        Ok(())
    }

    /// Writes the files of `intent`, announces them, commits the partition's offset, then deletes
    /// the `obsolete` intents it supersedes.
    fn write_and_commit(
        &mut self,
        consumer: &SinkConsumer,
        intent: &FlushIntent,
        files: Vec<crate::writer::EncodedFile>,
        obsolete: &[String],
        reason: &'static str,
    ) -> Result<()> {
        let store = self.store.clone();
        let mut rows = 0;
        let mut bytes = 0;
        for file in &files {
            self.lake_call("writing a data file", || {
                store.put(&file.event.object_key, file.bytes.clone())
            })?;
            rows += file.event.row_count;
            bytes += file.event.size_bytes;
        }
        self.announce(intent)?;
        self.producer.flush(DELIVERY_TIMEOUT)?;
        let failures = self.producer.take_failures();
        if let Some(first) = failures.first() {
            return Err(Error::Delivery {
                topic: format!(
                    "{} / {}",
                    self.config.kafka.topics.lake_commits, self.config.kafka.topics.dlq
                ),
                count: failures.len(),
                first: first.error.clone(),
            });
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(
                &intent.topic,
                intent.partition,
                Offset::Offset(intent.end_offset + 1),
            )
            .map_err(|error| Error::Consume {
                topic: intent.topic.clone(),
                source: error,
            })?;
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            // The lake holds the truth; a failed commit only means a restart re-reads and skips.
            metrics::commit_failed();
            tracing::warn!(partition = intent.partition, %error, "offset commit failed");
        }
        for key in obsolete {
            self.lake_call("deleting a superseded intent", || store.delete(key))?;
        }
        metrics::flush(reason);
        metrics::records_written(rows);
        metrics::bytes_written(bytes);
        metrics::files_committed(files.len() as u64);
        tracing::info!(
            partition = intent.partition,
            start_offset = intent.start_offset,
            end_offset = intent.end_offset,
            files = files.len(),
            rows,
            bytes,
            reason,
            "flushed"
        );
        Ok(())
    }

    /// Publishes the `lake.commits` events of an intent's files.
    fn announce(&mut self, intent: &FlushIntent) -> Result<()> {
        for event in &intent.files {
            let payload = serde_json::to_vec(event).map_err(|error| Error::Progress {
                key: event.object_key.clone(),
                reason: error.to_string(),
            })?;
            self.message_ids += 1;
            self.producer.send(
                &self.config.kafka.topics.lake_commits,
                event.table.as_bytes(),
                &payload,
                headers(&[("stockstream-event", "lake-commit")]),
                self.message_ids,
            )?;
        }
        Ok(())
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
        let marks = consumer
            .context()
            .high_watermarks
            .lock()
            .map(|marks| marks.clone())
            .unwrap_or_default();
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

/// Bytes the allocator uses for a heap block of `size` bytes (glibc malloc: an 8-byte header,
/// 16-byte granularity, 32 bytes at least); empty strings allocate nothing.
fn heap_block(size: usize) -> usize {
    if size == 0 {
        0
    } else {
        (size + 8).next_multiple_of(16).max(32)
    }
}

/// Decodes one message: stockstream's wire format or the tutorial's (see [`Quote::from_any_json`]).
fn decode(message: &BorrowedMessage<'_>) -> std::result::Result<Quote, String> {
    if let Some(message_headers) = message.headers() {
        for header in message_headers.iter() {
            if header.key == SCHEMA_VERSION_HEADER {
                let version = header
                    .value
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                if version != SCHEMA_VERSION {
                    return Err(format!(
                        "unsupported schema version `{version}` (this sink reads {SCHEMA_VERSION})"
                    ));
                }
            }
        }
    }
    let payload = message
        .payload()
        .ok_or_else(|| "message has no payload".to_string())?;
    // Our wire format, or the original tutorial producer's (CSV column names, no key or headers).
    Quote::from_any_json(payload)
        .map(|(quote, _format)| quote)
        .map_err(|error| error.to_string())
}
