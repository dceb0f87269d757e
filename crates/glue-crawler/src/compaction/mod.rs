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
//! Files: `mod.rs` (the round: its reports, its steps in order, the candidates planned from one
//! listing per table), `recover.rs` (step 1), `trash.rs` (step 2), `retention.rs` (step 3, and
//! the newest date a partition path allows), `plan.rs` (step 4: which partitions, how files are
//! grouped), `compact.rs` (step 5 for one partition: merged files and manifest), `merge.rs` (the
//! Parquet merge itself), `swap.rs` (the swap under the lock, late files, the trash entry and
//! marker after it), `catalog.rs` (the [`PartitionCatalog`] trait and the local catalog),
//! `generation.rs` (manifest, marker, trash entry formats), `lease.rs` (one maintainer at a
//! time), `late.rs` (late files the service copies into generations between rounds).

mod catalog;
mod compact;
mod generation;
mod late;
mod lease;
mod merge;
mod plan;
mod recover;
mod retention;
mod swap;
mod trash;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use stockstream_common::lake::{CompactionConfig, LakeStore, ObjectMeta, latest_intents};

pub use self::catalog::{CatalogPartition, LocalPartitions, PartitionCatalog};
pub use self::late::{Announcer, Generations, copy_late_files};
pub use self::lease::{Lease, LeaseRecord};

use self::plan::{Candidate, Skip, judge, visible_files};
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
    pub async fn round(&self, mut exclusive: Exclusive<'_>, dry_run: bool) -> Result<RoundReport> {
        let now = Utc::now();
        let mut report = RoundReport {
            dry_run,
            ..RoundReport::default()
        };
        let mut partitions = exclusive.catalog.partitions().await?;
        self.generations.reset(&partitions);
        let intents = self.sink_intents().await?;
        if !dry_run {
            self.clean_up(
                &mut exclusive,
                &mut partitions,
                &intents.protected,
                now,
                &mut report,
            )
            .await?;
        }
        let candidates = self
            .candidates(&partitions, &intents.in_progress, now, &mut report)
            .await?;
        let candidates = self.take_turns(candidates, now, &mut report);
        if dry_run {
            report
                .compacted
                .extend(candidates.iter().map(|candidate| self.planned(candidate)));
            return Ok(report);
        }
        for candidate in candidates {
            let compacted = self.compact(candidate, &mut exclusive).await?;
            if let Some(compacted) = compacted {
                metrics::compacted(compacted.files_in as u64, compacted.bytes_out);
                report.compacted.push(compacted);
            }
        }
        Ok(report)
    }

    /// The files the sink's latest intents name, and those of intents not yet complete.
    async fn sink_intents(&self) -> Result<SinkIntents> {
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
        Ok(SinkIntents {
            protected,
            in_progress,
        })
    }

    /// Recovery, the trash whose grace period is over, and retention (which removes the
    /// partitions it drops from `partitions`).
    async fn clean_up(
        &self,
        exclusive: &mut Exclusive<'_>,
        partitions: &mut Vec<CatalogPartition>,
        protected: &HashSet<String>,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Result<()> {
        self.recover(partitions, report).await?;
        self.empty_trash(partitions, protected, now, report).await?;
        if let Some(max_age) = self.config.retention {
            let _guard = exclusive.lock.lock().await;
            self.confirm(exclusive.lease).await?;
            self.retain(&mut *exclusive.catalog, partitions, max_age, now, report)
                .await?;
        }
        Ok(())
    }

    /// The partitions worth compacting, planned from one listing per table; counts what readers
    /// see per table and reports partitions left alone for a reason worth knowing.
    async fn candidates(
        &self,
        partitions: &[CatalogPartition],
        in_progress: &HashSet<String>,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Result<Vec<Candidate>> {
        let by_directory = self.list_by_directory(partitions).await?;
        let mut candidates: Vec<Candidate> = Vec::new();
        for partition in partitions {
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
            match judge(partition, inputs, in_progress, &self.config, now) {
                Ok(candidate) => candidates.push(candidate),
                Err(Skip::Compact | Skip::Busy) => {}
                Err(skip) => report.skipped.push(format!("{label}: {}", describe(&skip))),
            }
        }
        Ok(candidates)
    }

    /// Every object of the tables of `partitions`, by the directory that holds it.
    async fn list_by_directory(
        &self,
        partitions: &[CatalogPartition],
    ) -> Result<HashMap<String, Vec<ObjectMeta>>> {
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
        Ok(by_directory)
    }

    /// The candidates this round compacts (most files first, at most `max_partitions`); the
    /// others wait, and the age of their oldest file is the compaction lag. Records the metrics.
    fn take_turns(
        &self,
        mut candidates: Vec<Candidate>,
        now: DateTime<Utc>,
        report: &mut RoundReport,
    ) -> Vec<Candidate> {
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
        candidates
    }

    /// What compacting `candidate` would do, for a dry run.
    fn planned(&self, candidate: &Candidate) -> PartitionReport {
        PartitionReport {
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
        }
    }

    /// Fails with [`Error::LeaseLost`] unless the maintenance lease is still ours.
    async fn confirm(&self, lease: &mut Lease) -> Result<()> {
        if lease.renew(self.store.as_ref()).await? {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// The objects directly in `partition`'s own directory (deeper folders are not its own).
    async fn home_files(&self, partition: &CatalogPartition) -> Result<Vec<ObjectMeta>> {
        let listed = self.store.list(&partition.home()).await?;
        Ok(direct_children(partition, listed))
    }

    /// Deletes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        for meta in self.store.list(prefix).await? {
            self.store.delete(&meta.key).await?;
        }
        Ok(())
    }
}

/// What the sink's latest intents say about the files of the lake.
#[derive(Debug)]
struct SinkIntents {
    /// Files a latest intent names: its recovery checks them, so they are not deleted yet.
    protected: HashSet<String>,
    /// Files of an intent not yet complete: the flush may still be redone.
    in_progress: HashSet<String>,
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

/// Why a partition is left alone, in words for reports and logs.
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
