//! The local catalog: the Glue-shaped JSON document `stockstream-glue-crawler` keeps in the lake
//! (`_stockstream/catalog/catalog.json`). A poll compares the document's ETag (local disk: inode,
//! modification time and size; S3: the object's ETag) and reads it again only when it changed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use stockstream_common::catalog::{CATALOG_KEY, Catalog};
use stockstream_common::sync::MutexExt;

use super::{
    CatalogSnapshot, CatalogSource, CatalogTable, PartitionDef, Partitions, PendingPartitions,
    TableDef,
};
use crate::error::{Error, Result};

/// The local catalog document of a lake.
#[derive(Debug)]
pub struct LocalCatalog {
    store: Arc<dyn ObjectStore>,
    lake_url: String,
    database: String,
    seen_version: Mutex<Option<String>>,
}

impl LocalCatalog {
    /// The catalog document in the lake behind `store` (lake-relative paths), whose URL is
    /// `lake_url` (ending in `/`), exposing `database`.
    pub fn new(store: Arc<dyn ObjectStore>, lake_url: String, database: String) -> Self {
        Self {
            store,
            lake_url,
            database,
            seen_version: Mutex::new(None),
        }
    }

    /// The document's current version, `None` when there is no catalog yet.
    async fn version(&self) -> Result<Option<String>> {
        match self.store.head(&ObjectPath::from(CATALOG_KEY)).await {
            Ok(meta) => Ok(Some(meta.e_tag.unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    meta.size
                )
            }))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(Error::from(error)),
        }
    }

    async fn read(&self) -> Result<CatalogSnapshot> {
        let bytes = match self.store.get(&ObjectPath::from(CATALOG_KEY)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(CatalogSnapshot::empty(&self.database));
            }
            Err(error) => return Err(Error::from(error)),
        };
        let catalog: Catalog = serde_json::from_slice(&bytes).map_err(|source| {
            Error::Common(stockstream_common::Error::Json {
                context: format!("decoding catalog {CATALOG_KEY}"),
                source,
            })
        })?;
        Ok(self.snapshot_of(&catalog))
    }

    fn snapshot_of(&self, catalog: &Catalog) -> CatalogSnapshot {
        let mut tables = BTreeMap::new();
        if let Some(database) = catalog.databases.get(&self.database) {
            for table in database.tables.values() {
                let def = TableDef {
                    name: table.name.clone(),
                    location_url: format!("{}{}", self.lake_url, table.location),
                    lake_location: Some(table.location.clone()),
                    columns: table.columns.clone(),
                    partition_keys: table.partition_keys.clone(),
                    parameters: table.parameters.clone(),
                };
                let partitions = table
                    .partitions
                    .values()
                    .map(|partition| {
                        (
                            partition.values.clone(),
                            PartitionDef {
                                values: partition.values.clone(),
                                location: partition.location.clone(),
                            },
                        )
                    })
                    .collect();
                tables.insert(
                    table.name.clone(),
                    CatalogTable {
                        def: Arc::new(def),
                        partitions: Partitions::Registered(Arc::new(partitions)),
                    },
                );
            }
        }
        CatalogSnapshot {
            database: self.database.clone(),
            tables,
            loaded_at: Utc::now(),
        }
    }
}

#[async_trait::async_trait]
impl CatalogSource for LocalCatalog {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn load(&self) -> Result<CatalogSnapshot> {
        // The version is taken before reading: a change during the read is seen by the next poll.
        let version = self.version().await?;
        let snapshot = self.read().await?;
        *self.seen_version.locked() = version;
        Ok(snapshot)
    }

    async fn poll(
        &self,
        _current: &CatalogSnapshot,
        _pending: &PendingPartitions,
    ) -> Result<Option<CatalogSnapshot>> {
        // The document holds every partition: pending ones appear when it changes.
        let version = self.version().await?;
        let unchanged = *self.seen_version.locked() == version;
        if unchanged {
            return Ok(None);
        }
        let snapshot = self.read().await?;
        *self.seen_version.locked() = version;
        Ok(Some(snapshot))
    }
}
