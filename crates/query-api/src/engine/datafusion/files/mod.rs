//! The visible files of every table, kept in memory so no query lists the lake.
//!
//! The index follows the [`CatalogView`]: a partition that becomes visible is listed once (a whole
//! table at once when many are new), a partition that disappears or moves to another location is
//! dropped or listed again. Files committed to a visible partition arrive as `lake.commits`
//! events ([`FileIndex::add_committed`]); events for a partition the catalog does not list yet
//! are remembered as pending, so the catalog is asked about it at once — its files are listed
//! when it becomes visible. Every `query.relist_interval` everything is listed again (a safety
//! net for missed events and deleted files), keeping files that events added meanwhile.
//!
//! When compaction moves a partition to a new generation, the new location is listed, and files
//! the old entry showed whose Kafka range no new file covers (a late file committed just before
//! the swap, whose copy into the generation is on its way) stay visible until their copy arrives
//! under the same name: rows once visible never disappear in a swap.
//!
//! Readers take an [`IndexSnapshot`] (cheap: `Arc`s) and see one consistent set of files. Each
//! file's Parquet footer is read once in the background into its [`Statistics`] (row counts,
//! min/max), which also warms DataFusion's metadata cache.
//!
//! Files:
//! - `mod.rs`: the index, the snapshot it publishes (tables, partitions, files) and how a file
//!   enters a table;
//! - `listing.rs`: listing the lake as the catalog changes (new, moved and vanished partitions)
//!   and the periodic relist;
//! - `committed.rs`: files added by `lake.commits` events, and partitions noted as pending;
//! - `carry_over.rs`: files kept visible when compaction moves a partition to a new generation;
//! - `layout.rs`: which partition a lake key belongs to (registered or `key=value/` paths);
//! - `statistics.rs`: Parquet footers read in the background into [`Statistics`].

mod carry_over;
mod committed;
mod layout;
mod listing;
mod statistics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::{ScalarValue, Statistics};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;
use stockstream_common::catalog::arrow_type;
use stockstream_common::sync::RwLockExt;

use super::footers::LakeFooters;
use super::store::LakeObjectStore;
use crate::catalog::{CatalogTable, CatalogView, PartitionDef, Partitions, TableDef};
use crate::error::{Error, Result};

/// A data file and what is known about it.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Lake-relative location, size, modification time.
    pub meta: ObjectMeta,
    /// Statistics as the table sees the file, once its footer is read: the footer's columns,
    /// then the partition columns (`statistics.rs`). Every query's plan shares them.
    pub statistics: Option<Arc<Statistics>>,
    /// Index sequence number when the file was added (re-listing keeps newer entries).
    added: u64,
}

/// A visible partition and its files.
#[derive(Debug, Clone)]
pub struct PartitionFiles {
    /// The catalogued partition.
    pub def: PartitionDef,
    /// Its values, typed like the partition columns.
    pub values: Vec<ScalarValue>,
    /// Files by location.
    pub files: BTreeMap<ObjectPath, FileEntry>,
}

/// A table with its schema and visible partitions.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// Catalog definition.
    pub def: Arc<TableDef>,
    /// Columns of the files.
    pub file_schema: SchemaRef,
    /// File columns followed by the partition columns, as queries see the table.
    pub schema: SchemaRef,
    /// Partition columns.
    pub partition_fields: Vec<Arc<Field>>,
    /// Which partitions are visible.
    pub visibility: Partitions,
    /// Visible partitions with files, by values.
    pub partitions: BTreeMap<Vec<String>, Arc<PartitionFiles>>,
    /// Why the table cannot be read (a column type the engine cannot read, a location outside
    /// the lake); queries of it fail with this message.
    pub unreadable: Option<String>,
}

impl TableFiles {
    /// Number of files in visible partitions.
    pub fn file_count(&self) -> usize {
        self.partitions
            .values()
            .map(|partition| partition.files.len())
            .sum()
    }
}

/// One consistent view of every table's files.
#[derive(Debug, Clone, Default)]
pub struct IndexSnapshot {
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<TableFiles>>,
}

impl IndexSnapshot {
    /// Visible files of every table.
    pub fn file_count(&self) -> usize {
        self.tables.values().map(|table| table.file_count()).sum()
    }

    /// Visible files whose footer has not been read yet.
    pub fn files_without_statistics(&self) -> usize {
        self.tables
            .values()
            .flat_map(|table| table.partitions.values())
            .flat_map(|partition| partition.files.values())
            .filter(|entry| entry.statistics.is_none())
            .count()
    }
}

/// The visible files of the lake, kept current.
#[derive(Debug)]
pub struct FileIndex {
    lake: LakeObjectStore,
    catalog: CatalogView,
    footers: Arc<LakeFooters>,
    current: RwLock<Arc<IndexSnapshot>>,
    writer: tokio::sync::Mutex<()>,
    sequence: AtomicU64,
    stats_wanted: tokio::sync::Notify,
}

impl FileIndex {
    /// An empty index over `lake`, following `catalog`; footers are read through `footers`.
    pub(crate) fn new(
        lake: LakeObjectStore,
        catalog: CatalogView,
        footers: Arc<LakeFooters>,
    ) -> Self {
        Self {
            lake,
            catalog,
            footers,
            current: RwLock::new(Arc::default()),
            writer: tokio::sync::Mutex::new(()),
            sequence: AtomicU64::new(0),
            stats_wanted: tokio::sync::Notify::new(),
        }
    }

    /// The lake's footers, as scans read them.
    pub(crate) fn footers(&self) -> &Arc<LakeFooters> {
        &self.footers
    }

    /// The current files of every table.
    pub fn snapshot(&self) -> Arc<IndexSnapshot> {
        self.current.read_locked().clone()
    }

    fn publish(&self, snapshot: IndexSnapshot) {
        let next = Arc::new(snapshot);
        let previous = std::mem::replace(&mut *self.current.write_locked(), next.clone());
        forget_footers(self.footers.cache().as_ref(), &previous, &next);
        self.stats_wanted.notify_one();
    }

    /// Drops cached footers of files no longer visible, if the cache holds more footers than
    /// there are visible files (so at least one is stale): [`forget_footers`] drops them as the
    /// index changes, but a footer being read while its file left the index (by the statistics
    /// loader or a query planned just before) is cached after that. Returns how many were
    /// dropped.
    pub fn forget_stale_footers(&self) -> usize {
        let cache = self.footers.cache();
        let snapshot = self.snapshot();
        if cache.len() <= snapshot.file_count() {
            return 0;
        }
        let visible: std::collections::HashSet<&ObjectPath> = snapshot
            .tables
            .values()
            .flat_map(|table| table.partitions.values())
            .flat_map(|partition| partition.files.keys())
            .collect();
        let mut dropped = 0;
        for location in cache.list_entries().into_keys() {
            if !visible.contains(&location) && cache.remove(&location).is_some() {
                dropped += 1;
            }
        }
        dropped
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Drops from DataFusion's footer cache the files `before` showed that `after` no longer does
/// (compaction replaced them, retention or a relist removed them, a partition left the
/// catalog). Without this the cache kept them until its byte limit evicted them, so its memory
/// followed every file the API had ever read rather than the lake as it is. Partitions and tables
/// the new snapshot shares with the old one are skipped without looking at their files.
fn forget_footers(cache: &FileMetadataCache, before: &IndexSnapshot, after: &IndexSnapshot) {
    for (name, table) in &before.tables {
        let now = after.tables.get(name);
        if now.is_some_and(|now| Arc::ptr_eq(now, table)) {
            continue;
        }
        for (values, partition) in &table.partitions {
            let current = now.and_then(|now| now.partitions.get(values));
            if current.is_some_and(|current| Arc::ptr_eq(current, partition)) {
                continue;
            }
            for location in partition.files.keys() {
                if !current.is_some_and(|current| current.files.contains_key(location)) {
                    cache.remove(location);
                }
            }
        }
    }
}

/// The table with its schema and no partitions; `unreadable` set when it cannot be read.
pub(crate) fn empty_table(table: &CatalogTable) -> TableFiles {
    let fields = |columns: &[stockstream_common::catalog::Column]| -> std::result::Result<Vec<Arc<Field>>, String> {
        columns
            .iter()
            .map(|column| {
                arrow_type(&column.data_type)
                    .map(|data_type| Arc::new(Field::new(&column.name, data_type, true)))
                    .ok_or_else(|| {
                        format!(
                            "table {}: column {} has type {}, which the embedded engine cannot read",
                            table.def.name, column.name, column.data_type
                        )
                    })
            })
            .collect()
    };
    let (file_fields, partition_fields, mut unreadable) = match (
        fields(&table.def.columns),
        fields(&table.def.partition_keys),
    ) {
        (Ok(file), Ok(partition)) => (file, partition, None),
        (Err(message), _) | (_, Err(message)) => (Vec::new(), Vec::new(), Some(message)),
    };
    if unreadable.is_none() && table.def.lake_location.is_none() {
        unreadable = Some(format!(
            "table {} is at {}, outside the lake this engine reads",
            table.def.name, table.def.location_url
        ));
    }
    let file_schema = Arc::new(Schema::new(file_fields.clone()));
    let schema = Arc::new(Schema::new(
        file_fields
            .into_iter()
            .chain(partition_fields.iter().cloned())
            .collect::<Vec<_>>(),
    ));
    TableFiles {
        def: table.def.clone(),
        file_schema,
        schema,
        partition_fields,
        visibility: table.partitions.clone(),
        partitions: BTreeMap::new(),
        unreadable,
    }
}

fn typed_values(table: &TableFiles, values: &[String]) -> Result<Vec<ScalarValue>> {
    if values.len() != table.partition_fields.len() {
        return Err(Error::Execution(format!(
            "table {}: a partition has {} values for {} keys",
            table.def.name,
            values.len(),
            table.partition_fields.len()
        )));
    }
    table
        .partition_fields
        .iter()
        .zip(values)
        .map(|(field, value)| {
            ScalarValue::try_from_string(value.clone(), field.data_type()).map_err(|error| {
                Error::Execution(format!(
                    "table {}: partition value `{value}` of {} is not a {}: {error}",
                    table.def.name,
                    field.name(),
                    field.data_type()
                ))
            })
        })
        .collect()
}

fn insert_file(table: &mut TableFiles, def: PartitionDef, entry: FileEntry) -> Result<()> {
    if !table.partitions.contains_key(&def.values) {
        let values = typed_values(table, &def.values)?;
        table.partitions.insert(
            def.values.clone(),
            Arc::new(PartitionFiles {
                def: def.clone(),
                values,
                files: BTreeMap::new(),
            }),
        );
    }
    if let Some(partition) = table.partitions.get_mut(&def.values) {
        let partition = Arc::make_mut(partition);
        carry_over::replace_carried_original(partition, &entry);
        partition
            .files
            .entry(entry.meta.location.clone())
            .or_insert(entry);
    }
    Ok(())
}
