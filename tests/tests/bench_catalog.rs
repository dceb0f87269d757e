//! `make bench-catalog`: how long a new partition takes from the moment its first record is
//! produced to the moment the catalog lists it — with the local catalog, and with AWS Glue on
//! moto (lake on S3, `partitions` strategy). Prints percentiles; asserts no timing.
//!
//! Ignored in `make test`; run by `make bench-catalog`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use stockstream_common::catalog::Catalog;
use stockstream_common::config::{KafkaConfig, LakeConfig};
use stockstream_common::headers::SCHEMA_VERSION_HEADER;
use stockstream_common::lake::{LakeStore, QUOTES_TABLE, open_store};
use stockstream_common::record::{Quote, SCHEMA_VERSION};
use stockstream_e2e::configs::{crawler_config_on, sink_config_on};
use stockstream_e2e::{Moto, Tansu, kafka_config};
use stockstream_glue_crawler::{CatalogMode, GlueSettings, Strategy};
use tokio_util::sync::CancellationToken;

const PARTITIONS: usize = 20;
const DATABASE: &str = "stockstream_bench";

enum Watch {
    Local(Arc<dyn LakeStore>),
    Glue(aws_sdk_glue::Client),
}

impl Watch {
    async fn has(&self, symbol: &str) -> bool {
        match self {
            Watch::Local(store) => Catalog::load(store.as_ref())
                .await
                .ok()
                .flatten()
                .and_then(|catalog| {
                    catalog.table(DATABASE, QUOTES_TABLE).map(|table| {
                        table
                            .partitions
                            .contains_key(&format!("symbol={symbol}/year=2020"))
                    })
                })
                .unwrap_or(false),
            Watch::Glue(glue) => glue
                .get_partition()
                .database_name(DATABASE)
                .table_name(QUOTES_TABLE)
                .partition_values(symbol)
                .partition_values("2020")
                .send()
                .await
                .is_ok(),
        }
    }
}

async fn measure(
    name: &str,
    kafka: KafkaConfig,
    lake: LakeConfig,
    mode: CatalogMode,
    watch: Watch,
) -> Result<Vec<f64>> {
    let mut sink_config = sink_config_on(&kafka, lake.clone())?;
    sink_config.sink.group_id = format!("{name}-sink");
    sink_config.sink.flush_interval = Duration::from_secs(1);
    let mut crawler_config = crawler_config_on(&kafka, lake)?;
    crawler_config.crawler.group_id = format!("{name}-crawler");
    crawler_config.crawler.database = DATABASE.into();
    crawler_config.crawler.mode = mode;
    stockstream_common::kafka::ensure_topics(
        &kafka,
        &stockstream_common::kafka::pipeline_topics(&kafka),
    )
    .await?;
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(stockstream_s3_sink::run(sink_config, shutdown.clone()));
    let crawler = tokio::spawn(stockstream_glue_crawler::run(
        crawler_config,
        shutdown.clone(),
    ));
    let producer: ThreadedProducer<DefaultProducerContext> =
        stockstream_common::kafka::producer_config(&kafka, "bench", &[("linger.ms", "0")])
            .create()?;

    let mut lags = Vec::new();
    for index in 0..PARTITIONS {
        let symbol = format!("BNCH{index}");
        let quote = Quote {
            symbol: symbol.clone(),
            trade_date: chrono::NaiveDate::from_ymd_opt(2020, 6, 1).unwrap_or_default(),
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.5,
            adj_close: 10.5,
            volume: 1,
            close_usd: Some(1.0),
        };
        let payload = quote.to_json();
        let produced = Instant::now();
        producer
            .send(
                BaseRecord::to(&kafka.topics.quotes)
                    .key(symbol.as_bytes())
                    .payload(&payload)
                    .headers(stockstream_common::kafka::headers(&[(
                        SCHEMA_VERSION_HEADER,
                        SCHEMA_VERSION,
                    )])),
            )
            .map_err(|(error, _)| error)?;
        producer.flush(Duration::from_secs(10))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !watch.has(&symbol).await {
            ensure!(
                Instant::now() < deadline,
                "{name}: {symbol} never reached the catalog"
            );
            ensure!(
                !sink.is_finished() && !crawler.is_finished(),
                "{name}: a service stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lag = produced.elapsed().as_secs_f64();
        eprintln!(
            "bench-catalog: {name}: partition {index} visible {lag:.2}s after its first record was produced"
        );
        lags.push(lag);
    }
    shutdown.cancel();
    let _ = sink.await;
    let _ = crawler.await;
    lags.sort_by(f64::total_cmp);
    Ok(lags)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize - 1;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with `make bench-catalog`"]
async fn catalog_lag_for_a_new_partition() -> Result<()> {
    let tansu = Tansu::start()?;
    let work = tempfile::tempdir()?;

    let local_lake = LakeConfig::Local {
        root: work.path().join("lake"),
    };
    let local_store = open_store(&local_lake).await?;
    let local = measure(
        "local",
        kafka_config(&tansu.bootstrap, "bench-local"),
        local_lake,
        CatalogMode::Local,
        Watch::Local(local_store),
    )
    .await?;

    let moto = Moto::start()?;
    let aws = moto.aws();
    let sdk = aws.sdk_config().await;
    let s3_lake = moto.lake("bench-lake", "", Duration::from_secs(10)).await?;
    let glue = measure(
        "glue",
        kafka_config(&tansu.bootstrap, "bench-glue"),
        s3_lake,
        CatalogMode::Glue(GlueSettings {
            strategy: Strategy::Partitions,
            aws,
            crawler_name: String::new(),
            crawler_role: String::new(),
            crawler_debounce: Duration::ZERO,
        }),
        Watch::Glue(aws_sdk_glue::Client::new(&sdk)),
    )
    .await?;

    println!();
    println!(
        "catalog lag: first record produced -> partition listed by the catalog ({PARTITIONS} new partitions, sink flush interval 1s, batch window 200ms)"
    );
    println!(
        "{:<34}{:>8}{:>8}{:>8}",
        "catalog", "p50 s", "p90 s", "max s"
    );
    for (name, lags) in [
        ("local (lake on disk)", &local),
        ("AWS Glue on moto (lake on S3)", &glue),
    ] {
        println!(
            "{name:<34}{:>8.2}{:>8.2}{:>8.2}",
            percentile(lags, 50.0),
            percentile(lags, 90.0),
            lags[lags.len() - 1]
        );
    }
    Ok(())
}
