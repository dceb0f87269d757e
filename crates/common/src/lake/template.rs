//! The partition path template: how quotes are spread over Hive-style directories.
//!
//! A template is `/`-separated `name=value` segments whose values are built from placeholders
//! and literal text:
//!
//! | placeholder | value for 1987-03-09, `HSI` | partition key type |
//! | --- | --- | --- |
//! | `{symbol}` | `HSI` | string |
//! | `{year}`, `{yyyy}` | `1987` | int |
//! | `{month}` / `{mm}` | `3` / `03` | int |
//! | `{day}` / `{dd}` | `9` / `09` | int |
//! | `{yyyy-mm}` | `1987-03` | string |
//! | `{yyyy-mm-dd}`, `{date}` | `1987-03-09` | string |
//!
//! A value made of one numeric placeholder is an `int` key; anything else (several placeholders,
//! or literal text around one) is a `string` key. The default is `symbol={symbol}/year={year}`;
//! tick streams would use `date={yyyy-mm-dd}`, and `year={yyyy}/month={mm}/day={dd}` works too.
//!
//! Columns whose value leaves the path stay in the files: `trade_date` always, and `symbol` unless a
//! segment is exactly `symbol={symbol}` — so every layout has a `symbol` and a `trade_date` column.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::Datelike;

use super::layout::PartitionValue;
use crate::catalog::Column;
use crate::record::Quote;

/// The default layout.
pub const DEFAULT_PARTITION_TEMPLATE: &str = "symbol={symbol}/year={year}";

/// A value that a template segment takes from a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Symbol,
    Year,
    Month,
    MonthPadded,
    Day,
    DayPadded,
    YearMonth,
    Date,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "symbol" => Self::Symbol,
            "year" | "yyyy" => Self::Year,
            "month" => Self::Month,
            "mm" => Self::MonthPadded,
            "day" => Self::Day,
            "dd" => Self::DayPadded,
            "yyyy-mm" => Self::YearMonth,
            "yyyy-mm-dd" | "date" => Self::Date,
            _ => return None,
        })
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Year | Self::Month | Self::MonthPadded | Self::Day | Self::DayPadded
        )
    }

    fn render(self, quote: &Quote, out: &mut String) {
        use std::fmt::Write;
        let date = quote.trade_date;
        // Writing into a String cannot fail.
        let _ = match self {
            Self::Symbol => write!(out, "{}", quote.symbol),
            Self::Year => write!(out, "{:04}", date.year()),
            Self::Month => write!(out, "{}", date.month()),
            Self::MonthPadded => write!(out, "{:02}", date.month()),
            Self::Day => write!(out, "{}", date.day()),
            Self::DayPadded => write!(out, "{:02}", date.day()),
            Self::YearMonth => write!(out, "{:04}-{:02}", date.year(), date.month()),
            Self::Date => write!(out, "{}", date.format("%Y-%m-%d")),
        };
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    name: String,
    parts: Vec<Part>,
}

impl Segment {
    fn is_exactly(&self, placeholder: Placeholder) -> bool {
        self.parts == [Part::Value(placeholder)]
    }
}

/// A validated partition path template (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTemplate {
    text: String,
    segments: Vec<Segment>,
}

impl Default for PartitionTemplate {
    fn default() -> Self {
        DEFAULT_PARTITION_TEMPLATE
            .parse()
            .unwrap_or_else(|_| unreachable!("the default template is valid"))
    }
}

impl fmt::Display for PartitionTemplate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl FromStr for PartitionTemplate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_matches('/');
        if text.is_empty() {
            return Err("is empty; the default is `symbol={symbol}/year={year}`".into());
        }
        let mut segments: Vec<Segment> = Vec::new();
        for raw in text.split('/') {
            let (name, value) = raw
                .split_once('=')
                .ok_or_else(|| format!("segment `{raw}` is not `name=value`"))?;
            let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_name {
                return Err(format!(
                    "partition key `{name}` must be lowercase letters, digits and `_`, starting with a letter (Glue and Athena fold names to lowercase)"
                ));
            }
            if segments.iter().any(|segment| segment.name == name) {
                return Err(format!("partition key `{name}` appears twice"));
            }
            let parts =
                parse_value(value).map_err(|reason| format!("segment `{raw}`: {reason}"))?;
            segments.push(Segment {
                name: name.to_string(),
                parts,
            });
        }
        let template = Self {
            text: text.to_string(),
            segments,
        };
        let file_columns = template.file_schema();
        for segment in &template.segments {
            if file_columns.field_with_name(&segment.name).is_ok() {
                return Err(format!(
                    "partition key `{}` is also a column of the files; name it differently",
                    segment.name
                ));
            }
        }
        Ok(template)
    }
}

fn parse_value(value: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest
                    .find('}')
                    .ok_or_else(|| "a `{` is not closed".to_string())?;
                let name = &rest[1..end];
                let placeholder = Placeholder::parse(name).ok_or_else(|| {
                    format!(
                        "unknown placeholder `{{{name}}}` (known: symbol, year, yyyy, month, mm, day, dd, yyyy-mm, yyyy-mm-dd, date)"
                    )
                })?;
                parts.push(Part::Value(placeholder));
                rest = &rest[end + 1..];
            }
            found => {
                let end = found.unwrap_or(rest.len());
                let text = &rest[..end];
                if text.contains('}') {
                    return Err("a `}` has no `{`".into());
                }
                // Blanks of any script are refused, not only spaces: the template's text is
                // trimmed when parsed, so a blank before a trailing `/` would not survive
                // printing and parsing the template again.
                if text != super::layout::hive_escape(text)
                    || text.contains(|c: char| c == '=' || c.is_whitespace())
                {
                    return Err(format!(
                        "literal text `{text}` holds blanks or characters that need escaping in a path"
                    ));
                }
                parts.push(Part::Text(text.to_string()));
                rest = &rest[end..];
            }
        }
    }
    if !parts.iter().any(|part| matches!(part, Part::Value(_))) {
        return Err(
            "the value has no placeholder, so every quote would land in one directory".into(),
        );
    }
    Ok(parts)
}

impl serde::Serialize for PartitionTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for PartitionTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartitionTemplate {
    /// The partition a quote belongs to, e.g. `symbol=HSI`, `year=1987`.
    pub fn partition(&self, quote: &Quote) -> Vec<PartitionValue> {
        self.segments
            .iter()
            .map(|segment| {
                let mut value = String::new();
                for part in &segment.parts {
                    match part {
                        Part::Text(text) => value.push_str(text),
                        Part::Value(placeholder) => placeholder.render(quote, &mut value),
                    }
                }
                PartitionValue {
                    name: segment.name.clone(),
                    value,
                }
            })
            .collect()
    }

    /// Appends the partition path of a quote (`symbol=HSI/year=1987`, as
    /// [`partition_path`](super::partition_path) of [`Self::partition`] renders it) to `out`,
    /// without allocating: the sink computes it for every row it flushes.
    pub fn write_path(&self, quote: &Quote, out: &mut String) {
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                out.push('/');
            }
            out.push_str(&segment.name);
            out.push('=');
            for part in &segment.parts {
                match part {
                    // Literal text is validated to need no escaping; dates and numbers need none.
                    Part::Text(text) => out.push_str(text),
                    Part::Value(Placeholder::Symbol) => {
                        super::layout::hive_escape_into(&quote.symbol, out)
                    }
                    Part::Value(placeholder) => placeholder.render(quote, out),
                }
            }
        }
    }

    /// The partition keys with their Glue types (`int` for a lone numeric placeholder).
    pub fn partition_keys(&self) -> Vec<Column> {
        self.segments
            .iter()
            .map(|segment| {
                let numeric = matches!(segment.parts.as_slice(), [Part::Value(placeholder)] if placeholder.is_numeric());
                Column {
                    name: segment.name.clone(),
                    data_type: if numeric { "int" } else { "string" }.to_string(),
                }
            })
            .collect()
    }

    /// Whether both templates put every quote at the same path (`{year}` and `{yyyy}` are one).
    pub fn same_layout(&self, other: &Self) -> bool {
        self.segments == other.segments
    }

    /// Whether the files carry a `symbol` column (it is not a partition key `symbol={symbol}`).
    pub fn symbol_in_files(&self) -> bool {
        !self
            .segments
            .iter()
            .any(|segment| segment.name == "symbol" && segment.is_exactly(Placeholder::Symbol))
    }

    /// Schema of the files: the data columns that are not in the path, then lineage. Every
    /// column is required except `close_usd` (see [`crate::record::Quote::close_usd`]).
    pub fn file_schema(&self) -> SchemaRef {
        let mut fields = Vec::with_capacity(12);
        if self.symbol_in_files() {
            fields.push(Field::new("symbol", DataType::Utf8, false));
        }
        fields.extend([
            Field::new("trade_date", DataType::Date32, false),
            Field::new("open", DataType::Float64, false),
            Field::new("high", DataType::Float64, false),
            Field::new("low", DataType::Float64, false),
            Field::new("close", DataType::Float64, false),
            Field::new("adj_close", DataType::Float64, false),
            Field::new("volume", DataType::Int64, false),
            // Null when the source had no CloseUSD column and no exchange rate was given.
            Field::new("close_usd", DataType::Float64, true),
            Field::new("kafka_partition", DataType::Int32, false),
            Field::new("kafka_offset", DataType::Int64, false),
            Field::new(
                "ingested_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]);
        Arc::new(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn quote(symbol: &str, year: i32, month: u32, day: u32) -> Quote {
        Quote {
            symbol: symbol.into(),
            trade_date: NaiveDate::from_ymd_opt(year, month, day).expect("date"),
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            adj_close: 1.0,
            volume: 1,
            close_usd: Some(1.0),
        }
    }

    fn rendered(template: &str, quote: &Quote) -> String {
        let template: PartitionTemplate = template.parse().expect("valid");
        let path = super::super::layout::partition_path(&template.partition(quote));
        let mut written = String::from("left as is|");
        template.write_path(quote, &mut written);
        assert_eq!(written, format!("left as is|{path}"));
        path
    }

    #[test]
    fn templates_render_partition_paths() {
        let q = quote("^GSPC", 1987, 3, 9);
        assert_eq!(
            rendered(DEFAULT_PARTITION_TEMPLATE, &q),
            "symbol=%5EGSPC/year=1987"
        );
        assert_eq!(rendered("date={yyyy-mm-dd}", &q), "date=1987-03-09");
        assert_eq!(rendered("date={date}", &q), "date=1987-03-09");
        assert_eq!(
            rendered("year={yyyy}/month={mm}/day={dd}", &q),
            "year=1987/month=03/day=09"
        );
        assert_eq!(rendered("m={month}/d={day}", &q), "m=3/d=9");
        assert_eq!(
            rendered("ticker={symbol}/ym={yyyy-mm}", &q),
            "ticker=%5EGSPC/ym=1987-03"
        );
        assert_eq!(rendered("/w=v{yyyy}_{mm}/", &q), "w=v1987_03");
    }

    #[test]
    fn keys_are_typed_and_columns_leaving_the_path_stay_in_the_files() {
        let default = PartitionTemplate::default();
        let types: Vec<(String, String)> = default
            .partition_keys()
            .into_iter()
            .map(|column| (column.name, column.data_type))
            .collect();
        assert_eq!(
            types,
            [
                ("symbol".into(), "string".into()),
                ("year".into(), "int".into())
            ]
        );
        assert!(!default.symbol_in_files());
        assert!(default.file_schema().field_with_name("symbol").is_err());

        let daily: PartitionTemplate = "date={yyyy-mm-dd}".parse().expect("valid");
        assert_eq!(daily.partition_keys()[0].data_type, "string");
        assert!(daily.symbol_in_files());
        assert_eq!(daily.file_schema().field(0).name(), "symbol");

        let renamed: PartitionTemplate = "ticker={symbol}".parse().expect("valid");
        assert!(
            renamed.symbol_in_files(),
            "the table keeps a `symbol` column"
        );
        let same: PartitionTemplate = "symbol={symbol}/year={yyyy}".parse().expect("valid");
        assert!(same.same_layout(&default) && same != default);
        assert!(!renamed.same_layout(&default));
        let padded: PartitionTemplate = "month={mm}".parse().expect("valid");
        assert_eq!(padded.partition_keys()[0].data_type, "int");
        assert_eq!(padded.to_string(), "month={mm}");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (template, expected) in [
            ("", "is empty"),
            ("symbol", "not `name=value`"),
            ("Symbol={symbol}", "lowercase"),
            ("a={symbol}/a={year}", "appears twice"),
            ("s={sym}", "unknown placeholder `{sym}`"),
            ("s={symbol", "not closed"),
            ("s=x}", "has no `{`"),
            ("s=fixed", "no placeholder"),
            ("s=a:{symbol}", "need escaping"),
            ("s={symbol}\u{a0}/", "blanks"),
            ("close={yyyy}", "also a column of the files"),
            ("date={date}/symbol={yyyy}", "also a column"),
        ] {
            let error = template.parse::<PartitionTemplate>().expect_err(template);
            assert!(error.contains(expected), "{template}: {error}");
        }
    }
}
