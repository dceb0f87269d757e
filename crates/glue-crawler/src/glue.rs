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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_glue::types::{
    Column as GlueColumn, CrawlerState, CrawlerTargets, DatabaseInput, PartitionInput, S3Target,
    SerDeInfo, StorageDescriptor, TableInput,
};
use stockstream_common::catalog::{Column, Storage};
use stockstream_common::config::AwsEndpoint;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::{LakeStore, partition_path};

use crate::error::{Error, Result};
use crate::tables::{FINGERPRINT_PARAMETER, file_columns};

/// Table parameter: when the file whose schema the table describes was committed (so a late
/// event with an older schema never reverts a newer one).
const SCHEMA_COMMITTED_AT: &str = "stockstream.schema_committed_at";
/// Most partitions per `BatchCreatePartition` call (Glue's limit).
const BATCH_LIMIT: usize = 100;
/// Attempts for partitions that fail with a retryable error.
const PARTITION_ATTEMPTS: u32 = 3;

/// How the Glue catalog learns about new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Register partitions directly (`BatchCreatePartition`).
    Partitions,
    /// Athena partition projection: nothing to register.
    Projection,
    /// Run a Glue crawler, debounced.
    Crawler,
}

impl Strategy {
    /// Parses the configuration value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "partitions" => Some(Self::Partitions),
            "projection" => Some(Self::Projection),
            "crawler" => Some(Self::Crawler),
            _ => None,
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

/// The crawler's run state as stockstream drives it.
#[derive(Debug, Default)]
struct CrawlerTrigger {
    pending_since: Option<Instant>,
    running: bool,
    new_data_while_running: bool,
    last_status: Option<String>,
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

fn glue_error(operation: &'static str, error: impl std::error::Error) -> Error {
    Error::Glue {
        operation,
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
                .map_err(|error| glue_error("building a column", error))
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
                    .map_err(|error| glue_error("building the database", error))?;
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
            .map_err(|error| glue_error("building the table", error))?;
        if exists {
            self.client
                .update_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await
                .map_err(|error| glue_error("UpdateTable", error))?;
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

    async fn register_partitions(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let Some(state) = self.tables.get(table) else {
            return Ok(());
        };
        let mut wanted: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for event in events {
            let values: Vec<String> = event
                .partition
                .iter()
                .map(|value| value.value.clone())
                .collect();
            if !state.partitions.contains(&values) {
                let location = format!(
                    "{}{}/",
                    self.location(&event.table_location),
                    partition_path(&event.partition)
                );
                wanted.insert(values, location);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        // The table's columns are known; only a table registered by someone else without any
        // makes the footer of a file necessary.
        let columns = if state.columns.is_empty() {
            let key = events
                .last()
                .map(|event| event.object_key.clone())
                .unwrap_or_default();
            file_columns(self.store.as_ref(), &key).await?
        } else {
            state.columns.clone()
        };
        let mut pending: Vec<(Vec<String>, String)> = wanted.into_iter().collect();
        let mut attempt = 0;
        let mut last_errors = Vec::new();
        while !pending.is_empty() {
            attempt += 1;
            let mut retry = Vec::new();
            last_errors.clear();
            for chunk in pending.chunks(BATCH_LIMIT) {
                let inputs = chunk
                    .iter()
                    .map(|(values, location)| {
                        Ok(PartitionInput::builder()
                            .set_values(Some(values.clone()))
                            .storage_descriptor(storage_descriptor(&columns, location)?)
                            .build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                let answer = self
                    .client
                    .batch_create_partition()
                    .database_name(&self.database)
                    .table_name(table)
                    .set_partition_input_list(Some(inputs))
                    .send()
                    .await
                    .map_err(|error| glue_error("BatchCreatePartition", error))?;
                let mut failed: HashSet<Vec<String>> = HashSet::new();
                let mut existing: HashSet<Vec<String>> = HashSet::new();
                for error in answer.errors() {
                    let values = error.partition_values().to_vec();
                    let code = error
                        .error_detail()
                        .and_then(|detail| detail.error_code())
                        .unwrap_or("");
                    if code == "AlreadyExistsException" {
                        existing.insert(values);
                    } else {
                        let message = error
                            .error_detail()
                            .and_then(|detail| detail.error_message())
                            .unwrap_or("");
                        last_errors.push(format!("{values:?}: {code} {message}"));
                        failed.insert(values);
                    }
                }
                for (values, location) in chunk {
                    if failed.contains(values) {
                        retry.push((values.clone(), location.clone()));
                        continue;
                    }
                    if let Some(state) = self.tables.get_mut(table) {
                        state.partitions.insert(values.clone());
                    }
                    if existing.contains(values) {
                        outcome.partitions_existing += 1;
                    } else {
                        outcome.partitions_registered += 1;
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            if attempt >= PARTITION_ATTEMPTS {
                return Err(Error::Glue {
                    operation: "BatchCreatePartition",
                    message: format!(
                        "{} partition(s) still failing after {attempt} attempts: {}",
                        retry.len(),
                        last_errors.join("; ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            pending = retry;
        }
        Ok(())
    }

    async fn extend_projection(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let found = self
            .client
            .get_table()
            .database_name(&self.database)
            .name(table)
            .send()
            .await
            .map_err(|error| glue_error("GetTable", error))?;
        let Some(definition) = found.table() else {
            return Ok(());
        };
        let current = definition.parameters().cloned().unwrap_or_default();
        let location = definition
            .storage_descriptor()
            .and_then(|descriptor| descriptor.location())
            .unwrap_or_default()
            .to_string();
        let keys = catalog_columns(definition.partition_keys());
        let wanted = merge_projection(&current, &projection_parameters(&location, &keys, events));
        if wanted == current {
            return Ok(());
        }
        let mut input = TableInput::builder()
            .name(table)
            .table_type(definition.table_type().unwrap_or("EXTERNAL_TABLE"))
            .set_storage_descriptor(definition.storage_descriptor().cloned())
            .set_partition_keys(Some(definition.partition_keys().to_vec()));
        for (key, value) in &wanted {
            input = input.parameters(key, value);
        }
        let input = input
            .build()
            .map_err(|error| glue_error("building the table", error))?;
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(input)
            .send()
            .await
            .map_err(|error| glue_error("UpdateTable", error))?;
        tracing::info!(table, "partition projection extended");
        outcome.tables_updated += 1;
        Ok(())
    }

    fn note_for_crawler(&mut self, table: &str, events: &[&LakeCommitEvent]) -> Result<()> {
        let Some(state) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let mut new_data = false;
        for event in events {
            let mut marker: Vec<String> = event
                .partition
                .iter()
                .map(|value| value.value.clone())
                .collect();
            marker.push(event.schema_fingerprint.clone());
            if state.crawled.insert(marker) {
                new_data = true;
            }
        }
        if new_data {
            if self.crawler.running {
                self.crawler.new_data_while_running = true;
            } else {
                self.crawler.pending_since.get_or_insert_with(Instant::now);
            }
        }
        Ok(())
    }

    async fn ensure_crawler(&mut self, events: &[LakeCommitEvent]) -> Result<GlueOutcome> {
        let outcome = GlueOutcome::default();
        match self
            .client
            .get_crawler()
            .name(&self.settings.crawler_name)
            .send()
            .await
        {
            Ok(_) => return Ok(outcome),
            Err(error) if code_of(&error) == Some("EntityNotFoundException") => {}
            Err(error) => return Err(glue_error("GetCrawler", error)),
        }
        let mut targets = CrawlerTargets::builder();
        let locations: BTreeSet<String> = events
            .iter()
            .map(|event| self.location(&event.table_location))
            .collect();
        for location in locations {
            targets = targets.s3_targets(S3Target::builder().path(location).build());
        }
        match self
            .client
            .create_crawler()
            .name(&self.settings.crawler_name)
            .role(&self.settings.crawler_role)
            .database_name(&self.database)
            .targets(targets.build())
            .description("stockstream: catalogs the Parquet lake when the sink commits new data")
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(crawler = %self.settings.crawler_name, "Glue crawler created");
            }
            Err(error) if code_of(&error) == Some("AlreadyExistsException") => {}
            Err(error) => return Err(glue_error("CreateCrawler", error)),
        }
        Ok(outcome)
    }

    /// Advances the crawler: notices a finished crawl, starts a debounced one. Call it
    /// periodically (the service does, every poll interval).
    pub async fn drive_crawler(&mut self) -> Result<GlueOutcome> {
        let mut outcome = GlueOutcome::default();
        if self.settings.strategy != Strategy::Crawler {
            return Ok(outcome);
        }
        if self.crawler.running {
            let answer = self
                .client
                .get_crawler()
                .name(&self.settings.crawler_name)
                .send()
                .await
                .map_err(|error| glue_error("GetCrawler", error))?;
            let crawler = answer.crawler();
            let state = crawler.and_then(|crawler| crawler.state());
            if state == Some(&CrawlerState::Ready) || state.is_none() {
                self.crawler.running = false;
                self.crawler.last_status = crawler
                    .and_then(|crawler| crawler.last_crawl())
                    .and_then(|crawl| crawl.status())
                    .map(|status| status.as_str().to_string());
                tracing::info!(
                    crawler = %self.settings.crawler_name,
                    last_crawl = self.crawler.last_status.as_deref().unwrap_or("unknown"),
                    "crawl finished"
                );
                if std::mem::take(&mut self.crawler.new_data_while_running) {
                    // Data arrived while the crawl ran: crawl once more, without waiting again.
                    self.crawler.pending_since =
                        Some(Instant::now() - self.settings.crawler_debounce);
                }
            } else {
                return Ok(outcome);
            }
        }
        let due = self
            .crawler
            .pending_since
            .is_some_and(|since| since.elapsed() >= self.settings.crawler_debounce);
        if !due {
            return Ok(outcome);
        }
        match self
            .client
            .start_crawler()
            .name(&self.settings.crawler_name)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(crawler = %self.settings.crawler_name, "crawler started");
                outcome.crawler_starts += 1;
            }
            Err(error) if code_of(&error) == Some("CrawlerRunningException") => {
                // A crawl (started by someone else) is under way: it covers the data seen so far.
                tracing::info!(crawler = %self.settings.crawler_name, "a crawl is already running; waiting for it");
                outcome.crawler_waits += 1;
            }
            Err(error) => return Err(glue_error("StartCrawler", error)),
        }
        self.crawler.pending_since = None;
        self.crawler.running = true;
        Ok(outcome)
    }

    /// The partition values Glue holds for `table` (re-read from Glue).
    pub async fn registered_partitions(&mut self, table: &str) -> Result<HashSet<Vec<String>>> {
        let state = self.read_table_state(table).await?;
        let partitions = state.partitions.clone();
        self.tables.insert(table.to_string(), state);
        Ok(partitions)
    }

    /// Status of the last finished crawl, as Glue reported it (`SUCCEEDED`, `FAILED`, …).
    pub fn last_crawl_status(&self) -> Option<&str> {
        self.crawler.last_status.as_deref()
    }

    /// Whether a crawl is running or waiting for its debounce.
    pub fn crawler_busy(&self) -> bool {
        self.crawler.running || self.crawler.pending_since.is_some()
    }
}

/// Athena partition-projection parameters covering the partitions of `events`.
fn projection_parameters(
    location: &str,
    keys: &[Column],
    events: &[&LakeCommitEvent],
) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::from([("projection.enabled".to_string(), "true".to_string())]);
    let template: Vec<String> = keys
        .iter()
        .map(|key| format!("{0}=${{{0}}}", key.name))
        .collect();
    parameters.insert(
        "storage.location.template".to_string(),
        format!("{}{}/", location, template.join("/")),
    );
    for key in keys {
        let values: BTreeSet<&str> = events
            .iter()
            .flat_map(|event| event.partition.iter())
            .filter(|value| value.name == key.name)
            .map(|value| value.value.as_str())
            .collect();
        // ISO dates (`{yyyy-mm-dd}`: 10 characters) or months (`{yyyy-mm}`: 7).
        let all_iso = |length: usize, suffix: &str| {
            !values.is_empty()
                && values.iter().all(|value| {
                    value.len() == length
                        && chrono::NaiveDate::parse_from_str(
                            &format!("{value}{suffix}"),
                            "%Y-%m-%d",
                        )
                        .is_ok()
                })
        };
        if key.data_type == "int" || key.data_type == "bigint" {
            let numbers: Vec<i64> = values
                .iter()
                .filter_map(|value| value.parse().ok())
                .collect();
            if let (Some(min), Some(max)) = (numbers.iter().min(), numbers.iter().max()) {
                parameters.insert(format!("projection.{}.type", key.name), "integer".into());
                parameters.insert(
                    format!("projection.{}.range", key.name),
                    format!("{min},{max}"),
                );
                // Zero-padded values (`month=03`): Athena must render them the same way.
                if let Some(width) = values
                    .iter()
                    .filter(|value| value.len() > 1 && value.starts_with('0'))
                    .map(|value| value.len())
                    .max()
                {
                    parameters.insert(format!("projection.{}.digits", key.name), width.to_string());
                }
            }
        } else if let Some((java_format, unit)) = [
            (all_iso(10, ""), "yyyy-MM-dd", "DAYS"),
            (all_iso(7, "-01"), "yyyy-MM", "MONTHS"),
        ]
        .into_iter()
        .find_map(|(matches, format, unit)| matches.then_some((format, unit)))
        {
            // ISO dates (`date={yyyy-mm-dd}`, `{yyyy-mm}`): a date projection, not an ever
            // growing enum. ISO strings sort like the dates they name.
            let (Some(min), Some(max)) = (values.first(), values.last()) else {
                continue;
            };
            parameters.insert(format!("projection.{}.type", key.name), "date".into());
            parameters.insert(
                format!("projection.{}.format", key.name),
                java_format.into(),
            );
            parameters.insert(
                format!("projection.{}.range", key.name),
                format!("{min},{max}"),
            );
            parameters.insert(format!("projection.{}.interval", key.name), "1".into());
            parameters.insert(
                format!("projection.{}.interval.unit", key.name),
                unit.into(),
            );
        } else if !values.is_empty() {
            parameters.insert(format!("projection.{}.type", key.name), "enum".into());
            parameters.insert(
                format!("projection.{}.values", key.name),
                values.into_iter().collect::<Vec<_>>().join(","),
            );
        }
    }
    parameters
}

/// `current` table parameters with the projection widened to also cover `wanted`.
fn merge_projection(
    current: &std::collections::HashMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> std::collections::HashMap<String, String> {
    let mut merged = current.clone();
    for (key, value) in wanted {
        let widened = match current.get(key) {
            Some(old) if key.ends_with(".values") => {
                let mut values: BTreeSet<&str> = old.split(',').collect();
                values.extend(value.split(','));
                values.into_iter().collect::<Vec<_>>().join(",")
            }
            Some(old) if key.ends_with(".range") => {
                let parse = |text: &str| -> Option<(i64, i64)> {
                    let (low, high) = text.split_once(',')?;
                    Some((low.trim().parse().ok()?, high.trim().parse().ok()?))
                };
                match (parse(old), parse(value)) {
                    (Some((a, b)), Some((c, d))) => format!("{},{}", a.min(c), b.max(d)),
                    // Date ranges: ISO dates compare as strings.
                    _ => match (old.split_once(','), value.split_once(',')) {
                        (Some((a, b)), Some((c, d))) => {
                            format!("{},{}", a.trim().min(c.trim()), b.trim().max(d.trim()))
                        }
                        _ => value.clone(),
                    },
                }
            }
            _ => value.clone(),
        };
        merged.insert(key.clone(), widened);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use stockstream_common::events::LAKE_COMMIT_VERSION;
    use stockstream_common::lake::{PartitionTemplate, PartitionValue};
    use stockstream_common::record::Quote;

    fn event(template: &PartitionTemplate, symbol: &str, date: NaiveDate) -> LakeCommitEvent {
        let quote = Quote {
            symbol: symbol.into(),
            trade_date: date,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            adj_close: 1.0,
            volume: 1,
            close_usd: Some(1.0),
        };
        let partition: Vec<PartitionValue> = template.partition(&quote);
        LakeCommitEvent {
            version: LAKE_COMMIT_VERSION,
            table: "quotes".into(),
            table_location: "quotes/".into(),
            object_key: format!("quotes/{}/f.parquet", partition_path(&partition)),
            partition_keys: template.partition_keys(),
            partition,
            row_count: 1,
            size_bytes: 1,
            min_trade_date: date,
            max_trade_date: date,
            schema_fingerprint: "f".into(),
            source_topic: "quotes".into(),
            source_partition: 0,
            first_offset: 0,
            last_offset: 0,
            committed_at: Utc::now(),
        }
    }

    fn projection(template: &str, quotes: &[(&str, (i32, u32, u32))]) -> BTreeMap<String, String> {
        let template: PartitionTemplate = template.parse().expect("valid");
        let events: Vec<LakeCommitEvent> = quotes
            .iter()
            .map(|(symbol, (year, month, day))| {
                let date = NaiveDate::from_ymd_opt(*year, *month, *day).expect("date");
                event(&template, symbol, date)
            })
            .collect();
        let refs: Vec<&LakeCommitEvent> = events.iter().collect();
        projection_parameters("s3://b/quotes/", &template.partition_keys(), &refs)
    }

    #[test]
    fn projections_follow_the_partition_template() {
        let default = projection(
            "symbol={symbol}/year={year}",
            &[("HSI", (1987, 1, 2)), ("N225", (1990, 5, 1))],
        );
        assert_eq!(default["projection.symbol.type"], "enum");
        assert_eq!(default["projection.symbol.values"], "HSI,N225");
        assert_eq!(default["projection.year.range"], "1987,1990");
        assert!(!default.contains_key("projection.year.digits"));
        assert_eq!(
            default["storage.location.template"],
            "s3://b/quotes/symbol=${symbol}/year=${year}/"
        );

        let daily = projection(
            "date={yyyy-mm-dd}",
            &[
                ("HSI", (1987, 1, 2)),
                ("HSI", (1987, 3, 9)),
                ("X", (1986, 12, 31)),
            ],
        );
        assert_eq!(daily["projection.date.type"], "date");
        assert_eq!(daily["projection.date.format"], "yyyy-MM-dd");
        assert_eq!(daily["projection.date.range"], "1986-12-31,1987-03-09");
        assert_eq!(daily["projection.date.interval.unit"], "DAYS");

        let monthly = projection("ym={yyyy-mm}", &[("HSI", (1987, 1, 2))]);
        assert_eq!(monthly["projection.ym.format"], "yyyy-MM");
        assert_eq!(monthly["projection.ym.interval.unit"], "MONTHS");

        let padded = projection(
            "year={yyyy}/month={mm}",
            &[("HSI", (1987, 1, 2)), ("HSI", (1987, 11, 2))],
        );
        assert_eq!(padded["projection.month.range"], "1,11");
        assert_eq!(padded["projection.month.digits"], "2");

        // Widening a date range keeps the earliest start and the latest end.
        let current = std::collections::HashMap::from([(
            "projection.date.range".to_string(),
            "1987-01-02,1987-03-09".to_string(),
        )]);
        let wanted = BTreeMap::from([(
            "projection.date.range".to_string(),
            "1986-12-31,1987-02-01".to_string(),
        )]);
        assert_eq!(
            merge_projection(&current, &wanted)["projection.date.range"],
            "1986-12-31,1987-03-09"
        );
    }
}
