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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;
use stockstream_common::catalog::arrow_type;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::{COMPACTED_DIR, FileRange, hive_escape, hive_unescape};

use super::store::LakeObjectStore;
use crate::catalog::{
    CatalogSnapshot, CatalogTable, CatalogView, PartitionDef, Partitions, TableDef,
};
use crate::error::{Error, Result};

/// Partitions to list one by one; more new partitions at once list the whole table.
const LIST_ONE_BY_ONE: usize = 16;
/// Footers read at once by the statistics loader.
const FOOTER_CONCURRENCY: usize = 16;
/// A round of footer reading this large is logged at `info` (the first after start-up, say);
/// the few files of each commit at `debug`.
const LOG_FOOTERS_FROM: usize = 1000;

/// A data file and what is known about it.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Lake-relative location, size, modification time.
    pub meta: ObjectMeta,
    /// Statistics from the footer, once read.
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
    runtime: Arc<RuntimeEnv>,
    current: RwLock<Arc<IndexSnapshot>>,
    writer: tokio::sync::Mutex<()>,
    sequence: AtomicU64,
    stats_wanted: tokio::sync::Notify,
}

impl FileIndex {
    /// An empty index over `lake`, following `catalog`; footers are cached in `runtime`.
    pub fn new(lake: LakeObjectStore, catalog: CatalogView, runtime: Arc<RuntimeEnv>) -> Self {
        Self {
            lake,
            catalog,
            runtime,
            current: RwLock::new(Arc::default()),
            writer: tokio::sync::Mutex::new(()),
            sequence: AtomicU64::new(0),
            stats_wanted: tokio::sync::Notify::new(),
        }
    }

    /// The current files of every table.
    pub fn snapshot(&self) -> Arc<IndexSnapshot> {
        self.current
            .read()
            .map(|current| current.clone())
            .unwrap_or_default()
    }

    fn publish(&self, snapshot: IndexSnapshot) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(snapshot);
        }
        self.stats_wanted.notify_one();
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

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

    /// Reads the footers of files without statistics, until `shutdown`; each round starts when
    /// files were added.
    pub async fn load_statistics(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.stats_wanted.notified() => {}
            }
            if let Err(error) = self.load_missing_statistics().await {
                tracing::warn!(%error, "reading Parquet footers for statistics failed");
            }
        }
    }

    async fn load_missing_statistics(&self) -> Result<()> {
        let snapshot = self.snapshot();
        let state = SessionStateBuilder::new()
            .with_runtime_env(self.runtime.clone())
            .build();
        let format = ParquetFormat::default();
        let mut missing = Vec::new();
        for (name, table) in &snapshot.tables {
            for partition in table.partitions.values() {
                for entry in partition
                    .files
                    .values()
                    .filter(|entry| entry.statistics.is_none())
                {
                    missing.push((name.clone(), table.file_schema.clone(), entry.meta.clone()));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let store = self.lake.store.clone();
        let loaded: Vec<(String, ObjectPath, Statistics)> = futures::stream::iter(missing)
            .map(|(table, schema, meta)| {
                let state = &state;
                let format = &format;
                let store = &store;
                async move {
                    let statistics = format.infer_stats(state, store, schema, &meta).await;
                    statistics.map(|statistics| (table, meta.location, statistics))
                }
            })
            .buffer_unordered(FOOTER_CONCURRENCY)
            .filter_map(|outcome| async move {
                match outcome {
                    Ok(loaded) => Some(loaded),
                    Err(error) => {
                        tracing::debug!(%error, "footer unreadable (file removed?)");
                        None
                    }
                }
            })
            .collect()
            .await;
        let read = loaded.len();
        let _writer = self.writer.lock().await;
        let mut next = (*self.snapshot()).clone();
        for (table, location, statistics) in loaded {
            let Some(files) = next.tables.get_mut(&table) else {
                continue;
            };
            let files = Arc::make_mut(files);
            let statistics = Arc::new(statistics);
            for partition in files.partitions.values_mut() {
                if partition.files.contains_key(&location) {
                    let partition = Arc::make_mut(partition);
                    if let Some(entry) = partition.files.get_mut(&location) {
                        entry.statistics = Some(statistics.clone());
                    }
                    break;
                }
            }
        }
        let still_missing = next.files_without_statistics();
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(next);
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if read >= LOG_FOOTERS_FROM {
            tracing::info!(
                files = read,
                missing = still_missing,
                elapsed_ms,
                "footers read"
            );
        } else {
            tracing::debug!(
                files = read,
                missing = still_missing,
                elapsed_ms,
                "footers read"
            );
        }
        Ok(())
    }
}

fn is_data_file(meta: &ObjectMeta) -> bool {
    let name = meta.location.filename().unwrap_or_default();
    meta.size > 0 && name.ends_with(".parquet") && !name.starts_with('_') && !name.starts_with('.')
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
        if partition.def.location.contains(COMPACTED_DIR) {
            // A late file's copy replaces the original carried over from before the swap.
            let name = entry
                .meta
                .location
                .filename()
                .unwrap_or_default()
                .to_string();
            partition.files.retain(|location, _| {
                *location == entry.meta.location || location.filename() != Some(name.as_str())
            });
        }
        partition
            .files
            .entry(entry.meta.location.clone())
            .or_insert(entry);
    }
    Ok(())
}

/// Keeps in `moved` (a partition listed at its new location) the files of `old` (its entry at the
/// previous location) whose Kafka range no file of the new location covers.
fn carry_over(moved: &mut PartitionFiles, old: &PartitionFiles) {
    let ranges: Vec<FileRange> = moved
        .files
        .keys()
        .filter_map(|location| FileRange::parse(location.filename()?))
        .collect();
    for (location, entry) in &old.files {
        let Some(range) = location.filename().and_then(FileRange::parse) else {
            continue;
        };
        if !ranges.iter().any(|covered| covered.overlaps(&range)) {
            moved.files.insert(location.clone(), entry.clone());
        }
    }
}

/// The registered partition whose location holds `key` (the deepest, as Athena reads prefixes).
fn owning_partition(wanted: &BTreeMap<String, PartitionDef>, key: &str) -> Option<PartitionDef> {
    let mut end = key.len();
    while let Some(slash) = key[..end].rfind('/') {
        if let Some(def) = wanted.get(&key[..=slash]) {
            return Some(def.clone());
        }
        end = slash;
    }
    None
}

/// The partition a file of a projected table belongs to, from its `key=value/` path segments.
fn projected_partition(def: &TableDef, location: &str, key: &str) -> Option<PartitionDef> {
    let relative = key.strip_prefix(location)?;
    let segments: Vec<&str> = relative.split('/').collect();
    let keys = &def.partition_keys;
    if segments.len() <= keys.len() {
        return None;
    }
    let mut values = Vec::with_capacity(keys.len());
    for (segment, column) in segments.iter().zip(keys) {
        let (name, value) = segment.split_once('=')?;
        if name != column.name {
            return None;
        }
        values.push(hive_unescape(value));
    }
    Some(PartitionDef {
        location: format!("{location}{}/", partition_path(def, &values)),
        values,
    })
}

fn partition_path(def: &TableDef, values: &[String]) -> String {
    def.partition_keys
        .iter()
        .zip(values)
        .map(|(key, value)| format!("{}={}", key.name, hive_escape(value)))
        .collect::<Vec<_>>()
        .join("/")
}

fn event_values(event: &LakeCommitEvent) -> Vec<String> {
    event
        .partition
        .iter()
        .map(|value| value.value.clone())
        .collect()
}

fn known_statistics(
    previous: &TableFiles,
    values: &[String],
    meta: &ObjectMeta,
) -> Option<Arc<Statistics>> {
    let entry = previous.partitions.get(values)?.files.get(&meta.location)?;
    (entry.meta.size == meta.size).then(|| entry.statistics.clone())?
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
        // Keep statistics already read.
        if let Some(target) = listed.partitions.get_mut(values) {
            let target = Arc::make_mut(target);
            for (location, entry) in &partition.files {
                if let Some(listed_entry) = target.files.get_mut(location)
                    && listed_entry.statistics.is_none()
                    && listed_entry.meta.size == entry.meta.size
                {
                    listed_entry.statistics = entry.statistics.clone();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_belong_to_the_deepest_catalogued_location() {
        let wanted = BTreeMap::from([(
            "quotes/symbol=HSI/year=1987/".to_string(),
            PartitionDef {
                values: vec!["HSI".into(), "1987".into()],
                location: "quotes/symbol=HSI/year=1987/".into(),
            },
        )]);
        let owner = owning_partition(&wanted, "quotes/symbol=HSI/year=1987/quotes+0+1+2.parquet");
        assert_eq!(
            owner.map(|def| def.values),
            Some(vec!["HSI".to_string(), "1987".to_string()])
        );
        assert!(owning_partition(&wanted, "quotes/symbol=HSI/year=1988/x.parquet").is_none());
    }
}
