//! Entry point of `stockstream-s3-sink`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stockstream_common::shutdown::run_service;
use stockstream_s3_sink::{Config, run};

/// Consumes quotes from Kafka and writes them exactly once as Parquet files into the lake.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; `STOCKSTREAM__SECTION__KEY` variables override it.
    #[arg(long, env = "STOCKSTREAM_CONFIG")]
    config: Option<PathBuf>,
    /// How long a shutdown may take to flush buffers and commit before the process gives up.
    #[arg(long, default_value = "60s", value_parser = humantime_duration)]
    drain_deadline: Duration,
}

fn humantime_duration(value: &str) -> Result<Duration, String> {
    stockstream_common::config::parse_duration("--drain-deadline", value)
        .map_err(|error| error.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("stockstream-s3-sink: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = config.telemetry.clone();
    run_service(
        "stockstream-s3-sink",
        &telemetry,
        args.drain_deadline,
        |shutdown| run(config, shutdown),
    )
}
