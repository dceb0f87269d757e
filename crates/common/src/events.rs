//! The `lake.commits` event: one per data file committed to the lake.
//!
//! The sink publishes it after the file is durable; the catalog service applies it. Applying the
//! same event twice changes nothing, so the sink may re-publish after a crash.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Column;
use crate::lake::PartitionValue;

/// Version of the event format.
pub const LAKE_COMMIT_VERSION: u32 = 1;

/// A data file that became part of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LakeCommitEvent {
    /// Event format version ([`LAKE_COMMIT_VERSION`]).
    pub version: u32,
    /// Table the file belongs to.
    pub table: String,
    /// Lake-relative prefix of the table (`quotes/`).
    pub table_location: String,
    /// Lake-relative key of the file.
    pub object_key: String,
    /// Partition columns with their Glue types.
    pub partition_keys: Vec<Column>,
    /// The file's partition values.
    pub partition: Vec<PartitionValue>,
    /// Rows in the file.
    pub row_count: u64,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// Earliest trade date in the file.
    pub min_trade_date: NaiveDate,
    /// Latest trade date in the file.
    pub max_trade_date: NaiveDate,
    /// Fingerprint of the file's data columns ([`crate::catalog::schema_fingerprint`]).
    pub schema_fingerprint: String,
    /// Kafka topic the rows came from.
    pub source_topic: String,
    /// Kafka partition the rows came from.
    pub source_partition: i32,
    /// First Kafka offset in the file.
    pub first_offset: i64,
    /// Last Kafka offset in the file.
    pub last_offset: i64,
    /// When the sink committed the file.
    pub committed_at: DateTime<Utc>,
}
