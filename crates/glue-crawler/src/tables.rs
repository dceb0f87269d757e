//! Building and updating catalog tables.

use std::collections::BTreeMap;

use stockstream_common::catalog::{
    Catalog, Column, Database, Partition, Storage, Table, columns_of, schema_fingerprint,
};
use stockstream_common::lake::{LakeStore, PartitionValue, decode_parquet_schema, partition_path};

use crate::error::{Error, Result};

/// Table parameter holding the fingerprint of the data columns.
pub(crate) const FINGERPRINT_PARAMETER: &str = "stockstream.schema_fingerprint";

/// A new Parquet table definition, shaped like a Glue table over S3.
pub(crate) fn new_table(
    name: &str,
    location: &str,
    columns: Vec<Column>,
    partition_keys: Vec<Column>,
) -> Table {
    let parameters = BTreeMap::from([
        ("EXTERNAL".to_string(), "TRUE".to_string()),
        ("classification".to_string(), "parquet".to_string()),
        ("compressionType".to_string(), "zstd".to_string()),
        ("typeOfData".to_string(), "file".to_string()),
        (
            FINGERPRINT_PARAMETER.to_string(),
            schema_fingerprint(&columns),
        ),
    ]);
    Table {
        name: name.to_string(),
        table_type: "EXTERNAL_TABLE".to_string(),
        location: location.to_string(),
        columns,
        partition_keys,
        storage: Storage::parquet(),
        parameters,
        partitions: BTreeMap::new(),
    }
}

/// The database `name`, created if missing.
pub(crate) fn database_mut<'a>(catalog: &'a mut Catalog, name: &str) -> &'a mut Database {
    catalog
        .databases
        .entry(name.to_string())
        .or_insert_with(|| Database {
            name: name.to_string(),
            tables: BTreeMap::new(),
        })
}

/// Adds a partition to `table` unless present; returns whether it was added.
pub(crate) fn add_partition(table: &mut Table, values: &[PartitionValue]) -> bool {
    let path = partition_path(values);
    if table.partitions.contains_key(&path) {
        return false;
    }
    let partition = Partition {
        values: values.iter().map(|value| value.value.clone()).collect(),
        location: format!("{}{path}/", table.location),
    };
    table.partitions.insert(path, partition);
    true
}

/// Fails with [`stockstream_common::Error::NotFound`] unless the event's file is in the lake: a
/// new partition must hold the file that announces it (the service sets an event naming a
/// missing file aside, see `poison`).
pub(crate) async fn require_file(store: &dyn LakeStore, key: &str) -> Result<()> {
    if store.exists(key).await? {
        Ok(())
    } else {
        Err(stockstream_common::Error::NotFound {
            key: key.to_string(),
        }
        .into())
    }
}

/// Reads a data file's footer and returns its columns in catalog form.
pub(crate) async fn file_columns(store: &dyn LakeStore, key: &str) -> Result<Vec<Column>> {
    let bytes = store.get(key).await?;
    let schema = decode_parquet_schema(bytes).map_err(|error| Error::Schema {
        key: key.to_string(),
        reason: error.to_string(),
    })?;
    Ok(columns_of(&schema)?)
}
