//! What queries may see: the tables of one database and their catalogued partitions.
//!
//! A [`CatalogSource`] reads them — [`local::LocalCatalog`] from the Glue-shaped JSON document the
//! catalog service keeps in the lake, [`glue::GlueCatalog`] from the AWS Glue Data Catalog — and a
//! [`CatalogView`] keeps the latest [`CatalogSnapshot`] current: it polls the source every
//! `query.catalog_refresh` (a cheap check: the document's ETag, or one `GetTables`), asks about
//! partitions that files were just committed to ([`CatalogView::note_pending`]), and reloads
//! everything every `query.relist_interval`. As on Athena, the catalog decides what is visible:
//! files of a partition that is not catalogued are not read.

pub mod glue;
pub mod local;
mod projection;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use stockstream_common::catalog::Column;
use stockstream_common::http::Readiness;
use stockstream_common::sync::MutexExt;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use self::projection::Projection;
use crate::error::Result;
use crate::guard::Scope;

/// Most partitions remembered as pending; beyond it the next full reload finds them.
const MAX_PENDING: usize = 10_000;

/// A table's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// Table name.
    pub name: String,
    /// Location as catalogued (`s3://bucket/prefix/quotes/`, or the lake URL plus `quotes/`).
    pub location_url: String,
    /// Location relative to the lake root, ending in `/`; `None` when outside the lake.
    pub lake_location: Option<String>,
    /// Data columns, in file order, with Glue types.
    pub columns: Vec<Column>,
    /// Partition columns, in path order.
    pub partition_keys: Vec<Column>,
    /// Table parameters.
    pub parameters: BTreeMap<String, String>,
}

/// A catalogued partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDef {
    /// Values of the partition keys, in key order.
    pub values: Vec<String>,
    /// Location relative to the lake root, ending in `/`.
    pub location: String,
}

/// Which partitions of a table are visible.
#[derive(Debug, Clone, PartialEq)]
pub enum Partitions {
    /// Registered partitions, by their values.
    Registered(Arc<BTreeMap<Vec<String>, PartitionDef>>),
    /// Athena partition projection: any partition under the table whose values fit.
    Projected(Projection),
}

impl Partitions {
    /// Number of registered partitions (`None` for projection).
    pub fn registered_count(&self) -> Option<usize> {
        match self {
            Partitions::Registered(partitions) => Some(partitions.len()),
            Partitions::Projected(_) => None,
        }
    }
}

/// A table with its visible partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogTable {
    /// Definition.
    pub def: Arc<TableDef>,
    /// Visible partitions.
    pub partitions: Partitions,
}

/// The catalog at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSnapshot {
    /// The database.
    pub database: String,
    /// Tables by name.
    pub tables: BTreeMap<String, CatalogTable>,
    /// When it was read.
    pub loaded_at: DateTime<Utc>,
}

impl CatalogSnapshot {
    /// An empty catalog of `database`.
    pub fn empty(database: &str) -> Self {
        Self {
            database: database.to_string(),
            tables: BTreeMap::new(),
            loaded_at: Utc::now(),
        }
    }

    /// The guard's scope: the database and its table names.
    pub fn scope(&self) -> Scope {
        Scope {
            database: self.database.clone(),
            tables: self.tables.keys().map(|name| name.to_lowercase()).collect(),
        }
    }
}

/// Partitions that files were committed to but that were not visible, by table.
pub type PendingPartitions = BTreeMap<String, BTreeSet<Vec<String>>>;

/// Reads tables and partitions from a catalog.
#[async_trait::async_trait]
pub trait CatalogSource: Send + Sync + std::fmt::Debug {
    /// `local` or `glue`.
    fn name(&self) -> &'static str;

    /// Reads every table of the database with its visible partitions.
    async fn load(&self) -> Result<CatalogSnapshot>;

    /// Checks cheaply whether the catalog changed since `current`, and whether any `pending`
    /// partition became visible; returns the new snapshot if anything did.
    async fn poll(
        &self,
        current: &CatalogSnapshot,
        pending: &PendingPartitions,
    ) -> Result<Option<CatalogSnapshot>>;
}

/// The latest catalog snapshot, kept current by a background task.
#[derive(Debug, Clone)]
pub struct CatalogView {
    current: watch::Receiver<Arc<CatalogSnapshot>>,
    pending: Arc<Mutex<PendingPartitions>>,
    wake: Arc<Notify>,
}

impl CatalogView {
    /// Loads the catalog once (failing if it cannot be read), then keeps it current until
    /// `shutdown`: polls every `refresh`, reloads every `reload`. Reports on `readiness`.
    pub async fn start(
        source: Arc<dyn CatalogSource>,
        refresh: Duration,
        reload: Duration,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let first = source.load().await?;
        readiness.set("catalog", true, describe(source.name(), &first));
        let (sender, current) = watch::channel(Arc::new(first));
        let view = Self {
            current,
            pending: Arc::default(),
            wake: Arc::default(),
        };
        let refresher = Refresher {
            source,
            sender,
            pending: view.pending.clone(),
            wake: view.wake.clone(),
            readiness,
        };
        tokio::spawn(refresher.run(refresh, reload, shutdown));
        Ok(view)
    }

    /// A view that never changes (tests, and sources read once).
    pub fn fixed(snapshot: CatalogSnapshot) -> Self {
        let (_sender, current) = watch::channel(Arc::new(snapshot));
        Self {
            current,
            pending: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogSnapshot>> {
        self.current.clone()
    }

    /// Records partitions that files were committed to but that were not visible, so the next
    /// poll asks the catalog about them, and polls soon.
    pub fn note_pending(&self, table: &str, partitions: impl IntoIterator<Item = Vec<String>>) {
        {
            let mut pending = self.pending.locked();
            let total: usize = pending.values().map(BTreeSet::len).sum();
            let entry = pending.entry(table.to_string()).or_default();
            for values in partitions
                .into_iter()
                .take(MAX_PENDING.saturating_sub(total))
            {
                entry.insert(values);
            }
        }
        self.wake.notify_one();
    }
}

fn describe(source: &str, snapshot: &CatalogSnapshot) -> String {
    let partitions: usize = snapshot
        .tables
        .values()
        .filter_map(|table| table.partitions.registered_count())
        .sum();
    format!(
        "{source} catalog: {} table(s), {partitions} registered partition(s) in database {}",
        snapshot.tables.len(),
        snapshot.database
    )
}

struct Refresher {
    source: Arc<dyn CatalogSource>,
    sender: watch::Sender<Arc<CatalogSnapshot>>,
    pending: Arc<Mutex<PendingPartitions>>,
    wake: Arc<Notify>,
    readiness: Readiness,
}

impl Refresher {
    async fn run(self, refresh: Duration, reload: Duration, shutdown: CancellationToken) {
        let mut last_reload = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(refresh) => {}
                () = self.wake.notified() => {
                    // Coalesce the commits of one flush before asking the catalog.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let full = last_reload.elapsed() >= reload;
            let outcome = if full {
                last_reload = tokio::time::Instant::now();
                self.source.load().await.map(Some)
            } else {
                let pending = self.pending.locked().clone();
                let current = self.sender.borrow().clone();
                self.source.poll(&current, &pending).await
            };
            match outcome {
                Ok(Some(snapshot)) => {
                    self.forget_visible(&snapshot);
                    self.readiness
                        .set("catalog", true, describe(self.source.name(), &snapshot));
                    self.sender.send_if_modified(|current| {
                        let changed = current.tables != snapshot.tables;
                        *current = Arc::new(snapshot);
                        changed
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, source = self.source.name(), "catalog refresh failed");
                    self.readiness.set(
                        "catalog",
                        false,
                        format!("{} catalog unreadable: {error}", self.source.name()),
                    );
                }
            }
        }
    }

    /// Drops pending partitions that are now visible.
    fn forget_visible(&self, snapshot: &CatalogSnapshot) {
        let mut pending = self.pending.locked();
        pending.retain(|table, partitions| {
            match snapshot.tables.get(table).map(|table| &table.partitions) {
                Some(Partitions::Registered(registered)) => {
                    partitions.retain(|values| !registered.contains_key(values));
                }
                Some(Partitions::Projected(projection)) => {
                    partitions.retain(|values| !projection.admits(values));
                }
                None => {}
            }
            !partitions.is_empty()
        });
    }
}

/// Strips `base` (a lake URL ending in `/`) from a catalogued location; `None` when outside.
pub fn lake_relative(location: &str, base: &str) -> Option<String> {
    let relative = location.strip_prefix(base)?;
    let mut relative = relative.trim_start_matches('/').to_string();
    if !relative.ends_with('/') {
        relative.push('/');
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_lake_relative() {
        assert_eq!(
            lake_relative("s3://lake/pre/quotes/", "s3://lake/pre/").as_deref(),
            Some("quotes/")
        );
        assert_eq!(
            lake_relative(
                "s3://lake/pre/quotes/symbol=HSI/year=1987",
                "s3://lake/pre/"
            )
            .as_deref(),
            Some("quotes/symbol=HSI/year=1987/")
        );
        assert_eq!(lake_relative("s3://other/quotes/", "s3://lake/pre/"), None);
    }
}
