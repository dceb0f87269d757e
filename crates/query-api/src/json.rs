//! Arrow record batches to JSON rows, and Arrow types to SQL type names.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
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
    match array.data_type() {
        DataType::Int8 => primitive::<Int8Type>(array, Value::from),
        DataType::Int16 => primitive::<Int16Type>(array, Value::from),
        DataType::Int32 => primitive::<Int32Type>(array, Value::from),
        DataType::Int64 => primitive::<Int64Type>(array, Value::from),
        DataType::UInt8 => primitive::<UInt8Type>(array, Value::from),
        DataType::UInt16 => primitive::<UInt16Type>(array, Value::from),
        DataType::UInt32 => primitive::<UInt32Type>(array, Value::from),
        DataType::UInt64 => primitive::<UInt64Type>(array, Value::from),
        DataType::Float32 => primitive::<Float32Type>(array, |v: f32| float(f64::from(v))),
        DataType::Float64 => primitive::<Float64Type>(array, float),
        DataType::Boolean => {
            let typed = array.as_boolean();
            per_row(typed, |row| Value::Bool(typed.value(row)))
        }
        DataType::Utf8 => {
            let typed = array.as_string::<i32>();
            per_row(typed, |row| Value::from(typed.value(row)))
        }
        DataType::LargeUtf8 => {
            let typed = array.as_string::<i64>();
            per_row(typed, |row| Value::from(typed.value(row)))
        }
        DataType::Utf8View => {
            let typed = array.as_string_view();
            per_row(typed, |row| Value::from(typed.value(row)))
        }
        _ => formatted(array),
    }
}

/// One value per row of `array`: `null` where it is null, `value(row)` elsewhere.
fn per_row(array: &dyn Array, value: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..array.len())
        .map(|row| {
            if array.is_null(row) {
                Value::Null
            } else {
                value(row)
            }
        })
        .collect()
}

/// The values of a primitive array, each converted by `convert`.
fn primitive<T: ArrowPrimitiveType>(
    array: &ArrayRef,
    convert: impl Fn(T::Native) -> Value,
) -> Vec<Value> {
    let typed = array.as_primitive::<T>();
    per_row(typed, |row| convert(typed.value(row)))
}

/// The values in their canonical text form (Arrow's display); all `null` when the type has none.
fn formatted(array: &ArrayRef) -> Vec<Value> {
    match ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()) {
        Ok(formatter) => per_row(array.as_ref(), |row| {
            Value::String(formatter.value(row).to_string())
        }),
        Err(_) => vec![Value::Null; array.len()],
    }
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
