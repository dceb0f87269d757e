//! `stockstream-glue-crawler`: keeps the catalog current the moment a file lands.
//!
//! In the original tutorial a person runs an AWS Glue crawler by hand so Athena sees new data.
//! Here the sink announces every committed file on `lake.commits`; this service applies those
//! events to the catalog (new tables from Parquet footers, new partitions from paths), in batches,
//! and commits its Kafka offsets only after the catalog is saved. Applying an event twice changes
//! nothing, so redelivery is harmless.
//!
//! - Local mode (the embedded default): a Glue-shaped JSON catalog in the lake
//!   (`_stockstream/catalog/catalog.json`), replaced atomically, read by the query API.
//! - Glue mode (`crawler.mode = "glue"`): the AWS Glue Data Catalog, with the strategies of
//!   [`glue`]: `partitions` (register partitions with `BatchCreatePartition`), `projection`
//!   (Athena partition projection, nothing to register) or `crawler` (a Glue crawler started,
//!   debounced, when new data arrive). A batch Glue refuses (throttling, an outage, missing
//!   permissions; Glue's error codes decide, `stockstream_common::aws_error`) is retried with
//!   backoff, its offsets stay uncommitted, and `/health/readyz` reports the error until it
//!   succeeds.
//! - `crawl` rebuilds the local catalog from the lake alone (repairing missed events); `sync`
//!   reconciles Glue with the lake; `show` prints the local catalog.
//!
//! The service serves `/metrics`, `/health/livez` and `/health/readyz` on `http.listen`
//! (default `127.0.0.1:9102`).
//!
//! Files:
//! - `lib.rs`: `run` (the HTTP endpoints around the loop), the one-shot `crawl_and_save` and
//!   `load_catalog`; `main.rs`: the commands (serve, `crawl`, `sync`, `show`, `compact`).
//! - `follow.rs`: the consume → apply → commit loop over `lake.commits`, with retry and backoff.
//! - `backend.rs`: where that loop applies events (the local catalog or Glue) and their metrics.
//! - `apply.rs`: events → the local catalog; `tables.rs`: table definitions from Parquet footers.
//! - `poison.rs`: events set aside on the dead-letter topic instead of stalling the service.
//! - `crawl.rs`: the catalog rebuilt from the lake alone; `sync.rs`: Glue reconciled with the lake.
//! - `maintain.rs`: the maintenance lease, the compaction task and the one-shot command;
//!   `compaction/`: one round of compaction and retention (its `mod.rs` lists its files).
//! - `glue/`: the Glue catalog (`mod.rs` settings, databases and tables; `partitions.rs`,
//!   `projection.rs`, `crawler.rs`, one per strategy; `relocate.rs`, compaction's swaps).
//! - `config.rs`, `error.rs`, `metrics.rs`: settings, errors, Prometheus metrics.
//! - `test_lake.rs` (tests only): a temporary lake in the sink's layout and the events announcing
//!   its files, for the unit tests of `apply.rs` and `crawl.rs`.

mod apply;
mod backend;
pub mod compaction;
pub mod config;
mod crawl;
pub mod error;
mod follow;
pub mod glue;
mod maintain;
mod metrics;
mod poison;
mod sync;
mod tables;
#[cfg(test)]
mod test_lake;

use stockstream_common::catalog::Catalog;
use stockstream_common::http::{Readiness, ops_router, serve_while, service_api};
use stockstream_common::lake::open_store;
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

use crate::follow::follow_commits;

pub use crate::apply::{ApplyOutcome, apply_events};
pub use crate::config::{CatalogMode, Config};
pub use crate::crawl::{CrawlReport, crawl};
pub use crate::error::{Error, Result};
pub use crate::glue::{GlueCatalog, GlueOutcome, GlueSettings, Strategy};
pub use crate::maintain::{CompactReport, compact_once};
pub use crate::sync::{SyncReport, sync_glue};

/// Runs the catalog service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let readiness = Readiness::default();
    let api = service_api(
        "stockstream-glue-crawler",
        "The catalog service's operations endpoints: readiness (Kafka, the lake, the catalog), liveness and Prometheus metrics.",
    );
    let router = ops_router(readiness.clone(), metrics_handle(), api);
    // HTTP stops last, so probes and metrics see the drain.
    serve_while(
        config.http.listen,
        router,
        follow_commits(&config, &readiness, &shutdown),
    )
    .await?
}

/// Rebuilds the catalog from the lake and saves it (unless `dry_run`); returns what changed.
pub async fn crawl_and_save(config: &Config, dry_run: bool) -> Result<CrawlReport> {
    let store = open_store(&config.lake).await?;
    let previous = Catalog::load(store.as_ref()).await?;
    let (catalog, report) =
        crawl(store.as_ref(), &config.crawler.database, previous.as_ref()).await?;
    if !dry_run {
        catalog.save(store.as_ref()).await?;
    }
    Ok(report)
}

/// Reads the current catalog (empty if none was written yet).
pub async fn load_catalog(config: &Config) -> Result<Catalog> {
    let store = open_store(&config.lake).await?;
    Ok(Catalog::load(store.as_ref()).await?.unwrap_or_default())
}
