//! A partition's compacted generation and the records that make compaction restartable.
//!
//! Generation `id` of a partition lives at `<table>/_compacted/<partition path>/g<id>/` and holds
//! merged data files plus two control objects:
//! - `_manifest.json`, written after the merged files and before the catalog swap: the inputs and
//!   outputs. A generation without it was never complete and is deleted by the next run.
//! - `_swapped.json`, written after the swap and after the trash entry: the swap is finished. A
//!   generation the catalog reads but without it gets its trash entry and marker from the next
//!   run; one the catalog does not read and without it was never visible and is deleted.
//!
//! Files a swap replaced go to a trash entry `_stockstream/compaction/trash/<…>.json` with the time
//! after which they may go (the grace period); each run deletes what is due, except files the
//! sink's latest intents name (its recovery checks them), which wait for a later intent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2_free::short_hash;
use stockstream_common::lake::{CONTROL_PREFIX, LakeStore};

use crate::error::Result;

/// Name of a generation's manifest.
pub(crate) const MANIFEST: &str = "_manifest.json";
/// Name of a generation's swap marker.
pub(crate) const SWAPPED: &str = "_swapped.json";

/// A file read or written by a compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    /// Lake-relative key.
    pub(crate) key: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Rows, where known.
    pub(crate) rows: Option<u64>,
}

/// What a generation was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Table.
    pub(crate) table: String,
    /// Partition path.
    pub(crate) path: String,
    /// The location the catalog read before the swap.
    pub(crate) previous_location: String,
    /// When the generation was written.
    pub(crate) created_at: DateTime<Utc>,
    /// Files merged.
    pub(crate) inputs: Vec<FileRecord>,
    /// Files written (merged files, and late files copied in before the swap).
    pub(crate) outputs: Vec<FileRecord>,
}

/// Files to delete once the grace period is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrashEntry {
    /// The generation whose swap replaced them (or `retention`).
    pub(crate) reason: String,
    /// Not before this time.
    pub(crate) not_before: DateTime<Utc>,
    /// Keys to delete.
    pub(crate) keys: Vec<String>,
}

/// Prefix of the trash entries.
pub(crate) fn trash_prefix() -> String {
    format!("{CONTROL_PREFIX}compaction/trash/")
}

/// The trash entry of the swap to generation `location` (one per generation, so writing it again
/// after a crash finds the first one).
pub(crate) fn trash_key(location: &str) -> String {
    format!("{}{}.json", trash_prefix(), short_hash(location))
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<bytes::Bytes> {
    serde_json::to_vec_pretty(value)
        .map(bytes::Bytes::from)
        .map_err(|source| {
            stockstream_common::Error::Json {
                context: format!("encoding {what}"),
                source,
            }
            .into()
        })
}

pub(crate) async fn read<T: for<'de> Deserialize<'de>>(
    store: &dyn LakeStore,
    key: &str,
) -> Result<Option<T>> {
    match store.get(key).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
            stockstream_common::Error::Json {
                context: format!("decoding {key}"),
                source,
            }
            .into()
        }),
        Err(stockstream_common::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// A small stable hash for object names (FNV-1a, 64 bits, hex).
mod sha2_free {
    pub(crate) fn short_hash(text: &str) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}
