//! The sink's global memory budget: with a budget far below the data and no other flush trigger
//! in reach, the largest buffers are flushed early ("memory"), and every record still lands once.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use stockstream_common::config::LakeConfig;
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_e2e::metrics::metric_value;
use stockstream_e2e::{
    SLICE_ROWS, Tansu, free_port, http_get, kafka_config, lake_report, test_data,
};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_memory_budget_flushes_early_and_loses_nothing() -> Result<()> {
    let tansu = Tansu::start()?;
    let kafka = kafka_config(&tansu.bootstrap, "memory");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");

    let mut config = stockstream_s3_sink::Config::load(None)?;
    config.kafka = kafka.clone();
    config.lake = LakeConfig::Local { root: lake.clone() };
    let http = format!("127.0.0.1:{}", free_port()).parse()?;
    config.http.listen = http;
    config.sink.flush_interval = Duration::from_secs(600);
    config.sink.flush_records = 1_000_000.try_into()?;
    config.sink.memory_budget = (64 * 1024).try_into()?;
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(stockstream_s3_sink::run(config, shutdown.clone()));

    let mut ingest = stockstream_ingest::Config::load(None)?;
    ingest.kafka = kafka.clone();
    ingest.ingest.state_dir = work.path().join("ingest");
    let options = stockstream_ingest::ReplayOptions::new(test_data());
    tokio::task::spawn_blocking(move || {
        stockstream_ingest::replay(&ingest, &options, &CancellationToken::new())
    })
    .await??;

    // Nothing but the budget can flush before the 600 s interval: waiting for the last rows is
    // enough to see it work; the remainder under the budget is flushed by the drain.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, metrics) = http_get(http, "/metrics").await?;
        let value = |name: &str| metric_value(&metrics, name);
        let written = value("stockstream_sink_records_written_total");
        let buffered = value("stockstream_sink_buffered_records");
        // Everything consumed: written, or buffered under the budget (the drain flushes those).
        if written + buffered >= SLICE_ROWS as f64 {
            assert!(
                metrics.contains("reason=\"memory\""),
                "flushes by memory: {metrics}"
            );
            assert!(written >= 4000.0, "only {written} written before the drain");
            break;
        }
        ensure!(Instant::now() < deadline, "only {written} records written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    sink.await??;
    let report = lake_report(&lake, &kafka)?;
    assert_eq!(report["rows"], SLICE_ROWS, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    Ok(())
}
