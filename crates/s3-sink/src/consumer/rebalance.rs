//! The consumer's context: rebalance callbacks note assignments and revocations for the loop to
//! apply after each poll, and librdkafka's statistics give each partition's high watermark.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use stockstream_common::sync::MutexExt;

use super::Sink;

/// Partition changes seen by the rebalance callbacks, applied by the loop after each poll.
#[derive(Debug)]
pub(super) enum RebalanceNote {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

#[derive(Debug, Default)]
pub(crate) struct SinkContext {
    pub(super) notes: Mutex<Vec<RebalanceNote>>,
    /// High watermark per partition, from librdkafka's periodic statistics (no extra requests).
    pub(super) high_watermarks: Mutex<BTreeMap<i32, i64>>,
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements()
        .iter()
        .map(|element| element.partition())
        .collect()
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut marks = self.high_watermarks.locked();
        for topic in statistics.topics.values() {
            for (partition, state) in &topic.partitions {
                if *partition >= 0 && state.hi_offset >= 0 {
                    marks.insert(*partition, state.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.notes
                .locked()
                .push(RebalanceNote::Revoked(partitions_of(list)));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.notes
                .locked()
                .push(RebalanceNote::Assigned(partitions_of(list)));
        }
    }
}

pub(super) type SinkConsumer = BaseConsumer<SinkContext>;

impl Sink {
    pub(super) fn apply_rebalances(&mut self, consumer: &SinkConsumer) {
        let notes = consumer
            .context()
            .notes
            .locked()
            .drain(..)
            .collect::<Vec<_>>();
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
}
