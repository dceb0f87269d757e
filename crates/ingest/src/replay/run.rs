//! One replay run: what it sends each row as (a record, a dead letter, nothing), its counts, and
//! its progress bar and log lines.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::checkpoint::Pass;
use super::{Member, ReplayOptions, ReplaySummary, Tally};
use crate::config::Config;
use crate::emit::Emitter;
use crate::error::Result;
use crate::offsets::OffsetStore;
use crate::reader::{CsvSource, Row, RowOutcome};

/// How often progress is logged when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The state of a replay run across its files and passes.
pub(super) struct Run<'a> {
    pub(super) config: &'a Config,
    pub(super) options: &'a ReplayOptions,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) emitter: Option<&'a Emitter>,
    pub(super) summary: &'a mut ReplaySummary,
    /// The source-offset store, opened at the first checkpointed pass.
    pub(super) store: Option<OffsetStore>,
    pub(super) bar: ProgressBar,
    last_log: Instant,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        config: &'a Config,
        options: &'a ReplayOptions,
        shutdown: &'a CancellationToken,
        emitter: Option<&'a Emitter>,
        summary: &'a mut ReplaySummary,
    ) -> Self {
        Self {
            config,
            options,
            shutdown,
            emitter,
            summary,
            store: None,
            bar: ProgressBar::hidden(),
            last_log: Instant::now(),
        }
    }

    /// Counts rows of `member`.
    pub(super) fn count(&mut self, member: &Member, tally: Tally, rows: u64) {
        self.summary.add(member.index, tally, rows);
    }

    /// Handles one row of `member` (at `unit_member` in its unit); returns `false` when the
    /// replay must stop.
    pub(super) fn row(
        &mut self,
        member: &Member,
        unit_member: usize,
        row: &Row,
        position: u64,
        pass: &mut Pass,
    ) -> Result<bool> {
        if self.shutdown.is_cancelled() {
            self.summary.interrupted = true;
            return Ok(false);
        }
        self.count(member, Tally::Read, 1);
        let origin = &pass.origins[unit_member];
        match &row.outcome {
            RowOutcome::Empty => {
                self.count(member, Tally::SkippedEmpty, 1);
                pass.count_row(position, &row.outcome);
            }
            RowOutcome::Quote(quote) => {
                match self.emitter {
                    Some(emitter) => emitter.quote(origin, quote, row.line, position)?,
                    None => {
                        std::hint::black_box(quote.to_json());
                    }
                }
                self.count(member, Tally::Produced, 1);
                pass.count_row(position, &row.outcome);
            }
            RowOutcome::Bad(reason) => {
                match self.emitter {
                    Some(emitter) => {
                        emitter.dead_letter(origin, &row.raw, reason, row.line, position)?
                    }
                    None => {
                        tracing::warn!(file = %member.name, line = row.line, %reason, "bad row")
                    }
                }
                self.count(member, Tally::DeadLettered, 1);
                pass.count_row(position, &row.outcome);
                if let Some(limit) = self.options.max_bad_rows
                    && self.summary.dead_lettered > limit
                {
                    self.summary.stopped = Some(format!(
                        "{} bad rows exceed --max-bad-rows {limit} (last: {} line {}: {reason})",
                        self.summary.dead_lettered, member.name, row.line
                    ));
                    return Ok(false);
                }
            }
        }
        if self.bar.is_hidden() && self.last_log.elapsed() >= LOG_INTERVAL {
            self.last_log = Instant::now();
            tracing::info!(
                file = %member.name,
                line = row.line,
                produced = self.summary.produced,
                dead_lettered = self.summary.dead_lettered,
                "replaying"
            );
        }
        Ok(true)
    }

    /// A progress bar over `total` units (`bytes` or `rows`; a spinner when unknown).
    pub(super) fn start_progress(&mut self, total: Option<u64>, unit: &str) {
        self.bar.finish_and_clear();
        self.bar = progress_bar(self.options.progress, total.unwrap_or(0), unit);
    }

    /// Clears the progress bar.
    pub(super) fn finish_progress(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Member {
    /// Opens the file's data rows; with the size of its decoded text when known.
    pub(super) fn rows(&self) -> Result<(CsvSource, Option<u64>)> {
        let opened = self.source.open()?;
        let rows = CsvSource::new(
            &self.name,
            opened.reader,
            self.format.delimiter_byte,
            self.format.parser.clone(),
        )?;
        Ok((rows, opened.total_bytes))
    }
}

fn progress_bar(enabled: bool, total: u64, unit: &str) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if total == 0 {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(total)
    };
    let template = match (unit, total) {
        ("bytes", 0) => "{spinner} replaying {bytes} {bytes_per_sec} {elapsed}",
        (_, 0) => "{spinner} replaying {pos} rows ({per_sec}) {elapsed}",
        ("bytes", _) => {
            "{spinner} replaying [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        }
        _ => "{spinner} replaying [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
