//! Flushing: which partitions are due (records, bytes, interval, the global memory budget), the
//! fenced flush intent, writing the files, announcing them on `lake.commits`, and only then
//! committing the Kafka offset (see `docs/exactly-once.md`).

use chrono::{DateTime, SubsecRound, Utc};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use stockstream_common::headers::{EVENT_HEADER, LAKE_COMMIT_EVENT};
use stockstream_common::kafka::headers;

use super::partition::Resume;
use super::rebalance::SinkConsumer;
use super::{DELIVERY_TIMEOUT, Sink};
use crate::error::{Error, Result};
use crate::metrics;
use crate::progress::{Claim, FlushIntent, claim_intent};
use crate::writer::encode_files;

impl Sink {
    pub(super) fn flush_due(&mut self, consumer: &SinkConsumer) -> Result<()> {
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

    pub(super) fn flush_all(
        &mut self,
        consumer: &SinkConsumer,
        reason: &'static str,
    ) -> Result<()> {
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for partition in partitions {
            self.flush_partition(consumer, partition, reason)?;
        }
        self.producer.flush(DELIVERY_TIMEOUT)?;
        Ok(())
    }

    pub(super) fn flush_partition(
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

    /// Writes the files of `intent`, announces them, commits the partition's offset, then deletes
    /// the `obsolete` intents it supersedes.
    pub(super) fn write_and_commit(
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
    pub(super) fn announce(&mut self, intent: &FlushIntent) -> Result<()> {
        for event in &intent.files {
            let payload = serde_json::to_vec(event).map_err(|error| Error::Encode {
                key: event.object_key.clone(),
                reason: error.to_string(),
            })?;
            self.message_ids += 1;
            self.producer.send(
                &self.config.kafka.topics.lake_commits,
                event.table.as_bytes(),
                &payload,
                headers(&[(EVENT_HEADER, LAKE_COMMIT_EVENT)]),
                self.message_ids,
            )?;
        }
        Ok(())
    }
}
