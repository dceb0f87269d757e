//! `stockstream-query-api`: SQL over the lake through HTTP, with Apache DataFusion embedded or
//! Amazon Athena, behind one contract.
//!
//! `POST /v1/query` with `{"sql": "SELECT …", "params": [...]}` answers
//! `{"query_id", "columns":[{"name","type"}], "rows":[[…]], "stats":{…}}` — or NDJSON, CSV or
//! an Arrow IPC stream by `Accept`, streamed as the engine produces batches. A query not done
//! within `query.sync_wait` answers `202` and is polled at `/v1/queries/{id}`. Market-data
//! endpoints (`/v1/symbols`, `/v1/symbols/{symbol}/quotes`, `/v1/symbols/{symbol}/candles`) are
//! parameterized queries through the same engine; `/v1/tables` shows the catalog;
//! `/openapi.json` describes it all. Every statement passes the read-only [`guard`] first.
//!
//! Engines (`query.engine`):
//! - `datafusion` (default): [`engine::datafusion`] reads the lake (local disk or S3) with the
//!   tables and partitions of the local catalog or AWS Glue (`query.catalog`), in one long-lived
//!   session with cached file listings, a bounded memory pool and `query.max_concurrent` slots;
//! - `athena`: [`engine::athena`] runs the SQL in Amazon Athena.
//!
//! Files: `main.rs` (command line), `lib.rs` (start/run), `config.rs`, `error.rs`, `metrics.rs`,
//! `guard.rs` (read-only check), `registry.rs` (remembered queries), `json.rs` (Arrow → JSON),
//! `aws.rs` (AWS error classes), `reader.rs` (topic readers that join no group), `catalog/` (local
//! and Glue catalogs, the catalog view), `engine/` (the trait, DataFusion, Athena; DataFusion's
//! file index in `engine/datafusion/files/`: `listing.rs`, `committed.rs`, `carry_over.rs`,
//! `layout.rs`, `statistics.rs`), `http/` (routes, formats, OpenAPI, the dashboard's assets, the
//! live stream, the status endpoint; the query runner in `http/query/`: `submit.rs`,
//! `collect.rs`, `outcome.rs`, `accepted.rs`, `streamed.rs`), `live/` (the tail of `quotes`
//! behind the live view), `status.rs` (the other services' readiness and figures).
//!
//! `GET /` is the dashboard (docs/dashboard.md): markets board, candles, live quotes over
//! Server-Sent Events (`/v1/stream/quotes`), a SQL console and the pipeline's status
//! (`/v1/status`).
//!
//! The same listener serves `/metrics`, `/health/livez` and `/health/readyz` (default
//! `127.0.0.1:8080`).

mod aws;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod guard;
pub mod http;
mod json;
pub mod live;
mod metrics;
mod reader;
pub mod registry;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use stockstream_common::http::{Readiness, ops_router, serve};
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

use crate::catalog::glue::GlueCatalog;
use crate::catalog::local::LocalCatalog;
use crate::catalog::{CatalogSource, CatalogView};
pub use crate::config::{CatalogKind, Config, EngineKind};
use crate::engine::QueryEngine;
use crate::engine::athena::AthenaEngine;
use crate::engine::datafusion::store::open_lake;
use crate::engine::datafusion::tail::LiveTail;
use crate::engine::datafusion::{DataFusionEngine, DataFusionSettings};
pub use crate::error::{Error, Result};
use crate::live::{Live, LiveFeed};
use crate::status::StatusBoard;

/// A started query API.
#[derive(Debug)]
pub struct RunningApi {
    /// The address it listens on (useful when configured with port 0).
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningApi {
    /// Waits until the server stopped (after its shutdown token was cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Reads the catalog, starts the engine, binds the listener; returns once serving.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<RunningApi> {
    // The recorder first: figures recorded before it is installed (the live tail's first gauge,
    // the catalog's first load) would be lost.
    let metrics = metrics_handle();
    let readiness = Readiness::default();
    let query = &config.query;
    let source = catalog_source(&config).await?;
    let catalog = CatalogView::start(
        source,
        query.catalog_refresh,
        query.relist_interval,
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    let live = start_live(&config, &shutdown);
    let engine = start_engine(&config, live.as_ref(), catalog.clone(), &shutdown).await?;
    readiness.set(
        "engine",
        true,
        format!("{} engine started", query.engine.name()),
    );
    let status = StatusBoard::start(
        config.status.clone(),
        readiness.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    let services = http::Services {
        live,
        status,
        shutdown: shutdown.clone(),
    };
    let state = http::AppState::new(engine, catalog, query.clone(), services);
    let ops = ops_router(readiness, metrics, http::openapi::api());
    let router = http::routes(state, ops);
    let (address, task) = serve(config.http.listen, router, shutdown).await?;
    tracing::info!(%address, engine = query.engine.name(), catalog = ?query.catalog, "query API listening");
    Ok(RunningApi { address, task })
}

/// Where the tables and partitions come from (`query.catalog`): the lake's own catalog, or AWS
/// Glue.
async fn catalog_source(config: &Config) -> Result<Arc<dyn CatalogSource>> {
    let query = &config.query;
    Ok(match query.catalog {
        CatalogKind::Local => {
            let lake = open_lake(&config.lake).await?;
            Arc::new(LocalCatalog::new(
                lake.store,
                lake.url,
                query.database.clone(),
            ))
        }
        CatalogKind::Glue => {
            // The embedded engine reads catalogued locations inside the lake; Athena reads them itself.
            let lake_url = match query.engine {
                EngineKind::DataFusion => Some(open_lake(&config.lake).await?.url),
                EngineKind::Athena => None,
            };
            Arc::new(GlueCatalog::connect(&query.glue, query.database.clone(), lake_url).await)
        }
    })
}

/// The live view (`live.enabled`): its feed, filled by a task tailing `quotes` until `shutdown`.
fn start_live(config: &Config, shutdown: &CancellationToken) -> Option<Live> {
    config.live.enabled.then(|| {
        let feed = LiveFeed::new(config.live.history, config.live.client_buffer);
        tokio::spawn(live::tail::run(
            config.kafka.clone(),
            feed.clone(),
            config.live.history,
            shutdown.clone(),
        ));
        Live {
            feed,
            config: config.live.clone(),
        }
    })
}

/// The engine of `query.engine`; DataFusion's table `quotes` includes the live tail when
/// `query.live_tail` is on and the live view runs.
async fn start_engine(
    config: &Config,
    live: Option<&Live>,
    catalog: CatalogView,
    shutdown: &CancellationToken,
) -> Result<Arc<dyn QueryEngine>> {
    let query = &config.query;
    Ok(match query.engine {
        EngineKind::DataFusion => {
            let live_tail = live.filter(|_| query.live_tail).map(|live| {
                Arc::new(LiveTail::new(
                    live.feed.clone(),
                    query.partition_template.clone(),
                    &config.kafka,
                    query.live_tail_wait,
                ))
            });
            DataFusionEngine::start(
                DataFusionSettings {
                    lake: config.lake.clone(),
                    kafka: config.kafka.clone(),
                    query: query.clone(),
                    live_tail,
                },
                catalog,
                shutdown.clone(),
            )
            .await?
        }
        EngineKind::Athena => {
            Arc::new(AthenaEngine::connect(query.athena.clone(), query.database.clone()).await)
        }
    })
}

/// Serves until `shutdown` is cancelled (in-flight requests finish first).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    start(config, shutdown).await?.stopped().await;
    Ok(())
}
