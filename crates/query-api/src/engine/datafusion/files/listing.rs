//! Listing the lake as the catalog changes: partitions that became visible or moved are listed,
//! vanished ones dropped, changed tables rebuilt; and the periodic relist, which keeps files that
//! events added while it ran.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;

use super::carry_over::carry_over;
use super::layout::{owning_partition, projected_partition};
use super::statistics::{keep_read_statistics, known_statistics};
use super::{
    FileEntry, FileIndex, IndexSnapshot, PartitionFiles, TableFiles, empty_table, insert_file,
    typed_values,
};
use crate::catalog::{CatalogSnapshot, CatalogTable, PartitionDef, Partitions};
use crate::error::Result;

/// Partitions to list one by one; more new partitions at once list the whole table.
const LIST_ONE_BY_ONE: usize = 16;

impl FileIndex {
    /// Brings the index in line with `catalog`: lists new and moved partitions, drops vanished
    /// ones, rebuilds tables whose definition changed.
    pub async fn apply_catalog(&self, catalog: &CatalogSnapshot) -> Result<()> {
        let _writer = self.writer.lock().await;
        let previous = self.snapshot();
        let mut next = IndexSnapshot::default();
        for (name, table) in &catalog.tables {
            let kept = previous
                .tables
                .get(name)
                .filter(|files| files.def == table.def && files.unreadable.is_none());
            let files = match kept {
                Some(files) => self.follow_visibility(files, table).await?,
                None => self.build_table(table, None).await?,
            };
            next.tables.insert(name.clone(), Arc::new(files));
        }
        self.publish(next);
        Ok(())
    }

    /// Lists every visible partition again; files added by events since the listing started
    /// are kept, files that vanished from the lake are dropped.
    pub async fn relist(&self, catalog: &CatalogSnapshot) -> Result<()> {
        let started = self.sequence.load(Ordering::Relaxed);
        let mut listed = BTreeMap::new();
        for (name, table) in &catalog.tables {
            listed.insert(name.clone(), self.build_table(table, None).await?);
        }
        let _writer = self.writer.lock().await;
        let previous = self.snapshot();
        let mut next = IndexSnapshot::default();
        for (name, mut files) in listed {
            if let Some(before) = previous.tables.get(&name) {
                merge_newer(&mut files, before, started);
            }
            next.tables.insert(name, Arc::new(files));
        }
        self.publish(next);
        Ok(())
    }

    /// A table whose definition is unchanged: lists partitions that became visible or moved.
    async fn follow_visibility(
        &self,
        files: &TableFiles,
        table: &CatalogTable,
    ) -> Result<TableFiles> {
        let mut next = files.clone();
        next.visibility = table.partitions.clone();
        match &table.partitions {
            Partitions::Registered(registered) => {
                let mut moved: BTreeMap<Vec<String>, Arc<PartitionFiles>> = BTreeMap::new();
                next.partitions
                    .retain(|values, partition| match registered.get(values) {
                        Some(def) if def.location == partition.def.location => true,
                        Some(_) => {
                            moved.insert(values.clone(), partition.clone());
                            false
                        }
                        None => false,
                    });
                let new: Vec<&PartitionDef> = registered
                    .values()
                    .filter(|def| !next.partitions.contains_key(&def.values))
                    .collect();
                if new.len() > LIST_ONE_BY_ONE {
                    return self.build_table(table, Some(files)).await;
                }
                for def in new {
                    let mut partition = self.list_partition(&next, def).await?;
                    if let Some(old) = moved.get(&def.values) {
                        carry_over(&mut partition, old);
                    }
                    next.partitions
                        .insert(def.values.clone(), Arc::new(partition));
                }
            }
            Partitions::Projected(projection) => {
                if files.visibility != table.partitions {
                    // A widened projection may admit partitions already in the lake.
                    return self.build_table(table, Some(files)).await;
                }
                next.partitions
                    .retain(|values, _| projection.admits(values));
            }
        }
        Ok(next)
    }

    /// Builds a table from one listing of its location; statistics known in `previous` are kept.
    async fn build_table(
        &self,
        table: &CatalogTable,
        previous: Option<&TableFiles>,
    ) -> Result<TableFiles> {
        let mut files = empty_table(table);
        if files.unreadable.is_some() {
            return Ok(files);
        }
        let Some(location) = table.def.lake_location.clone() else {
            return Ok(files);
        };
        let wanted: BTreeMap<String, PartitionDef> = match &table.partitions {
            Partitions::Registered(registered) => registered
                .values()
                .map(|def| (def.location.clone(), def.clone()))
                .collect(),
            Partitions::Projected(_) => BTreeMap::new(),
        };
        let objects = self.list(&location).await?;
        let sequence = self.next_sequence();
        for meta in objects {
            let key = meta.location.to_string();
            let def = match &table.partitions {
                Partitions::Registered(_) => owning_partition(&wanted, &key),
                Partitions::Projected(projection) => {
                    projected_partition(&table.def, &location, &key)
                        .filter(|def| projection.admits(&def.values))
                }
            };
            let Some(def) = def else {
                continue;
            };
            let entry = FileEntry {
                statistics: previous
                    .and_then(|previous| known_statistics(previous, &def.values, &meta)),
                meta,
                added: sequence,
            };
            insert_file(&mut files, def, entry)?;
        }
        // Partitions that moved (compaction) keep the rows no new file covers yet.
        if let Some(previous) = previous {
            for (values, old) in &previous.partitions {
                if let Some(partition) = files.partitions.get_mut(values)
                    && partition.def.location != old.def.location
                {
                    carry_over(Arc::make_mut(partition), old);
                }
            }
        }
        // Registered partitions without files are visible too (they read as empty).
        for def in wanted.into_values() {
            if !files.partitions.contains_key(&def.values) {
                let values = typed_values(&files, &def.values)?;
                files.partitions.insert(
                    def.values.clone(),
                    Arc::new(PartitionFiles {
                        def,
                        values,
                        files: BTreeMap::new(),
                    }),
                );
            }
        }
        Ok(files)
    }

    /// Lists one partition at its catalogued location (statistics not read yet).
    async fn list_partition(
        &self,
        table: &TableFiles,
        def: &PartitionDef,
    ) -> Result<PartitionFiles> {
        let sequence = self.next_sequence();
        let files = self
            .list(&def.location)
            .await?
            .into_iter()
            .map(|meta| {
                (
                    meta.location.clone(),
                    FileEntry {
                        meta,
                        statistics: None,
                        added: sequence,
                    },
                )
            })
            .collect();
        Ok(PartitionFiles {
            values: typed_values(table, &def.values)?,
            def: def.clone(),
            files,
        })
    }

    /// Data files below `prefix`: `.parquet`, not empty, not hidden (`_` or `.` names).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = ObjectPath::from(prefix.trim_end_matches('/'));
        let objects: Vec<ObjectMeta> = self
            .lake
            .store
            .list(Some(&prefix))
            .try_filter(|meta| futures::future::ready(is_data_file(meta)))
            .try_collect()
            .await?;
        Ok(objects)
    }
}

/// Whether a listed object is a data file: `.parquet`, not empty, not hidden (`_` or `.` names).
fn is_data_file(meta: &ObjectMeta) -> bool {
    let name = meta.location.filename().unwrap_or_default();
    meta.size > 0 && name.ends_with(".parquet") && !name.starts_with('_') && !name.starts_with('.')
}

/// Keeps in `listed` the files `before` gained after sequence `started` (events that arrived
/// while the listing ran) when their partition is still visible.
fn merge_newer(listed: &mut TableFiles, before: &TableFiles, started: u64) {
    for (values, partition) in &before.partitions {
        for entry in partition
            .files
            .values()
            .filter(|entry| entry.added > started)
        {
            if let Some(target) = listed.partitions.get_mut(values) {
                Arc::make_mut(target)
                    .files
                    .entry(entry.meta.location.clone())
                    .or_insert_with(|| entry.clone());
            }
        }
        if let Some(target) = listed.partitions.get_mut(values) {
            keep_read_statistics(Arc::make_mut(target), partition);
        }
    }
}
