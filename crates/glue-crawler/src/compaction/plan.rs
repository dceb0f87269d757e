//! Which partitions to compact, and how their files are grouped into merged files.
//!
//! Pure decisions over listings, so they are unit-tested without a lake.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use stockstream_common::lake::{CompactionConfig, FileRange, ObjectMeta};

use super::catalog::CatalogPartition;

/// A data file that takes part in a compaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Input {
    /// Lake-relative key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The Kafka range its name carries.
    pub range: FileRange,
    /// When it was written.
    pub modified: Option<DateTime<Utc>>,
}

/// A partition worth compacting, with its inputs.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The partition.
    pub partition: CatalogPartition,
    /// Every file whose rows the partition shows: the current generation's files and the files
    /// in the partition's own directory that no generation file covers.
    pub inputs: Vec<Input>,
    /// When the oldest input was written (for the compaction lag).
    pub oldest: Option<DateTime<Utc>>,
}

/// Why a partition is left alone this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Already compact enough (too few or too large files).
    Compact,
    /// A file arrived less than `min_quiet` ago.
    Busy,
    /// The sink's latest intent for a Kafka partition is incomplete and names a file here: the
    /// flush may still be redone.
    FlushInProgress(String),
    /// A file that is not named `<topic>+<partition>+<first>+<last>.parquet`.
    ForeignFile(String),
    /// Two files claim overlapping Kafka ranges (never written by the sink; left for a person).
    Overlap(String, String),
}

/// Whether `meta` is a data file (`.parquet`, not empty, not `_`/`.`-hidden).
pub(crate) fn is_data_file(meta: &ObjectMeta) -> bool {
    let name = meta.key.rsplit('/').next().unwrap_or_default();
    meta.size > 0 && name.ends_with(".parquet") && !name.starts_with('_') && !name.starts_with('.')
}

/// Files of the home directory (`home`, listed recursively) that belong to it directly: deeper
/// folders are other partitions' or none.
fn direct_children<'a>(
    home: &'a str,
    listed: &'a [ObjectMeta],
) -> impl Iterator<Item = &'a ObjectMeta> {
    listed.iter().filter(move |meta| {
        meta.key
            .strip_prefix(home)
            .is_some_and(|rest| !rest.contains('/'))
            && is_data_file(meta)
    })
}

/// The rows a partition shows: `generation` files (empty when it reads its home directory) plus
/// `home` files whose Kafka range no generation file covers. Fails on a foreign file name.
pub(crate) fn visible_files(
    partition: &CatalogPartition,
    home: &[ObjectMeta],
    generation: &[ObjectMeta],
) -> Result<Vec<Input>, Skip> {
    let to_input = |meta: &ObjectMeta| -> Result<Input, Skip> {
        let range =
            FileRange::of_key(&meta.key).ok_or_else(|| Skip::ForeignFile(meta.key.clone()))?;
        Ok(Input {
            key: meta.key.clone(),
            size: meta.size,
            range,
            modified: meta.modified,
        })
    };
    let mut inputs: Vec<Input> = generation
        .iter()
        .filter(|meta| is_data_file(meta))
        .map(to_input)
        .collect::<Result<_, _>>()?;
    let generation_ranges: Vec<FileRange> =
        inputs.iter().map(|input| input.range.clone()).collect();
    for meta in direct_children(&partition.home(), home) {
        let input = to_input(meta)?;
        if !generation_ranges
            .iter()
            .any(|range| range.overlaps(&input.range))
        {
            inputs.push(input);
        }
    }
    inputs.sort_by(|a, b| a.range.cmp(&b.range));
    for pair in inputs.windows(2) {
        if pair[0].range.overlaps(&pair[1].range) {
            return Err(Skip::Overlap(pair[0].key.clone(), pair[1].key.clone()));
        }
    }
    Ok(inputs)
}

/// Decides whether a partition's `inputs` are compacted now. `in_progress` holds the keys named
/// by incomplete latest intents.
pub(crate) fn judge(
    partition: &CatalogPartition,
    inputs: Vec<Input>,
    in_progress: &HashSet<String>,
    config: &CompactionConfig,
    now: DateTime<Utc>,
) -> Result<Candidate, Skip> {
    let small_limit = config.target_file_bytes / 2;
    let small = inputs
        .iter()
        .filter(|input| input.size < small_limit)
        .count();
    let enough = small >= 2
        && (inputs.len() >= config.min_files
            || small as f64 / inputs.len() as f64 >= config.min_small_ratio);
    if !enough {
        return Err(Skip::Compact);
    }
    if let Some(input) = inputs.iter().find(|input| in_progress.contains(&input.key)) {
        return Err(Skip::FlushInProgress(input.key.clone()));
    }
    let quiet_since = now - chrono::Duration::from_std(config.min_quiet).unwrap_or_default();
    let newest = inputs.iter().filter_map(|input| input.modified).max();
    if newest.is_some_and(|newest| newest > quiet_since) {
        return Err(Skip::Busy);
    }
    Ok(Candidate {
        partition: partition.clone(),
        oldest: inputs.iter().filter_map(|input| input.modified).min(),
        inputs,
    })
}

/// Inputs grouped into merged files: per Kafka topic and partition, in offset order, cut where
/// the group reaches `target_bytes`. Each group is named by the span of its ranges.
pub(crate) fn group(inputs: &[Input], target_bytes: u64) -> Vec<(FileRange, Vec<Input>)> {
    let mut by_partition: BTreeMap<(String, i32), Vec<&Input>> = BTreeMap::new();
    for input in inputs {
        by_partition
            .entry((input.range.topic.clone(), input.range.partition))
            .or_default()
            .push(input);
    }
    let mut groups = Vec::new();
    for (_, mut files) in by_partition {
        files.sort_by_key(|input| input.range.first);
        let mut current: Vec<Input> = Vec::new();
        let mut bytes = 0;
        for input in files {
            if !current.is_empty() && bytes + input.size > target_bytes {
                groups.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += input.size;
            current.push(input.clone());
        }
        if !current.is_empty() {
            groups.push(current);
        }
    }
    groups
        .into_iter()
        .map(|files| {
            let first = &files[0].range;
            let span = FileRange {
                topic: first.topic.clone(),
                partition: first.partition,
                first: first.first,
                last: files
                    .iter()
                    .map(|input| input.range.last)
                    .max()
                    .unwrap_or(first.last),
            };
            (span, files)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockstream_common::lake::CompactionSection;

    fn partition(location: &str) -> CatalogPartition {
        CatalogPartition {
            table: "quotes".into(),
            table_location: "quotes/".into(),
            path: "symbol=HSI/year=1987".into(),
            values: vec!["HSI".into(), "1987".into()],
            location: location.into(),
        }
    }

    fn file(directory: &str, kafka_partition: i32, first: i64, last: i64, size: u64) -> ObjectMeta {
        let range = FileRange {
            topic: "quotes".into(),
            partition: kafka_partition,
            first,
            last,
        };
        ObjectMeta {
            key: format!("{directory}{}", range.file_name()),
            size,
            modified: Some(DateTime::from_timestamp(1_700_000_000, 0).expect("time")),
        }
    }

    fn config() -> CompactionConfig {
        CompactionSection {
            min_quiet: "1m".into(),
            target_file_bytes: 10_000,
            ..CompactionSection::default()
        }
        .validate(&Default::default())
        .expect("valid")
    }

    #[test]
    fn late_home_files_join_the_generation_and_covered_ones_do_not() {
        let home = "quotes/symbol=HSI/year=1987/";
        let generation = "quotes/_compacted/symbol=HSI/year=1987/g0000000000001/";
        let compacted = partition(generation);
        let listed_home = vec![
            file(home, 0, 0, 9, 100),   // merged into the generation
            file(home, 0, 10, 19, 100), // merged too
            file(home, 0, 20, 29, 100), // late: not covered
            file(&format!("{home}deeper=1/"), 0, 30, 39, 100),
        ];
        let listed_generation = vec![file(generation, 0, 0, 19, 150)];
        let inputs = visible_files(&compacted, &listed_home, &listed_generation).expect("plain");
        let keys: Vec<_> = inputs
            .iter()
            .map(|input| (input.range.first, input.range.last))
            .collect();
        assert_eq!(keys, vec![(0, 19), (20, 29)]);

        let foreign = vec![ObjectMeta {
            key: format!("{home}part-0001.parquet"),
            size: 5,
            modified: None,
        }];
        assert!(matches!(
            visible_files(&compacted, &foreign, &[]),
            Err(Skip::ForeignFile(_))
        ));
        let overlapping = vec![file(home, 0, 0, 9, 1), file(home, 0, 5, 12, 1)];
        assert!(matches!(
            visible_files(&partition(home), &overlapping, &[]),
            Err(Skip::Overlap(..))
        ));
    }

    #[test]
    fn judging_needs_small_files_quiet_and_finished_flushes() {
        let home = "quotes/symbol=HSI/year=1987/";
        let partition = partition(home);
        let now = DateTime::from_timestamp(1_700_000_000 + 3600, 0).expect("time");
        let inputs: Vec<Input> = (0..3)
            .map(|index| file(home, 0, index * 10, index * 10 + 9, 100))
            .map(|meta| Input {
                range: FileRange::of_key(&meta.key).expect("named"),
                key: meta.key,
                size: meta.size,
                modified: meta.modified,
            })
            .collect();
        let config = config();
        assert!(judge(&partition, inputs.clone(), &HashSet::new(), &config, now).is_ok());
        assert_eq!(
            judge(
                &partition,
                inputs[..1].to_vec(),
                &HashSet::new(),
                &config,
                now
            )
            .err(),
            Some(Skip::Compact)
        );
        let busy_now = DateTime::from_timestamp(1_700_000_030, 0).expect("time");
        assert_eq!(
            judge(
                &partition,
                inputs.clone(),
                &HashSet::new(),
                &config,
                busy_now
            )
            .err(),
            Some(Skip::Busy)
        );
        let in_progress = HashSet::from([inputs[2].key.clone()]);
        assert!(matches!(
            judge(&partition, inputs.clone(), &in_progress, &config, now),
            Err(Skip::FlushInProgress(_))
        ));
        // One large file and one small one: compact enough.
        let mut mixed = inputs[..2].to_vec();
        mixed[0].size = 9_000;
        assert_eq!(
            judge(&partition, mixed, &HashSet::new(), &config, now).err(),
            Some(Skip::Compact)
        );
    }

    #[test]
    fn groups_follow_kafka_partitions_and_the_target_size() {
        let home = "quotes/symbol=HSI/year=1987/";
        let metas = vec![
            file(home, 0, 0, 9, 4_000),
            file(home, 1, 0, 4, 100),
            file(home, 0, 10, 19, 4_000),
            file(home, 0, 20, 29, 4_000),
            file(home, 1, 5, 9, 100),
        ];
        let inputs: Vec<Input> = metas
            .into_iter()
            .map(|meta| Input {
                range: FileRange::of_key(&meta.key).expect("named"),
                key: meta.key,
                size: meta.size,
                modified: None,
            })
            .collect();
        let groups = group(&inputs, 10_000);
        let spans: Vec<_> = groups
            .iter()
            .map(|(span, files)| (span.partition, span.first, span.last, files.len()))
            .collect();
        assert_eq!(spans, vec![(0, 0, 19, 2), (0, 20, 29, 1), (1, 0, 9, 2)]);
    }
}
