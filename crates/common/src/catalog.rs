//! The Glue-shaped catalog: databases, tables, columns with types, partition keys and partitions.
//!
//! In local mode the catalog is one JSON document in the lake ([`CATALOG_KEY`]), replaced
//! atomically by the crawler and read by the query API. Its shape follows the AWS Glue Data
//! Catalog (`Table.StorageDescriptor.Columns`, `PartitionKeys`, `Partitions[].Values`, Hive
//! Parquet SerDe), so moving to Glue changes where it is stored, not what it says.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::lake::LakeStore;
use crate::{Error, Result};

/// Lake key of the local catalog document.
pub const CATALOG_KEY: &str = "_stockstream/catalog/catalog.json";
/// Hive input format of Parquet tables, as Glue records it.
pub const PARQUET_INPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
/// Hive output format of Parquet tables.
pub const PARQUET_OUTPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
/// Hive SerDe of Parquet tables.
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// The whole catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Databases by name.
    pub databases: BTreeMap<String, Database>,
}

/// A database: a namespace of tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Database name.
    pub name: String,
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
}

/// A table over Parquet files below `location`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// `EXTERNAL_TABLE`, as Glue tables over S3 are.
    pub table_type: String,
    /// Lake-relative prefix of the table's files, ending in `/` (e.g. `quotes/`).
    pub location: String,
    /// Data columns stored in the files, in file order.
    pub columns: Vec<Column>,
    /// Partition columns, encoded in the path (`symbol=…/year=…`).
    pub partition_keys: Vec<Column>,
    /// Storage format of the files.
    pub storage: Storage,
    /// Table parameters (`classification`, `compressionType`, `stockstream.schema_fingerprint`, …).
    pub parameters: BTreeMap<String, String>,
    /// Partitions by their path relative to `location` (e.g. `symbol=HSI/year=1987`).
    pub partitions: BTreeMap<String, Partition>,
}

/// A column and its Glue (Hive) type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Glue type: `string`, `int`, `bigint`, `double`, `date`, `timestamp`, `boolean`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// Input/output format and SerDe of a table's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Hive input format class.
    pub input_format: String,
    /// Hive output format class.
    pub output_format: String,
    /// SerDe class.
    pub serde: String,
}

impl Storage {
    /// The storage descriptor of Parquet tables.
    pub fn parquet() -> Self {
        Self {
            input_format: PARQUET_INPUT_FORMAT.to_string(),
            output_format: PARQUET_OUTPUT_FORMAT.to_string(),
            serde: PARQUET_SERDE.to_string(),
        }
    }
}

/// One partition of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Values of the partition keys, in key order.
    pub values: Vec<String>,
    /// Lake-relative prefix of the partition's files, ending in `/`.
    pub location: String,
}

impl Catalog {
    /// Looks up a table.
    pub fn table(&self, database: &str, table: &str) -> Option<&Table> {
        self.databases.get(database)?.tables.get(table)
    }

    /// Reads the catalog from the lake; `None` if none was written yet.
    pub async fn load(store: &dyn LakeStore) -> Result<Option<Catalog>> {
        let bytes = match store.get(CATALOG_KEY).await {
            Ok(bytes) => bytes,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Json {
                context: format!("decoding catalog {CATALOG_KEY}"),
                source,
            })
    }

    /// Replaces the catalog in the lake atomically.
    pub async fn save(&self, store: &dyn LakeStore) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            context: "encoding catalog".to_string(),
            source,
        })?;
        bytes.push(b'\n');
        store.put(CATALOG_KEY, bytes.into()).await
    }
}

/// Glue type of an Arrow type, for the types stockstream writes.
pub fn glue_type(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Boolean => "boolean",
        DataType::Int8 => "tinyint",
        DataType::Int16 => "smallint",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Date32 => "date",
        DataType::Timestamp(_, _) => "timestamp",
        _ => return None,
    })
}

/// Arrow type of a Glue type, as the query engine reads it.
pub fn arrow_type(glue_type: &str) -> Option<DataType> {
    Some(match glue_type {
        "string" => DataType::Utf8,
        "boolean" => DataType::Boolean,
        "tinyint" => DataType::Int8,
        "smallint" => DataType::Int16,
        "int" => DataType::Int32,
        "bigint" => DataType::Int64,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}

/// Catalog columns of an Arrow schema; fails on a type the catalog cannot represent.
pub fn columns_of(schema: &Schema) -> Result<Vec<Column>> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let data_type = glue_type(field.data_type()).ok_or_else(|| Error::Config {
                key: format!("column {}", field.name()),
                message: format!("type {} has no Glue equivalent", field.data_type()),
            })?;
            Ok(Column {
                name: field.name().clone(),
                data_type: data_type.to_string(),
            })
        })
        .collect()
}

/// A short stable fingerprint of a column list (names and types, in order).
pub fn schema_fingerprint(columns: &[Column]) -> String {
    let mut hasher = Sha256::new();
    for column in columns {
        hasher.update(column.name.as_bytes());
        hasher.update(b":");
        hasher.update(column.data_type.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{LocalStore, PartitionTemplate};

    #[test]
    fn quote_schema_maps_to_glue_types_and_back() {
        let template: PartitionTemplate = "date={yyyy-mm-dd}".parse().expect("valid");
        let schema = template.file_schema();
        let columns = columns_of(&schema).expect("maps");
        assert_eq!(columns[0].data_type, "string");
        assert_eq!(columns[1].data_type, "date");
        assert_eq!(columns[7].data_type, "bigint");
        for (column, field) in columns.iter().zip(schema.fields()) {
            assert_eq!(
                arrow_type(&column.data_type).as_ref(),
                Some(field.data_type())
            );
        }
        assert_eq!(schema_fingerprint(&columns), schema_fingerprint(&columns));
        assert_ne!(
            schema_fingerprint(&columns),
            schema_fingerprint(&columns[1..])
        );
    }

    #[tokio::test]
    async fn catalog_round_trips_through_the_lake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        assert_eq!(Catalog::load(&store).await.expect("load"), None);
        let mut catalog = Catalog::default();
        catalog.databases.insert(
            "stockstream".into(),
            Database {
                name: "stockstream".into(),
                tables: BTreeMap::new(),
            },
        );
        catalog.save(&store).await.expect("save");
        assert_eq!(Catalog::load(&store).await.expect("load"), Some(catalog));
    }
}
