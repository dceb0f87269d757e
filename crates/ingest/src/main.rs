//! Entry point of `stockstream-ingest`; see the library docs (`cli.rs` holds the commands).

use std::process::ExitCode;

use clap::Parser;
use stockstream_common::shutdown::run_service;
use stockstream_common::telemetry::init_tracing;
use stockstream_ingest::cli::{Args, Command, error_exit_code, execute};
use stockstream_ingest::{Config, run};

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
            run(config, shutdown)
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
    match runtime.block_on(execute(config, args.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("stockstream-ingest: {error}");
            error_exit_code(error.as_ref())
        }
    }
}
