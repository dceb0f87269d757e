//! Market-data endpoints: `/v1/symbols`, `/v1/symbols/{symbol}/quotes`,
//! `/v1/symbols/{symbol}/candles`, and the catalog's `/v1/tables`, `/v1/tables/{name}`.
//!
//! Each market-data answer is a parameterized query run through the same engine, guard and limits
//! as `POST /v1/query`: user input travels only as `?` parameters, never inside the SQL text. A
//! date range also narrows the partitions read when the table is partitioned by `year` (or by an
//! ISO `date`), so a one-month candle query reads one partition per symbol. JSON answers are
//! objects (`{"candles":[{"period":…,"open":…}]}`); NDJSON, CSV and Arrow are the query's rows.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::AppState;
use super::formats::{Format, negotiate};
use super::model::{
    Candle, CandlesAnswer, CandlesParams, ColumnInfo, ErrorBody, Interval, PartitionInfo,
    QueryBody, Quote, QuotesAnswer, QuotesParams, SymbolInfo, SymbolsAnswer, TableDetail,
    TableSummary, TablesAnswer,
};
use super::query::{
    Collected, collect_until, finished, prepare, respond_streamed, submit, with_query_id,
};
use crate::catalog::{CatalogTable, Partitions};
use crate::config::EngineKind;
use crate::engine::QueryStats;
use crate::error::{Error, Result};

/// The table the market-data endpoints read.
const QUOTES: &str = "quotes";
/// Rows of `/quotes` when no `limit` is given.
const DEFAULT_QUOTES_LIMIT: u64 = 1000;
/// Partitions listed by `/v1/tables/{name}` at most.
const MAX_LISTED_PARTITIONS: usize = 10_000;

/// Every symbol with its first and last trade date and row count.
#[utoipa::path(
    get,
    path = "/v1/symbols",
    tag = "market data",
    responses(
        (status = 200, description = "Symbols (JSON), or the rows as NDJSON, CSV or Arrow", body = SymbolsAnswer),
        (status = 400, description = "The lake has no quotes table yet", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 503, description = "All execution slots busy", body = ErrorBody),
        (status = 422, description = "Time limit exceeded; the query was cancelled", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn symbols(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let sql = format!(
        "SELECT symbol, CAST(min(trade_date) AS VARCHAR) AS first_date, \
         CAST(max(trade_date) AS VARCHAR) AS last_date, count(*) AS \"rows\" \
         FROM {QUOTES} GROUP BY symbol ORDER BY symbol"
    );
    answer(
        &app,
        &headers,
        sql,
        Vec::new(),
        None,
        |id, items: Vec<SymbolInfo>, stats| {
            Json(SymbolsAnswer {
                query_id: id,
                symbols: items,
                stats,
            })
            .into_response()
        },
    )
    .await
}

/// Daily quotes of one symbol.
#[utoipa::path(
    get,
    path = "/v1/symbols/{symbol}/quotes",
    tag = "market data",
    params(("symbol" = String, Path, description = "Index symbol, e.g. HSI"), QuotesParams),
    responses(
        (status = 200, description = "Quotes by date (JSON), or the rows as NDJSON, CSV or Arrow", body = QuotesAnswer),
        (status = 400, description = "Bad date, range or limit", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 503, description = "All execution slots busy", body = ErrorBody),
        (status = 422, description = "Time limit exceeded; the query was cancelled", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn quotes(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(symbol): Path<String>,
    params: std::result::Result<Query<QuotesParams>, QueryRejection>,
) -> Response {
    let built: Result<(String, Vec<Value>, u64)> = (|| {
        let Query(params) = query_params(params)?;
        let symbol = check_symbol(symbol.clone())?;
        let range = DateRange::parse(params.from.as_deref(), params.to.as_deref())?;
        let limit = match params.limit {
            Some(0) => return Err(Error::BadRequest("`limit` must be at least 1".into())),
            Some(limit) => limit.min(app.config.max_rows_limit.get() as u64),
            None => DEFAULT_QUOTES_LIMIT,
        };
        let mut sql = format!(
            "SELECT CAST(trade_date AS VARCHAR) AS trade_date, open, high, low, close, adj_close, \
             volume, close_usd FROM {QUOTES} WHERE symbol = ?"
        );
        let mut values = vec![Value::from(symbol)];
        range.append_filters(&app, &mut sql, &mut values);
        sql.push_str(&format!(" ORDER BY trade_date LIMIT {limit}"));
        Ok((sql, values, limit))
    })();
    let (sql, values, limit) = match built {
        Ok(built) => built,
        Err(error) => return error.into_response(),
    };
    answer(
        &app,
        &headers,
        sql,
        values,
        Some(limit),
        |id, items: Vec<Quote>, stats| {
            Json(QuotesAnswer {
                query_id: id,
                symbol: symbol.clone(),
                quotes: items,
                stats,
            })
            .into_response()
        },
    )
    .await
}

/// OHLC candles of one symbol: open = first open of the period by date, close = last close,
/// high and low the extremes, volume the sum.
#[utoipa::path(
    get,
    path = "/v1/symbols/{symbol}/candles",
    tag = "market data",
    params(("symbol" = String, Path, description = "Index symbol, e.g. HSI"), CandlesParams),
    responses(
        (status = 200, description = "Candles by period (JSON), or the rows as NDJSON, CSV or Arrow", body = CandlesAnswer),
        (status = 400, description = "Bad interval, date or range", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 503, description = "All execution slots busy", body = ErrorBody),
        (status = 422, description = "Time limit exceeded; the query was cancelled", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn candles(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(symbol): Path<String>,
    params: std::result::Result<Query<CandlesParams>, QueryRejection>,
) -> Response {
    let built: Result<(String, Vec<Value>, Interval)> = (|| {
        let Query(params) = query_params(params)?;
        let symbol = check_symbol(symbol.clone())?;
        let interval = params.interval.unwrap_or(Interval::Day);
        let range = DateRange::parse(params.from.as_deref(), params.to.as_deref())?;
        let period = match interval {
            Interval::Day => "trade_date".to_string(),
            other => format!("CAST(date_trunc('{}', trade_date) AS DATE)", other.unit()),
        };
        let (first_open, last_close) = match app.engine.kind() {
            EngineKind::DataFusion => (
                "first_value(open ORDER BY trade_date)",
                "last_value(close ORDER BY trade_date)",
            ),
            EngineKind::Athena => ("min_by(open, trade_date)", "max_by(close, trade_date)"),
        };
        let mut sql = format!(
            "SELECT CAST({period} AS VARCHAR) AS period, {first_open} AS open, max(high) AS high, \
             min(low) AS low, {last_close} AS close, sum(volume) AS volume, count(*) AS days \
             FROM {QUOTES} WHERE symbol = ?"
        );
        let mut values = vec![Value::from(symbol)];
        range.append_filters(&app, &mut sql, &mut values);
        sql.push_str(" GROUP BY 1 ORDER BY 1");
        Ok((sql, values, interval))
    })();
    let (sql, values, interval) = match built {
        Ok(built) => built,
        Err(error) => return error.into_response(),
    };
    answer(
        &app,
        &headers,
        sql,
        values,
        None,
        |id, items: Vec<Candle>, stats| {
            Json(CandlesAnswer {
                query_id: id,
                symbol: symbol.clone(),
                interval,
                candles: items,
                stats,
            })
            .into_response()
        },
    )
    .await
}

fn query_params<T>(params: std::result::Result<Query<T>, QueryRejection>) -> Result<Query<T>> {
    params.map_err(|rejection| Error::BadRequest(rejection.body_text()))
}

fn check_symbol(symbol: String) -> Result<String> {
    if symbol.is_empty() || symbol.len() > 64 || symbol.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "a symbol is 1 to 64 printable characters".into(),
        ));
    }
    Ok(symbol)
}

/// An optional inclusive trade-date range.
#[derive(Debug, Clone, Copy)]
struct DateRange {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl DateRange {
    fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let date = |name: &str, text: Option<&str>| -> Result<Option<NaiveDate>> {
            text.filter(|text| !text.is_empty())
                .map(|text| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                        Error::BadRequest(format!("`{name}` = `{text}` is not a YYYY-MM-DD date"))
                    })
                })
                .transpose()
        };
        let range = Self {
            from: date("from", from)?,
            to: date("to", to)?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from > to
        {
            return Err(Error::BadRequest(format!(
                "`from` {from} is after `to` {to}"
            )));
        }
        Ok(range)
    }

    /// Appends `trade_date` bounds, plus bounds on the partition keys derived from dates.
    fn append_filters(&self, app: &AppState, sql: &mut String, values: &mut Vec<Value>) {
        let keys = app
            .catalog
            .snapshot()
            .tables
            .get(QUOTES)
            .map(|table| table.def.partition_keys.clone())
            .unwrap_or_default();
        for (bound, operator) in [(self.from, ">="), (self.to, "<=")] {
            let Some(date) = bound else {
                continue;
            };
            sql.push_str(&format!(" AND trade_date {operator} CAST(? AS DATE)"));
            values.push(Value::from(date.to_string()));
            for key in &keys {
                match (key.name.as_str(), key.data_type.as_str()) {
                    ("year", "int" | "bigint" | "smallint") => {
                        sql.push_str(&format!(" AND year {operator} ?"));
                        values.push(Value::from(date.year()));
                    }
                    ("date", "string") => {
                        sql.push_str(&format!(" AND \"date\" {operator} ?"));
                        values.push(Value::from(date.format("%Y-%m-%d").to_string()));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Runs a market-data query: JSON as `shape(query_id, items, stats)`, other formats streamed.
async fn answer<T, F>(
    app: &AppState,
    headers: &HeaderMap,
    sql: String,
    params: Vec<Value>,
    max_rows: Option<u64>,
    shape: F,
) -> Response
where
    T: DeserializeOwned,
    F: FnOnce(String, Vec<T>, QueryStats) -> Response,
{
    let received = Instant::now();
    let outcome = async {
        let format = negotiate(headers)?;
        let body = QueryBody {
            sql,
            params,
            max_rows: Some(max_rows.unwrap_or(app.config.max_rows_limit.get() as u64)),
            timeout_ms: None,
        };
        let request = prepare(app, body)?;
        let timeout = request.timeout;
        let mut running = submit(app, request).await?;
        if format != Format::Json {
            return respond_streamed(app, running, format, received, timeout).await;
        }
        let mut collected = Collected::default();
        let until = tokio::time::Instant::from_std(received + timeout);
        let done = collect_until(
            &mut running.output,
            &mut collected,
            until,
            running.max_rows,
            app.config.max_response_bytes.get(),
        )
        .await;
        if !done {
            return Err(Error::Timeout(timeout));
        }
        let mut stats = finished(&running.entry)?;
        stats.rows = collected.rows.len();
        stats.truncated = collected.truncated;
        stats.elapsed_ms = received.elapsed().as_secs_f64() * 1000.0;
        running.entry.set_answered(stats.clone());
        let items = objects(&collected)?;
        let id = running.entry.id.clone();
        Ok(with_query_id(shape(id.clone(), items, stats), &id))
    }
    .await;
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// The collected rows as objects keyed by column name, read into `T`.
fn objects<T: DeserializeOwned>(collected: &Collected) -> Result<Vec<T>> {
    let columns: Vec<ColumnInfo> = collected.columns();
    collected
        .rows
        .iter()
        .map(|row| {
            let object: Map<String, Value> = columns
                .iter()
                .map(|column| column.name.clone())
                .zip(row.iter().cloned())
                .collect();
            serde_json::from_value(Value::Object(object))
                .map_err(|error| Error::Internal(format!("shaping a market-data row: {error}")))
        })
        .collect()
}

/// The tables of the database, with partition and file counts.
#[utoipa::path(
    get,
    path = "/v1/tables",
    tag = "catalog",
    responses(
        (status = 200, description = "Tables of the configured database", body = TablesAnswer),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn tables(State(app): State<AppState>) -> Response {
    let snapshot = app.catalog.snapshot();
    Json(TablesAnswer {
        database: snapshot.database.clone(),
        tables: snapshot
            .tables
            .values()
            .map(|table| summary(&app, table))
            .collect(),
        catalog_loaded_at: snapshot.loaded_at.to_rfc3339(),
    })
    .into_response()
}

/// One table with its columns, parameters and partitions.
#[utoipa::path(
    get,
    path = "/v1/tables/{name}",
    tag = "catalog",
    params(("name" = String, Path, description = "Table name")),
    responses(
        (status = 200, description = "The table", body = TableDetail),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such table", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn table(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let snapshot = app.catalog.snapshot();
    let Some(table) = snapshot.tables.get(&name) else {
        return Error::NotFound(format!(
            "no table `{name}` in database `{}`",
            snapshot.database
        ))
        .into_response();
    };
    let partition_list = match &table.partitions {
        Partitions::Registered(partitions) => partitions
            .values()
            .take(MAX_LISTED_PARTITIONS)
            .map(|partition| PartitionInfo {
                values: partition.values.clone(),
                location: partition.location.clone(),
            })
            .collect(),
        Partitions::Projected(_) => Vec::new(),
    };
    Json(TableDetail {
        summary: summary(&app, table),
        parameters: table.def.parameters.clone(),
        partition_list,
    })
    .into_response()
}

pub(crate) fn summary(app: &AppState, table: &CatalogTable) -> TableSummary {
    let columns = |columns: &[stockstream_common::catalog::Column]| {
        columns
            .iter()
            .map(|column| ColumnInfo {
                name: column.name.clone(),
                data_type: column.data_type.clone(),
            })
            .collect()
    };
    TableSummary {
        name: table.def.name.clone(),
        location: table.def.location_url.clone(),
        columns: columns(&table.def.columns),
        partition_keys: columns(&table.def.partition_keys),
        partitions: table
            .partitions
            .registered_count()
            .map(|count| count as u64),
        projection: match &table.partitions {
            Partitions::Projected(projection) => {
                Some(projection.describe(&table.def.partition_keys))
            }
            Partitions::Registered(_) => None,
        },
        files: app.engine.visible_files(&table.def.name),
    }
}
