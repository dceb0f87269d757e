//! Entry point of `stockstream-query-api`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use stockstream_common::shutdown::run_service;
use stockstream_query_api::{Config, run};

/// mimalloc instead of the system allocator: a scan of many small Parquet files allocates and
/// frees a decoder per column chunk, which glibc's malloc turned into a quarter of the CPU time
/// and a fragmented heap (docs/query-api.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves SQL over the lake's catalogued tables on HTTP.
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
            eprintln!("stockstream-query-api: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = config.telemetry.clone();
    run_service(
        "stockstream-query-api",
        &telemetry,
        config.query.drain_deadline,
        |shutdown| run(config, shutdown),
    )
}
