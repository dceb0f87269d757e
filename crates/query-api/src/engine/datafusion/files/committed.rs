//! Files committed to the lake, as `lake.commits` events announce them: added at once to a visible
//! partition; a partition the catalog does not list yet is noted as pending in the catalog view,
//! so the catalog is asked about it at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;
use stockstream_common::events::LakeCommitEvent;

use super::layout::partition_path;
use super::{FileEntry, FileIndex, insert_file};
use crate::catalog::{PartitionDef, Partitions};
use crate::error::{Error, Result};

impl FileIndex {
    /// Adds the files of `lake.commits` events whose partitions are visible; the others are
    /// noted as pending in the catalog view.
    pub async fn add_committed(&self, events: &[LakeCommitEvent]) -> Result<()> {
        let _writer = self.writer.lock().await;
        let previous = self.snapshot();
        let mut next = (*previous).clone();
        let mut pending: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
        let sequence = self.next_sequence();
        for event in events {
            let Some(table) = next.tables.get(&event.table) else {
                pending
                    .entry(event.table.clone())
                    .or_default()
                    .insert(event_values(event));
                continue;
            };
            let values = event_values(event);
            let def = match &table.visibility {
                Partitions::Registered(registered) => registered.get(&values).cloned(),
                Partitions::Projected(projection) => table
                    .def
                    .lake_location
                    .as_deref()
                    .filter(|_| projection.admits(&values))
                    .map(|location| PartitionDef {
                        location: format!("{location}{}/", partition_path(&table.def, &values)),
                        values: values.clone(),
                    }),
            };
            let Some(def) = def else {
                pending
                    .entry(event.table.clone())
                    .or_default()
                    .insert(values);
                continue;
            };
            if !event.object_key.starts_with(&def.location) {
                // Committed below another location than the catalogued one: not visible.
                continue;
            }
            let meta = ObjectMeta {
                location: ObjectPath::from(event.object_key.as_str()),
                last_modified: event.committed_at,
                size: event.size_bytes,
                e_tag: None,
                version: None,
            };
            let table = Arc::make_mut(next.tables.get_mut(&event.table).ok_or_else(|| {
                Error::Internal(format!("table {} vanished from the index", event.table))
            })?);
            insert_file(
                table,
                def,
                FileEntry {
                    meta,
                    statistics: None,
                    added: sequence,
                },
            )?;
        }
        self.publish(next);
        for (table, partitions) in pending {
            self.catalog.note_pending(&table, partitions);
        }
        Ok(())
    }
}

/// The partition values an event names, in key order.
fn event_values(event: &LakeCommitEvent) -> Vec<String> {
    event
        .partition
        .iter()
        .map(|value| value.value.clone())
        .collect()
}
