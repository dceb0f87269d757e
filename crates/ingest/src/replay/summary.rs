//! What a replay did: totals, and per file what was inferred about it and what became of its rows.

use serde::Serialize;

use crate::sniff::Inference;

/// What happened to one row, counted per file and in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// A data row was read.
    Read,
    /// A record was produced.
    Produced,
    /// A bad row was dead-lettered.
    DeadLettered,
    /// An all-empty row was skipped.
    SkippedEmpty,
    /// A row was skipped because an earlier run of the pass sent it.
    AlreadyReplayed,
    /// Of those, a row found on the log beyond the last checkpoint.
    Recovered,
}

/// What a replay did with one file.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileSummary {
    /// The file (a path or `s3://bucket/key`).
    pub file: String,
    /// Its content fingerprint.
    pub fingerprint: String,
    /// What was inferred about it (absent when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Inference>,
    /// Why it cannot be replayed, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The pass this run ended in.
    pub pass: u64,
    /// Data rows read in this run (after the resume point).
    pub rows_read: u64,
    /// Records produced.
    pub produced: u64,
    /// Bad rows dead-lettered.
    pub dead_lettered: u64,
    /// All-empty rows skipped.
    pub skipped_empty: u64,
    /// Rows an earlier run of the pass already sent.
    pub skipped_already_replayed: u64,
    /// Of those, rows found on the log beyond the last checkpoint.
    pub recovered_from_log: u64,
    /// Position after which this run started.
    pub resumed_after: u64,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplaySummary {
    /// The mode.
    pub mode: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Per file, in the order replayed.
    pub files: Vec<FileSummary>,
    /// The highest pass this run ended in (0 for `sample` and dry runs).
    pub pass: u64,
    /// Passes this run completed (over all files).
    pub passes_completed: u64,
    /// Data rows read in this run (after the resume points).
    pub rows_read: u64,
    /// Records produced to the quotes topic (acknowledged by Kafka unless `dry_run`).
    pub produced: u64,
    /// Bad rows sent to the dead-letter topic, each with its line and reason.
    pub dead_lettered: u64,
    /// Rows whose fields were all empty.
    pub skipped_empty: u64,
    /// Rows skipped because an earlier run of the pass already sent them.
    pub skipped_already_replayed: u64,
    /// Of those, rows found on the log beyond the last checkpoint (sent by a run that crashed).
    pub recovered_from_log: u64,
    /// Records Kafka did not acknowledge after librdkafka's retries.
    pub failed: u64,
    /// The first of those failures.
    pub first_failure: Option<String>,
    /// Why the replay stopped early, if it did (e.g. too many bad rows).
    pub stopped: Option<String>,
    /// Whether a shutdown signal stopped the replay early.
    pub interrupted: bool,
    /// Wall-clock seconds.
    pub elapsed_seconds: f64,
}

impl FileSummary {
    fn add(&mut self, tally: Tally, count: u64) {
        *match tally {
            Tally::Read => &mut self.rows_read,
            Tally::Produced => &mut self.produced,
            Tally::DeadLettered => &mut self.dead_lettered,
            Tally::SkippedEmpty => &mut self.skipped_empty,
            Tally::AlreadyReplayed => &mut self.skipped_already_replayed,
            Tally::Recovered => &mut self.recovered_from_log,
        } += count;
    }
}

impl ReplaySummary {
    /// Counts `count` rows of file `file` (an index into [`ReplaySummary::files`]).
    pub fn add(&mut self, file: usize, tally: Tally, count: u64) {
        if let Some(summary) = self.files.get_mut(file) {
            summary.add(tally, count);
        }
        *match tally {
            Tally::Read => &mut self.rows_read,
            Tally::Produced => &mut self.produced,
            Tally::DeadLettered => &mut self.dead_lettered,
            Tally::SkippedEmpty => &mut self.skipped_empty,
            Tally::AlreadyReplayed => &mut self.skipped_already_replayed,
            Tally::Recovered => &mut self.recovered_from_log,
        } += count;
    }

    /// The files that cannot be replayed, with why.
    pub fn file_errors(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|file| {
                file.error
                    .as_ref()
                    .map(|error| format!("{}: {error}", file.file))
            })
            .collect()
    }
}

fn write_inference(
    formatter: &mut std::fmt::Formatter<'_>,
    format: &Inference,
) -> std::fmt::Result {
    let sniffed = |what: &str| {
        if format.sniffed.contains(&what) {
            "sniffed"
        } else {
            "given"
        }
    };
    let columns: Vec<String> = format
        .columns
        .iter()
        .map(|(field, name)| format!("{name}→{field}"))
        .collect();
    writeln!(formatter, "  columns: {}", columns.join(", "))?;
    if !format.ignored_columns.is_empty() {
        writeln!(
            formatter,
            "  ignored columns: {}",
            format.ignored_columns.join(", ")
        )?;
    }
    writeln!(
        formatter,
        "  delimiter: {} ({}); decimal separator: {} ({}); compression: {}",
        format.delimiter,
        sniffed("delimiter"),
        format.decimal.as_char(),
        sniffed("decimal"),
        format.compression.as_str()
    )?;
    writeln!(
        formatter,
        "  date format: {} ({}: {})",
        format.date_format,
        if format.sniffed.contains(&"date_format") {
            "inferred"
        } else {
            "given"
        },
        format.date_evidence
    )?;
    writeln!(
        formatter,
        "  symbol: {}; close_usd: {}",
        format.symbol, format.close_usd
    )
}

impl std::fmt::Display for FileSummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "{}", self.file)?;
        if let Some(error) = &self.error {
            return writeln!(formatter, "  cannot be replayed: {error}");
        }
        if let Some(format) = &self.format {
            write_inference(formatter, format)?;
        }
        write!(
            formatter,
            "  rows: {} read, {} good, {} bad, {} empty, {} already replayed",
            self.rows_read,
            self.produced,
            self.dead_lettered,
            self.skipped_empty,
            self.skipped_already_replayed
        )?;
        if self.resumed_after > 0 {
            write!(
                formatter,
                " (resumed after position {})",
                self.resumed_after
            )?;
        }
        if self.recovered_from_log > 0 {
            write!(
                formatter,
                "; {} of the skipped rows were found on the log after a crash",
                self.recovered_from_log
            )?;
        }
        writeln!(formatter)
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for file in &self.files {
            write!(formatter, "{file}")?;
        }
        let rate = self.rows_read as f64 / self.elapsed_seconds.max(1e-9);
        write!(
            formatter,
            "{} {} file(s) ({} mode): read {} rows, produced {}, dead-lettered {}, skipped {} empty and {} already replayed in {:.1}s ({:.0} rows/s)",
            if self.dry_run {
                "dry run of"
            } else {
                "replayed"
            },
            self.files.len(),
            self.mode,
            self.rows_read,
            self.produced,
            self.dead_lettered,
            self.skipped_empty,
            self.skipped_already_replayed,
            self.elapsed_seconds,
            rate,
        )?;
        if self.failed > 0 {
            write!(
                formatter,
                "; {} record(s) NOT delivered (first: {}) — run again to resume",
                self.failed,
                self.first_failure.as_deref().unwrap_or("?")
            )?;
        }
        if let Some(reason) = &self.stopped {
            write!(formatter, "; stopped: {reason}")?;
        }
        if self.interrupted {
            write!(formatter, " — interrupted, run again to resume")?;
        }
        let errors = self.file_errors();
        if !errors.is_empty() {
            write!(formatter, "; {} file(s) cannot be replayed", errors.len())?;
        }
        Ok(())
    }
}
