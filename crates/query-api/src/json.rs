//! Arrow record batches to JSON rows, and Arrow types to SQL type names.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;

/// SQL name of an Arrow type, as Athena (Trino) spells it, so answers look alike on both engines.
pub(crate) fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            format!("decimal({precision},{scale})")
        }
        DataType::Dictionary(_, value) => sql_type_name(value),
        other => other.to_string().to_lowercase(),
    }
}

fn float(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(value.to_string()))
}

/// The values of `array` as JSON: numbers and booleans natively, strings as strings, NULL as
/// `null`, and every other type (dates, timestamps, decimals, lists) in its canonical text form.
pub(crate) fn column_values(array: &ArrayRef) -> Vec<Value> {
    let rows = array.len();
    let mut values = Vec::with_capacity(rows);
    macro_rules! primitive {
        ($arrow_type:ty, $convert:expr) => {{
            let typed = array.as_primitive::<$arrow_type>();
            for row in 0..rows {
                values.push(if typed.is_null(row) {
                    Value::Null
                } else {
                    $convert(typed.value(row))
                });
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => primitive!(Int8Type, Value::from),
        DataType::Int16 => primitive!(Int16Type, Value::from),
        DataType::Int32 => primitive!(Int32Type, Value::from),
        DataType::Int64 => primitive!(Int64Type, Value::from),
        DataType::UInt8 => primitive!(UInt8Type, Value::from),
        DataType::UInt16 => primitive!(UInt16Type, Value::from),
        DataType::UInt32 => primitive!(UInt32Type, Value::from),
        DataType::UInt64 => primitive!(UInt64Type, Value::from),
        DataType::Float32 => primitive!(Float32Type, |v: f32| float(f64::from(v))),
        DataType::Float64 => primitive!(Float64Type, float),
        DataType::Boolean => {
            let typed = array.as_boolean();
            for row in 0..rows {
                values.push(if typed.is_null(row) {
                    Value::Null
                } else {
                    Value::Bool(typed.value(row))
                });
            }
        }
        DataType::Utf8 => {
            let typed = array.as_string::<i32>();
            for row in 0..rows {
                values.push(if typed.is_null(row) {
                    Value::Null
                } else {
                    Value::from(typed.value(row))
                });
            }
        }
        DataType::LargeUtf8 => {
            let typed = array.as_string::<i64>();
            for row in 0..rows {
                values.push(if typed.is_null(row) {
                    Value::Null
                } else {
                    Value::from(typed.value(row))
                });
            }
        }
        DataType::Utf8View => {
            let typed = array.as_string_view();
            for row in 0..rows {
                values.push(if typed.is_null(row) {
                    Value::Null
                } else {
                    Value::from(typed.value(row))
                });
            }
        }
        _ => match ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()) {
            Ok(formatter) => {
                for row in 0..rows {
                    values.push(if array.is_null(row) {
                        Value::Null
                    } else {
                        Value::String(formatter.value(row).to_string())
                    });
                }
            }
            Err(_) => values.resize(rows, Value::Null),
        },
    }
    values
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn converts_common_types() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), None]));
        assert_eq!(column_values(&ints), vec![Value::from(5), Value::Null]);
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![3949.699951, f64::NAN]));
        assert_eq!(
            column_values(&floats),
            vec![Value::from(3949.699951), Value::from("NaN")]
        );
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["HSI"]));
        assert_eq!(column_values(&strings), vec![Value::from("HSI")]);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![6210]));
        assert_eq!(column_values(&dates), vec![Value::from("1987-01-02")]);
        assert_eq!(sql_type_name(&DataType::Int64), "bigint");
        assert_eq!(sql_type_name(&DataType::Date32), "date");
    }
}
