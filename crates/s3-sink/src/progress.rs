//! Flush intents: the sink's progress, recorded in the lake itself (the format lives in
//! `stockstream_common::lake::intent`, since lake maintenance reads it too).
//!
//! Before a flush writes any data file, it writes an intent naming the Kafka range it covers
//! (`start_offset..=end_offset` of one partition), when it was ingested, and every file it will
//! write. The latest intent of a partition is the source of truth for how far that partition is in
//! the lake; Kafka's committed offset is only a hint. See `docs/exactly-once.md`.

use serde::{Deserialize, Serialize};
use stockstream_common::catalog::Column;
use stockstream_common::lake::{CONTROL_PREFIX, LakeStore, PartitionTemplate};

use crate::error::{Error, Result};

pub(crate) use stockstream_common::lake::{FlushIntent, INTENT_VERSION, intent_key, intent_prefix};

/// The outcome of [`claim_intent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The range is this flush's; `superseded` are the older intents to delete once it completes.
    Won { superseded: Vec<String> },
    /// Another sink flushed this range (or one past it) first.
    Lost,
}

/// Writes `intent` if, and only if, no other sink has claimed its range.
///
/// The intent is created with a conditional write (S3 `If-None-Match: *`, a hard link locally) at
/// the key of its start offset, so of two sinks flushing from the same start only one succeeds.
/// A claim is final only while it is the partition's latest intent: a zombie paused long enough for
/// the new owner to flush twice would find its key free again (older intents are deleted), so after
/// writing, the partition's intents are listed and any later one means the claim lost. Both steps
/// are idempotent: retried after a lost answer, the existing object holds this very intent.
pub(crate) async fn claim_intent(store: &dyn LakeStore, intent: &FlushIntent) -> Result<Claim> {
    let key = intent_key(&intent.topic, intent.partition, intent.start_offset);
    let bytes = serde_json::to_vec_pretty(intent).map_err(|error| Error::Progress {
        key: key.clone(),
        reason: error.to_string(),
    })?;
    if !store.put_if_absent(&key, bytes.clone().into()).await? {
        match store.get(&key).await {
            Ok(existing) if existing == bytes => {}
            Ok(_) => return Ok(Claim::Lost),
            // Deleted meanwhile: only a later flush deletes intents, so the range is taken.
            Err(stockstream_common::Error::NotFound { .. }) => return Ok(Claim::Lost),
            Err(error) => return Err(error.into()),
        }
    }
    let keys = intent_keys(store, &intent.topic, intent.partition).await?;
    if keys.last().is_some_and(|latest| *latest > key) {
        return Ok(Claim::Lost);
    }
    Ok(Claim::Won {
        superseded: keys.into_iter().filter(|other| *other < key).collect(),
    })
}

/// The keys of a partition's intents, oldest first.
async fn intent_keys(store: &dyn LakeStore, topic: &str, partition: i32) -> Result<Vec<String>> {
    Ok(store
        .list(&intent_prefix(topic, partition))
        .await?
        .into_iter()
        .map(|object| object.key)
        .filter(|key| key.ends_with(".json"))
        .collect())
}

/// The layout a table's files were written with, recorded once in the lake.
#[derive(Debug, Serialize, Deserialize)]
struct TableLayout {
    table: String,
    partition_template: PartitionTemplate,
    partition_keys: Vec<Column>,
}

/// Records the table's layout on first use, or checks that the lake's matches `template`: files of
/// two layouts under one table would make it unreadable for Glue, Athena and the local catalog.
pub(crate) async fn ensure_layout(
    store: &dyn LakeStore,
    table: &str,
    template: &PartitionTemplate,
) -> Result<()> {
    let key = format!("{CONTROL_PREFIX}tables/{table}/layout.json");
    let wanted = TableLayout {
        table: table.to_string(),
        partition_template: template.clone(),
        partition_keys: template.partition_keys(),
    };
    let bytes = serde_json::to_vec_pretty(&wanted).map_err(|error| Error::Progress {
        key: key.clone(),
        reason: error.to_string(),
    })?;
    if store.put_if_absent(&key, bytes.into()).await? {
        tracing::info!(table, template = %template, "recorded the table's partition layout");
        return Ok(());
    }
    let existing: TableLayout =
        serde_json::from_slice(&store.get(&key).await?).map_err(|error| Error::Progress {
            key: key.clone(),
            reason: error.to_string(),
        })?;
    if !existing.partition_template.same_layout(template) {
        return Err(Error::Layout {
            table: table.to_string(),
            key,
            in_lake: existing.partition_template.to_string(),
            configured: template.to_string(),
        });
    }
    Ok(())
}

/// Reads the latest intent of a partition.
pub(crate) async fn latest_intent(
    store: &dyn LakeStore,
    topic: &str,
    partition: i32,
) -> Result<Option<FlushIntent>> {
    let mut keys = intent_keys(store, topic, partition).await?;
    let Some(latest_key) = keys.pop() else {
        return Ok(None);
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
    Ok(Some(intent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use stockstream_common::lake::LocalStore;

    fn intent(start: i64, end: i64, at_second: i64) -> FlushIntent {
        let at = DateTime::from_timestamp(1_700_000_000 + at_second, 0).expect("time");
        FlushIntent::new("q", 0, start, end, at, Vec::new())
    }

    fn won(claim: Claim) -> Vec<String> {
        match claim {
            Claim::Won { superseded } => superseded,
            Claim::Lost => panic!("the claim lost"),
        }
    }

    #[tokio::test]
    async fn latest_intent_is_the_highest_start_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        assert_eq!(latest_intent(&store, "q", 0).await.expect("reads"), None);
        let mut superseded = Vec::new();
        for (start, end) in [(0, 9), (10, 99), (100, 100)] {
            superseded = won(claim_intent(&store, &intent(start, end, 0))
                .await
                .expect("claims"));
        }
        assert_eq!(
            superseded,
            vec![intent_key("q", 0, 0), intent_key("q", 0, 10)]
        );
        let latest = latest_intent(&store, "q", 0)
            .await
            .expect("reads")
            .expect("present");
        assert_eq!((latest.start_offset, latest.end_offset), (100, 100));
        assert!(latest.is_complete(&store).await.expect("checks"));
        assert_eq!(latest_intent(&store, "q", 1).await.expect("reads"), None);
    }

    #[tokio::test]
    async fn a_lake_keeps_the_layout_it_was_created_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        let default = PartitionTemplate::default();
        ensure_layout(&store, "quotes", &default)
            .await
            .expect("records");
        ensure_layout(&store, "quotes", &default)
            .await
            .expect("matches");
        let same: PartitionTemplate = "symbol={symbol}/year={yyyy}".parse().expect("valid");
        ensure_layout(&store, "quotes", &same)
            .await
            .expect("same layout");
        let daily: PartitionTemplate = "date={yyyy-mm-dd}".parse().expect("valid");
        let error = ensure_layout(&store, "quotes", &daily)
            .await
            .expect_err("another layout");
        let message = error.to_string();
        assert!(
            message.contains("symbol={symbol}/year={year}")
                && message.contains("date={yyyy-mm-dd}"),
            "{message}"
        );
        ensure_layout(&store, "ticks", &daily)
            .await
            .expect("another table");
    }

    #[tokio::test]
    async fn one_sink_wins_a_range_and_a_late_zombie_loses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        won(claim_intent(&store, &intent(0, 9, 0))
            .await
            .expect("claims"));

        // Two sinks flush from offset 10 with different ends: the first claim wins.
        let owner = intent(10, 19, 1);
        let zombie = intent(10, 25, 2);
        won(claim_intent(&store, &owner).await.expect("claims"));
        assert_eq!(
            claim_intent(&store, &zombie).await.expect("claims"),
            Claim::Lost
        );
        // A retry of the winner's own claim (its first answer lost) still wins.
        won(claim_intent(&store, &owner).await.expect("claims again"));

        // The owner flushes again and deletes the superseded intents, freeing key 10; a zombie
        // that wakes only now creates key 10 but finds a later intent and loses all the same.
        let superseded = won(claim_intent(&store, &intent(20, 29, 3))
            .await
            .expect("claims"));
        for key in superseded {
            store.delete(&key).await.expect("deletes");
        }
        assert_eq!(
            claim_intent(&store, &zombie).await.expect("claims"),
            Claim::Lost
        );
        let latest = latest_intent(&store, "q", 0)
            .await
            .expect("reads")
            .expect("present");
        assert_eq!((latest.start_offset, latest.end_offset), (20, 29));
    }
}
