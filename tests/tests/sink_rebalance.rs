//! Two sinks in one consumer group through a rebalance, on librdkafka's mock cluster (tansu 0.6.0
//! gives both members of a group every partition, so it cannot host this test): sink A starts
//! alone, sink B joins (A loses partitions and drops their unflushed buffers), then A stops (B
//! takes everything). Every record lands in the lake exactly once.

use std::time::Duration;

use anyhow::Result;
use stockstream_e2e::configs::sink_config;
use stockstream_e2e::{mock_kafka, stream_quotes, wait_for_complete_lake};
use tokio_util::sync::CancellationToken;

const RECORDS: u64 = 20_000;

fn rebalancing_sink(
    kafka: &stockstream_common::config::KafkaConfig,
    lake: &std::path::Path,
) -> Result<stockstream_s3_sink::Config> {
    let mut config = sink_config(kafka, lake)?;
    config.sink.group_id = "rebalance-sink".into();
    config.sink.flush_interval = Duration::from_millis(700);
    config.sink.session_timeout = Duration::from_secs(6);
    Ok(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_through_a_rebalance_write_each_record_once() -> Result<()> {
    // The sinks' rebalance logs show with `--nocapture`.
    stockstream_common::telemetry::init_tracing(&stockstream_common::config::TelemetryConfig {
        log_format: stockstream_common::config::LogFormat::Pretty,
        log_level: "info".into(),
    });
    let (_mock, kafka) = mock_kafka("rebalance", 6)?;
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");

    // 20 symbols x 1,000 days at 4,000 records/s: 5 s of streaming.
    let producer = stream_quotes(&kafka, "RB", 20, 1000, 4000.0, 8)?;

    let token_a = CancellationToken::new();
    let sink_a = tokio::spawn(stockstream_s3_sink::run(
        rebalancing_sink(&kafka, &lake)?,
        token_a.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let token_b = CancellationToken::new();
    let sink_b = tokio::spawn(stockstream_s3_sink::run(
        rebalancing_sink(&kafka, &lake)?,
        token_b.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    token_a.cancel();
    sink_a.await??;
    let summary = producer.await??;
    assert_eq!(summary.produced, RECORDS);

    let report = wait_for_complete_lake(&lake, &kafka, Duration::from_secs(120), || {
        sink_b.is_finished()
    })
    .await?;
    token_b.cancel();
    sink_b.await??;
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["rows"], RECORDS, "{report}");
    Ok(())
}
