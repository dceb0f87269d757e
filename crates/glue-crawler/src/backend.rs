//! Where the service applies lake commit events: the local catalog in the lake, or AWS Glue.

use std::sync::Arc;

use chrono::Utc;
use stockstream_common::catalog::Catalog;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::LakeStore;

use crate::apply::apply_events;
use crate::config::{CatalogMode, Config};
use crate::crawl::crawl;
use crate::error::Result;
use crate::glue::{GlueCatalog, GlueOutcome};
use crate::metrics;

/// Where events are applied: the local catalog in the lake, or AWS Glue.
#[derive(Debug)]
pub(crate) enum Backend {
    Local {
        store: Arc<dyn LakeStore>,
        database: String,
    },
    Glue(Box<GlueCatalog>),
}

impl Backend {
    /// The backend `config` names; a local catalog not written yet is built by crawling the lake.
    pub(crate) async fn open(config: &Config, store: Arc<dyn LakeStore>) -> Result<Self> {
        let database = config.crawler.database.clone();
        Ok(match &config.crawler.mode {
            CatalogMode::Local => {
                if Catalog::load(store.as_ref()).await?.is_none() {
                    let (catalog, report) = crawl(store.as_ref(), &database, None).await?;
                    catalog.save(store.as_ref()).await?;
                    tracing::info!(tables = ?report.tables, partitions = report.partitions_added.len(), "no catalog yet: built one by crawling the lake");
                }
                Backend::Local { store, database }
            }
            CatalogMode::Glue(settings) => Backend::Glue(Box::new(
                GlueCatalog::connect(settings.clone(), &database, store).await?,
            )),
        })
    }

    /// The backend in words, for `/health/readyz`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Local { store, .. } => format!("local catalog in {}", store.url()),
            Backend::Glue(_) => "AWS Glue Data Catalog".to_string(),
        }
    }

    /// Applies `batch` to the catalog and records the catalog lag of its events.
    pub(crate) async fn apply(&mut self, batch: &[LakeCommitEvent]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Backend::Local { store, database } => {
                apply_batch(store.clone(), database, batch).await?;
            }
            Backend::Glue(glue) => {
                let outcome = glue.apply(batch).await?;
                record_glue(&outcome);
                tracing::info!(events = batch.len(), ?outcome, "Glue catalog updated");
            }
        }
        let now = Utc::now();
        for event in batch {
            let lag = (now - event.committed_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::catalog_lag(lag);
        }
        metrics::events_applied(batch.len() as u64);
        Ok(())
    }

    /// Periodic upkeep between events: starts a debounced Glue crawler when one is due.
    pub(crate) async fn tick(&mut self) -> Result<()> {
        if let Backend::Glue(glue) = self {
            let outcome = glue.drive_crawler().await?;
            record_glue(&outcome);
        }
        Ok(())
    }
}

/// Records what a Glue update did in the metrics.
fn record_glue(outcome: &GlueOutcome) {
    metrics::partitions_registered(outcome.partitions_registered);
    metrics::tables_changed(outcome.tables_created + outcome.tables_updated);
    metrics::crawler_starts(outcome.crawler_starts);
    metrics::crawler_waits(outcome.crawler_waits);
}

/// Applies `batch` to the local catalog and saves it if anything changed.
async fn apply_batch(
    store: Arc<dyn LakeStore>,
    database: &str,
    batch: &[LakeCommitEvent],
) -> Result<()> {
    let mut catalog = Catalog::load(store.as_ref()).await?.unwrap_or_default();
    let outcome = apply_events(&mut catalog, database, batch, store.as_ref()).await?;
    if outcome.changed() {
        catalog.save(store.as_ref()).await?;
    }
    metrics::partitions_registered(outcome.partitions_added);
    metrics::tables_changed(outcome.tables_created + outcome.schemas_updated);
    tracing::info!(
        events = batch.len(),
        partitions_added = outcome.partitions_added,
        tables_created = outcome.tables_created,
        schemas_updated = outcome.schemas_updated,
        "catalog updated"
    );
    Ok(())
}
