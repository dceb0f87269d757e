//! The round's second step: the files of trash entries whose grace period is over are deleted.
//!
//! A file a latest sink intent names (its recovery checks it) or that a partition reads directly
//! stays, and its entry is rewritten to name only what stayed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::generation::{TrashEntry, encode, read, trash_prefix};
use super::{CatalogPartition, Compactor, RoundReport};
use crate::error::Result;

impl Compactor {
    /// Deletes the files of trash entries whose grace period is over.
    pub(super) async fn empty_trash(
        &self,
        partitions: &[CatalogPartition],
        protected: &HashSet<String>,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Result<()> {
        let read_locations: Vec<&str> = partitions
            .iter()
            .map(|partition| partition.location.as_str())
            .collect();
        for object in self.store.list(&trash_prefix()).await? {
            let Some(entry): Option<TrashEntry> = read(self.store.as_ref(), &object.key).await?
            else {
                continue;
            };
            if entry.not_before > now {
                continue;
            }
            let mut kept = Vec::new();
            for key in entry.keys {
                let in_use = read_locations.iter().any(|location| {
                    key.strip_prefix(location)
                        .is_some_and(|name| !name.contains('/'))
                });
                if protected.contains(&key) || in_use {
                    kept.push(key);
                    continue;
                }
                self.store.delete(&key).await?;
                report.files_deleted += 1;
            }
            report.files_kept_for_sink += kept.len() as u64;
            if kept.is_empty() {
                self.store.delete(&object.key).await?;
            } else {
                let entry = TrashEntry {
                    keys: kept,
                    ..entry
                };
                self.store
                    .put(&object.key, encode("a trash entry", &entry)?)
                    .await?;
            }
        }
        Ok(())
    }
}
