//! Flush intents: the sink's progress, recorded in the lake itself.
//!
//! Before a flush writes any data file, the sink writes an intent naming the Kafka range it covers
//! (`start_offset..=end_offset` of one partition), when it was ingested, and every file it will
//! write. The latest intent of a Kafka partition is the source of truth for how far that
//! partition is in the lake (see `docs/exactly-once.md`). The sink writes and claims intents;
//! lake maintenance reads them, because a file the latest intent names must stay where it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::CONTROL_PREFIX;
use super::store::LakeStore;
use crate::events::LakeCommitEvent;
use crate::{Error, Result};

/// Version of the intent format.
pub const INTENT_VERSION: u32 = 1;

/// What one flush of one Kafka partition writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlushIntent {
    /// Format version ([`INTENT_VERSION`]).
    pub version: u32,
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// First offset the flush covers (records below were in earlier flushes).
    pub start_offset: i64,
    /// Last offset the flush covers, dead-lettered records included.
    pub end_offset: i64,
    /// Ingestion time written into every row; replays reuse it so files come out identical.
    pub ingested_at: DateTime<Utc>,
    /// The files, as the `lake.commits` events announcing them.
    pub files: Vec<LakeCommitEvent>,
}

impl FlushIntent {
    /// An intent of the current format.
    pub fn new(
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
    pub async fn is_complete(&self, store: &dyn LakeStore) -> Result<bool> {
        for file in &self.files {
            if !store.exists(&file.object_key).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Prefix of every intent of every topic.
pub fn intents_root() -> String {
    format!("{CONTROL_PREFIX}sink/")
}

/// Prefix of one partition's intents.
pub fn intent_prefix(topic: &str, partition: i32) -> String {
    format!("{}{topic}/{partition}/", intents_root())
}

/// Key of an intent, named by the first offset it covers, zero-padded so keys sort by offset.
pub fn intent_key(topic: &str, partition: i32, start_offset: i64) -> String {
    format!("{}{start_offset:020}.json", intent_prefix(topic, partition))
}

/// Decodes the intent stored at `key`.
pub fn decode_intent(key: &str, bytes: &[u8]) -> Result<FlushIntent> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        context: format!("decoding flush intent {key}"),
        source,
    })
}

/// The latest intent of every Kafka partition of every topic in the lake (one listing of
/// `_stockstream/sink/`, then one read per partition).
pub async fn latest_intents(store: &dyn LakeStore) -> Result<Vec<FlushIntent>> {
    let mut latest: std::collections::BTreeMap<String, String> = Default::default();
    for object in store.list(&intents_root()).await? {
        let Some((directory, name)) = object.key.rsplit_once('/') else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        // Keys sort by start offset, and the listing is sorted: the last one wins.
        latest.insert(directory.to_string(), object.key);
    }
    let mut intents = Vec::with_capacity(latest.len());
    for key in latest.into_values() {
        match store.get(&key).await {
            Ok(bytes) => intents.push(decode_intent(&key, &bytes)?),
            // Superseded and deleted since the listing: a later one exists, read next time.
            Err(Error::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(intents)
}
