//! (tests) A temporary local lake with the sink's file layout, and the `lake.commits` events
//! announcing its files: what the unit tests of `apply` and `crawl` run against.

use chrono::{NaiveDate, TimeZone, Utc};
use stockstream_common::catalog::{Column, schema_fingerprint};
use stockstream_common::events::{LAKE_COMMIT_VERSION, LakeCommitEvent};
use stockstream_common::lake::{
    LakeRow, LakeStore, LocalStore, PartitionTemplate, PartitionValue, encode_quotes,
    partition_path,
};
use stockstream_common::record::Quote;

use crate::tables::file_columns;

/// The table the helpers write.
pub(crate) const TABLE: &str = "quotes";

/// The partition keys of the sink's default layout, `symbol=…/year=…`.
pub(crate) fn partition_keys() -> Vec<Column> {
    vec![
        Column {
            name: "symbol".into(),
            data_type: "string".into(),
        },
        Column {
            name: "year".into(),
            data_type: "int".into(),
        },
    ]
}

/// A lake in a temporary directory, removed on drop.
pub(crate) struct TestLake {
    _directory: tempfile::TempDir,
    store: LocalStore,
}

impl TestLake {
    pub(crate) fn new() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let store = LocalStore::new(directory.path()).expect("a local lake");
        Self {
            _directory: directory,
            store,
        }
    }

    pub(crate) fn store(&self) -> &dyn LakeStore {
        &self.store
    }

    /// Writes the quotes of `symbol` at Kafka `offsets` (one a day from January 2 of `year`) as
    /// one file of partition `symbol=…/year=…`, and returns the event announcing it.
    pub(crate) async fn commit(
        &self,
        symbol: &str,
        year: i32,
        offsets: std::ops::Range<i64>,
    ) -> LakeCommitEvent {
        let first_day = NaiveDate::from_ymd_opt(year, 1, 2).expect("a date");
        let rows: Vec<LakeRow> = offsets
            .clone()
            .map(|offset| LakeRow {
                quote: Quote {
                    symbol: symbol.to_string(),
                    trade_date: first_day + chrono::Days::new((offset - offsets.start) as u64),
                    open: 10.0,
                    high: 12.0,
                    low: 9.0,
                    close: 11.0,
                    adj_close: 11.0,
                    volume: 1000 + offset,
                    close_usd: None,
                },
                kafka_partition: 0,
                kafka_offset: offset,
            })
            .collect();
        let at = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("a time");
        let bytes = encode_quotes(&PartitionTemplate::default(), &rows, at, 1000).expect("encodes");
        let partition = vec![
            PartitionValue {
                name: "symbol".into(),
                value: symbol.into(),
            },
            PartitionValue {
                name: "year".into(),
                value: year.to_string(),
            },
        ];
        let (first, last) = (offsets.start, offsets.end - 1);
        let key = format!(
            "{TABLE}/{}/{TABLE}+0+{first:020}+{last:020}.parquet",
            partition_path(&partition)
        );
        let size_bytes = bytes.len() as u64;
        self.store.put(&key, bytes).await.expect("written");
        let columns = file_columns(&self.store, &key).await.expect("a footer");
        LakeCommitEvent {
            version: LAKE_COMMIT_VERSION,
            table: TABLE.into(),
            table_location: format!("{TABLE}/"),
            object_key: key,
            partition_keys: partition_keys(),
            partition,
            row_count: rows.len() as u64,
            size_bytes,
            min_trade_date: rows[0].quote.trade_date,
            max_trade_date: rows[rows.len() - 1].quote.trade_date,
            schema_fingerprint: schema_fingerprint(&columns),
            source_topic: TABLE.into(),
            source_partition: 0,
            first_offset: first,
            last_offset: last,
            committed_at: at,
        }
    }
}
