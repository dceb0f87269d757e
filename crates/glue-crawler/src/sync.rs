//! `sync`: reconciles AWS Glue with the lake, for the partitions its events never reached.

use std::collections::HashSet;

use chrono::Utc;
use stockstream_common::catalog::Table;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::{LakeStore, open_store};

use crate::config::{CatalogMode, Config};
use crate::crawl::crawl;
use crate::error::Result;
use crate::glue::GlueCatalog;
use crate::tables;

/// What `sync` found in the lake and changed in Glue.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Tables found in the lake.
    pub tables: Vec<String>,
    /// Partitions in the lake that Glue lacked (registered unless `dry_run`).
    pub partitions_missing_in_glue: Vec<String>,
    /// Partitions Glue lists that the lake does not hold (reported, never deleted).
    pub partitions_missing_in_lake: Vec<String>,
    /// Files that do not fit their table.
    pub inconsistencies: Vec<String>,
    /// What was done in Glue.
    pub applied: Option<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// Reconciles AWS Glue with the lake: scans the lake like `crawl`, then (unless `dry_run`)
/// creates or updates the tables and registers every missing partition, as if each partition's
/// files had just been committed. Partitions Glue has but the lake lacks are only reported.
pub async fn sync_glue(config: &Config, dry_run: bool) -> Result<SyncReport> {
    let CatalogMode::Glue(settings) = &config.crawler.mode else {
        return Err(stockstream_common::Error::config(
            "crawler.mode",
            "sync reconciles AWS Glue; set crawler.mode = \"glue\" (locally, `crawl` rebuilds the catalog)",
        )
        .into());
    };
    let store = open_store(&config.lake).await?;
    let database = config.crawler.database.as_str();
    let (lake, crawl_report) = crawl(store.as_ref(), database, None).await?;
    let mut glue = GlueCatalog::connect(settings.clone(), database, store.clone()).await?;
    let mut report = SyncReport {
        tables: crawl_report.tables,
        inconsistencies: crawl_report.inconsistencies,
        dry_run,
        ..SyncReport::default()
    };
    let mut events = Vec::new();
    for table in lake.databases.values().flat_map(|db| db.tables.values()) {
        let in_glue = glue.registered_partitions(&table.name).await?;
        events.extend(compare_table(store.as_ref(), table, &in_glue, &mut report).await?);
    }
    report.partitions_missing_in_glue.sort();
    report.partitions_missing_in_lake.sort();
    if !dry_run {
        let outcome = glue.apply(&events).await?;
        report.applied = Some(format!("{outcome:?}"));
    }
    Ok(report)
}

/// Reports the partitions of `table` missing in Glue (`in_glue`) or in the lake, and returns
/// one event per partition of the lake that holds a Parquet file.
async fn compare_table(
    store: &dyn LakeStore,
    table: &Table,
    in_glue: &HashSet<Vec<String>>,
    report: &mut SyncReport,
) -> Result<Vec<LakeCommitEvent>> {
    let fingerprint = table
        .parameters
        .get(tables::FINGERPRINT_PARAMETER)
        .cloned()
        .unwrap_or_default();
    let mut in_lake = HashSet::new();
    let mut events = Vec::new();
    for (path, partition) in &table.partitions {
        in_lake.insert(partition.values.clone());
        let missing = !in_glue.contains(&partition.values);
        if missing {
            report
                .partitions_missing_in_glue
                .push(format!("{}/{path}", table.name));
        }
        if let Some(event) = partition_event(store, table, path, &fingerprint).await? {
            events.push(event);
        }
    }
    for values in in_glue.difference(&in_lake) {
        report
            .partitions_missing_in_lake
            .push(format!("{}/{}", table.name, values.join("/")));
    }
    Ok(events)
}

/// An event as if partition `path` of `table` had just been committed, naming one of its files
/// (for the footer); `None` if the partition holds no Parquet file.
async fn partition_event(
    store: &dyn LakeStore,
    table: &Table,
    path: &str,
    fingerprint: &str,
) -> Result<Option<LakeCommitEvent>> {
    let prefix = format!("{}{path}/", table.location);
    let Some(file) = store
        .list(&prefix)
        .await?
        .into_iter()
        .find(|object| object.key.ends_with(".parquet"))
    else {
        return Ok(None);
    };
    let values = stockstream_common::lake::parse_partition_path(
        table.location.trim_end_matches('/'),
        &file.key,
    )
    .unwrap_or_default();
    Ok(Some(LakeCommitEvent {
        version: stockstream_common::events::LAKE_COMMIT_VERSION,
        table: table.name.clone(),
        table_location: table.location.clone(),
        object_key: file.key.clone(),
        partition_keys: table.partition_keys.clone(),
        partition: values,
        row_count: 0,
        size_bytes: file.size,
        min_trade_date: chrono::NaiveDate::MIN,
        max_trade_date: chrono::NaiveDate::MIN,
        schema_fingerprint: fingerprint.to_string(),
        source_topic: String::new(),
        source_partition: -1,
        first_offset: -1,
        last_offset: -1,
        committed_at: Utc::now(),
    }))
}
