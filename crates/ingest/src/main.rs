//! Entry point of `stockstream-ingest`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use stockstream_common::kafka::{
    ADMIN_TIMEOUT, ensure_topics, pipeline_topics, topic_record_count,
};
use stockstream_common::shutdown::signal_token;
use stockstream_common::telemetry::init_tracing;
use stockstream_ingest::replay::require_file;
use stockstream_ingest::{Config, GenerateOptions, ReplayOptions, replay, write_csv};

/// Gets stock market data into Kafka: replays CSV files, generates synthetic quotes.
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
    /// Replay a CSV file (indexProcessed.csv columns) into the quotes topic, resuming where an
    /// earlier replay of the same content stopped.
    Replay {
        /// The CSV file.
        #[arg(long)]
        file: PathBuf,
        /// Forget recorded progress and replay the whole file again.
        #[arg(long)]
        from_start: bool,
        /// Validate the file and print the summary without producing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic dataset in the indexProcessed.csv format.
    Generate {
        /// Output file.
        #[arg(long)]
        output: PathBuf,
        /// Comma-separated symbols.
        #[arg(long, default_value = "SYN1,SYN2,SYN3", value_delimiter = ',')]
        symbols: Vec<String>,
        /// Trading days per symbol.
        #[arg(long, default_value_t = 2500)]
        days: u32,
        /// First day (YYYY-MM-DD).
        #[arg(long, default_value = "2000-01-03")]
        start: NaiveDate,
        /// Random seed; the same seed gives the same file.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
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
            ExitCode::FAILURE
        }
    }
}

async fn execute(config: Config, command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Replay {
            file,
            from_start,
            dry_run,
            json,
        } => {
            require_file(&file)?;
            if !dry_run {
                ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
            }
            let shutdown = signal_token();
            let options = ReplayOptions {
                file,
                from_start,
                dry_run,
                progress: true,
            };
            let summary =
                tokio::task::spawn_blocking(move || replay(&config, &options, &shutdown)).await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{summary}");
            }
            Ok(if summary.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Generate {
            output,
            symbols,
            days,
            start,
            seed,
        } => {
            let options = GenerateOptions {
                symbols,
                days,
                start,
                seed,
            };
            let rows = write_csv(&options, &output)?;
            println!(
                "generated {rows} rows into {} (seed {seed})",
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
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
