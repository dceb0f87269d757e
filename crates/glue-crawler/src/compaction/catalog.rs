//! Where compaction reads partition locations and swaps them: one small trait, implemented by the
//! local catalog (one atomic replace of `catalog.json` per swap) and by AWS Glue (`UpdatePartition`).

use std::sync::Arc;

use stockstream_common::catalog::Catalog;
use stockstream_common::lake::{COMPACTED_DIR, LakeStore};

use crate::error::Result;

/// A catalogued partition and where its files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogPartition {
    /// Table name.
    pub table: String,
    /// Lake-relative prefix of the table, ending in `/` (`quotes/`).
    pub table_location: String,
    /// Partition path relative to the table (`symbol=HSI/year=1987`).
    pub path: String,
    /// Partition values, in key order.
    pub values: Vec<String>,
    /// Lake-relative prefix the catalog reads the partition from, ending in `/`.
    pub location: String,
}

impl CatalogPartition {
    /// The directory the sink writes the partition's files to (`quotes/symbol=HSI/year=1987/`).
    pub fn home(&self) -> String {
        format!("{}{}/", self.table_location, self.path)
    }

    /// Prefix of the partition's compacted generations.
    pub fn generations_prefix(&self) -> String {
        format!("{}{COMPACTED_DIR}/{}/", self.table_location, self.path)
    }

    /// Prefix of generation `id`.
    pub fn generation_location(&self, id: u64) -> String {
        format!("{}g{id:013}/", self.generations_prefix())
    }

    /// The generation the catalog reads, if the partition was compacted.
    pub fn current_generation(&self) -> Option<u64> {
        generation_id(&self.generations_prefix(), &self.location)
    }
}

/// The id of generation `location` below `generations_prefix`.
pub(crate) fn generation_id(generations_prefix: &str, location: &str) -> Option<u64> {
    location
        .strip_prefix(generations_prefix)?
        .strip_suffix('/')?
        .strip_prefix('g')?
        .parse()
        .ok()
}

/// A catalog whose partition locations compaction can swap.
#[async_trait::async_trait]
pub trait PartitionCatalog: Send + Sync {
    /// Every partition of every table, with its location.
    async fn partitions(&mut self) -> Result<Vec<CatalogPartition>>;
    /// Points `partition` at `location` in one step: a reader sees the old or the new location.
    async fn relocate(&mut self, partition: &CatalogPartition, location: &str) -> Result<()>;
    /// Removes partitions from the catalog (retention).
    async fn drop_partitions(&mut self, partitions: &[CatalogPartition]) -> Result<()>;
}

/// The local catalog document in the lake.
#[derive(Debug)]
pub struct LocalPartitions {
    store: Arc<dyn LakeStore>,
    database: String,
}

impl LocalPartitions {
    /// The catalog of `database` in `store`.
    pub fn new(store: Arc<dyn LakeStore>, database: &str) -> Self {
        Self {
            store,
            database: database.to_string(),
        }
    }

    async fn load(&self) -> Result<Catalog> {
        Ok(Catalog::load(self.store.as_ref())
            .await?
            .unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl PartitionCatalog for LocalPartitions {
    async fn partitions(&mut self) -> Result<Vec<CatalogPartition>> {
        let catalog = self.load().await?;
        let Some(database) = catalog.databases.get(&self.database) else {
            return Ok(Vec::new());
        };
        Ok(database
            .tables
            .values()
            .flat_map(|table| {
                table
                    .partitions
                    .iter()
                    .map(|(path, partition)| CatalogPartition {
                        table: table.name.clone(),
                        table_location: table.location.clone(),
                        path: path.clone(),
                        values: partition.values.clone(),
                        location: partition.location.clone(),
                    })
            })
            .collect())
    }

    async fn relocate(&mut self, partition: &CatalogPartition, location: &str) -> Result<()> {
        let mut catalog = self.load().await?;
        let entry = catalog
            .databases
            .get_mut(&self.database)
            .and_then(|database| database.tables.get_mut(&partition.table))
            .and_then(|table| table.partitions.get_mut(&partition.path));
        let Some(entry) = entry else {
            return Err(stockstream_common::Error::NotFound {
                key: format!("catalog partition {}/{}", partition.table, partition.path),
            }
            .into());
        };
        entry.location = location.to_string();
        catalog.save(self.store.as_ref()).await?;
        Ok(())
    }

    async fn drop_partitions(&mut self, partitions: &[CatalogPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut catalog = self.load().await?;
        if let Some(database) = catalog.databases.get_mut(&self.database) {
            for partition in partitions {
                if let Some(table) = database.tables.get_mut(&partition.table) {
                    table.partitions.remove(&partition.path);
                }
            }
        }
        catalog.save(self.store.as_ref()).await?;
        Ok(())
    }
}
