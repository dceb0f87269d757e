//! Rows once visible never disappear when compaction moves a partition to a new generation.
//!
//! The new location is listed; files the old entry showed whose Kafka range no new file covers (a
//! late file committed just before the swap, whose copy into the generation is on its way) are
//! carried over, and dropped when their copy arrives under the same name.

use stockstream_common::lake::{COMPACTED_DIR, FileRange};

use super::{FileEntry, PartitionFiles};

/// Keeps in `moved` (a partition listed at its new location) the files of `old` (its entry at the
/// previous location) whose Kafka range no file of the new location covers.
pub(super) fn carry_over(moved: &mut PartitionFiles, old: &PartitionFiles) {
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

/// Before `entry` joins `partition`: in a compacted generation, a late file's copy replaces the
/// original carried over from before the swap (same file name, other location).
pub(super) fn replace_carried_original(partition: &mut PartitionFiles, entry: &FileEntry) {
    if !partition.def.location.contains(COMPACTED_DIR) {
        return;
    }
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
