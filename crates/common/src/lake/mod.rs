//! The lake: where quotes rest as Parquet files, and how they are laid out.
//!
//! Layout (the same on local disk and on S3):
//!
//! ```text
//! quotes/symbol=HSI/year=1987/quotes+0+00000000000000000000+00000000000000000249.parquet
//! └─table└─Hive partition path─┘ └topic┘└partition┘└first offset──────┘└last offset────────┘
//! quotes/_compacted/symbol=HSI/year=1987/g<id>/…   merged files of a compacted partition
//! _stockstream/…   control files (sink progress, catalog), never part of a table
//! ```
//!
//! The partition path comes from a template ([`PartitionTemplate`], default
//! `symbol={symbol}/year={year}`; e.g. `date={yyyy-mm-dd}` for tick streams). Partition columns
//! live in the path, not in the files, as Hive, Glue and Athena expect; each file holds the
//! remaining columns (`symbol` too when the path does not carry it) plus lineage (Kafka partition
//! and offset, ingestion time).

mod intent;
mod layout;
mod maintenance;
mod parquet;
mod s3;
mod store;
mod template;

pub use self::intent::{
    FlushIntent, INTENT_VERSION, decode_intent, intent_key, intent_prefix, intents_root,
    latest_intents,
};
pub use self::layout::{
    COMPACTED_DIR, CONTROL_PREFIX, FileRange, PartitionValue, QUOTES_TABLE, data_object_key,
    hive_escape, hive_escape_into, hive_unescape, home_key, parse_partition_path, partition_path,
};
pub use self::maintenance::{CompactionConfig, CompactionSection, RetentionSection};
pub use self::parquet::{LakeRow, decode_parquet_schema, encode_quotes, writer_properties};
pub use self::s3::{MULTIPART_THRESHOLD, S3Store, s3_client};
pub use self::store::{LakeStore, LocalStore, ObjectMeta, open_store};
pub use self::template::{DEFAULT_PARTITION_TEMPLATE, PartitionTemplate};
