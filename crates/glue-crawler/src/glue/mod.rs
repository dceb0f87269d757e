//! The AWS Glue Data Catalog as the catalog, with three strategies ([`Strategy`]):
//!
//! - `partitions`: the database and table are created from the first file's Parquet footer;
//!   new partitions are registered with `BatchCreatePartition` (at most 100 per call;
//!   `AlreadyExistsException` counts as success; other per-partition errors are retried, then
//!   reported);
//! - `projection`: the table carries Athena partition-projection properties (`enum` values for
//!   string keys, an `integer` range for int keys, a location template), so no partition is ever
//!   registered; a value outside the projection extends it with one `UpdateTable`;
//! - `crawler`: a Glue crawler over the table's prefix is created if missing and started,
//!   debounced, when files bring new partitions or a new schema. A `CrawlerRunningException`
//!   means a crawl is already under way: it is awaited (polling `GetCrawler` until READY) and
//!   counts for the data seen so far; one more crawl starts only if new data arrived meanwhile.
//!
//! In every strategy a schema change (an event whose fingerprint differs from the table's) updates
//! the table definition (or triggers the crawler) once; events are applied idempotently: state
//! read back from Glue at the first event of a table tells what is already registered.
//!
//! Files: `mod.rs` (this: settings, the catalog handle, database and table definitions),
//! `partitions.rs` (the `partitions` strategy's batched registration), `projection.rs` (the
//! `projection` strategy's table properties), `crawler.rs` (the `crawler` strategy's debounced
//! runs).

mod crawler;
mod partitions;
mod projection;
mod relocate;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_glue::types::{
    Column as GlueColumn, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput,
};
use stockstream_common::aws_error::AwsErrorKind;
use stockstream_common::catalog::{Column, Storage};
use stockstream_common::config::AwsEndpoint;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::LakeStore;

use crate::error::{Error, Result};
use crate::tables::{FINGERPRINT_PARAMETER, file_columns};

use self::crawler::CrawlerTrigger;
use self::projection::projection_parameters;

/// Table parameter: when the file whose schema the table describes was committed (so a late
/// event with an older schema never reverts a newer one).
const SCHEMA_COMMITTED_AT: &str = "stockstream.schema_committed_at";

/// How the Glue catalog learns about new data (`crawler.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Register partitions directly (`BatchCreatePartition`).
    Partitions,
    /// Athena partition projection: nothing to register.
    Projection,
    /// Run a Glue crawler, debounced.
    Crawler,
}

impl Strategy {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partitions => "partitions",
            Self::Projection => "projection",
            Self::Crawler => "crawler",
        }
    }
}

/// Settings of the Glue catalog.
#[derive(Debug, Clone)]
pub struct GlueSettings {
    /// Strategy.
    pub strategy: Strategy,
    /// Region and endpoint override.
    pub aws: AwsEndpoint,
    /// Name of the crawler (`crawler` strategy).
    pub crawler_name: String,
    /// IAM role the crawler runs as (`crawler` strategy).
    pub crawler_role: String,
    /// Quiet time after new data before the crawler starts.
    pub crawler_debounce: Duration,
}

/// What applying events (or driving the crawler) did in Glue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GlueOutcome {
    /// Databases created.
    pub databases_created: u64,
    /// Tables created.
    pub tables_created: u64,
    /// Table definitions updated (schema change, projection extended).
    pub tables_updated: u64,
    /// Partitions registered by this call.
    pub partitions_registered: u64,
    /// Partitions Glue already had (`AlreadyExistsException`).
    pub partitions_existing: u64,
    /// Crawler runs started.
    pub crawler_starts: u64,
    /// Times a start found a crawl already running and waited for it.
    pub crawler_waits: u64,
}

impl GlueOutcome {
    fn add(&mut self, other: &GlueOutcome) {
        self.databases_created += other.databases_created;
        self.tables_created += other.tables_created;
        self.tables_updated += other.tables_updated;
        self.partitions_registered += other.partitions_registered;
        self.partitions_existing += other.partitions_existing;
        self.crawler_starts += other.crawler_starts;
        self.crawler_waits += other.crawler_waits;
    }
}

/// What stockstream knows of one table in Glue.
#[derive(Debug, Default)]
struct TableState {
    fingerprint: String,
    schema_committed_at: String,
    partition_keys: Vec<Column>,
    /// The table's data columns, as registered (partitions get the same descriptor).
    columns: Vec<Column>,
    partitions: HashSet<Vec<String>>,
    /// `crawler` strategy: partitions and fingerprints already handed to a crawl.
    crawled: HashSet<Vec<String>>,
}

/// The Glue catalog.
#[derive(Debug)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    database: String,
    settings: GlueSettings,
    store: Arc<dyn LakeStore>,
    database_ready: bool,
    tables: BTreeMap<String, TableState>,
    crawler: CrawlerTrigger,
}

/// A Glue request's failure, classified by its error code and HTTP status.
fn glue_error<E>(operation: &'static str, error: aws_sdk_glue::error::SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Glue {
        operation,
        kind: AwsErrorKind::of(&error),
        message: DisplayErrorContext(error).to_string(),
    }
}

/// A Glue request that could not be built (a required field missing).
fn glue_build_error(what: &'static str, error: aws_sdk_glue::error::BuildError) -> Error {
    Error::Glue {
        operation: what,
        kind: AwsErrorKind::Rejected,
        message: DisplayErrorContext(error).to_string(),
    }
}

fn code_of<E: ProvideErrorMetadata>(error: &aws_sdk_glue::error::SdkError<E>) -> Option<&str> {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
}

fn glue_columns(columns: &[Column]) -> Result<Vec<GlueColumn>> {
    columns
        .iter()
        .map(|column| {
            GlueColumn::builder()
                .name(&column.name)
                .r#type(&column.data_type)
                .build()
                .map_err(|error| glue_build_error("building a column", error))
        })
        .collect()
}

/// Glue columns in catalog form.
fn catalog_columns(columns: &[GlueColumn]) -> Vec<Column> {
    columns
        .iter()
        .map(|column| Column {
            name: column.name().to_string(),
            data_type: column.r#type().unwrap_or("string").to_string(),
        })
        .collect()
}

fn storage_descriptor(columns: &[Column], location: &str) -> Result<StorageDescriptor> {
    let storage = Storage::parquet();
    Ok(StorageDescriptor::builder()
        .set_columns(Some(glue_columns(columns)?))
        .location(location)
        .input_format(storage.input_format)
        .output_format(storage.output_format)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(storage.serde)
                .parameters("serialization.format", "1")
                .build(),
        )
        .compressed(true)
        .build())
}

impl GlueCatalog {
    /// Connects to Glue; `store` is the lake (its URL prefixes every location).
    pub async fn connect(
        settings: GlueSettings,
        database: &str,
        store: Arc<dyn LakeStore>,
    ) -> Result<Self> {
        let sdk = settings.aws.sdk_config().await;
        Ok(Self {
            client: aws_sdk_glue::Client::new(&sdk),
            database: database.to_string(),
            settings,
            store,
            database_ready: false,
            tables: BTreeMap::new(),
            crawler: CrawlerTrigger::default(),
        })
    }

    /// The Glue client (for reconciliation and tests).
    pub fn client(&self) -> &aws_sdk_glue::Client {
        &self.client
    }

    fn location(&self, table_location: &str) -> String {
        format!(
            "{}/{}",
            self.store.url().trim_end_matches('/'),
            table_location
        )
    }

    /// Applies `lake.commits` events. Idempotent: a second identical event registers nothing.
    pub async fn apply(&mut self, events: &[LakeCommitEvent]) -> Result<GlueOutcome> {
        let mut outcome = GlueOutcome::default();
        if events.is_empty() {
            return Ok(outcome);
        }
        self.ensure_database(&mut outcome).await?;
        let mut by_table: BTreeMap<&str, Vec<&LakeCommitEvent>> = BTreeMap::new();
        for event in events {
            by_table
                .entry(event.table.as_str())
                .or_default()
                .push(event);
        }
        for (table, table_events) in by_table {
            if !self.tables.contains_key(table) {
                let state = self.read_table_state(table).await?;
                self.tables.insert(table.to_string(), state);
            }
            match self.settings.strategy {
                Strategy::Crawler => self.note_for_crawler(table, &table_events)?,
                Strategy::Partitions | Strategy::Projection => {
                    self.ensure_table(table, &table_events, &mut outcome)
                        .await?;
                    if self.settings.strategy == Strategy::Partitions {
                        self.register_partitions(table, &table_events, &mut outcome)
                            .await?;
                    } else {
                        self.extend_projection(table, &table_events, &mut outcome)
                            .await?;
                    }
                }
            }
        }
        if self.settings.strategy == Strategy::Crawler {
            outcome.add(&self.ensure_crawler(events).await?);
            outcome.add(&self.drive_crawler().await?);
        }
        Ok(outcome)
    }

    async fn ensure_database(&mut self, outcome: &mut GlueOutcome) -> Result<()> {
        if self.database_ready {
            return Ok(());
        }
        match self.client.get_database().name(&self.database).send().await {
            Ok(_) => {}
            Err(error) if code_of(&error) == Some("EntityNotFoundException") => {
                let input = DatabaseInput::builder()
                    .name(&self.database)
                    .description("stockstream market data lake")
                    .build()
                    .map_err(|error| glue_build_error("building the database", error))?;
                match self
                    .client
                    .create_database()
                    .database_input(input)
                    .send()
                    .await
                {
                    Ok(_) => {
                        tracing::info!(database = %self.database, "Glue database created");
                        outcome.databases_created += 1;
                    }
                    Err(error) if code_of(&error) == Some("AlreadyExistsException") => {}
                    Err(error) => return Err(glue_error("CreateDatabase", error)),
                }
            }
            Err(error) => return Err(glue_error("GetDatabase", error)),
        }
        self.database_ready = true;
        Ok(())
    }

    /// Reads what Glue already has of `table`: its schema fingerprint and partitions.
    async fn read_table_state(&self, table: &str) -> Result<TableState> {
        let mut state = TableState::default();
        let found = match self
            .client
            .get_table()
            .database_name(&self.database)
            .name(table)
            .send()
            .await
        {
            Ok(found) => found,
            Err(error) if code_of(&error) == Some("EntityNotFoundException") => return Ok(state),
            Err(error) => return Err(glue_error("GetTable", error)),
        };
        if let Some(definition) = found.table() {
            let parameters = definition.parameters();
            if let Some(parameters) = parameters {
                state.fingerprint = parameters
                    .get(FINGERPRINT_PARAMETER)
                    .cloned()
                    .unwrap_or_default();
                state.schema_committed_at = parameters
                    .get(SCHEMA_COMMITTED_AT)
                    .cloned()
                    .unwrap_or_default();
            }
            state.partition_keys = catalog_columns(definition.partition_keys());
            state.columns = definition
                .storage_descriptor()
                .map(|descriptor| catalog_columns(descriptor.columns()))
                .unwrap_or_default();
        }
        if self.settings.strategy == Strategy::Partitions {
            let mut pages = self
                .client
                .get_partitions()
                .database_name(&self.database)
                .table_name(table)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|error| glue_error("GetPartitions", error))?;
                for partition in page.partitions() {
                    state.partitions.insert(partition.values().to_vec());
                }
            }
        }
        Ok(state)
    }

    /// Creates the table from the first event's file, or updates it once for a newer schema.
    async fn ensure_table(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let Some(state) = self.tables.get(table) else {
            return Ok(());
        };
        let exists = !state.partition_keys.is_empty() || !state.fingerprint.is_empty();
        // The newest event whose schema differs from the table's decides the definition.
        let newest = events
            .iter()
            .filter(|event| event.schema_fingerprint != state.fingerprint)
            .filter(|event| !exists || event.committed_at.to_rfc3339() > state.schema_committed_at)
            .max_by_key(|event| event.committed_at);
        let Some(event) = newest else {
            return Ok(());
        };
        let columns = file_columns(self.store.as_ref(), &event.object_key).await?;
        let location = self.location(&event.table_location);
        let committed_at = event.committed_at.to_rfc3339();
        let mut input = TableInput::builder()
            .name(table)
            .table_type("EXTERNAL_TABLE")
            .storage_descriptor(storage_descriptor(&columns, &location)?)
            .set_partition_keys(Some(glue_columns(&event.partition_keys)?))
            .parameters("EXTERNAL", "TRUE")
            .parameters("classification", "parquet")
            .parameters("compressionType", "zstd")
            .parameters("typeOfData", "file")
            .parameters(FINGERPRINT_PARAMETER, &event.schema_fingerprint)
            .parameters(SCHEMA_COMMITTED_AT, &committed_at);
        if self.settings.strategy == Strategy::Projection {
            for (key, value) in projection_parameters(&location, &event.partition_keys, events) {
                input = input.parameters(key, value);
            }
        }
        let input = input
            .build()
            .map_err(|error| glue_build_error("building the table", error))?;
        if exists {
            self.update_table(input).await?;
            tracing::info!(table, fingerprint = %event.schema_fingerprint, "Glue table schema updated");
            outcome.tables_updated += 1;
        } else {
            match self
                .client
                .create_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await
            {
                Ok(_) => {
                    tracing::info!(table, database = %self.database, "Glue table created");
                    outcome.tables_created += 1;
                }
                Err(error) if code_of(&error) == Some("AlreadyExistsException") => {
                    // Created meanwhile by someone else: re-read it next time.
                    self.tables.remove(table);
                    return Ok(());
                }
                Err(error) => return Err(glue_error("CreateTable", error)),
            }
        }
        if let Some(state) = self.tables.get_mut(table) {
            state.fingerprint = event.schema_fingerprint.clone();
            state.schema_committed_at = committed_at;
            state.partition_keys = event.partition_keys.clone();
            state.columns = columns;
        }
        Ok(())
    }

    /// Replaces a table's definition (`UpdateTable`).
    async fn update_table(&self, input: TableInput) -> Result<()> {
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(input)
            .send()
            .await
            .map_err(|error| glue_error("UpdateTable", error))?;
        Ok(())
    }

    /// `GetTable` for `table` of the database.
    async fn fetch_table(
        &self,
        table: &str,
    ) -> Result<aws_sdk_glue::operation::get_table::GetTableOutput> {
        self.client
            .get_table()
            .database_name(&self.database)
            .name(table)
            .send()
            .await
            .map_err(|error| glue_error("GetTable", error))
    }

    /// The partition values Glue holds for `table` (re-read from Glue).
    pub async fn registered_partitions(&mut self, table: &str) -> Result<HashSet<Vec<String>>> {
        let state = self.read_table_state(table).await?;
        let partitions = state.partitions.clone();
        self.tables.insert(table.to_string(), state);
        Ok(partitions)
    }
}
