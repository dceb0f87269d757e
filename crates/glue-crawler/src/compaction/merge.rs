//! Merging Parquet files: every row and every column copied as it is (lineage included), sorted
//! by trade date then Kafka offset, written with the lake's writer settings.

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stockstream_common::lake::writer_properties;

use crate::error::{Error, Result};

/// Rows per row group of merged files.
pub(crate) const MERGED_ROW_GROUP: usize = 128 * 1024;

/// Merges `files` (key, bytes) into one file; returns it and its row count. Every file must have
/// the same schema (the first file's).
pub(crate) fn merge_files(files: &[(String, Bytes)], sort: bool) -> Result<(Bytes, u64)> {
    let mut schema = None;
    let mut batches: Vec<RecordBatch> = Vec::new();
    for (key, bytes) in files {
        let unreadable = |error: &dyn std::fmt::Display| Error::Schema {
            key: key.clone(),
            reason: error.to_string(),
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .map_err(|error| unreadable(&error))?
            .build()
            .map_err(|error| unreadable(&error))?;
        for batch in reader {
            let batch = batch.map_err(|error| unreadable(&error))?;
            match &schema {
                None => schema = Some(batch.schema()),
                Some(expected) if *expected != batch.schema() => {
                    return Err(unreadable(&"its columns differ from the other files'"));
                }
                Some(_) => {}
            }
            batches.push(batch);
        }
    }
    let Some(schema) = schema else {
        return Err(Error::Schema {
            key: files
                .first()
                .map(|(key, _)| key.clone())
                .unwrap_or_default(),
            reason: "no rows to merge".to_string(),
        });
    };
    let merged = concat_batches(&schema, &batches).map_err(stockstream_common::Error::from)?;
    drop(batches);
    let merged = if sort { sort_rows(&merged)? } else { merged };
    let rows = merged.num_rows() as u64;
    let mut buffer = Vec::with_capacity(files.iter().map(|(_, bytes)| bytes.len()).sum());
    let properties = writer_properties(MERGED_ROW_GROUP)?;
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(properties))
        .map_err(stockstream_common::Error::from)?;
    writer
        .write(&merged)
        .map_err(stockstream_common::Error::from)?;
    writer.close().map_err(stockstream_common::Error::from)?;
    Ok((Bytes::from(buffer), rows))
}

/// Sorts by `trade_date`, then `kafka_offset` (the columns that exist).
fn sort_rows(batch: &RecordBatch) -> Result<RecordBatch> {
    let columns: Vec<SortColumn> = ["trade_date", "kafka_partition", "kafka_offset"]
        .iter()
        .filter_map(|name| batch.column_by_name(name))
        .map(|values| SortColumn {
            values: values.clone(),
            options: None,
        })
        .collect();
    if columns.is_empty() {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&columns, None).map_err(stockstream_common::Error::from)?;
    Ok(take_record_batch(batch, &indices).map_err(stockstream_common::Error::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use stockstream_common::lake::{LakeRow, PartitionTemplate, encode_quotes};
    use stockstream_common::record::Quote;

    fn rows(offsets: std::ops::Range<i64>, day_of: impl Fn(i64) -> u32) -> Vec<LakeRow> {
        offsets
            .map(|offset| LakeRow {
                quote: Quote {
                    symbol: "HSI".into(),
                    trade_date: NaiveDate::from_ymd_opt(1987, 1, day_of(offset)).expect("date"),
                    open: 1.0,
                    high: 2.0,
                    low: 0.5,
                    close: offset as f64,
                    adj_close: 1.0,
                    volume: offset,
                    close_usd: None,
                },
                kafka_partition: 0,
                kafka_offset: offset,
            })
            .collect()
    }

    #[test]
    fn merging_keeps_every_row_with_its_lineage_sorted_by_trade_date() {
        let template = PartitionTemplate::default();
        let at = |second: i64| {
            Utc.timestamp_opt(1_700_000_000 + second, 0)
                .single()
                .expect("time")
        };
        let first =
            encode_quotes(&template, &rows(0..5, |o| 28 - o as u32), at(1), 1000).expect("encodes");
        let second =
            encode_quotes(&template, &rows(5..8, |o| o as u32), at(2), 1000).expect("encodes");
        let (merged, count) =
            merge_files(&[("a".into(), first), ("b".into(), second)], true).expect("merges");
        assert_eq!(count, 8);
        let batch = ParquetRecordBatchReaderBuilder::try_new(merged)
            .expect("reader")
            .build()
            .expect("build")
            .next()
            .expect("a batch")
            .expect("reads");
        let offsets = batch
            .column_by_name("kafka_offset")
            .expect("lineage")
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("int64")
            .values()
            .to_vec();
        // Days: offsets 5..8 are 5, 6, 7; offsets 0..5 are 28..24.
        assert_eq!(offsets, vec![5, 6, 7, 4, 3, 2, 1, 0]);
        let ingested = batch
            .column_by_name("ingested_at")
            .expect("lineage")
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .expect("timestamps")
            .values()
            .to_vec();
        assert_eq!(ingested[0], at(2).timestamp_micros(), "kept row for row");
        assert_eq!(ingested[7], at(1).timestamp_micros());
    }
}
