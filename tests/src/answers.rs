//! Answers of the query API checked against values computed from the CSV by plain string
//! splitting (no stockstream code): the market-data endpoints in JSON and CSV, and SQL with
//! parameters. Shared by the local stack and the AWS-mode tests, so both are held to one truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::http::{http_get_as, http_post_json};

/// One CSV row of `indexProcessed.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// `Index`.
    pub symbol: String,
    /// `Date` (ISO).
    pub date: String,
    /// `Open`.
    pub open: f64,
    /// `High`.
    pub high: f64,
    /// `Low`.
    pub low: f64,
    /// `Close`.
    pub close: f64,
    /// `Volume`.
    pub volume: i64,
}

/// Reads the rows of an `indexProcessed.csv`-shaped file with plain splitting.
pub fn csv_rows(path: &Path) -> Result<Vec<CsvRow>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            Ok(CsvRow {
                symbol: fields[0].to_string(),
                date: fields[1].to_string(),
                open: fields[2].parse()?,
                high: fields[3].parse()?,
                low: fields[4].parse()?,
                close: fields[5].parse()?,
                volume: fields[7].parse::<f64>()? as i64,
            })
        })
        .collect()
}

/// A candle computed from CSV rows: open of the first day, close of the last, extremes, sum.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvCandle {
    /// First day of the period.
    pub period: String,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: i64,
    /// Trading days.
    pub days: i64,
}

/// Candles of `symbol` grouped by `key` (a date's period start), in period order.
pub fn csv_candles(rows: &[CsvRow], symbol: &str, key: impl Fn(&str) -> String) -> Vec<CsvCandle> {
    let mut by_period: BTreeMap<String, Vec<&CsvRow>> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.symbol == symbol) {
        by_period.entry(key(&row.date)).or_default().push(row);
    }
    by_period
        .into_iter()
        .map(|(period, mut days)| {
            days.sort_by(|a, b| a.date.cmp(&b.date));
            CsvCandle {
                open: days[0].open,
                close: days[days.len() - 1].close,
                high: days.iter().map(|row| row.high).fold(f64::MIN, f64::max),
                low: days.iter().map(|row| row.low).fold(f64::MAX, f64::min),
                volume: days.iter().map(|row| row.volume).sum(),
                days: days.len() as i64,
                period,
            }
        })
        .collect()
}

fn month_start(date: &str) -> String {
    format!("{}-01", &date[..7])
}

fn year_start(date: &str) -> String {
    format!("{}-01-01", &date[..4])
}

fn close_to(actual: &Value, expected: f64) -> bool {
    actual
        .as_f64()
        .is_some_and(|actual| (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0))
}

fn check_candle(actual: &Value, expected: &CsvCandle) -> Result<()> {
    ensure!(
        actual["period"] == expected.period.as_str(),
        "period: {actual} vs {expected:?}"
    );
    for (field, value) in [
        ("open", expected.open),
        ("high", expected.high),
        ("low", expected.low),
        ("close", expected.close),
    ] {
        ensure!(
            close_to(&actual[field], value),
            "{field}: {actual} vs {expected:?}"
        );
    }
    ensure!(
        actual["volume"] == expected.volume,
        "volume: {actual} vs {expected:?}"
    );
    ensure!(
        actual["days"] == expected.days,
        "days: {actual} vs {expected:?}"
    );
    Ok(())
}

/// Parses a CSV answer into a header and rows of fields (no quoting in these answers).
fn csv_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Checks the market-data endpoints and a parameterized query of the API at `api` against the
/// real slice at `csv` (one symbol, `HSI`), in JSON and in CSV.
pub async fn check_market_answers(api: SocketAddr, csv: &Path) -> Result<()> {
    let rows = csv_rows(csv)?;
    let first = rows
        .iter()
        .map(|row| row.date.clone())
        .min()
        .context("rows")?;
    let last = rows
        .iter()
        .map(|row| row.date.clone())
        .max()
        .context("rows")?;

    // The symbols listing.
    let symbols = http_get_as(api, "/v1/symbols", "application/json").await?;
    ensure!(symbols.status == 200, "symbols: {}", symbols.text());
    let symbols = symbols.json()?;
    ensure!(
        symbols["symbols"]
            == json!([{"symbol": "HSI", "first_date": first, "last_date": last, "rows": rows.len()}]),
        "symbols: {symbols}"
    );
    let listing = http_get_as(api, "/v1/symbols", "text/csv").await?;
    ensure!(listing.status == 200, "symbols as CSV: {}", listing.text());
    ensure!(
        listing.text()
            == format!(
                "symbol,first_date,last_date,rows\nHSI,{first},{last},{}\n",
                rows.len()
            ),
        "symbols as CSV: {}",
        listing.text()
    );

    // The monthly candle of October 1987 (the crash, and four days the exchange was shut).
    let months = csv_candles(&rows, "HSI", month_start);
    let october = months
        .iter()
        .find(|candle| candle.period == "1987-10-01")
        .context("October 1987 in the CSV")?;
    let path = "/v1/symbols/HSI/candles?interval=month&from=1987-10-01&to=1987-10-31";
    let answer = http_get_as(api, path, "application/json").await?;
    ensure!(answer.status == 200, "{path}: {}", answer.text());
    let answer = answer.json()?;
    let candles = answer["candles"].as_array().context("candles")?;
    ensure!(candles.len() == 1, "{path}: {answer}");
    check_candle(&candles[0], october)?;
    let as_csv = http_get_as(api, path, "text/csv").await?;
    let (header, table) = csv_table(&as_csv.text());
    ensure!(
        header == ["period", "open", "high", "low", "close", "volume", "days"],
        "{path} as CSV: {}",
        as_csv.text()
    );
    ensure!(table.len() == 1, "{path} as CSV: {}", as_csv.text());
    let numbers: Vec<f64> = table[0][1..]
        .iter()
        .map(|field| field.parse())
        .collect::<Result<_, _>>()?;
    ensure!(
        table[0][0] == october.period
            && (numbers[0] - october.open).abs() < 1e-6
            && (numbers[1] - october.high).abs() < 1e-6
            && (numbers[2] - october.low).abs() < 1e-6
            && (numbers[3] - october.close).abs() < 1e-6
            && numbers[4] as i64 == october.volume
            && numbers[5] as i64 == october.days,
        "{path} as CSV: {} vs {october:?}",
        as_csv.text()
    );

    // Every yearly candle, and every monthly one, over the whole range.
    for (interval, expected) in [
        ("year", csv_candles(&rows, "HSI", year_start)),
        ("month", months.clone()),
    ] {
        let path = format!("/v1/symbols/HSI/candles?interval={interval}");
        let answer = http_get_as(api, &path, "application/json").await?.json()?;
        let candles = answer["candles"].as_array().context("candles")?;
        ensure!(
            candles.len() == expected.len(),
            "{path}: {} vs {}",
            candles.len(),
            expected.len()
        );
        for (actual, expected) in candles.iter().zip(&expected) {
            check_candle(actual, expected)?;
        }
    }

    // Daily quotes of a date range, in order.
    let path = "/v1/symbols/HSI/quotes?from=1987-10-16&to=1987-11-03";
    let answer = http_get_as(api, path, "application/json").await?.json()?;
    let quotes = answer["quotes"].as_array().context("quotes")?;
    let expected: Vec<&CsvRow> = rows
        .iter()
        .filter(|row| row.date.as_str() >= "1987-10-16" && row.date.as_str() <= "1987-11-03")
        .collect();
    ensure!(quotes.len() == expected.len(), "{path}: {answer}");
    for (quote, row) in quotes.iter().zip(expected) {
        ensure!(
            quote["trade_date"] == row.date.as_str() && close_to(&quote["close"], row.close),
            "{path}: {quote} vs {row:?}"
        );
    }

    // SQL with parameters: days and highest close per year, against the CSV.
    let facts = crate::csv_facts(csv)?;
    let answer = http_post_json(
        api,
        "/v1/query",
        &json!({
            "sql": "SELECT year, count(*) AS days, max(close) AS max_close FROM quotes \
                    WHERE symbol = ? AND year BETWEEN ? AND ? GROUP BY year ORDER BY year",
            "params": ["HSI", 1986, 2010],
        }),
        "application/json",
    )
    .await?;
    ensure!(answer.status == 200, "query: {}", answer.text());
    let answer = answer.json()?;
    let years = answer["rows"].as_array().context("rows")?;
    ensure!(years.len() == facts.rows_per_year.len(), "years: {answer}");
    for row in years {
        let year = row[0].as_i64().context("year")? as i32;
        ensure!(
            row[1] == facts.rows_per_year[&year],
            "days of {year}: {row}"
        );
        ensure!(
            close_to(&row[2], facts.max_close_per_year[&year]),
            "max close of {year}: {row}"
        );
    }
    ensure!(answer["stats"]["rows"] == years.len(), "stats: {answer}");
    Ok(())
}

/// Sends every statement of `tests/data/guard-rejected.sql` to `api`; each must be a 400 with a
/// reason.
pub async fn check_guard_corpus(api: SocketAddr) -> Result<()> {
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/guard-rejected.sql"
    ))?;
    let mut sent = 0;
    for entry in corpus.split("\n---\n") {
        let sql: String = entry
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let sql = sql.trim();
        if sql.is_empty() {
            continue;
        }
        let answer =
            http_post_json(api, "/v1/query", &json!({"sql": sql}), "application/json").await?;
        ensure!(
            answer.status == 400,
            "`{sql}` answered {}: {}",
            answer.status,
            answer.text()
        );
        let body = answer.json()?;
        ensure!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "`{sql}`: {body}"
        );
        sent += 1;
    }
    ensure!(sent >= 40, "the corpus holds {sent} statements");
    Ok(())
}
