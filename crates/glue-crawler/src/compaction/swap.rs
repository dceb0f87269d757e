//! The swap: under the maintenance lock and lease, late files are copied into the new generation,
//! the catalog's location changes in one step ([`PartitionCatalog::relocate`]), and the replaced
//! files go to the trash before the generation is marked swapped.
//!
//! [`PartitionCatalog::relocate`]: super::PartitionCatalog::relocate

use chrono::Utc;
use stockstream_common::lake::{FileRange, ObjectMeta};

use super::generation::{FileRecord, Manifest, SWAPPED, TrashEntry, encode, trash_key};
use super::plan::{Input, is_data_file, visible_files};
use super::{CatalogPartition, Compactor, Exclusive, describe, direct_children};
use crate::error::Result;

impl Compactor {
    /// Swaps `partition` to the generation at `location`, whose `manifest` gains the late files
    /// copied in; returns how many, or `None` (the generation deleted) if the partition changed
    /// in a way compaction cannot place.
    pub(super) async fn swap(
        &self,
        partition: &CatalogPartition,
        location: &str,
        manifest: &mut Manifest,
        exclusive: &mut Exclusive<'_>,
    ) -> Result<Option<usize>> {
        // Nothing else changes this partition's files or location meanwhile.
        let _guard = exclusive.lock.lock().await;
        self.confirm(exclusive.lease).await?;
        let home = self.store.list(&partition.home()).await?;
        let current = match partition.current_generation() {
            Some(_) => self.store.list(&partition.location).await?,
            None => Vec::new(),
        };
        let visible = match visible_files(partition, &home, &current) {
            Ok(visible) => visible,
            Err(skip) => {
                tracing::warn!(partition = %partition.path, reason = describe(&skip), "partition changed before its swap; the generation is discarded");
                self.delete_prefix(location).await?;
                return Ok(None);
            }
        };
        let late_files = self.copy_late(location, &visible, manifest).await?;
        exclusive.catalog.relocate(partition, location).await?;
        self.generations.set(partition, Some(location));
        // The home listing taken under the lock serves the trash entry too: files the sink adds
        // since are not covered by this generation.
        self.finish_swap(partition, location, manifest, Some(home))
            .await?;
        Ok(Some(late_files))
    }

    /// Copies into the generation at `location` what the partition shows now (`visible`) that no
    /// merged file covers, adds the copies to `manifest` (rewritten if any); returns how many.
    ///
    /// By range, not by key: a late file copied into the current generation after the inputs
    /// were listed has a new key but rows that a merged file already holds (from its original,
    /// an input).
    async fn copy_late(
        &self,
        location: &str,
        visible: &[Input],
        manifest: &mut Manifest,
    ) -> Result<usize> {
        let merged: Vec<FileRange> = manifest
            .outputs
            .iter()
            .filter_map(|output| FileRange::of_key(&output.key))
            .collect();
        let mut late_files = 0;
        for late in visible
            .iter()
            .filter(|file| !merged.iter().any(|range| range.overlaps(&file.range)))
        {
            let bytes = self.store.get(&late.key).await?;
            let key = format!("{location}{}", late.range.file_name());
            let size = bytes.len() as u64;
            self.store.put(&key, bytes).await?;
            manifest.outputs.push(FileRecord {
                key,
                size,
                rows: None,
            });
            late_files += 1;
        }
        if late_files > 0 {
            self.write_manifest(location, manifest).await?;
        }
        Ok(late_files)
    }

    /// After a swap to `location`: the replaced files go to the trash (the previous generation
    /// whole, and every home file a new file covers), then the generation is marked swapped.
    pub(super) async fn finish_swap(
        &self,
        partition: &CatalogPartition,
        location: &str,
        manifest: &Manifest,
        home: Option<Vec<ObjectMeta>>,
    ) -> Result<()> {
        let covering: Vec<FileRange> = manifest
            .outputs
            .iter()
            .filter_map(|output| FileRange::of_key(&output.key))
            .collect();
        let home = match home {
            Some(listed) => direct_children(partition, listed),
            None => self.home_files(partition).await?,
        };
        let mut keys: Vec<String> = home
            .into_iter()
            .filter(|meta| {
                is_data_file(meta)
                    && FileRange::of_key(&meta.key).is_some_and(|range| {
                        covering.iter().any(|covered| covered.overlaps(&range))
                    })
            })
            .map(|meta| meta.key)
            .collect();
        let previous = &manifest.previous_location;
        if previous.starts_with(&partition.generations_prefix()) && previous != location {
            keys.extend(
                self.store
                    .list(previous)
                    .await?
                    .into_iter()
                    .map(|meta| meta.key),
            );
        }
        let entry = TrashEntry {
            reason: format!("replaced by {location}"),
            not_before: Utc::now()
                + chrono::Duration::from_std(self.config.grace).unwrap_or_default(),
            keys,
        };
        self.store
            .put_if_absent(&trash_key(location), encode("a trash entry", &entry)?)
            .await?;
        let marker = serde_json::json!({ "swapped_at": Utc::now() });
        self.store
            .put(
                &format!("{location}{SWAPPED}"),
                encode("a swap marker", &marker)?,
            )
            .await?;
        Ok(())
    }
}
