//! `stockstream-query-api`: SQL over the lake through HTTP.
//!
//! `POST /v1/query` with `{"sql": "SELECT …"}` answers
//! `{"columns":[{"name":…,"type":…}],"rows":[[…],…],"stats":{…}}`. Queries see the tables of the
//! catalog (kept current by `stockstream-glue-crawler`); the embedded engine is DataFusion reading
//! the Parquet files, pruning Hive partitions (`symbol`, `year`) from the paths. Only read-only
//! statements are accepted; results are capped at `query.max_rows` and queries at `query.timeout`.
//!
//! The same listener serves `/v1/tables`, `/metrics`, `/health/livez` and `/health/readyz`
//! (default `127.0.0.1:8080`).

mod api;
pub mod config;
pub mod engine;
pub mod error;
mod json;

use std::net::SocketAddr;
use std::sync::Arc;

use stockstream_common::catalog::Catalog;
use stockstream_common::http::{Readiness, ops_router, serve};
use stockstream_common::lake::open_store;
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, QueryEngineKind};
pub use crate::engine::{DataFusionEngine, QueryEngine, QueryResult};
pub use crate::error::{Error, Result};

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

/// Binds the listener and starts serving; returns once listening.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<RunningApi> {
    if matches!(
        config.lake,
        stockstream_common::config::LakeConfig::S3 { .. }
    ) && config.query.engine == QueryEngineKind::DataFusion
    {
        return Err(stockstream_common::Error::config(
            "query.engine",
            "the embedded DataFusion engine reads a local lake; a lake on S3 is queried through Amazon Athena",
        )
        .into());
    }
    let store = open_store(&config.lake).await?;
    let readiness = Readiness::default();
    match Catalog::load(store.as_ref()).await {
        Ok(catalog) => readiness.set(
            "catalog",
            true,
            if catalog.is_some() {
                "catalog readable"
            } else {
                "no catalog yet: no tables"
            },
        ),
        Err(error) => readiness.set("catalog", false, error.to_string()),
    }
    let engine: Arc<dyn QueryEngine> = match config.query.engine {
        QueryEngineKind::DataFusion => Arc::new(DataFusionEngine::new(
            store.clone(),
            config.query.database.clone(),
        )),
    };
    let router = ops_router(readiness, metrics_handle()).merge(api::routes(api::ApiState {
        engine,
        store,
        query: config.query.clone(),
    }));
    let (address, task) = serve(config.http.listen, router, shutdown).await?;
    Ok(RunningApi { address, task })
}

/// Serves until `shutdown` is cancelled (in-flight requests finish first).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    start(config, shutdown).await?.stopped().await;
    Ok(())
}
