//! Part of `make bench-sink`: freshness — how long from producing a record until the query API
//! answers with it, with the sink's flush interval at 1 s. Prints percentiles; asserts no timing.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use chrono::NaiveDate;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use stockstream_common::config::LakeConfig;
use stockstream_common::headers::SCHEMA_VERSION_HEADER;
use stockstream_common::kafka::{ensure_topics, headers, pipeline_topics, producer_config};
use stockstream_common::record::{Quote, SCHEMA_VERSION};
use stockstream_e2e::configs::{api_config_on, crawler_config_on, sink_config_on};
use stockstream_e2e::{Tansu, kafka_config, query};
use tokio_util::sync::CancellationToken;

const SAMPLES: usize = 50;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize - 1;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with `make bench-sink`"]
async fn freshness_from_produce_to_query() -> Result<()> {
    let tansu = Tansu::start()?;
    let kafka = kafka_config(&tansu.bootstrap, "fresh");
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let work = tempfile::tempdir()?;
    let lake = LakeConfig::Local {
        root: work.path().join("lake"),
    };
    let shutdown = CancellationToken::new();

    let mut sink = sink_config_on(&kafka, lake.clone())?;
    sink.sink.flush_interval = Duration::from_secs(1);
    let sink = tokio::spawn(stockstream_s3_sink::run(sink, shutdown.clone()));
    let crawler = crawler_config_on(&kafka, lake.clone())?;
    let crawler = tokio::spawn(stockstream_glue_crawler::run(crawler, shutdown.clone()));
    let api = api_config_on(&kafka, lake)?;
    let api = stockstream_query_api::start(api, shutdown.clone()).await?;

    let producer: ThreadedProducer<DefaultProducerContext> =
        producer_config(&kafka, "fresh", &[("linger.ms", "0")]).create()?;
    let start = NaiveDate::from_ymd_opt(2001, 1, 1).unwrap_or_default();
    let mut lags = Vec::new();
    for sample in 0..=SAMPLES {
        let day = start + chrono::Days::new(sample as u64);
        let quote = Quote {
            symbol: "FRESH".into(),
            trade_date: day,
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.5,
            adj_close: 10.5,
            volume: 1,
            close_usd: Some(1.0),
        };
        let payload = quote.to_json();
        // Spread the samples over the flush cycle.
        tokio::time::sleep(Duration::from_millis((sample as u64 * 379) % 1000)).await;
        let produced = Instant::now();
        producer
            .send(
                BaseRecord::to(&kafka.topics.quotes)
                    .key("FRESH")
                    .payload(&payload)
                    .headers(headers(&[(SCHEMA_VERSION_HEADER, SCHEMA_VERSION)])),
            )
            .map_err(|(error, _)| error)?;
        producer.flush(Duration::from_secs(10))?;
        let sql = format!(
            "SELECT count(*) FROM quotes WHERE symbol = 'FRESH' AND trade_date = DATE '{day}'"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Before the first file the table does not exist yet: that is "not visible".
            if let Ok(answer) = query(api.address, &sql).await
                && answer["rows"][0][0] == 1
            {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "sample {sample} never became queryable"
            );
            ensure!(
                !sink.is_finished() && !crawler.is_finished(),
                "a service stopped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The first sample creates the table; it is warm-up, not a freshness sample.
        if sample > 0 {
            lags.push(produced.elapsed().as_secs_f64());
        }
    }
    shutdown.cancel();
    let _ = sink.await;
    let _ = crawler.await;
    lags.sort_by(f64::total_cmp);
    println!();
    println!(
        "freshness: produce -> answered by POST /v1/query ({SAMPLES} records, sink flush interval 1s)"
    );
    println!(
        "p50 {:.2}s  p90 {:.2}s  p99 {:.2}s  max {:.2}s  (goal: p99 <= 2s)",
        percentile(&lags, 50.0),
        percentile(&lags, 90.0),
        percentile(&lags, 99.0),
        lags[lags.len() - 1]
    );
    Ok(())
}
