//! Quote files built from the real slice for the ingest tests: the same rows rewritten with
//! other date orders, as a Yahoo Finance export (with the `null` days it writes), as a European
//! `;`/decimal-comma export, compressed; and readers of what landed on the topics.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::ingest::Ingest;
use crate::{SLICE_ROWS, TopicRecord, read_topic, test_data};

/// A row of the real slice, read with plain string splitting.
#[derive(Debug, Clone)]
pub struct SliceRow {
    /// Year as written (`1987`).
    pub year: String,
    /// Month as written (`01`).
    pub month: String,
    /// Day as written (`02`).
    pub day: String,
    /// Open, High, Low, Close, Adj Close, Volume, CloseUSD as written.
    pub values: Vec<String>,
}

impl SliceRow {
    /// The date as `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{}-{}-{}", self.year, self.month, self.day)
    }

    /// The close as a number.
    pub fn close(&self) -> f64 {
        self.values[3].parse().unwrap_or(f64::NAN)
    }
}

/// The real slice's 5,693 rows.
pub fn slice() -> Result<Vec<SliceRow>> {
    let text = std::fs::read_to_string(test_data())?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        ensure!(fields.len() == 9, "slice line {line}");
        let mut date = fields[1].split('-');
        rows.push(SliceRow {
            year: date.next().context("year")?.to_string(),
            month: date.next().context("month")?.to_string(),
            day: date.next().context("day")?.to_string(),
            values: fields[2..].iter().map(|value| value.to_string()).collect(),
        });
    }
    ensure!(
        rows.len() as u64 == SLICE_ROWS,
        "the slice has {} rows",
        rows.len()
    );
    Ok(rows)
}

/// `indexProcessed.csv` text of `rows` with dates written by `date`.
pub fn index_processed(rows: &[SliceRow], date: impl Fn(&SliceRow) -> String) -> String {
    let mut text = String::from("Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\n");
    for row in rows {
        text.push_str(&format!("HSI,{},{}\n", date(row), row.values.join(",")));
    }
    text
}

/// A Yahoo Finance export of `rows`: no symbol, no CloseUSD.
pub fn yahoo(rows: &[SliceRow]) -> String {
    let mut text = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    for row in rows {
        text.push_str(&format!("{},{}\n", row.date(), row.values[..6].join(",")));
    }
    text
}

/// The same as `;`-delimited text with decimal commas and `DD.MM.YYYY` dates.
pub fn european(rows: &[SliceRow]) -> String {
    let mut text = String::from("Index;Date;Open;High;Low;Close;Adj Close;Volume;CloseUSD\n");
    for row in rows {
        let values: Vec<String> = row
            .values
            .iter()
            .map(|value| value.replace('.', ","))
            .collect();
        text.push_str(&format!(
            "HSI;{}.{}.{};{}\n",
            row.day,
            row.month,
            row.year,
            values.join(";")
        ));
    }
    text
}

/// gzip-compressed `text`.
pub fn gzip(text: &str) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes())?;
    Ok(encoder.finish()?)
}

/// A path as text (tests build paths from UTF-8).
pub fn path_text(path: &Path) -> Result<&str> {
    path.to_str().context("utf-8 path")
}

/// The quotes on a topic, read by confluent-kafka.
#[derive(Debug)]
pub struct OnTopic {
    /// (trade_date, close bits), sorted.
    pub pairs: Vec<(String, u64)>,
    /// The records' JSON values.
    pub values: Vec<serde_json::Value>,
    /// The records' keys.
    pub keys: Vec<String>,
}

/// Every quote on the ingest's quotes topic.
pub fn quotes_on(ingest: &Ingest) -> Result<OnTopic> {
    let records = read_topic(&ingest.bootstrap, &ingest.quotes())?;
    let mut found = OnTopic {
        pairs: Vec::new(),
        values: Vec::new(),
        keys: Vec::new(),
    };
    for record in &records {
        let value: serde_json::Value =
            serde_json::from_str(record.value.as_deref().context("a value")?)?;
        found.pairs.push((
            value["trade_date"]
                .as_str()
                .context("trade_date")?
                .to_string(),
            value["close"].as_f64().context("close")?.to_bits(),
        ));
        found.keys.push(record.key.clone().unwrap_or_default());
        found.values.push(value);
    }
    found.pairs.sort();
    Ok(found)
}

/// (date, close bits) of `rows`, sorted, to compare with [`OnTopic::pairs`].
pub fn expected_pairs(rows: &[SliceRow]) -> Vec<(String, u64)> {
    let mut pairs: Vec<(String, u64)> = rows
        .iter()
        .map(|row| (row.date(), row.close().to_bits()))
        .collect();
    pairs.sort();
    pairs
}

/// Dead letters as (line, reason), sorted by line, checking each names its file.
pub fn dead_letters(ingest: &Ingest, file: &str) -> Result<Vec<(u64, String)>> {
    let letters: Vec<TopicRecord> = read_topic(&ingest.bootstrap, &ingest.dlq())?;
    let mut found = Vec::new();
    for letter in &letters {
        ensure!(
            letter
                .headers
                .get("stockstream-source-file")
                .map(String::as_str)
                == Some(file),
            "dead letter without its file: {letter:?}"
        );
        found.push((
            letter.number("stockstream-source-line").unwrap_or(0),
            letter
                .headers
                .get("stockstream-error")
                .cloned()
                .unwrap_or_default(),
        ));
    }
    found.sort();
    Ok(found)
}

/// The first `count` rows of the slice as a Yahoo export with five bad rows: three `null` days,
/// a blank Open and a NaN Close. Returns the text, the good rows and the bad rows' lines.
pub fn yahoo_with_gaps(
    rows: &[SliceRow],
    count: usize,
) -> (String, Vec<SliceRow>, Vec<(u64, &'static str)>) {
    let mut text = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut line = 1;
    for (index, row) in rows[..count].iter().enumerate() {
        line += 1;
        let mut values = row.values[..6].to_vec();
        match index {
            10 => {
                values[0] = String::new();
                bad.push((line, "column `Open` is empty"));
            }
            20 => {
                values[3] = "NaN".into();
                bad.push((line, "column `Close` has no value (`NaN`)"));
            }
            _ => good.push(row.clone()),
        }
        text.push_str(&format!("{},{}\n", row.date(), values.join(",")));
        if index % 50 == 49 && bad.len() < 5 {
            // Yahoo writes a row of nulls for a day without data.
            line += 1;
            text.push_str(&format!(
                "{}-12-25,null,null,null,null,null,null\n",
                row.year
            ));
            bad.push((line, "no prices on"));
        }
    }
    (text, good, bad)
}
