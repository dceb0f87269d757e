//! Late files: a file the sink commits into the home directory of a partition the catalog reads
//! from a generation is copied into that generation (same name), and announced on `lake.commits`
//! so the query API picks the copy up like any commit. A file whose Kafka range a generation file
//! already covers (an intent's files announced again after a sink restart, a redone flush) is not
//! copied: its rows are there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::producer::{FutureProducer, FutureRecord};
use stockstream_common::config::KafkaConfig;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::kafka::producer_config;
use stockstream_common::lake::{FileRange, LakeStore, partition_path};
use stockstream_common::sync::MutexExt;

use super::catalog::CatalogPartition;
use super::plan::is_data_file;
use crate::error::Result;

/// How long a copy's announcement may wait for Kafka.
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The generation each compacted partition is read from, by (table, partition path).
#[derive(Debug, Clone, Default)]
pub struct Generations {
    locations: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl Generations {
    /// Replaces the map with the compacted partitions among `partitions`.
    pub fn reset(&self, partitions: &[CatalogPartition]) {
        let map = partitions
            .iter()
            .filter(|partition| partition.current_generation().is_some())
            .map(|partition| {
                (
                    (partition.table.clone(), partition.path.clone()),
                    partition.location.clone(),
                )
            })
            .collect();
        *self.locations.locked() = map;
    }

    /// Records that `partition` is now read from `location` (or dropped, with `None`).
    pub fn set(&self, partition: &CatalogPartition, location: Option<&str>) {
        let mut locations = self.locations.locked();
        let key = (partition.table.clone(), partition.path.clone());
        match location {
            Some(location) => locations.insert(key, location.to_string()),
            None => locations.remove(&key),
        };
    }

    fn get(&self, table: &str, path: &str) -> Option<String> {
        self.locations
            .locked()
            .get(&(table.to_string(), path.to_string()))
            .cloned()
    }
}

/// Announces copies on `lake.commits`.
pub struct Announcer {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Announcer")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Announcer {
    /// A producer for `kafka.topics.lake_commits`.
    pub fn new(kafka: &KafkaConfig) -> Result<Self> {
        let producer = producer_config(kafka, "catalog-compaction", &[])
            .create()
            .map_err(|error| {
                stockstream_common::Error::kafka("creating the compaction producer", error)
            })?;
        Ok(Self {
            producer,
            topic: kafka.topics.lake_commits.clone(),
        })
    }

    async fn announce(&self, event: &LakeCommitEvent) -> Result<()> {
        let payload =
            serde_json::to_vec(event).map_err(|source| stockstream_common::Error::Json {
                context: "encoding a lake commit event".to_string(),
                source,
            })?;
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(event.table.as_bytes())
                    .payload(&payload),
                DELIVERY_TIMEOUT,
            )
            .await
            .map_err(|(error, _)| {
                stockstream_common::Error::kafka("announcing a late file's copy", error)
            })?;
        Ok(())
    }
}

/// Copies the late files among `events` into their partitions' generations; returns how many.
pub async fn copy_late_files(
    store: &dyn LakeStore,
    generations: &Generations,
    announcer: Option<&Announcer>,
    events: &[LakeCommitEvent],
) -> Result<u64> {
    let mut copied = 0;
    let mut listed: HashMap<String, Vec<FileRange>> = HashMap::new();
    for event in events {
        let path = partition_path(&event.partition);
        let Some(location) = generations.get(&event.table, &path) else {
            continue;
        };
        let home = format!("{}{path}/", event.table_location);
        let Some(name) = event.object_key.strip_prefix(&home) else {
            continue;
        };
        let Some(range) = FileRange::parse(name) else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        if !listed.contains_key(&location) {
            let ranges = store
                .list(&location)
                .await?
                .iter()
                .filter(|meta| is_data_file(meta))
                .filter_map(|meta| FileRange::of_key(&meta.key))
                .collect();
            listed.insert(location.clone(), ranges);
        }
        let ranges = listed.entry(location.clone()).or_default();
        if ranges.iter().any(|covered| covered.overlaps(&range)) {
            continue;
        }
        let bytes = match store.get(&event.object_key).await {
            Ok(bytes) => bytes,
            // Set aside by the catalog service, or gone: nothing to copy.
            Err(stockstream_common::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        let copy_key = format!("{location}{name}");
        store.put(&copy_key, bytes).await?;
        ranges.push(range);
        copied += 1;
        tracing::debug!(file = %event.object_key, copy = %copy_key, "late file copied into its partition's generation");
        if let Some(announcer) = announcer {
            let mut copy = event.clone();
            copy.object_key = copy_key;
            announcer.announce(&copy).await?;
        }
    }
    Ok(copied)
}
