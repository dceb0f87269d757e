//! Flush intents: the sink's progress, recorded in the lake itself.
//!
//! Before a flush writes any data file, it writes an intent naming the Kafka range it covers
//! (`start_offset..=end_offset` of one partition), when it was ingested, and every file it will
//! write. The latest intent of a partition is the source of truth for how far that partition is in
//! the lake; Kafka's committed offset is only a hint. See `docs/exactly-once.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::{CONTROL_PREFIX, LakeStore};

use crate::error::{Error, Result};

/// Version of the intent format.
const INTENT_VERSION: u32 = 1;

/// What one flush of one Kafka partition writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlushIntent {
    pub(crate) version: u32,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// First offset the flush covers (records below were in earlier flushes).
    pub(crate) start_offset: i64,
    /// Last offset the flush covers, dead-lettered records included.
    pub(crate) end_offset: i64,
    /// Ingestion time written into every row; replays reuse it so files come out identical.
    pub(crate) ingested_at: DateTime<Utc>,
    /// The files, as the `lake.commits` events announcing them.
    pub(crate) files: Vec<LakeCommitEvent>,
}

impl FlushIntent {
    pub(crate) fn new(
        topic: &str,
        partition: i32,
        start_offset: i64,
        end_offset: i64,
        ingested_at: DateTime<Utc>,
        files: Vec<LakeCommitEvent>,
    ) -> Self {
        debug_assert!(start_offset <= end_offset);
        Self {
            version: INTENT_VERSION,
            topic: topic.to_string(),
            partition,
            start_offset,
            end_offset,
            ingested_at,
            files,
        }
    }

    /// Whether every file of the intent is in the lake (puts are atomic, so present means whole).
    pub(crate) async fn is_complete(&self, store: &dyn LakeStore) -> Result<bool> {
        for file in &self.files {
            if !store.exists(&file.object_key).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Prefix of one partition's intents.
pub(crate) fn intent_prefix(topic: &str, partition: i32) -> String {
    format!("{CONTROL_PREFIX}sink/{topic}/{partition}/")
}

/// Key of an intent; zero-padded so the latest sorts last.
pub(crate) fn intent_key(topic: &str, partition: i32, end_offset: i64) -> String {
    format!("{}{end_offset:020}.json", intent_prefix(topic, partition))
}

/// Writes an intent.
pub(crate) async fn write_intent(store: &dyn LakeStore, intent: &FlushIntent) -> Result<()> {
    let key = intent_key(&intent.topic, intent.partition, intent.end_offset);
    let bytes = serde_json::to_vec_pretty(intent).map_err(|error| Error::Progress {
        key: key.clone(),
        reason: error.to_string(),
    })?;
    store.put(&key, bytes.into()).await?;
    Ok(())
}

/// Reads the latest intent of a partition, with the keys of all older ones (to delete).
pub(crate) async fn latest_intent(
    store: &dyn LakeStore,
    topic: &str,
    partition: i32,
) -> Result<(Option<FlushIntent>, Vec<String>)> {
    let mut keys: Vec<String> = store
        .list(&intent_prefix(topic, partition))
        .await?
        .into_iter()
        .map(|object| object.key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    let Some(latest_key) = keys.pop() else {
        return Ok((None, keys));
    };
    let bytes = store.get(&latest_key).await?;
    let intent: FlushIntent = serde_json::from_slice(&bytes).map_err(|error| Error::Progress {
        key: latest_key.clone(),
        reason: error.to_string(),
    })?;
    if intent.version != INTENT_VERSION || intent.partition != partition || intent.topic != topic {
        return Err(Error::Progress {
            key: latest_key,
            reason: format!(
                "expected version {INTENT_VERSION} of {topic}[{partition}], found version {} of {}[{}]",
                intent.version, intent.topic, intent.partition
            ),
        });
    }
    Ok((Some(intent), keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockstream_common::lake::LocalStore;

    #[tokio::test]
    async fn latest_intent_is_the_highest_end_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        assert_eq!(latest_intent(&store, "q", 0).await.expect("reads").0, None);
        for (start, end) in [(0, 9), (10, 99), (100, 100)] {
            let intent = FlushIntent::new("q", 0, start, end, Utc::now(), Vec::new());
            write_intent(&store, &intent).await.expect("writes");
        }
        let (latest, older) = latest_intent(&store, "q", 0).await.expect("reads");
        let latest = latest.expect("present");
        assert_eq!((latest.start_offset, latest.end_offset), (100, 100));
        assert_eq!(older.len(), 2);
        assert!(latest.is_complete(&store).await.expect("checks"));
        assert_eq!(latest_intent(&store, "q", 1).await.expect("reads").0, None);
    }
}
