//! Settings of lake maintenance (`[lake.compaction]`, `[lake.retention]`): how the catalog
//! service merges small files and drops old partitions. See `docs/compaction.md`.

use std::time::Duration;

use serde::Deserialize;

use crate::config::parse_duration;
use crate::{Error, Result};

/// Raw `[lake.compaction]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionSection {
    /// Whether the catalog service compacts continuously.
    pub enabled: bool,
    /// How often the service looks for partitions to compact.
    pub interval: String,
    /// Size a merged file is aimed at; larger groups are cut into several files.
    pub target_file_bytes: u64,
    /// A partition with at least this many data files qualifies.
    pub min_files: usize,
    /// A partition whose share of small files (below half the target) is at least this qualifies.
    pub min_small_ratio: f64,
    /// How long a partition must have received no new file before it is compacted.
    pub min_quiet: String,
    /// How long replaced files stay after the swap (longer than the longest query).
    pub grace: String,
    /// Most partitions compacted in one round.
    pub max_partitions: usize,
    /// Sort rows by trade date (then Kafka offset) within each merged file.
    pub sort_by_trade_date: bool,
}

impl Default for CompactionSection {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: "30s".into(),
            target_file_bytes: 128 * 1024 * 1024,
            min_files: 8,
            min_small_ratio: 0.9,
            min_quiet: "5m".into(),
            grace: "15m".into(),
            max_partitions: 64,
            sort_by_trade_date: true,
        }
    }
}

/// Raw `[lake.retention]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Partitions whose newest trade date is older than this are dropped (empty: keep all).
    pub max_age: String,
}

/// Validated compaction settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionConfig {
    /// See [`CompactionSection::enabled`].
    pub enabled: bool,
    /// See [`CompactionSection::interval`].
    pub interval: Duration,
    /// See [`CompactionSection::target_file_bytes`].
    pub target_file_bytes: u64,
    /// See [`CompactionSection::min_files`].
    pub min_files: usize,
    /// See [`CompactionSection::min_small_ratio`].
    pub min_small_ratio: f64,
    /// See [`CompactionSection::min_quiet`].
    pub min_quiet: Duration,
    /// See [`CompactionSection::grace`].
    pub grace: Duration,
    /// See [`CompactionSection::max_partitions`].
    pub max_partitions: usize,
    /// See [`CompactionSection::sort_by_trade_date`].
    pub sort_by_trade_date: bool,
    /// Retention: drop partitions older than this; `None` keeps everything.
    pub retention: Option<Duration>,
}

impl CompactionSection {
    /// Validates the section together with `[lake.retention]`.
    pub fn validate(&self, retention: &RetentionSection) -> Result<CompactionConfig> {
        if self.target_file_bytes < 1024 {
            return Err(Error::config(
                "lake.compaction.target_file_bytes",
                "must be at least 1024",
            ));
        }
        if self.min_files < 2 {
            return Err(Error::config(
                "lake.compaction.min_files",
                "must be at least 2 (one file is already compact)",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_small_ratio) {
            return Err(Error::config(
                "lake.compaction.min_small_ratio",
                "must be between 0 and 1",
            ));
        }
        if self.max_partitions == 0 {
            return Err(Error::config(
                "lake.compaction.max_partitions",
                "must be at least 1",
            ));
        }
        let interval = parse_duration("lake.compaction.interval", &self.interval)?;
        if interval.is_zero() {
            return Err(Error::config(
                "lake.compaction.interval",
                "must be longer than 0",
            ));
        }
        let retention = match retention.max_age.trim() {
            "" => None,
            text => Some(parse_duration("lake.retention.max_age", text)?),
        };
        Ok(CompactionConfig {
            enabled: self.enabled,
            interval,
            target_file_bytes: self.target_file_bytes,
            min_files: self.min_files,
            min_small_ratio: self.min_small_ratio,
            min_quiet: parse_duration("lake.compaction.min_quiet", &self.min_quiet)?,
            grace: parse_duration("lake.compaction.grace", &self.grace)?,
            max_partitions: self.max_partitions,
            sort_by_trade_date: self.sort_by_trade_date,
            retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        let config = CompactionSection::default()
            .validate(&RetentionSection::default())
            .expect("defaults");
        assert!(!config.enabled);
        assert_eq!(config.retention, None);
        assert_eq!(config.grace, Duration::from_secs(900));
        let error = CompactionSection {
            min_files: 1,
            ..CompactionSection::default()
        }
        .validate(&RetentionSection::default())
        .expect_err("min_files 1");
        assert!(error.to_string().contains("lake.compaction.min_files"));
        let error = CompactionSection::default()
            .validate(&RetentionSection {
                max_age: "ten years".into(),
            })
            .expect_err("bad duration");
        assert!(error.to_string().contains("lake.retention.max_age"));
        let kept = CompactionSection::default()
            .validate(&RetentionSection {
                max_age: "3650days".into(),
            })
            .expect("valid");
        assert_eq!(kept.retention, Some(Duration::from_secs(3650 * 86400)));
    }
}
