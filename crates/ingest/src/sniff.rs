//! Inferring how a file is written, per file, before a row is sent: the delimiter (`,` `;` tab
//! `|`, from the header), the decimal separator (from the first rows' prices), the date format
//! and — for numeric day/month dates — their order, settled by the whole file's date column,
//! where the symbol comes from (a column, `--symbol`, or the file name) and where the US-dollar
//! close comes from (a column, `--usd-rate`, or nowhere: null). Each can be given by a flag
//! instead ([`FormatOptions`]).
//!
//! Like DuckDB's CSV sniffer, the date format is the one most of the file's dates are written
//! in; rows that contradict it are dead letters with that reason. A file whose numeric dates all
//! read both ways (every day ≤ 12) is refused with the `--date-format` that would replay it.

use std::collections::BTreeMap;

use serde::Serialize;
use stockstream_common::record::is_valid_symbol;

use crate::error::{Error, Result};
use crate::reader::dates::{Shape, classify, evidence};
use crate::reader::numbers::looks_like_decimal_comma;
use crate::reader::records::split_line;
use crate::reader::{Column, Columns, DateFormat, Decimal, Form, LineRecords, Order, RowParser};
use crate::sources::{Compression, Source};

/// Rows read to sniff the decimal separator and the usual date form.
const SAMPLE_ROWS: u64 = 1000;
/// Delimiters tried, in order of preference.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How files are written, when a flag says so instead of inference (options of `replay`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FormatOptions {
    /// Field delimiter: `,` `;` `tab` or `|` (sniffed from each file's header when absent).
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Decimal separator of prices: point (2540.1) or comma (2540,1) (sniffed when absent).
    #[arg(long, value_enum)]
    pub decimal: Option<Decimal>,
    /// strftime format of every date, e.g. %d/%m/%Y (day first) or %m/%d/%Y (month first);
    /// inferred per file when absent.
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,
    /// Symbol of files without an Index column (default: the file name, `^HSI.csv` → `^HSI`).
    #[arg(long)]
    pub symbol: Option<String>,
    /// US dollars per unit of the file's currency: files without a CloseUSD column get
    /// close_usd = Close × RATE (without it, close_usd is null).
    #[arg(long, value_name = "RATE")]
    pub usd_rate: Option<f64>,
}

fn parse_delimiter(text: &str) -> std::result::Result<u8, String> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("`{other}` is not one of , ; tab |")),
    }
}

impl FormatOptions {
    /// Checks the flags; the explicit date format, if any.
    pub fn validate(&self) -> Result<Option<DateFormat>> {
        if let Some(symbol) = &self.symbol
            && !is_valid_symbol(symbol)
        {
            return Err(Error::Usage(format!(
                "--symbol `{symbol}` must be 1-32 characters of A-Z, a-z, 0-9, `.`, `^`, `_`, `-`"
            )));
        }
        if let Some(rate) = self.usd_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::Usage(format!(
                "--usd-rate must be a positive number, found {rate}"
            )));
        }
        self.date_format
            .as_deref()
            .map(DateFormat::explicit)
            .transpose()
            .map_err(Error::Usage)
    }
}

/// What was inferred about one file (shown by `--dry-run` and in the summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inference {
    /// Compression found from the first bytes.
    pub compression: Compression,
    /// The delimiter (`,` `;` `tab` `|`) and whether it was sniffed or given.
    pub delimiter: String,
    /// The decimal separator.
    pub decimal: Decimal,
    /// Record field → the header's column.
    pub columns: BTreeMap<&'static str, String>,
    /// Header columns that are not part of the record.
    pub ignored_columns: Vec<String>,
    /// The date format in strftime notation.
    pub date_format: String,
    /// Day/month order of numeric dates, when the file has them and settled it.
    pub date_order: Option<Order>,
    /// How the date format was decided.
    pub date_evidence: String,
    /// Where each row's symbol comes from.
    pub symbol: String,
    /// Where close_usd comes from.
    pub close_usd: String,
    /// Which of the above were sniffed rather than given by flags.
    pub sniffed: Vec<&'static str>,
    /// How rows are parsed.
    #[serde(skip)]
    pub parser: RowParser,
    /// The delimiter byte.
    #[serde(skip)]
    pub delimiter_byte: u8,
}

/// Counts of the date forms seen and of what settles day/month order.
#[derive(Debug, Default)]
struct DateTally {
    forms: BTreeMap<Form, u64>,
    day_first: u64,
    month_first: u64,
    either_way: u64,
    examples: [Option<String>; 3],
    dates: u64,
    whole_file: bool,
}

impl DateTally {
    fn observe(&mut self, text: &str) {
        self.dates += 1;
        let form = match classify(text.trim()) {
            Shape::Numbers {
                form,
                first,
                second,
                ..
            } => {
                if let Form::DayMonth(_) = form {
                    let slot = match evidence(first, second) {
                        Some(Order::DayFirst) => {
                            self.day_first += 1;
                            0
                        }
                        Some(Order::MonthFirst) => {
                            self.month_first += 1;
                            1
                        }
                        None => {
                            self.either_way += 1;
                            2
                        }
                    };
                    self.examples[slot].get_or_insert_with(|| text.trim().to_string());
                }
                form
            }
            Shape::Named => Form::Named,
            Shape::TimeOfDay | Shape::Unknown => return,
        };
        *self.forms.entry(form).or_default() += 1;
    }

    fn has_day_month(&self) -> bool {
        self.forms
            .keys()
            .any(|form| matches!(form, Form::DayMonth(_)))
    }

    /// The file's date format, or why it cannot be told.
    fn decide(&self) -> std::result::Result<(DateFormat, String), String> {
        let Some((&primary, &count)) = self
            .forms
            .iter()
            .max_by_key(|(form, count)| (**count, std::cmp::Reverse(**form)))
        else {
            return Ok((
                DateFormat::Inferred {
                    primary: Form::YearFirst(b'-'),
                    order: None,
                },
                "no dates to infer from".into(),
            ));
        };
        let scope = if self.whole_file {
            format!("{} dates of the whole file", self.dates)
        } else {
            format!("the first {} dates", self.dates)
        };
        let example = |slot: usize| self.examples[slot].clone().unwrap_or_default();
        let order = match (self.day_first, self.month_first) {
            (0, 0) => None,
            (day, month) if day > month => Some(Order::DayFirst),
            (day, month) if month > day => Some(Order::MonthFirst),
            (both, _) => {
                return Err(format!(
                    "its dates contradict each other: {both} read only day first (e.g. `{}`) and {both} only month first (e.g. `{}`); give --date-format",
                    example(0),
                    example(1)
                ));
            }
        };
        if order.is_none() && matches!(primary, Form::DayMonth(_)) {
            let separator = char::from(match primary {
                Form::DayMonth(separator) => separator,
                _ => b'/',
            });
            return Err(format!(
                "its dates never say whether they are day first or month first: all {} numeric dates read both ways (e.g. `{}`, no day above 12); replay it with --date-format %d{separator}%m{separator}%Y (day first, as European exports write) or --date-format %m{separator}%d{separator}%Y (month first, as US exports write)",
                self.either_way,
                example(2)
            ));
        }
        let evidence = match order {
            Some(order) => {
                let (settling, contradicting) = match order {
                    Order::DayFirst => (self.day_first, self.month_first),
                    Order::MonthFirst => (self.month_first, self.day_first),
                };
                format!(
                    "{} of {scope}; {} first: {settling} dates read only that way (e.g. `{}`), {contradicting} contradict it",
                    count,
                    match order {
                        Order::DayFirst => "day",
                        Order::MonthFirst => "month",
                    },
                    example(if order == Order::DayFirst { 0 } else { 1 }),
                )
            }
            None => format!("{count} of {scope}"),
        };
        Ok((DateFormat::Inferred { primary, order }, evidence))
    }
}

/// Infers how `source` is written; flags in `options` take precedence.
pub fn infer(source: &Source, options: &FormatOptions) -> Result<Inference> {
    let explicit_dates = options.validate()?;
    let format_error = |message: String| Error::Format {
        path: source.name().into(),
        message,
    };
    let opened = source.open()?;
    let compression = opened.compression;
    let mut records = LineRecords::new(opened.reader, b',');
    let header = read_header(source, &mut records)?;
    let (delimiter, columns) = header_columns(&header, options.delimiter).map_err(format_error)?;
    records.set_delimiter(delimiter);
    let sample = scan(source, &mut records, &columns, explicit_dates.is_none())?;
    let mut sniffed = Vec::new();
    if options.delimiter.is_none() {
        sniffed.push("delimiter");
    }
    let decimal = options.decimal.unwrap_or_else(|| {
        sniffed.push("decimal");
        if sample.comma_rows > 0 {
            Decimal::Comma
        } else {
            Decimal::Point
        }
    });
    let (dates, date_evidence) = match explicit_dates {
        Some(format) => (format, "given with --date-format".to_string()),
        None => {
            sniffed.push("date_format");
            sample.dates.decide().map_err(format_error)?
        }
    };
    let (symbol, symbol_from) = symbol_source(source, &columns, options).map_err(format_error)?;
    let close_usd = match (columns.header_name(Column::CloseUsd), options.usd_rate) {
        (Some(name), _) => format!("column {name}"),
        (None, Some(rate)) => format!("Close × {rate} (--usd-rate)"),
        (None, None) => "null (no CloseUSD column and no --usd-rate)".to_string(),
    };
    Ok(Inference {
        compression,
        delimiter: match delimiter {
            b'\t' => "tab".to_string(),
            other => char::from(other).to_string(),
        },
        decimal,
        ignored_columns: columns.ignored().into_iter().map(str::to_string).collect(),
        columns: Column::ALL
            .iter()
            .filter_map(|&column| {
                let name = columns.header_name(column)?;
                Some((record_field(column), name.to_string()))
            })
            .collect(),
        date_format: dates.pattern(),
        date_order: match &dates {
            DateFormat::Inferred { order, .. } => *order,
            DateFormat::Explicit { .. } => None,
        },
        date_evidence,
        symbol: symbol_from,
        close_usd,
        sniffed,
        parser: RowParser {
            columns,
            decimal,
            dates,
            symbol,
            usd_rate: options.usd_rate,
        },
        delimiter_byte: delimiter,
    })
}

/// The text of the first non-blank line.
fn read_header<R: std::io::BufRead>(
    source: &Source,
    records: &mut LineRecords<R>,
) -> Result<String> {
    loop {
        match records
            .next_record()
            .map_err(|error| source.read_error(error))?
        {
            None => {
                return Err(Error::Format {
                    path: source.name().into(),
                    message: "file is empty; expected a header such as Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD".into(),
                });
            }
            Some(record) if record.all_blank() => {}
            Some(record) => return Ok(record.text.to_string()),
        }
    }
}

/// What the rows after the header say about the file.
struct Sample {
    dates: DateTally,
    comma_rows: u64,
}

/// Reads the first [`SAMPLE_ROWS`] rows (decimal commas, date forms) and, when `infer_dates`
/// and they hold numeric day/month dates, the rest of the file's date column.
fn scan<R: std::io::BufRead>(
    source: &Source,
    records: &mut LineRecords<R>,
    columns: &Columns,
    infer_dates: bool,
) -> Result<Sample> {
    let date_position = columns.position(Column::Date);
    let price_positions: Vec<usize> = [
        Column::Open,
        Column::High,
        Column::Low,
        Column::Close,
        Column::AdjClose,
        Column::CloseUsd,
    ]
    .iter()
    .filter_map(|&column| columns.position(column))
    .collect();
    let mut sample = Sample {
        dates: DateTally::default(),
        comma_rows: 0,
    };
    let mut rows = 0;
    while let Some(record) = records
        .next_record()
        .map_err(|error| source.read_error(error))?
    {
        rows += 1;
        if rows > SAMPLE_ROWS {
            if !infer_dates || !sample.dates.has_day_month() {
                break;
            }
            sample.dates.whole_file = true;
        }
        if let Some(date) = date_position.and_then(|position| record.field(position)) {
            sample.dates.observe(date);
        }
        if rows <= SAMPLE_ROWS
            && price_positions
                .iter()
                .any(|&position| record.field(position).is_some_and(looks_like_decimal_comma))
        {
            sample.comma_rows += 1;
        }
    }
    if rows <= SAMPLE_ROWS {
        sample.dates.whole_file = true;
    }
    Ok(sample)
}

/// The delimiter and the columns of a header line.
fn header_columns(header: &str, given: Option<u8>) -> std::result::Result<(u8, Columns), String> {
    if let Some(delimiter) = given {
        return Columns::from_header(&split_line(header, delimiter))
            .map(|columns| (delimiter, columns));
    }
    let mut first_error = None;
    for delimiter in DELIMITERS {
        match Columns::from_header(&split_line(header, delimiter)) {
            Ok(columns) => return Ok((delimiter, columns)),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(format!(
        "{} (no delimiter among , ; tab | gives such a header)",
        first_error.unwrap_or_default()
    ))
}

/// The symbol of a file without a symbol column, and how it was found.
fn symbol_source(
    source: &Source,
    columns: &Columns,
    options: &FormatOptions,
) -> std::result::Result<(Option<String>, String), String> {
    if let Some(name) = columns.header_name(Column::Symbol) {
        return Ok((None, format!("column {name}")));
    }
    if let Some(symbol) = &options.symbol {
        return Ok((Some(symbol.clone()), format!("{symbol} (--symbol)")));
    }
    let stem = source.stem();
    if is_valid_symbol(&stem) {
        return Ok((Some(stem.clone()), format!("{stem} (the file name)")));
    }
    Err(format!(
        "has no symbol column (Index) and its name `{stem}` is not a valid symbol (1-32 characters of A-Z, a-z, 0-9, `.`, `^`, `_`, `-`); give --symbol"
    ))
}

/// The record's name of a column.
fn record_field(column: Column) -> &'static str {
    match column {
        Column::Symbol => "symbol",
        Column::Date => "trade_date",
        Column::Open => "open",
        Column::High => "high",
        Column::Low => "low",
        Column::Close => "close",
        Column::AdjClose => "adj_close",
        Column::Volume => "volume",
        Column::CloseUsd => "close_usd",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inferred(name: &str, content: &str, options: &FormatOptions) -> Result<Inference> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        infer(&Source::local(&path), options)
    }

    fn rows(dates: &[&str], delimiter: char) -> String {
        let mut text = [
            "Index",
            "Date",
            "Open",
            "High",
            "Low",
            "Close",
            "Adj Close",
            "Volume",
            "CloseUSD",
        ]
        .join(&delimiter.to_string());
        text.push('\n');
        for date in dates {
            let fields = ["HSI", date, "1", "2", "1", "1.5", "1.5", "0", "0.2"];
            text.push_str(&fields.join(&delimiter.to_string()));
            text.push('\n');
        }
        text
    }

    #[test]
    fn the_day_month_order_is_settled_by_the_whole_file() {
        let mut dates: Vec<String> = (0..1500).map(|_| "03/07/1979".to_string()).collect();
        dates.push("13/07/1979".into());
        let dates: Vec<&str> = dates.iter().map(String::as_str).collect();
        let inference =
            inferred("late.csv", &rows(&dates, ','), &FormatOptions::default()).expect("infers");
        assert_eq!(inference.date_format, "%d/%m/%Y");
        assert_eq!(inference.date_order, Some(Order::DayFirst));
        assert!(
            inference.date_evidence.contains("whole file"),
            "{}",
            inference.date_evidence
        );

        let month_first = inferred(
            "us.csv",
            &rows(&["03/07/1979", "03/13/1979"], ','),
            &FormatOptions::default(),
        )
        .expect("infers");
        assert_eq!(month_first.date_format, "%m/%d/%Y");
    }

    #[test]
    fn a_file_that_never_settles_needs_a_date_format() {
        let content = rows(&["03/07/1979", "04/07/1979"], ',');
        let error =
            inferred("ambiguous.csv", &content, &FormatOptions::default()).expect_err("unsettled");
        let message = error.to_string();
        assert!(message.contains("--date-format %d/%m/%Y"), "{message}");
        assert!(message.contains("--date-format %m/%d/%Y"), "{message}");
        let options = FormatOptions {
            date_format: Some("%m/%d/%Y".into()),
            ..FormatOptions::default()
        };
        let inference = inferred("ambiguous.csv", &content, &options).expect("explicit");
        assert_eq!(inference.date_format, "%m/%d/%Y");
        assert!(!inference.sniffed.contains(&"date_format"));
    }

    #[test]
    fn a_few_stray_ambiguous_dates_do_not_block_an_iso_file() {
        let inference = inferred(
            "messy.csv",
            &rows(&["1987-01-02", "1987-01-05", "01/09/1987"], ','),
            &FormatOptions::default(),
        )
        .expect("infers");
        assert_eq!(inference.date_format, "%Y-%m-%d");
        assert_eq!(inference.date_order, None);
    }

    #[test]
    fn semicolons_decimal_commas_and_yahoo_exports() {
        let text = "Date;Open;High;Low;Close;Adj Close;Volume\n2020-01-02;2540,1;2541,0;2539,5;2540,5;2540,5;100\n";
        let inference = inferred("^HSI.csv", text, &FormatOptions::default()).expect("infers");
        assert_eq!(inference.delimiter, ";");
        assert_eq!(inference.decimal, Decimal::Comma);
        assert_eq!(inference.symbol, "^HSI (the file name)");
        assert!(
            inference.close_usd.starts_with("null"),
            "{}",
            inference.close_usd
        );
        assert_eq!(inference.parser.symbol.as_deref(), Some("^HSI"));

        let error = inferred("my export.csv", text, &FormatOptions::default()).expect_err("symbol");
        assert!(error.to_string().contains("give --symbol"), "{error}");
        let options = FormatOptions {
            symbol: Some("HSI".into()),
            usd_rate: Some(0.128),
            ..FormatOptions::default()
        };
        let inference = inferred("my export.csv", text, &options).expect("flags");
        assert_eq!(inference.symbol, "HSI (--symbol)");
        assert!(
            inference.close_usd.contains("0.128"),
            "{}",
            inference.close_usd
        );

        let tabs = rows(&["2010-01-04"], '\t');
        assert_eq!(
            inferred("t.tsv", &tabs, &FormatOptions::default())
                .expect("infers")
                .delimiter,
            "tab"
        );
        let error = inferred("x.csv", "a;b\n1;2\n", &FormatOptions::default()).expect_err("header");
        assert!(error.to_string().contains("lacks the column(s)"), "{error}");
        let error = inferred("e.csv", "\n\n", &FormatOptions::default()).expect_err("empty");
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
