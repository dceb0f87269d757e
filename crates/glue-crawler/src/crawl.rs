//! `crawl`: rebuilds the catalog by scanning the lake, the local equivalent of a Glue crawler.
//!
//! Every top-level folder that does not start with `_` or `.` is a table; its `.parquet` files'
//! paths give the partitions (`name=value` segments), and Parquet footers give the columns.
//! Folders below a table that start with `_` or `.` are not partitions; `_compacted` holds
//! compacted generations, and a partition keeps the generation the previous catalog read (or,
//! without one, its newest swapped generation).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stockstream_common::catalog::{Catalog, Column};
use stockstream_common::lake::{COMPACTED_DIR, LakeStore, PartitionValue, parse_partition_path};

use crate::error::Result;
use crate::tables::{add_partition, database_mut, file_columns, new_table};

/// What a crawl found, compared with the catalog it replaces.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CrawlReport {
    /// Tables found in the lake.
    pub tables: Vec<String>,
    /// Partitions found that the previous catalog did not list.
    pub partitions_added: Vec<String>,
    /// Partitions the previous catalog listed that the lake no longer holds.
    pub partitions_removed: Vec<String>,
    /// Tables whose columns differ from the previous catalog.
    pub tables_changed: Vec<String>,
    /// Files that do not fit their table (other partition keys, other columns).
    pub inconsistencies: Vec<String>,
}

/// Scans the lake and returns a fresh catalog for `database`, with a report against `previous`.
pub async fn crawl(
    store: &dyn LakeStore,
    database: &str,
    previous: Option<&Catalog>,
) -> Result<(Catalog, CrawlReport)> {
    // Per table: (key as if in its home directory, real key).
    let mut files_by_table: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    // (table, partition path) → generation locations holding data, and those marked swapped.
    let mut generations: BTreeMap<(String, String), BTreeMap<String, bool>> = BTreeMap::new();
    for object in store.list("").await? {
        let Some((table, rest)) = object.key.split_once('/') else {
            continue;
        };
        if table.starts_with('_') || table.starts_with('.') {
            continue;
        }
        if let Some(generation) = rest.strip_prefix(&format!("{COMPACTED_DIR}/")) {
            // `<path>/g<id>/<file>`
            let mut parts = generation.rsplitn(3, '/');
            let (Some(file), Some(id), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let location = format!("{table}/{COMPACTED_DIR}/{path}/{id}/");
            let entry = generations
                .entry((table.to_string(), path.to_string()))
                .or_default()
                .entry(location)
                .or_default();
            if file == "_swapped.json" {
                *entry = true;
            } else if file.ends_with(".parquet") {
                files_by_table
                    .entry(table.to_string())
                    .or_default()
                    .push((format!("{table}/{path}/{file}"), object.key.clone()));
            }
            continue;
        }
        let hidden = rest
            .split('/')
            .any(|segment| segment.starts_with('_') || segment.starts_with('.'));
        if hidden || !object.key.ends_with(".parquet") {
            continue;
        }
        files_by_table
            .entry(table.to_string())
            .or_default()
            .push((object.key.clone(), object.key));
    }

    let mut catalog = Catalog::default();
    database_mut(&mut catalog, database);
    let mut report = CrawlReport::default();
    for (table_name, keys) in files_by_table {
        // One sample file per partition: its path gives the values, its footer the columns.
        let mut partitions: BTreeMap<Vec<PartitionValue>, String> = BTreeMap::new();
        let mut key_names: Option<Vec<String>> = None;
        for (key, real_key) in &keys {
            let Some(values) = parse_partition_path(&table_name, key) else {
                report
                    .inconsistencies
                    .push(format!("{key}: path is not table/name=value/…/file"));
                continue;
            };
            let names: Vec<String> = values.iter().map(|value| value.name.clone()).collect();
            match &key_names {
                None => key_names = Some(names),
                Some(expected) if *expected != names => {
                    report.inconsistencies.push(format!(
                        "{key}: partition keys {names:?} differ from the table's {expected:?}"
                    ));
                    continue;
                }
                Some(_) => {}
            }
            partitions.entry(values).or_insert_with(|| real_key.clone());
        }
        let Some(key_names) = key_names else {
            continue;
        };
        let partition_keys = infer_partition_keys(&key_names, partitions.keys());

        let mut table_columns: Option<Vec<Column>> = None;
        for sample in partitions.values() {
            let columns = file_columns(store, sample).await?;
            match &table_columns {
                None => table_columns = Some(columns),
                Some(expected) if *expected != columns => report
                    .inconsistencies
                    .push(format!("{sample}: columns differ from the table's")),
                Some(_) => {}
            }
        }
        let Some(columns) = table_columns else {
            continue;
        };
        let mut table = new_table(
            &table_name,
            &format!("{table_name}/"),
            columns,
            partition_keys,
        );
        for values in partitions.keys() {
            add_partition(&mut table, values);
        }
        let old = previous.and_then(|catalog| catalog.table(database, &table_name));
        for (path, partition) in &mut table.partitions {
            let Some(held) = generations.get(&(table_name.clone(), path.clone())) else {
                continue;
            };
            let previous_location = old
                .and_then(|old| old.partitions.get(path))
                .map(|old| old.location.clone())
                .filter(|location| held.contains_key(location));
            let newest_swapped = held
                .iter()
                .filter(|(_, swapped)| **swapped)
                .map(|(location, _)| location.clone())
                .next_back();
            if let Some(location) = previous_location.or(newest_swapped) {
                partition.location = location;
            }
        }

        let old_partitions: BTreeSet<&String> = old
            .map(|old| old.partitions.keys().collect())
            .unwrap_or_default();
        let new_partitions: BTreeSet<&String> = table.partitions.keys().collect();
        report.partitions_added.extend(
            new_partitions
                .difference(&old_partitions)
                .map(|path| format!("{table_name}/{path}")),
        );
        report.partitions_removed.extend(
            old_partitions
                .difference(&new_partitions)
                .map(|path| format!("{table_name}/{path}")),
        );
        if old.is_some_and(|old| {
            old.columns != table.columns || old.partition_keys != table.partition_keys
        }) {
            report.tables_changed.push(table_name.clone());
        }
        report.tables.push(table_name.clone());
        database_mut(&mut catalog, database)
            .tables
            .insert(table_name, table);
    }
    Ok((catalog, report))
}

/// A partition key is `int` when every value is a 32-bit integer, else `string`.
fn infer_partition_keys<'a>(
    names: &[String],
    partitions: impl Iterator<Item = &'a Vec<PartitionValue>> + Clone,
) -> Vec<Column> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let all_integers = partitions.clone().all(|values| {
                values
                    .get(index)
                    .is_some_and(|value| value.value.parse::<i32>().is_ok())
            });
            Column {
                name: name.clone(),
                data_type: if all_integers { "int" } else { "string" }.to_string(),
            }
        })
        .collect()
}
