//! Where each partition stands against the lake — resume after the last flush, or redo an
//! unfinished one — and what the loop does with each message: skip, collect for the redo, or
//! buffer for the next flush.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use stockstream_common::lake::{LakeRow, LakeStore};

use super::Sink;
use super::rebalance::SinkConsumer;
use crate::error::Result;
use crate::metrics;
use crate::progress::{FlushIntent, latest_intent};
use crate::writer::{FLUSH_WORKSPACE_PER_ROW, encode_files};

/// What to do with a consumed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub(super) enum Resume {
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
    pub(super) fn next_offset(&self) -> i64 {
        match self {
            Resume::From(next) => *next,
            Resume::Redo { intent, .. } => intent.start_offset,
        }
    }

    /// Where the consumer must move when the partition's first message after an assignment is
    /// at `offset`: forwards past what the lake holds, or to the start of an unfinished flush
    /// (backwards too); `None` when it already stands there or beyond.
    fn seek_target(&self, offset: i64) -> Option<i64> {
        match self {
            Resume::From(next) if offset < *next => Some(*next),
            Resume::Redo { intent, .. } if offset != intent.start_offset => {
                Some(intent.start_offset)
            }
            _ => None,
        }
    }

    /// What to do with the message at `offset`.
    fn step(&self, offset: i64) -> Step {
        match self {
            Resume::Redo { intent, .. } if offset < intent.start_offset => Step::Skip,
            Resume::Redo { intent, .. } if offset <= intent.end_offset => Step::CollectRedo {
                last: offset == intent.end_offset,
            },
            Resume::Redo { .. } => Step::FinishRedoThenBuffer,
            Resume::From(next) if offset < *next => Step::Skip,
            Resume::From(_) => Step::Buffer,
        }
    }
}

/// What a partition's latest flush intent says of it.
#[derive(Debug)]
pub(super) enum LakePosition {
    /// No flush yet.
    Empty,
    /// The latest flush wrote every file it names.
    After(FlushIntent),
    /// The latest flush did not finish.
    Unfinished(FlushIntent),
}

impl LakePosition {
    /// Where the partition resumes: after the latest flush, or redoing it.
    fn resume(self) -> Resume {
        match self {
            LakePosition::Empty => Resume::From(0),
            LakePosition::After(intent) => Resume::From(intent.end_offset + 1),
            LakePosition::Unfinished(intent) => Resume::Redo {
                intent,
                rows: BTreeMap::new(),
            },
        }
    }
}

/// Reads where `topic`/`partition` stands in the lake: at an assignment, and after a fenced
/// flush (another sink claimed the range first), when the lake, not this sink's buffer, says
/// where to go on.
pub(super) async fn lake_position(
    store: &dyn LakeStore,
    topic: &str,
    partition: i32,
) -> Result<LakePosition> {
    let Some(intent) = latest_intent(store, topic, partition).await? else {
        return Ok(LakePosition::Empty);
    };
    Ok(if intent.is_complete(store).await? {
        LakePosition::After(intent)
    } else {
        LakePosition::Unfinished(intent)
    })
}

/// Moves the consumer of `topic`/`partition` to `target`; false (logged) if the seek failed.
pub(super) fn seek(
    consumer: &SinkConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    target: i64,
) -> bool {
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
pub(super) struct PartitionState {
    pub(super) resume: Resume,
    /// Whether the loop already decided to seek on this partition's first message.
    pub(super) positioned: bool,
    pub(super) buffer: Vec<LakeRow>,
    /// Memory held by `buffer`: its allocated capacity plus the symbols' heap blocks.
    pub(super) buffered_bytes: usize,
    /// The symbols' heap blocks alone.
    pub(super) symbol_bytes: usize,
    /// First and last offsets consumed since the last flush (dead letters included).
    pub(super) pending: Option<(i64, i64)>,
    pub(super) pending_since: Option<Instant>,
    pub(super) oldest_timestamp_ms: Option<i64>,
}

impl PartitionState {
    pub(super) fn new(resume: Resume) -> Self {
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

impl Sink {
    /// Loads where `partition` stands in the lake; re-announces its latest files (idempotent).
    pub(super) fn load_state(&mut self, partition: i32) -> Result<PartitionState> {
        let topic = self.topic().to_string();
        let store = self.store.clone();
        let position = self.lake_call("reading the partition's flush intents", || {
            lake_position(store.as_ref(), &topic, partition)
        })?;
        match &position {
            LakePosition::Empty => {
                tracing::info!(partition, "no flush of this partition in the lake yet");
            }
            LakePosition::After(intent) => {
                tracing::info!(
                    partition,
                    next_offset = intent.end_offset + 1,
                    "resuming after the lake's last flush"
                );
                // Announced again: the catalog may not have seen it if the sink died right after
                // writing the files (the catalog applies an event twice harmlessly).
                self.announce(intent)?;
            }
            LakePosition::Unfinished(intent) => tracing::warn!(
                partition,
                start_offset = intent.start_offset,
                end_offset = intent.end_offset,
                "the last flush did not finish, replaying its range"
            ),
        }
        Ok(PartitionState::new(position.resume()))
    }

    pub(super) fn handle(
        &mut self,
        consumer: &SinkConsumer,
        message: &BorrowedMessage<'_>,
    ) -> Result<()> {
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
        let step = self
            .partitions
            .get(&partition)
            .map_or(Step::Buffer, |state| state.resume.step(offset));
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
    pub(super) fn position(
        &mut self,
        consumer: &SinkConsumer,
        partition: i32,
        offset: i64,
    ) -> bool {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return false;
        };
        if state.positioned {
            return false;
        }
        state.positioned = true;
        let Some(target) = state.resume.seek_target(offset) else {
            return false;
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

    pub(super) fn finish_redo(&mut self, consumer: &SinkConsumer, partition: i32) -> Result<()> {
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

    /// Forgets what the sink holds of `partition` and moves the consumer to where the lake says
    /// the partition stands (forwards or backwards).
    /// `from` is the offset after the dropped buffer, where the consumer stands.
    pub(super) fn reload_from_lake(
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn redo(start: i64, end: i64) -> Resume {
        Resume::Redo {
            intent: FlushIntent::new("quotes", 0, start, end, Utc::now(), Vec::new()),
            rows: BTreeMap::new(),
        }
    }

    #[test]
    fn after_a_finished_flush_the_lake_s_records_are_skipped_and_the_rest_buffered() {
        let resume = Resume::From(100);
        assert_eq!(resume.next_offset(), 100);
        assert_eq!(resume.step(0), Step::Skip);
        assert_eq!(resume.step(99), Step::Skip);
        assert_eq!(resume.step(100), Step::Buffer);
        assert_eq!(resume.step(5000), Step::Buffer);
        assert_eq!(Resume::From(0).step(0), Step::Buffer);
    }

    #[test]
    fn the_first_message_decides_whether_the_consumer_seeks() {
        let resume = Resume::From(100);
        // Behind the lake: jump forwards over what the lake holds.
        assert_eq!(resume.seek_target(0), Some(100));
        assert_eq!(resume.seek_target(99), Some(100));
        // At or past it (records deleted by retention, say): stay.
        assert_eq!(resume.seek_target(100), None);
        assert_eq!(resume.seek_target(250), None);
        // An unfinished flush is re-read from its start, backwards or forwards.
        let unfinished = redo(40, 60);
        assert_eq!(unfinished.next_offset(), 40);
        assert_eq!(unfinished.seek_target(90), Some(40));
        assert_eq!(unfinished.seek_target(10), Some(40));
        assert_eq!(unfinished.seek_target(40), None);
    }

    #[test]
    fn an_unfinished_flush_is_collected_then_finished() {
        let resume = redo(40, 60);
        assert_eq!(resume.step(39), Step::Skip);
        assert_eq!(resume.step(40), Step::CollectRedo { last: false });
        assert_eq!(resume.step(59), Step::CollectRedo { last: false });
        assert_eq!(resume.step(60), Step::CollectRedo { last: true });
        // Compacted or deleted offsets left a gap: the first record past the range finishes
        // the redo with what Kafka still holds, then is buffered.
        assert_eq!(resume.step(61), Step::FinishRedoThenBuffer);
        // A one-record flush is complete with its only record.
        assert_eq!(redo(7, 7).step(7), Step::CollectRedo { last: true });
    }

    /// A zombie (a sink paused while its partition moved) buffered offsets 10..=25 and tries to
    /// flush them after the new owner flushed 10..=19: its claim loses, and the lake's position
    /// sends it back to 20, so the records of its dropped buffer past the owner's range are read
    /// again, not lost, and those the owner wrote are skipped, not written twice.
    #[tokio::test]
    async fn a_fenced_sink_goes_on_from_the_lake_not_from_its_buffer() {
        use crate::progress::{Claim, claim_intent};
        use crate::writer::tests::row;
        use stockstream_common::events::LakeCommitEvent;
        use stockstream_common::lake::LocalStore;

        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        let intent = |start, end, files: Vec<LakeCommitEvent>| {
            FlushIntent::new("quotes", 0, start, end, Utc::now(), files)
        };
        assert!(matches!(
            lake_position(&store, "quotes", 0).await.expect("reads"),
            LakePosition::Empty
        ));
        let owner = intent(10, 19, Vec::new());
        assert!(matches!(
            claim_intent(&store, &owner).await.expect("claims"),
            Claim::Won { .. }
        ));
        let zombie = intent(10, 25, Vec::new());
        assert_eq!(
            claim_intent(&store, &zombie).await.expect("claims"),
            Claim::Lost
        );

        let position = lake_position(&store, "quotes", 0).await.expect("reads");
        assert!(
            matches!(&position, LakePosition::After(latest) if latest.end_offset == 19),
            "{position:?}"
        );
        let resume = position.resume();
        // The zombie's consumer stands at 26: it seeks back to 20.
        assert_eq!(resume.next_offset(), 20);
        for offset in 10..20 {
            assert_eq!(resume.step(offset), Step::Skip, "offset {offset}");
        }
        for offset in 20..=25 {
            assert_eq!(resume.step(offset), Step::Buffer, "offset {offset}");
        }

        // Had the owner died before writing its files, the fenced sink redoes the owner's range
        // (the intent names a file that is not in the lake) before buffering past it.
        let files = encode_files(
            &Default::default(),
            "quotes",
            0,
            vec![row(20, "HSI", 1987), row(29, "HSI", 1987)],
            Utc::now(),
            1024,
            "fp",
        )
        .expect("encodes");
        let unfinished = intent(20, 29, files.into_iter().map(|file| file.event).collect());
        assert!(matches!(
            claim_intent(&store, &unfinished).await.expect("claims"),
            Claim::Won { .. }
        ));
        let resume = lake_position(&store, "quotes", 0)
            .await
            .expect("reads")
            .resume();
        assert_eq!(resume.next_offset(), 20);
        assert_eq!(resume.step(25), Step::CollectRedo { last: false });
        assert_eq!(resume.step(29), Step::CollectRedo { last: true });
        assert_eq!(resume.step(30), Step::FinishRedoThenBuffer);
    }

    #[test]
    fn heap_blocks_follow_the_allocator_s_granularity() {
        assert_eq!(heap_block(0), 0);
        assert_eq!(heap_block(3), 32);
        assert_eq!(heap_block(24), 32);
        assert_eq!(heap_block(25), 48);
    }
}
