//! CSV replay: every row of an `indexProcessed.csv`-shaped file into Kafka, in file order, as
//! fast as the broker acknowledges, resuming where an earlier replay of the same content stopped.

use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stockstream_common::kafka::{Producer, headers, producer_config};
use stockstream_common::record::{CSV_COLUMNS, Quote, SCHEMA_VERSION, SCHEMA_VERSION_HEADER};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::offsets::{OffsetStore, SourceOffset, fingerprint};

/// How often progress is checkpointed into the source-offset store.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How often progress is logged when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The CSV file.
    pub file: PathBuf,
    /// Ignore recorded progress and replay the whole file again.
    pub from_start: bool,
    /// Validate and count only; produce nothing and record nothing.
    pub dry_run: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplaySummary {
    /// The file replayed.
    pub file: PathBuf,
    /// Its content fingerprint.
    pub fingerprint: String,
    /// Data rows read in this run (after the resume point).
    pub rows_read: u64,
    /// Records produced to the quotes topic (acknowledged by Kafka unless `dry_run`).
    pub produced: u64,
    /// Bad rows sent to the dead-letter topic, each with its line and reason.
    pub dead_lettered: u64,
    /// Rows whose fields were all empty.
    pub skipped_empty: u64,
    /// Rows skipped because an earlier replay already produced them.
    pub skipped_already_replayed: u64,
    /// Line after which this run started.
    pub resumed_after_line: u64,
    /// Whether a shutdown signal stopped the replay early.
    pub interrupted: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Wall-clock seconds.
    pub elapsed_seconds: f64,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.rows_read as f64 / self.elapsed_seconds.max(1e-9);
        write!(
            formatter,
            "{}{}: read {} rows, produced {}, dead-lettered {}, skipped {} empty and {} already replayed (resumed after line {}) in {:.1}s ({:.0} rows/s){}",
            if self.dry_run {
                "dry run of "
            } else {
                "replayed "
            },
            self.file.display(),
            self.rows_read,
            self.produced,
            self.dead_lettered,
            self.skipped_empty,
            self.skipped_already_replayed,
            self.resumed_after_line,
            self.elapsed_seconds,
            rate,
            if self.interrupted {
                " — interrupted, run again to resume"
            } else {
                ""
            },
        )
    }
}

/// Replays `options.file` into the quotes topic; blocks until every record is acknowledged.
///
/// Cancelling `shutdown` stops reading, waits for what is in flight and records the progress.
pub fn replay(
    config: &Config,
    options: &ReplayOptions,
    shutdown: &CancellationToken,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    let path = options.file.as_path();
    let file_fingerprint = fingerprint(path)?;
    let topic = config.kafka.topics.quotes.as_str();
    let mut offsets = OffsetStore::open(&config.ingest.state_dir)?;
    let resume_after = match offsets.get(topic, &file_fingerprint) {
        Some(offset) if !options.from_start => offset.line,
        _ => 0,
    };
    let previous = offsets.get(topic, &file_fingerprint).cloned();
    let mut summary = ReplaySummary {
        file: path.to_path_buf(),
        fingerprint: file_fingerprint.clone(),
        resumed_after_line: resume_after,
        dry_run: options.dry_run,
        ..ReplaySummary::default()
    };

    let producer = if options.dry_run {
        None
    } else {
        let linger = config.ingest.linger.as_millis().to_string();
        let batch = config.ingest.batch_bytes.to_string();
        let timeout = config.ingest.delivery_timeout.as_millis().to_string();
        let client = producer_config(
            &config.kafka,
            "ingest-producer",
            &[
                ("compression.type", config.ingest.compression.as_str()),
                ("linger.ms", &linger),
                ("batch.size", &batch),
                ("message.timeout.ms", &timeout),
            ],
        );
        Some(Producer::new(&client)?)
    };

    let input = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let total_bytes = input.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 20, input));
    let bar = progress_bar(options.progress, total_bytes);
    let format_error = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };

    let mut record = csv::ByteRecord::new();
    let mut header_seen = false;
    let mut last_line = 0;
    let mut last_checkpoint = Instant::now();
    let mut last_log = Instant::now();
    let short_fingerprint = &file_fingerprint[..16];
    let source_file = path.display().to_string();
    loop {
        if shutdown.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) if error.is_io_error() => return Err(format_error(error.to_string())),
            Err(error) => return Err(format_error(format!("unreadable CSV: {error}"))),
        }
        let position = record
            .position()
            .cloned()
            .unwrap_or_else(csv::Position::new);
        let line = position.line();
        last_line = line;
        if !header_seen {
            header_seen = true;
            check_header(&record).map_err(format_error)?;
            continue;
        }
        if line <= resume_after {
            summary.skipped_already_replayed += 1;
            continue;
        }
        summary.rows_read += 1;
        let fields: Vec<&str> = record
            .iter()
            .map(|field| std::str::from_utf8(field).unwrap_or("\u{fffd}"))
            .collect();
        if fields.iter().all(|field| field.trim().is_empty()) {
            summary.skipped_empty += 1;
            continue;
        }
        let line_text = line.to_string();
        let outcome = if record
            .iter()
            .any(|field| std::str::from_utf8(field).is_err())
        {
            Err("row is not valid UTF-8".to_string())
        } else {
            Quote::from_csv_fields(&fields).map_err(|error| error.to_string())
        };
        match outcome {
            Ok(quote) => {
                if let Some(producer) = &producer {
                    producer.send(
                        topic,
                        quote.symbol.as_bytes(),
                        &quote.to_json(),
                        headers(&[
                            (SCHEMA_VERSION_HEADER, SCHEMA_VERSION),
                            ("stockstream-source", short_fingerprint),
                            ("stockstream-source-line", &line_text),
                        ]),
                        line,
                    )?;
                }
                summary.produced += 1;
                metrics::counter!("stockstream_ingest_records_produced_total").increment(1);
            }
            Err(reason) => {
                tracing::warn!(file = %source_file, line, %reason, "dead-lettering a bad row");
                if let Some(producer) = &producer {
                    let raw = fields.join(",");
                    producer.send(
                        &config.kafka.topics.dlq,
                        b"",
                        raw.as_bytes(),
                        headers(&[
                            ("stockstream-error", &reason),
                            ("stockstream-stage", "ingest"),
                            ("stockstream-source-file", &source_file),
                            ("stockstream-source-line", &line_text),
                            ("stockstream-source", short_fingerprint),
                        ]),
                        line,
                    )?;
                }
                summary.dead_lettered += 1;
                metrics::counter!("stockstream_ingest_dead_letters_total").increment(1);
            }
        }
        bar.set_position(position.byte());
        if let Some(producer) = &producer
            && last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
        {
            last_checkpoint = Instant::now();
            checkpoint(
                &mut offsets,
                topic,
                &summary,
                previous.as_ref(),
                producer,
                line,
                resume_after,
            )?;
        }
        if bar.is_hidden() && last_log.elapsed() >= LOG_INTERVAL {
            last_log = Instant::now();
            tracing::info!(
                file = %source_file,
                line,
                produced = summary.produced,
                dead_lettered = summary.dead_lettered,
                percent = (position.byte() as f64 * 100.0 / total_bytes.max(1) as f64).round(),
                "replaying"
            );
        }
    }
    if !header_seen {
        return Err(format_error(format!(
            "file is empty; expected the header `{}`",
            CSV_COLUMNS.join(",")
        )));
    }
    bar.finish_and_clear();

    if let Some(producer) = &producer {
        producer.flush(config.ingest.delivery_timeout + Duration::from_secs(5))?;
        let acknowledged = checkpoint(
            &mut offsets,
            topic,
            &summary,
            previous.as_ref(),
            producer,
            last_line,
            resume_after,
        );
        let failures = producer.take_failures();
        if let Some(first) = failures.iter().min_by_key(|failure| failure.id) {
            return Err(Error::Delivery {
                count: failures.len(),
                first_line: first.id,
                first_error: first.error.clone(),
            });
        }
        acknowledged?;
    }
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Records the highest line below which every record was acknowledged.
fn checkpoint(
    offsets: &mut OffsetStore,
    topic: &str,
    summary: &ReplaySummary,
    previous: Option<&SourceOffset>,
    producer: &Producer,
    last_line: u64,
    resume_after: u64,
) -> Result<()> {
    let failures_floor = producer.lowest_failed();
    let mut acknowledged = producer
        .lowest_in_flight()
        .map_or(last_line, |lowest| lowest.saturating_sub(1));
    if let Some(failed) = failures_floor {
        acknowledged = acknowledged.min(failed.saturating_sub(1));
    }
    if acknowledged <= resume_after {
        return Ok(());
    }
    let base = previous.filter(|_| resume_after > 0);
    offsets.record(
        topic,
        &summary.fingerprint,
        SourceOffset {
            file: summary.file.clone(),
            line: acknowledged,
            produced: base.map_or(0, |offset| offset.produced) + summary.produced,
            dead_lettered: base.map_or(0, |offset| offset.dead_lettered) + summary.dead_lettered,
            updated_at: Utc::now(),
        },
    )
}

fn check_header(record: &csv::ByteRecord) -> std::result::Result<(), String> {
    let names: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let text = String::from_utf8_lossy(field);
            let text = if index == 0 {
                text.trim_start_matches('\u{feff}').to_string()
            } else {
                text.into_owned()
            };
            text.trim().to_string()
        })
        .collect();
    if names.iter().map(String::as_str).eq(CSV_COLUMNS) {
        Ok(())
    } else {
        Err(format!(
            "header is `{}`, expected `{}` (the columns of indexProcessed.csv)",
            names.join(","),
            CSV_COLUMNS.join(",")
        ))
    }
}

fn progress_bar(enabled: bool, total_bytes: u64) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
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
