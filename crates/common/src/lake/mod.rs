//! The lake: where quotes rest as Parquet files, and how they are laid out.
//!
//! Layout (the same on local disk and on S3):
//!
//! ```text
//! quotes/symbol=HSI/year=1987/quotes+0+00000000000000000000+00000000000000000249.parquet
//! └─table└─Hive partition path─┘ └topic┘└partition┘└first offset──────┘└last offset────────┘
//! _stockstream/…   control files (sink progress, catalog), never part of a table
//! ```
//!
//! The partition path comes from a template ([`PartitionTemplate`], default
//! `symbol={symbol}/year={year}`; e.g. `date={yyyy-mm-dd}` for tick streams). Partition columns
//! live in the path, not in the files, as Hive, Glue and Athena expect; each file holds the
//! remaining columns (`symbol` too when the path does not carry it) plus lineage (Kafka partition
//! and offset, ingestion time).

mod layout;
mod parquet;
mod s3;
mod store;
mod template;

pub use self::layout::{
    CONTROL_PREFIX, PartitionValue, QUOTES_TABLE, data_object_key, hive_escape, hive_escape_into,
    hive_unescape, parse_partition_path, partition_path,
};
pub use self::parquet::{LakeRow, decode_parquet_schema, encode_quotes};
pub use self::s3::{MULTIPART_THRESHOLD, S3Store, s3_client};
pub use self::store::{LakeStore, LocalStore, ObjectMeta, open_store};
pub use self::template::{DEFAULT_PARTITION_TEMPLATE, PartitionTemplate};
