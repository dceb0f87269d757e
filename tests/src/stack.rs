//! The local pipeline in one process, for end-to-end tests: a tansu broker with the real slice
//! replayed into it, and the sink, the catalog service and the query API started on a local lake.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use stockstream_common::config::KafkaConfig;
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_common::lake::PartitionTemplate;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::configs::{api_config_on, crawler_config_on, local_lake};
use crate::metrics::read_metric;
use crate::{SLICE_ROWS, Tansu, free_port, kafka_config, query};

/// The in-process services of one test.
#[derive(Debug)]
pub struct Services {
    pub sink: Option<(
        CancellationToken,
        JoinHandle<stockstream_s3_sink::Result<()>>,
    )>,
    pub crawler: (
        CancellationToken,
        JoinHandle<stockstream_glue_crawler::Result<()>>,
    ),
    pub api_token: CancellationToken,
    pub api: SocketAddr,
    /// Base URL of the sink's health and metrics.
    pub sink_url: String,
    /// Base URL of the catalog service's health and metrics.
    pub crawler_url: String,
}

pub use crate::configs::{ingest_config, sink_config, sink_config_with};

pub async fn start_services(kafka: &KafkaConfig, lake: &Path) -> Result<Services> {
    start_services_with(kafka, lake, PartitionTemplate::default()).await
}

pub async fn start_services_with(
    kafka: &KafkaConfig,
    lake: &Path,
    template: PartitionTemplate,
) -> Result<Services> {
    start_services_custom(kafka, lake, template, |_| {}, |_| {}).await
}

/// The services, with the sink's and the query API's configuration adjusted by `sink` and `api`
/// before they start.
pub async fn start_services_custom(
    kafka: &KafkaConfig,
    lake: &Path,
    template: PartitionTemplate,
    sink: impl FnOnce(&mut stockstream_s3_sink::Config),
    api: impl FnOnce(&mut stockstream_query_api::Config),
) -> Result<Services> {
    start_services_full(kafka, lake, template, sink, |_| {}, api).await
}

/// The services, each one's configuration adjusted before it starts.
pub async fn start_services_full(
    kafka: &KafkaConfig,
    lake: &Path,
    template: PartitionTemplate,
    sink: impl FnOnce(&mut stockstream_s3_sink::Config),
    crawler: impl FnOnce(&mut stockstream_glue_crawler::Config),
    api: impl FnOnce(&mut stockstream_query_api::Config),
) -> Result<Services> {
    // Service logs appear with `cargo test -- --nocapture` (RUST_LOG picks the level).
    stockstream_common::telemetry::init_tracing(&stockstream_common::config::TelemetryConfig {
        log_format: stockstream_common::config::LogFormat::Pretty,
        log_level: "warn".into(),
    });
    let sink_token = CancellationToken::new();
    let mut sink_config = sink_config_with(kafka, lake, template)?;
    sink_config.http.listen = format!("127.0.0.1:{}", free_port()).parse()?;
    let sink_url = format!("http://{}", sink_config.http.listen);
    sink(&mut sink_config);
    let sink = tokio::spawn(stockstream_s3_sink::run(sink_config, sink_token.clone()));

    let mut crawler_config = crawler_config_on(kafka, local_lake(lake))?;
    crawler_config.http.listen = format!("127.0.0.1:{}", free_port()).parse()?;
    let crawler_url = format!("http://{}", crawler_config.http.listen);
    crawler(&mut crawler_config);
    let crawler_token = CancellationToken::new();
    let crawler = tokio::spawn(stockstream_glue_crawler::run(
        crawler_config,
        crawler_token.clone(),
    ));

    let mut api_config = api_config_on(kafka, local_lake(lake))?;
    // Debug builds on 2 busy cores: a full scan of a daily layout (one file per trading day) can
    // outlast the default 10 s sync wait; the tests check answers, not latency.
    api_config.query.sync_wait = Duration::from_secs(90);
    api_config.query.timeout = Duration::from_secs(120);
    api_config.status.services = vec![
        ("stockstream-s3-sink".to_string(), sink_url.clone()),
        ("stockstream-glue-crawler".to_string(), crawler_url.clone()),
    ];
    api(&mut api_config);
    let api_token = CancellationToken::new();
    let api = stockstream_query_api::start(api_config, api_token.clone()).await?;
    Ok(Services {
        sink: Some((sink_token, sink)),
        crawler: (crawler_token, crawler),
        api_token,
        api: api.address,
        sink_url,
        crawler_url,
    })
}

pub async fn replay(
    config: &stockstream_ingest::Config,
    file: &Path,
    from_start: bool,
) -> Result<stockstream_ingest::ReplaySummary> {
    let config = config.clone();
    let mut options = stockstream_ingest::ReplayOptions::new(file);
    options.from_start = from_start;
    let summary = tokio::task::spawn_blocking(move || {
        stockstream_ingest::replay(&config, &options, &CancellationToken::new())
    })
    .await??;
    Ok(summary)
}

/// A fresh broker with the real slice replayed into the topics of `name`, and a work directory.
pub async fn replayed_slice(
    name: &str,
    csv: &Path,
) -> Result<(Tansu, KafkaConfig, tempfile::TempDir)> {
    let broker = Tansu::start()?;
    let kafka = kafka_config(&broker.bootstrap, name);
    let work = tempfile::tempdir()?;
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let summary = replay(
        &ingest_config(&kafka, &work.path().join("ingest"))?,
        csv,
        false,
    )
    .await?;
    assert_eq!(summary.produced, SLICE_ROWS);
    Ok((broker, kafka, work))
}

pub fn scalar(answer: &Value) -> Result<&Value> {
    answer["rows"][0].get(0).context("answer has no first cell")
}

impl Services {
    /// Fails if the sink or the catalog service stopped on its own (with its error).
    pub async fn check_running(&mut self) -> Result<()> {
        if let Some((_, task)) = &mut self.sink
            && task.is_finished()
        {
            bail!("the sink stopped: {:?}", task.await);
        }
        if self.crawler.1.is_finished() {
            bail!(
                "the catalog service stopped: {:?}",
                (&mut self.crawler.1).await
            );
        }
        Ok(())
    }
}

/// Polls `sql` (a single-number query) until it answers `expected`, for up to `timeout`.
pub async fn wait_for_count(
    services: &mut Services,
    sql: &str,
    expected: u64,
    timeout: Duration,
) -> Result<()> {
    let api = services.api;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        services.check_running().await?;
        match query(api, sql).await {
            Ok(answer) if scalar(&answer)?.as_u64() == Some(expected) => return Ok(()),
            Ok(answer) => last = answer["rows"].to_string(),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("`{sql}` did not reach {expected} within {timeout:?}; last: {last}")
}

/// The sink's `stockstream_sink_records_skipped_total` (process-wide), read from `/metrics`.
pub async fn skipped_records(api: SocketAddr) -> Result<u64> {
    let skipped = read_metric(api, "stockstream_sink_records_skipped_total").await?;
    Ok(skipped as u64)
}

impl Drop for Services {
    /// A failing test still stops every service, so the runtime can shut down.
    fn drop(&mut self) {
        if let Some((token, _)) = &self.sink {
            token.cancel();
        }
        self.crawler.0.cancel();
        self.api_token.cancel();
    }
}

pub async fn stop_sink(services: &mut Services) -> Result<()> {
    if let Some((token, task)) = services.sink.take() {
        token.cancel();
        task.await??;
    }
    Ok(())
}

pub async fn stop(mut services: Services) -> Result<()> {
    stop_sink(&mut services).await?;
    services.crawler.0.cancel();
    (&mut services.crawler.1).await??;
    services.api_token.cancel();
    Ok(())
}
