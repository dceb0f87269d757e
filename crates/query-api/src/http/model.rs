//! Request and response bodies of the HTTP API (also the schemas of `/openapi.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::engine::{QueryState, QueryStats};

/// Body of `POST /v1/query`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One read-only SQL statement; `?` marks a parameter.
    #[schema(
        example = "SELECT year, max(close) FROM quotes WHERE symbol = ? GROUP BY year ORDER BY year"
    )]
    pub sql: String,
    /// Values of the `?` placeholders, in order: null, booleans, numbers or strings.
    #[serde(default)]
    #[schema(value_type = Vec<Value>, example = json!(["HSI"]))]
    pub params: Vec<Value>,
    /// Most rows to return (capped by `query.max_rows_limit`); more rows set `stats.truncated`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_rows: Option<u64>,
    /// Time limit in milliseconds (capped by `query.timeout`).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
}

/// A result column.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// SQL type name, as Athena (Trino) spells it: `bigint`, `double`, `varchar`, `date`, …
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A query's complete answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryAnswer {
    /// Id of the query (also in the `x-stockstream-query-id` header).
    pub query_id: String,
    /// Columns, in order.
    pub columns: Vec<ColumnInfo>,
    /// Rows, each a list of values in column order: numbers and booleans as JSON, decimals,
    /// dates and timestamps as ISO strings, NULL as `null`.
    #[schema(value_type = Vec<Vec<Value>>)]
    pub rows: Vec<Vec<Value>>,
    /// How the query ran.
    pub stats: QueryStats,
}

/// The answer to a query not done within `query.sync_wait`: poll its status, then its results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Query id.
    pub query_id: String,
    /// Its state now.
    pub state: QueryState,
    /// Where its state is (`GET`), and where to cancel it (`DELETE`).
    pub status_url: String,
    /// Where its rows are, once it SUCCEEDED.
    pub results_url: String,
}

/// What is known about a query.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryInfo {
    /// Query id.
    pub query_id: String,
    /// State.
    pub state: QueryState,
    /// The SQL as sent.
    pub sql: String,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// Statistics so far.
    pub stats: QueryStats,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Query parameters of `GET /v1/queries/{id}/results`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Token from the previous page's `next_page_token`.
    pub page_token: Option<String>,
    /// Rows per page, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u64>,
}

/// One page of an asynchronous query's rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsPage {
    /// Query id.
    pub query_id: String,
    /// Columns, in order.
    pub columns: Vec<ColumnInfo>,
    /// Rows of this page.
    #[schema(value_type = Vec<Vec<Value>>)]
    pub rows: Vec<Vec<Value>>,
    /// Token of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    /// Whether the stored rows were cut (row limit or result storage budget).
    pub truncated: bool,
}

/// Error body of every endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable kind: `bad_request`, `forbidden_statement`, `invalid_query`, `unauthorized`,
    /// `not_found`, `not_finished`, `overloaded`, `timeout`, `cancelled`, `query_failed`, …
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

/// `GET /v1/symbols`: every symbol with its date range and row count.
#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolsAnswer {
    /// Query id.
    pub query_id: String,
    /// Symbols, sorted.
    pub symbols: Vec<SymbolInfo>,
    /// How the query ran.
    pub stats: QueryStats,
}

/// A symbol in the lake.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SymbolInfo {
    /// Index symbol (`HSI`, `N225`, …).
    pub symbol: String,
    /// First trade date (ISO).
    pub first_date: Option<String>,
    /// Last trade date (ISO).
    pub last_date: Option<String>,
    /// Rows (trading days).
    pub rows: i64,
}

/// Query parameters of `GET /v1/symbols/{symbol}/quotes`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QuotesParams {
    /// First trade date, inclusive (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Last trade date, inclusive (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// Most rows (default 1000, at most `query.max_rows_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
}

/// `GET /v1/symbols/{symbol}/quotes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotesAnswer {
    /// Query id.
    pub query_id: String,
    /// The symbol.
    pub symbol: String,
    /// Quotes by trade date.
    pub quotes: Vec<Quote>,
    /// How the query ran.
    pub stats: QueryStats,
}

/// One trading day.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    /// Trade date (ISO).
    pub trade_date: String,
    /// Opening price.
    pub open: Option<f64>,
    /// Highest price.
    pub high: Option<f64>,
    /// Lowest price.
    pub low: Option<f64>,
    /// Closing price.
    pub close: Option<f64>,
    /// Adjusted close.
    pub adj_close: Option<f64>,
    /// Volume.
    pub volume: Option<i64>,
    /// Close in US dollars.
    pub close_usd: Option<f64>,
}

/// Candle interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One candle per trading day.
    Day,
    /// Per ISO week (starting Monday).
    Week,
    /// Per calendar month.
    Month,
    /// Per calendar year.
    Year,
}

impl Interval {
    /// The `date_trunc` unit.
    pub fn unit(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// Query parameters of `GET /v1/symbols/{symbol}/candles`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CandlesParams {
    /// Candle width (default `day`).
    pub interval: Option<Interval>,
    /// First trade date, inclusive (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Last trade date, inclusive (`YYYY-MM-DD`).
    pub to: Option<String>,
}

/// `GET /v1/symbols/{symbol}/candles`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandlesAnswer {
    /// Query id.
    pub query_id: String,
    /// The symbol.
    pub symbol: String,
    /// The interval.
    pub interval: Interval,
    /// Candles by period.
    pub candles: Vec<Candle>,
    /// How the query ran.
    pub stats: QueryStats,
}

/// One period's open, high, low, close and volume.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Candle {
    /// First day of the period (ISO).
    pub period: String,
    /// Open of the period's first trading day.
    pub open: Option<f64>,
    /// Highest high.
    pub high: Option<f64>,
    /// Lowest low.
    pub low: Option<f64>,
    /// Close of the period's last trading day.
    pub close: Option<f64>,
    /// Summed volume.
    pub volume: Option<i64>,
    /// Trading days in the period.
    pub days: i64,
}

/// `GET /v1/tables`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TablesAnswer {
    /// The database.
    pub database: String,
    /// Its tables.
    pub tables: Vec<TableSummary>,
    /// When the catalog was read (RFC 3339).
    pub catalog_loaded_at: String,
}

/// A table in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableSummary {
    /// Name.
    pub name: String,
    /// Location as catalogued.
    pub location: String,
    /// Data columns.
    pub columns: Vec<ColumnInfo>,
    /// Partition columns.
    pub partition_keys: Vec<ColumnInfo>,
    /// Registered partitions (absent for partition projection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u64>,
    /// Partition projection rules, when the table uses projection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<Vec<String>>,
    /// Data files visible to the embedded engine (absent with Athena).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// `GET /v1/tables/{name}`: a table with its partitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableDetail {
    /// The table in brief.
    #[serde(flatten)]
    pub summary: TableSummary,
    /// Table parameters (format, schema fingerprint, projection…).
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Registered partitions (at most the first 10,000), by values and location.
    pub partition_list: Vec<PartitionInfo>,
}

/// A catalogued partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionInfo {
    /// Values of the partition keys, in key order.
    pub values: Vec<String>,
    /// Lake-relative location.
    pub location: String,
}
