//! Entry point of `stockstream-ingest`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use stockstream_common::kafka::{
    ADMIN_TIMEOUT, ensure_topics, pipeline_topics, topic_record_count,
};
use stockstream_common::shutdown::{run_service, signal_token};
use stockstream_common::telemetry::init_tracing;
use stockstream_ingest::replay::{self, prepare};
use stockstream_ingest::{Config, FileFormat, GenerateOptions, ReplayOptions, stream, write_file};

/// Gets stock market data into Kafka: replays CSV files, generates synthetic quotes, and serves
/// an HTTP push endpoint. Every record is acknowledged by Kafka (idempotent producer, acks=all)
/// before it counts; bad rows go to the dead-letter topic with their origin and reason.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; `STOCKSTREAM__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "STOCKSTREAM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("stockstream-ingest: {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(args.command, Command::Serve) {
        let drain = config.ingest.drain_deadline;
        let telemetry = config.telemetry.clone();
        return run_service("stockstream-ingest", &telemetry, drain, |shutdown| {
            stockstream_ingest::serve::serve(config, shutdown)
        });
    }
    init_tracing(&config.telemetry);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("stockstream-ingest: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move { execute(config, args.command).await });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("stockstream-ingest: {error}");
            let usage = error
                .downcast_ref::<stockstream_ingest::Error>()
                .is_some_and(|error| {
                    matches!(
                        error,
                        stockstream_ingest::Error::Usage(_)
                            | stockstream_ingest::Error::Format { .. }
                    )
                });
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn execute(config: Config, command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Replay { options, json } => {
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
            Ok(if summary.failed > 0 {
                ExitCode::FAILURE
            } else if !summary.file_errors().is_empty() {
                ExitCode::from(2)
            } else if summary.stopped.is_some() {
                ExitCode::from(3)
            } else if summary.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
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
            let symbols = match symbol_count {
                Some(count) => (1..=count).map(|index| format!("SYN{index}")).collect(),
                None => symbols,
            };
            let options = GenerateOptions {
                symbols,
                days,
                start,
                seed,
            };
            if let Some(output) = output {
                let rows = write_file(&options, &output, format)?;
                println!(
                    "generated {rows} rows into {} (seed {seed})",
                    output.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
            let shutdown = signal_token();
            let summary =
                tokio::task::spawn_blocking(move || stream(&config, &options, rate, &shutdown))
                    .await??;
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
        Command::Serve => unreachable!("served by run_service"),
        Command::Topics => {
            let topics = pipeline_topics(&config.kafka);
            ensure_topics(&config.kafka, &topics).await?;
            for (topic, partitions) in topics {
                println!("topic {topic} ready ({partitions} partition(s) when created)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Count { topic } => {
            let topic = topic.unwrap_or_else(|| config.kafka.topics.quotes.clone());
            let kafka = config.kafka.clone();
            let count = tokio::task::spawn_blocking(move || {
                topic_record_count(&kafka, &topic, ADMIN_TIMEOUT)
            })
            .await??;
            println!("{count}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
