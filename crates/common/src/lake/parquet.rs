//! The quotes file schema and its deterministic Parquet encoding.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::template::PartitionTemplate;
use crate::Result;
use crate::record::Quote;

/// A quote with the Kafka coordinates it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeRow {
    /// The quote.
    pub quote: Quote,
    /// Kafka partition it was consumed from.
    pub kafka_partition: i32,
    /// Kafka offset it was consumed from.
    pub kafka_offset: i64,
}

/// Encodes rows as one zstd-compressed Parquet file.
///
/// The output depends only on its inputs (rows in the given order, `ingested_at`, the row-group
/// size and this crate's version), so a sink that replays the same Kafka range after a crash writes
/// byte-identical files.
pub fn encode_quotes<R: std::borrow::Borrow<LakeRow>>(
    template: &PartitionTemplate,
    rows: &[R],
    ingested_at: DateTime<Utc>,
    row_group_size: usize,
) -> Result<Bytes> {
    let schema = template.file_schema();
    let mut symbol = template
        .symbol_in_files()
        .then(|| StringBuilder::with_capacity(rows.len(), rows.len() * 8));
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let mut trade_date = Date32Builder::with_capacity(rows.len());
    let mut open = Float64Builder::with_capacity(rows.len());
    let mut high = Float64Builder::with_capacity(rows.len());
    let mut low = Float64Builder::with_capacity(rows.len());
    let mut close = Float64Builder::with_capacity(rows.len());
    let mut adj_close = Float64Builder::with_capacity(rows.len());
    let mut volume = Int64Builder::with_capacity(rows.len());
    let mut close_usd = Float64Builder::with_capacity(rows.len());
    let mut kafka_partition = Int32Builder::with_capacity(rows.len());
    let mut kafka_offset = Int64Builder::with_capacity(rows.len());
    let mut ingested = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let ingested_micros = ingested_at.timestamp_micros();
    for row in rows {
        let row = row.borrow();
        let quote = &row.quote;
        if let Some(symbol) = &mut symbol {
            symbol.append_value(&quote.symbol);
        }
        // Dates are validated to years 1800-2200, far inside i32 days.
        trade_date.append_value((quote.trade_date - epoch).num_days() as i32);
        open.append_value(quote.open);
        high.append_value(quote.high);
        low.append_value(quote.low);
        close.append_value(quote.close);
        adj_close.append_value(quote.adj_close);
        volume.append_value(quote.volume);
        close_usd.append_option(quote.close_usd);
        kafka_partition.append_value(row.kafka_partition);
        kafka_offset.append_value(row.kafka_offset);
        ingested.append_value(ingested_micros);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    if let Some(mut symbol) = symbol {
        columns.push(Arc::new(symbol.finish()));
    }
    columns.extend::<[ArrayRef; 11]>([
        Arc::new(trade_date.finish()),
        Arc::new(open.finish()),
        Arc::new(high.finish()),
        Arc::new(low.finish()),
        Arc::new(close.finish()),
        Arc::new(adj_close.finish()),
        Arc::new(volume.finish()),
        Arc::new(close_usd.finish()),
        Arc::new(kafka_partition.finish()),
        Arc::new(kafka_offset.finish()),
        Arc::new(ingested.finish()),
    ]);
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let properties = writer_properties(row_group_size)?;
    let mut buffer = Vec::with_capacity(rows.len() * 40 + 1024);
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// How every Parquet file of the lake is written: zstd level 3, `row_group_size` rows per row
/// group, page-level statistics (for pruning by min/max and the page index).
pub fn writer_properties(row_group_size: usize) -> Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(row_group_size.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build())
}

/// Reads the Arrow schema from a Parquet file's footer (what a Glue crawler infers from a file).
pub fn decode_parquet_schema(file: Bytes) -> Result<SchemaRef> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(builder.schema().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn row(offset: i64, day: u32) -> LakeRow {
        LakeRow {
            quote: Quote {
                symbol: "HSI".into(),
                trade_date: NaiveDate::from_ymd_opt(1987, 1, day).expect("date"),
                open: 1.5,
                high: 2.0,
                low: 1.0,
                close: 1.75,
                adj_close: 1.75,
                volume: 10,
                close_usd: Some(0.2),
            },
            kafka_partition: 1,
            kafka_offset: offset,
        }
    }

    #[test]
    fn encoding_is_deterministic_and_readable() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let rows = vec![row(7, 2), row(8, 5)];
        let template = PartitionTemplate::default();
        let first = encode_quotes(&template, &rows, at, 1000).expect("encodes");
        let second = encode_quotes(&template, &rows, at, 1000).expect("encodes");
        assert_eq!(first, second);

        let reader = ParquetRecordBatchReaderBuilder::try_new(first.clone())
            .expect("reader")
            .build()
            .expect("build");
        let batches: Vec<_> = reader
            .collect::<std::result::Result<_, _>>()
            .expect("batches");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        assert_eq!(
            decode_parquet_schema(first).expect("schema"),
            template.file_schema()
        );

        // A layout without the symbol in the path keeps it in the files.
        let daily: PartitionTemplate = "date={yyyy-mm-dd}".parse().expect("valid");
        let file = encode_quotes(&daily, &rows, at, 1000).expect("encodes");
        assert_eq!(
            decode_parquet_schema(file.clone()).expect("schema"),
            daily.file_schema()
        );
        let batch = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("build")
            .next()
            .expect("a batch")
            .expect("reads");
        let symbols = batch
            .column_by_name("symbol")
            .expect("symbol column")
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("strings");
        assert_eq!(symbols.value(1), "HSI");
    }
}
