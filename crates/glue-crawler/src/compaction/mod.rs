//! Lake maintenance: compaction of small files into generations, and retention.
//!
//! A sink that flushes every second writes one small file per partition path per flush; every
//! engine slows down with the file count. A round of compaction (run by the catalog service every
//! `lake.compaction.interval`, or by the one-shot `compact` command):
//!
//! 1. **recovers** what a killed run left: generations never swapped are deleted, a swap whose
//!    bookkeeping did not finish is finished ([`generation`]);
//! 2. **deletes** the files of swaps whose grace period is over, except files the sink's latest
//!    intents name;
//! 3. **drops** partitions older than `lake.retention.max_age` from the catalog, then (after the
//!    grace period) their files;
//! 4. **picks** partitions with enough small files, quiet for `min_quiet`, with no flush in
//!    progress ([`plan`]);
//! 5. for each, **merges** its files per Kafka partition into a new generation
//!    (`<table>/_compacted/<path>/g<id>/`), writes the manifest, copies in late files, and **swaps**
//!    the catalog's location in one step ([`PartitionCatalog::relocate`]).
//!
//! Readers plan against one catalog snapshot, so they read the old files (all kept until the
//! grace period ends) or the new ones (all written before the swap): never both, never neither.
//! See `docs/compaction.md`.
//!
//! Files: `mod.rs` (the round), `catalog.rs` (the [`PartitionCatalog`] trait and the local
//! catalog), `plan.rs`, `merge.rs`, `generation.rs` (manifest, marker, trash), `lease.rs`
//! (one maintainer at a time), `late.rs` (late files copied into generations), `retention.rs`.

mod catalog;
mod generation;
mod late;
mod lease;
mod merge;
mod plan;
mod retention;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use stockstream_common::lake::{
    COMPACTED_DIR, CompactionConfig, FileRange, LakeStore, ObjectMeta, latest_intents,
};

pub use self::catalog::{CatalogPartition, LocalPartitions, PartitionCatalog};
pub use self::late::{Announcer, Generations, copy_late_files};
pub use self::lease::{Lease, LeaseRecord};

use self::generation::{
    FileRecord, MANIFEST, Manifest, SWAPPED, TrashEntry, encode, read, trash_key, trash_prefix,
};
use self::plan::{Candidate, Skip, is_data_file, judge, visible_files};
use crate::error::{Error, Result};
use crate::metrics;

/// What one partition's compaction did.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    /// Table.
    pub table: String,
    /// Partition path.
    pub path: String,
    /// The new location.
    pub generation: String,
    /// Files merged.
    pub files_in: usize,
    /// Files written.
    pub files_out: usize,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Rows in the merged files.
    pub rows: u64,
    /// Late files copied in just before the swap.
    pub late_files: usize,
    /// Time taken, in seconds.
    pub seconds: f64,
}

/// Files and bytes a table shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableFiles {
    /// Data files readers see.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What a round did.
#[derive(Debug, Default, Serialize)]
pub struct RoundReport {
    /// Partitions compacted.
    pub compacted: Vec<PartitionReport>,
    /// Partitions that qualify but wait for a later round (`max_partitions`).
    pub waiting: usize,
    /// Partitions left alone for a reason worth knowing (`table/path: reason`).
    pub skipped: Vec<String>,
    /// Generations whose swap a killed run left unfinished, now finished.
    pub recovered: Vec<String>,
    /// Generations a killed run left before their swap, now deleted.
    pub discarded: Vec<String>,
    /// Replaced files deleted after their grace period.
    pub files_deleted: u64,
    /// Replaced files kept because a latest sink intent names them.
    pub files_kept_for_sink: u64,
    /// Partitions dropped by retention.
    pub dropped: Vec<String>,
    /// Age of the oldest file of a partition that qualifies but waits, in seconds.
    pub lag_seconds: f64,
    /// Files and bytes per table, as readers see them before this round's swaps.
    pub tables: BTreeMap<String, TableFiles>,
    /// Nothing was written (planning only).
    pub dry_run: bool,
}

impl RoundReport {
    /// Rows merged in the round.
    pub fn rows(&self) -> u64 {
        self.compacted.iter().map(|partition| partition.rows).sum()
    }
}

/// Compacts partitions and applies retention, one round at a time.
#[derive(Debug)]
pub struct Compactor {
    store: Arc<dyn LakeStore>,
    config: CompactionConfig,
    generations: Generations,
}

/// Everything a round needs exclusive access to.
pub struct Exclusive<'a> {
    /// The catalog whose locations are swapped.
    pub catalog: &'a mut dyn PartitionCatalog,
    /// The maintenance lease, confirmed before each catalog change.
    pub lease: &'a mut Lease,
    /// Held while the catalog or a generation changes (the service's event loop takes it too).
    pub lock: &'a tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Exclusive<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Exclusive")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Compactor {
    /// A compactor over `store`; `generations` is kept current with every swap.
    pub fn new(
        store: Arc<dyn LakeStore>,
        config: CompactionConfig,
        generations: Generations,
    ) -> Self {
        Self {
            store,
            config,
            generations,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CompactionConfig {
        &self.config
    }

    /// Runs one round. With `dry_run` only plans: recovery, deletions and swaps are reported as
    /// what would be compacted.
    pub async fn round(&self, exclusive: Exclusive<'_>, dry_run: bool) -> Result<RoundReport> {
        let Exclusive {
            catalog,
            lease,
            lock,
        } = exclusive;
        let now = Utc::now();
        let mut report = RoundReport {
            dry_run,
            ..RoundReport::default()
        };
        let mut partitions = catalog.partitions().await?;
        self.generations.reset(&partitions);
        let latest = latest_intents(self.store.as_ref()).await?;
        let protected: HashSet<String> = latest
            .iter()
            .flat_map(|intent| intent.files.iter().map(|file| file.object_key.clone()))
            .collect();
        let mut in_progress = HashSet::new();
        for intent in &latest {
            if !intent.is_complete(self.store.as_ref()).await? {
                in_progress.extend(intent.files.iter().map(|file| file.object_key.clone()));
            }
        }
        if !dry_run {
            self.recover(&partitions, &mut report).await?;
            self.empty_trash(&partitions, &protected, now, &mut report)
                .await?;
            if let Some(max_age) = self.config.retention {
                let _guard = lock.lock().await;
                self.confirm(lease).await?;
                self.retain(catalog, &mut partitions, max_age, now, &mut report)
                    .await?;
            }
        }

        // Plan from one listing per table.
        let mut by_directory: HashMap<String, Vec<ObjectMeta>> = HashMap::new();
        let tables: HashSet<String> = partitions
            .iter()
            .map(|partition| partition.table_location.clone())
            .collect();
        for table_location in &tables {
            for meta in self.store.list(table_location).await? {
                let directory = meta
                    .key
                    .rsplit_once('/')
                    .map(|(directory, _)| format!("{directory}/"))
                    .unwrap_or_default();
                by_directory.entry(directory).or_default().push(meta);
            }
        }
        let mut candidates: Vec<Candidate> = Vec::new();
        for partition in &partitions {
            let home = by_directory
                .get(&partition.home())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let generation = if partition.current_generation().is_some() {
                by_directory
                    .get(&partition.location)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            } else {
                &[]
            };
            let label = format!("{}/{}", partition.table, partition.path);
            let inputs = match visible_files(partition, home, generation) {
                Ok(inputs) => inputs,
                Err(skip) => {
                    report.skipped.push(format!("{label}: {}", describe(&skip)));
                    continue;
                }
            };
            let table = report.tables.entry(partition.table.clone()).or_default();
            table.files += inputs.len() as u64;
            table.bytes += inputs.iter().map(|input| input.size).sum::<u64>();
            match judge(partition, inputs, &in_progress, &self.config, now) {
                Ok(candidate) => candidates.push(candidate),
                Err(Skip::Compact | Skip::Busy) => {}
                Err(skip) => report.skipped.push(format!("{label}: {}", describe(&skip))),
            }
        }
        candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.inputs.len()));
        let waiting = candidates.split_off(candidates.len().min(self.config.max_partitions));
        report.waiting = waiting.len();
        report.lag_seconds = waiting
            .iter()
            .filter_map(|candidate| candidate.oldest)
            .map(|oldest| (now - oldest).num_milliseconds().max(0) as f64 / 1000.0)
            .fold(0.0, f64::max);
        for (table, files) in &report.tables {
            metrics::lake_files(table, files.files, files.bytes);
        }
        metrics::compaction_lag(report.lag_seconds);
        if dry_run {
            for candidate in candidates {
                report.compacted.push(PartitionReport {
                    table: candidate.partition.table.clone(),
                    path: candidate.partition.path.clone(),
                    generation: String::new(),
                    files_in: candidate.inputs.len(),
                    files_out: plan::group(&candidate.inputs, self.config.target_file_bytes).len(),
                    bytes_in: candidate.inputs.iter().map(|input| input.size).sum(),
                    bytes_out: 0,
                    rows: 0,
                    late_files: 0,
                    seconds: 0.0,
                });
            }
            return Ok(report);
        }
        for candidate in candidates {
            let compacted = self.compact(candidate, catalog, lease, lock).await?;
            if let Some(compacted) = compacted {
                metrics::compacted(compacted.files_in as u64, compacted.bytes_out);
                report.compacted.push(compacted);
            }
        }
        Ok(report)
    }

    async fn confirm(&self, lease: &mut Lease) -> Result<()> {
        if lease.renew(self.store.as_ref()).await? {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// Merges one partition into a new generation and swaps the catalog to it.
    async fn compact(
        &self,
        candidate: Candidate,
        catalog: &mut dyn PartitionCatalog,
        lease: &mut Lease,
        lock: &tokio::sync::Mutex<()>,
    ) -> Result<Option<PartitionReport>> {
        let started = Instant::now();
        let partition = &candidate.partition;
        let id = (Utc::now().timestamp_millis().max(0) as u64)
            .max(partition.current_generation().map_or(0, |id| id + 1));
        let location = partition.generation_location(id);
        let mut outputs = Vec::new();
        let mut rows = 0;
        for (span, files) in plan::group(&candidate.inputs, self.config.target_file_bytes) {
            let mut contents = Vec::with_capacity(files.len());
            for input in &files {
                match self.store.get(&input.key).await {
                    Ok(bytes) => contents.push((input.key.clone(), bytes)),
                    // Deleted under us (a crawl, a person): try again next round.
                    Err(stockstream_common::Error::NotFound { key }) => {
                        tracing::warn!(%key, "a file to compact vanished; the partition waits for the next round");
                        self.delete_prefix(&location).await?;
                        return Ok(None);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            let (bytes, count) = if contents.len() == 1 {
                (contents.remove(0).1, None)
            } else {
                let sort = self.config.sort_by_trade_date;
                let (bytes, count) =
                    tokio::task::spawn_blocking(move || merge::merge_files(&contents, sort))
                        .await
                        .map_err(|join| Error::Merge(join.to_string()))??;
                (bytes, Some(count))
            };
            rows += count.unwrap_or(0);
            let key = format!("{location}{}", span.file_name());
            let size = bytes.len() as u64;
            self.store.put(&key, bytes).await?;
            outputs.push(FileRecord {
                key,
                size,
                rows: count,
            });
        }
        let mut manifest = Manifest {
            table: partition.table.clone(),
            path: partition.path.clone(),
            previous_location: partition.location.clone(),
            created_at: Utc::now(),
            inputs: candidate
                .inputs
                .iter()
                .map(|input| FileRecord {
                    key: input.key.clone(),
                    size: input.size,
                    rows: None,
                })
                .collect(),
            outputs,
        };
        self.store
            .put(
                &format!("{location}{MANIFEST}"),
                encode("a manifest", &manifest)?,
            )
            .await?;

        // The swap: nothing else changes this partition's files or location meanwhile.
        let _guard = lock.lock().await;
        self.confirm(lease).await?;
        let home = self.store.list(&partition.home()).await?;
        let current = match partition.current_generation() {
            Some(_) => self.store.list(&partition.location).await?,
            None => Vec::new(),
        };
        let visible = match visible_files(partition, &home, &current) {
            Ok(visible) => visible,
            Err(skip) => {
                tracing::warn!(partition = %partition.path, reason = describe(&skip), "partition changed before its swap; the generation is discarded");
                self.delete_prefix(&location).await?;
                return Ok(None);
            }
        };
        // Late: what the partition shows now that no merged file covers. By range, not by key: a
        // late file copied into the current generation after the inputs were listed has a new key
        // but rows that a merged file already holds (from its original, an input).
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
            self.store
                .put(
                    &format!("{location}{MANIFEST}"),
                    encode("a manifest", &manifest)?,
                )
                .await?;
        }
        catalog.relocate(partition, &location).await?;
        self.generations.set(partition, Some(&location));
        // The home listing taken under the lock serves the trash entry too: files the sink adds
        // since are not covered by this generation.
        self.finish_swap(partition, &location, &manifest, Some(home))
            .await?;
        let report = PartitionReport {
            table: partition.table.clone(),
            path: partition.path.clone(),
            generation: location,
            files_in: candidate.inputs.len(),
            files_out: manifest.outputs.len(),
            bytes_in: candidate.inputs.iter().map(|input| input.size).sum(),
            bytes_out: manifest.outputs.iter().map(|output| output.size).sum(),
            rows,
            late_files,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            table = %report.table,
            partition = %report.path,
            files_in = report.files_in,
            files_out = report.files_out,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            late_files,
            "partition compacted"
        );
        Ok(Some(report))
    }

    /// After a swap to `location`: the replaced files go to the trash (the previous generation
    /// whole, and every home file a new file covers), then the generation is marked swapped.
    async fn finish_swap(
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

    /// Finishes or undoes what a killed run left in the generations of `partitions`.
    async fn recover(
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
            let mut generations: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
            for meta in self.store.list(&root).await? {
                if let Some((directory, _)) = meta.key.rsplit_once('/') {
                    generations
                        .entry(format!("{directory}/"))
                        .or_default()
                        .push(meta);
                }
            }
            for (location, objects) in generations {
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
                let swapped = objects.iter().any(|meta| meta.key.ends_with(SWAPPED));
                if partition.location == location {
                    if !swapped {
                        let manifest: Option<Manifest> =
                            read(self.store.as_ref(), &format!("{location}{MANIFEST}")).await?;
                        let manifest = manifest.unwrap_or_else(|| Manifest {
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
                        });
                        self.finish_swap(partition, &location, &manifest, None)
                            .await?;
                        report.recovered.push(location);
                    }
                } else if !swapped {
                    for meta in &objects {
                        self.store.delete(&meta.key).await?;
                    }
                    report.discarded.push(location);
                } else if !objects.iter().any(is_data_file) {
                    // Superseded and emptied by its trash entry: only the records remain.
                    for meta in &objects {
                        self.store.delete(&meta.key).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the files of trash entries whose grace period is over.
    async fn empty_trash(
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

    /// Drops partitions whose newest possible trade date is older than `max_age`.
    async fn retain(
        &self,
        catalog: &mut dyn PartitionCatalog,
        partitions: &mut Vec<CatalogPartition>,
        max_age: std::time::Duration,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Result<()> {
        let cutoff = (now - chrono::Duration::from_std(max_age).unwrap_or_default()).date_naive();
        let (old, kept): (Vec<CatalogPartition>, Vec<CatalogPartition>) =
            std::mem::take(partitions)
                .into_iter()
                .partition(|partition| {
                    let names: Vec<String> = partition
                        .path
                        .split('/')
                        .filter_map(|segment| {
                            segment.split_once('=').map(|(name, _)| name.to_string())
                        })
                        .collect();
                    retention::newest_date(&names, &partition.values)
                        .is_some_and(|newest| newest < cutoff)
                });
        *partitions = kept;
        if old.is_empty() {
            return Ok(());
        }
        catalog.drop_partitions(&old).await?;
        for partition in &old {
            self.generations.set(partition, None);
            let mut keys: Vec<String> = self
                .home_files(partition)
                .await?
                .into_iter()
                .map(|meta| meta.key)
                .collect();
            keys.extend(
                self.store
                    .list(&partition.generations_prefix())
                    .await?
                    .into_iter()
                    .map(|meta| meta.key),
            );
            let entry = TrashEntry {
                reason: format!("retention: older than {}", humanize(max_age)),
                not_before: now + chrono::Duration::from_std(self.config.grace).unwrap_or_default(),
                keys,
            };
            let key = trash_key(&format!(
                "retention:{}:{}",
                partition.home(),
                now.timestamp_millis()
            ));
            self.store
                .put(&key, encode("a trash entry", &entry)?)
                .await?;
            report
                .dropped
                .push(format!("{}/{}", partition.table, partition.path));
        }
        metrics::partitions_dropped(old.len() as u64);
        tracing::info!(partitions = old.len(), %cutoff, "retention dropped partitions");
        Ok(())
    }

    /// The objects directly in `partition`'s own directory (deeper folders are not its own).
    async fn home_files(&self, partition: &CatalogPartition) -> Result<Vec<ObjectMeta>> {
        let listed = self.store.list(&partition.home()).await?;
        Ok(direct_children(partition, listed))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        for meta in self.store.list(prefix).await? {
            self.store.delete(&meta.key).await?;
        }
        Ok(())
    }
}

/// The objects of a listing of `partition`'s home directory that lie directly in it.
fn direct_children(partition: &CatalogPartition, listed: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
    let home = partition.home();
    listed
        .into_iter()
        .filter(|meta| {
            meta.key
                .strip_prefix(&home)
                .is_some_and(|name| !name.contains('/'))
        })
        .collect()
}

fn humanize(duration: std::time::Duration) -> String {
    let days = duration.as_secs() / 86_400;
    if days > 0 {
        format!("{days} days")
    } else {
        format!("{} s", duration.as_secs())
    }
}

fn describe(skip: &Skip) -> String {
    match skip {
        Skip::Compact => "compact enough".to_string(),
        Skip::Busy => "written to within min_quiet".to_string(),
        Skip::FlushInProgress(key) => format!("a sink flush naming {key} is in progress"),
        Skip::ForeignFile(key) => format!(
            "{key} is not named <topic>+<partition>+<first>+<last>.parquet, so its rows cannot be placed"
        ),
        Skip::Overlap(a, b) => format!("{a} and {b} hold overlapping Kafka ranges"),
    }
}
