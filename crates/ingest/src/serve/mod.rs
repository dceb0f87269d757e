//! The push service: `POST /v1/quotes` takes quotes from external feeds and answers once Kafka has
//! acknowledged them.
//!
//! - Bodies are NDJSON (`application/x-ndjson`, `application/jsonl`, or `application/json` with one
//!   object per line or a JSON array), in stockstream's wire format or the original tutorial's
//!   (`{"Index": …, "Date": …, …, "CloseUSD": …}`), or CSV (`text/csv`) with the header of
//!   `indexProcessed.csv`.
//! - A request is all or nothing at validation: if any record is bad, none is produced and the
//!   answer (422) lists every bad record with its line and reason; the bad records are also
//!   dead-lettered with the request id, so nothing is lost even if the caller drops the answer.
//! - Valid requests are produced through the idempotent producer and answered 200 only after every
//!   record is acknowledged; a delivery failure answers 503 with the failed lines.
//! - Bodies above `ingest.max_body_bytes` get 413, an unsupported content type 415.
//!
//! `/metrics`, `/health/livez` and `/health/readyz` (ready while Kafka answers metadata requests)
//! share the listener, and `/openapi.json` describes them all. SIGTERM stops accepting requests,
//! answers the open ones, flushes, exits.
//!
//! - `mod.rs`: starting the service, its router and description, the Kafka readiness probe;
//! - `push.rs`: the `POST /v1/quotes` handler (validation, dead letters, produce, answer);
//! - `body.rs`: reading a body as JSON, NDJSON or CSV into records by line.

mod body;
mod push;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use rdkafka::producer::{FutureProducer, Producer as _};
use stockstream_common::http::{Readiness, ops_router};
use stockstream_common::kafka::{ensure_topics, pipeline_topics, producer_config};
use stockstream_common::record::Quote;
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::config::Config;
use crate::error::{Error, Result};

/// How often Kafka's reachability is checked for `/health/readyz`.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

struct PushState {
    producer: FutureProducer,
    quotes_topic: String,
    dlq_topic: String,
    delivery_timeout: Duration,
    requests: AtomicU64,
}

/// The push service's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "stockstream-ingest push service",
        description = "Quotes from external feeds into Kafka: `POST /v1/quotes` answers once Kafka acknowledged every record; invalid records are dead-lettered with their request and line.",
    ),
    paths(push::push_quotes),
    components(schemas(Quote, push::PushAnswer, push::RecordError)),
    tags((name = "ingest", description = "Quotes into Kafka")),
)]
struct PushDoc;

/// The push endpoint's description ([`ops_router`] adds the operations endpoints').
fn api() -> utoipa::openapi::OpenApi {
    PushDoc::openapi()
}

/// Runs the push service until `shutdown` is cancelled, then answers open requests and flushes.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<()> {
    let (address, service) = start(config, shutdown).await?;
    tracing::info!(%address, "push service ready: POST /v1/quotes");
    service.await.map_err(|join| Error::Panicked {
        what: "the push service",
        message: join.to_string(),
    })?
}

/// Starts the push service; returns the bound address and the task that ends after the drain.
pub async fn start(
    config: Config,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<Result<()>>)> {
    // The recorder first: the Kafka watcher's first figures would be lost otherwise.
    let metrics = metrics_handle();
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let linger = config.ingest.linger.as_millis().to_string();
    let batch = config.ingest.batch_bytes.to_string();
    let timeout = config.ingest.delivery_timeout.as_millis().to_string();
    let producer: FutureProducer = producer_config(
        &config.kafka,
        "ingest-push",
        &[
            ("compression.type", config.ingest.compression.as_str()),
            ("linger.ms", &linger),
            ("batch.size", &batch),
            ("message.timeout.ms", &timeout),
        ],
    )
    .create()
    .map_err(|error| Error::kafka("creating the push producer", error))?;
    let state = Arc::new(PushState {
        producer,
        quotes_topic: config.kafka.topics.quotes.clone(),
        dlq_topic: config.kafka.topics.dlq.clone(),
        delivery_timeout: config.ingest.delivery_timeout,
        requests: AtomicU64::new(0),
    });
    let readiness = Readiness::default();
    readiness.set("kafka", false, "not checked yet");
    let checker = tokio::spawn(watch_kafka(
        state.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));
    let router = Router::new()
        .route("/v1/quotes", post(push::push_quotes))
        .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
        .with_state(state.clone())
        .merge(ops_router(readiness, metrics, api()));
    let (address, server) =
        stockstream_common::http::serve(config.http.listen, router, shutdown).await?;
    let task = tokio::spawn(async move {
        let _ = server.await;
        checker.abort();
        let flush_timeout = state.delivery_timeout + Duration::from_secs(5);
        let producer = state.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(flush_timeout))
            .await
            .map_err(|join| Error::Panicked {
                what: "flushing the push producer",
                message: join.to_string(),
            })?
            .map_err(|error| Error::kafka("flushing the push producer", error))?;
        tracing::info!("push service drained");
        Ok(())
    });
    Ok((address, task))
}

async fn watch_kafka(state: Arc<PushState>, readiness: Readiness, shutdown: CancellationToken) {
    loop {
        let probe = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            probe
                .producer
                .client()
                .fetch_metadata(Some(&probe.quotes_topic), Duration::from_secs(5))
                .map(|metadata| {
                    metadata
                        .topics()
                        .first()
                        .map_or(0, |t| t.partitions().len())
                })
        })
        .await;
        match outcome {
            Ok(Ok(partitions)) if partitions > 0 => readiness.set(
                "kafka",
                true,
                format!(
                    "topic `{}` has {partitions} partition(s)",
                    state.quotes_topic
                ),
            ),
            Ok(Ok(_)) => readiness.set(
                "kafka",
                false,
                format!("topic `{}` has no partitions", state.quotes_topic),
            ),
            Ok(Err(error)) => readiness.set("kafka", false, error.to_string()),
            Err(join) => readiness.set("kafka", false, join.to_string()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(READINESS_INTERVAL) => {}
        }
    }
}
