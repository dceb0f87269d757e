//! The round's first step: what a killed run left in the generations is finished or undone.
//!
//! A generation the catalog reads but without its swap marker gets its trash entry and marker; one
//! the catalog does not read and without a marker was never visible and is deleted; a superseded
//! generation its trash entry emptied is cleared of its records (see [`super::generation`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use stockstream_common::lake::{COMPACTED_DIR, ObjectMeta};

use super::generation::{FileRecord, MANIFEST, Manifest, SWAPPED, read};
use super::plan::is_data_file;
use super::{CatalogPartition, Compactor, RoundReport};
use crate::error::Result;

impl Compactor {
    /// Finishes or undoes what a killed run left in the generations of `partitions`.
    pub(super) async fn recover(
        &self,
        partitions: &[CatalogPartition],
        report: &mut RoundReport,
    ) -> Result<()> {
        let by_path: HashMap<(&str, &str), &CatalogPartition> = partitions
            .iter()
            .map(|partition| {
                (
                    (partition.table_location.as_str(), partition.path.as_str()),
                    partition,
                )
            })
            .collect();
        let tables: HashSet<&str> = partitions
            .iter()
            .map(|partition| partition.table_location.as_str())
            .collect();
        for table_location in tables {
            let root = format!("{table_location}{COMPACTED_DIR}/");
            for (location, objects) in self.generations_under(&root).await? {
                let Some((path, _)) = location
                    .strip_prefix(&root)
                    .and_then(|rest| rest.trim_end_matches('/').rsplit_once('/'))
                else {
                    continue;
                };
                // Partitions dropped by retention: their trash entry has the files.
                let Some(partition) = by_path.get(&(table_location, path)) else {
                    continue;
                };
                self.recover_generation(partition, location, &objects, report)
                    .await?;
            }
        }
        Ok(())
    }

    /// The objects under `root` (a table's `_compacted/` folder), by generation location.
    async fn generations_under(&self, root: &str) -> Result<BTreeMap<String, Vec<ObjectMeta>>> {
        let mut generations: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
        for meta in self.store.list(root).await? {
            if let Some((directory, _)) = meta.key.rsplit_once('/') {
                generations
                    .entry(format!("{directory}/"))
                    .or_default()
                    .push(meta);
            }
        }
        Ok(generations)
    }

    /// Finishes the swap of the generation at `location` if `partition` reads it, deletes it if
    /// it was never swapped, and clears the records of a swapped one its trash entry emptied.
    async fn recover_generation(
        &self,
        partition: &CatalogPartition,
        location: String,
        objects: &[ObjectMeta],
        report: &mut RoundReport,
    ) -> Result<()> {
        let swapped = objects.iter().any(|meta| meta.key.ends_with(SWAPPED));
        if partition.location == location {
            if !swapped {
                let manifest = self
                    .manifest_or_listing(partition, &location, objects)
                    .await?;
                self.finish_swap(partition, &location, &manifest, None)
                    .await?;
                report.recovered.push(location);
            }
        } else if !swapped {
            for meta in objects {
                self.store.delete(&meta.key).await?;
            }
            report.discarded.push(location);
        } else if !objects.iter().any(is_data_file) {
            // Superseded and emptied by its trash entry: only the records remain.
            for meta in objects {
                self.store.delete(&meta.key).await?;
            }
        }
        Ok(())
    }

    /// The manifest of the generation at `location`, or (if it was never written) one whose
    /// outputs are the generation's data files and whose previous location is the home directory.
    async fn manifest_or_listing(
        &self,
        partition: &CatalogPartition,
        location: &str,
        objects: &[ObjectMeta],
    ) -> Result<Manifest> {
        let manifest: Option<Manifest> =
            read(self.store.as_ref(), &format!("{location}{MANIFEST}")).await?;
        Ok(manifest.unwrap_or_else(|| Manifest {
            table: partition.table.clone(),
            path: partition.path.clone(),
            previous_location: partition.home(),
            created_at: Utc::now(),
            inputs: Vec::new(),
            outputs: objects
                .iter()
                .filter(|meta| is_data_file(meta))
                .map(|meta| FileRecord {
                    key: meta.key.clone(),
                    size: meta.size,
                    rows: None,
                })
                .collect(),
        }))
    }
}
