//! `make bench-query`: the query API against DuckDB on the same Parquet files.
//!
//! - `bench_queries_agree_with_duckdb` (in `make test`, a few seconds): the benchmark's query list
//!   over a small generated lake — every query returns rows through HTTP, in process and in
//!   DuckDB, and the answers agree (`scripts/bench_query.py check`).
//! - `build_lakes` (ignored; run by `make bench-query`): builds or finds the two 10 M-row lakes in
//!   `$STOCKSTREAM_CACHE/bench-query/` and prints them as one `BENCH_LAKES {json}` line.
//! - `in_process` (ignored; run by `scripts/bench_query.py`): times the query list on the embedded
//!   engine in this process, without HTTP, over the lake `BENCH_QUERY_LAKE`: cold (each query
//!   first in a freshly started engine) and warm (median of `BENCH_QUERY_RUNS`, default 5, after
//!   the footers are read); writes JSON to `BENCH_QUERY_OUT`.
//!
//! The timings and ratios are printed by `scripts/bench_query.py`; nothing here asserts a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;
use stockstream_e2e::bench_query::{BenchLake, InProcessEngine, cache_dir, queries};
use stockstream_e2e::python;
use tokio_util::sync::CancellationToken;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_query.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_queries_agree_with_duckdb() -> Result<()> {
    let work = tempfile::tempdir()?;
    let built = BenchLake::smoke().build(&work.path().join("lake")).await?;
    ensure!(built.rows == 20_000 && built.files > 100, "{built:?}");

    let engine = InProcessEngine::start(&built.root).await?;
    for query in queries()? {
        let rows = engine.run(&query.sql).await?;
        ensure!(rows > 0, "{} returned no rows in process", query.name);
    }
    drop(engine);

    let shutdown = CancellationToken::new();
    let mut config = stockstream_query_api::Config::load(None)?;
    config.lake = stockstream_common::config::LakeConfig::Local {
        root: built.root.clone(),
    };
    config.query.follow_commits = false;
    config.http.listen = "127.0.0.1:0".parse()?;
    let api = stockstream_query_api::start(config, shutdown.clone())
        .await?
        .address;
    let root = built.root.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script())
            .arg("check")
            .arg("--lake")
            .arg(&root)
            .arg("--api")
            .arg(api.to_string())
            .output()
    })
    .await??;
    shutdown.cancel();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "bench_query.py check failed:\n{text}"
    );
    let count = queries()?.len();
    ensure!(
        text.contains(&format!("{count} of {count} queries agree")),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds 10 M-row lakes; run by make bench-query"]
async fn build_lakes() -> Result<()> {
    let cache = cache_dir()?;
    std::fs::create_dir_all(&cache)?;
    let mut built = Vec::new();
    for lake in BenchLake::benchmark() {
        built.push(lake.ensure(&cache).await?);
    }
    println!("BENCH_LAKES {}", serde_json::to_string(&built)?);
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a built lake; run by scripts/bench_query.py"]
async fn in_process() -> Result<()> {
    let root = PathBuf::from(std::env::var("BENCH_QUERY_LAKE").context("BENCH_QUERY_LAKE")?);
    let out = PathBuf::from(std::env::var("BENCH_QUERY_OUT").context("BENCH_QUERY_OUT")?);
    let runs: usize = std::env::var("BENCH_QUERY_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(5);
    let queries = queries()?;

    let mut cold = BTreeMap::new();
    let mut starts = Vec::new();
    for query in &queries {
        let started = Instant::now();
        let engine = InProcessEngine::start(&root).await?;
        starts.push(millis(started));
        let started = Instant::now();
        engine.run(&query.sql).await?;
        cold.insert(query.name.clone(), millis(started));
        eprintln!(
            "bench-query: in process, cold {}: {:.1} ms",
            query.name, cold[&query.name]
        );
    }

    let engine = InProcessEngine::start(&root).await?;
    let started = Instant::now();
    engine.wait_for_statistics(Duration::from_secs(600)).await?;
    let statistics_ms = millis(started);
    let mut warm = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for query in &queries {
        rows.insert(query.name.clone(), engine.run(&query.sql).await?);
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            engine.run(&query.sql).await?;
            times.push(millis(started));
        }
        warm.insert(query.name.clone(), median(times));
        eprintln!(
            "bench-query: in process, warm {}: {:.1} ms",
            query.name, warm[&query.name]
        );
    }
    let report = json!({
        "cold_ms": cold,
        "warm_ms": warm,
        "rows": rows,
        "engine_start_ms": median(starts),
        "statistics_ms": statistics_ms,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    Ok(())
}
