//! Answer formats, chosen by `Accept`: JSON (default), NDJSON, CSV and Arrow IPC stream, and the
//! encoders that turn record batches into the bytes of each.

use arrow::array::RecordBatch;
use arrow::csv::WriterBuilder as CsvWriterBuilder;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::json::{column_values, sql_type_name};

/// A response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/json`: one document with columns, rows and stats.
    Json,
    /// `application/x-ndjson`: one JSON object per row, streamed.
    NdJson,
    /// `text/csv`: a header line, then one line per row, streamed.
    Csv,
    /// `application/vnd.apache.arrow.stream`: Arrow IPC stream, streamed.
    Arrow,
}

impl Format {
    /// The `Content-Type` of answers in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::NdJson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    fn of_media_type(media: &str) -> Option<Self> {
        Some(match media {
            "application/json" | "application/*" | "*/*" => Format::Json,
            "application/x-ndjson"
            | "application/jsonl"
            | "application/ndjson"
            | "application/json-seq" => Format::NdJson,
            "text/csv" | "text/*" => Format::Csv,
            "application/vnd.apache.arrow.stream" => Format::Arrow,
            _ => return None,
        })
    }
}

/// The format the `Accept` header prefers (highest `q`, first on ties); JSON without a header.
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Format> {
    let Some(accept) = headers.get(ACCEPT) else {
        return Ok(Format::Json);
    };
    let text = accept
        .to_str()
        .map_err(|_| Error::NotAcceptable("an Accept header that is not ASCII".into()))?;
    if text.trim().is_empty() {
        return Ok(Format::Json);
    }
    let mut best: Option<(f32, Format)> = None;
    for item in text.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|parameter| parameter.trim().strip_prefix("q="))
            .find_map(|value| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        if let Some(format) = Format::of_media_type(&media)
            && best.is_none_or(|(best_quality, _)| quality > best_quality)
        {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
        .ok_or_else(|| Error::NotAcceptable(text.to_string()))
}

/// Columns of a schema as `{name, type}` with SQL type names (an engine may carry its own type
/// name in the field metadata `stockstream.sql_type`, as Athena's are).
pub(crate) fn columns_of(schema: &Schema) -> Vec<crate::http::model::ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|field| crate::http::model::ColumnInfo {
            name: field.name().clone(),
            data_type: field
                .metadata()
                .get(SQL_TYPE_METADATA)
                .cloned()
                .unwrap_or_else(|| sql_type_name(field.data_type())),
        })
        .collect()
}

/// Field metadata key carrying an engine's own SQL type name for a column.
pub(crate) const SQL_TYPE_METADATA: &str = "stockstream.sql_type";

/// The rows of `batch` as JSON arrays.
pub(crate) fn json_rows(batch: &RecordBatch) -> Vec<Vec<Value>> {
    let columns: Vec<Vec<Value>> = batch.columns().iter().map(column_values).collect();
    (0..batch.num_rows())
        .map(|row| columns.iter().map(|column| column[row].clone()).collect())
        .collect()
}

/// Encodes a stream of batches, batch by batch, into one of the streamed formats.
pub(crate) enum Encoder {
    /// One JSON object per line.
    NdJson {
        /// Column names.
        names: Vec<String>,
    },
    /// CSV with one header line.
    Csv {
        /// Whether the header was written.
        header_written: bool,
    },
    /// Arrow IPC stream.
    Arrow(Box<StreamWriter<Vec<u8>>>),
}

impl Encoder {
    /// An encoder for `format` (not JSON) and `schema`; returns the bytes to send first.
    pub(crate) fn start(format: Format, schema: &SchemaRef) -> Result<(Self, Bytes)> {
        match format {
            Format::NdJson => Ok((
                Encoder::NdJson {
                    names: schema.fields().iter().map(|f| f.name().clone()).collect(),
                },
                Bytes::new(),
            )),
            Format::Csv => {
                let mut header = schema
                    .fields()
                    .iter()
                    .map(|field| csv_field(field.name()))
                    .collect::<Vec<_>>()
                    .join(",");
                header.push('\n');
                Ok((
                    Encoder::Csv {
                        header_written: true,
                    },
                    Bytes::from(header),
                ))
            }
            Format::Arrow => {
                let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
                let head = std::mem::take(writer.get_mut());
                Ok((Encoder::Arrow(Box::new(writer)), Bytes::from(head)))
            }
            Format::Json => Err(Error::Internal(
                "JSON answers are not streamed batch by batch".into(),
            )),
        }
    }

    /// The bytes of one batch.
    pub(crate) fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes> {
        match self {
            Encoder::NdJson { names } => {
                let mut out = Vec::new();
                for row in json_rows(batch) {
                    let object: Map<String, Value> = names.iter().cloned().zip(row).collect();
                    serde_json::to_writer(&mut out, &object)
                        .map_err(|error| Error::Internal(format!("encoding NDJSON: {error}")))?;
                    out.push(b'\n');
                }
                Ok(Bytes::from(out))
            }
            Encoder::Csv { header_written } => {
                let mut out = Vec::new();
                let mut writer = CsvWriterBuilder::new()
                    .with_header(!*header_written)
                    .build(&mut out);
                writer.write(batch)?;
                drop(writer);
                *header_written = true;
                Ok(Bytes::from(out))
            }
            Encoder::Arrow(writer) => {
                writer.write(batch)?;
                Ok(Bytes::from(std::mem::take(writer.get_mut())))
            }
        }
    }

    /// The bytes that end the stream.
    pub(crate) fn finish(&mut self) -> Result<Bytes> {
        match self {
            Encoder::Arrow(writer) => {
                writer.finish()?;
                Ok(Bytes::from(std::mem::take(writer.get_mut())))
            }
            Encoder::NdJson { .. } | Encoder::Csv { .. } => Ok(Bytes::new()),
        }
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Encoder::NdJson { .. } => "Encoder::NdJson",
            Encoder::Csv { .. } => "Encoder::Csv",
            Encoder::Arrow(_) => "Encoder::Arrow",
        })
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> Result<Format> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).expect("header"));
        negotiate(&headers)
    }

    #[test]
    fn accept_picks_the_preferred_available_format() {
        assert_eq!(negotiate(&HeaderMap::new()).expect("none"), Format::Json);
        assert_eq!(accept("text/csv").expect("csv"), Format::Csv);
        assert_eq!(
            accept("text/html, application/x-ndjson;q=0.9, */*;q=0.1").expect("ndjson"),
            Format::NdJson
        );
        assert_eq!(
            accept("application/vnd.apache.arrow.stream").expect("arrow"),
            Format::Arrow
        );
        assert!(matches!(accept("text/html"), Err(Error::NotAcceptable(_))));
        assert!(matches!(
            accept("text/csv;q=0"),
            Err(Error::NotAcceptable(_))
        ));
    }

    #[test]
    fn batches_encode_to_csv_ndjson_and_arrow() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("trade_date", DataType::Date32, true),
            Field::new("close", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("HSI"), None])),
                Arc::new(Date32Array::from(vec![6210, 6211])),
                Arc::new(Float64Array::from(vec![2540.100098, 2540.5])),
            ],
        )
        .expect("batch");

        let (mut csv, head) = Encoder::start(Format::Csv, &schema).expect("csv");
        let body = csv.batch(&batch).expect("csv batch");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            text,
            "symbol,trade_date,close\nHSI,1987-01-02,2540.100098\n,1987-01-03,2540.5\n"
        );

        let (mut ndjson, _) = Encoder::start(Format::NdJson, &schema).expect("ndjson");
        let lines =
            String::from_utf8(ndjson.batch(&batch).expect("ndjson").to_vec()).expect("utf8");
        assert_eq!(
            lines.lines().next(),
            Some(r#"{"symbol":"HSI","trade_date":"1987-01-02","close":2540.100098}"#)
        );

        let (mut arrow, head) = Encoder::start(Format::Arrow, &schema).expect("arrow");
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&arrow.batch(&batch).expect("arrow batch"));
        bytes.extend_from_slice(&arrow.finish().expect("finish"));
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .expect("reader");
        let batches: Vec<RecordBatch> =
            reader.collect::<std::result::Result<_, _>>().expect("read");
        assert_eq!(batches, vec![batch]);
    }
}
