//! Rows of a file as quotes or bad rows with reasons: [`RowParser`] applies what was inferred about
//! a file (columns, decimal separator, date format, where the symbol and the US-dollar close come
//! from) to each record, and [`CsvSource`] reads a file's data rows one by one.

use std::io::BufRead;

use stockstream_common::record::Quote;

use super::columns::{Column, Columns};
use super::dates::DateFormat;
use super::numbers::{Decimal, NumberError, is_missing_marker, parse_number, parse_volume};
use super::records::{LineRecords, Record};
use crate::error::{Error, Result};

/// What a data row turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A valid quote.
    Quote(Quote),
    /// A bad row and why.
    Bad(String),
    /// Every field is empty (e.g. `,,,,,,,,`): skipped and counted, not dead-lettered.
    Empty,
}

/// One data row of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number where the row starts (the header is line 1 unless blank lines precede it).
    pub line: u64,
    /// 1-based index of the row among the file's data rows.
    pub index: u64,
    /// The row's text as read, for dead letters (empty for good rows: nobody needs it).
    pub raw: String,
    /// Parsed quote, or why not.
    pub outcome: RowOutcome,
}

/// Why a row is bad.
#[derive(Debug, Clone, PartialEq)]
pub enum BadRow {
    /// Too few or too many fields (a truncated last line looks like this).
    FieldCount {
        /// The header's number of fields.
        expected: usize,
        /// The row's.
        found: usize,
    },
    /// Any other reason.
    Reason(String),
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRow::FieldCount { expected, found } => {
                write!(formatter, "expected {expected} fields, found {found}")
            }
            BadRow::Reason(reason) => formatter.write_str(reason),
        }
    }
}

/// How a file's records become quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowParser {
    /// Where the columns are.
    pub columns: Columns,
    /// The decimal separator.
    pub decimal: Decimal,
    /// The date format.
    pub dates: DateFormat,
    /// The symbol of every row when the file has no symbol column.
    pub symbol: Option<String>,
    /// US dollars per unit of the file's currency, when the file has no `CloseUSD` column.
    pub usd_rate: Option<f64>,
}

/// The price columns a Yahoo Finance export leaves `null` on days without data.
const VALUE_COLUMNS: [Column; 6] = [
    Column::Open,
    Column::High,
    Column::Low,
    Column::Close,
    Column::AdjClose,
    Column::Volume,
];

impl RowParser {
    /// Parses and validates one record.
    pub fn parse(&self, record: &Record<'_>) -> std::result::Result<Quote, BadRow> {
        let width = self.columns.width();
        if record.len() != width {
            return Err(BadRow::FieldCount {
                expected: width,
                found: record.len(),
            });
        }
        let field = |column: Column| -> &str {
            self.columns
                .position(column)
                .and_then(|position| record.field(position))
                .unwrap_or_default()
                .trim()
        };
        let reason = |text: String| BadRow::Reason(text);
        let symbol = match (self.columns.position(Column::Symbol), &self.symbol) {
            (Some(_), _) => {
                let symbol = field(Column::Symbol);
                if symbol.is_empty() {
                    return Err(reason(format!(
                        "column `{}` is empty",
                        self.name(Column::Symbol)
                    )));
                }
                symbol.to_string()
            }
            (None, Some(symbol)) => symbol.clone(),
            (None, None) => {
                return Err(reason(
                    "the file has no symbol column; give --symbol".to_string(),
                ));
            }
        };
        let date = field(Column::Date);
        if date.is_empty() {
            return Err(reason(format!(
                "column `{}` is empty",
                self.name(Column::Date)
            )));
        }
        let trade_date = self.dates.parse(date).map_err(reason)?;
        if VALUE_COLUMNS
            .iter()
            .all(|&column| is_missing_marker(field(column)))
        {
            return Err(reason(format!(
                "no prices on {trade_date}: every value is `{}` (the export has no data for this day)",
                field(Column::Open)
            )));
        }
        let price = |column: Column| self.number(column, field(column));
        let close = price(Column::Close)?;
        let close_usd = match self.columns.position(Column::CloseUsd) {
            Some(_) => Some(price(Column::CloseUsd)?),
            None => self.usd_rate.map(|rate| close * rate),
        };
        let quote = Quote {
            symbol,
            trade_date,
            open: price(Column::Open)?,
            high: price(Column::High)?,
            low: price(Column::Low)?,
            close,
            adj_close: price(Column::AdjClose)?,
            volume: parse_volume(field(Column::Volume), self.decimal).map_err(|error| {
                self.number_error(
                    Column::Volume,
                    field(Column::Volume),
                    error,
                    "a whole number",
                )
            })?,
            close_usd,
        };
        quote
            .validate()
            .map_err(|error| reason(error.to_string()))?;
        Ok(quote)
    }

    fn name(&self, column: Column) -> &str {
        self.columns.header_name(column).unwrap_or(column.name())
    }

    fn number(&self, column: Column, text: &str) -> std::result::Result<f64, BadRow> {
        parse_number(text, self.decimal)
            .map_err(|error| self.number_error(column, text, error, "a number"))
    }

    fn number_error(
        &self,
        column: Column,
        text: &str,
        error: NumberError,
        expected: &str,
    ) -> BadRow {
        let name = self.name(column);
        BadRow::Reason(match error {
            NumberError::Empty => format!("column `{name}` is empty"),
            NumberError::Missing => format!("column `{name}` has no value (`{text}`)"),
            NumberError::Unparseable => format!(
                "column `{name}`: `{text}` is not {expected} (the file's decimal separator is `{}`)",
                self.decimal.as_char()
            ),
        })
    }
}

/// The data rows of one file, header skipped.
///
/// Lines are counted here rather than by a CSV library, whose line numbers drift after blank
/// lines and CRLF endings. Rows are read one ahead, so the last row of a file that does not end
/// with a line break is known to be last: if it lacks fields, the reason says it was truncated.
pub struct CsvSource {
    name: String,
    records: LineRecords<Box<dyn BufRead + Send>>,
    parser: RowParser,
    index: u64,
    pending: Option<Row>,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CsvSource")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Reads the rows of `reader` (a whole file, header first) with `parser` and `delimiter`.
    pub fn new(
        name: &str,
        reader: Box<dyn BufRead + Send>,
        delimiter: u8,
        parser: RowParser,
    ) -> Result<Self> {
        let mut records = LineRecords::new(reader, delimiter);
        let read_error = |source| Error::Read {
            path: name.into(),
            source,
        };
        // The header (the first non-blank record) was read when the file's format was inferred.
        while let Some(record) = records.next_record().map_err(read_error)? {
            if !record.all_blank() {
                break;
            }
        }
        Ok(Self {
            name: name.to_string(),
            records,
            parser,
            index: 0,
            pending: None,
        })
    }

    /// Bytes of (decoded) text read so far.
    pub fn bytes_read(&self) -> u64 {
        self.records.bytes_read()
    }

    /// The next data row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        if self.pending.is_none() {
            self.pending = self.read_one()?;
        }
        let Some(mut row) = self.pending.take() else {
            return Ok(None);
        };
        let last_terminated = self.records.last_record_terminated();
        self.pending = self.read_one()?;
        if self.pending.is_none()
            && !last_terminated
            && let RowOutcome::Bad(reason) = &row.outcome
            && reason.starts_with("expected")
        {
            row.outcome = RowOutcome::Bad(format!(
                "truncated last line (the file does not end with a line break): {reason}"
            ));
        }
        Ok(Some(row))
    }

    fn read_one(&mut self) -> Result<Option<Row>> {
        let record = match self.records.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(error) => {
                return Err(Error::Read {
                    path: self.name.clone().into(),
                    source: error,
                });
            }
        };
        self.index += 1;
        let (raw, outcome) = if record.all_blank() {
            (String::new(), RowOutcome::Empty)
        } else if !record.valid_utf8 {
            (
                record.text.to_string(),
                RowOutcome::Bad("row is not valid UTF-8".to_string()),
            )
        } else {
            match self.parser.parse(&record) {
                Ok(quote) => (String::new(), RowOutcome::Quote(quote)),
                Err(bad) => (record.text.to_string(), RowOutcome::Bad(bad.to_string())),
            }
        };
        Ok(Some(Row {
            line: record.line,
            index: self.index,
            raw,
            outcome,
        }))
    }
}

impl Iterator for CsvSource {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}
