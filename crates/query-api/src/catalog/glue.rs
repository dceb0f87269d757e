//! The AWS Glue Data Catalog as the query API's catalog.
//!
//! `load` reads every table of the database (`GetTables`) and, for tables without partition
//! projection, every partition (`GetPartitions`, paginated). A poll costs one `GetTables` (table
//! definitions and projection ranges) plus one `BatchGetPartition` per 1,000 partitions that
//! files were committed to but that were not visible yet — so a partition the catalog service
//! registers becomes readable within `query.catalog_refresh`, without listing all partitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_glue::types::{Partition as GluePartition, PartitionValueList, Table as GlueTable};
use chrono::Utc;
use stockstream_common::catalog::Column;
use stockstream_common::config::AwsEndpoint;

use super::{
    CatalogSnapshot, CatalogSource, CatalogTable, PartitionDef, Partitions, PendingPartitions,
    Projection, TableDef, lake_relative,
};
use crate::aws::{aws_error, error_code};
use crate::error::{Error, Result};

/// Most partitions one `BatchGetPartition` may ask for.
const BATCH_GET_LIMIT: usize = 1000;

/// Tables and partitions from AWS Glue.
#[derive(Debug)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    database: String,
    lake_url: Option<String>,
}

impl GlueCatalog {
    /// Connects to Glue in `aws`'s region (and endpoint); `lake_url` (`s3://bucket/prefix/`) is
    /// where the lake lives, to read files of catalogued locations below it (`None`: Athena reads).
    pub async fn connect(aws: &AwsEndpoint, database: String, lake_url: Option<String>) -> Self {
        let sdk = aws.sdk_config().await;
        Self::with_client(aws_sdk_glue::Client::new(&sdk), database, lake_url)
    }

    /// Uses an existing client (tests).
    pub fn with_client(
        client: aws_sdk_glue::Client,
        database: String,
        lake_url: Option<String>,
    ) -> Self {
        Self {
            client,
            database,
            lake_url,
        }
    }

    fn relative(&self, location: &str) -> Option<String> {
        lake_relative(location, self.lake_url.as_deref()?)
    }

    async fn tables(&self) -> Result<Vec<Arc<TableDef>>> {
        let mut pages = self
            .client
            .get_tables()
            .database_name(&self.database)
            .into_paginator()
            .send();
        let mut tables = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                // The catalog service creates the database with the first file.
                Err(error) if error_code(&error) == Some("EntityNotFoundException") => {
                    return Ok(Vec::new());
                }
                Err(error) => return Err(aws_error("Glue", "GetTables", error)),
            };
            tables.extend(
                page.table_list()
                    .iter()
                    .map(|table| Arc::new(self.def_of(table))),
            );
        }
        Ok(tables)
    }

    fn def_of(&self, table: &GlueTable) -> TableDef {
        let columns = |glue: &[aws_sdk_glue::types::Column]| -> Vec<Column> {
            glue.iter()
                .map(|column| Column {
                    name: column.name().to_string(),
                    data_type: column.r#type().unwrap_or("string").to_string(),
                })
                .collect()
        };
        let storage = table.storage_descriptor();
        let location_url = storage
            .and_then(|storage| storage.location())
            .unwrap_or_default()
            .to_string();
        TableDef {
            name: table.name().to_string(),
            lake_location: self.relative(&location_url),
            location_url,
            columns: storage
                .map(|storage| columns(storage.columns()))
                .unwrap_or_default(),
            partition_keys: columns(table.partition_keys()),
            parameters: table
                .parameters()
                .map(|parameters| {
                    parameters
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn partition_of(&self, partition: &GluePartition) -> Option<PartitionDef> {
        let location = partition.storage_descriptor()?.location()?;
        Some(PartitionDef {
            values: partition.values().to_vec(),
            location: self.relative(location)?,
        })
    }

    async fn partitions(&self, def: &TableDef) -> Result<Partitions> {
        if let Some(projection) = Projection::from_parameters(&def.parameters, &def.partition_keys)
        {
            return Ok(Partitions::Projected(projection));
        }
        let mut pages = self
            .client
            .get_partitions()
            .database_name(&self.database)
            .table_name(&def.name)
            .into_paginator()
            .send();
        let mut partitions = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| aws_error("Glue", "GetPartitions", error))?;
            for partition in page.partitions() {
                if let Some(partition) = self.partition_of(partition) {
                    partitions.insert(partition.values.clone(), partition);
                }
            }
        }
        Ok(Partitions::Registered(Arc::new(partitions)))
    }

    /// Which of `wanted` are registered now.
    async fn registered(&self, table: &str, wanted: &[Vec<String>]) -> Result<Vec<PartitionDef>> {
        let mut found = Vec::new();
        for chunk in wanted.chunks(BATCH_GET_LIMIT) {
            let keys = chunk
                .iter()
                .map(|values| {
                    PartitionValueList::builder()
                        .set_values(Some(values.clone()))
                        .build()
                        .map_err(|error| Error::Internal(format!("partition values: {error}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let answer = self
                .client
                .batch_get_partition()
                .database_name(&self.database)
                .table_name(table)
                .set_partitions_to_get(Some(keys))
                .send()
                .await
                .map_err(|error| aws_error("Glue", "BatchGetPartition", error))?;
            found.extend(
                answer
                    .partitions()
                    .iter()
                    .filter_map(|partition| self.partition_of(partition)),
            );
        }
        Ok(found)
    }
}

#[async_trait::async_trait]
impl CatalogSource for GlueCatalog {
    fn name(&self) -> &'static str {
        "glue"
    }

    async fn load(&self) -> Result<CatalogSnapshot> {
        let mut tables = BTreeMap::new();
        for def in self.tables().await? {
            let partitions = self.partitions(&def).await?;
            tables.insert(def.name.clone(), CatalogTable { def, partitions });
        }
        Ok(CatalogSnapshot {
            database: self.database.clone(),
            tables,
            loaded_at: Utc::now(),
        })
    }

    async fn poll(
        &self,
        current: &CatalogSnapshot,
        pending: &PendingPartitions,
    ) -> Result<Option<CatalogSnapshot>> {
        let mut next = current.clone();
        let mut changed = false;
        let defs = self.tables().await?;
        next.tables
            .retain(|name, _| defs.iter().any(|def| def.name == *name));
        changed |= next.tables.len() != current.tables.len();
        for def in defs {
            let same = current
                .tables
                .get(&def.name)
                .is_some_and(|table| table.def == def);
            if same {
                continue;
            }
            changed = true;
            let partitions = match (
                Projection::from_parameters(&def.parameters, &def.partition_keys),
                current.tables.get(&def.name).map(|table| &table.partitions),
            ) {
                (Some(projection), _) => Partitions::Projected(projection),
                // A changed definition (a new column) keeps its registered partitions.
                (None, Some(registered @ Partitions::Registered(_))) => registered.clone(),
                (None, _) => self.partitions(&def).await?,
            };
            next.tables
                .insert(def.name.clone(), CatalogTable { def, partitions });
        }
        for (table, wanted) in pending {
            let Some(entry) = next.tables.get_mut(table) else {
                continue;
            };
            let Partitions::Registered(registered) = &entry.partitions else {
                continue;
            };
            let missing: Vec<Vec<String>> = wanted
                .iter()
                .filter(|values| !registered.contains_key(*values))
                .cloned()
                .collect();
            if missing.is_empty() {
                continue;
            }
            let found = self.registered(table, &missing).await?;
            if found.is_empty() {
                continue;
            }
            let mut partitions = registered.as_ref().clone();
            for partition in found {
                partitions.insert(partition.values.clone(), partition);
            }
            entry.partitions = Partitions::Registered(Arc::new(partitions));
            changed = true;
        }
        if changed {
            next.loaded_at = Utc::now();
            Ok(Some(next))
        } else {
            Ok(None)
        }
    }
}
