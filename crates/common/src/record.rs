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
//! the header [`crate::headers::SCHEMA_VERSION_HEADER`]. `close_usd` is `null` (or absent) when
//! the source had no `CloseUSD` column and no exchange rate was given. Reading files (header
//! names, date formats, delimiters) is ingest's business; this module holds what every service
//! agrees on.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Version of the wire format, sent in every message's
/// [`crate::headers::SCHEMA_VERSION_HEADER`].
pub const SCHEMA_VERSION: &str = "1";
/// Columns of `indexProcessed.csv`, in order (also the field names of the tutorial's messages).
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// Index symbol, e.g. `HSI` (the CSV's `Index`).
    #[schema(pattern = r"^[A-Za-z0-9.^_-]{1,32}$")]
    pub symbol: String,
    /// Trading day.
    #[schema(value_type = String, format = Date)]
    pub trade_date: NaiveDate,
    /// Opening price, in the index's currency.
    #[schema(exclusive_minimum = 0.0)]
    pub open: f64,
    /// Highest price of the day.
    #[schema(exclusive_minimum = 0.0)]
    pub high: f64,
    /// Lowest price of the day.
    #[schema(exclusive_minimum = 0.0)]
    pub low: f64,
    /// Closing price.
    #[schema(exclusive_minimum = 0.0)]
    pub close: f64,
    /// Closing price adjusted for splits and dividends.
    #[schema(exclusive_minimum = 0.0)]
    pub adj_close: f64,
    /// Traded volume.
    #[schema(minimum = 0)]
    pub volume: i64,
    /// Closing price converted to US dollars; `null` when the source had no `CloseUSD` column and
    /// no exchange rate was given (ingest never guesses a rate).
    #[schema(exclusive_minimum = 0.0)]
    pub close_usd: Option<f64>,
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
    /// Checks the rules every quote obeys: a sane symbol, finite positive prices (`close_usd`, when
    /// known, too), `high >= low`, a non-negative volume and a plausible date.
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
        ]
        .into_iter()
        .chain(self.close_usd.map(|value| ("close_usd", value)))
        {
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

/// The tutorial producer's message: one CSV row as pandas' `to_dict(orient="records")` gives it,
/// serialized by kafka-python's `json.dumps` (the CSV's column names, numbers as floats).
#[derive(Debug, Deserialize)]
struct TutorialQuote {
    #[serde(rename = "Index")]
    index: String,
    #[serde(rename = "Date")]
    date: String,
    #[serde(rename = "Open")]
    open: f64,
    #[serde(rename = "High")]
    high: f64,
    #[serde(rename = "Low")]
    low: f64,
    #[serde(rename = "Close")]
    close: f64,
    #[serde(rename = "Adj Close")]
    adj_close: f64,
    #[serde(rename = "Volume")]
    volume: serde_json::Number,
    #[serde(rename = "CloseUSD")]
    close_usd: f64,
}

/// Which JSON format a message was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// stockstream's own format ([`Quote::to_json`]).
    Stockstream,
    /// The original tutorial's format: the CSV's column names (`Index`, `Date`, …, `CloseUSD`).
    Tutorial,
}

impl Quote {
    /// Decodes and validates a message in either [`WireFormat`]: stockstream's own, or the
    /// tutorial producer's `{"Index": …, "Date": …, "Open": …, …, "CloseUSD": …}`.
    pub fn from_any_json(payload: &[u8]) -> Result<(Self, WireFormat), QuoteError> {
        match Self::from_json(payload) {
            Ok(quote) => Ok((quote, WireFormat::Stockstream)),
            Err(own) => {
                let looks_like_tutorial = payload
                    .windows(b"\"Index\"".len())
                    .any(|window| window == b"\"Index\"");
                if !looks_like_tutorial {
                    return Err(own);
                }
                let row: TutorialQuote = serde_json::from_slice(payload).map_err(|error| {
                    QuoteError::Json(format!("tutorial-format message: {error}"))
                })?;
                let volume = row
                    .volume
                    .as_i64()
                    .or_else(|| row.volume.as_f64().and_then(whole_volume))
                    .ok_or_else(|| QuoteError::Unparseable {
                        column: "Volume",
                        value: row.volume.to_string(),
                        expected: "a whole number",
                    })?;
                let quote = Quote {
                    symbol: row.index,
                    trade_date: parse_wire_date(row.date.trim())?,
                    open: row.open,
                    high: row.high,
                    low: row.low,
                    close: row.close,
                    adj_close: row.adj_close,
                    volume,
                    close_usd: Some(row.close_usd),
                };
                quote.validate()?;
                Ok((quote, WireFormat::Tutorial))
            }
        }
    }
}

/// Parses the trade date of a wire-format message written by the tutorial's producer: the
/// dataset's `YYYY-MM-DD`, optionally with a time of midnight (`1987-01-02 00:00:00`,
/// `1987-01-02T00:00:00Z`, as pandas writes dates). Files in other date formats are read by
/// ingest, which infers their format.
pub fn parse_wire_date(text: &str) -> Result<NaiveDate, QuoteError> {
    let unparseable = |expected: &'static str| QuoteError::Unparseable {
        column: "Date",
        value: text.to_string(),
        expected,
    };
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    if let Some(time) = time {
        let time = time.trim().trim_end_matches('Z').trim_end_matches("+00:00");
        if !time.trim_start_matches(['0', ':', '.']).is_empty() {
            return Err(unparseable("a date (a daily quote has no time of day)"));
        }
    }
    match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(day) if day.year() >= 1000 => Ok(day),
        _ => Err(unparseable("a date in the form YYYY-MM-DD")),
    }
}

/// Whether `symbol` is a valid symbol: 1-32 characters of `A-Z a-z 0-9 . ^ _ -`, which keeps it
/// safe as a Kafka key and in lake paths.
pub fn is_valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 32
        && symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '^' | '_' | '-'))
}

/// A volume read as a float (`1200.0`) as the whole number it must be; `None` for a fraction, a
/// non-finite value or one beyond 2^53 (where a float no longer holds every integer).
pub fn whole_volume(value: f64) -> Option<i64> {
    // The checks make the conversion exact.
    (value.is_finite() && value.fract() == 0.0 && value.abs() <= MAX_VOLUME).then_some(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote() -> Quote {
        Quote {
            symbol: "HSI".into(),
            trade_date: NaiveDate::from_ymd_opt(2010, 1, 11).expect("date"),
            open: 22524.17969,
            high: 22671.91992,
            low: 22373.96094,
            close: 22411.51953,
            adj_close: 22411.51953,
            volume: 1_744_637_600,
            close_usd: Some(2913.0),
        }
    }

    #[test]
    fn json_round_trips() {
        let quote = quote();
        let decoded = Quote::from_json(&quote.to_json()).expect("decodes");
        assert_eq!(decoded, quote);
        let text = String::from_utf8(quote.to_json()).expect("utf8");
        assert!(text.contains("\"trade_date\":\"2010-01-11\""), "{text}");
    }

    #[test]
    fn an_unknown_close_usd_is_null_on_the_wire() {
        let quote = Quote {
            close_usd: None,
            ..quote()
        };
        let text = String::from_utf8(quote.to_json()).expect("utf8");
        assert!(text.ends_with("\"close_usd\":null}"), "{text}");
        assert_eq!(Quote::from_json(text.as_bytes()), Ok(quote.clone()));
        let without = text.replace(",\"close_usd\":null", "");
        assert_eq!(Quote::from_json(without.as_bytes()), Ok(quote));
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let check = |change: fn(&mut Quote), expected: &str| {
            let mut quote = quote();
            change(&mut quote);
            let error = quote.validate().expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        };
        check(|quote| quote.high = 1.0, "below low");
        check(|quote| quote.close = -3.0, "close must be a positive price");
        check(|quote| quote.close_usd = Some(f64::NAN), "close_usd");
        check(|quote| quote.volume = -1, "volume must not be negative");
        check(|quote| quote.symbol = "a b".into(), "symbol");
        check(
            |quote| quote.trade_date = NaiveDate::from_ymd_opt(1700, 1, 1).expect("date"),
            "outside the years",
        );
        assert!(Quote::from_json(b"{\"symbol\":\"HSI\"}").is_err());
    }

    #[test]
    fn wire_dates_are_iso_with_at_most_a_midnight_time() {
        let day = NaiveDate::from_ymd_opt(2010, 1, 4).expect("date");
        for text in [
            "2010-01-04",
            "2010-01-04 00:00:00",
            "2010-01-04T00:00:00Z",
            "2010-01-04T00:00:00.000",
        ] {
            assert_eq!(parse_wire_date(text), Ok(day), "{text}");
        }
        assert!(parse_wire_date("2010-01-04 09:30:00").is_err());
        assert!(parse_wire_date("04.01.2010").is_err());
        assert!(parse_wire_date("10-01-04").is_err());
    }

    #[test]
    fn volumes_must_be_whole() {
        assert_eq!(whole_volume(1200.0), Some(1200));
        assert_eq!(whole_volume(12.5), None);
        assert_eq!(whole_volume(f64::INFINITY), None);
        assert_eq!(whole_volume(1e17), None);
    }

    #[test]
    fn decodes_the_tutorial_producers_messages() {
        let payload = br#"{"Index": "HSI", "Date": "1986-12-31", "Open": 2568.300049, "High": 2568.300049, "Low": 2568.300049, "Close": 2568.300049, "Adj Close": 2568.300049, "Volume": 0.0, "CloseUSD": 333.879006}"#;
        let (decoded, format) = Quote::from_any_json(payload).expect("decodes");
        assert_eq!(format, WireFormat::Tutorial);
        assert_eq!(decoded.symbol, "HSI");
        assert_eq!(decoded.volume, 0);
        assert_eq!(decoded.close_usd, Some(333.879006));
        let own = quote();
        assert_eq!(
            Quote::from_any_json(&own.to_json()).expect("own format"),
            (own, WireFormat::Stockstream)
        );
        let error = Quote::from_any_json(br#"{"Index": "HSI", "Date": "1986-12-31"}"#)
            .expect_err("incomplete");
        assert!(error.to_string().contains("tutorial"), "{error}");
        let fractional =
            String::from_utf8_lossy(payload).replace("\"Volume\": 0.0", "\"Volume\": 0.5");
        assert!(Quote::from_any_json(fractional.as_bytes()).is_err());
        assert!(Quote::from_any_json(b"not json").is_err());
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
        assert_eq!(quote.close_usd.map(f64::to_bits), Some(exact.to_bits()));
    }
}
