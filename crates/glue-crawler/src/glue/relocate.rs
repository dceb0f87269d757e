//! Compaction's view of Glue (`partitions` strategy only): partitions with their locations,
//! `UpdatePartition` to swap one partition's location in one step, and `BatchDeletePartition`
//! for retention. Locations in Glue are URLs (`s3://bucket/prefix/quotes/…`); compaction works
//! with lake-relative keys, so the lake's URL is stripped and prepended here.

use aws_sdk_glue::types::PartitionInput;
use stockstream_common::aws_error::AwsErrorKind;
use stockstream_common::lake::hive_escape;

use super::{
    GlueCatalog, Strategy, catalog_columns, glue_build_error, glue_error, storage_descriptor,
};
use crate::compaction::{CatalogPartition, PartitionCatalog};
use crate::error::{Error, Result};

/// Most partitions per `BatchDeletePartition` call (Glue's limit).
const DELETE_LIMIT: usize = 25;

impl GlueCatalog {
    /// Why compaction cannot swap locations with this strategy, if it cannot.
    pub fn compaction_refusal(&self) -> Option<&'static str> {
        match self.settings.strategy {
            Strategy::Partitions => None,
            Strategy::Projection => Some(
                "the projection strategy computes every partition's location from a template, \
                 so one partition cannot be pointed at its compacted files",
            ),
            Strategy::Crawler => Some(
                "the crawler strategy lets a Glue crawler derive locations from S3 paths; it would \
                 point swapped partitions back at the small files and catalogue `_compacted` as data",
            ),
        }
    }

    fn lake_relative(&self, url: &str) -> Option<String> {
        let base = self.store.url();
        let base = base.trim_end_matches('/');
        url.strip_prefix(base)?
            .strip_prefix('/')
            .map(str::to_string)
    }

    async fn table_columns(&self, table: &str) -> Result<Vec<stockstream_common::catalog::Column>> {
        let found = self.fetch_table(table).await?;
        Ok(found
            .table()
            .and_then(|table| table.storage_descriptor())
            .map(|descriptor| catalog_columns(descriptor.columns()))
            .unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl PartitionCatalog for GlueCatalog {
    async fn partitions(&mut self) -> Result<Vec<CatalogPartition>> {
        let mut found = Vec::new();
        let mut tables = self
            .client
            .get_tables()
            .database_name(&self.database)
            .into_paginator()
            .send();
        let mut definitions = Vec::new();
        while let Some(page) = tables.next().await {
            match page {
                Ok(page) => definitions.extend(page.table_list().iter().cloned()),
                Err(error) if super::code_of(&error) == Some("EntityNotFoundException") => {
                    return Ok(found);
                }
                Err(error) => return Err(glue_error("GetTables", error)),
            }
        }
        for table in definitions {
            let Some(table_location) = table
                .storage_descriptor()
                .and_then(|descriptor| descriptor.location())
                .and_then(|url| self.lake_relative(url))
            else {
                continue;
            };
            let table_location = format!("{}/", table_location.trim_end_matches('/'));
            let keys: Vec<String> = table
                .partition_keys()
                .iter()
                .map(|key| key.name().to_string())
                .collect();
            let mut pages = self
                .client
                .get_partitions()
                .database_name(&self.database)
                .table_name(table.name())
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|error| glue_error("GetPartitions", error))?;
                for partition in page.partitions() {
                    let Some(location) = partition
                        .storage_descriptor()
                        .and_then(|descriptor| descriptor.location())
                        .and_then(|url| self.lake_relative(url))
                    else {
                        continue;
                    };
                    let values = partition.values().to_vec();
                    let path = keys
                        .iter()
                        .zip(&values)
                        .map(|(key, value)| format!("{key}={}", hive_escape(value)))
                        .collect::<Vec<_>>()
                        .join("/");
                    found.push(CatalogPartition {
                        table: table.name().to_string(),
                        table_location: table_location.clone(),
                        path,
                        values,
                        location: format!("{}/", location.trim_end_matches('/')),
                    });
                }
            }
        }
        Ok(found)
    }

    async fn relocate(&mut self, partition: &CatalogPartition, location: &str) -> Result<()> {
        let columns = self.table_columns(&partition.table).await?;
        let url = format!("{}/{location}", self.store.url().trim_end_matches('/'));
        let input = PartitionInput::builder()
            .set_values(Some(partition.values.clone()))
            .storage_descriptor(storage_descriptor(&columns, &url)?)
            .build();
        self.client
            .update_partition()
            .database_name(&self.database)
            .table_name(&partition.table)
            .set_partition_value_list(Some(partition.values.clone()))
            .partition_input(input)
            .send()
            .await
            .map_err(|error| glue_error("UpdatePartition", error))?;
        Ok(())
    }

    async fn drop_partitions(&mut self, partitions: &[CatalogPartition]) -> Result<()> {
        let mut by_table: std::collections::BTreeMap<&str, Vec<&CatalogPartition>> =
            Default::default();
        for partition in partitions {
            by_table
                .entry(&partition.table)
                .or_default()
                .push(partition);
        }
        for (table, partitions) in by_table {
            for chunk in partitions.chunks(DELETE_LIMIT) {
                let values = chunk
                    .iter()
                    .map(|partition| {
                        aws_sdk_glue::types::PartitionValueList::builder()
                            .set_values(Some(partition.values.clone()))
                            .build()
                            .map_err(|error| {
                                glue_build_error("building a partition value list", error)
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let answer = self
                    .client
                    .batch_delete_partition()
                    .database_name(&self.database)
                    .table_name(table)
                    .set_partitions_to_delete(Some(values))
                    .send()
                    .await
                    .map_err(|error| glue_error("BatchDeletePartition", error))?;
                let failures: Vec<(String, Option<&str>)> = answer
                    .errors()
                    .iter()
                    .map(|error| {
                        let code = error.error_detail().and_then(|detail| detail.error_code());
                        (format!("{:?}", error.partition_values()), code)
                    })
                    .filter(|(_, code)| *code != Some("EntityNotFoundException"))
                    .collect();
                if let Some((_, code)) = failures.first() {
                    let partitions: Vec<&str> =
                        failures.iter().map(|(values, _)| values.as_str()).collect();
                    return Err(Error::Glue {
                        operation: "BatchDeletePartition",
                        kind: AwsErrorKind::from_response(*code, None),
                        message: format!("partitions not deleted: {}", partitions.join(", ")),
                    });
                }
                if let Some(state) = self.tables.get_mut(table) {
                    for partition in chunk {
                        state.partitions.remove(&partition.values);
                    }
                }
            }
        }
        Ok(())
    }
}
