//! Finding the record's columns in a file's header by name (case-insensitive, any order, extra
//! columns ignored): `indexProcessed.csv` (`Index,Date,Open,High,Low,Close,Adj Close,Volume,
//! CloseUSD`), a Yahoo Finance export (`Date,Open,High,Low,Close,Adj Close,Volume`: no symbol, no
//! US-dollar close) and the record's own field names.

use stockstream_common::record::CSV_COLUMNS;

/// A column of the record, in the order of `indexProcessed.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `Index`: the symbol (optional: `--symbol` or the file name stand in).
    Symbol = 0,
    /// `Date`.
    Date = 1,
    /// `Open`.
    Open = 2,
    /// `High`.
    High = 3,
    /// `Low`.
    Low = 4,
    /// `Close`.
    Close = 5,
    /// `Adj Close`.
    AdjClose = 6,
    /// `Volume`.
    Volume = 7,
    /// `CloseUSD` (optional: computed from `--usd-rate`, else null).
    CloseUsd = 8,
}

impl Column {
    /// Every column, in order.
    pub const ALL: [Column; 9] = [
        Column::Symbol,
        Column::Date,
        Column::Open,
        Column::High,
        Column::Low,
        Column::Close,
        Column::AdjClose,
        Column::Volume,
        Column::CloseUsd,
    ];

    /// The dataset's name of the column.
    pub fn name(self) -> &'static str {
        CSV_COLUMNS[self as usize]
    }

    /// Whether a file may lack the column.
    pub fn optional(self) -> bool {
        matches!(self, Column::Symbol | Column::CloseUsd)
    }

    /// Accepted spellings in a header, compared case-insensitively.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::Symbol => &["index", "symbol", "ticker"],
            Column::Date => &["date", "trade_date"],
            Column::Open => &["open"],
            Column::High => &["high"],
            Column::Low => &["low"],
            Column::Close => &["close"],
            Column::AdjClose => &["adj close", "adj_close", "adjclose", "adjusted close"],
            Column::Volume => &["volume"],
            Column::CloseUsd => &["closeusd", "close_usd"],
        }
    }
}

/// Where each column sits in a file's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    positions: [Option<usize>; 9],
    names: Vec<String>,
}

impl Columns {
    /// Maps a header row (a leading byte-order mark and surrounding spaces are ignored); fails
    /// naming the missing columns.
    pub fn from_header<S: AsRef<str>>(header: &[S]) -> Result<Self, String> {
        let names: Vec<String> = header
            .iter()
            .map(|name| {
                name.as_ref()
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect();
        let mut positions = [None; 9];
        let mut missing = Vec::new();
        for column in Column::ALL {
            positions[column as usize] = names.iter().position(|name| {
                column
                    .aliases()
                    .iter()
                    .any(|alias| name.eq_ignore_ascii_case(alias))
            });
            if positions[column as usize].is_none() && !column.optional() {
                missing.push(column.name());
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "header `{}` lacks the column(s) {}; expected the columns of indexProcessed.csv ({}) or of a Yahoo Finance export (Date,Open,High,Low,Close,Adj Close,Volume)",
                names.join(","),
                missing.join(", "),
                CSV_COLUMNS.join(",")
            ));
        }
        Ok(Self { positions, names })
    }

    /// Number of fields every row must have (the header's).
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Position of `column` in a row, if the file has it.
    pub fn position(&self, column: Column) -> Option<usize> {
        self.positions[column as usize]
    }

    /// The header's name of `column`, if the file has it.
    pub fn header_name(&self, column: Column) -> Option<&str> {
        self.position(column)
            .map(|position| self.names[position].as_str())
    }

    /// Header names that map to no column.
    pub fn ignored(&self) -> Vec<&str> {
        self.names
            .iter()
            .enumerate()
            .filter(|(position, _)| !self.positions.contains(&Some(*position)))
            .map(|(_, name)| name.as_str())
            .collect()
    }

    /// The header as read.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_columns_by_name_in_any_order() {
        let columns = Columns::from_header(&[
            "\u{feff}Date",
            "Index",
            "extra",
            "Open",
            "High",
            "Low",
            "Close",
            "adj_close",
            "VOLUME",
            "CloseUSD",
        ])
        .expect("maps");
        assert_eq!(columns.position(Column::Date), Some(0));
        assert_eq!(columns.position(Column::Symbol), Some(1));
        assert_eq!(columns.position(Column::AdjClose), Some(7));
        assert_eq!(columns.header_name(Column::Volume), Some("VOLUME"));
        assert_eq!(columns.ignored(), ["extra"]);
        assert_eq!(columns.width(), 10);
    }

    #[test]
    fn yahoo_exports_lack_symbol_and_close_usd() {
        let columns = Columns::from_header(&[
            "Date",
            "Open",
            "High",
            "Low",
            "Close",
            "Adj Close",
            "Volume",
        ])
        .expect("maps");
        assert_eq!(columns.position(Column::Symbol), None);
        assert_eq!(columns.position(Column::CloseUsd), None);
        let error = Columns::from_header(&["Index", "Date"]).expect_err("missing columns");
        assert!(error.contains("lacks the column(s) Open"), "{error}");
    }
}
