//! Athena's result pages as Arrow record batches, typed from `ResultSetMetadata`.
//!
//! Athena returns every value as a string (`VarCharValue`). Integers become `bigint` numbers,
//! `double`/`real`/`float` numbers, `boolean` booleans, `date` dates and `timestamp` timestamps
//! (both written as ISO strings in JSON), `decimal` stays a string (so no precision is lost), a
//! missing `VarCharValue` is NULL, and every other type (`varchar`, `array`, `map`, `row`, `json`,
//! `varbinary`, …) is its text. The column's own Athena type name travels in the field metadata,
//! so answers report `decimal(10,2)`, not the Arrow type.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use aws_sdk_athena::types::{ColumnInfo, Row};
use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{Error, Result};
use crate::http::formats::SQL_TYPE_METADATA;

/// How one Athena column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Double,
    Boolean,
    Date,
    Timestamp,
    Text,
}

fn kind_of(athena_type: &str) -> Kind {
    match athena_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "integer" | "int" | "bigint" => Kind::Integer,
        "double" | "real" | "float" => Kind::Double,
        "boolean" => Kind::Boolean,
        "date" => Kind::Date,
        "timestamp" => Kind::Timestamp,
        _ => Kind::Text,
    }
}

/// The SQL type name of a column as Athena reports it (`decimal(10,2)`, `varchar`, …).
fn type_name(column: &ColumnInfo) -> String {
    let base = column.r#type().to_ascii_lowercase();
    if base == "decimal" && column.precision() > 0 {
        format!("decimal({},{})", column.precision(), column.scale())
    } else {
        base
    }
}

/// The Arrow schema of Athena's result columns.
pub(crate) fn schema_of(columns: &[ColumnInfo]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|column| {
                let data_type = match kind_of(column.r#type()) {
                    Kind::Integer => DataType::Int64,
                    Kind::Double => DataType::Float64,
                    Kind::Boolean => DataType::Boolean,
                    Kind::Date => DataType::Date32,
                    Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    Kind::Text => DataType::Utf8,
                };
                Field::new(column.name(), data_type, true).with_metadata(HashMap::from([(
                    SQL_TYPE_METADATA.to_string(),
                    type_name(column),
                )]))
            })
            .collect::<Vec<_>>(),
    ))
}

enum Builder {
    Integer(Int64Builder),
    Double(Float64Builder),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    Text(StringBuilder),
}

fn unreadable(column: &str, athena_type: &str, value: &str) -> Error {
    Error::Execution(format!(
        "Athena returned `{value}` for {athena_type} column {column}, which is not a {athena_type}"
    ))
}

/// Epoch day of 1970-01-01 in chrono's day count.
const UNIX_EPOCH_DAY: i32 = 719_163;

impl Builder {
    fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Integer => Builder::Integer(Int64Builder::with_capacity(capacity)),
            Kind::Double => Builder::Double(Float64Builder::with_capacity(capacity)),
            Kind::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(capacity)),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Timestamp => {
                Builder::Timestamp(TimestampMillisecondBuilder::with_capacity(capacity))
            }
            Kind::Text => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 8)),
        }
    }

    fn push(&mut self, column: &ColumnInfo, value: Option<&str>) -> Result<()> {
        let Some(value) = value else {
            match self {
                Builder::Integer(builder) => builder.append_null(),
                Builder::Double(builder) => builder.append_null(),
                Builder::Boolean(builder) => builder.append_null(),
                Builder::Date(builder) => builder.append_null(),
                Builder::Timestamp(builder) => builder.append_null(),
                Builder::Text(builder) => builder.append_null(),
            }
            return Ok(());
        };
        let bad = || unreadable(column.name(), column.r#type(), value);
        match self {
            Builder::Integer(builder) => builder.append_value(value.parse().map_err(|_| bad())?),
            Builder::Double(builder) => builder.append_value(parse_double(value).ok_or_else(bad)?),
            Builder::Boolean(builder) => builder.append_value(match value {
                "true" => true,
                "false" => false,
                _ => return Err(bad()),
            }),
            Builder::Date(builder) => {
                let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())?;
                builder.append_value(chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_DAY);
            }
            Builder::Timestamp(builder) => {
                let timestamp = NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
                    .map_err(|_| bad())?;
                builder.append_value(timestamp.and_utc().timestamp_millis());
            }
            Builder::Text(builder) => builder.append_value(value),
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Integer(mut builder) => Arc::new(builder.finish()),
            Builder::Double(mut builder) => Arc::new(builder.finish()),
            Builder::Boolean(mut builder) => Arc::new(builder.finish()),
            Builder::Date(mut builder) => Arc::new(builder.finish()),
            Builder::Timestamp(mut builder) => Arc::new(builder.finish()),
            Builder::Text(mut builder) => Arc::new(builder.finish()),
        }
    }
}

/// Athena writes special doubles as `NaN`, `Infinity`, `-Infinity`.
fn parse_double(value: &str) -> Option<f64> {
    match value {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// Converts result rows into one batch of `schema` (from the same `columns`).
pub(crate) fn batch_of(
    columns: &[ColumnInfo],
    schema: &SchemaRef,
    rows: &[Row],
) -> Result<RecordBatch> {
    let mut builders: Vec<Builder> = columns
        .iter()
        .map(|column| Builder::new(kind_of(column.r#type()), rows.len()))
        .collect();
    for row in rows {
        let data = row.data();
        if data.len() != columns.len() {
            return Err(Error::Execution(format!(
                "Athena returned a row of {} values for {} columns",
                data.len(),
                columns.len()
            )));
        }
        for ((builder, column), datum) in builders.iter_mut().zip(columns).zip(data) {
            builder.push(column, datum.var_char_value())?;
        }
    }
    Ok(RecordBatch::try_new(
        schema.clone(),
        builders.into_iter().map(Builder::finish).collect(),
    )?)
}

#[cfg(test)]
mod tests {
    use aws_sdk_athena::types::Datum;

    use super::*;
    use crate::json::column_values;

    fn column(name: &str, athena_type: &str) -> ColumnInfo {
        ColumnInfo::builder()
            .name(name)
            .r#type(athena_type)
            .build()
            .expect("column")
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row::builder()
            .set_data(Some(
                values
                    .iter()
                    .map(|value| {
                        Datum::builder()
                            .set_var_char_value(value.map(str::to_string))
                            .build()
                    })
                    .collect(),
            ))
            .build()
    }

    #[test]
    fn values_are_typed_from_the_metadata() {
        let mut decimal = column("amount", "decimal");
        decimal = ColumnInfo::builder()
            .name(decimal.name())
            .r#type("decimal")
            .precision(10)
            .scale(2)
            .build()
            .expect("decimal");
        let columns = vec![
            column("n", "bigint"),
            column("x", "double"),
            decimal,
            column("flag", "boolean"),
            column("day", "date"),
            column("at", "timestamp"),
            column("name", "varchar"),
            column("tags", "array"),
        ];
        let schema = schema_of(&columns);
        let batch = batch_of(
            &columns,
            &schema,
            &[
                row(&[
                    Some("42"),
                    Some("3949.699951"),
                    Some("12.50"),
                    Some("true"),
                    Some("1987-10-19"),
                    Some("1987-10-19 09:30:00.000"),
                    Some("HSI"),
                    Some("[a, b]"),
                ]),
                row(&[
                    None,
                    Some("NaN"),
                    None,
                    Some("false"),
                    None,
                    None,
                    None,
                    None,
                ]),
            ],
        )
        .expect("batch");
        let json: Vec<Vec<serde_json::Value>> = batch.columns().iter().map(column_values).collect();
        assert_eq!(
            json[0],
            vec![serde_json::json!(42), serde_json::Value::Null]
        );
        assert_eq!(json[1][0], serde_json::json!(3949.699951));
        assert_eq!(json[1][1], serde_json::json!("NaN"));
        assert_eq!(json[2][0], serde_json::json!("12.50"));
        assert_eq!(
            json[3],
            vec![serde_json::json!(true), serde_json::json!(false)]
        );
        assert_eq!(json[4][0], serde_json::json!("1987-10-19"));
        assert_eq!(json[5][0], serde_json::json!("1987-10-19T09:30:00"));
        assert_eq!(json[6][1], serde_json::Value::Null);
        assert_eq!(json[7][0], serde_json::json!("[a, b]"));
        assert_eq!(
            schema
                .field(2)
                .metadata()
                .get(SQL_TYPE_METADATA)
                .map(String::as_str),
            Some("decimal(10,2)")
        );
    }

    #[test]
    fn a_value_that_does_not_fit_its_type_is_an_error() {
        let columns = vec![column("n", "integer")];
        let schema = schema_of(&columns);
        let error = batch_of(&columns, &schema, &[row(&[Some("12x")])]).expect_err("not an int");
        assert!(error.to_string().contains("12x"), "{error}");
    }
}
