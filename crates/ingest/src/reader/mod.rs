//! Reading quote files: records and fields ([`records`]), the header's columns ([`columns`]),
//! dates ([`dates`]), numbers ([`numbers`]) and rows as quotes or bad rows ([`rows`]). What a
//! particular file looks like is inferred by [`crate::sniff`].

pub mod columns;
pub mod dates;
pub mod numbers;
pub mod records;
pub mod rows;

pub use columns::{Column, Columns};
pub use dates::{DateFormat, Form, Order};
pub use numbers::Decimal;
pub use records::LineRecords;
pub use rows::{CsvSource, Row, RowOutcome, RowParser};
