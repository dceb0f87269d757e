//! Entry point of `stockstream-glue-crawler`; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stockstream_common::shutdown::run_service;
use stockstream_glue_crawler::{
    Config, compact_once, crawl_and_save, load_catalog, run, sync_glue,
};

/// Keeps the catalog current from `lake.commits` events; rebuilds or prints it on demand.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; `STOCKSTREAM__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "STOCKSTREAM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a service (the default): apply `lake.commits` events to the catalog.
    Run,
    /// Rebuild the catalog by scanning the lake; prints what was added, removed and inconsistent.
    Crawl {
        /// Report only; do not replace the catalog.
        #[arg(long)]
        dry_run: bool,
    },
    /// Reconcile AWS Glue with the lake (crawler.mode = "glue"): register what Glue lacks,
    /// report what Glue lists but the lake does not hold.
    Sync {
        /// Report only; change nothing in Glue.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the current catalog as JSON.
    Show,
    /// Compact small files now (rounds until no partition qualifies, `[lake.compaction]`
    /// settings), finish or undo what a killed run left, delete replaced files whose grace period
    /// is over; prints what was merged. Refuses while the catalog service holds the maintenance
    /// lease (it compacts by itself when `lake.compaction.enabled`).
    Compact {
        /// Report what would be compacted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait for the lease instead of refusing.
        #[arg(long)]
        wait: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("stockstream-glue-crawler: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = config.telemetry.clone();
    match args.command.unwrap_or(Command::Run) {
        Command::Run => run_service(
            "stockstream-glue-crawler",
            &telemetry,
            config.crawler.drain_deadline,
            |shutdown| run(config, shutdown),
        ),
        Command::Crawl { dry_run } => one_shot(async move {
            let report = crawl_and_save(&config, dry_run)
                .await
                .map_err(|error| error.to_string())?;
            serde_json::to_string_pretty(&report).map_err(|error| error.to_string())
        }),
        Command::Sync { dry_run } => one_shot(async move {
            let report = sync_glue(&config, dry_run)
                .await
                .map_err(|error| error.to_string())?;
            serde_json::to_string_pretty(&report).map_err(|error| error.to_string())
        }),
        Command::Compact { dry_run, wait } => one_shot(async move {
            let report = compact_once(&config, dry_run, wait)
                .await
                .map_err(|error| error.to_string())?;
            serde_json::to_string_pretty(&report).map_err(|error| error.to_string())
        }),
        Command::Show => one_shot(async move {
            let catalog = load_catalog(&config)
                .await
                .map_err(|error| error.to_string())?;
            serde_json::to_string_pretty(&catalog).map_err(|error| error.to_string())
        }),
    }
}

/// Runs a one-shot command and prints its JSON answer.
fn one_shot(command: impl std::future::Future<Output = Result<String, String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("stockstream-glue-crawler: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("stockstream-glue-crawler: {error}");
            ExitCode::FAILURE
        }
    }
}
