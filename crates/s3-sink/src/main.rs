//! Entry point of `stockstream-s3-sink`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

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
        config.sink.drain_deadline,
        |shutdown| run(config, shutdown),
    )
}
