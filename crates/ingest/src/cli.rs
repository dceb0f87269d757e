//! The command line of `stockstream-ingest`: its arguments and one function per one-shot
//! command (`replay`, `generate`, `topics`, `count`) with its exit status; `serve` runs as a
//! service through [`crate::run`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use stockstream_common::kafka::{
    ADMIN_TIMEOUT, ensure_topics, pipeline_topics, topic_record_count,
};
use stockstream_common::shutdown::signal_token;

use crate::replay::{self, prepare};
use crate::{
    Config, FileFormat, GenerateOptions, ReplayOptions, ReplaySummary, stream, write_file,
};

/// Gets stock market data into Kafka: replays CSV files, generates synthetic quotes, and serves
/// an HTTP push endpoint. Every record is acknowledged by Kafka (idempotent producer, acks=all)
/// before it counts; bad rows go to the dead-letter topic with their origin and reason.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// TOML configuration file; `STOCKSTREAM__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "STOCKSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay quote files (indexProcessed.csv or Yahoo Finance exports; files, directories,
    /// globs, s3:// objects, plain or gzip/zstd) into the quotes topic, resuming each file where
    /// an earlier replay of the same content stopped. Each file's delimiter, decimal separator,
    /// date format, symbol and CloseUSD are inferred first (--dry-run shows them).
    #[command(
        after_help = "Exit status: 0 done, 1 records not delivered (run again to resume), \
2 bad usage or file (nothing sent), 3 stopped by --max-bad-rows, 130 interrupted (run again to resume)."
    )]
    Replay {
        #[command(flatten)]
        options: ReplayOptions,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Generate synthetic quotes (geometric Brownian motion per symbol, deterministic per seed):
    /// into a file with --output, otherwise streamed into the quotes topic.
    Generate {
        /// Output file; without it the quotes go to Kafka.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Format of the output file: csv (indexProcessed.csv columns) or ndjson (one wire-format
        /// record per line).
        #[arg(long, value_enum, default_value = "csv")]
        format: FileFormat,
        /// Comma-separated symbols.
        #[arg(long, default_value = "SYN1,SYN2,SYN3", value_delimiter = ',')]
        symbols: Vec<String>,
        /// Number of symbols named SYN1, SYN2, …; replaces --symbols.
        #[arg(long)]
        symbol_count: Option<u32>,
        /// Trading days per symbol; 0 streams without end (Kafka only).
        #[arg(long, default_value_t = 2500)]
        days: u32,
        /// First day (YYYY-MM-DD).
        #[arg(long, default_value = "2000-01-03")]
        start: NaiveDate,
        /// Random seed; the same seed gives the same quotes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows per second when streaming to Kafka; unpaced when absent.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Run the push service: POST /v1/quotes (NDJSON or CSV), /metrics, /health/livez,
    /// /health/readyz on http.listen (default 127.0.0.1:9100).
    Serve,
    /// Create the pipeline's topics if they do not exist.
    Topics,
    /// Print how many records a topic holds (sum over partitions of high minus low watermark).
    Count {
        /// Topic (default: the quotes topic).
        #[arg(long)]
        topic: Option<String>,
    },
}

/// Exit status 2 for bad usage or a bad file (nothing was sent), 1 for everything else.
pub fn error_exit_code(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    let usage = error
        .downcast_ref::<crate::Error>()
        .is_some_and(|error| matches!(error, crate::Error::Usage(_) | crate::Error::Format { .. }));
    if usage {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Result of a one-shot command: its exit status, or the error that stopped it.
pub type CommandResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// Runs one of the one-shot commands (`serve` runs as a service, see [`crate::run`]).
pub async fn execute(config: Config, command: Command) -> CommandResult {
    match command {
        Command::Replay { options, json } => replay_files(config, options, json).await,
        Command::Generate {
            output,
            format,
            symbols,
            symbol_count,
            days,
            start,
            seed,
            rate,
        } => {
            let options = GenerateOptions {
                symbols: symbols_to_generate(symbols, symbol_count),
                days,
                start,
                seed,
            };
            match output {
                Some(output) => generate_file(&options, &output, format),
                None => generate_into_kafka(config, options, rate).await,
            }
        }
        Command::Serve => Err(crate::Error::Usage(
            "serve runs as a service (stockstream_ingest::run), not as a one-shot command".into(),
        )
        .into()),
        Command::Topics => create_topics(&config).await,
        Command::Count { topic } => print_record_count(config, topic).await,
    }
}

/// `replay`: tells every file's format, creates the topics (unless a dry run), replays until
/// done or interrupted, and prints the summary.
async fn replay_files(config: Config, options: ReplayOptions, json: bool) -> CommandResult {
    // Every file is read and its format told before Kafka is asked anything.
    let (config, options, prepared) = tokio::task::spawn_blocking(move || {
        prepare(&config, &options).map(|prepared| (config, options, prepared))
    })
    .await??;
    if !options.dry_run {
        ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    }
    let shutdown = signal_token();
    let summary = tokio::task::spawn_blocking(move || {
        replay::execute(&config, &options, prepared, &shutdown)
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(replay_exit_code(&summary))
}

/// The exit status `replay --help` documents: 1 records not delivered, 2 a bad file, 3 stopped
/// by `--max-bad-rows`, 130 interrupted, 0 done.
fn replay_exit_code(summary: &ReplaySummary) -> ExitCode {
    if summary.failed > 0 {
        ExitCode::FAILURE
    } else if !summary.file_errors().is_empty() {
        ExitCode::from(2)
    } else if summary.stopped.is_some() {
        ExitCode::from(3)
    } else if summary.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}

/// The symbols `generate` makes quotes for: `SYN1` … `SYN<count>` when a count is given, else
/// the listed ones.
fn symbols_to_generate(symbols: Vec<String>, symbol_count: Option<u32>) -> Vec<String> {
    match symbol_count {
        Some(count) => (1..=count).map(|index| format!("SYN{index}")).collect(),
        None => symbols,
    }
}

/// `generate --output`: writes the quotes into a file.
fn generate_file(options: &GenerateOptions, output: &Path, format: FileFormat) -> CommandResult {
    let rows = write_file(options, output, format)?;
    println!(
        "generated {rows} rows into {} (seed {})",
        output.display(),
        options.seed
    );
    Ok(ExitCode::SUCCESS)
}

/// `generate` without `--output`: streams the quotes into the quotes topic at `rate` rows per
/// second until done or interrupted; fails when a record was not delivered.
async fn generate_into_kafka(
    config: Config,
    options: GenerateOptions,
    rate: Option<f64>,
) -> CommandResult {
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let shutdown = signal_token();
    let summary =
        tokio::task::spawn_blocking(move || stream(&config, &options, rate, &shutdown)).await??;
    println!(
        "generated {} records into Kafka in {:.1}s ({} not delivered){}",
        summary.produced,
        summary.elapsed_seconds,
        summary.failed,
        if summary.interrupted {
            " — interrupted"
        } else {
            ""
        }
    );
    Ok(if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `topics`: creates the pipeline's topics that do not exist yet.
async fn create_topics(config: &Config) -> CommandResult {
    let topics = pipeline_topics(&config.kafka);
    ensure_topics(&config.kafka, &topics).await?;
    for (topic, partitions) in topics {
        println!("topic {topic} ready ({partitions} partition(s) when created)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `count`: prints how many records `topic` (default: the quotes topic) holds.
async fn print_record_count(config: Config, topic: Option<String>) -> CommandResult {
    let topic = topic.unwrap_or_else(|| config.kafka.topics.quotes.clone());
    let kafka = config.kafka.clone();
    let count =
        tokio::task::spawn_blocking(move || topic_record_count(&kafka, &topic, ADMIN_TIMEOUT))
            .await??;
    println!("{count}");
    Ok(ExitCode::SUCCESS)
}
