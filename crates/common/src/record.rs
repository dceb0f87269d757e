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
        let trade_date = parse_trade_date(field(1)?)?;
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
                let volume = parse_volume(&row.volume.to_string())?;
                let quote = Quote {
                    symbol: row.index,
                    trade_date: parse_trade_date(row.date.trim())?,
                    open: row.open,
                    high: row.high,
                    low: row.low,
                    close: row.close,
                    adj_close: row.adj_close,
                    volume,
                    close_usd: row.close_usd,
                };
                quote.validate()?;
                Ok((quote, WireFormat::Tutorial))
            }
        }
    }
}

/// Accepted spellings of each column of [`CSV_COLUMNS`] in a header (compared case-insensitively):
/// the dataset's own names and stockstream's field names.
const COLUMN_ALIASES: [&[&str]; 9] = [
    &["index", "symbol"],
    &["date", "trade_date"],
    &["open"],
    &["high"],
    &["low"],
    &["close"],
    &["adj close", "adj_close", "adjclose"],
    &["volume"],
    &["closeusd", "close_usd"],
];

/// Where each column of [`CSV_COLUMNS`] sits in a file, found from its header by name, so files
/// with reordered or extra columns replay too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvLayout {
    positions: [usize; 9],
    width: usize,
}

impl CsvLayout {
    /// Maps a header row (a leading byte-order mark and surrounding spaces are ignored).
    pub fn from_header<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let normalized: Vec<String> = names
            .iter()
            .map(|name| {
                name.as_ref()
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let mut positions = [0; 9];
        let mut missing = Vec::new();
        for (column, aliases) in COLUMN_ALIASES.iter().enumerate() {
            match normalized
                .iter()
                .position(|name| aliases.contains(&name.as_str()))
            {
                Some(position) => positions[column] = position,
                None => missing.push(CSV_COLUMNS[column]),
            }
        }
        if missing.is_empty() {
            Ok(Self {
                positions,
                width: names.len(),
            })
        } else {
            Err(format!(
                "header `{}` lacks the column(s) {}; expected the columns of indexProcessed.csv: {}",
                names
                    .iter()
                    .map(|name| name.as_ref().trim_start_matches('\u{feff}'))
                    .collect::<Vec<_>>()
                    .join(","),
                missing.join(", "),
                CSV_COLUMNS.join(",")
            ))
        }
    }

    /// Number of fields every row must have (the header's).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Parses one data row laid out like the header.
    pub fn parse<S: AsRef<str>>(&self, fields: &[S]) -> Result<Quote, QuoteError> {
        if fields.len() != self.width {
            return Err(QuoteError::FieldCount {
                expected: self.width,
                found: fields.len(),
            });
        }
        let ordered: [&str; 9] = self.positions.map(|position| fields[position].as_ref());
        Quote::from_csv_fields(&ordered)
    }
}

/// Parses a trading day written in any common, unambiguous way: `2010-01-04`, `2010/01/04`,
/// `2010.01.04`, `20100104`, `04.01.2010`, `04-Jan-2010`, `4 Jan 2010`, `Jan 4, 2010`, and
/// `04/01/2010`-style dates only when the day is above 12 (or equals the month). A time of day of
/// midnight (`2010-01-04 00:00:00`, `2010-01-04T00:00:00Z`, as pandas writes dates) is accepted.
pub fn parse_trade_date(text: &str) -> Result<NaiveDate, QuoteError> {
    let unparseable = |expected: &'static str| QuoteError::Unparseable {
        column: "Date",
        value: text.to_string(),
        expected,
    };
    let date_part = match text.split_once(['T', ' ']) {
        Some((date, time))
            if text.len() > 10
                && text.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && !text.as_bytes()[4].is_ascii_digit() =>
        {
            let time = time.trim().trim_end_matches('Z').trim_end_matches("+00:00");
            let midnight = time.trim_start_matches(['0', ':', '.']).is_empty();
            if !midnight {
                return Err(unparseable("a date (a daily quote has no time of day)"));
            }
            date
        }
        _ => text,
    };
    for format in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y.%m.%d",
        "%d.%m.%Y",
        "%d-%b-%Y",
        "%d %b %Y",
        "%b %d, %Y",
        "%b %d %Y",
    ] {
        // chrono's `%Y` also takes two-digit years; a century is never guessed.
        if let Ok(date) = NaiveDate::parse_from_str(date_part, format)
            && date.year() >= 1000
        {
            return Ok(date);
        }
    }
    if date_part.len() == 8 && date_part.bytes().all(|byte| byte.is_ascii_digit()) {
        return NaiveDate::parse_from_str(date_part, "%Y%m%d")
            .map_err(|_| unparseable("a date (YYYYMMDD)"));
    }
    let parts: Vec<&str> = date_part.split(['/', '-']).collect();
    if let [first, second, year] = parts.as_slice()
        && year.len() == 4
        && let (Ok(first), Ok(second), Ok(year)) = (
            first.parse::<u32>(),
            second.parse::<u32>(),
            year.parse::<i32>(),
        )
    {
        let (day, month) = if first == second || (first > 12 && second <= 12) {
            (first, second)
        } else if second > 12 && first <= 12 {
            (second, first)
        } else {
            return Err(unparseable(
                "an unambiguous date (both day-first and month-first readings are valid; use YYYY-MM-DD)",
            ));
        };
        return NaiveDate::from_ymd_opt(year, month, day)
            .ok_or_else(|| unparseable("a valid calendar date"));
    }
    Err(unparseable("a date (e.g. YYYY-MM-DD)"))
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

    #[test]
    fn accepts_common_unambiguous_date_formats() {
        let day = NaiveDate::from_ymd_opt(2010, 1, 4).expect("date");
        for text in [
            "2010-01-04",
            "2010/01/04",
            "2010.01.04",
            "20100104",
            "04.01.2010",
            "04-Jan-2010",
            "4 Jan 2010",
            "Jan 4, 2010",
            "2010-01-04 00:00:00",
            "2010-01-04T00:00:00Z",
            "2010-01-04T00:00:00.000",
            "1/4/2010",
        ] {
            let parsed = parse_trade_date(text);
            if text == "1/4/2010" {
                let error = parsed.expect_err("ambiguous");
                assert!(error.to_string().contains("unambiguous"), "{error}");
            } else {
                assert_eq!(parsed, Ok(day), "{text}");
            }
        }
        let day = NaiveDate::from_ymd_opt(2010, 1, 24).expect("date");
        assert_eq!(parse_trade_date("24/01/2010"), Ok(day));
        assert_eq!(parse_trade_date("01/24/2010"), Ok(day));
        assert!(parse_trade_date("2010-01-04 09:30:00").is_err());
        assert!(parse_trade_date("10-01-04").is_err());
        assert!(parse_trade_date("2010-13-40").is_err());
    }

    #[test]
    fn header_maps_columns_by_name() {
        let layout = CsvLayout::from_header(&[
            "\u{feff}Date",
            "Index",
            "extra",
            "Open",
            "High",
            "Low",
            "Close",
            "Adj Close",
            "Volume",
            "CloseUSD",
        ])
        .expect("maps");
        let quote = layout
            .parse(&[
                "2010-01-11",
                "HSI",
                "x",
                "22524.17969",
                "22671.91992",
                "22373.96094",
                "22411.51953",
                "22411.51953",
                "1744637600.0",
                "2913.",
            ])
            .expect("parses");
        assert_eq!(quote, Quote::from_csv_fields(&ROW).expect("valid"));
        let error = CsvLayout::from_header(&["Index", "Date"]).expect_err("missing columns");
        assert!(error.contains("Open"), "{error}");
        assert!(matches!(
            layout.parse(&ROW),
            Err(QuoteError::FieldCount {
                expected: 10,
                found: 9
            })
        ));
    }

    #[test]
    fn decodes_the_tutorial_producers_messages() {
        let payload = br#"{"Index": "HSI", "Date": "1986-12-31", "Open": 2568.300049, "High": 2568.300049, "Low": 2568.300049, "Close": 2568.300049, "Adj Close": 2568.300049, "Volume": 0.0, "CloseUSD": 333.879006}"#;
        let (quote, format) = Quote::from_any_json(payload).expect("decodes");
        assert_eq!(format, WireFormat::Tutorial);
        assert_eq!(quote.symbol, "HSI");
        assert_eq!(quote.volume, 0);
        assert_eq!(quote.close_usd, 333.879006);
        let own = Quote::from_csv_fields(&ROW).expect("valid");
        assert_eq!(
            Quote::from_any_json(&own.to_json()).expect("own format"),
            (own, WireFormat::Stockstream)
        );
        let error = Quote::from_any_json(br#"{"Index": "HSI", "Date": "1986-12-31"}"#)
            .expect_err("incomplete");
        assert!(error.to_string().contains("tutorial"), "{error}");
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
        assert_eq!(quote.close_usd.to_bits(), exact.to_bits());
    }
}
