//! Fuzzing the reader of `indexProcessed.csv` (`Index,Date,Open,High,Low,Close,Adj Close,Volume,
//! CloseUSD`): records and fields ([`LineRecords`]), rows as quotes ([`RowParser`], [`CsvSource`])
//! and, for whole files, the format inference a replay runs first ([`infer`]).
//!
//! Properties: no bytes panic the reader; every row is a valid quote, a bad row with a reason, or
//! blank; a broken row never changes how the rows around it read (nor their line numbers); a
//! valid quote written as a CSV row (quoted or not, CRLF, float volumes, a free-text column with
//! line breaks) reads back unchanged. The corpora are `tests/data/fuzz-corpus/csv-row/` and
//! `csv-file/`. `make fuzz` runs this with `PROPTEST_CASES=20000`.

#[path = "../../common/tests/support/corpus.rs"]
mod corpus;
#[path = "../../common/tests/support/quotes.rs"]
mod quotes;

use std::io::Cursor;

use proptest::prelude::*;
use stockstream_common::record::{CSV_COLUMNS, Quote};
use stockstream_ingest::reader::{
    Columns, CsvSource, DateFormat, Decimal, Form, LineRecords, Row, RowOutcome, RowParser,
};
use stockstream_ingest::sniff::{FormatOptions, infer};
use stockstream_ingest::sources::Source;

/// Cases per property in `cargo test` (see [`corpus::config`]).
const CASES: u32 = 128;

/// The header of `indexProcessed.csv`.
fn header() -> String {
    CSV_COLUMNS.join(",")
}

/// The parser a replay infers for `indexProcessed.csv` (ISO dates, decimal points, `Index` and
/// `CloseUSD` columns), with `extra` columns after the nine.
fn parser(extra: &[&str]) -> RowParser {
    let names: Vec<&str> = CSV_COLUMNS.iter().chain(extra).copied().collect();
    RowParser {
        columns: Columns::from_header(&names).expect("the dataset's header"),
        decimal: Decimal::Point,
        dates: DateFormat::Inferred {
            primary: Form::YearFirst(b'-'),
            order: None,
        },
        symbol: None,
        usd_rate: None,
    }
}

/// Checks what every row must satisfy, then returns the rows.
fn checked(rows: Vec<Row>) -> Vec<Row> {
    let mut last_line = 0;
    for (position, row) in rows.iter().enumerate() {
        assert_eq!(
            row.index,
            position as u64 + 1,
            "rows are counted one by one"
        );
        assert!(row.line > last_line, "line numbers increase: {rows:?}");
        last_line = row.line;
        match &row.outcome {
            RowOutcome::Quote(quote) => assert_eq!(quote.validate(), Ok(()), "{quote:?}"),
            RowOutcome::Bad(reason) => {
                assert!(
                    !reason.trim().is_empty(),
                    "a bad row without a reason: {row:?}"
                )
            }
            RowOutcome::Empty => {}
        }
    }
    rows
}

/// The rows of `text` (a whole file, header first) read with the `indexProcessed.csv` parser.
fn read(text: &[u8], extra: &[&str]) -> Vec<Row> {
    let reader = Box::new(Cursor::new(text.to_vec()));
    let rows = CsvSource::new("fuzz.csv", reader, b',', parser(extra))
        .expect("reading from memory cannot fail")
        .collect::<Result<Vec<Row>, _>>()
        .expect("reading from memory cannot fail");
    checked(rows)
}

/// The rows of `text` as a replay reads a file: inferred first, then read; `Err` when the format
/// cannot be inferred.
fn read_file(text: &[u8], name: &str) -> Result<Vec<Row>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    let source = Source::local(&path);
    let inference = infer(&source, &FormatOptions::default()).map_err(|error| {
        let reason = error.to_string();
        assert!(!reason.trim().is_empty(), "{error:?} has no reason");
        reason
    })?;
    let opened = source.open().map_err(|error| error.to_string())?;
    let rows = CsvSource::new(
        name,
        opened.reader,
        inference.delimiter_byte,
        inference.parser,
    )
    .map_err(|error| error.to_string())?
    .collect::<Result<Vec<Row>, _>>()
    .map_err(|error| error.to_string())?;
    Ok(checked(rows))
}

/// How valid quotes are written as CSV.
#[derive(Debug, Clone)]
struct Style {
    /// Which of the nine fields are quoted (`"HSI"`).
    quoted: [bool; 9],
    /// Blanks around unquoted fields.
    padded: bool,
    /// The volume as a float (`1200.0`), as the dataset writes it.
    float_volume: bool,
    crlf: bool,
    /// Blank lines after each row.
    blank_lines: usize,
    /// The last row ends without a line break.
    unterminated: bool,
    /// A free-text `Note` column after the nine (quoted, with delimiters, quotes and line breaks).
    note: Option<String>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::array::uniform9(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        any::<bool>(),
        proptest::option::of(any::<String>()),
    )
        .prop_map(
            |(quoted, padded, float_volume, crlf, blank_lines, unterminated, note)| Style {
                quoted,
                padded,
                float_volume,
                crlf,
                blank_lines,
                unterminated,
                note,
            },
        )
}

/// A field as a CSV writer quotes it.
fn quote_field(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The nine fields of a quote as `indexProcessed.csv` writes them (unquoted).
fn fields(quote: &Quote, float_volume: bool) -> Vec<String> {
    let volume = if float_volume {
        format!("{}.0", quote.volume)
    } else {
        quote.volume.to_string()
    };
    vec![
        quote.symbol.clone(),
        quote.trade_date.format("%Y-%m-%d").to_string(),
        quote.open.to_string(),
        quote.high.to_string(),
        quote.low.to_string(),
        quote.close.to_string(),
        quote.adj_close.to_string(),
        volume,
        quote
            .close_usd
            .map(|value| value.to_string())
            .unwrap_or_default(),
    ]
}

/// A row of `quote` in `style`, without its line ending.
fn row(quote: &Quote, style: &Style) -> String {
    let mut cells: Vec<String> = fields(quote, style.float_volume)
        .into_iter()
        .zip(style.quoted)
        .map(|(field, quoted)| match (quoted, style.padded) {
            (true, _) => quote_field(&field),
            (false, true) => format!(" {field}\t"),
            (false, false) => field,
        })
        .collect();
    if let Some(note) = &style.note {
        cells.push(quote_field(note));
    }
    cells.join(",")
}

/// A file of `quotes` in `style`; the 1-based line where each row starts.
fn file(quotes: &[Quote], style: &Style) -> (String, Vec<u64>) {
    let ending = if style.crlf { "\r\n" } else { "\n" };
    let mut text = header();
    if style.note.is_some() {
        text.push_str(",Note");
    }
    text.push_str(ending);
    let mut lines = Vec::new();
    for (position, quote) in quotes.iter().enumerate() {
        lines.push(1 + text.matches('\n').count() as u64);
        text.push_str(&row(quote, style));
        if position + 1 < quotes.len() || !style.unterminated {
            text.push_str(ending);
            text.push_str(&ending.repeat(style.blank_lines));
        }
    }
    (text, lines)
}

/// Raw field texts that break a field: empty, blank, not numbers, non-finite, huge, other
/// scripts, quotes and delimiters inside fields (always closed when a field starts with a quote).
fn nasty_field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", " ", "\t", "NaN", "nan", "inf", "-inf", "infinity", "1e309", "-1e309", "1e-400",
            "-0", "0", "-1", "-2540.1", "null", "N/A", "-", "#N/A", "None", "1_000", "0x10",
            "+5", "1e5", "1.5e3", ".5", "5.", "1,5", "\"1,5\"", "\"2540.1\"", "\" 2540.1 \"",
            "\"\"", "\"a\"\"b\"", "25\"68", "HS\"I", "1\"", "\"2540.1\"x", "\"multi\nline\"",
            "\"cr\rlf\r\n\"", "١٢٣", "１２３", "日本", "\u{feff}2540.1", "\u{0}", "\u{a0}1",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "18446744073709551616", "9007199254740993.0", "9007199254740993.5",
            "1986-12-31", "1986-02-29", "1988-02-29", "2010-13-01", "0000-01-01", "99999-01-01",
            "1799-12-31", "2201-01-01", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "31/12/1986", "12/31/1986", "03/07/1979", "19861231",
            "31-Dec-1986", "Dec 31, 1986", "1986-12-31 00:00:00", "1986-12-31 09:30:00",
            "1986-12-31T00:00:00Z", "a b", "^GSPC",
        ])
        .prop_map(str::to_string),
        1 => "[0-9]{1,400}(\\.[0-9]{0,400})?",
        1 => any::<String>().prop_map(|text| quote_field(&text)),
        1 => "[^,\"\r\n]{0,40}",
        1 => (1usize..100_000).prop_map(|length| "9".repeat(length)),
    ]
}

/// How one valid row is broken.
#[derive(Debug, Clone)]
enum Mutation {
    /// One field's text is replaced.
    Field(usize, String),
    /// One field is left out.
    Remove(usize),
    /// A field is added.
    Add(String),
    /// The row is cut at a byte (at least one byte is left, so it is not a blank line).
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (0usize..9, nasty_field()).prop_map(|(field, text)| Mutation::Field(field, text)),
        1 => (0usize..9).prop_map(Mutation::Remove),
        1 => nasty_field().prop_map(Mutation::Add),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(quote: &Quote, mutation: &Mutation) -> String {
    let mut cells = fields(quote, false);
    match mutation {
        Mutation::Field(field, text) => cells[*field] = text.clone(),
        Mutation::Remove(field) => {
            cells.remove(*field);
        }
        Mutation::Add(text) => cells.push(text.clone()),
        Mutation::Truncate(at) => {
            let text = cells.join(",");
            let mut cut = 1 + at % text.len();
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return text[..cut].to_string();
        }
    }
    cells.join(",")
}

/// Reads `between` (raw rows, without header) placed between one good row before and one after;
/// checks that both good rows read back unchanged at their lines, and returns the rows that
/// came from `between`.
fn read_between(before: &Quote, between: &[u8], after: &Quote) -> Vec<Row> {
    let plain = Style {
        quoted: [false; 9],
        padded: false,
        float_volume: false,
        crlf: false,
        blank_lines: 0,
        unterminated: false,
        note: None,
    };
    let mut text = format!("{}\n{}\n", header(), row(before, &plain)).into_bytes();
    text.extend_from_slice(between);
    if !between.ends_with(b"\n") {
        text.push(b'\n');
    }
    let after_line = 1 + text.iter().filter(|&&byte| byte == b'\n').count() as u64;
    text.extend_from_slice(row(after, &plain).as_bytes());
    text.push(b'\n');
    let rows = read(&text, &[]);
    let at = |line: u64| {
        rows.iter()
            .find(|row| row.line == line)
            .map(|row| &row.outcome)
    };
    assert_eq!(
        at(2),
        Some(&RowOutcome::Quote(before.clone())),
        "the row before: {rows:?}"
    );
    assert_eq!(
        at(after_line),
        Some(&RowOutcome::Quote(after.clone())),
        "the row after, at line {after_line}: {rows:?}"
    );
    assert_eq!(
        rows.last().map(|row| row.line),
        Some(after_line),
        "{rows:?}"
    );
    rows.into_iter()
        .filter(|row| row.line > 2 && row.line < after_line)
        .collect()
}

fn csv_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                ",",
                ";",
                "\t",
                "|",
                "\"",
                "\"\"",
                "\n",
                "\r\n",
                "\r",
                " ",
                "\u{feff}",
                "Index",
                "Date",
                "Open",
                "High",
                "Low",
                "Close",
                "Adj Close",
                "Volume",
                "CloseUSD",
                "HSI",
                "1986-12-31",
                "03/07/1979",
                "13/07/1979",
                "2540.1",
                "2540,1",
                "0",
                "null",
                "\u{0}",
                "\u{1f}\u{8b}",
            ])
            .prop_map(|text| text.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(corpus::config(CASES))]

    /// Any bytes after the dataset's header.
    #[test]
    fn arbitrary_rows_never_panic(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut text = format!("{}\n", header()).into_bytes();
        text.extend_from_slice(&body);
        read(&text, &[]);
    }

    /// Any bytes split into records and fields by any delimiter.
    #[test]
    fn arbitrary_records_never_panic(
        text in prop::collection::vec(any::<u8>(), 0..1024),
        delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
    ) {
        let mut records = LineRecords::new(&text[..], delimiter);
        let mut previous = 0;
        while let Some(record) = records.next_record().expect("reading from memory") {
            prop_assert!(record.line > previous);
            previous = record.line;
            prop_assert!(!record.is_empty());
            prop_assert_eq!(record.fields().count(), record.len());
        }
        prop_assert_eq!(records.bytes_read(), text.len() as u64);
    }

    /// Whole files in the CSV alphabet (headers, delimiters, quotes, dates, numbers, gzip magic)
    /// through the inference a replay runs: inferred and read, or refused with a reason.
    #[test]
    fn arbitrary_files_never_panic(text in csv_soup(), with_header in any::<bool>()) {
        let mut file = if with_header { format!("{}\n", header()).into_bytes() } else { Vec::new() };
        file.extend_from_slice(&text);
        let _ = read_file(&file, "fuzz.csv");
    }

    /// One broken row between valid rows: it reads as a valid quote or a bad row with a reason
    /// (or several, when a line break split it), and the rows around it read unchanged.
    #[test]
    fn a_broken_row_does_not_disturb_its_neighbours(
        before in quotes::quote(true),
        broken in quotes::quote(true),
        after in quotes::quote(true),
        mutation in mutation(),
    ) {
        let text = mutate(&broken, &mutation);
        read_between(&before, text.as_bytes(), &after);
    }

    /// Valid quotes written as CSV (quoted fields, blanks, CRLF, float volumes, blank lines, a
    /// free-text column, no final line break) read back unchanged at their lines, in memory and
    /// through a replay's inference.
    #[test]
    fn valid_rows_round_trip(
        quotes in prop::collection::vec(quotes::quote(true), 1..6),
        style in style(),
    ) {
        let (text, lines) = file(&quotes, &style);
        let extra: &[&str] = if style.note.is_some() { &["Note"] } else { &[] };
        let expected: Vec<(u64, RowOutcome)> = lines
            .into_iter()
            .zip(quotes.iter().map(|quote| RowOutcome::Quote(quote.clone())))
            .collect();
        let read_back = |rows: Vec<Row>| -> Vec<(u64, RowOutcome)> {
            rows.into_iter()
                .filter(|row| row.outcome != RowOutcome::Empty)
                .map(|row| (row.line, row.outcome))
                .collect()
        };
        prop_assert_eq!(&read_back(read(text.as_bytes(), extra)), &expected, "{}", text);
        let replayed = read_file(text.as_bytes(), "fuzz.csv").map(read_back);
        prop_assert_eq!(replayed, Ok(expected), "{}", text);
    }
}

/// A valid quote of the corpus's neighbour rows.
/// The reasons of the bad rows among `rows`.
fn bad_reasons(rows: &[Row]) -> Vec<&str> {
    rows.iter()
        .filter_map(|row| match &row.outcome {
            RowOutcome::Bad(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

fn neighbour(symbol: &str) -> Quote {
    Quote {
        symbol: symbol.into(),
        trade_date: chrono::NaiveDate::from_ymd_opt(1986, 12, 31).expect("date"),
        open: 2568.300049,
        high: 2568.300049,
        low: 2568.300049,
        close: 2568.300049,
        adj_close: 2568.300049,
        volume: 0,
        close_usd: Some(333.879006),
    }
}

/// Every `csv-row` entry is one or more rows, read between two valid rows which must read
/// unchanged: `accept-…` rows are all quotes, `reject-…` rows all bad rows with reasons.
#[test]
fn row_corpus() {
    corpus::run_corpus("csv-row", |input| {
        let rows = read_between(&neighbour("BEFORE"), input, &neighbour("AFTER"));
        assert!(!rows.is_empty(), "the entry holds no row");
        let bad = bad_reasons(&rows);
        match bad.len() {
            0 => Ok(()),
            count if count == rows.len() => Err(bad.join("; ")),
            _ => panic!("some rows are quotes, some are bad: {rows:?}"),
        }
    });
}

/// Every `csv-file` entry is a whole file, read as a replay reads it: `accept-…` is inferred
/// and each of its rows is a quote, `reject-…` is refused with a reason or none of its rows is
/// a quote.
#[test]
fn file_corpus() {
    corpus::run_corpus("csv-file", |input| {
        let rows = read_file(input, "corpus.csv")?;
        let quotes = rows
            .iter()
            .filter(|row| matches!(row.outcome, RowOutcome::Quote(_)))
            .count();
        let bad = bad_reasons(&rows);
        match (quotes, bad.len()) {
            (0, 0) => Err("no data rows".to_string()),
            (_, 0) => Ok(()),
            (0, _) => Err(bad.join("; ")),
            _ => panic!("some rows are quotes, some are bad: {rows:?}"),
        }
    });
}
