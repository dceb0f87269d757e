//! Synthetic quotes: realistic daily bars from a geometric Brownian motion per symbol.
//!
//! Deterministic for a given seed. Each symbol starts at its own price level and follows
//! `close = open · exp((μ − σ²/2) + σ·Z)`; the open gaps from the previous close, high and low
//! extend beyond the open/close range, and volume is log-normal. Rows come in trade-date order
//! across symbols (a market replay), trading days only (Monday to Friday).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use stockstream_common::record::{CSV_COLUMNS, Quote};

use crate::error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Symbols, each with its own price path.
    pub symbols: Vec<String>,
    /// Trading days per symbol; 0 streams without end.
    pub days: u32,
    /// First calendar day (moved forward to a weekday).
    pub start: NaiveDate,
    /// Random seed; the same seed gives the same file.
    pub seed: u64,
}

/// Daily drift of the log price.
const DRIFT: f64 = 0.0003;
/// Daily volatility of the log price.
const VOLATILITY: f64 = 0.012;

/// A generator of quotes in trade-date order.
#[derive(Debug)]
pub struct QuoteGenerator {
    rng: ChaCha8Rng,
    normal: Normal<f64>,
    symbols: Vec<(String, f64, f64)>,
    date: NaiveDate,
    days_left: Option<u32>,
    index: usize,
}

impl QuoteGenerator {
    /// Creates the generator.
    pub fn new(options: &GenerateOptions) -> Result<Self> {
        if options.symbols.is_empty() {
            return Err(Error::Usage("at least one symbol is needed".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let symbols = options
            .symbols
            .iter()
            .map(|symbol| {
                let level = 10f64.powf(rng.random_range(2.5..4.5));
                let usd_rate = rng.random_range(0.01..1.2);
                (symbol.clone(), level, usd_rate)
            })
            .collect();
        let normal = Normal::new(0.0, 1.0).map_err(|error| {
            Error::Internal(format!("the standard normal distribution: {error}"))
        })?;
        Ok(Self {
            rng,
            normal,
            symbols,
            date: next_weekday(options.start),
            days_left: (options.days > 0).then_some(options.days),
            index: 0,
        })
    }
}

fn next_weekday(mut date: NaiveDate) -> NaiveDate {
    while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        date = date.succ_opt().unwrap_or(date);
    }
    date
}

impl Iterator for QuoteGenerator {
    type Item = Quote;

    fn next(&mut self) -> Option<Quote> {
        if self.days_left == Some(0) {
            return None;
        }
        let z = self.normal.sample(&mut self.rng);
        let gap = self.normal.sample(&mut self.rng) * VOLATILITY * 0.2;
        let wick_high = self.normal.sample(&mut self.rng).abs() * VOLATILITY * 0.5;
        let wick_low = self.normal.sample(&mut self.rng).abs() * VOLATILITY * 0.5;
        let volume_noise = self.normal.sample(&mut self.rng);
        let (symbol, last_close, usd_rate) = &mut self.symbols[self.index];
        let open = *last_close * gap.exp();
        let close = open * ((DRIFT - VOLATILITY * VOLATILITY / 2.0) + VOLATILITY * z).exp();
        let high = open.max(close) * (1.0 + wick_high);
        let low = open.min(close) * (1.0 - wick_low).max(0.5);
        *last_close = close;
        let quote = Quote {
            symbol: symbol.clone(),
            trade_date: self.date,
            open: round(open),
            high: round(high),
            low: round(low),
            close: round(close),
            adj_close: round(close),
            volume: (1.0e6 * (0.5 * volume_noise).exp()).round() as i64,
            close_usd: Some(round(close * *usd_rate)),
        };
        self.index += 1;
        if self.index == self.symbols.len() {
            self.index = 0;
            if let Some(days_left) = self.days_left.as_mut() {
                *days_left -= 1;
            }
            self.date = next_weekday(self.date.succ_opt().unwrap_or(self.date));
        }
        Some(quote)
    }
}

fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// File formats the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// `indexProcessed.csv` columns.
    Csv,
    /// One JSON record per line in stockstream's wire format (pre-serialized messages, e.g. for
    /// a benchmark peer).
    Ndjson,
}

/// Writes generated quotes as an `indexProcessed.csv`-shaped file; returns the rows written.
pub fn write_csv(options: &GenerateOptions, path: &Path) -> Result<u64> {
    write_file(options, path, FileFormat::Csv)
}

/// Writes generated quotes to `path` in `format`; returns the rows written.
pub fn write_file(options: &GenerateOptions, path: &Path, format: FileFormat) -> Result<u64> {
    let write_error = |source| Error::Write {
        path: PathBuf::from(path),
        source,
    };
    if options.days == 0 {
        return Err(Error::Usage(
            "a file needs a number of days (--days 0 streams without end to Kafka only)".into(),
        ));
    }
    if format == FileFormat::Ndjson {
        let file = std::fs::File::create(path).map_err(write_error)?;
        let mut out = std::io::BufWriter::new(file);
        let mut rows = 0;
        for quote in QuoteGenerator::new(options)? {
            out.write_all(&quote.to_json()).map_err(write_error)?;
            out.write_all(b"\n").map_err(write_error)?;
            rows += 1;
        }
        out.flush().map_err(write_error)?;
        return Ok(rows);
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let file = std::fs::File::create(path).map_err(write_error)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "{}", CSV_COLUMNS.join(",")).map_err(write_error)?;
    let mut rows = 0;
    for quote in QuoteGenerator::new(options)? {
        write!(
            out,
            "{},{},{},{},{},{},{},{}.0,",
            quote.symbol,
            quote.trade_date,
            quote.open,
            quote.high,
            quote.low,
            quote.close,
            quote.adj_close,
            quote.volume,
        )
        .map_err(write_error)?;
        // The generator always knows the US-dollar close; an unknown one is an empty field.
        match quote.close_usd {
            Some(close_usd) => writeln!(out, "{close_usd}"),
            None => writeln!(out),
        }
        .map_err(write_error)?;
        rows += 1;
    }
    out.flush().map_err(write_error)?;
    Ok(rows)
}

/// What streaming generated quotes did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamSummary {
    /// Records acknowledged by Kafka.
    pub produced: u64,
    /// Records not delivered after librdkafka's retries.
    pub failed: u64,
    /// Whether a shutdown signal stopped the stream.
    pub interrupted: bool,
    /// Wall-clock seconds.
    pub elapsed_seconds: f64,
}

/// Streams generated quotes into the quotes topic at `rate` rows per second (`None`: as fast as
/// the broker takes them) until the generator ends or `shutdown` fires; then waits for every
/// acknowledgement. Records carry the source `generator:<seed>` and their sequence number.
pub fn stream(
    config: &crate::Config,
    options: &GenerateOptions,
    rate: Option<f64>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<StreamSummary> {
    let started = std::time::Instant::now();
    let emitter = crate::emit::Emitter::new(config)?;
    let origin = crate::emit::Origin {
        source: format!("generator:{}", options.seed),
        file: String::new(),
        pass: 0,
    };
    let mut pacer = crate::emit::Pacer::new(rate);
    let mut summary = StreamSummary::default();
    let mut last_log = std::time::Instant::now();
    for (sequence, quote) in QuoteGenerator::new(options)?.enumerate() {
        if !pacer.wait(shutdown) {
            summary.interrupted = true;
            break;
        }
        let sequence = sequence as u64 + 1;
        emitter.quote(&origin, &quote, sequence, sequence)?;
        summary.produced += 1;
        if last_log.elapsed() >= std::time::Duration::from_secs(5) {
            last_log = std::time::Instant::now();
            tracing::info!(produced = summary.produced, "generating");
        }
    }
    emitter
        .producer()
        .flush(config.ingest.delivery_timeout + std::time::Duration::from_secs(5))?;
    let failures = emitter.producer().take_failures();
    summary.failed = failures.len() as u64;
    summary.produced -= summary.failed;
    if let Some(first) = failures.first() {
        tracing::error!(count = failures.len(), error = %first.error, "generated records were not delivered");
    }
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> GenerateOptions {
        GenerateOptions {
            symbols: vec!["AAA".into(), "BBB".into()],
            days: 300,
            start: NaiveDate::from_ymd_opt(2020, 1, 4).expect("date"),
            seed,
        }
    }

    #[test]
    fn deterministic_valid_and_in_date_order() {
        let first: Vec<Quote> = QuoteGenerator::new(&options(7))
            .expect("generator")
            .collect();
        let second: Vec<Quote> = QuoteGenerator::new(&options(7))
            .expect("generator")
            .collect();
        let other: Vec<Quote> = QuoteGenerator::new(&options(8))
            .expect("generator")
            .collect();
        assert_eq!(first, second);
        assert_ne!(first, other);
        assert_eq!(first.len(), 600);
        for quote in &first {
            quote.validate().expect("valid quote");
            assert!(
                quote.low <= quote.open.min(quote.close)
                    && quote.high >= quote.open.max(quote.close)
            );
            assert!(!matches!(
                quote.trade_date.weekday(),
                Weekday::Sat | Weekday::Sun
            ));
        }
        assert!(
            first
                .windows(2)
                .all(|pair| pair[0].trade_date <= pair[1].trade_date)
        );
        assert_eq!(
            first[0].trade_date,
            NaiveDate::from_ymd_opt(2020, 1, 6).expect("monday")
        );
    }

    #[test]
    fn ndjson_output_is_the_wire_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.ndjson");
        assert_eq!(
            write_file(&options(1), &path, FileFormat::Ndjson).expect("writes"),
            600
        );
        let expected: Vec<Quote> = QuoteGenerator::new(&options(1))
            .expect("generator")
            .collect();
        let text = std::fs::read_to_string(&path).expect("reads");
        let decoded: Vec<Quote> = text
            .lines()
            .map(|line| Quote::from_json(line.as_bytes()).expect("decodes"))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn zero_days_is_unbounded() {
        let mut unbounded = options(3);
        unbounded.days = 0;
        assert_eq!(
            QuoteGenerator::new(&unbounded)
                .expect("generator")
                .take(10_000)
                .count(),
            10_000
        );
        // A file needs a bound: refused before anything is created.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("never.csv");
        let refused = write_csv(&unbounded, &path).expect_err("an unbounded file is refused");
        assert!(
            matches!(&refused, Error::Usage(message) if message.contains("--days")),
            "{refused}"
        );
        assert!(!path.exists(), "nothing is written for an unbounded file");
    }

    #[test]
    fn csv_output_parses_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.csv");
        let rows = write_csv(&options(1), &path).expect("writes");
        assert_eq!(rows, 600);
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(text.lines().next(), Some(CSV_COLUMNS.join(",").as_str()));
        let source = crate::sources::Source::local(&path);
        let format = crate::sniff::infer(&source, &Default::default()).expect("infers");
        assert_eq!(format.date_format, "%Y-%m-%d");
        let opened = source.open().expect("opens");
        let generated: Vec<Quote> = QuoteGenerator::new(&options(1))
            .expect("generator")
            .collect();
        let read = crate::reader::CsvSource::new("g.csv", opened.reader, b',', format.parser)
            .expect("reads")
            .map(|row| match row.expect("row").outcome {
                crate::reader::RowOutcome::Quote(quote) => quote,
                other => panic!("generated rows are valid: {other:?}"),
            })
            .collect::<Vec<_>>();
        assert_eq!(read, generated);
    }
}
