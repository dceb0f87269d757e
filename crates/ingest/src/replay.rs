//! CSV replay in three modes:
//!
//! - `max`: every row in file order, as fast as the broker acknowledges (backfills, benchmarks);
//! - `ordered`: a market replay — rows of every index merged in trade-date order, paced by
//!   `speed` (trading days per second) or `rate` (rows per second);
//! - `sample`: the original tutorial's producer — a random row every `interval`, forever or
//!   `count` times.
//!
//! `max` and `ordered` remember how far they got per file content ([`crate::offsets`]): a restart
//! resumes after the last acknowledged row, and first reads back what the previous run sent after
//! that point (records carry their origin in headers, see [`crate::emit`]), so after any crash —
//! SIGKILL included — each row is on the topic exactly once. `--from-start` and `--loop` start a
//! new pass over the file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::emit::{Emitter, Origin, Pacer, log_ends, recover};
use crate::error::{Error, Result};
use crate::offsets::{OffsetStore, SourceOffset, fingerprint};
use crate::source::{CsvSource, Row, RowOutcome};

/// How often progress is checkpointed into the source-offset store.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How often progress is logged when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// How rows are taken from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every row in file order, as fast as the broker takes them.
    Max,
    /// Every row in trade-date order (all indices merged), paced by `--speed` or `--rate`.
    Ordered,
    /// A random row every `--interval`, like the original tutorial's producer.
    Sample,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Max => "max",
            Mode::Ordered => "ordered",
            Mode::Sample => "sample",
        }
    }
}

/// What to replay and how (also the options of `stockstream-ingest replay`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayOptions {
    /// The CSV file.
    #[arg(long)]
    pub file: PathBuf,
    /// max: file order, as fast as the broker takes it; ordered: all indices merged in
    /// trade-date order, paced by --speed or --rate; sample: a random row every --interval
    /// (the original tutorial's producer).
    #[arg(long, value_enum, default_value = "max")]
    pub mode: Mode,
    /// Rows per second (max, ordered); unpaced when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Trading days per second (ordered).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Time between two rows in sample mode (e.g. 1s, 250ms).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stop after this many rows (sample); runs until stopped when absent.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the random choice (sample); the same seed picks the same rows.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Start a new pass over the file each time one completes, until stopped.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Forget recorded progress and replay the whole file again.
    #[arg(long)]
    pub from_start: bool,
    /// Validate and encode the file and print the summary without producing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop (exit status 3) once more than N rows of this run were dead-lettered.
    #[arg(long, value_name = "N")]
    pub max_bad_rows: Option<u64>,
    /// Draw a progress bar (on a terminal).
    #[arg(skip = true)]
    pub progress: bool,
}

fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("`{text}`: {error}"))
}

impl ReplayOptions {
    /// Options for a plain `max` replay of `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            mode: Mode::Max,
            rate: None,
            speed: None,
            interval: Duration::from_secs(1),
            count: None,
            seed: None,
            looping: false,
            from_start: false,
            dry_run: false,
            max_bad_rows: None,
            progress: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &str, value: Option<f64>| match value {
            Some(value) if !(value.is_finite() && value > 0.0) => Err(Error::Usage(format!(
                "--{name} must be a positive number, found {value}"
            ))),
            _ => Ok(()),
        };
        positive("rate", self.rate)?;
        positive("speed", self.speed)?;
        if self.rate.is_some() && self.speed.is_some() {
            return Err(Error::Usage("give --rate or --speed, not both".into()));
        }
        if self.speed.is_some() && self.mode != Mode::Ordered {
            return Err(Error::Usage(
                "--speed (trading days per second) needs --mode ordered".into(),
            ));
        }
        if self.mode == Mode::Sample {
            if self.rate.is_some() {
                return Err(Error::Usage(
                    "--mode sample is paced by --interval, not --rate".into(),
                ));
            }
            if self.interval.is_zero() {
                return Err(Error::Usage("--interval must be above zero".into()));
            }
        } else if self.count.is_some() || self.seed.is_some() {
            return Err(Error::Usage(
                "--count and --seed apply to --mode sample".into(),
            ));
        }
        Ok(())
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplaySummary {
    /// The file replayed.
    pub file: PathBuf,
    /// Its content fingerprint.
    pub fingerprint: String,
    /// The mode.
    pub mode: String,
    /// The pass this run ended in (0 for `sample` and dry runs).
    pub pass: u64,
    /// Passes this run completed.
    pub passes_completed: u64,
    /// Data rows read in this run (after the resume point).
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
    /// Position after which this run started.
    pub resumed_after: u64,
    /// Records Kafka did not acknowledge after librdkafka's retries.
    pub failed: u64,
    /// The first of those failures.
    pub first_failure: Option<String>,
    /// Why the replay stopped early, if it did (e.g. too many bad rows).
    pub stopped: Option<String>,
    /// Whether a shutdown signal stopped the replay early.
    pub interrupted: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Wall-clock seconds.
    pub elapsed_seconds: f64,
}

impl ReplaySummary {
    /// Whether the replay ended without failures or an early stop (an interruption is clean).
    pub fn is_success(&self) -> bool {
        self.failed == 0 && self.stopped.is_none()
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.rows_read as f64 / self.elapsed_seconds.max(1e-9);
        write!(
            formatter,
            "{}{} ({} mode): read {} rows, produced {}, dead-lettered {}, skipped {} empty and {} already replayed (resumed after position {}) in {:.1}s ({:.0} rows/s)",
            if self.dry_run {
                "dry run of "
            } else {
                "replayed "
            },
            self.file.display(),
            self.mode,
            self.rows_read,
            self.produced,
            self.dead_lettered,
            self.skipped_empty,
            self.skipped_already_replayed,
            self.resumed_after,
            self.elapsed_seconds,
            rate,
        )?;
        if self.recovered_from_log > 0 {
            write!(
                formatter,
                "; {} of the skipped rows were found on the log after a crash",
                self.recovered_from_log
            )?;
        }
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
        Ok(())
    }
}

/// Replays `options.file`; blocks until every record is acknowledged.
///
/// Cancelling `shutdown` stops reading, waits for what is in flight and records the progress.
pub fn replay(
    config: &Config,
    options: &ReplayOptions,
    shutdown: &CancellationToken,
) -> Result<ReplaySummary> {
    options.validate()?;
    let started = Instant::now();
    let path = options.file.as_path();
    let file_fingerprint = fingerprint(path)?;
    let mut summary = ReplaySummary {
        file: path.to_path_buf(),
        fingerprint: file_fingerprint.clone(),
        mode: options.mode.as_str().to_string(),
        dry_run: options.dry_run,
        ..ReplaySummary::default()
    };
    // Opening checks the header before anything is produced.
    CsvSource::open(path)?;
    let emitter = if options.dry_run {
        None
    } else {
        Some(Emitter::new(config)?)
    };
    let origin = Origin {
        source: file_fingerprint[..16].to_string(),
        file: path.display().to_string(),
        pass: 0,
    };
    let mut run = Run {
        config,
        options,
        shutdown,
        emitter: emitter.as_ref(),
        origin,
        summary: &mut summary,
        bar: ProgressBar::hidden(),
        last_log: Instant::now(),
    };
    if options.mode == Mode::Sample {
        run.sample()?;
    } else if options.dry_run {
        run.origin.pass = 0;
        run.pass(&mut Pass::dry())?;
    } else {
        run.resumable(&file_fingerprint)?;
    }
    run.bar.finish_and_clear();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Progress of the pass being replayed.
struct Pass {
    state: SourceOffset,
    store: Option<OffsetStore>,
    topic: String,
    fingerprint: String,
    skip: std::collections::HashSet<u64>,
    last_checkpoint: Instant,
}

impl Pass {
    fn dry() -> Self {
        Self {
            state: SourceOffset {
                file: PathBuf::new(),
                mode: String::new(),
                pass: 0,
                position: 0,
                complete: false,
                produced: 0,
                dead_lettered: 0,
                skipped_empty: 0,
                scan_from: Default::default(),
                updated_at: Utc::now(),
            },
            store: None,
            topic: String::new(),
            fingerprint: String::new(),
            skip: Default::default(),
            last_checkpoint: Instant::now(),
        }
    }
}

struct Run<'a> {
    config: &'a Config,
    options: &'a ReplayOptions,
    shutdown: &'a CancellationToken,
    emitter: Option<&'a Emitter>,
    origin: Origin,
    summary: &'a mut ReplaySummary,
    bar: ProgressBar,
    last_log: Instant,
}

impl Run<'_> {
    /// `max`/`ordered`: resume or start passes, checkpointing into the offset store.
    fn resumable(&mut self, file_fingerprint: &str) -> Result<()> {
        let Some(emitter) = self.emitter else {
            return Ok(());
        };
        let topic = self.config.kafka.topics.quotes.clone();
        let mut store = OffsetStore::open(&self.config.ingest.state_dir)?;
        let previous = store.get(&topic, file_fingerprint).cloned();
        let mut new_pass = self.options.from_start;
        if let Some(previous) = &previous
            && !previous.complete
            && !new_pass
            && previous.mode != self.options.mode.as_str()
        {
            return Err(Error::Usage(format!(
                "{} was partly replayed in {} mode (pass {}, up to position {}); resume it with --mode {} or start over with --from-start",
                self.options.file.display(),
                previous.mode,
                previous.pass,
                previous.position,
                previous.mode
            )));
        }
        if let Some(previous) = &previous
            && previous.complete
            && !new_pass
        {
            if !self.options.looping {
                self.summary.pass = previous.pass;
                self.summary.skipped_already_replayed =
                    previous.produced + previous.dead_lettered + previous.skipped_empty;
                self.summary.resumed_after = previous.position;
                return Ok(());
            }
            new_pass = true;
        }
        let mut state = match previous {
            Some(previous) if !new_pass => previous,
            previous => {
                let pass = previous.map_or(1, |previous| previous.pass + 1);
                self.fresh_state(emitter, pass)?
            }
        };
        loop {
            if self.shutdown.is_cancelled() {
                self.summary.interrupted = true;
                return Ok(());
            }
            let mut skip = std::collections::HashSet::new();
            if state.position > 0 || !state.scan_from.is_empty() {
                let Some(recovered) = recover(
                    &self.config.kafka,
                    &state.scan_from,
                    &file_fingerprint[..16],
                    state.pass,
                    state.position,
                    &self.config.kafka.topics.dlq,
                    self.shutdown,
                )?
                else {
                    self.summary.interrupted = true;
                    return Ok(());
                };
                if !recovered.positions.is_empty() {
                    tracing::info!(
                        records = recovered.produced,
                        dead_letters = recovered.dead_lettered,
                        after_position = state.position,
                        "found records the previous run sent after its last checkpoint; they are not sent again"
                    );
                }
                self.summary.recovered_from_log += recovered.positions.len() as u64;
                state.produced += recovered.produced;
                state.dead_lettered += recovered.dead_lettered;
                skip = recovered.positions;
            }
            self.summary.pass = state.pass;
            self.summary.resumed_after = state.position;
            self.origin.pass = state.pass;
            let mut pass = Pass {
                state,
                store: Some(store),
                topic: topic.clone(),
                fingerprint: file_fingerprint.to_string(),
                skip,
                last_checkpoint: Instant::now(),
            };
            pass.store_state()?;
            let complete = self.pass(&mut pass)?;
            if complete {
                self.summary.passes_completed += 1;
            }
            if !(complete && self.options.looping) {
                return Ok(());
            }
            if self.shutdown.is_cancelled() {
                self.summary.interrupted = true;
                return Ok(());
            }
            store = pass.store.take().ok_or_else(|| {
                Error::Usage("internal: the offset store went missing".to_string())
            })?;
            state = self.fresh_state(emitter, pass.state.pass + 1)?;
            tracing::info!(pass = state.pass, "looping: starting the next pass");
        }
    }

    fn fresh_state(&self, emitter: &Emitter, pass: u64) -> Result<SourceOffset> {
        Ok(SourceOffset {
            file: self.options.file.clone(),
            mode: self.options.mode.as_str().to_string(),
            pass,
            position: 0,
            complete: false,
            produced: 0,
            dead_lettered: 0,
            skipped_empty: 0,
            scan_from: log_ends(&self.config.kafka, &emitter.topics())?,
            updated_at: Utc::now(),
        })
    }

    /// One pass over the file in the mode's order; returns whether it reached the end.
    fn pass(&mut self, pass: &mut Pass) -> Result<bool> {
        let path = self.options.file.clone();
        let resume_after = pass.state.position;
        let mut last_position = resume_after;
        let mut stopped = false;
        match self.options.mode {
            Mode::Max => {
                let mut source = CsvSource::open(&path)?;
                self.bar = progress_bar(self.options.progress, source.total_bytes(), "bytes");
                let mut pacer = Pacer::new(self.options.rate);
                while let Some(row) = source.next_row()? {
                    self.bar.set_position(source.bytes_read());
                    let position = row.line;
                    if position <= resume_after || pass.skip.contains(&position) {
                        self.summary.skipped_already_replayed += 1;
                        last_position = position;
                        continue;
                    }
                    if !pacer.wait(self.shutdown) {
                        self.summary.interrupted = true;
                        stopped = true;
                        break;
                    }
                    if !self.row(&row, position, pass)? {
                        stopped = true;
                        break;
                    }
                    last_position = position;
                    self.maybe_checkpoint(pass, last_position)?;
                }
            }
            Mode::Ordered => {
                let rows = ordered_rows(&path)?;
                self.bar = progress_bar(self.options.progress, rows.len() as u64, "rows");
                let mut pacer = Pacer::new(self.options.speed.or(self.options.rate));
                let mut last_day: Option<NaiveDate> = None;
                for (rank, row) in rows.iter().enumerate() {
                    let position = rank as u64 + 1;
                    self.bar.set_position(position);
                    if position <= resume_after || pass.skip.contains(&position) {
                        self.summary.skipped_already_replayed += 1;
                        last_position = position;
                        continue;
                    }
                    let day = match &row.outcome {
                        RowOutcome::Quote(quote) => Some(quote.trade_date),
                        _ => None,
                    };
                    let paced_unit = if self.options.speed.is_some() {
                        day.is_some() && day != last_day
                    } else {
                        true
                    };
                    if day.is_some() {
                        last_day = day;
                    }
                    if paced_unit && !pacer.wait(self.shutdown) {
                        self.summary.interrupted = true;
                        stopped = true;
                        break;
                    }
                    if !self.row(row, position, pass)? {
                        stopped = true;
                        break;
                    }
                    last_position = position;
                    self.maybe_checkpoint(pass, last_position)?;
                }
            }
            Mode::Sample => unreachable!("sample mode has no passes"),
        }
        self.finish(pass, last_position, !stopped)
    }

    /// Handles one row; returns `false` when the replay must stop.
    fn row(&mut self, row: &Row, position: u64, pass: &mut Pass) -> Result<bool> {
        if self.shutdown.is_cancelled() {
            self.summary.interrupted = true;
            return Ok(false);
        }
        self.summary.rows_read += 1;
        match &row.outcome {
            RowOutcome::Empty => {
                self.summary.skipped_empty += 1;
                pass.state.skipped_empty += 1;
            }
            RowOutcome::Quote(quote) => {
                match self.emitter {
                    Some(emitter) => emitter.quote(&self.origin, quote, row.line, position)?,
                    None => {
                        std::hint::black_box(quote.to_json());
                    }
                }
                self.summary.produced += 1;
                pass.state.produced += 1;
            }
            RowOutcome::Bad(reason) => {
                match self.emitter {
                    Some(emitter) => {
                        emitter.dead_letter(&self.origin, &row.raw, reason, row.line, position)?
                    }
                    None => {
                        tracing::warn!(file = %self.origin.file, line = row.line, %reason, "bad row")
                    }
                }
                self.summary.dead_lettered += 1;
                pass.state.dead_lettered += 1;
                if let Some(limit) = self.options.max_bad_rows
                    && self.summary.dead_lettered > limit
                {
                    self.summary.stopped = Some(format!(
                        "{} bad rows exceed --max-bad-rows {limit} (last: line {}: {reason})",
                        self.summary.dead_lettered, row.line
                    ));
                    return Ok(false);
                }
            }
        }
        if self.bar.is_hidden() && self.last_log.elapsed() >= LOG_INTERVAL {
            self.last_log = Instant::now();
            tracing::info!(
                file = %self.origin.file,
                line = row.line,
                produced = self.summary.produced,
                dead_lettered = self.summary.dead_lettered,
                "replaying"
            );
        }
        Ok(true)
    }

    fn maybe_checkpoint(&mut self, pass: &mut Pass, last_position: u64) -> Result<()> {
        if pass.store.is_some() && pass.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            pass.last_checkpoint = Instant::now();
            self.checkpoint(pass, last_position, false)?;
        }
        Ok(())
    }

    /// Records the highest position up to which every row is acknowledged, and from where later
    /// rows of the pass may be on the log.
    fn checkpoint(&mut self, pass: &mut Pass, last_position: u64, at_end: bool) -> Result<()> {
        let Some(emitter) = self.emitter else {
            return Ok(());
        };
        let producer = emitter.producer();
        let mut acknowledged = producer
            .lowest_in_flight()
            .map_or(last_position, |lowest| lowest.saturating_sub(1));
        let failed = producer.lowest_failed();
        if let Some(failed) = failed {
            acknowledged = acknowledged.min(failed.saturating_sub(1));
        }
        for ((topic, partition), offset) in producer.take_landed_through(acknowledged) {
            pass.state
                .scan_from
                .insert(format!("{topic}/{partition}"), offset + 1);
        }
        let complete = at_end && failed.is_none() && acknowledged == last_position;
        if acknowledged < pass.state.position
            || (acknowledged == pass.state.position && complete == pass.state.complete)
        {
            return Ok(());
        }
        pass.state.position = acknowledged;
        pass.state.complete = complete;
        pass.store_state()
    }

    /// Waits for everything in flight, records the final checkpoint and collects failures.
    fn finish(&mut self, pass: &mut Pass, last_position: u64, reached_end: bool) -> Result<bool> {
        let Some(emitter) = self.emitter else {
            return Ok(reached_end);
        };
        let producer = emitter.producer();
        let flushed = producer.flush(self.config.ingest.delivery_timeout + Duration::from_secs(5));
        self.checkpoint(pass, last_position, reached_end && flushed.is_ok())?;
        let failures = producer.take_failures();
        if let Some(first) = failures.iter().min_by_key(|failure| failure.id) {
            self.summary.failed += failures.len() as u64;
            self.summary.produced = self.summary.produced.saturating_sub(failures.len() as u64);
            self.summary.first_failure = Some(format!("position {}: {}", first.id, first.error));
            metrics::counter!("stockstream_ingest_delivery_failures_total")
                .increment(failures.len() as u64);
            tracing::error!(
                count = failures.len(),
                first_position = first.id,
                error = %first.error,
                file = %self.origin.file,
                "records were not delivered"
            );
        }
        flushed?;
        Ok(pass.state.complete)
    }

    /// `sample`: a random row every interval, like the tutorial's `df.sample(1)` loop.
    fn sample(&mut self) -> Result<()> {
        let rows: Vec<Row> = CsvSource::open(&self.options.file)?.collect::<Result<_>>()?;
        if rows.is_empty() {
            return Err(Error::Format {
                path: self.options.file.clone(),
                message: "has no data rows to sample".into(),
            });
        }
        let seed = self.options.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64)
        });
        tracing::info!(seed, rows = rows.len(), interval = ?self.options.interval, "sampling");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pacer = Pacer::new(Some(1.0 / self.options.interval.as_secs_f64()));
        self.bar = progress_bar(
            self.options.progress,
            self.options.count.unwrap_or(0),
            "rows",
        );
        let mut pass = Pass::dry();
        let mut sent = 0;
        while self.options.count.is_none_or(|count| sent < count) {
            if !pacer.wait(self.shutdown) {
                self.summary.interrupted = true;
                break;
            }
            let row = &rows[rng.random_range(0..rows.len())];
            sent += 1;
            if !self.row(row, sent, &mut pass)? {
                break;
            }
            self.bar.set_position(sent);
            if let Some(emitter) = self.emitter {
                for failure in emitter.producer().take_failures() {
                    self.summary.failed += 1;
                    self.summary
                        .first_failure
                        .get_or_insert(failure.error.clone());
                    tracing::error!(error = %failure.error, "a sampled record was not delivered");
                }
            }
        }
        if let Some(emitter) = self.emitter {
            emitter
                .producer()
                .flush(self.config.ingest.delivery_timeout + Duration::from_secs(5))?;
            let failures = emitter.producer().take_failures();
            self.summary.failed += failures.len() as u64;
            if let Some(first) = failures.first() {
                self.summary
                    .first_failure
                    .get_or_insert(first.error.clone());
            }
        }
        Ok(())
    }
}

impl Pass {
    fn store_state(&mut self) -> Result<()> {
        let Some(store) = self.store.as_mut() else {
            return Ok(());
        };
        self.state.updated_at = Utc::now();
        store.record(&self.topic, &self.fingerprint, self.state.clone())
    }
}

/// Every row of the file in `ordered` mode's order: rows that are not quotes first (in file
/// order; they are dead-lettered or skipped at once), then quotes by trade date, ties in file
/// order — so all indices of one trading day go out together.
pub fn ordered_rows(path: &Path) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = CsvSource::open(path)?.collect::<Result<_>>()?;
    rows.sort_by_key(|row| match &row.outcome {
        RowOutcome::Quote(quote) => (1, quote.trade_date, row.line),
        _ => (0, NaiveDate::MIN, row.line),
    });
    Ok(rows)
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
        (_, 0) => "{spinner} sampling {pos} rows ({per_sec}) {elapsed}",
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

/// Whether `path` looks like a CSV file we can replay (used by the CLI for clearer errors).
pub fn require_file(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::Usage(format!("{} is not a file", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_rows_merge_indices_by_trade_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("two.csv");
        std::fs::write(
            &path,
            "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\n\
A,2000-01-04,1,1,1,1,1,0,1\n\
A,2000-01-05,1,1,1,1,1,0,1\n\
B,2000-01-03,1,1,1,1,1,0,1\n\
B,bad,1,1,1,1,1,0,1\n\
B,2000-01-04,1,1,1,1,1,0,1\n",
        )
        .expect("write");
        let order: Vec<u64> = ordered_rows(&path)
            .expect("rows")
            .iter()
            .map(|row| row.line)
            .collect();
        assert_eq!(order, vec![5, 4, 2, 6, 3]);
    }

    #[test]
    fn options_are_checked() {
        let mut options = ReplayOptions::new("x.csv");
        options.speed = Some(2.0);
        assert!(options.validate().is_err(), "speed needs ordered");
        options.mode = Mode::Ordered;
        assert!(options.validate().is_ok());
        options.rate = Some(10.0);
        assert!(options.validate().is_err(), "rate and speed together");
        let mut options = ReplayOptions::new("x.csv");
        options.count = Some(3);
        assert!(options.validate().is_err(), "count needs sample");
        options.mode = Mode::Sample;
        assert!(options.validate().is_ok());
        options.rate = Some(0.0);
        assert!(options.validate().is_err());
    }
}
