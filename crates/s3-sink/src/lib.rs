//! `stockstream-s3-sink`: consumes quotes from Kafka and writes them, exactly once, as Parquet
//! files into the lake.
//!
//! ```text
//! Kafka `quotes` ──▶ BaseConsumer thread ──▶ per-partition buffers ──flush──▶ intent ─▶ Parquet files
//!                                                                      └──▶ `lake.commits` events ─▶ offset commit
//! ```
//!
//! - Files are Hive-partitioned by `sink.partition_template` (default
//!   `quotes/symbol=HSI/year=1987/…`; e.g. `quotes/date=1987-01-02/…`), zstd-compressed, typed
//!   (DATE, DOUBLE, BIGINT, UTC timestamp) and carry lineage columns (Kafka partition, offset,
//!   ingestion time). Keys name the Kafka partition and offset range they hold.
//! - Buffers flush on a record count (`sink.flush_records`), on their encoded size
//!   (`sink.flush_bytes`), when all buffers together reach `sink.memory_budget` (the largest
//!   flushes first), on a wall-clock interval (`sink.flush_interval`, so quiet partitions land)
//!   and on shutdown. Each flush records an intent in the lake before writing, so after any crash the
//!   sink resumes from the lake, not from Kafka's committed offset: no record is lost or written
//!   twice (`docs/exactly-once.md`).
//! - Undecodable messages go to the dead-letter topic with their origin and the reason.
//!
//! Run it with `stockstream-s3-sink --config sink.toml`; it serves `/metrics`, `/health/livez`,
//! `/health/readyz` and `/openapi.json` on `http.listen` (default `127.0.0.1:9101`).
//!
//! Files: `lib.rs` (`run`: the lake's layout check, the consumer thread and the ops server),
//! `main.rs` (command line, signals), `config.rs` (`[sink]`, `[http]` and the shared sections),
//! `error.rs`, `metrics.rs`, `consumer/` (the poll loop: `mod.rs`; `rebalance.rs`,
//! `partition.rs` — resume and redo per partition, `dead_letter.rs`, `flush.rs` — triggers,
//! fencing, write, announce, commit), `writer.rs` (rows → Parquet files per partition path),
//! `progress.rs` (flush intents in the lake and the table layout's lock).

pub mod config;
mod consumer;
pub mod error;
mod metrics;
mod progress;
mod writer;

use bytes::Bytes;
use stockstream_common::http::{Readiness, ops_router, serve_while, service_api};
use stockstream_common::kafka::{ensure_topics, pipeline_topics};
use stockstream_common::lake::{CONTROL_PREFIX, QUOTES_TABLE, open_store};
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
pub use crate::error::{Error, Result};

/// Runs the sink until `shutdown` is cancelled, then flushes, commits and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let readiness = Readiness::default();
    let api = service_api(
        "stockstream-s3-sink",
        "The Kafka → Parquet lake sink's operations endpoints: readiness (Kafka, the lake), liveness and Prometheus metrics.",
    );
    let router = ops_router(readiness.clone(), metrics_handle(), api);
    // HTTP stops last, so probes and metrics see the drain.
    serve_while(
        config.http.listen,
        router,
        consume(config, readiness, shutdown),
    )
    .await?
}

async fn consume(config: Config, readiness: Readiness, shutdown: CancellationToken) -> Result<()> {
    let store = open_store(&config.lake).await?;
    store
        .put(
            &format!("{CONTROL_PREFIX}probe/s3-sink"),
            Bytes::from_static(b"ok"),
        )
        .await?;
    progress::ensure_layout(
        store.as_ref(),
        QUOTES_TABLE,
        &config.sink.partition_template,
    )
    .await?;
    readiness.set("lake", true, format!("writable at {}", store.url()));
    readiness.set("kafka", false, "connecting");
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let runtime = tokio::runtime::Handle::current();
    let thread = tokio::task::spawn_blocking(move || {
        consumer::run_blocking(config, store, runtime, readiness, shutdown)
    });
    thread
        .await
        .map_err(|join| Error::Panicked(join.to_string()))?
}
