//! `crawl`: rebuilds the catalog by scanning the lake, the local equivalent of a Glue crawler.
//!
//! Every top-level folder that does not start with `_` or `.` is a table; its `.parquet` files'
//! paths give the partitions (`name=value` segments), and Parquet footers give the columns.
//! Folders below a table that start with `_` or `.` are not partitions; `_compacted` holds
//! compacted generations, and a partition keeps the generation the previous catalog read (or,
//! without one, its newest swapped generation).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stockstream_common::catalog::{Catalog, Column, Table};
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

/// One sample file per partition, by partition values.
type Samples = BTreeMap<Vec<PartitionValue>, String>;

/// The lake's Parquet files per table, and the compacted generations of each partition.
#[derive(Debug, Default)]
struct LakeListing {
    /// Per table: (key as if in its home directory, real key).
    files_by_table: BTreeMap<String, Vec<(String, String)>>,
    /// (table, partition path) → generation locations holding data, and those marked swapped.
    generations: BTreeMap<(String, String), BTreeMap<String, bool>>,
}

/// Scans the lake and returns a fresh catalog for `database`, with a report against `previous`.
pub async fn crawl(
    store: &dyn LakeStore,
    database: &str,
    previous: Option<&Catalog>,
) -> Result<(Catalog, CrawlReport)> {
    let LakeListing {
        files_by_table,
        generations,
    } = list_lake(store).await?;
    let mut catalog = Catalog::default();
    database_mut(&mut catalog, database);
    let mut report = CrawlReport::default();
    for (table_name, keys) in files_by_table {
        let Some(mut table) = build_table(store, &table_name, &keys, &mut report).await? else {
            continue;
        };
        let old = previous.and_then(|catalog| catalog.table(database, &table_name));
        read_generations(&mut table, &table_name, &generations, old);
        compare_with_previous(&table, &table_name, old, &mut report);
        report.tables.push(table_name.clone());
        database_mut(&mut catalog, database)
            .tables
            .insert(table_name, table);
    }
    Ok((catalog, report))
}

/// Lists the lake: the Parquet files of every table (top-level folders not starting with `_` or
/// `.`), those of compacted generations under their partition's key, and each generation's
/// swap marker.
async fn list_lake(store: &dyn LakeStore) -> Result<LakeListing> {
    let mut listing = LakeListing::default();
    for object in store.list("").await? {
        let Some((table, rest)) = object.key.split_once('/') else {
            continue;
        };
        if table.starts_with('_') || table.starts_with('.') {
            continue;
        }
        if let Some(generation) = rest.strip_prefix(&format!("{COMPACTED_DIR}/")) {
            listing.add_generation_object(table, generation, &object.key);
            continue;
        }
        let hidden = rest
            .split('/')
            .any(|segment| segment.starts_with('_') || segment.starts_with('.'));
        if hidden || !object.key.ends_with(".parquet") {
            continue;
        }
        listing
            .files_by_table
            .entry(table.to_string())
            .or_default()
            .push((object.key.clone(), object.key));
    }
    Ok(listing)
}

impl LakeListing {
    /// Records object `key` of `table`, at `generation` (`<path>/g<id>/<file>`) below its
    /// `_compacted` folder: a swap marker, or a data file keyed as if in its partition's home.
    fn add_generation_object(&mut self, table: &str, generation: &str, key: &str) {
        let mut parts = generation.rsplitn(3, '/');
        let (Some(file), Some(id), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let location = format!("{table}/{COMPACTED_DIR}/{path}/{id}/");
        let entry = self
            .generations
            .entry((table.to_string(), path.to_string()))
            .or_default()
            .entry(location)
            .or_default();
        if file == "_swapped.json" {
            *entry = true;
        } else if file.ends_with(".parquet") {
            self.files_by_table
                .entry(table.to_string())
                .or_default()
                .push((format!("{table}/{path}/{file}"), key.to_string()));
        }
    }
}

/// The table `table_name` as its files `keys` show it (`None` without a usable file); files
/// that do not fit are reported as inconsistencies.
async fn build_table(
    store: &dyn LakeStore,
    table_name: &str,
    keys: &[(String, String)],
    report: &mut CrawlReport,
) -> Result<Option<Table>> {
    let Some((key_names, partitions)) = sample_partitions(table_name, keys, report) else {
        return Ok(None);
    };
    let partition_keys = infer_partition_keys(&key_names, partitions.keys());
    let Some(columns) = table_columns(store, &partitions, report).await? else {
        return Ok(None);
    };
    let mut table = new_table(
        table_name,
        &format!("{table_name}/"),
        columns,
        partition_keys,
    );
    for values in partitions.keys() {
        add_partition(&mut table, values);
    }
    Ok(Some(table))
}

/// The table's partition key names and one sample file per partition: its path gives the
/// values, its footer the columns. `None` when no file has a partition path.
fn sample_partitions(
    table_name: &str,
    keys: &[(String, String)],
    report: &mut CrawlReport,
) -> Option<(Vec<String>, Samples)> {
    let mut partitions: Samples = BTreeMap::new();
    let mut key_names: Option<Vec<String>> = None;
    for (key, real_key) in keys {
        let Some(values) = parse_partition_path(table_name, key) else {
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
    key_names.map(|key_names| (key_names, partitions))
}

/// The columns of the first sample's footer; samples whose columns differ are reported.
async fn table_columns(
    store: &dyn LakeStore,
    partitions: &Samples,
    report: &mut CrawlReport,
) -> Result<Option<Vec<Column>>> {
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
    Ok(table_columns)
}

/// Points each compacted partition of `table` at the generation the previous catalog (`old`)
/// read, if it still holds data, else at its newest swapped generation.
fn read_generations(
    table: &mut Table,
    table_name: &str,
    generations: &BTreeMap<(String, String), BTreeMap<String, bool>>,
    old: Option<&Table>,
) {
    for (path, partition) in &mut table.partitions {
        let Some(held) = generations.get(&(table_name.to_string(), path.clone())) else {
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
}

/// Reports the partitions `table` gained and lost against `old`, and whether its columns or
/// partition keys changed.
fn compare_with_previous(
    table: &Table,
    table_name: &str,
    old: Option<&Table>,
    report: &mut CrawlReport,
) {
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
        report.tables_changed.push(table_name.to_string());
    }
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::test_lake::{TABLE, TestLake};

    const DATABASE: &str = "stockstream";

    #[tokio::test]
    async fn a_crawl_finds_partitions_and_columns_and_reports_what_changed() {
        let lake = TestLake::new();
        lake.commit("HSI", 1987, 0..3).await;
        let gone = lake.commit("N225", 1990, 3..6).await;
        // Folders starting with `_` are not tables or partitions; other files are not data.
        for key in [
            "_stockstream/catalog/catalog.json",
            "quotes/_tmp/x.parquet",
            "quotes/notes.txt",
        ] {
            lake.store()
                .put(key, Bytes::from_static(b"{}"))
                .await
                .expect("written");
        }

        let (catalog, report) = crawl(lake.store(), DATABASE, None).await.expect("crawls");
        assert_eq!(report.tables, [TABLE]);
        assert_eq!(
            report.partitions_added,
            [
                "quotes/symbol=HSI/year=1987",
                "quotes/symbol=N225/year=1990"
            ]
        );
        assert!(report.inconsistencies.is_empty(), "{report:?}");
        let table = catalog.table(DATABASE, TABLE).expect("the table");
        let keys: Vec<(&str, &str)> = table
            .partition_keys
            .iter()
            .map(|key| (key.name.as_str(), key.data_type.as_str()))
            .collect();
        assert_eq!(keys, [("symbol", "string"), ("year", "int")]);
        assert!(table.columns.iter().any(|column| column.name == "volume"));

        let (again, report) = crawl(lake.store(), DATABASE, Some(&catalog))
            .await
            .expect("crawls again");
        assert_eq!(again, catalog);
        assert!(
            report.partitions_added.is_empty()
                && report.partitions_removed.is_empty()
                && report.tables_changed.is_empty(),
            "{report:?}"
        );

        lake.store()
            .delete(&gone.object_key)
            .await
            .expect("deleted");
        let (_, report) = crawl(lake.store(), DATABASE, Some(&again))
            .await
            .expect("crawls after a deletion");
        assert_eq!(report.partitions_removed, ["quotes/symbol=N225/year=1990"]);
    }
}
