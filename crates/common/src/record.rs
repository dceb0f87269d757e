//! The quote record: one row of `indexProcessed.csv`, its validation and its Kafka wire format.
//!
//! On Kafka a quote is one JSON message:
//!
//! ```json
//! {"symbol":"HSI","trade_date":"1987-01-02","open":2540.1,"high":2540.1,"low":2540.1,
//!  "close":2540.1,"adj_close":2540.1,"volume":0,"close_usd":330.21}
//! ```
//!
//! keyed by the symbol (so each symbol's quotes stay in order within one partition) and carrying
//! the header [`SCHEMA_VERSION_HEADER`].

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Version of the wire format written into every message's [`SCHEMA_VERSION_HEADER`].
pub const SCHEMA_VERSION: &str = "1";
/// Kafka header carrying the wire-format version.
pub const SCHEMA_VERSION_HEADER: &str = "stockstream-schema-version";
/// Columns of `indexProcessed.csv`, in order.
pub const CSV_COLUMNS: [&str; 9] = [
    "Index",
    "Date",
    "Open",
    "High",
    "Low",
    "Close",
    "Adj Close",
    "Volume",
    "CloseUSD",
];

/// Largest volume accepted: integers above 2^53 cannot come exactly from a float column.
const MAX_VOLUME: f64 = 9_007_199_254_740_992.0;

/// One daily quote of a stock index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// Index symbol, e.g. `HSI` (the CSV's `Index`).
    pub symbol: String,
    /// Trading day.
    pub trade_date: NaiveDate,
    /// Opening price, in the index's currency.
    pub open: f64,
    /// Highest price of the day.
    pub high: f64,
    /// Lowest price of the day.
    pub low: f64,
    /// Closing price.
    pub close: f64,
    /// Closing price adjusted for splits and dividends.
    pub adj_close: f64,
    /// Traded volume.
    pub volume: i64,
    /// Closing price converted to US dollars.
    pub close_usd: f64,
}

/// Why a row or message is not a valid quote.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuoteError {
    /// The row has the wrong number of fields.
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    /// A field is empty.
    #[error("column `{column}` is empty")]
    Empty { column: &'static str },
    /// A field does not parse as its type.
    #[error("column `{column}`: `{value}` is not {expected}")]
    Unparseable {
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The values parse but break a rule of the schema.
    #[error("{0}")]
    Invalid(String),
    /// A JSON message does not decode as a quote.
    #[error("not a quote message: {0}")]
    Json(String),
}

impl Quote {
    /// Parses the nine fields of an `indexProcessed.csv` row (see [`CSV_COLUMNS`]) and validates them.
    pub fn from_csv_fields(fields: &[&str]) -> Result<Self, QuoteError> {
        if fields.len() != CSV_COLUMNS.len() {
            return Err(QuoteError::FieldCount {
                expected: CSV_COLUMNS.len(),
                found: fields.len(),
            });
        }
        let field = |index: usize| -> Result<&str, QuoteError> {
            let value = fields[index].trim();
            if value.is_empty() {
                Err(QuoteError::Empty {
                    column: CSV_COLUMNS[index],
                })
            } else {
                Ok(value)
            }
        };
        let price = |index: usize| -> Result<f64, QuoteError> {
            let value = field(index)?;
            value.parse::<f64>().map_err(|_| QuoteError::Unparseable {
                column: CSV_COLUMNS[index],
                value: value.to_string(),
                expected: "a number",
            })
        };
        let date_text = field(1)?;
        let trade_date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d").map_err(|_| {
            QuoteError::Unparseable {
                column: "Date",
                value: date_text.to_string(),
                expected: "a date (YYYY-MM-DD)",
            }
        })?;
        let quote = Quote {
            symbol: field(0)?.to_string(),
            trade_date,
            open: price(2)?,
            high: price(3)?,
            low: price(4)?,
            close: price(5)?,
            adj_close: price(6)?,
            volume: parse_volume(field(7)?)?,
            close_usd: price(8)?,
        };
        quote.validate()?;
        Ok(quote)
    }

    /// Checks the rules every quote obeys: a sane symbol, finite positive prices, `high >= low`,
    /// a non-negative volume and a plausible date.
    pub fn validate(&self) -> Result<(), QuoteError> {
        if !is_valid_symbol(&self.symbol) {
            return Err(QuoteError::Invalid(format!(
                "symbol `{}` must be 1-32 characters of A-Z, a-z, 0-9, `.`, `^`, `_`, `-`",
                self.symbol
            )));
        }
        for (column, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("adj_close", self.adj_close),
            ("close_usd", self.close_usd),
        ] {
            if !value.is_finite() || value <= 0.0 {
                return Err(QuoteError::Invalid(format!(
                    "{column} must be a positive price, found {value}"
                )));
            }
        }
        if self.high < self.low {
            return Err(QuoteError::Invalid(format!(
                "high {} is below low {}",
                self.high, self.low
            )));
        }
        if self.volume < 0 {
            return Err(QuoteError::Invalid(format!(
                "volume must not be negative, found {}",
                self.volume
            )));
        }
        let year = self.trade_date.year();
        if !(1800..=2200).contains(&year) {
            return Err(QuoteError::Invalid(format!(
                "trade_date {} is outside the years 1800-2200",
                self.trade_date
            )));
        }
        Ok(())
    }

    /// Encodes the quote as its JSON wire format.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes and validates a JSON wire-format message.
    pub fn from_json(payload: &[u8]) -> Result<Self, QuoteError> {
        let quote: Quote =
            serde_json::from_slice(payload).map_err(|error| QuoteError::Json(error.to_string()))?;
        quote.validate()?;
        Ok(quote)
    }
}

/// Symbols are short identifiers; the rule keeps them safe as Kafka keys and in lake paths.
fn is_valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 32
        && symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '^' | '_' | '-'))
}

/// Volumes arrive as integers (`1200`) or as floats with an integral value (`1200.0`).
fn parse_volume(value: &str) -> Result<i64, QuoteError> {
    if let Ok(volume) = value.parse::<i64>() {
        return Ok(volume);
    }
    let unparseable = || QuoteError::Unparseable {
        column: "Volume",
        value: value.to_string(),
        expected: "a whole number",
    };
    let float = value.parse::<f64>().map_err(|_| unparseable())?;
    if float.is_finite() && float.fract() == 0.0 && float.abs() <= MAX_VOLUME {
        // The checks above make the conversion exact.
        Ok(float as i64)
    } else {
        Err(unparseable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: [&str; 9] = [
        "HSI",
        "2010-01-11",
        "22524.17969",
        "22671.91992",
        "22373.96094",
        "22411.51953",
        "22411.51953",
        "1744637600.0",
        "2913.",
    ];

    #[test]
    fn parses_a_real_row() {
        let quote = Quote::from_csv_fields(&ROW).expect("valid row");
        assert_eq!(quote.symbol, "HSI");
        assert_eq!(
            quote.trade_date,
            NaiveDate::from_ymd_opt(2010, 1, 11).expect("date")
        );
        assert_eq!(quote.volume, 1_744_637_600);
        assert_eq!(quote.close_usd, 2913.0);
    }

    #[test]
    fn json_round_trips() {
        let quote = Quote::from_csv_fields(&ROW).expect("valid row");
        let decoded = Quote::from_json(&quote.to_json()).expect("decodes");
        assert_eq!(decoded, quote);
        let text = String::from_utf8(quote.to_json()).expect("utf8");
        assert!(text.contains("\"trade_date\":\"2010-01-11\""), "{text}");
    }

    #[test]
    fn rejects_bad_rows_with_reasons() {
        let mut row = ROW;
        row[3] = "1.0";
        let error = Quote::from_csv_fields(&row).expect_err("high below low");
        assert!(error.to_string().contains("below low"), "{error}");

        let mut row = ROW;
        row[2] = "abc";
        let error = Quote::from_csv_fields(&row).expect_err("bad open");
        assert!(error.to_string().contains("Open"), "{error}");

        let mut row = ROW;
        row[1] = "2010-02-30";
        assert!(Quote::from_csv_fields(&row).is_err());

        let mut row = ROW;
        row[5] = "-3";
        assert!(Quote::from_csv_fields(&row).is_err());

        let mut row = ROW;
        row[7] = "12.5";
        assert!(Quote::from_csv_fields(&row).is_err());

        assert!(matches!(
            Quote::from_csv_fields(&ROW[..8]),
            Err(QuoteError::FieldCount { found: 8, .. })
        ));
        assert!(Quote::from_json(b"{\"symbol\":\"HSI\"}").is_err());
    }
}

#[cfg(test)]
mod float_tests {
    use super::*;

    /// serde_json's default float parser is off by one ULP on some inputs; the wire format must
    /// round-trip every CSV value exactly (found by the DuckDB interop check).
    #[test]
    fn json_decoding_is_exact_for_every_float() {
        let text = "374.27000000000004";
        let exact: f64 = text.parse().expect("parses");
        let payload = format!(
            "{{\"symbol\":\"HSI\",\"trade_date\":\"1987-02-23\",\"open\":1.0,\"high\":1.0,\"low\":1.0,\"close\":1.0,\"adj_close\":1.0,\"volume\":0,\"close_usd\":{text}}}"
        );
        let quote = Quote::from_json(payload.as_bytes()).expect("decodes");
        assert_eq!(quote.close_usd.to_bits(), exact.to_bits());
    }
}
