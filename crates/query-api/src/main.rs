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

/// zstd's C code still allocates from glibc's malloc: a 95 KiB decompression context per column
/// chunk read, freed at once. With glibc's default trim threshold (128 KiB) every free handed those
/// pages back (`madvise`) and the next context faulted them in again; keeping up to 4 MiB took
/// warm `market_yearly` on the 39,000-file bench lake from 9.3 to 7.1 CPU-seconds
/// (docs/query-api.md, "zstd's C side").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_c_heap() {
    /// How much free memory glibc's malloc keeps at the top of a heap.
    const C_HEAP_TRIM_THRESHOLD: libc::c_int = 4 << 20;
    // SAFETY: `mallopt` only sets one of glibc malloc's parameters (under the allocator's own
    // lock); it is called first thing in `main`, and its result is checked.
    let applied = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, C_HEAP_TRIM_THRESHOLD) };
    if applied != 1 {
        eprintln!(
            "stockstream-query-api: glibc refused M_TRIM_THRESHOLD; running with its default"
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_c_heap() {}

/// Serves SQL over the lake's catalogued tables on HTTP.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; `STOCKSTREAM__SECTION__KEY` variables override it.
    #[arg(long, env = "STOCKSTREAM_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    keep_freed_c_heap();
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
