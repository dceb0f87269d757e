//! S3 goes away while records flow (moto is frozen with SIGSTOP, keeping its in-memory objects),
//! then comes back: the sink reports not-ready meanwhile, keeps its offsets uncommitted, retries,
//! and afterwards the lake on S3 holds every record exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_common::lake::{LakeStore, QUOTES_TABLE, open_store};
use stockstream_e2e::configs::sink_config_on;
use stockstream_e2e::{Moto, Tansu, free_port, http_get, kafka_config};
use tokio_util::sync::CancellationToken;

const RECORDS: usize = 20_000;

/// (partition, offset) of every row in the lake, and the row count.
async fn lake_rows(store: &dyn LakeStore) -> Result<(HashSet<(i32, i64)>, usize)> {
    let mut seen = HashSet::new();
    let mut rows = 0;
    for object in store.list(&format!("{QUOTES_TABLE}/")).await? {
        if !object.key.ends_with(".parquet") {
            continue;
        }
        let bytes = store.get(&object.key).await?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            let batch = batch?;
            let partitions = batch
                .column_by_name("kafka_partition")
                .and_then(|column| column.as_any().downcast_ref::<arrow::array::Int32Array>())
                .context("kafka_partition")?;
            let offsets = batch
                .column_by_name("kafka_offset")
                .and_then(|column| column.as_any().downcast_ref::<arrow::array::Int64Array>())
                .context("kafka_offset")?;
            for row in 0..batch.num_rows() {
                seen.insert((partitions.value(row), offsets.value(row)));
                rows += 1;
            }
        }
    }
    Ok((seen, rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_loses_and_duplicates_nothing() -> Result<()> {
    let moto = Moto::start()?;
    let tansu = Tansu::start()?;
    let lake = moto.lake("outage-lake", "", Duration::from_secs(1)).await?;
    let kafka = kafka_config(&tansu.bootstrap, "outage");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;

    let mut config = sink_config_on(&kafka, lake.clone())?;
    let http = format!("127.0.0.1:{}", free_port()).parse()?;
    config.http.listen = http;
    config.sink.group_id = "outage-sink".into();
    config.sink.flush_interval = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(stockstream_s3_sink::run(config, shutdown.clone()));

    // 10 symbols x 2,000 days at 2,500 records/s: 8 s of streaming.
    let mut ingest = stockstream_ingest::Config::load(None)?;
    ingest.kafka = kafka.clone();
    let options = stockstream_ingest::GenerateOptions {
        symbols: (1..=10).map(|index| format!("OUT{index}")).collect(),
        days: 2000,
        start: NaiveDate::from_ymd_opt(1990, 1, 1).context("date")?,
        seed: 5,
    };
    let producer = tokio::task::spawn_blocking(move || {
        stockstream_ingest::stream(&ingest, &options, Some(2500.0), &CancellationToken::new())
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    moto.signal("STOP")?;
    let outage = Instant::now();
    // The sink notices and says so on /health/readyz.
    let not_ready = loop {
        let (status, body) = http_get(http, "/health/readyz").await?;
        if status == 503 && body.contains("lake") {
            break body;
        }
        ensure!(
            outage.elapsed() < Duration::from_secs(60),
            "never not-ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    moto.signal("CONT")?;
    eprintln!(
        "S3 was frozen for {:?}; readyz said: {not_ready}",
        outage.elapsed()
    );

    let summary = producer.await??;
    assert_eq!(summary.produced as usize, RECORDS);
    let store = open_store(&lake).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let (seen, rows) = loop {
        let (seen, rows) = lake_rows(store.as_ref()).await?;
        if seen.len() >= RECORDS || Instant::now() > deadline {
            break (seen, rows);
        }
        ensure!(!sink.is_finished(), "the sink stopped: {:?}", sink.await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (status, body) = http_get(http, "/health/readyz").await?;
    assert_eq!(status, 200, "ready again after the outage: {body}");
    let (_, metrics) = http_get(http, "/metrics").await?;
    assert!(
        metrics.contains("stockstream_sink_lake_retries_total"),
        "{metrics}"
    );
    shutdown.cancel();
    sink.await??;
    assert_eq!(seen.len(), RECORDS, "every record in the lake");
    assert_eq!(rows, RECORDS, "no record twice");
    Ok(())
}
